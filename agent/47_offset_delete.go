package agent

// OffsetDelete: v0.
//
// Behaviour: removes a group's committed offsets for the given partitions.
// GROUP_ID_NOT_FOUND for an unknown group; per partition
// GROUP_SUBSCRIBED_TO_TOPIC when the group (consumer protocol, not empty)
// subscribes to the topic, UNKNOWN_TOPIC_OR_PARTITION for unknown
// partitions; NON_EMPTY_GROUP for a non-empty group of another protocol
// type.
//
// Authorization (when on): DELETE on the group
// (GROUP_AUTHORIZATION_FAILED) and READ on each topic (its partitions
// answer TOPIC_AUTHORIZATION_FAILED and keep their offsets).
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (a *Agent) handleOffsetDelete(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetDeleteRequest)
	if !r.authorized(kmsg.ACLOperationDelete, kmsg.ACLResourceTypeGroup, req.Group) {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	// Topics the principal may not READ answer TOPIC_AUTHORIZATION_FAILED
	// and are not passed on.
	var denied []kmsg.OffsetDeleteRequestTopic
	allowed := *req
	allowed.Topics = nil
	for _, rt := range req.Topics {
		if r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, rt.Topic) {
			allowed.Topics = append(allowed.Topics, rt)
		} else {
			denied = append(denied, rt)
		}
	}
	req = &allowed
	deny := func(resp *kmsg.OffsetDeleteResponse) *kmsg.OffsetDeleteResponse {
		for _, rt := range denied {
			st := kmsg.NewOffsetDeleteResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetDeleteResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	if req.Group != "" && !a.ownsGroup(ctx, req.Group) {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	}
	resp := a.groups.OffsetDelete(ctx, req)
	if resp.ErrorCode != 0 {
		r.logError(resp.ErrorCode, nil, "group", req.Group)
		return resp, nil
	}
	return deny(resp), nil
}
