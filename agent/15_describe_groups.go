package agent

// DescribeGroups: v0-v6.
//
// Behaviour: state, protocol type, and members with client id and host; the
// protocol, members' metadata and assignments only while Stable, as Kafka
// shows them. An unknown group is answered in state Dead, with
// GROUP_ID_NOT_FOUND and a message from v6 (no error before, as Kafka).
// A consumer (KIP-848) or share group answers GROUP_ID_NOT_FOUND, "is not
// a classic group", as Kafka 4.x does. A group the principal may not
// DESCRIBE answers GROUP_AUTHORIZATION_FAILED; authorized operations
// (v3+) come from the ACLs (everything without an authorizer).
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (a *Agent) handleDescribeGroups(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		var g kmsg.DescribeGroupsResponseGroup
		if !r.authorized(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, name) {
			g = kmsg.NewDescribeGroupsResponseGroup()
			g.Group = name
			g.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, g)
			continue
		}
		if !a.ownsGroup(ctx, name) {
			g = kmsg.NewDescribeGroupsResponseGroup()
			g.Group = name
			g.ErrorCode = kerr.NotCoordinator.Code
		} else {
			g = a.groups.DescribeGroup(ctx, name, req.Version)
		}
		if req.IncludeAuthorizedOperations {
			g.AuthorizedOperations = r.authorizedOps(kmsg.ACLResourceTypeGroup, name, groupOps)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
