package loadgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ConsumeConfig is one consumer's run.
type ConsumeConfig struct {
	Brokers []string
	Client  ClientOpts
	Topic   string
	// StopAfterBytes ends the run once this many value bytes arrived;
	// 0 runs until ctx ends.
	StopAfterBytes int64
	// StopAt, when not nil and positive, also ends the run once that many
	// value bytes arrived; a producer running alongside sets it when it
	// knows how much it got acknowledged.
	StopAt *atomic.Int64
	// StartOffsets, when not nil, names the partitions to read and the
	// offset to start each at (a tail consumer passes the end offsets it
	// listed before load started, so it misses nothing and reads nothing
	// old); nil reads every partition from the log start (replay).
	StartOffsets map[int32]int64
	// ReadCommitted reads at isolation level read_committed (up to the
	// last stable offset) instead of read_uncommitted.
	ReadCommitted bool
}

// ConsumeResult is what a consumer measured.
type ConsumeResult struct {
	Records int64
	Bytes   int64         // value bytes received
	Elapsed time.Duration // start of the run to the last record received
	// EndToEnd holds, per record, receipt time minus the send time the
	// producer wrote into the value (same process, same clock).
	EndToEnd *Samples
}

// Throughput is value bytes received per second.
func (r ConsumeResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / r.Elapsed.Seconds()
}

// Consume reads cfg.Topic (every partition, no group) until ctx ends or
// StopAfterBytes arrived. It returns what was received; ctx ending is
// not an error.
func Consume(ctx context.Context, cfg ConsumeConfig) (ConsumeResult, error) {
	opts := append(cfg.Client.kgoOpts(cfg.Brokers), kgo.ClientID("silt-bench-consumer"))
	if cfg.StartOffsets != nil {
		parts := map[int32]kgo.Offset{}
		for p, o := range cfg.StartOffsets {
			parts[p] = kgo.NewOffset().At(o)
		}
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: parts}))
	} else {
		opts = append(opts, kgo.ConsumeTopics(cfg.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}
	if cfg.ReadCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return ConsumeResult{}, fmt.Errorf("consumer client: %w", err)
	}
	defer cl.Close()
	res := ConsumeResult{EndToEnd: &Samples{}}
	start := time.Now()
	var last time.Time
	for ctx.Err() == nil {
		// A bounded poll, so a StopAt set while no data flows is noticed.
		pollCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		fs := cl.PollFetches(pollCtx)
		cancel()
		now := time.Now()
		fs.EachRecord(func(r *kgo.Record) {
			res.Records++
			res.Bytes += int64(len(r.Value))
			if len(r.Value) >= 8 {
				sent := int64(binary.BigEndian.Uint64(r.Value))
				if d := now.Sub(time.Unix(0, sent)); d >= 0 && d < time.Hour {
					res.EndToEnd.Add(d)
				}
			}
			last = now
		})
		if cfg.StopAfterBytes > 0 && res.Bytes >= cfg.StopAfterBytes {
			break
		}
		if cfg.StopAt != nil {
			if n := cfg.StopAt.Load(); n > 0 && res.Bytes >= n {
				break
			}
		}
	}
	if !last.IsZero() {
		res.Elapsed = last.Sub(start)
	}
	return res, nil
}
