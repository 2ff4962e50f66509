package fetch

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/postgres"
	"github.com/siltdata/silt/tests/harness"
)

// countingStore counts single-partition and bulk index lookups.
type countingStore struct {
	metastore.Backend
	single, bulk atomic.Int64
}

func (c *countingStore) Batches(ctx context.Context, tp metastore.TopicPartition, offset, maxBytes int64) ([]metastore.Batch, metastore.PartitionOffsets, error) {
	c.single.Add(1)
	return c.Backend.Batches(ctx, tp, offset, maxBytes)
}

func (c *countingStore) BatchesMany(ctx context.Context, q []metastore.BatchesQuery) ([]metastore.BatchesResult, error) {
	c.bulk.Add(1)
	return c.Backend.BatchesMany(ctx, q)
}

func manyParts(e *env, offsets map[int32]int64) []*PartRead {
	var parts []*PartRead
	for p := int32(0); p < 2; p++ {
		parts = append(parts, &PartRead{TP: e.tp(p), Offset: offsets[p], MaxBytes: 1 << 20})
	}
	return parts
}

// TestReadManyAnswersByDeadline: with the bucket stalled, ReadMany answers
// at its deadline, every partition not ready (no error, offsets known);
// the reads go on and the next call finds the data cached, without
// looking the index up again.
func TestReadManyAnswersByDeadline(t *testing.T) {
	e := newEnv(t)
	e.produce(t, 0, 3, 4)
	e.produce(t, 1, 5)
	cs := &countingStore{Backend: e.store}
	cfg := DefaultConfig()
	cfg.PrefetchChunks = 0
	r, err := New(cfg, cs, e.bucket, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	e.bucket.release = make(chan struct{})
	e.bucket.entered = make(chan struct{}, 8)
	e.bucket.hold.Store(true)
	parts := manyParts(e, nil)
	start := time.Now()
	r.ReadMany(t.Context(), parts, 0, 1<<30, time.Now().Add(200*time.Millisecond))
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("ReadMany took %v past a 200ms deadline", took)
	}
	for _, p := range parts {
		if p.Ready || p.Err != nil || len(p.Records) != 0 {
			t.Fatalf("partition %d with the bucket stalled: ready %v, err %v, %d bytes", p.TP.Partition, p.Ready, p.Err, len(p.Records))
		}
	}
	if parts[0].Offsets.HighWatermark != 7 || parts[1].Offsets.HighWatermark != 5 {
		t.Fatalf("offsets not known: %+v %+v", parts[0].Offsets, parts[1].Offsets)
	}
	if n := cs.bulk.Load(); n != 1 || cs.single.Load() != 0 {
		t.Fatalf("%d bulk and %d single index lookups, want one bulk", n, cs.single.Load())
	}
	// The stalled reads finish into the cache once the bucket answers.
	<-e.bucket.entered
	e.bucket.hold.Store(false)
	close(e.bucket.release)
	gets := e.bucket.gets.Load()
	var parts2 []*PartRead
	for deadline := time.Now().Add(20 * time.Second); ; {
		parts2 = manyParts(e, nil)
		r.ReadMany(t.Context(), parts2, 0, 1<<30, time.Now().Add(5*time.Second))
		if parts2[0].Ready && parts2[1].Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("reads never became ready")
		}
	}
	for _, p := range parts2 {
		want, _, err := r.Read(t.Context(), p.TP, 0, 1<<20)
		if err != nil || !bytes.Equal(p.Records, want) || p.Err != nil {
			t.Fatalf("partition %d: ReadMany %d bytes (%v), Read %d bytes (%v)", p.TP.Partition, len(p.Records), p.Err, len(want), err)
		}
	}
	if got := e.bucket.gets.Load() - gets; got > 2 {
		t.Fatalf("%d GETs after the stalled reads finished, want at most the 2 they were", got)
	}
	if cs.single.Load() != 0 {
		t.Fatalf("%d single index lookups", cs.single.Load())
	}
}

