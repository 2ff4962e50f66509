package agent

// AlterShareGroupOffsets: v0 (KIP-932).
//
// Behaviour: sets the start offset of share-partitions of an empty share
// group (NON_EMPTY_GROUP otherwise), dropping their in-flight records;
// the next consumer starts there. A share group that does not exist yet
// is created, empty. Per partition UNKNOWN_TOPIC_OR_PARTITION; the reset
// is one metastore transaction under the coordinator's claim.
// NOT_COORDINATOR when another agent coordinates the group. ACLs: READ on
// the group and on every named topic.
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (a *Agent) handleAlterShareGroupOffsets(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AlterShareGroupOffsetsRequest)
	if !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.GroupID) {
		resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	for _, t := range req.Topics {
		if !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, t.Topic) {
			resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
			resp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			return resp, nil
		}
	}
	if req.GroupID == "" || !a.ownsGroup(ctx, req.GroupID) {
		resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		if req.GroupID == "" {
			resp.ErrorCode = kerr.InvalidGroupID.Code
		}
		return resp, nil
	}
	resp := a.shares.AlterOffsets(ctx, req)
	if resp.ErrorCode != 0 {
		r.logError(resp.ErrorCode, nil, "group", req.GroupID)
	}
	return resp, nil
}
