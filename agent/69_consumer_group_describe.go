package agent

// ConsumerGroupDescribe: v0-v1 (KIP-848).
//
// Behaviour: per group its state (Empty, Assigning, Reconciling, Stable),
// group and assignment epochs, assignor, and members with their epochs,
// subscriptions, current and target assignments (topic ids and names) and,
// v1, whether they use the consumer (1) or classic (0) protocol.
// GROUP_ID_NOT_FOUND for an unknown group or a group of another type,
// NOT_COORDINATOR when another agent coordinates it. DESCRIBE on the group
// (GROUP_AUTHORIZATION_FAILED); authorized operations, when asked for,
// come from the ACLs.
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (a *Agent) handleConsumerGroupDescribe(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, name := range req.Groups {
		var g kmsg.ConsumerGroupDescribeResponseGroup
		if !r.authorized(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, name) {
			g = kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group, g.ErrorCode = name, kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, g)
			continue
		}
		if name == "" || !a.ownsGroup(ctx, name) {
			g = kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group = name
			g.ErrorCode = kerr.NotCoordinator.Code
			if name == "" {
				g.ErrorCode = kerr.InvalidGroupID.Code
			}
		} else {
			g = a.groups.ConsumerGroupDescribe(ctx, name)
		}
		if req.IncludeAuthorizedOperations && g.ErrorCode == 0 {
			g.AuthorizedOperations = r.authorizedOps(kmsg.ACLResourceTypeGroup, name, modernGroupOps)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
