package agent

// ShareFetch: v1-v2 (KIP-932, as Kafka 4.2+; KIP-1222 renew in v2).
//
// Behaviour (agent/share implements the state; STATE.md):
//   - Share sessions per (group, member) on this agent: epoch 0 opens one
//     with the request's partitions (acknowledgements with it are
//     INVALID_REQUEST), a positive epoch must be the session's
//     (INVALID_SHARE_SESSION_EPOCH; SHARE_SESSION_NOT_FOUND when there is
//     none) and adds the request's partitions and drops the forgotten
//     ones, -1 closes it: its acknowledgements are applied, nothing is
//     fetched, and the records the member still holds in its partitions
//     are released. A closed connection closes its sessions likewise.
//   - Acknowledgements (accept, release, reject, gap; renew with
//     IsRenewAck, which fetches nothing) are applied first, per partition
//     (AcknowledgeErrorCode: INVALID_REQUEST, INVALID_RECORD_STATE), so
//     records released here may be fetched again at once.
//   - Then records are acquired for the member, up to MaxRecords in all
//     (500 when 0), partitions taken in turn from one request to the next:
//     released and expired records of the in-flight window first, then new
//     ones, within share.partition.max.record.locks; whole batches are
//     returned with AcquiredRecords naming the offsets and delivery counts
//     (the client skips the rest). Every acquisition is stored in the
//     metastore before it is answered, so any agent may serve the next
//     request and an agent's death loses no acquisition.
//   - With nothing acquired the request waits up to MaxWaitMillis, woken
//     by commits to its partitions, by records released on this agent, and
//     by the earliest acquisition lock expiring.
//   - A partition the group has no state for is initialized where
//     share.auto.offset.reset says.
//   - Any agent serves any partition (CurrentLeader is never named); the
//     group's membership is not checked here, as in Kafka.
//   - ACLs: READ on the group (GROUP_AUTHORIZATION_FAILED for the whole
//     request) and on each topic (TOPIC_AUTHORIZATION_FAILED for its
//     partitions, fetching and acknowledging alike).
//
// Differences from Kafka: records are acquired offset by offset, never
// rounded up to whole batches (ShareAcquireMode is not needed to get
// exact counts); share.isolation.level has no effect (no transactions).

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/agent/share"
	"github.com/siltdata/silt/fetch"
	"github.com/siltdata/silt/metastore"
)

// defaultShareMaxRecords is what MaxRecords 0 means (the Java client's
// default max.poll.records).
const defaultShareMaxRecords = 500

