package agent

// Fetch: v4-v17.
//
// Behaviour:
//   - The connection's next request may start at once (fetch only reads).
//   - Partitions are read concurrently; index lookups the cache cannot
//     answer are one metastore round trip for the whole fetch. The fetch
//     answers by its max_wait (at least 100 ms when data must be read
//     from the bucket) with what is read by then: a partition whose read
//     is not done answers no records (never an error) and its read goes
//     on into the cache for the next fetch.
//   - Each partition gets at most its partition_max_bytes and the
//     response at most max_bytes, in whole batches, except that the first
//     partition with data always gets at least one whole batch, however
//     large (KIP-74), in request order (clients rotate their partitions
//     across requests). Reads start in an order that rotates from one
//     fetch of the connection to the next, so that when not every
//     partition can be read by the deadline, none starves. An offset
//     inside a batch returns that whole batch; the client skips the
//     records before its offset.
//   - Unknown topics answer UNKNOWN_TOPIC_OR_PARTITION (v13+, named by id:
//     UNKNOWN_TOPIC_ID); an offset below the log start or above the high
//     watermark answers OFFSET_OUT_OF_RANGE with high watermark, last
//     stable and log start offsets -1, as Kafka answers every partition
//     error; at the high watermark, no records.
//   - With fewer than min_bytes, the fetch waits up to max_wait_ms and is
//     woken at once by a commit to any of its partitions (fetch.Reader
//     watches; nothing polls). A partition error answers at once.
//   - Batches carry partition leader epoch 0, as Metadata reports.
//   - read_committed (isolation level 1) reads stop at the partition's
//     last stable offset (where the oldest open transaction begins), and
//     list the aborted transactions of what they return, so that clients
//     drop those batches (agent/txn); every answer carries the last stable
//     offset. Transaction markers are control batches at their offsets,
//     made from their index rows.
//   - Authorization (when on): each topic needs READ, else
//     TOPIC_AUTHORIZATION_FAILED for its partitions (Kafka's check for a
//     consumer fetch).
//
// Differences from Kafka: no incremental fetch sessions: a session request
// is answered with session id 0 and no error (KIP-227's "no session",
// clients then send full fetches); an incremental fetch of an unknown
// session answers FETCH_SESSION_ID_NOT_FOUND. The aborted list may name
// aborted transactions of batches the response's byte limits then left
// out (clients ignore those). No throttling; the preferred read
// replica is always -1 (every agent serves every partition).

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/fetch"
	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleFetch(ctx context.Context, r *request) (out kmsg.Response, _ error) {
	r.release()
	req := r.kreq.(*kmsg.FetchRequest)

	if req.SessionID != 0 {
		// We never gave out a session id, so an incremental fetch cannot
		// be ours; the client starts over with a full fetch.
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil
	}

	// Resolve topics once; a lookup error answers all its partitions.
	topics := make([]metastore.Topic, len(req.Topics))
	topicErrs := make([]error, len(req.Topics))
	var watched []metastore.TopicPartition
	for i, rt := range req.Topics {
		switch {
		case req.Version >= 13:
			topics[i], topicErrs[i] = a.topicByID(ctx, metastore.TopicID(rt.TopicID))
			if errors.Is(topicErrs[i], metastore.ErrUnknownTopic) {
				topicErrs[i] = kerr.UnknownTopicID
			} else if topicErrs[i] == nil && !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, topics[i].Name) {
				topicErrs[i] = kerr.TopicAuthorizationFailed
			}
		case !r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, rt.Topic):
			topicErrs[i] = kerr.TopicAuthorizationFailed
		default:
			topics[i], topicErrs[i] = a.topicByName(ctx, rt.Topic)
		}
		if topicErrs[i] != nil {
			continue
		}
		for _, rp := range rt.Partitions {
			if rp.Partition >= 0 && rp.Partition < topics[i].Partitions {
				watched = append(watched, metastore.TopicPartition{Topic: topics[i].ID, Partition: rp.Partition})
			}
		}
	}

	// Only the answered read counts as traffic out, not the reads a long
	// poll discarded.
	defer func() {
		if resp, ok := out.(*kmsg.FetchResponse); ok {
			a.metrics.topics.fetched(topics, resp)
		}
	}()

	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	for {
		// Watch before reading: a commit between the read and the wait
		// still wakes us.
		var w *fetch.Watch
		if req.MinBytes > 0 && req.MaxWaitMillis > 0 && len(watched) > 0 {
			w = a.reader.Watch(watched)
		}
		resp, total, errored := a.fetchOnce(ctx, r, req, topics, topicErrs, deadline)
		if w == nil {
			return resp, nil
		}
		if errored || total >= int64(req.MinBytes) || !time.Now().Before(deadline) || ctx.Err() != nil {
			w.Stop()
			return resp, nil
		}
		woken := w.Wait(ctx, deadline)
		w.Stop()
		if !woken && ctx.Err() != nil {
			return resp, nil
		}
		if !woken {
			// max_wait passed with no commit: what we read is current.
			return resp, nil
		}
	}
}

// minReadWait is the least a fetch waits for its partitions' reads,
// whatever its max_wait: a consumer with max_wait 0 would otherwise never
// be answered data that needs a GET (it gets it from the cache the next
// time instead, but not sooner than this).
const minReadWait = 100 * time.Millisecond

