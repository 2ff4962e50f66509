package agent

// DescribeShareGroupOffsets: v0-v1 (KIP-932; lag in v1, KIP-1226).
//
// Behaviour: per group, each named partition's share-partition start
// offset, or every partition the group has state for when Topics is null;
// -1 for a partition without state, UNKNOWN_TOPIC_OR_PARTITION for an
// unknown one. Lag (v1) is the records from the start offset to the high
// watermark not yet acknowledged or archived. NOT_COORDINATOR when
// another agent coordinates the group. Leader epochs are 0 (as Metadata
// reports).
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
		}
		if g.ErrorCode != 0 {
			r.logError(g.ErrorCode, nil, "group", rg.GroupID)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
