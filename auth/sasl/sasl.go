// Package sasl is the server side of Kafka's SASL mechanisms: PLAIN and
// SCRAM-SHA-256/512 check users against the SCRAM credentials in the
// metastore (so every agent authenticates every user), OAUTHBEARER
// validates a JWT against a JWKS (file or URL), its issuer, audience and
// expiry.
//
// SCRAM is github.com/xdg-go/scram's server, JWT validation
// github.com/golang-jwt/jwt/v5 with keys from github.com/MicahParks/keyfunc
// (chosen over lestrrat-go/jwx for a smaller dependency tree: the two are
// the most used Go JWT and JWKS libraries and do only this). Nothing here
// hand-writes a cryptographic exchange.
package sasl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/siltdata/silt/metastore"
)

// Mechanism names, as clients send them in SaslHandshake.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
	OAuthBearer = "OAUTHBEARER"
)

// Errors. Every failure of an exchange wraps ErrAuthenticationFailed,
// which the agent answers with SASL_AUTHENTICATION_FAILED; the wrapped
// detail is for the server's log only (clients learn nothing about which
// part was wrong).
var (
	ErrAuthenticationFailed = errors.New("authentication failed")
	// ErrUnsupportedMechanism: the mechanism is not enabled.
	ErrUnsupportedMechanism = errors.New("unsupported sasl mechanism")
	// ErrExchangeDone: a message arrived after the exchange finished.
	ErrExchangeDone = errors.New("sasl exchange already finished")
)

// Config selects the mechanisms and configures OAUTHBEARER.
type Config struct {
	// Mechanisms enabled (sasl.enabled.mechanisms), in the order
	// SaslHandshake lists them.
	Mechanisms []string
	// OAuth configures OAUTHBEARER; required when it is enabled.
	OAuth OAuthConfig
}

// DefaultConfig enables SCRAM only: credentials never cross the wire.
func DefaultConfig() Config {
	return Config{Mechanisms: []string{ScramSHA256, ScramSHA512}, OAuth: DefaultOAuthConfig()}
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	for _, m := range c.Mechanisms {
		switch m {
		case Plain, ScramSHA256, ScramSHA512:
		case OAuthBearer:
			if err := c.OAuth.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("OAUTHBEARER: %w", err))
			}
		default:
			errs = append(errs, fmt.Errorf("sasl mechanism %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", m))
		}
	}
	return errors.Join(errs...)
}

// Session is one SASL exchange on one connection.
type Session interface {
	// Step takes the client's next message and returns the reply; done
	// is true once the client is authenticated. An error (wrapping
	// ErrAuthenticationFailed) ends the exchange.
	Step(ctx context.Context, msg []byte) (reply []byte, done bool, err error)
	// User is the authenticated user name, once done.
	User() string
	// Expiry is when the credential stops being valid (an OAuth token's
	// exp), or zero when it does not expire.
	Expiry() time.Time
}

// Server starts sessions of the enabled mechanisms.
type Server struct {
	cfg    Config
	creds  metastore.Credentials
	oauth  *oauthValidator
	logger *slog.Logger
}

// New builds a server. creds may be nil when no mechanism needs it. The
// OAUTHBEARER key set is loaded now (a JWKS URL is then refreshed in the
// background until Close).
func New(ctx context.Context, cfg Config, creds metastore.Credentials, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, creds: creds, logger: logger}
	for _, m := range cfg.Mechanisms {
		if m != OAuthBearer && creds == nil {
			return nil, fmt.Errorf("sasl mechanism %s needs a credential store", m)
		}
	}
	if slices.Contains(cfg.Mechanisms, OAuthBearer) {
		v, err := newOAuthValidator(ctx, cfg.OAuth)
		if err != nil {
			return nil, err
		}
		s.oauth = v
	}
	return s, nil
}

// Mechanisms lists the enabled mechanisms.
func (s *Server) Mechanisms() []string { return slices.Clone(s.cfg.Mechanisms) }

// Enabled reports whether mech is enabled (names are case-sensitive, as
// in Kafka).
func (s *Server) Enabled(mech string) bool { return slices.Contains(s.cfg.Mechanisms, mech) }

// Start begins an exchange of mech.
func (s *Server) Start(mech string) (Session, error) {
	if !s.Enabled(mech) {
		return nil, fmt.Errorf("%w: %q (enabled: %s)", ErrUnsupportedMechanism, mech, strings.Join(s.cfg.Mechanisms, ", "))
	}
	switch mech {
	case Plain:
		return &plainSession{creds: s.creds}, nil
	case ScramSHA256, ScramSHA512:
		return newScramSession(mech, s.creds)
	default:
		return &oauthSession{v: s.oauth}, nil
	}
}

// Close stops the background refresh of a JWKS URL.
func (s *Server) Close() {
	if s.oauth != nil {
		s.oauth.close()
	}
}

// failed wraps a detail into ErrAuthenticationFailed.
func failed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrAuthenticationFailed, fmt.Sprintf(format, args...))
}
