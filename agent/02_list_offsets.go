package agent

// ListOffsets: v0-v10.
//
// Behaviour, per partition:
//   - -1 (latest): the high watermark. With no transactions the last
//     stable offset is the high watermark, so READ_COMMITTED answers the
//     same.
//   - -2 (earliest) and -4 (earliest local, v8+): the log start offset.
//   - -3 (max timestamp, v7+): the offset and timestamp of the batch with
//     the largest max timestamp; -1/-1 for an empty partition.
//   - -5 (latest tiered, v9+): everything committed is in object storage,
//     so the last record's offset (high watermark - 1); -1 for an empty
//     log.
//   - v10's timeout is accepted; lookups are single metastore reads.
//   - a timestamp: the first batch whose max timestamp is at or after it
//     (OffsetForTimestamp), with that timestamp; -1/-1 when none.
//   - v0 answers old-style offsets: a one-element list (empty when none).
//   - Leader epoch (v4+) is 0 for a found offset, -1 otherwise; a current
//     leader epoch above 0 answers UNKNOWN_LEADER_EPOCH (silt's epoch is
//     always 0).
//   - Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION; a partition
//     listed twice: INVALID_REQUEST.
//
// Differences from Kafka: a timestamp lookup answers the base offset of
// the first batch that holds a record at or after the timestamp, not that
// record's exact offset (the batch index keeps one max timestamp per
// batch); consumers skip the earlier records of the batch by timestamp
// only if they check it, so they may see a few records from before it.
// -3 answers the last offset of that batch.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
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
		off, mts, found, err := a.store.MaxTimestamp(ctx, tp)
		if err != nil || !found {
			return err
		}
		sp.Offset, sp.Timestamp = off, mts
	default:
		off, mts, found, err := a.store.OffsetForTimestamp(ctx, tp, ts)
		if err != nil || !found {
			return err
		}
		sp.Offset, sp.Timestamp = off, mts
	}
	sp.LeaderEpoch = 0
	return nil
}
