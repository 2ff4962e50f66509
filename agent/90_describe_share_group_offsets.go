package agent

// DescribeShareGroupOffsets: v0-v1 (KIP-932; lag in v1, KIP-1226).
//
// Behaviour: per group, each named partition's share-partition start
// offset, or every partition the group has state for when Topics is null;
// -1 for a partition without state, UNKNOWN_TOPIC_OR_PARTITION for an
// unknown one. Lag (v1) is the records from the start offset to the high
// watermark not yet acknowledged or archived. NOT_COORDINATOR when
// another agent coordinates the group. Leader epochs are 0 (as Metadata
// reports). ACLs: DESCRIBE on the group and on each topic (a named
// topic answers TOPIC_AUTHORIZATION_FAILED, all topics leave it out).
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/agent/share"
)

func (a *Agent) handleDescribeShareGroupOffsets(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeShareGroupOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
	for _, rg := range req.Groups {
		var g kmsg.DescribeShareGroupOffsetsResponseGroup
		switch {
		case !r.authorized(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, rg.GroupID):
			g = kmsg.NewDescribeShareGroupOffsetsResponseGroup()
			g.GroupID, g.ErrorCode = rg.GroupID, kerr.GroupAuthorizationFailed.Code
		case rg.GroupID == "":
			g = kmsg.NewDescribeShareGroupOffsetsResponseGroup()
			g.ErrorCode = kerr.InvalidGroupID.Code
		case !a.ownsGroup(ctx, rg.GroupID):
			g = kmsg.NewDescribeShareGroupOffsetsResponseGroup()
			g.GroupID, g.ErrorCode = rg.GroupID, kerr.NotCoordinator.Code
		default:
			var topics []share.OffsetsTopic
			if rg.Topics != nil {
				topics = []share.OffsetsTopic{}
				for _, t := range rg.Topics {
					topics = append(topics, share.OffsetsTopic{Name: t.Topic, Partitions: t.Partitions})
				}
			}
			g = a.shares.DescribeOffsets(ctx, rg.GroupID, topics)
			// Topics the principal may not DESCRIBE: named ones answer
			// TOPIC_AUTHORIZATION_FAILED, all-topics leaves them out.
			kept := g.Topics[:0]
			for _, t := range g.Topics {
				if !r.authorizedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t.Topic) {
					if rg.Topics == nil {
						continue
					}
					for i := range t.Partitions {
						t.Partitions[i].ErrorCode, t.Partitions[i].StartOffset, t.Partitions[i].Lag = kerr.TopicAuthorizationFailed.Code, -1, -1
					}
				}
				kept = append(kept, t)
			}
			g.Topics = kept
		}
		if g.ErrorCode != 0 {
			r.logError(g.ErrorCode, nil, "group", rg.GroupID)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
