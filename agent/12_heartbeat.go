package agent

// Heartbeat: v0-v4.
//
// Behaviour: renews the member's session. REBALANCE_IN_PROGRESS while the
// group prepares a rebalance (the member must rejoin), ILLEGAL_GENERATION
// for another generation, UNKNOWN_MEMBER_ID for an unknown member,
// FENCED_INSTANCE_ID for a static member replaced by a newer incarnation.
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

func (a *Agent) handleHeartbeat(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.HeartbeatRequest)
	if !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.Group) {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	if req.Group != "" && !a.ownsGroup(ctx, req.Group) {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	}
	resp := a.groups.Heartbeat(ctx, req)
	if resp.ErrorCode != 0 && resp.ErrorCode != kerr.RebalanceInProgress.Code {
		r.logError(resp.ErrorCode, nil, "group", req.Group, "member", req.MemberID)
	}
	return resp, nil
}
