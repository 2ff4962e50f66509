package loadgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceResult is what a produce phase measured.
type ProduceResult struct {
	Records  int64         // acknowledged records
	Bytes    int64         // acknowledged value bytes
	Errors   int64         // records that failed
	FirstErr error         // the first failure, if any
	Elapsed  time.Duration // first send to last acknowledgement
	// Latency holds, per acknowledged record, the time from the Produce
	// call to its acknowledgement (acks=all).
	Latency *Samples
}

// Throughput is acknowledged value bytes per second.
func (r ProduceResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / r.Elapsed.Seconds()
}

func codec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("compression %q: not none, gzip, snappy, lz4 or zstd", name)
}

// Produce runs cfg.Producers clients producing to cfg.Topic with
// acks=all (and franz-go's default idempotence unless cfg.MaxInflight is
// set) until cfg.Duration has
// passed or cfg.MaxBytes were sent, then waits for every outstanding
// record. It returns an error only when the load could not run at all;
// failed records are counted in the result.
func Produce(ctx context.Context, cfg Config) (ProduceResult, error) {
	if err := cfg.Validate(); err != nil {
		return ProduceResult{}, err
	}
	comp, _ := codec(cfg.Compression)
	clients := make([]*kgo.Client, cfg.Producers)
	for i := range clients {
		opts := append(cfg.Client.kgoOpts(cfg.Brokers),
			kgo.DefaultProduceTopic(cfg.Topic),
			kgo.ClientID(fmt.Sprintf("silt-bench-producer-%d", i)),
		)
		if !cfg.ClientDefaults {
			opts = append(opts,
				kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.ProducerBatchCompression(comp),
				kgo.MaxBufferedRecords(cfg.MaxBufferedRecords),
				// franz-go's default linger (10 ms) applies, as in an application.
			)
		}
		if cfg.MaxInflight > 0 && !cfg.ClientDefaults {
			opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(cfg.MaxInflight))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			for _, c := range clients[:i] {
				c.Close()
			}
			return ProduceResult{}, fmt.Errorf("producer client: %w", err)
		}
		clients[i] = cl
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()

	var (
		res      = ProduceResult{Latency: &Samples{}}
		records  atomic.Int64
		bytes    atomic.Int64
		errs     atomic.Int64
		sent     atomic.Int64 // value bytes handed to a client
		firstErr firstError
		lastAck  atomic.Int64 // UnixNano of the latest acknowledgement
		wg       sync.WaitGroup
		start    = time.Now()
		deadline = start.Add(cfg.Duration)
	)
	perProducerRate := cfg.Rate / float64(cfg.Producers)
	for _, cl := range clients {
		// Each sender goroutine is owned by this call and stops at the
		// deadline, at MaxBytes or when ctx ends.
		wg.Go(func() {
			fill := newValueFiller(cfg.payload())
			send := func() bool {
				if cfg.MaxBytes > 0 && sent.Add(int64(cfg.RecordSize)) > cfg.MaxBytes {
					return false
				}
				// A fresh value per record: the client owns it until the
				// record is acknowledged.
				v := make([]byte, cfg.RecordSize)
				fill.fill(v)
				t0 := time.Now()
				binary.BigEndian.PutUint64(v, uint64(t0.UnixNano()))
				cl.Produce(ctx, &kgo.Record{Value: v}, func(r *kgo.Record, err error) {
					now := time.Now()
					if err != nil {
						errs.Add(1)
						firstErr.set(err)
						return
					}
					res.Latency.Add(now.Sub(t0))
					records.Add(1)
					bytes.Add(int64(len(r.Value)))
					for {
						prev := lastAck.Load()
						if now.UnixNano() <= prev || lastAck.CompareAndSwap(prev, now.UnixNano()) {
							break
						}
					}
				})
				return true
			}
			if perProducerRate <= 0 {
				// The clock is read once per 64 records: at saturation a
				// time.Now per record is a measurable share of the load
				// generator's CPU. The first 64 go out regardless: on a
				// loaded machine this goroutine may first run after a
				// short phase's (the warmup's) deadline, and a producer
				// that sent nothing looks like a cluster that accepted
				// nothing.
				for i := 0; i < 64 || i%64 != 0 || ctx.Err() == nil && time.Now().Before(deadline); i++ {
					if !send() {
						return
					}
				}
				return
			}
			// Paced: every millisecond, send what the rate owes by now, so
			// the load is smooth without a timer per record.
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			var n int64
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-tick.C:
					if !now.Before(deadline) {
						return
					}
					owed := int64(now.Sub(start).Seconds()*perProducerRate/float64(cfg.RecordSize)) + 1
					for ; n < owed; n++ {
						if !send() {
							return
						}
					}
				}
			}
		})
	}
	wg.Wait()
	// Wait for every outstanding record, bounded: a cluster that stopped
	// answering must not hang the benchmark.
	flushCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, cl := range clients {
		if err := cl.Flush(flushCtx); err != nil {
			return ProduceResult{}, fmt.Errorf("flush producers: %w", err)
		}
	}
	res.Records, res.Bytes, res.Errors = records.Load(), bytes.Load(), errs.Load()
	res.FirstErr = firstErr.get()
	if last := lastAck.Load(); last > 0 {
		res.Elapsed = time.Unix(0, last).Sub(start)
	}
	cfg.logger().Info("produce phase done", "topic", cfg.Topic, "records", res.Records,
		"mb_per_s", MBps(res.Throughput()), "errors", res.Errors)
	return res, nil
}
