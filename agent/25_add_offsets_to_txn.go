package agent

// AddOffsetsToTxn: v0-v4.
//
// Behaviour: the consumer group joins the producer's transaction (which
// becomes Ongoing), so that TxnOffsetCommit may stage its offsets; they
// are committed with the transaction. The agent must coordinate the
// transactional id (NOT_COORDINATOR). Errors as AddPartitionsToTxn's: a
// producer id not the transactional id's INVALID_PRODUCER_ID_MAPPING,
// another epoch PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v2), an
// empty transactional id INVALID_REQUEST, a transaction over its limit
// UNKNOWN_SERVER_ERROR.
//
// Authorization (when on): WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on the group
// (GROUP_AUTHORIZATION_FAILED).
//
// Differences from Kafka: Kafka adds the group's __consumer_offsets
// partition to the transaction and writes a marker there at its end;
// silt's offsets live in the metastore and the end commits them in the
// same metastore transaction as the markers.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleAddOffsetsToTxn(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	switch {
	case req.TransactionalID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
	case !r.authorized(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, req.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	case !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.Group):
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	default:
		err := a.txns.AddGroup(ctx, r.lease(), metastore.TxnProducer{ID: req.TransactionalID, ProducerID: req.ProducerID, Epoch: req.ProducerEpoch}, req.Group)
		resp.ErrorCode = txnErrorCode(err, fencedCode(req.Version, 2))
	}
	if resp.ErrorCode != 0 {
		r.logError(resp.ErrorCode, nil, "transactional_id", req.TransactionalID, "group", req.Group,
			"producer_id", req.ProducerID, "producer_epoch", req.ProducerEpoch)
	}
	return resp, nil
}
