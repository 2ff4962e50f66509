package agent

// SaslHandshake: v0-v1.
//
// Behaviour:
//   - On a SASL listener, before authentication: the mechanism must be one
//     of the enabled ones (UNSUPPORTED_SASL_MECHANISM, with the enabled
//     list, and the connection is closed after the answer); v1 is followed
//     by SaslAuthenticate requests, v0 by bare SASL tokens (the legacy
//     framing of older clients, and of sarama with SASLHandshakeV0).
//   - On an authenticated connection it starts a KIP-368
//     re-authentication, which must use the session's mechanism.
//   - On a listener without SASL: ILLEGAL_SASL_STATE.
//
// Differences from Kafka: none intended.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/auth/sasl"
)

func (a *Agent) handleSASLHandshake(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	c := r.conn
	if !c.l.cfg.SASL() || a.sasl == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		r.logError(resp.ErrorCode, nil, "listener", c.l.cfg.Name)
		return resp, nil
	}
	resp.SupportedMechanisms = a.sasl.Mechanisms()
	if err := c.startExchange(req.Mechanism, req.Version == 0); err != nil {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		if !errors.Is(err, sasl.ErrUnsupportedMechanism) {
			resp.ErrorCode = kerr.IllegalSaslState.Code
		}
		r.logError(resp.ErrorCode, err, "mechanism", req.Mechanism)
		r.inf.closeAfter = true
	}
	return resp, nil
}
