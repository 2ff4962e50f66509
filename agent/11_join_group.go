package agent

// JoinGroup: v0-v9.
//
// Behaviour (agent/group implements it, with Kafka's state machine):
//   - v4+ dynamic members joining with no member id get MEMBER_ID_REQUIRED
//     and an id to join with (KIP-394).
//   - v5+ static membership (KIP-345): a member rejoining with its
//     group.instance.id replaces its old member id and, when the group is
//     Stable and its metadata unchanged, keeps its assignment without a
//     rebalance; a static leader gets SkipAssignment on v9 (KIP-814).
//   - The protocol is the one every member supports with the most first-
//     choice votes; a member sharing none gets INCONSISTENT_GROUP_PROTOCOL.
//   - The join completes when every known member rejoined, or after the
//     longest rebalance timeout (v0: the session timeout), dropping dynamic
//     members that did not come back. The leader gets every member's
//     metadata.
//   - The request blocks its connection until the join completes, as in
//     Kafka.
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

func (a *Agent) handleJoinGroup(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.JoinGroupRequest)
	if !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.Group) {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		resp.Generation = -1
		resp.MemberID = req.MemberID
		return resp, nil
	}
	if req.Group != "" && !a.ownsGroup(ctx, req.Group) {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		resp.Generation = -1
		resp.MemberID = req.MemberID
		return resp, nil
	}
	resp := a.groups.JoinGroup(ctx, groupClient(r), req)
	if resp.ErrorCode != 0 && resp.ErrorCode != kerr.MemberIDRequired.Code {
		r.logError(resp.ErrorCode, nil, "group", req.Group, "member", req.MemberID)
	}
	return resp, nil
}
