package fetch

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/siltdata/silt/agent/ingest"
	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/postgres"
	"github.com/siltdata/silt/segment/segmenttest"
	"github.com/siltdata/silt/tests/harness"
)

// TestColdReplayNeverSkips replays, from a fresh reader, many partitions
// whose entries are large produce batches of varied sizes (100 KiB to
// 1 MiB, several partitions per segment object), the way the agent's Fetch
// handler reads them: every partition in one ReadMany per fetch with a
// 1 MiB partition limit (franz-go's default) and a 64 MiB response limit,
// a short deadline, read-ahead on, the response trimmed to whole batches
// in request order, each partition's next fetch at the offset after what
// it was answered. Every partition's batches must follow each other
// without a gap: a delete-policy partition has none, and clients take a
// jump for one and skip the records. A cold replay through an agent on
// Postgres and MinIO did skip offsets; this test has not reproduced that
// (it passes on the code the skips were seen with), so it guards the read
// path's share of the contract, not that fault's cause.
func TestColdReplayNeverSkips(t *testing.T) {
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
			coldReplay(t, e)
		})
	}
}

func coldReplay(t *testing.T, e *env) {
	const (
		partitions = 12
		rounds     = 10
		valueSize  = 1 << 10
		partMax    = 1 << 20
		respMax    = 64 << 20
	)
	top, err := e.store.CreateTopic(t.Context(), metastore.TopicSpec{Name: "replay", Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	tp := func(p int32) metastore.TopicPartition { return metastore.TopicPartition{Topic: top.ID, Partition: p} }
	rng := rand.New(rand.NewPCG(1, 2))
	hw := make([]int64, partitions)
	seed := uint64(0)
	for range rounds {
		// One segment object holds a batch of each of several partitions.
		var items []ingest.Item
		for p := range int32(partitions) {
			for range rng.IntN(4) {
				n := 100 + rng.IntN(900) // 100 KiB to 1 MiB of values
				seed++
				b := segmenttest.New(segmenttest.Options{Records: n, ValueSize: valueSize, Random: true, Seed: seed})
				items = append(items, ingest.Item{TopicPartition: tp(p), Batch: b, Records: int32(n), MaxTimestamp: segmenttest.BaseTimestamp, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})
				hw[p] += int64(n)
			}
		}
		pend, err := e.pipe.Append(t.Context(), items)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		_, err = pend.Wait(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}

	// GETs take as long as an object store's, some longer than a fetch's
	// deadline. Small caches and a short index age make the replay go
	// through evictions, the disk tier, trimmed index runs and index
	// lookups that expire, as a long replay on a busy agent does.
	cfg := DefaultConfig()
	cfg.MemoryBytes, cfg.PrefetchBytes = 32<<20, 16<<20
	cfg.CacheDir, cfg.IndexMaxAge, cfg.PrefetchMinLag, cfg.IndexBatches = t.TempDir(), time.Millisecond, 1, 20
	r, err := New(cfg, e.store, jitterBucket{e.bucket}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	next := make([]int64, partitions)
	done := func() bool {
		for p := range partitions {
			if next[p] < hw[p] {
				return false
			}
		}
		return true
	}
	for fetches := 0; !done(); fetches++ {
		if fetches > 100000 {
			t.Fatalf("replay made no progress: at %v of %v", next, hw)
		}
		var parts []*PartRead
		for p := range int32(partitions) {
			parts = append(parts, &PartRead{TP: tp(p), Offset: next[p], MaxBytes: partMax})
		}
		// As the agent: the deadline is at least 100 ms, so reads
		// outlive their fetch and finish into the cache.
		r.ReadMany(t.Context(), parts, fetches%partitions, respMax, time.Now().Add(100*time.Millisecond))
		remaining, total := int64(respMax), int64(0)
		for _, pr := range parts {
			p := pr.TP.Partition
			if pr.Err != nil {
				t.Fatalf("partition %d at %d: %v", p, pr.Offset, pr.Err)
			}
			if !pr.Ready || len(pr.Records) == 0 {
				continue
			}
			recs := trimWhole(pr.Records, min(pr.MaxBytes, remaining), total == 0)
			total += int64(len(recs))
			remaining -= int64(len(recs))
			for len(recs) >= 61 {
				n := int(int32(binary.BigEndian.Uint32(recs[8:]))) + 12
				base := int64(binary.BigEndian.Uint64(recs))
				last := base + int64(int32(binary.BigEndian.Uint32(recs[23:])))
				if last >= next[p] && base > next[p] {
					t.Fatalf("partition %d fetched at %d: batch [%d, %d] skips offsets %d-%d (fetch %d)", p, pr.Offset, base, last, next[p], base-1, fetches)
				}
				if last >= next[p] {
					next[p] = last + 1
				}
				recs = recs[n:]
			}
		}
	}
	for p := range partitions {
		if next[p] != hw[p] {
			t.Fatalf("partition %d read up to %d, high watermark %d", p, next[p], hw[p])
		}
	}
}

// trimWhole is the agent's trimBatches: the leading whole batches of recs
// that fit limit, and at least the first one when minOne.
func trimWhole(recs []byte, limit int64, minOne bool) []byte {
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

// jitterBucket delays each GET by 0-150 ms.
type jitterBucket struct{ *countingBucket }

func (b jitterBucket) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	select {
	case <-time.After(time.Duration(rand.IntN(150)) * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.countingBucket.GetRange(ctx, key, off, n)
}
