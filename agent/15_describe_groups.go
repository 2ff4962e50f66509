package agent

// DescribeGroups: v0-v5.
//
// Behaviour: state, protocol type, and members with client id and host; the
// protocol, members' metadata and assignments only while Stable, as Kafka
// shows them. An unknown group is answered in state Dead with no error
// (Kafka before v6). Authorized operations (v3+) are everything when asked
// for: silt has no authorizer.
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// allGroupOperations is the authorized-operations bit set for a group with
// no authorizer: READ(3), DELETE(6), DESCRIBE(8).
const allGroupOperations = 1<<3 | 1<<6 | 1<<8

func (a *Agent) handleDescribeGroups(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		var g kmsg.DescribeGroupsResponseGroup
		if !a.ownsGroup(ctx, name) {
			g = kmsg.NewDescribeGroupsResponseGroup()
			g.Group = name
			g.ErrorCode = kerr.NotCoordinator.Code
		} else {
			g = a.groups.DescribeGroup(ctx, name)
		}
		if req.IncludeAuthorizedOperations {
			g.AuthorizedOperations = allGroupOperations
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
