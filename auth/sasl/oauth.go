package sasl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// OAuthConfig configures OAUTHBEARER: tokens are JWTs signed by a key of
// the JWKS, issued by Issuer for Audience, and not expired.
type OAuthConfig struct {
	// JWKSFile is a file holding the JSON Web Key Set (read at start);
	// JWKSURL an https URL serving it (refreshed every RefreshInterval
	// and when a token names an unknown key). Exactly one is required.
	JWKSFile string
	JWKSURL  string
	// RefreshInterval is how often a JWKSURL is fetched again
	// (sasl.oauthbearer.jwks.endpoint.refresh.ms).
	RefreshInterval time.Duration
	// Issuer and Audience, when set, must match the token's iss and aud
	// (sasl.oauthbearer.expected.issuer / expected.audience).
	Issuer   string
	Audience string
	// PrincipalClaim names the claim holding the user name
	// (sasl.oauthbearer.sub.claim.name).
	PrincipalClaim string
	// ClockSkew is the leeway on exp, nbf and iat
	// (sasl.oauthbearer.clock.skew.seconds).
	ClockSkew time.Duration
	// Logger receives JWKS refresh failures; nil discards them.
	Logger *slog.Logger
}

// DefaultOAuthConfig returns Kafka's defaults.
func DefaultOAuthConfig() OAuthConfig {
	return OAuthConfig{RefreshInterval: time.Hour, PrincipalClaim: "sub", ClockSkew: 30 * time.Second}
}

// Validate reports what is wrong with c.
func (c OAuthConfig) Validate() error {
	var errs []error
	if (c.JWKSFile == "") == (c.JWKSURL == "") {
		errs = append(errs, errors.New("exactly one of a JWKS file and a JWKS URL is required"))
	}
	if c.PrincipalClaim == "" {
		errs = append(errs, errors.New("principal claim is empty"))
	}
	if c.ClockSkew < 0 {
		errs = append(errs, fmt.Errorf("clock skew %s: must not be negative", c.ClockSkew))
	}
	return errors.Join(errs...)
}

// signingMethods are the JWT algorithms accepted: asymmetric only (a JWKS
// publishes public keys; "none" and HMAC are never accepted).
var signingMethods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

type oauthValidator struct {
	cfg    OAuthConfig
	keys   keyfunc.Keyfunc
	cancel context.CancelFunc
	parser *jwt.Parser
}

func newOAuthValidator(ctx context.Context, cfg OAuthConfig) (*oauthValidator, error) {
	v := &oauthValidator{cfg: cfg}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(signingMethods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.ClockSkew),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	if cfg.JWKSFile != "" {
		raw, err := os.ReadFile(cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("OAUTHBEARER JWKS file: %w", err)
		}
		if v.keys, err = keyfunc.NewJWKSetJSON(raw); err != nil {
			return nil, fmt.Errorf("OAUTHBEARER JWKS file %s: %w", cfg.JWKSFile, err)
		}
		return v, nil
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The refresh goroutine lives until close.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	noErr := false
	keys, err := keyfunc.NewDefaultOverrideCtx(rctx, []string{cfg.JWKSURL}, keyfunc.Override{
		RefreshInterval:           cfg.RefreshInterval,
		NoErrorReturnFirstHTTPReq: &noErr,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				logger.Warn("OAUTHBEARER JWKS refresh failed", "url", u, "err", err)
			}
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("OAUTHBEARER JWKS URL %s: %w", cfg.JWKSURL, err)
	}
	v.keys, v.cancel = keys, cancel
	return v, nil
}

func (v *oauthValidator) close() {
	if v.cancel != nil {
		v.cancel()
	}
}

// validate checks a token and returns its principal and expiry.
func (v *oauthValidator) validate(ctx context.Context, token string) (user string, exp time.Time, err error) {
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(token, claims, v.keys.KeyfuncCtx(ctx)); err != nil {
		return "", time.Time{}, failed("OAUTHBEARER: %v", err)
	}
	name, _ := claims[v.cfg.PrincipalClaim].(string)
	if name == "" {
		return "", time.Time{}, failed("OAUTHBEARER: no %q claim", v.cfg.PrincipalClaim)
	}
	e, err := claims.GetExpirationTime()
	if err != nil || e == nil {
		return "", time.Time{}, failed("OAUTHBEARER: no expiry")
	}
	return name, e.Time, nil
}

// oauthSession is an OAUTHBEARER exchange (RFC 7628): one client message
// carrying the token.
//
// Difference from Kafka: an invalid token is answered with
// SASL_AUTHENTICATION_FAILED at once, where Kafka first sends an error
// challenge that the client acknowledges; clients report the same error.
type oauthSession struct {
	v    *oauthValidator
	user string
	exp  time.Time
	done bool
}

func (s *oauthSession) Step(ctx context.Context, msg []byte) ([]byte, bool, error) {
	if s.done {
		return nil, false, ErrExchangeDone
	}
	s.done = true
	token, authz, err := parseOAuthMessage(msg)
	if err != nil {
		return nil, false, failed("OAUTHBEARER: %v", err)
	}
	user, exp, err := s.v.validate(ctx, token)
	if err != nil {
		return nil, false, err
	}
	if authz != "" && authz != user {
		return nil, false, failed("OAUTHBEARER: authorization id %q differs from principal %q", authz, user)
	}
	s.user, s.exp = user, exp
	return nil, true, nil
}

func (s *oauthSession) User() string      { return s.user }
func (s *oauthSession) Expiry() time.Time { return s.exp }

// parseOAuthMessage reads RFC 7628's client initial response:
//
//	gs2-header kvsep *(key "=" value kvsep) kvsep
//	gs2-header = ("n" / "y") "," ["a=" authzid] ","
//
// with kvsep 0x01 and one key "auth" = "Bearer <token>".
func parseOAuthMessage(msg []byte) (token, authz string, err error) {
	s := string(msg)
	gs2, rest, ok := strings.Cut(s, ",")
	if !ok || (gs2 != "n" && gs2 != "y") {
		return "", "", errors.New("malformed GS2 header")
	}
	az, rest, ok := strings.Cut(rest, ",")
	if !ok {
		return "", "", errors.New("malformed GS2 header")
	}
	if az != "" {
		if !strings.HasPrefix(az, "a=") {
			return "", "", errors.New("malformed authorization id")
		}
		authz = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(az[2:])
	}
	if !strings.HasPrefix(rest, "\x01") || !strings.HasSuffix(rest, "\x01\x01") {
		return "", "", errors.New("malformed key-value pairs")
	}
	for kv := range strings.SplitSeq(strings.TrimSuffix(rest[1:], "\x01\x01"), "\x01") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return "", "", errors.New("malformed key-value pair")
		}
		if k == "auth" {
			scheme, tok, ok := strings.Cut(v, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
				return "", "", errors.New("auth is not a bearer token")
			}
			token = strings.TrimSpace(tok)
		}
	}
	if token == "" {
		return "", "", errors.New("no auth token")
	}
	return token, authz, nil
}
