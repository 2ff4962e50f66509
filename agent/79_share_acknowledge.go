package agent

// ShareAcknowledge: v1-v2 (KIP-932; KIP-1222 renew in v2).
//
// Behaviour: acknowledges records a share-group member holds (accept,
// release, reject, gap; renew with IsRenewAck, v2), within the member's
// share session on this agent: its epoch must be the session's
// (INVALID_SHARE_SESSION_EPOCH, SHARE_SESSION_NOT_FOUND; epoch 0 cannot
// acknowledge) and moves it on; epoch -1 closes the session after the
// acknowledgements, releasing what the member still holds in it. Per
// partition: INVALID_REQUEST for malformed batches, INVALID_RECORD_STATE
// for records the member does not hold (nothing of the partition's
// acknowledgement is applied then), UNKNOWN_TOPIC_ID. Each partition's
// acknowledgement is stored in the metastore before it is answered. ACLs:
// READ on the group and on each topic.
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/agent/share"
	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleShareAcknowledge(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ShareAcknowledgeRequest)
	resp := req.ResponseKind().(*kmsg.ShareAcknowledgeResponse)
	group, member := deref(req.GroupID), deref(req.MemberID)
	fail := func(code int16, msg string) (kmsg.Response, error) {
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = kmsg.StringPtr(msg)
		}
		r.logError(code, nil, "group", group, "member", member, "message", msg)
		return resp, nil
	}
	switch {
	case !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, group):
		return fail(kerr.GroupAuthorizationFailed.Code, "")
	case group == "":
		return fail(kerr.InvalidRequest.Code, "GroupId can't be empty.")
	case member == "" || len(member) > 36:
		return fail(kerr.InvalidRequest.Code, "MemberId must be 1 to 36 characters.")
	}
	if req.Version >= 2 {
		resp.AcquisitionLockTimeoutMillis = int32(a.shareParts.LockDuration(ctx, group).Milliseconds())
	}
	var acks []*shareAckPart
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			ap := &shareAckPart{topicID: rt.TopicID, part: rp.Partition}
			for _, b := range rp.AcknowledgementBatches {
				ap.batches = append(ap.batches, share.AckBatch{First: b.FirstOffset, Last: b.LastOffset, Types: b.AcknowledgeTypes})
			}
			acks = append(acks, ap)
		}
	}
	maxType := share.AckReject
	if req.Version >= 2 && req.IsRenewAck {
		maxType = share.AckRenew
	}
	key := share.SessionKey{Group: group, Member: member}
	var held []metastore.TopicPartition
	switch req.ShareSessionEpoch {
	case 0:
		return fail(kerr.InvalidShareSessionEpoch.Code, "")
	case -1:
		var ok bool
		if held, ok = a.shareSessions.Close(key); !ok {
			return fail(kerr.ShareSessionNotFound.Code, "")
		}
	default:
		switch _, code := a.shareSessions.Use(key, req.ShareSessionEpoch, nil, nil); code {
		case share.SessionNotFound:
			return fail(kerr.ShareSessionNotFound.Code, "")
		case share.SessionBadEpoch:
			return fail(kerr.InvalidShareSessionEpoch.Code, "")
		}
	}
	a.processShareAcks(ctx, r, group, member, acks, maxType)
	a.releaseShare(ctx, key, held)
	byTopic := map[[16]byte]int{}
	for _, ap := range acks {
		i, ok := byTopic[ap.topicID]
		if !ok {
			i = len(resp.Topics)
			byTopic[ap.topicID] = i
			rt := kmsg.NewShareAcknowledgeResponseTopic()
			rt.TopicID = ap.topicID
			resp.Topics = append(resp.Topics, rt)
		}
		sp := kmsg.NewShareAcknowledgeResponseTopicPartition()
		sp.Partition, sp.ErrorCode = ap.part, ap.code
		if ap.msg != "" {
			sp.ErrorMessage = kmsg.StringPtr(ap.msg)
		}
		sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = -1, -1
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, sp)
	}
	return resp, nil
}
