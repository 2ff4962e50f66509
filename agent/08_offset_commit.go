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
	if !a.ownsGroup(ctx, req.Group) {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotCoordinator.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil
	}
	return a.groups.OffsetCommit(ctx, req), nil
}
