package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/agent/share"
	"github.com/siltdata/silt/fetch"
	"github.com/siltdata/silt/metastore"
)

// What ShareFetch (78) and ShareAcknowledge (79) share: acknowledgement
// processing, the release of a closed session's records, and their
// errors.

// shareReleaseTimeout bounds releasing the records of a closed share
// session; if it fails the records' locks expire anyway.
const shareReleaseTimeout = 5 * time.Second

// shareConnClosed ends the share sessions opened on c and releases the
// records their members hold in them (Kafka releases them when a share
// session's connection closes), so that other consumers get them before
// the locks expire.
func (a *Agent) shareConnClosed(c *conn) {
	closed := a.shareSessions.ClosedConn(c)
	if len(closed) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), shareReleaseTimeout)
	defer cancel()
	for k, tps := range closed {
		a.releaseShare(ctx, k, tps)
	}
}

// releaseShare releases member k's records in tps and wakes fetches
// waiting on partitions that got records back.
func (a *Agent) releaseShare(ctx context.Context, k share.SessionKey, tps []metastore.TopicPartition) {
	if len(tps) == 0 {
		return
	}
	if released := a.shareParts.ReleaseMember(ctx, k.Group, k.Member, tps); len(released) > 0 {
		a.reader.Notify(released)
	}
}

// shareAckPart is one partition's acknowledgement batches in a request.
type shareAckPart struct {
	tp      metastore.TopicPartition
	topicID [16]byte
	part    int32
	batches []share.AckBatch
	code    int16 // set by processShareAcks
	msg     string
}

// processShareAcks validates and applies each partition's batches for
// member: INVALID_REQUEST for malformed batches, INVALID_RECORD_STATE for
// records the member does not hold, UNKNOWN_TOPIC_ID / _OR_PARTITION.
// Partitions that got records back wake waiting fetches.
func (a *Agent) processShareAcks(ctx context.Context, r *request, group, member string, acks []*shareAckPart, maxType int8) {
	var released []metastore.TopicPartition
	for _, ap := range acks {
		t, err := a.topicByID(ctx, metastore.TopicID(ap.topicID))
		switch {
		case errors.Is(err, metastore.ErrUnknownTopic):
			ap.code = kerr.UnknownTopicID.Code
			continue
		case err != nil:
			ap.code, ap.msg = errorCode(err), err.Error()
			continue
		case !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, t.Name):
			ap.code = kerr.TopicAuthorizationFailed.Code
			continue
		case ap.part < 0 || ap.part >= t.Partitions:
			ap.code = kerr.UnknownTopicOrPartition.Code
			continue
		}
		ap.tp = metastore.TopicPartition{Topic: t.ID, Partition: ap.part}
		if err := share.ValidateAcks(ap.batches, maxType); err != nil {
			ap.code, ap.msg = kerr.InvalidRequest.Code, err.Error()
			continue
		}
		rel, err := a.shareParts.Acknowledge(ctx, group, member, ap.tp, ap.batches)
		a.logger.Debug("share acknowledge", "group", group, "member", member, "partition", ap.part, "batches", fmt.Sprint(ap.batches), "err", err)
		if err != nil {
			ap.code, ap.msg = shareErrorCode(err), err.Error()
			continue
		}
		if rel {
			released = append(released, ap.tp)
		}
	}
	if len(released) > 0 {
		a.reader.Notify(released)
	}
}

// shareErrorCode maps the share-fetch path's errors: the acknowledgement
// errors the protocol defines (INVALID_REQUEST, INVALID_RECORD_STATE,
// final), the read path's (errorCode: an unavailable store or bucket is
// KAFKA_STORAGE_ERROR, retriable), and a share-partition that kept
// changing under its compare-and-set, also retriable.
func shareErrorCode(err error) int16 {
	switch {
	case errors.Is(err, share.ErrBadAck):
		return kerr.InvalidRequest.Code
	case errors.Is(err, share.ErrRecordState):
		return kerr.InvalidRecordState.Code
	case errors.Is(err, fetch.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	default:
		return errorCode(err)
	}
}
