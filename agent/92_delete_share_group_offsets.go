package agent

// DeleteShareGroupOffsets: v0 (KIP-932).
//
// Behaviour: removes the share state of every partition of the named
// topics from an empty share group (NON_EMPTY_GROUP otherwise;
// GROUP_ID_NOT_FOUND for an unknown one); a consumer subscribing again
// starts where share.auto.offset.reset says. Per topic
// UNKNOWN_TOPIC_OR_PARTITION. NOT_COORDINATOR when another agent
// coordinates the group. ACLs: DELETE on the group, READ on every named
// topic.
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (a *Agent) handleDeleteShareGroupOffsets(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteShareGroupOffsetsRequest)
	if !r.authorized(kmsg.ACLOperationDelete, kmsg.ACLResourceTypeGroup, req.GroupID) {
		resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	for _, t := range req.Topics {
		if !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, t.Topic) {
			resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
			resp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			return resp, nil
		}
	}
	if req.GroupID == "" || !a.ownsGroup(ctx, req.GroupID) {
		resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		if req.GroupID == "" {
			resp.ErrorCode = kerr.InvalidGroupID.Code
		}
		return resp, nil
	}
	resp := a.shares.DeleteOffsets(ctx, req)
	if resp.ErrorCode != 0 {
		r.logError(resp.ErrorCode, nil, "group", req.GroupID)
	}
	return resp, nil
}
