package agent

// SaslAuthenticate: v0-v2.
//
// Behaviour:
//   - Carries the tokens of the exchange SaslHandshake started. A failed
//     exchange (wrong password, unknown user, invalid or expired token)
//     answers SASL_AUTHENTICATION_FAILED with Kafka's message, after
//     Config.FailedAuthDelay, and the connection is closed after the
//     answer. The reason is logged by the agent only.
//   - On success (v1+) session_lifetime_ms is the session's lifetime: the
//     smaller of Config.ReauthAfter and the OAuth token's expiry (0: no
//     limit); the client re-authenticates before it ends (KIP-368).
//   - Without a SaslHandshake first, or on a listener without SASL:
//     ILLEGAL_SASL_STATE.
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (a *Agent) handleSASLAuthenticate(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	c := r.conn
	if !c.l.cfg.SASL() || a.sasl == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		r.logError(resp.ErrorCode, nil, "listener", c.l.cfg.Name)
		return resp, nil
	}
	c.authMu.Lock()
	mech := c.mech
	c.authMu.Unlock()
	res := c.step(ctx, req.SASLAuthBytes)
	if res.err != nil {
		a.metrics.countError(r.kreq.Key(), kerr.SaslAuthenticationFailed.Code)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr("Authentication failed during authentication due to invalid credentials with SASL mechanism " + mech)
		r.inf.closeAfter = true
		return resp, nil
	}
	resp.SASLAuthBytes = res.reply
	if res.done {
		resp.SessionLifetimeMillis = res.lifetime.Milliseconds()
	}
	return resp, nil
}
