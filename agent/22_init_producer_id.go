package agent

// InitProducerID: v0-v5.
//
// Behaviour:
//   - Without a transactional id (idempotent producers) the agent
//     allocates a fresh producer id from the metastore (NextProducerID)
//     with epoch 0, also when the client passes its current id and epoch
//     (v3+, KIP-360, after OUT_OF_ORDER_SEQUENCE_NUMBER or
//     UNKNOWN_PRODUCER_ID): that is what Apache Kafka does for
//     non-transactional producers, and a new id carries no sequence state,
//     so the producer restarts cleanly on every partition.
//   - With a transactional id the agent must be its coordinator
//     (NOT_COORDINATOR otherwise; see agent/txn): a new id gets a fresh
//     producer id at epoch 0, a known one its epoch bumped, which fences
//     every earlier instance (a new producer id once the epoch is
//     exhausted). A transaction an earlier instance left open is aborted
//     first, in the same metastore transaction. KIP-360 (v3+): a producer
//     passing its current id and epoch gets its epoch bumped, or the same
//     answer again when it retries; another id or epoch answers
//     PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v4).
//   - A transaction timeout outside (0, transaction.max.timeout.ms]
//     answers INVALID_TRANSACTION_TIMEOUT; an empty transactional id, or
//     only one of producer id and epoch (v3+), INVALID_REQUEST.
//   - v5 (Kafka 4.0) is v4 that may be answered TRANSACTION_ABORTABLE;
//     silt never answers it here.
//
// Authorization (when on): a transactional id needs WRITE on it
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); an idempotent producer needs
// IDEMPOTENT_WRITE on the cluster or WRITE on some topic (KIP-679), else
// CLUSTER_AUTHORIZATION_FAILED.
//
// Differences from Kafka: an open transaction of the id is aborted and the
// new epoch answered at once, where Kafka aborts it asynchronously and
// answers CONCURRENT_TRANSACTIONS, and the client's retry gets the epoch.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/auth/acl"
)

func (a *Agent) handleInitProducerID(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case req.TransactionalID != nil && !r.authorized(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, *req.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	case req.TransactionalID == nil && !r.authorizedQuiet(kmsg.ACLOperationIdempotentWrite, kmsg.ACLResourceTypeCluster, acl.ClusterName) &&
		!r.authorizedAny(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic):
		// KIP-679: an idempotent producer needs IDEMPOTENT_WRITE on the
		// cluster or WRITE on some topic.
		r.authorizedCluster(kmsg.ACLOperationIdempotentWrite) // the audit line
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	case req.Version >= 3 && (req.ProducerID == -1) != (req.ProducerEpoch == -1):
		resp.ErrorCode = kerr.InvalidRequest.Code
		r.logError(resp.ErrorCode, nil, "producer_id", req.ProducerID, "producer_epoch", req.ProducerEpoch)
		return resp, nil
	case req.TransactionalID != nil && *req.TransactionalID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
		r.logError(resp.ErrorCode, nil, "transactional_id", "")
		return resp, nil
	case req.TransactionalID != nil:
		pid, epoch := int64(-1), int16(-1)
		if req.Version >= 3 {
			pid, epoch = req.ProducerID, req.ProducerEpoch
		}
		id, ep, err := a.txns.InitProducer(ctx, r.lease(), *req.TransactionalID,
			time.Duration(req.TransactionTimeoutMillis)*time.Millisecond, pid, epoch)
		if err != nil {
			resp.ErrorCode = txnErrorCode(err, fencedCode(req.Version, 4))
			r.logError(resp.ErrorCode, err, "transactional_id", *req.TransactionalID)
			return resp, nil
		}
		resp.ProducerID, resp.ProducerEpoch = id, ep
		return resp, nil
	}
	id, err := a.store.NextProducerID(ctx)
	if err != nil {
		// Retriable: the producer retries its initialization.
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		r.logError(resp.ErrorCode, err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
