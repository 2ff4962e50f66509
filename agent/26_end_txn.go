package agent

// EndTxn: v0-v5.
//
// Behaviour: commits or aborts the producer's transaction in one metastore
// transaction (agent/txn): a marker into each of its partitions, its
// staged offsets committed (or dropped), its state Complete. The agent
// must coordinate the transactional id (NOT_COORDINATOR). v5 (KIP-890,
// transaction version 2): the epoch is bumped at every end and the
// producer id and epoch to use next are answered (a new producer id when
// the epoch is exhausted); a retry is recognized by the epoch one below
// and answered the same. Before v5 a retry of an ended transaction with
// the same result succeeds.
//
// Errors: an unknown transactional id, or another producer id,
// INVALID_PRODUCER_ID_MAPPING; another epoch PRODUCER_FENCED
// (INVALID_PRODUCER_EPOCH before v2); no transaction to end, or the other
// result than the one it ended with, INVALID_TXN_STATE (v5 aborts with no
// transaction open, bumping the epoch, as Kafka does); an empty
// transactional id INVALID_REQUEST.
//
// Authorization (when on): WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
//
// Differences from Kafka: the answer comes once the markers are written,
// not after the coordinator has logged its decision and before they are:
// so CONCURRENT_TRANSACTIONS is never answered to the next request.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleEndTxn(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case req.TransactionalID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
	case !r.authorized(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, req.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	default:
		pid, epoch, err := a.txns.End(ctx, r.lease(), metastore.TxnProducer{ID: req.TransactionalID, ProducerID: req.ProducerID, Epoch: req.ProducerEpoch},
			req.Commit, req.Version >= 5)
		if err != nil {
			resp.ErrorCode = txnErrorCode(err, fencedCode(req.Version, 2))
			r.logError(resp.ErrorCode, err, "transactional_id", req.TransactionalID, "commit", req.Commit,
				"producer_id", req.ProducerID, "producer_epoch", req.ProducerEpoch)
			return resp, nil
		}
		if req.Version >= 5 {
			resp.ProducerID, resp.ProducerEpoch = pid, epoch
		}
		return resp, nil
	}
	r.logError(resp.ErrorCode, nil, "transactional_id", req.TransactionalID)
	return resp, nil
}
