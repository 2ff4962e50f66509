package agent

// OffsetCommit: v0-v9.
//
// Behaviour (Kafka's validateOffsetCommit): a commit naming a generation or
// member is fenced — UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID,
// ILLEGAL_GENERATION — and answered REBALANCE_IN_PROGRESS while the group
// completes a rebalance; a simple commit (generation -1, no member) is
// accepted while the group has no members, and creates the group. Unknown
// topics or partitions answer UNKNOWN_TOPIC_OR_PARTITION per partition,
// metadata over offset.metadata.max.bytes OFFSET_METADATA_TOO_LARGE; the
// other partitions still commit. Offsets are durable (metastore) before
// the answer.
//
// Authorization (when on): READ on the group (else every partition answers
// GROUP_AUTHORIZATION_FAILED) and on each topic (TOPIC_AUTHORIZATION_FAILED
// for its partitions, which are not committed).
//
// Differences from Kafka: retention times (v2-v4) are ignored: offsets are
// kept until the group or topic is deleted (Kafka expires offsets of
// empty groups after offsets.retention.minutes).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (a *Agent) handleOffsetCommit(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetCommitRequest)
	// every answers each partition of topics with code.
	every := func(resp *kmsg.OffsetCommitResponse, topics []kmsg.OffsetCommitRequestTopic, code int16) *kmsg.OffsetCommitResponse {
		for _, rt := range topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	if !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.Group) {
		return every(req.ResponseKind().(*kmsg.OffsetCommitResponse), req.Topics, kerr.GroupAuthorizationFailed.Code), nil
	}
	if !a.ownsGroup(ctx, req.Group) {
		return every(req.ResponseKind().(*kmsg.OffsetCommitResponse), req.Topics, kerr.NotCoordinator.Code), nil
	}
	// Topics the principal may not READ are answered
	// TOPIC_AUTHORIZATION_FAILED and not committed.
	var denied []kmsg.OffsetCommitRequestTopic
	allowed := *req
	allowed.Topics = nil
	for _, rt := range req.Topics {
		if r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, rt.Topic) {
			allowed.Topics = append(allowed.Topics, rt)
		} else {
			denied = append(denied, rt)
		}
	}
	return every(a.groups.OffsetCommit(ctx, &allowed), denied, kerr.TopicAuthorizationFailed.Code), nil
}
