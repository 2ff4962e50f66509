package agent

// ConsumerGroupHeartbeat: v0-v1 (KIP-848).
//
// Behaviour (agent/group implements it, with Kafka's GroupMetadataManager
// semantics):
//   - Member epoch 0 joins (v1: with a member id the client chose; v0: the
//     coordinator makes one), -1 leaves, -2 is a static member leaving
//     for now (it keeps its assignment until its session expires); a
//     positive epoch heartbeats and reports owned partitions.
//   - The coordinator assigns: server-side assignors uniform (the default)
//     and range (ServerAssignor; others UNSUPPORTED_ASSIGNOR); regular
//     expression subscriptions (v1) are resolved against the topics,
//     whole names, internal topics included (INVALID_REGULAR_EXPRESSION
//     when they do not compile). Members reconcile epoch by epoch: a
//     partition moves only after its previous owner stopped reporting it.
//   - Static membership: a member rejoining with its instance id takes
//     over its previous incarnation's assignment once that one left with
//     epoch -2 (else UNRELEASED_INSTANCE_ID).
//   - FENCED_MEMBER_EPOCH for an epoch the coordinator did not hand out
//     (one behind is accepted when the member owns nothing more than its
//     assignment: the bumped answer was lost), UNKNOWN_MEMBER_ID,
//     GROUP_MAX_SIZE_REACHED, GROUP_ID_NOT_FOUND for a classic group with
//     members that cannot be upgraded or a share group, INVALID_REQUEST
//     with Kafka's messages.
//   - A classic group whose members use the consumer protocol is upgraded
//     in place when such a heartbeat joins it; when the last member using
//     this protocol leaves a group of classic members, it is downgraded
//     (group.consumer.migration.policy bidirectional).
//   - Every change of an epoch or an assignment is saved in the metastore
//     under the coordinator's claim before it is answered.
//   - Session timeout and heartbeat interval come from the group's
//     consumer.session.timeout.ms and consumer.heartbeat.interval.ms, or
//     the agent's defaults (45 s, 5 s, as Kafka).
//   - ACLs: READ on the group (GROUP_AUTHORIZATION_FAILED) and DESCRIBE
//     on every subscribed topic name (TOPIC_AUTHORIZATION_FAILED), as
//     Kafka checks them.
//
// Differences from Kafka: the target assignment is computed as the
// heartbeat that needs it arrives, not batched every
// consumer.assignment.interval.ms; the uniform assignor's choices are
// silt's own (balanced and sticky like Kafka's, not identical); topics a
// regular expression matches are not filtered by the member's DESCRIBE
// permission.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (a *Agent) handleConsumerGroupHeartbeat(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	early := func(code int16) (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode, resp.MemberEpoch = code, req.MemberEpoch
		return resp, nil
	}
	if !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.Group) {
		return early(kerr.GroupAuthorizationFailed.Code)
	}
	for _, t := range req.SubscribedTopicNames {
		if !r.authorized(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t) {
			return early(kerr.TopicAuthorizationFailed.Code)
		}
	}
	if req.Group != "" && !a.ownsGroup(ctx, req.Group) {
		return early(kerr.NotCoordinator.Code)
	}
	resp := a.groups.ConsumerGroupHeartbeat(ctx, groupClient(r), req)
	if resp.ErrorCode != 0 {
		msg := ""
		if resp.ErrorMessage != nil {
			msg = *resp.ErrorMessage
		}
		r.logError(resp.ErrorCode, nil, "group", req.Group, "member", req.MemberID, "epoch", req.MemberEpoch, "message", msg)
	}
	return resp, nil
}
