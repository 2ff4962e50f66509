package agent

// ListTransactions: v0-v2.
//
// Behaviour: the transactional ids this agent coordinates (the admin
// client asks every agent and joins the answers), with producer id and
// state, filtered by state (unknown state names are answered in
// unknown_state_filters and match nothing), producer id, how long the
// transaction has been running (v1+: only Ongoing ones running longer
// than the duration) and a regular expression on the id (v2+, RE2 syntax;
// an invalid one answers INVALID_REGULAR_EXPRESSION).
//
// Authorization (when on): ids the principal may not DESCRIBE are left
// out, as in Kafka.
//
// Differences from Kafka: none intended (silt knows no PrepareCommit,
// PrepareAbort or PrepareEpochFence states: they are valid filters that
// match nothing).

import (
	"context"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaTxnStates are the states Kafka's ListTransactions filters know.
var kafkaTxnStates = []string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

func (a *Agent) handleListTransactions(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	states := map[string]bool{}
	for _, s := range req.StateFilters {
		if !slices.Contains(kafkaTxnStates, s) {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
			continue
		}
		states[s] = true
	}
	if len(req.StateFilters) > 0 && len(states) == 0 {
		return resp, nil // only unknown states: nothing matches
	}
	var pattern *regexp.Regexp
	if req.Version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		re, err := regexp.Compile(*req.TransactionalIDPattern)
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			r.logError(resp.ErrorCode, err, "pattern", *req.TransactionalIDPattern)
			return resp, nil
		}
		pattern = re
	}
	txns, err := a.txns.List(ctx)
	if err != nil {
		resp.ErrorCode = txnErrorCode(err, kerr.ProducerFenced.Code)
		r.logError(resp.ErrorCode, err)
		return resp, nil
	}
	now := time.Now()
	for _, t := range txns {
		switch {
		case len(states) > 0 && !states[string(t.State)],
			len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, t.ProducerID),
			req.Version >= 1 && req.DurationFilterMillis >= 0 && (t.Started.IsZero() || now.Sub(t.Started).Milliseconds() <= req.DurationFilterMillis),
			pattern != nil && !pattern.MatchString(t.ID),
			!r.authorizedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, t.ID):
			continue
		}
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = t.ID, t.ProducerID, string(t.State)
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return resp, nil
}
