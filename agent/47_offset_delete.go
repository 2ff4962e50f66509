package agent

// OffsetDelete: v0.
//
// Behaviour: removes a group's committed offsets for the given partitions.
// GROUP_ID_NOT_FOUND for an unknown group; per partition
// GROUP_SUBSCRIBED_TO_TOPIC when the group (consumer protocol, not empty)
// subscribes to the topic, UNKNOWN_TOPIC_OR_PARTITION for unknown
// partitions; NON_EMPTY_GROUP for a non-empty group of another protocol
// type.
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (a *Agent) handleOffsetDelete(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetDeleteRequest)
	if req.Group != "" && !a.ownsGroup(ctx, req.Group) {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	}
	resp := a.groups.OffsetDelete(ctx, req)
	if resp.ErrorCode != 0 {
		r.logError(resp.ErrorCode, nil, "group", req.Group)
	}
	return resp, nil
}
