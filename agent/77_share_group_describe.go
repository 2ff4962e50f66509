package agent

// ShareGroupDescribe: v1 (KIP-932).
//
// Behaviour: per group its state (Empty, Stable), group and assignment
// epochs, assignor ("simple") and members with their epochs,
// subscriptions and assignments (topic ids and names). GROUP_ID_NOT_FOUND
// for an unknown group or one of another type, NOT_COORDINATOR when
// another agent coordinates it. DESCRIBE on the group
// (GROUP_AUTHORIZATION_FAILED); authorized operations, when asked for,
// come from the ACLs.
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (a *Agent) handleShareGroupDescribe(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ShareGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
	for _, name := range req.GroupIDs {
		var g kmsg.ShareGroupDescribeResponseGroup
		switch {
		case !r.authorized(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, name):
			g = kmsg.NewShareGroupDescribeResponseGroup()
			g.GroupID, g.ErrorCode = name, kerr.GroupAuthorizationFailed.Code
		case name == "":
			g = kmsg.NewShareGroupDescribeResponseGroup()
			g.ErrorCode = kerr.InvalidGroupID.Code
		case !a.ownsGroup(ctx, name):
			g = kmsg.NewShareGroupDescribeResponseGroup()
			g.GroupID, g.ErrorCode = name, kerr.NotCoordinator.Code
		default:
			g = a.shares.Describe(ctx, name)
		}
		if req.IncludeAuthorizedOperations && g.ErrorCode == 0 {
			g.AuthorizedOperations = r.authorizedOps(kmsg.ACLResourceTypeGroup, name, modernGroupOps)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
