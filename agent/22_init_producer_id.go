package agent

// InitProducerID: v0-v4.
//
// Behaviour: idempotent producers only. Without a transactional id the
// agent allocates a fresh producer id from the metastore (NextProducerID)
// with epoch 0, also when the client passes its current id and epoch
// (v3+, KIP-360, after OUT_OF_ORDER_SEQUENCE_NUMBER or UNKNOWN_PRODUCER_ID):
// that is what Apache Kafka does for non-transactional producers, and a
// new id carries no sequence state, so the producer restarts cleanly on
// every partition. Passing only one of id and epoch is INVALID_REQUEST,
// as in Kafka.
//
// Authorization (when on): a transactional id needs WRITE on it
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); an idempotent producer needs
// IDEMPOTENT_WRITE on the cluster or WRITE on some topic (KIP-679), else
// CLUSTER_AUTHORIZATION_FAILED.
//
// Differences from Kafka: transactions are not supported. A transactional
// id answers INVALID_REQUEST, which every client treats as fatal and
// reports; Kafka's canned text for it ("... sent to an incompatible
// broker") is accurate, where TRANSACTIONAL_ID_AUTHORIZATION_FAILED would
// send users hunting for missing ACLs and the retriable coordinator
// errors would make clients retry forever. The agent logs the reason.
// (Kafka also answers INVALID_REQUEST for an empty transactional id.)

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/auth/acl"
)

var errTransactionsUnsupported = errors.New("transactions are not supported by silt")

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
	case req.TransactionalID != nil:
		resp.ErrorCode = kerr.InvalidRequest.Code
		r.logError(resp.ErrorCode, errTransactionsUnsupported, "transactional_id", *req.TransactionalID)
		return resp, nil
	case req.Version >= 3 && (req.ProducerID == -1) != (req.ProducerEpoch == -1):
		resp.ErrorCode = kerr.InvalidRequest.Code
		r.logError(resp.ErrorCode, nil, "producer_id", req.ProducerID, "producer_epoch", req.ProducerEpoch)
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