// fetchOnce reads every requested partition once. It returns the response,
// the record bytes in it, and whether any partition answered an error.
//
// Partitions are read concurrently (fetch.Reader.ReadMany: one metastore
// round trip for the index lookups the cache cannot answer), until the
// fetch's deadline: a partition whose data is not read by then answers no
// records this time (its read finishes into the cache for the next fetch),
// never an error. Reads start in an order that rotates from one fetch of
// the connection to the next, so that when not all can be read in time,
// every partition gets its turn. The response budget goes to partitions
// in request order, trimmed in whole batches, as Kafka gives it.
func (a *Agent) fetchOnce(ctx context.Context, r *request, req *kmsg.FetchRequest, topics []metastore.Topic, topicErrs []error, deadline time.Time) (*kmsg.FetchResponse, int64, bool) {
	respMax := max(int64(req.MaxBytes), 1) // still one batch for the first partition with data
	reads := make([][]*fetch.PartRead, len(req.Topics))
	var all []*fetch.PartRead
	for i := range req.Topics {
		if topicErrs[i] != nil {
			continue
		}
		reads[i] = make([]*fetch.PartRead, len(req.Topics[i].Partitions))
		for j, rp := range req.Topics[i].Partitions {
			if rp.Partition < 0 || rp.Partition >= topics[i].Partitions {
				continue
			}
			pr := &fetch.PartRead{
				TP:        metastore.TopicPartition{Topic: topics[i].ID, Partition: rp.Partition},
				Offset:    rp.FetchOffset,
				MaxBytes:  max(min(int64(rp.PartitionMaxBytes), respMax), 1),
				Committed: req.IsolationLevel == 1,
			}
			reads[i][j] = pr
			all = append(all, pr)
		}
	}
	readDeadline := deadline
	if floor := time.Now().Add(minReadWait); readDeadline.Before(floor) {
		readDeadline = floor
	}
	turn := 0
	if len(all) > 0 {
		turn = int(r.conn.fetchTurn.Add(1) % uint64(len(all)))
	}
	a.reader.ReadMany(ctx, all, turn, respMax, readDeadline)

	// The budget, in request order as Kafka gives it (clients rotate
	// their partitions across requests): only the first partition with
	// data may exceed the limits, by its first batch (KIP-74).
	budget := make(map[*fetch.PartRead][]byte, len(all))
	remaining := respMax
	var total int64
	for _, pr := range all {
		if !pr.Ready || pr.Err != nil || len(pr.Records) == 0 {
			continue
		}
		recs := trimBatches(pr.Records, min(pr.MaxBytes, remaining), total == 0)
		budget[pr] = recs
		total += int64(len(recs))
		remaining -= int64(len(recs))
	}

	resp := req.ResponseKind().(*kmsg.FetchResponse)
	var errored bool
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := &resp.Topics[i]
		*st = kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &st.Partitions[j]
			*sp = kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark = -1
			sp.LastStableOffset = -1
			sp.LogStartOffset = -1
			sp.PreferredReadReplica = -1
			// Kafka sends empty records, never null: librdkafka fails the
			// whole response on a null (-1 length) record set.
			sp.RecordBatches = []byte{}

			if err := topicErrs[i]; err != nil {
				sp.ErrorCode = errorCode(err)
				errored = true
				if sp.ErrorCode != kerr.UnknownTopicOrPartition.Code && sp.ErrorCode != kerr.UnknownTopicID.Code {
					r.logError(sp.ErrorCode, err, "topic", rt.Topic)
				}
				continue
			}
			pr := reads[i][j]
			if pr == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				errored = true
				continue
			}
			switch err := pr.Err; {
			case err == nil:
			case errors.Is(err, fetch.ErrOffsetOutOfRange):
				// Kafka answers the error with -1 offsets (set above), and
				// clients look the range up with ListOffsets.
				sp.ErrorCode = kerr.OffsetOutOfRange.Code
				errored = true
				continue
			default:
				sp.ErrorCode = errorCode(err)
				errored = true
				if sp.ErrorCode != kerr.UnknownTopicOrPartition.Code {
					r.logError(sp.ErrorCode, err, "topic", topics[i].Name, "partition", rp.Partition)
				}
				continue
			}
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = pr.Offsets.HighWatermark, pr.Offsets.LastStableOffset, pr.Offsets.LogStartOffset
			if recs := budget[pr]; recs != nil {
				sp.RecordBatches = recs
			}
			if pr.Committed {
				// Kafka answers read_committed with a list, empty when
				// nothing was aborted (null is read_uncommitted's).
				sp.AbortedTransactions = make([]kmsg.FetchResponseTopicPartitionAbortedTransaction, 0, len(pr.Aborted))
				for _, ab := range pr.Aborted {
					at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
					at.ProducerID, at.FirstOffset = ab.ProducerID, ab.FirstOffset
					sp.AbortedTransactions = append(sp.AbortedTransactions, at)
				}
			}
		}
	}
	return resp, total, errored
}

// trimBatches returns the leading whole batches of recs that fit limit,
// and at least the first one when minOne.
func trimBatches(recs []byte, limit int64, minOne bool) []byte {
	if int64(len(recs)) <= limit {
		return recs
	}
	n := 0
	for n+12 <= len(recs) {
		size := int(int32(binary.BigEndian.Uint32(recs[n+8:]))) + 12
		if size < 12 || n+size > len(recs) || int64(n+size) > limit && !(minOne && n == 0) {
			break
		}
		n += size
	}
	return recs[:n]
}
