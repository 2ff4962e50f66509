package faults

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ReadThrough reads every partition of topic from its log start to its
// end through the agent at addr alone (not through the partitions'
// "leaders": every agent must serve every partition the same way).
// readCommitted reads up to the last stable offset and leaves aborted
// transactions out. A partition that cannot be read has its Err set.
func ReadThrough(ctx context.Context, addr, topic string, partitions int32, readCommitted bool) map[int32]PartitionRead {
	out := map[int32]PartitionRead{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RetryTimeout(30*time.Second))
	if err != nil {
		for p := range partitions {
			out[p] = PartitionRead{Err: err.Error()}
		}
		return out
	}
	defer cl.Close()
	br := cl.SeedBrokers()[0]
	isolation := int8(0)
	if readCommitted {
		isolation = 1
	}
	id, err := topicID(ctx, br, topic)
	var starts, ends map[int32]int64
	if err == nil {
		starts, ends, err = listOffsets(ctx, br, topic, partitions, isolation)
	}
	for p := range partitions {
		if err != nil {
			out[p] = PartitionRead{Err: err.Error()}
			continue
		}
		pr := PartitionRead{LogStart: starts[p], HighWatermark: ends[p]}
		pr.Records, err = readPartition(ctx, br, topic, id, p, starts[p], ends[p], isolation)
		if err != nil {
			pr.Err = err.Error()
		}
		out[p] = pr
		err = nil
	}
	return out
}

// topicID asks one broker for a topic's id.
func topicID(ctx context.Context, br *kgo.Broker, topic string) ([16]byte, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := br.RetriableRequest(ctx, req)
	if err != nil {
		return [16]byte{}, fmt.Errorf("metadata: %w", err)
	}
	for _, t := range resp.(*kmsg.MetadataResponse).Topics {
		if t.Topic != nil && *t.Topic == topic {
			return t.TopicID, kerr.ErrorForCode(t.ErrorCode)
		}
	}
	return [16]byte{}, fmt.Errorf("metadata: topic %s missing", topic)
}

// listOffsets asks one broker for every partition's earliest and latest
// offsets (the latest is the last stable offset for read_committed).
func listOffsets(ctx context.Context, br *kgo.Broker, topic string, partitions int32, isolation int8) (starts, ends map[int32]int64, err error) {
	ask := func(ts int64) (map[int32]int64, error) {
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = 7
		req.IsolationLevel = isolation
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		for p := range partitions {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = p, ts
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		var last error
		for attempt := 0; attempt < 20; attempt++ {
			resp, err := br.RetriableRequest(ctx, req)
			if err != nil {
				return nil, fmt.Errorf("ListOffsets: %w", err)
			}
			out := map[int32]int64{}
			last = nil
			for _, t := range resp.(*kmsg.ListOffsetsResponse).Topics {
				for _, p := range t.Partitions {
					if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
						last = fmt.Errorf("ListOffsets partition %d: %w", p.Partition, e)
						continue
					}
					out[p.Partition] = p.Offset
				}
			}
			if last == nil && len(out) == int(partitions) {
				return out, nil
			}
			if last == nil {
				last = fmt.Errorf("ListOffsets answered %d of %d partitions", len(out), partitions)
			}
			if !Retriable(last) || !sleepCtx(ctx, 500*time.Millisecond) {
				break
			}
		}
		return nil, last
	}
	if starts, err = ask(-2); err != nil {
		return nil, nil, err
	}
	ends, err = ask(-1)
	return starts, ends, err
}

// readPartition fetches [from, end) of one partition from one broker.
func readPartition(ctx context.Context, br *kgo.Broker, topic string, id [16]byte, p int32, from, end int64, isolation int8) ([]Record, error) {
	var recs []Record
	off := from
	stalls := 0
	for off < end {
		req := kmsg.NewPtrFetchRequest()
		req.Version = 11
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 100, 1, 8<<20
		req.IsolationLevel = isolation
		rt := kmsg.NewFetchRequestTopic()
		// franz-go sends the highest version both sides support: by
		// topic id from v13 on.
		rt.Topic, rt.TopicID = topic, id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, off, 4<<20
		rp.LogStartOffset = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := br.RetriableRequest(ctx, req)
		if err != nil {
			return recs, fmt.Errorf("fetch at %d: %w", off, err)
		}
		fr := resp.(*kmsg.FetchResponse)
		if e := kerr.ErrorForCode(fr.ErrorCode); e != nil {
			return recs, fmt.Errorf("fetch at %d: %w", off, e)
		}
		var part *kmsg.FetchResponseTopicPartition
		for i := range fr.Topics {
			for j := range fr.Topics[i].Partitions {
				if fr.Topics[i].Partitions[j].Partition == p {
					part = &fr.Topics[i].Partitions[j]
				}
			}
		}
		if part == nil {
			return recs, fmt.Errorf("fetch at %d: partition missing from the response", off)
		}
		level := kgo.ReadUncommitted()
		if isolation == 1 {
			level = kgo.ReadCommitted()
		}
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			Offset: off, IsolationLevel: level, Topic: topic, Partition: p,
		}, part, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			if Retriable(fp.Err) && stalls < 20 && sleepCtx(ctx, 500*time.Millisecond) {
				stalls++
				continue
			}
			return recs, fmt.Errorf("fetch at %d: %w", off, fp.Err)
		}
		for _, r := range fp.Records {
			recs = append(recs, Record{Offset: r.Offset, Value: string(r.Value)})
		}
		switch {
		case next > off:
			off, stalls = next, 0
		case len(fp.Records) > 0:
			off, stalls = fp.Records[len(fp.Records)-1].Offset+1, 0
		default:
			// Nothing returned below the end: the agent is behind the
			// end it reported, or the data is unreadable for now.
			stalls++
			if stalls > 20 || !sleepCtx(ctx, 500*time.Millisecond) {
				return recs, fmt.Errorf("fetch at %d: no records returned below the end offset %d", off, end)
			}
		}
	}
	return recs, nil
}

// sleepCtx waits d (a retry's backoff) unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
