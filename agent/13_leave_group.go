package agent

// LeaveGroup: v0-v5.
//
// Behaviour: v0-v2 remove one member by id; v3+ remove a batch, each by
// member id and/or group.instance.id (KIP-345: an admin may remove a
// static member by instance id alone), with a per-member error:
// UNKNOWN_MEMBER_ID, or FENCED_INSTANCE_ID when the member id is not the
// instance's current one. The group then rebalances. v5 reasons are
// logged.
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

func (a *Agent) handleLeaveGroup(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.LeaveGroupRequest)
	if !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.Group) {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	if req.Group != "" && !a.ownsGroup(ctx, req.Group) {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	}
	return a.groups.LeaveGroup(ctx, req), nil
}
