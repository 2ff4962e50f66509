package agent

// DeleteGroups: v0-v2.
//
// Behaviour: deletes each group (classic, consumer or share) and its
// committed offsets or share state; per group GROUP_ID_NOT_FOUND when
// unknown, NON_EMPTY_GROUP while it has members, NOT_COORDINATOR when
// another agent coordinates it.
//
// Authorization (when on): DELETE on each group, else
// GROUP_AUTHORIZATION_FAILED.
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (a *Agent) handleDeleteGroups(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range req.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = name
		switch {
		case !r.authorized(kmsg.ACLOperationDelete, kmsg.ACLResourceTypeGroup, name):
			g.ErrorCode = kerr.GroupAuthorizationFailed.Code
		case a.ownsGroup(ctx, name):
			var isShare bool
			if g.ErrorCode, isShare = a.groups.DeleteGroup(ctx, name); isShare {
				g.ErrorCode = a.shares.Delete(ctx, name)
			}
		default:
			g.ErrorCode = kerr.NotCoordinator.Code
		}
		if g.ErrorCode != 0 {
			r.logError(g.ErrorCode, nil, "group", name)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
