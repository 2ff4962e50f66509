package agent

// ListOffsets: v0-v10.
//
// Behaviour, per partition:
//   - -1 (latest): the high watermark; with READ_COMMITTED (isolation
//     level 1, v2+) the last stable offset, where the oldest open
//     transaction begins.
//   - -2 (earliest) and -4 (earliest local, v8+): the log start offset.
//   - -3 (max timestamp, v7+): the offset and timestamp of the record with
//     the largest timestamp (the first such record); -1/-1 for an empty
//     partition.
//   - -5 (latest tiered, v9+): everything committed is in object storage,
//     so the last record's offset (high watermark - 1); -1 for an empty
//     log.
//   - v10's timeout is accepted. The earliest and latest lookups of the
//     whole request are one metastore round trip (or the read path's
//     cached offsets), whatever the partition count.
//   - a timestamp: the offset and timestamp of the first record at or
//     after the log start offset whose timestamp is at or after it; -1/-1
//     when none. The batch index finds the entry (one max timestamp per
//     batch, or per chunk of a compacted object); the agent then reads the
//     entry's batches and walks their records, as Kafka walks its segment.
//   - With READ_COMMITTED, a timestamp or max-timestamp lookup whose
//     record lies at or after the last stable offset answers -1/-1, as
//     Kafka filters it.
//   - v0 answers old-style offsets: a one-element list (empty when none).
//   - Leader epoch (v4+) is 0 for a found offset, -1 otherwise; a current
//     leader epoch above 0 answers UNKNOWN_LEADER_EPOCH (silt's epoch is
//     always 0).
//   - Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION; a partition
//     listed twice: INVALID_REQUEST, answered once.
//
// Authorization (when on): DESCRIBE on each topic, else
// TOPIC_AUTHORIZATION_FAILED for its partitions.
//
// Differences from Kafka: for a LogAppendTime batch every record has the
// batch's timestamp, so both lookups answer the batch's first record. The
// max-timestamp lookup (-3) keeps a running maximum from the start of the
// log: when retention removed the record with the largest timestamp and
// every later one is smaller, it answers the record with the largest
// timestamp of the first remaining index entry until newer records pass
// that timestamp (Kafka answers the largest remaining).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleListOffsets(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)

	type tp struct {
		topic     string
		partition int32
	}
	count := make(map[tp]int)
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			count[tp{rt.Topic, rp.Partition}]++
		}
	}
	// Resolve topics, and read the offsets of every partition asking
	// for the earliest or latest in one store round trip.
	type part struct {
		topic metastore.Topic
		err   error
		tp    metastore.TopicPartition
		offs  *metastore.OffsetsResult
	}
	parts := make([][]part, len(req.Topics))
	var bulk []metastore.TopicPartition
	var bulkAt [][2]int
	for i, rt := range req.Topics {
		var (
			t    metastore.Topic
			terr error = kerr.TopicAuthorizationFailed
		)
		if r.authorized(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, rt.Topic) {
			t, terr = a.topicByName(ctx, rt.Topic)
		}
		parts[i] = make([]part, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			p := part{topic: t, err: terr, tp: metastore.TopicPartition{Topic: t.ID, Partition: rp.Partition}}
			switch {
			case count[tp{rt.Topic, rp.Partition}] > 1:
				p.err = kerr.InvalidRequest
			case terr != nil:
			case rp.Partition < 0 || rp.Partition >= t.Partitions:
				p.err = metastore.ErrUnknownTopicOrPartition
			case req.Version >= 4 && rp.CurrentLeaderEpoch > 0:
				p.err = kerr.UnknownLeaderEpoch
			case rp.Timestamp == -1 || rp.Timestamp == -2 || rp.Timestamp == -4 || rp.Timestamp == -5:
				bulk = append(bulk, p.tp)
				bulkAt = append(bulkAt, [2]int{i, j})
			}
			parts[i][j] = p
		}
	}
	committed := req.Version >= 2 && req.IsolationLevel == 1
	if len(bulk) > 0 {
		res, err := a.reader.OffsetsMany(ctx, bulk)
		for k, at := range bulkAt {
			p := &parts[at[0]][at[1]]
			if err != nil {
				p.err = err
				continue
			}
			p.offs = &res[k]
		}
	}
	answered := make(map[tp]bool)
	for i, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for j, rp := range rt.Partitions {
			if answered[tp{rt.Topic, rp.Partition}] {
				continue // a duplicate gets one answer, as in Kafka
			}
			answered[tp{rt.Topic, rp.Partition}] = true
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			p := parts[i][j]
			err := p.err
			switch {
			case err != nil:
			case p.offs != nil:
				err = endOffset(p.offs, rp.Timestamp, committed, &sp)
			default:
				err = a.listOffset(ctx, p.tp, rp.Timestamp, committed, &sp)
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
				sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
				if sp.ErrorCode != kerr.UnknownTopicOrPartition.Code && sp.ErrorCode != kerr.TopicAuthorizationFailed.Code {
					r.logError(sp.ErrorCode, err, "topic", rt.Topic, "partition", rp.Partition)
				}
			} else if req.Version == 0 {
				if sp.Offset >= 0 && rp.MaxNumOffsets > 0 {
					sp.OldStyleOffsets = []int64{sp.Offset}
				} else {
					sp.OldStyleOffsets = []int64{}
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// endOffset answers the earliest and latest lookups (-1, -2, -4, -5) from
// a partition's offsets; committed is READ_COMMITTED.
func endOffset(r *metastore.OffsetsResult, ts int64, committed bool, sp *kmsg.ListOffsetsResponseTopicPartition) error {
	sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
	if r.Err != nil {
		return r.Err
	}
	o := r.Offsets
	switch ts {
	case -1:
		sp.Offset = o.HighWatermark
		if committed {
			sp.Offset = o.LastStableOffset
		}
	case -2, -4:
		sp.Offset = o.LogStartOffset
	case -5:
		if o.HighWatermark == o.LogStartOffset {
			return nil // no record: offset -1, as Kafka answers
		}
		sp.Offset = o.HighWatermark - 1
	}
	sp.LeaderEpoch = 0
	return nil
}

// listOffset fills sp's offset, timestamp and leader epoch; committed is
// READ_COMMITTED.
func (a *Agent) listOffset(ctx context.Context, tp metastore.TopicPartition, ts int64, committed bool, sp *kmsg.ListOffsetsResponseTopicPartition) error {
	sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
	switch ts {
	case -1, -2, -4:
		o, err := a.store.Offsets(ctx, tp)
		if err != nil {
			return err
		}
		return endOffset(&metastore.OffsetsResult{Offsets: o}, ts, committed, sp)
	case -5:
		o, err := a.store.Offsets(ctx, tp)
		if err != nil {
			return err
		}
		if o.HighWatermark == o.LogStartOffset {
			return nil // no record: offset -1, as Kafka answers
		}
		sp.Offset = o.HighWatermark - 1
	case -3:
		o, err := a.reader.Offsets(ctx, tp)
		if err != nil {
			return err
		}
		e, found, err := a.store.MaxTimestamp(ctx, tp)
		if err != nil || !found {
			return err
		}
		off, rts, ok, err := a.recordByTimestamp(ctx, tp, e, o.LogStartOffset, e.MaxTimestamp, true)
		if err != nil || !ok || committed && off >= o.LastStableOffset {
			return err
		}
		sp.Offset, sp.Timestamp = off, rts
	default:
		o, err := a.reader.Offsets(ctx, tp)
		if err != nil {
			return err
		}
		// The first entry whose running max reaches ts holds the record,
		// unless the running max was raised by an entry that retention
		// removed since: then the record is in a later entry.
		from := o.LogStartOffset
		found := false
		for range maxTimestampEntries {
			e, ok, err := a.store.OffsetForTimestamp(ctx, tp, ts, from)
			if err != nil || !ok {
				return err
			}
			off, rts, ok, err := a.recordByTimestamp(ctx, tp, e, o.LogStartOffset, ts, false)
			if err != nil {
				return err
			}
			if ok {
				sp.Offset, sp.Timestamp, found = off, rts, true
				break
			}
			from = e.LastOffset + 1
		}
		if !found {
			return nil
		}
		if committed && sp.Offset >= o.LastStableOffset {
			sp.Offset, sp.Timestamp = -1, -1
			return nil
		}
	}
	sp.LeaderEpoch = 0
	return nil
}

// maxTimestampEntries bounds the index entries a timestamp lookup reads
// when entries do not hold the record their running max promises (see
// listOffset).
const maxTimestampEntries = 8

// timestampReadBytes is how much one read of a timestamp lookup asks for.
const timestampReadBytes = 4 << 20

// errCorruptRecords means a stored batch's records do not parse; the batch
// passed validation on produce, so this is storage corruption.
var errCorruptRecords = errors.New("stored record batch does not parse")

// recordByTimestamp reads the batches of one index entry e, from the log
// start offset on, and returns the offset and timestamp of the first
// record whose timestamp is at or after ts (exact: the first with
// timestamp ts). ok is false when the entry holds none.
func (a *Agent) recordByTimestamp(ctx context.Context, tp metastore.TopicPartition, e metastore.Batch, logStart, ts int64, exact bool) (offset, timestamp int64, ok bool, err error) {
	next := max(e.BaseOffset, logStart)
	for next <= e.LastOffset {
		data, _, err := a.reader.Read(ctx, tp, next, timestampReadBytes)
		if err != nil {
			return -1, -1, false, err
		}
		if len(data) == 0 {
			return -1, -1, false, nil
		}
		for len(data) > 0 {
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(data); err != nil {
				return -1, -1, false, fmt.Errorf("timestamp lookup at offset %d: %w", next, err)
			}
			data = data[int(rb.Length)+12:]
			last := rb.FirstOffset + int64(rb.LastOffsetDelta)
			if rb.FirstOffset > e.LastOffset {
				return -1, -1, false, nil
			}
			if off, rts, found, err := batchRecordByTimestamp(&rb, next, ts, exact); err != nil || found {
				return off, rts, found, err
			}
			next = last + 1
		}
	}
	return -1, -1, false, nil
}

// batchRecordByTimestamp finds in one batch the first record at or after
// offset from whose timestamp is at or after ts (exact: equal to ts).
func batchRecordByTimestamp(rb *kmsg.RecordBatch, from, ts int64, exact bool) (offset, timestamp int64, found bool, err error) {
	match := func(rts int64) bool { return rts == ts || !exact && rts > ts }
	if rb.Attributes&0x08 != 0 { // LogAppendTime: every record has MaxTimestamp
		if match(rb.MaxTimestamp) {
			return max(rb.FirstOffset, from), rb.MaxTimestamp, true, nil
		}
		return -1, -1, false, nil
	}
	records := rb.Records
	if codec := rb.Attributes & 0x07; codec != 0 {
		if records, err = kgo.DefaultDecompressor().Decompress(records, kgo.CompressionCodecType(codec)); err != nil {
			return -1, -1, false, fmt.Errorf("timestamp lookup at offset %d: %w", rb.FirstOffset, err)
		}
	}
	for i := int32(0); i < rb.NumRecords && len(records) > 0; i++ {
		length, n := binary.Varint(records)
		if n <= 0 || length < 0 || int64(len(records)-n) < length {
			return -1, -1, false, fmt.Errorf("timestamp lookup at offset %d: %w", rb.FirstOffset, errCorruptRecords)
		}
		var r kmsg.Record
		if err := r.ReadFrom(records[:n+int(length)]); err != nil {
			return -1, -1, false, fmt.Errorf("timestamp lookup at offset %d: %w", rb.FirstOffset, err)
		}
		records = records[n+int(length):]
		rts := rb.FirstTimestamp + r.TimestampDelta64
		roff := rb.FirstOffset + int64(r.OffsetDelta)
		if roff >= from && match(rts) {
			return roff, rts, true, nil
		}
	}
	return -1, -1, false, nil
}