// TestReadManyStopsAtBudget: once maxTotal bytes are ready, no more reads
// start; the partitions not read are not ready.
func TestReadManyStopsAtBudget(t *testing.T) {
	e := newEnv(t)
	for range 3 {
		e.produce(t, 0, 5)
		e.produce(t, 1, 5)
	}
	r := newReader(t, e, DefaultConfig())
	parts := manyParts(e, nil)
	r.ReadMany(t.Context(), parts[:1], 0, 1<<30, time.Now().Add(5*time.Second)) // caches partition 0
	parts = manyParts(e, nil)
	gets := e.bucket.gets.Load()
	r.ReadMany(t.Context(), parts, 0, 1, time.Now().Add(5*time.Second))
	if !parts[0].Ready || len(parts[0].Records) == 0 {
		t.Fatalf("partition 0 (cached, first in order): ready %v, %d bytes", parts[0].Ready, len(parts[0].Records))
	}
	if parts[1].Ready || e.bucket.gets.Load() != gets {
		t.Fatalf("partition 1 read although the budget was used: ready %v, %d GETs", parts[1].Ready, e.bucket.gets.Load()-gets)
	}
	// Errors are ready, with their offsets.
	parts = manyParts(e, map[int32]int64{0: 99})
	r.ReadMany(t.Context(), parts, 0, 1<<30, time.Now().Add(5*time.Second))
	if !parts[0].Ready || !IsOutOfRange(parts[0].Err) || parts[0].Offsets.HighWatermark != 15 {
		t.Fatalf("out of range: %+v", parts[0])
	}
}

// TestReadManyNeverSkipsAnEntry reads, through each backend, a partition
// whose entries differ in size (as once the janitor has compacted part of
// it) with a byte budget that one large entry does not fit but the small
// ones after it would: the answer must stop before the large entry, never
// jump over it. The fault suite found agents on Postgres serving such
// jumps (a delete-policy partition has no gaps; clients took them as one
// and skipped the records).
func TestReadManyNeverSkipsAnEntry(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			var e *env
			if name == "sqlite" {
				e = newEnv(t)
			} else {
				st, err := postgres.Open(t.Context(), harness.Postgres(t), nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				e = newEnvOn(t, st)
			}
			e.produce(t, 0, 1, 1, 200, 1, 1)
			entries, _, err := e.store.Batches(t.Context(), e.tp(0), 0, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 5 || entries[2].Len < 4*(entries[0].Len+entries[3].Len) {
				t.Fatalf("entries %+v: want five, the middle one large", entries)
			}
			// The two before the large one and the one after it fit.
			budget := int64(entries[0].Len + entries[1].Len + entries[3].Len)
			cfg := DefaultConfig()
			cfg.PrefetchChunks = 0
			r := newReader(t, e, cfg)
			parts := []*PartRead{{TP: e.tp(0), Offset: 0, MaxBytes: budget}}
			r.ReadMany(t.Context(), parts, 0, 1<<30, time.Now().Add(10*time.Second))
			if p := parts[0]; !p.Ready || p.Err != nil {
				t.Fatalf("ReadMany: ready %v, err %v", p.Ready, p.Err)
			}
			batches, _ := parse(t, parts[0].Records)
			next := int64(0)
			for _, b := range batches {
				if b.FirstOffset != next {
					t.Fatalf("batch at offset %d after offset %d: offsets %d-%d skipped", b.FirstOffset, next-1, next, b.FirstOffset-1)
				}
				next = b.FirstOffset + int64(b.LastOffsetDelta) + 1
			}
			if next != 2 {
				t.Fatalf("read up to offset %d, want the two entries before the large one (up to 2)", next)
			}
			// The cached runs must not hold a jump either: read on.
			for next < 204 { // the high watermark
				parts = []*PartRead{{TP: e.tp(0), Offset: next, MaxBytes: budget}}
				r.ReadMany(t.Context(), parts, 0, 1<<30, time.Now().Add(10*time.Second))
				if p := parts[0]; !p.Ready || p.Err != nil || len(p.Records) == 0 {
					t.Fatalf("ReadMany at %d: ready %v, err %v, %d bytes", next, p.Ready, p.Err, len(p.Records))
				}
				batches, _ := parse(t, parts[0].Records)
				for _, b := range batches {
					if b.FirstOffset > next {
						t.Fatalf("batch at offset %d after offset %d: offsets skipped", b.FirstOffset, next-1)
					}
					next = b.FirstOffset + int64(b.LastOffsetDelta) + 1
				}
			}
		})
	}
}
