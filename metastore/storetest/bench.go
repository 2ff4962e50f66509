package storetest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siltdata/silt/metastore"
)

// BenchCommit measures CommitSegment for segments touching 1, 10, 100,
// 1,000 and 10,000 partitions (one 1,000-record batch each, half of them
// idempotent), one committer at a time and, up to 100 partitions, from 8
// concurrent committers over the same partitions (the contended case:
// they queue on the row locks). It reports committed transactions per
// second; ns/op is the latency of one commit.
func BenchCommit(b *testing.B, s metastore.Store) {
	c := b.Context()
	top, err := s.CreateTopic(c, metastore.TopicSpec{Name: "bench-commit", Partitions: 10000})
	if err != nil {
		b.Fatal(err)
	}
	var segs atomic.Int64
	for _, parallel := range []bool{false, true} {
		for _, n := range []int{1, 10, 100, 1000, 10000} {
			if parallel && n > 100 {
				continue
			}
			name := fmt.Sprintf("partitions=%d", n)
			if parallel {
				name += "/committers=8"
			}
			b.Run(name, func(b *testing.B) {
				committer := func(pid int64) func() error {
					var seq int32
					return func() error {
						bs := make([]metastore.BatchAppend, n)
						for i := range bs {
							bs[i] = batch(metastore.TopicPartition{Topic: top.ID, Partition: int32(i)}, 1000, time.Now().UnixMilli(), 64<<10)
							if i%2 == 0 {
								bs[i].ProducerID, bs[i].ProducerEpoch, bs[i].BaseSequence = pid, 0, seq
							}
						}
						seq += 1000
						key := fmt.Sprintf("bench-%d", segs.Add(1))
						if err := s.AddPendingSegment(c, key); err != nil {
							return err
						}
						res, err := s.CommitSegment(c, metastore.Segment{Key: key, Size: int64(n) << 16, Batches: bs})
						if err != nil {
							return err
						}
						for _, r := range res {
							if r.Err != nil {
								return r.Err
							}
						}
						return nil
					}
				}
				var start time.Time
				if !parallel {
					pid, err := s.NextProducerID(c)
					if err != nil {
						b.Fatal(err)
					}
					commit := committer(pid)
					b.ResetTimer()
					start = time.Now()
					for b.Loop() {
						if err := commit(); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					const committers = 8
					var left atomic.Int64
					left.Store(int64(b.N))
					commits := make([]func() error, committers)
					for i := range commits {
						pid, err := s.NextProducerID(c)
						if err != nil {
							b.Fatal(err)
						}
						commits[i] = committer(pid)
					}
					b.ResetTimer()
					start = time.Now()
					var wg sync.WaitGroup
					for _, commit := range commits {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for left.Add(-1) >= 0 {
								if err := commit(); err != nil {
									b.Error(err)
									return
								}
							}
						}()
					}
					wg.Wait()
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tx/s")
			})
		}
	}
}

// BenchLookups measures Batches (a 10-batch read: maxBytes is ten times
// the loaded batches' Len) and OffsetForTimestamp at random depths of a
// partition holding n batches of 10 records each, with Len batchLen and
// timestamps equal to their base offset. The figure should not grow with
// n: both are index probes.
func BenchLookups(b *testing.B, s metastore.Store, tp metastore.TopicPartition, n int64, batchLen int32) {
	c := b.Context()
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	b.Run("Batches", func(b *testing.B) {
		for b.Loop() {
			off := rng.Int64N(n * 10)
			bs, _, err := s.Batches(c, tp, off, int64(batchLen)*10)
			if err != nil {
				b.Fatal(err)
			}
			if len(bs) == 0 || bs[0].BaseOffset > off || bs[0].LastOffset < off {
				b.Fatalf("Batches(%d) = %d batches from %+v", off, len(bs), bs)
			}
		}
	})
	b.Run("OffsetForTimestamp", func(b *testing.B) {
		for b.Loop() {
			ts := rng.Int64N(n * 10)
			off, _, found, err := offsetForTimestamp(c, s, tp, ts, 0)
			if err != nil || !found || off > ts || off+10 <= ts {
				b.Fatalf("OffsetForTimestamp(%d) = %d, %v, %v", ts, off, found, err)
			}
		}
	})
}