func (a *Agent) handleShareFetch(ctx context.Context, r *request) (kmsg.Response, error) {
	r.release() // nothing after it depends on this fetch's order
	req := r.kreq.(*kmsg.ShareFetchRequest)
	resp := req.ResponseKind().(*kmsg.ShareFetchResponse)
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
	resp.AcquisitionLockTimeoutMillis = int32(a.shareParts.LockDuration(ctx, group).Milliseconds())
	renew := req.Version >= 2 && req.IsRenewAck
	if renew && (req.MaxBytes != 0 || req.MinBytes != 0 || req.MaxRecords != 0 || req.MaxWaitMillis != 0) {
		return fail(kerr.InvalidRequest.Code, "A renew acknowledgement fetches nothing: its fetch parameters must be zero.")
	}

	// The request's partitions, by topic id, and their acknowledgements.
	var (
		parts []metastore.TopicPartition
		acks  []*shareAckPart
		pmax  = map[metastore.TopicPartition]int64{}
	)
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			tp := metastore.TopicPartition{Topic: metastore.TopicID(rt.TopicID), Partition: rp.Partition}
			parts = append(parts, tp)
			pmax[tp] = int64(rp.PartitionMaxBytes)
			if len(rp.AcknowledgementBatches) > 0 {
				ap := &shareAckPart{topicID: rt.TopicID, part: rp.Partition}
				for _, b := range rp.AcknowledgementBatches {
					ap.batches = append(ap.batches, share.AckBatch{First: b.FirstOffset, Last: b.LastOffset, Types: b.AcknowledgeTypes})
				}
				acks = append(acks, ap)
			} else if renew {
				return fail(kerr.InvalidRequest.Code, "A renew acknowledgement names only partitions with acknowledgements.")
			}
		}
	}
	var forgotten []metastore.TopicPartition
	for _, ft := range req.ForgottenTopicsData {
		for _, p := range ft.Partitions {
			forgotten = append(forgotten, metastore.TopicPartition{Topic: metastore.TopicID(ft.TopicID), Partition: p})
		}
	}
	maxType := share.AckReject
	if renew {
		maxType = share.AckRenew
	}

	key := share.SessionKey{Group: group, Member: member}
	var session map[metastore.TopicPartition]bool
	switch req.ShareSessionEpoch {
	case -1:
		// The final request: acknowledge, release, answer, no fetch.
		held, ok := a.shareSessions.Close(key)
		if !ok {
			return fail(kerr.ShareSessionNotFound.Code, "")
		}
		a.processShareAcks(ctx, r, group, member, acks, maxType)
		a.releaseShare(ctx, key, held)
		addShareAcks(resp, acks)
		return resp, nil
	case 0:
		if len(acks) > 0 {
			return fail(kerr.InvalidRequest.Code, "Acknowledgements cannot open a share session.")
		}
		sess, replaced := a.shareSessions.Open(key, r.conn, parts)
		session = sess.Parts
		a.releaseShare(ctx, key, replaced)
	default:
		var code share.SessionError
		session, code = a.shareSessions.Use(key, req.ShareSessionEpoch, parts, forgotten)
		switch code {
		case share.SessionNotFound:
			return fail(kerr.ShareSessionNotFound.Code, "")
		case share.SessionBadEpoch:
			return fail(kerr.InvalidShareSessionEpoch.Code, "")
		}
	}

	a.processShareAcks(ctx, r, group, member, acks, maxType)
	if renew {
		addShareAcks(resp, acks)
		return resp, nil
	}

	// Fetch from the session's partitions, in turn from one request to the
	// next (the epoch turns the starting point).
	order := make([]metastore.TopicPartition, 0, len(session))
	for tp := range session {
		order = append(order, tp)
	}
	slices.SortFunc(order, func(x, y metastore.TopicPartition) int {
		if c := compareIDs(x.Topic, y.Topic); c != 0 {
			return c
		}
		return int(x.Partition - y.Partition)
	})
	if n := len(order); n > 1 {
		k := int(req.ShareSessionEpoch) % n
		order = append(order[k:], order[:k]...)
	}
	maxRecords := int64(req.MaxRecords)
	if maxRecords <= 0 {
		maxRecords = defaultShareMaxRecords
	}
	respMax := max(int64(req.MaxBytes), 1)
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	var results map[metastore.TopicPartition]*shareFetched
	for {
		var w *fetch.Watch
		if req.MaxWaitMillis > 0 && len(order) > 0 {
			w = a.reader.Watch(order)
		}
		var wake time.Time
		results, wake = a.shareFetchOnce(ctx, r, group, member, order, pmax, maxRecords, respMax)
		got := false
		for _, f := range results {
			got = got || len(f.acquired) > 0 || f.code != 0
		}
		if w == nil || got || !time.Now().Before(deadline) || ctx.Err() != nil {
			if w != nil {
				w.Stop()
			}
			break
		}
		until := deadline
		if !wake.IsZero() && wake.Before(until) {
			until = wake.Add(time.Millisecond)
		}
		woken := w.Wait(ctx, until)
		w.Stop()
		if !woken && !time.Now().Before(deadline) {
			break
		}
	}

	if a.logger.Enabled(ctx, slog.LevelDebug) {
		n := 0
		for _, f := range results {
			for _, ar := range f.acquired {
				n += int(ar.LastOffset - ar.FirstOffset + 1)
			}
		}
		a.logger.Debug("share fetch", "group", group, "member", member, "epoch", req.ShareSessionEpoch,
			"partitions", len(order), "acknowledged", len(acks), "acquired", n, "max_records", req.MaxRecords, "max_wait_ms", req.MaxWaitMillis)
	}
	// The answer: partitions with records or errors, those the session
	// says must appear, and those acknowledged in this request.
	acked := map[metastore.TopicPartition]*shareAckPart{}
	for _, ap := range acks {
		acked[metastore.TopicPartition{Topic: metastore.TopicID(ap.topicID), Partition: ap.part}] = ap
	}
	byTopic := map[metastore.TopicID]int{}
	for _, tp := range order {
		f := results[tp]
		ap := acked[tp]
		if f == nil && ap == nil && !session[tp] {
			continue
		}
		if f != nil && len(f.acquired) == 0 && f.code == 0 && ap == nil && !session[tp] {
			continue
		}
		sp := newShareFetchPartition(tp.Partition)
		if f != nil {
			sp.ErrorCode, sp.AcquiredRecords = f.code, f.acquired
			if f.records != nil {
				// Never null: the Java client refuses a null record set
				// (a non-nullable field in Kafka's schema).
				sp.Records = f.records
			}
		}
		if ap != nil {
			sp.AcknowledgeErrorCode = ap.code
			if ap.msg != "" {
				sp.AcknowledgeErrorMessage = kmsg.StringPtr(ap.msg)
			}
			delete(acked, tp)
		}
		appendShareFetchPartition(resp, byTopic, tp.Topic, sp)
		a.shareSessions.Answered(key, tp, sp.ErrorCode == 0)
	}
	for _, ap := range acks { // acknowledged, not (or no longer) in the session
		if acked[metastore.TopicPartition{Topic: metastore.TopicID(ap.topicID), Partition: ap.part}] == nil {
			continue
		}
		sp := newShareFetchPartition(ap.part)
		sp.AcknowledgeErrorCode = ap.code
		if ap.msg != "" {
			sp.AcknowledgeErrorMessage = kmsg.StringPtr(ap.msg)
		}
		appendShareFetchPartition(resp, byTopic, ap.topicID, sp)
	}
	return resp, nil
}

