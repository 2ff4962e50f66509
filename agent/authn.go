package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/auth"
	"github.com/siltdata/silt/auth/sasl"
)

// Connection authentication: the state machine of a SASL listener's
// connection (see conn's auth fields), shared by SaslHandshake,
// SaslAuthenticate and the raw tokens of SaslHandshake v0.

// Reasons a connection is closed for its authentication state.
var (
	errIllegalSASLState = errors.New("request not allowed before authentication")
	errSessionExpired   = errors.New("sasl session expired (connections.max.reauth.ms); the client did not re-authenticate")
)

func isSASLKey(key int16) bool {
	return key == kmsg.SASLHandshake.Int16() || key == kmsg.SASLAuthenticate.Int16()
}

// authState reports whether the connection may send any request, and
// whether its next frame is a raw SASL token.
func (c *conn) authState() (authenticated, raw bool) {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	return c.authenticated, c.rawTokens
}

// admit decides whether a decoded request may be handled in the
// connection's state; an error closes the connection, as Kafka closes a
// connection that sends other requests before authenticating (and, with
// KIP-368, one whose session expired).
func (c *conn) admit(key int16) error {
	if !c.l.cfg.SASL() {
		return nil
	}
	c.authMu.Lock()
	defer c.authMu.Unlock()
	var err error
	switch {
	case !c.authenticated:
		switch {
		case key == kmsg.ApiVersions.Int16() && !c.handshaken,
			key == kmsg.SASLHandshake.Int16() && !c.handshaken,
			key == kmsg.SASLAuthenticate.Int16() && c.handshaken:
		default:
			err = errIllegalSASLState
		}
	case !c.expires.IsZero() && time.Now().After(c.expires):
		if key != kmsg.SASLHandshake.Int16() && !(key == kmsg.SASLAuthenticate.Int16() && c.reauthing) {
			err = errSessionExpired
		}
	}
	if err != nil {
		c.a.logger.Warn("closing connection", "client", c.remote, "listener", c.l.cfg.Name,
			"api", kmsg.NameForKey(key), "err", err)
	}
	return err
}

// startExchange begins a SASL exchange after a SaslHandshake; raw is set
// for handshake v0, whose tokens follow as bare frames. On an
// authenticated connection it is a re-authentication (KIP-368), which
// must keep the mechanism.
func (c *conn) startExchange(mech string, raw bool) error {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	if c.authenticated && mech != c.mech {
		return fmt.Errorf("re-authentication with %s, the session used %s", mech, c.mech)
	}
	s, err := c.a.sasl.Start(mech)
	if err != nil {
		return err
	}
	c.reauthing = c.authenticated
	c.handshaken, c.rawTokens, c.mech, c.session = true, raw, mech, s
	return nil
}

// exchangeResult is one step of a SASL exchange.
type exchangeResult struct {
	reply    []byte
	done     bool
	lifetime time.Duration // when done: the session's lifetime (0: none)
	err      error         // wraps sasl.ErrAuthenticationFailed
}

// step feeds one client token to the exchange. On success the
// connection is authenticated with the session's principal; on failure
// the failed-authentication delay passes before it returns, and the
// caller closes the connection after answering.
func (c *conn) step(ctx context.Context, token []byte) exchangeResult {
	c.authMu.Lock()
	s, mech := c.session, c.mech
	c.authMu.Unlock()
	if s == nil {
		return exchangeResult{err: fmt.Errorf("%w: SaslAuthenticate without SaslHandshake", sasl.ErrAuthenticationFailed)}
	}
	reply, done, err := s.Step(ctx, token)
	if err == nil && !done {
		return exchangeResult{reply: reply}
	}
	c.authMu.Lock()
	defer c.authMu.Unlock()
	c.session, c.handshaken = nil, false
	var principal string
	if err == nil {
		principal = auth.User(s.User())
		if c.reauthing && principal != c.principal {
			err = fmt.Errorf("%w: re-authentication as %s, the session was %s", sasl.ErrAuthenticationFailed, principal, c.principal)
		}
	}
	if err != nil {
		c.a.metrics.authFailures.WithLabelValues(mech).Inc()
		c.a.logger.Warn("authentication failed", "client", c.remote, "listener", c.l.cfg.Name,
			"mechanism", mech, "err", err)
		c.authMu.Unlock()
		c.failedAuthDelay(ctx)
		c.authMu.Lock()
		return exchangeResult{err: err}
	}
	var lifetime time.Duration
	if c.a.cfg.ReauthAfter > 0 {
		lifetime = c.a.cfg.ReauthAfter
	}
	if exp := s.Expiry(); !exp.IsZero() {
		if d := time.Until(exp); lifetime == 0 || d < lifetime {
			lifetime = max(d, time.Millisecond)
		}
	}
	c.expires = time.Time{}
	if lifetime > 0 {
		c.expires = time.Now().Add(lifetime)
	}
	if !c.reauthing {
		c.a.logger.Debug("authenticated", "client", c.remote, "listener", c.l.cfg.Name, "mechanism", mech, "principal", principal)
	}
	c.principal, c.authenticated, c.reauthing, c.rawTokens = principal, true, false, false
	return exchangeResult{reply: reply, done: true, lifetime: lifetime}
}

// failedAuthDelay waits Config.FailedAuthDelay (or until ctx ends).
func (c *conn) failedAuthDelay(ctx context.Context) {
	if c.a.cfg.FailedAuthDelay <= 0 {
		return
	}
	t := time.NewTimer(c.a.cfg.FailedAuthDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// rawToken handles one bare SASL token after SaslHandshake v0: the reply
// goes back as a bare size-prefixed frame; a failure closes the
// connection without an answer, as Kafka does for v0.
func (c *conn) rawToken(token []byte) *inflight {
	inf := &inflight{done: make(chan struct{}), release: make(chan struct{}), rawReply: true}
	defer close(inf.done)
	defer close(inf.release)
	res := c.step(c.ctx, token)
	if res.err != nil {
		inf.err = res.err
		return inf
	}
	inf.raw = res.reply
	return inf
}
