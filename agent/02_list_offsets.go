package agent

// ListOffsets: v0-v10.
//
// Behaviour, per partition:
//   - -1 (latest): the high watermark. With no transactions the last
//     stable offset is the high watermark, so READ_COMMITTED answers the
//     same.
//   - -2 (earliest) and -4 (earliest local, v8+): the log start offset.
//   - -3 (max timestamp, v7+): the offset and timestamp of the record with
//     the largest timestamp (the first such record); -1/-1 for an empty
//     partition.
//   - -5 (latest tiered, v9+): everything committed is in object storage,
//     so the last record's offset (high watermark - 1); -1 for an empty
//     log.
//   - v10's timeout is accepted; lookups are single metastore reads.
//   - a timestamp: the offset and timestamp of the first record whose
//     timestamp is at or after it; -1/-1 when none. The batch index finds
//     the batch (one max timestamp per batch); the agent then reads that
//     one batch and walks its records, as Kafka walks its segment.
//   - v0 answers old-style offsets: a one-element list (empty when none).
//   - Leader epoch (v4+) is 0 for a found offset, -1 otherwise; a current
//     leader epoch above 0 answers UNKNOWN_LEADER_EPOCH (silt's epoch is
//     always 0).
//   - Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION; a partition
//     listed twice: INVALID_REQUEST.
//
// Differences from Kafka: for a LogAppendTime batch every record has the
// batch's timestamp, so both lookups answer the batch's first record.

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
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		t, terr := a.topicByName(ctx, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			var err error
			switch {
			case count[tp{rt.Topic, rp.Partition}] > 1:
				err = kerr.InvalidRequest
			case terr != nil:
				err = terr
			case rp.Partition < 0 || rp.Partition >= t.Partitions:
				err = metastore.ErrUnknownTopicOrPartition
			case req.Version >= 4 && rp.CurrentLeaderEpoch > 0:
				err = kerr.UnknownLeaderEpoch
			default:
				err = a.listOffset(ctx, metastore.TopicPartition{Topic: t.ID, Partition: rp.Partition}, rp.Timestamp, &sp)
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
				sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
				if sp.ErrorCode != kerr.UnknownTopicOrPartition.Code {
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

// listOffset fills sp's offset, timestamp and leader epoch.
func (a *Agent) listOffset(ctx context.Context, tp metastore.TopicPartition, ts int64, sp *kmsg.ListOffsetsResponseTopicPartition) error {
	sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
	switch ts {
	case -1, -2, -4:
		o, err := a.store.Offsets(ctx, tp)
		if err != nil {
			return err
		}
		sp.Offset = o.HighWatermark
		if ts != -1 {
			sp.Offset = o.LogStartOffset
		}
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
		off, _, found, err := a.store.MaxTimestamp(ctx, tp)
		if err != nil || !found {
			return err
		}
		if sp.Offset, sp.Timestamp, err = a.recordByTimestamp(ctx, tp, off, -1); err != nil {
			return err
		}
	default:
		off, _, found, err := a.store.OffsetForTimestamp(ctx, tp, ts)
		if err != nil || !found {
			return err
		}
		if sp.Offset, sp.Timestamp, err = a.recordByTimestamp(ctx, tp, off, ts); err != nil {
			return err
		}
	}
	sp.LeaderEpoch = 0
	return nil
}

// errCorruptRecords means a stored batch's records do not parse; the batch
// passed validation on produce, so this is storage corruption.
var errCorruptRecords = errors.New("stored record batch does not parse")

// recordByTimestamp reads the batch holding offset and returns the offset and
// timestamp of its first record with a timestamp at or after ts, or, for
// ts -1, of its first record with the largest timestamp.
func (a *Agent) recordByTimestamp(ctx context.Context, tp metastore.TopicPartition, offset, ts int64) (int64, int64, error) {
	data, _, err := a.reader.Read(ctx, tp, offset, 1)
	if err != nil {
		return -1, -1, err
	}
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(data); err != nil {
		return -1, -1, fmt.Errorf("timestamp lookup at offset %d: %w", offset, err)
	}
	if rb.Attributes&0x08 != 0 { // LogAppendTime: every record has MaxTimestamp
		return rb.FirstOffset, rb.MaxTimestamp, nil
	}
	records := rb.Records
	if codec := rb.Attributes & 0x07; codec != 0 {
		if records, err = kgo.DefaultDecompressor().Decompress(records, kgo.CompressionCodecType(codec)); err != nil {
			return -1, -1, fmt.Errorf("timestamp lookup at offset %d: %w", offset, err)
		}
	}
	bestOff, bestTS := int64(-1), int64(-1)
	for i := int32(0); i < rb.NumRecords && len(records) > 0; i++ {
		length, n := binary.Varint(records)
		if n <= 0 || length < 0 || int64(len(records)-n) < length {
			return -1, -1, fmt.Errorf("timestamp lookup at offset %d: %w", offset, errCorruptRecords)
		}
		var r kmsg.Record
		if err := r.ReadFrom(records[:n+int(length)]); err != nil {
			return -1, -1, fmt.Errorf("timestamp lookup at offset %d: %w", offset, err)
		}
		records = records[n+int(length):]
		rts := rb.FirstTimestamp + r.TimestampDelta64
		roff := rb.FirstOffset + int64(r.OffsetDelta)
		switch {
		case ts >= 0 && rts >= ts:
			return roff, rts, nil
		case ts < 0 && rts > bestTS:
			bestOff, bestTS = roff, rts
		}
	}
	if bestOff < 0 { // the index said a record qualifies: fall back to the batch
		return rb.FirstOffset, rb.MaxTimestamp, nil
	}
	return bestOff, bestTS, nil
}
