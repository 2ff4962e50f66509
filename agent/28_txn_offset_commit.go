package agent

// TxnOffsetCommit: v0-v6.
//
// Behaviour: the group's coordinator (NOT_COORDINATOR elsewhere) stages
// offsets that the producer's transaction commits with it, in the
// metastore (agent/group's TxnOffsetCommit): they are invisible to
// OffsetFetch until the transaction commits (OffsetFetch with
// require_stable answers UNSTABLE_OFFSET_COMMIT for them meanwhile), and
// dropped when it aborts. The member is validated as Kafka does for
// transactional commits (v3+ names generation, member and instance; a
// request naming none is accepted), the write is fenced by the group's
// claim and generation and by the producer's epoch. v5+ (KIP-890) adds the
// group to the transaction itself; before, a group not added answers
// TRANSACTION_ABORTABLE (v4) or INVALID_TXN_STATE. A stale epoch answers
// INVALID_PRODUCER_EPOCH, a producer id not the transactional id's
// INVALID_PRODUCER_ID_MAPPING; unknown topics or partitions
// UNKNOWN_TOPIC_OR_PARTITION and metadata over offset.metadata.max.bytes
// OFFSET_METADATA_TOO_LARGE, per partition. v6 names topics by id (an
// unknown id answers UNKNOWN_TOPIC_ID).
//
// Authorization (when on): WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on the group
// (GROUP_AUTHORIZATION_FAILED), for every partition; READ on each topic
// (TOPIC_AUTHORIZATION_FAILED for its partitions, which are not staged).
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleTxnOffsetCommit(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.TxnOffsetCommitRequest)
	every := func(resp *kmsg.TxnOffsetCommitResponse, topics []kmsg.TxnOffsetCommitRequestTopic, code int16) *kmsg.TxnOffsetCommitResponse {
		for _, rt := range topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	switch {
	case !r.authorized(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, req.TransactionalID):
		return every(resp, req.Topics, kerr.TransactionalIDAuthorizationFailed.Code), nil
	case !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.Group):
		return every(resp, req.Topics, kerr.GroupAuthorizationFailed.Code), nil
	case req.Group == "":
		r.logError(kerr.InvalidGroupID.Code, nil, "transactional_id", req.TransactionalID)
		return every(resp, req.Topics, kerr.InvalidGroupID.Code), nil
	case !a.ownsGroup(ctx, req.Group):
		return every(resp, req.Topics, kerr.NotCoordinator.Code), nil
	}
	var denied, unknown []kmsg.TxnOffsetCommitRequestTopic
	allowed := *req
	allowed.Topics = nil
	for _, rt := range req.Topics {
		if req.Version >= 6 {
			// By id: the group coordinator works with names.
			t, err := a.topicByID(ctx, metastore.TopicID(rt.TopicID))
			if err != nil {
				unknown = append(unknown, rt)
				continue
			}
			rt.Topic = t.Name
		}
		if r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, rt.Topic) {
			allowed.Topics = append(allowed.Topics, rt)
		} else {
			denied = append(denied, rt)
		}
	}
	out := a.groups.TxnOffsetCommit(ctx, &allowed, a.cfg.Txn.MaxPartitions)
	if req.Version >= 6 {
		for i := range out.Topics {
			out.Topics[i].TopicID = allowed.Topics[i].TopicID
		}
	}
	out = every(out, denied, kerr.TopicAuthorizationFailed.Code)
	out = every(out, unknown, kerr.UnknownTopicID.Code)
	for _, t := range out.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 && p.ErrorCode != kerr.NotCoordinator.Code {
				r.logError(p.ErrorCode, nil, "transactional_id", req.TransactionalID, "group", req.Group,
					"topic", t.Topic, "partition", p.Partition, "producer_id", req.ProducerID, "producer_epoch", req.ProducerEpoch)
				return out, nil // one line per request
			}
		}
	}
	return out, nil
}
