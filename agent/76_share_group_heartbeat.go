package agent

// ShareGroupHeartbeat: v1 (KIP-932).
//
// Behaviour (agent/share implements it): member epoch 0 joins with a
// member id the client chose (1 to 36 characters) and its subscribed topic
// names, -1 leaves (the records it holds are released), a positive epoch
// heartbeats (the previous epoch is accepted once: its answer may have
// been lost). The coordinator assigns every subscribed partition to at
// least one member, spreading members evenly; members take a new
// assignment at once (share groups have no revocation step). Each epoch
// and assignment is saved in the metastore under the coordinator's claim
// before it is answered; partitions newly assigned get their share state
// (share.auto.offset.reset). Session timeout and heartbeat interval come
// from share.session.timeout.ms and share.heartbeat.interval.ms. Errors:
// INVALID_REQUEST with Kafka's messages, UNKNOWN_MEMBER_ID,
// FENCED_MEMBER_EPOCH, GROUP_MAX_SIZE_REACHED (group.share.max.size),
// GROUP_ID_NOT_FOUND for a group of another type, NOT_COORDINATOR. ACLs:
// READ on the group, DESCRIBE on every subscribed topic.
//
// Differences from Kafka: the assignment is computed as the heartbeat that
// needs it arrives, not every share.assignment.interval.ms.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/agent/share"
)

func (a *Agent) handleShareGroupHeartbeat(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ShareGroupHeartbeatRequest)
	early := func(code int16) (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
		resp.ErrorCode = code
		return resp, nil
	}
	if !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.GroupID) {
		return early(kerr.GroupAuthorizationFailed.Code)
	}
	for _, t := range req.SubscribedTopicNames {
		if !r.authorized(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t) {
			return early(kerr.TopicAuthorizationFailed.Code)
		}
	}
	if req.GroupID != "" && !a.ownsGroup(ctx, req.GroupID) {
		return early(kerr.NotCoordinator.Code)
	}
	cl := groupClient(r)
	resp := a.shares.Heartbeat(ctx, share.Client{ID: cl.ID, Host: cl.Host}, req)
	if resp.ErrorCode != 0 {
		r.logError(resp.ErrorCode, nil, "group", req.GroupID, "member", req.MemberID, "epoch", req.MemberEpoch, "message", deref(resp.ErrorMessage))
	}
	return resp, nil
}
