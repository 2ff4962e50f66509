package agent

// Fetch: v4-v17.
//
// Behaviour:
//   - The connection's next request may start at once (fetch only reads).
//   - Partitions are read in request order. Each gets at most its
//     partition_max_bytes and the response at most max_bytes, in whole
//     batches, except that the first partition with data always gets at
//     least one whole batch, however large (KIP-74). An offset inside a
//     batch returns that whole batch; the client skips the records before
//     its offset.
//   - Unknown topics answer UNKNOWN_TOPIC_OR_PARTITION (v13+, named by id:
//     UNKNOWN_TOPIC_ID); an offset below the log start or above the high
//     watermark answers OFFSET_OUT_OF_RANGE with both; at the high
//     watermark, no records.
//   - With fewer than min_bytes, the fetch waits up to max_wait_ms and is
//     woken at once by a commit to any of its partitions (fetch.Reader
//     watches; nothing polls). A partition error answers at once.
//   - Batches carry partition leader epoch 0, as Metadata reports.
//
// Differences from Kafka: no incremental fetch sessions: a session request
// is answered with session id 0 and no error (KIP-227's "no session",
// clients then send full fetches); an incremental fetch of an unknown
// session answers FETCH_SESSION_ID_NOT_FOUND. There are no transactions,
// so read_committed equals read_uncommitted (last stable offset = high
// watermark, no aborted transactions). No throttling; the preferred read
// replica is always -1 (every agent serves every partition).

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
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
		if req.Version >= 13 {
			topics[i], topicErrs[i] = a.topicByID(ctx, metastore.TopicID(rt.TopicID))
			if errors.Is(topicErrs[i], metastore.ErrUnknownTopic) {
				topicErrs[i] = kerr.UnknownTopicID
			}
		} else {
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
		resp, total, errored := a.fetchOnce(ctx, r, req, topics, topicErrs)
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

// fetchReadConcurrency bounds the partitions of one fetch read at once: a
// consumer of many partitions with cold caches waits for about one range
// GET, not one per partition.
const fetchReadConcurrency = 8

// partRead is one partition's read, done before the response is assembled.
type partRead struct {
	tp     metastore.TopicPartition
	offset int64
	limit  int64
	recs   []byte
	offs   metastore.PartitionOffsets
	err    error
}

// fetchOnce reads every requested partition once. It returns the response,
// the record bytes in it, and whether any partition answered an error.
//
// Partitions are read concurrently, each up to its own limit and the
// response's; the response is then assembled in request order, trimming
// to the response budget in whole batches. What is read but not returned
// stays in the chunk cache for the next fetch.
func (a *Agent) fetchOnce(ctx context.Context, r *request, req *kmsg.FetchRequest, topics []metastore.Topic, topicErrs []error) (*kmsg.FetchResponse, int64, bool) {
	respMax := max(int64(req.MaxBytes), 1) // still one batch for the first partition with data
	reads := make([][]*partRead, len(req.Topics))
	var all []*partRead
	for i := range req.Topics {
		if topicErrs[i] != nil {
			continue
		}
		reads[i] = make([]*partRead, len(req.Topics[i].Partitions))
		for j, rp := range req.Topics[i].Partitions {
			if rp.Partition < 0 || rp.Partition >= topics[i].Partitions {
				continue
			}
			pr := &partRead{
				tp:     metastore.TopicPartition{Topic: topics[i].ID, Partition: rp.Partition},
				offset: rp.FetchOffset,
				limit:  max(min(int64(rp.PartitionMaxBytes), respMax), 1),
			}
			reads[i][j] = pr
			all = append(all, pr)
		}
	}
	read := func(pr *partRead) { pr.recs, pr.offs, pr.err = a.reader.Read(ctx, pr.tp, pr.offset, pr.limit) }
	if len(all) == 1 {
		read(all[0])
	} else {
		var wg sync.WaitGroup
		sem := make(chan struct{}, fetchReadConcurrency)
		for _, pr := range all {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				read(pr)
			})
		}
		wg.Wait()
	}

	resp := req.ResponseKind().(*kmsg.FetchResponse)
	remaining := respMax
	var (
		total   int64
		errored bool
	)
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
			switch err := pr.err; {
			case err == nil:
			case errors.Is(err, fetch.ErrOffsetOutOfRange):
				sp.ErrorCode = kerr.OffsetOutOfRange.Code
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = pr.offs.HighWatermark, pr.offs.HighWatermark, pr.offs.LogStartOffset
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
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = pr.offs.HighWatermark, pr.offs.HighWatermark, pr.offs.LogStartOffset
			// Only the first partition with data may exceed the limits,
			// by its first batch (KIP-74).
			recs := trimBatches(pr.recs, min(int64(rp.PartitionMaxBytes), remaining), total == 0)
			if recs != nil {
				sp.RecordBatches = recs
			}
			total += int64(len(recs))
			remaining -= int64(len(recs))
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