// shareFetched is one partition's acquisition in a ShareFetch.
type shareFetched struct {
	records  []byte
	acquired []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord
	code     int16
}

// shareFetchOnce acquires from each partition in order until maxRecords
// are acquired or the response's bytes are spent. It returns what it got
// and the earliest time a lock expires in the partitions read (zero: no
// locks).
func (a *Agent) shareFetchOnce(ctx context.Context, r *request, group, member string, order []metastore.TopicPartition,
	pmax map[metastore.TopicPartition]int64, maxRecords, respMax int64) (map[metastore.TopicPartition]*shareFetched, time.Time) {
	out := make(map[metastore.TopicPartition]*shareFetched, len(order))
	var wake time.Time
	remaining, bytesLeft := maxRecords, respMax
	isOOR := func(err error) bool { return errors.Is(err, fetch.ErrOffsetOutOfRange) }
	for _, tp := range order {
		if remaining <= 0 || bytesLeft <= 0 {
			break
		}
		f := &shareFetched{}
		out[tp] = f
		t, err := a.topicByID(ctx, tp.Topic)
		switch {
		case errors.Is(err, metastore.ErrUnknownTopic):
			f.code = kerr.UnknownTopicID.Code
			continue
		case err != nil:
			f.code = errorCode(err)
			continue
		case !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, t.Name):
			f.code = kerr.TopicAuthorizationFailed.Code
			continue
		case tp.Partition < 0 || tp.Partition >= t.Partitions:
			f.code = kerr.UnknownTopicOrPartition.Code
			continue
		}
		limit := bytesLeft
		if m, ok := pmax[tp]; ok && m > 0 {
			limit = min(limit, m)
		}
		res, err := a.shareParts.Fetch(ctx, group, member, tp, remaining, limit, a.reader.Read, isOOR)
		if err != nil {
			f.code = shareErrorCode(err)
			r.logError(f.code, err, "group", group, "topic", t.Name, "partition", tp.Partition)
			continue
		}
		if !res.Wake.IsZero() && (wake.IsZero() || res.Wake.Before(wake)) {
			wake = res.Wake
		}
		for _, ar := range res.Acquired {
			x := kmsg.NewShareFetchResponseTopicPartitionAcquiredRecord()
			x.FirstOffset, x.LastOffset, x.DeliveryCount = ar.First, ar.Last, int16(min(ar.Count, 1<<15-1))
			f.acquired = append(f.acquired, x)
			remaining -= ar.Last - ar.First + 1
		}
		f.records = res.Records
		bytesLeft -= int64(len(res.Records))
	}
	return out, wake
}

func newShareFetchPartition(p int32) kmsg.ShareFetchResponseTopicPartition {
	sp := kmsg.NewShareFetchResponseTopicPartition()
	sp.Partition = p
	// Kafka sends the schema's -1/-1 when it names no leader; 0/0 would
	// read as a hint to node 0. Any agent serves any partition.
	sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = -1, -1
	sp.Records = []byte{}
	return sp
}

func appendShareFetchPartition(resp *kmsg.ShareFetchResponse, byTopic map[metastore.TopicID]int, topic metastore.TopicID, sp kmsg.ShareFetchResponseTopicPartition) {
	i, ok := byTopic[topic]
	if !ok {
		i = len(resp.Topics)
		byTopic[topic] = i
		rt := kmsg.NewShareFetchResponseTopic()
		rt.TopicID = topic
		resp.Topics = append(resp.Topics, rt)
	}
	resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, sp)
}

// addShareAcks answers each acknowledged partition (a final or renew
// request, which fetches nothing).
func addShareAcks(resp *kmsg.ShareFetchResponse, acks []*shareAckPart) {
	byTopic := map[metastore.TopicID]int{}
	for _, ap := range acks {
		sp := newShareFetchPartition(ap.part)
		sp.AcknowledgeErrorCode = ap.code
		if ap.msg != "" {
			sp.AcknowledgeErrorMessage = kmsg.StringPtr(ap.msg)
		}
		appendShareFetchPartition(resp, byTopic, ap.topicID, sp)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func compareIDs(a, b metastore.TopicID) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}
