package agent

// SyncGroup: v0-v5.
//
// Behaviour: the leader's assignments are saved to the metastore and then
// handed to every member of the generation; followers that sync first wait
// for the leader. During PreparingRebalance: REBALANCE_IN_PROGRESS; wrong
// generation: ILLEGAL_GENERATION; v5 protocol type or name differing from
// the group's: INCONSISTENT_GROUP_PROTOCOL. Members named in no assignment
// get an empty one, as in Kafka.
//
// Authorization (when on): READ on the group, else
// GROUP_AUTHORIZATION_FAILED.
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (a *Agent) handleSyncGroup(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.SyncGroupRequest)
	if !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.Group) {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	if req.Group != "" && !a.ownsGroup(ctx, req.Group) {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	}
	resp := a.groups.SyncGroup(ctx, req)
	if resp.ErrorCode != 0 {
		r.logError(resp.ErrorCode, nil, "group", req.Group, "member", req.MemberID, "generation", req.Generation)
	}
	return resp, nil
}
