package janitor

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/siltdata/silt/agent/ingest"
	"github.com/siltdata/silt/fetch"
	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/postgres"
	"github.com/siltdata/silt/metastore/sqlite"
	"github.com/siltdata/silt/segment"
	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/segment/segmenttest"
	"github.com/siltdata/silt/tests/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.RunCheckingLeaks(m)) }

// env is a metastore and a bucket with a produce pipeline on them.
type env struct {
	store  metastore.Backend
	bucket objstore.Bucket
	pipe   *ingest.Pipeline
}

// backends runs fn on SQLite with a directory bucket, and on Postgres
// with MinIO.
func backends(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		st, err := sqlite.Open(t.Context(), filepath.Join(dir, "meta.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fs, err := objstore.NewFS(filepath.Join(dir, "bucket"))
		if err != nil {
			t.Fatal(err)
		}
		fn(t, newEnv(t, st, fs))
	})
	t.Run("postgres", func(t *testing.T) {
		st, err := postgres.Open(t.Context(), harness.Postgres(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		cfg := harness.S3(t)
		b, err := objstore.NewS3(t.Context(), objstore.S3Config{Bucket: cfg.Bucket, Endpoint: cfg.Endpoint, Region: cfg.Region,
			AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, RequestTimeout: 10 * time.Second, MaxAttempts: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		fn(t, newEnv(t, st, b))
	})
}

func newEnv(t *testing.T, st metastore.Backend, b objstore.Bucket) *env {
	t.Helper()
	cfg := ingest.DefaultConfig()
	cfg.FlushBytes = 1 // one segment per produce call
	pipe, err := ingest.New(cfg, st, b, nil, prometheus.NewRegistry(), ingest.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pipe.Close(context.Background()) })
	return &env{store: st, bucket: b, pipe: pipe}
}

// testConfig is a janitor that acts at once: no ages, no grace.
func testConfig(holder string) Config {
	c := DefaultConfig()
	c.Holder = holder
	c.Grace, c.OrphanAge, c.CompactAge = 0, 0, 0
	c.OrphanScanInterval = time.Nanosecond
	c.Interval = 20 * time.Millisecond
	c.LeaseTTL = time.Second
	c.ChunkBytes, c.ObjectBytes = 4<<10, 16<<10
	c.BatchRows = 7 // small pages: every loop goes round
	return c
}

func (e *env) janitor(t *testing.T, cfg Config) *Janitor {
	t.Helper()
	j, err := New(cfg, e.store, e.bucket, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (e *env) runOnce(t *testing.T, cfg Config) {
	t.Helper()
	if err := e.janitor(t, cfg).RunOnce(t.Context()); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
}

func (e *env) topic(t *testing.T, name string, partitions int32, configs map[string]string) metastore.Topic {
	t.Helper()
	top, err := e.store.CreateTopic(t.Context(), metastore.TopicSpec{Name: name, Partitions: partitions, Configs: configs})
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// produce writes one segment with one batch of n records per partition
// listed, all with first timestamp ts (ms), and waits for its commit.
func (e *env) produce(t *testing.T, top metastore.Topic, ts int64, n int, partitions ...int32) {
	t.Helper()
	var items []ingest.Item
	for i, p := range partitions {
		b := segmenttest.New(segmenttest.Options{Records: n, ValueSize: 200, Random: i%2 == 0, Compressed: i%3 == 2,
			FirstTimestamp: ts, Seed: uint64(ts) + uint64(p)*7919 + uint64(i)})
		items = append(items, ingest.Item{TopicPartition: metastore.TopicPartition{Topic: top.ID, Partition: p}, Batch: b,
			Records: int32(n), MaxTimestamp: ts + int64(n) - 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})
	}
	pend, err := e.pipe.Append(t.Context(), items)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := pend.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

// read returns a partition's log from offset through a fresh reader.
func (e *env) read(t *testing.T, tp metastore.TopicPartition, offset int64) ([]byte, metastore.PartitionOffsets, error) {
	t.Helper()
	r, err := fetch.New(fetch.DefaultConfig(), e.store, e.bucket, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []byte
	for {
		data, offs, err := r.Read(t.Context(), tp, offset, 1<<30)
		if err != nil || len(data) == 0 {
			return out, offs, err
		}
		out = append(out, data...)
		_, last := segment.BatchOffsets(data[lastBatch(data):])
		offset = last + 1
	}
}

// batchLen is the length of the record batch at the start of data.
func batchLen(data []byte) int { return int(int32(binary.BigEndian.Uint32(data[8:]))) + 12 }

// lastBatch returns the position of the last batch in data.
func lastBatch(data []byte) int {
	pos := 0
	for pos+batchLen(data[pos:]) < len(data) {
		pos += batchLen(data[pos:])
	}
	return pos
}

// countBatches counts the record batches in data.
func countBatches(data []byte) int {
	n := 0
	for len(data) > 0 {
		data = data[batchLen(data):]
		n++
	}
	return n
}

func counterValue(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// waitGauge waits until g reads want.
func waitGauge(t *testing.T, g prometheus.Gauge, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for testutil.ToFloat64(g) != want {
		if time.Now().After(deadline) {
			t.Fatalf("gauge never reached %v", want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) objects(t *testing.T) []string {
	t.Helper()
	var keys []string
	err := e.bucket.List(t.Context(), "", func(a objstore.Attrs) error {
		keys = append(keys, a.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func (e *env) stored(t *testing.T, tp metastore.TopicPartition) metastore.StoredPartition {
	t.Helper()
	all, err := e.store.StoredPartitions(t.Context(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		if p.TopicPartition == tp {
			return p
		}
	}
	t.Fatalf("partition %v not stored", tp)
	return metastore.StoredPartition{}
}

func TestRetentionByTime(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		now := time.Now().UnixMilli()
		top := e.topic(t, "t", 2, map[string]string{"retention.ms": "60000"})
		forever := e.topic(t, "forever", 1, map[string]string{"retention.ms": "-1"})
		e.produce(t, top, now-3_600_000, 5, 0, 1)
		e.produce(t, forever, now-3_600_000, 5, 0)
		e.produce(t, top, now-120_000, 5, 0)
		e.produce(t, top, now, 5, 0, 1)
		e.runOnce(t, testConfig("j"))

		tp0 := metastore.TopicPartition{Topic: top.ID}
		_, offs, err := e.read(t, tp0, 0)
		if !errors.Is(err, fetch.ErrOffsetOutOfRange) || offs.LogStartOffset != 10 || offs.HighWatermark != 15 {
			t.Fatalf("read from 0 after retention: %+v, %v; want out of range, start 10", offs, err)
		}
		data, _, err := e.read(t, tp0, 10)
		if err != nil || len(data) == 0 {
			t.Fatalf("read from the new start: %d bytes, %v", len(data), err)
		}
		if p := e.stored(t, metastore.TopicPartition{Topic: top.ID, Partition: 1}); p.LogStartOffset != 5 || p.Rows != 1 {
			t.Fatalf("partition 1 after retention %+v", p)
		}
		if p := e.stored(t, metastore.TopicPartition{Topic: forever.ID}); p.LogStartOffset != 0 || p.Rows != 1 {
			t.Fatalf("retention.ms=-1 partition after a pass %+v", p)
		}
	})
}

func TestRetentionBySizeAndDefaults(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		now := time.Now().UnixMilli()
		top := e.topic(t, "sized", 1, map[string]string{"retention.bytes": "1"})
		plain := e.topic(t, "plain", 1, nil)
		compact := e.topic(t, "compacted", 1, map[string]string{"cleanup.policy": "compact"})
		for i := range 4 {
			e.produce(t, top, now+int64(i), 3, 0)
			e.produce(t, plain, now-3_600_000+int64(i), 3, 0)
			e.produce(t, compact, now-3_600_000+int64(i), 3, 0)
		}
		cfg := testConfig("j")
		// Cluster default retention of 1 minute: plain's hour-old data goes.
		cfg.Defaults.Retention = time.Minute
		e.runOnce(t, cfg)
		// retention.bytes=1: every row but the last goes (the log keeps at
		// least retention.bytes, as Kafka's does).
		if p := e.stored(t, metastore.TopicPartition{Topic: top.ID}); p.LogStartOffset != 9 || p.Rows != 1 {
			t.Fatalf("size retention %+v", p)
		}
		if p := e.stored(t, metastore.TopicPartition{Topic: plain.ID}); p.LogStartOffset != 12 || p.Rows != 0 {
			t.Fatalf("default retention %+v", p)
		}
		// cleanup.policy=compact alone: retention does not apply.
		if p := e.stored(t, metastore.TopicPartition{Topic: compact.ID}); p.LogStartOffset != 0 {
			t.Fatalf("compact-only topic lost data to retention: %+v", p)
		}
	})
}

// TestDeleteRecordsReclaims: rows and objects below a start that
// DeleteRecords moved are reclaimed; an object still used by another
// partition stays.
func TestDeleteRecordsReclaims(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		now := time.Now().UnixMilli()
		top := e.topic(t, "t", 2, nil)
		e.produce(t, top, now, 2, 0)    // segment A: p0 [0,1]
		e.produce(t, top, now, 2, 0, 1) // segment B: p0 [2,3], p1 [0,1]
		e.produce(t, top, now, 2, 0)    // segment C: p0 [4,5]
		if got := len(e.objects(t)); got != 3 {
			t.Fatalf("%d objects, want 3", got)
		}
		tp0 := metastore.TopicPartition{Topic: top.ID}
		if _, err := e.store.DeleteRecords(t.Context(), tp0, 5); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig("j")
		cfg.Compact = false // only retention here
		e.runOnce(t, cfg)
		if p := e.stored(t, tp0); p.Rows != 1 || p.LogStartOffset != 5 {
			t.Fatalf("after DeleteRecords(5) and a pass: %+v", p)
		}
		// A went; B holds partition 1's only batch; C holds offset 5.
		if got := len(e.objects(t)); got != 2 {
			t.Fatalf("%d objects after reclaim, want 2: %v", got, e.objects(t))
		}
		data, offs, err := e.read(t, tp0, 5)
		if err != nil || len(data) == 0 || offs.LogStartOffset != 5 {
			t.Fatalf("read from 5: %d bytes, %+v, %v", len(data), offs, err)
		}
		if base, _ := segment.BatchOffsets(data); base != 4 {
			t.Fatalf("read from 5 starts at %d, want the batch holding 5 (4)", base)
		}
		if data, _, err := e.read(t, metastore.TopicPartition{Topic: top.ID, Partition: 1}, 0); err != nil || len(data) == 0 {
			t.Fatalf("partition 1 after reclaim: %d bytes, %v", len(data), err)
		}
	})
}

// TestGraceKeepsObjects: a dead object stays until Grace has passed.
func TestGraceKeepsObjects(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		top := e.topic(t, "t", 1, map[string]string{"retention.ms": "1000"})
		e.produce(t, top, time.Now().UnixMilli()-3_600_000, 2, 0)
		cfg := testConfig("j")
		cfg.Grace = time.Hour
		e.runOnce(t, cfg)
		if p := e.stored(t, metastore.TopicPartition{Topic: top.ID}); p.Rows != 0 {
			t.Fatalf("rows not removed: %+v", p)
		}
		if got := len(e.objects(t)); got != 1 {
			t.Fatalf("%d objects within the grace period, want 1", got)
		}
		e.runOnce(t, testConfig("j"))
		if got := len(e.objects(t)); got != 0 {
			t.Fatalf("%d objects after the grace period, want 0", got)
		}
	})
}

func TestDeletedTopicFreed(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		now := time.Now().UnixMilli()
		gone := e.topic(t, "gone", 3, nil)
		keep := e.topic(t, "keep", 1, nil)
		for range 5 {
			e.produce(t, gone, now, 3, 0, 1, 2)
		}
		e.produce(t, gone, now, 1, 2)
		e.produce(t, keep, now, 1, 0)
		e.produce(t, gone, now, 1, 1)
		if err := e.store.DeleteTopic(t.Context(), "gone"); err != nil {
			t.Fatal(err)
		}
		e.runOnce(t, testConfig("j"))
		all, err := e.store.StoredPartitions(t.Context(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range all {
			if p.Topic == gone.ID {
				t.Fatalf("deleted topic's partition still stored: %+v", p)
			}
		}
		if objs := e.objects(t); len(objs) != 1 {
			t.Fatalf("objects after deleting the topic: %v, want keep's one", objs)
		}
		st, err := e.store.StorageStats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st.Topics["gone"]; ok || st.Segments["committed"].Objects != 1 || st.Segments["dead"].Objects != 0 {
			t.Fatalf("storage after deleting the topic: %+v", st)
		}
	})
}

// TestOrphansDeleted: an object uploaded but never committed, and one the
// metastore does not know, go; committed ones stay.
func TestOrphansDeleted(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		top := e.topic(t, "t", 1, nil)
		e.produce(t, top, time.Now().UnixMilli(), 2, 0)
		committed := e.objects(t)
		if err := e.store.AddPendingSegment(t.Context(), "segments/never-committed"); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"segments/never-committed", "segments/unknown", "compacted/unknown"} {
			if err := e.bucket.Put(t.Context(), k, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		cfg := testConfig("j")
		cfg.Compact = false // only orphans here
		cfg.OrphanAge = time.Hour
		e.runOnce(t, cfg)
		if got := len(e.objects(t)); got != 4 {
			t.Fatalf("%d objects younger than the orphan age, want all 4 kept", got)
		}
		cfg.OrphanAge = 0
		e.runOnce(t, cfg)
		if got := e.objects(t); !slices.Equal(got, committed) {
			t.Fatalf("objects after the orphan sweep: %v, want only %v", got, committed)
		}
		// The orphan's commit, arriving late, is refused.
		_, err := e.store.CommitSegment(t.Context(), metastore.Segment{Key: "segments/never-committed"})
		if !errors.Is(err, metastore.ErrSegmentGone) {
			t.Fatalf("late commit of a deleted orphan: %v", err)
		}
	})
}

// TestCommittedNeverDeleted races uploads and commits against the
// janitor with every age at zero: a segment whose commit succeeded must
// keep its object, and every committed batch stays readable.
func TestCommittedNeverDeleted(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		top := e.topic(t, "t", 2, map[string]string{"retention.ms": "-1"})
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		jcfg := testConfig("j")
		jcfg.Compact = false // the race here is orphans against commits
		jcfg.Interval = time.Millisecond
		j := e.janitor(t, jcfg)
		wg.Go(func() { _ = j.Run(ctx) })

		var (
			mu        sync.Mutex
			committed []string
			refused   int
		)
		const writers, segments = 4, 25
		for w := range writers {
			wg.Go(func() {
				for i := range segments {
					key := fmt.Sprintf("segments/race-%d-%d", w, i)
					if err := e.store.AddPendingSegment(ctx, key); err != nil {
						t.Error(err)
						return
					}
					payload := segmenttest.New(segmenttest.Options{Records: 1, Seed: uint64(w*1000 + i)})
					wr := segment.NewWriter()
					wr.Append(segment.TopicID(top.ID), int32(w%2), payload)
					obj, chunks, err := wr.Finish()
					if err != nil {
						t.Error(err)
						return
					}
					if err := e.bucket.Put(ctx, key, obj); err != nil {
						t.Error(err)
						return
					}
					// Sometimes slow between upload and commit.
					if i%3 == 0 {
						time.Sleep(time.Duration(i%7) * time.Millisecond)
					}
					c := chunks[0]
					_, err = e.store.CommitSegment(ctx, metastore.Segment{Key: key, Size: int64(len(obj)), Batches: []metastore.BatchAppend{{
						TopicPartition: metastore.TopicPartition{Topic: top.ID, Partition: int32(w % 2)}, Records: 1,
						MaxTimestamp: time.Now().UnixMilli(), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
						ChunkOffset: c.Offset, ChunkLength: c.Length, Pos: c.Batches[0].Pos, Len: c.Batches[0].Len,
					}}})
					mu.Lock()
					switch {
					case err == nil:
						committed = append(committed, key)
					case errors.Is(err, metastore.ErrSegmentGone):
						refused++
					default:
						t.Errorf("commit %s: %v", key, err)
					}
					mu.Unlock()
				}
			})
		}
		// Let the janitor make more passes after the writers are done.
		for {
			mu.Lock()
			done := len(committed)+refused == writers*segments
			mu.Unlock()
			if done || t.Failed() {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		passes := j.m.passes
		waitPasses(t, passes, 3)
		cancel()
		wg.Wait()
		t.Logf("%d committed, %d refused as orphans claimed first", len(committed), refused)
		for _, k := range committed {
			if _, err := e.bucket.GetRange(t.Context(), k, 0, 4); err != nil {
				t.Errorf("committed segment %s: %v", k, err)
			}
		}
		var got int
		for p := range int32(2) {
			data, _, err := e.read(t, metastore.TopicPartition{Topic: top.ID, Partition: p}, 0)
			if err != nil {
				t.Fatalf("read partition %d: %v", p, err)
			}
			got += countBatches(data)
		}
		if got != len(committed) {
			t.Fatalf("%d batches readable, %d committed", got, len(committed))
		}
	})
}

func waitPasses(t *testing.T, c prometheus.Counter, more int) {
	t.Helper()
	start := counterValue(c)
	deadline := time.Now().Add(20 * time.Second)
	for counterValue(c) < start+float64(more) {
		if time.Now().After(deadline) {
			t.Fatalf("janitor made no %d more passes", more)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCompactionKeepsBatchesByteIdentical(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		now := time.Now().UnixMilli()
		top := e.topic(t, "t", 3, nil)
		// Many small segments mixing the partitions.
		for i := range 40 {
			parts := []int32{0, 1, 2}
			if i%4 == 0 {
				parts = []int32{1}
			}
			e.produce(t, top, now+int64(i)*1000, 1+i%5, parts...)
		}
		var before [3][]byte
		for p := range int32(3) {
			data, _, err := e.read(t, metastore.TopicPartition{Topic: top.ID, Partition: p}, 0)
			if err != nil {
				t.Fatal(err)
			}
			before[p] = data
		}
		segsBefore := len(e.objects(t))
		cfg := testConfig("j")
		cfg.BatchRows = 100 // a rewrite reads up to a page of rows
		e.runOnce(t, cfg)

		for p := range int32(3) {
			tp := metastore.TopicPartition{Topic: top.ID, Partition: p}
			data, _, err := e.read(t, tp, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, before[p]) {
				t.Fatalf("partition %d: %d bytes after compaction differ from the %d before", p, len(data), len(before[p]))
			}
			sp := e.stored(t, tp)
			rows, err := e.store.IndexRows(t.Context(), sp.ID, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if !r.Compacted {
					t.Fatalf("partition %d row [%d, %d] not compacted", p, r.BaseOffset, r.LastOffset)
				}
			}
			if sp.CompactedOffset != sp.HighWatermark || sp.CompactedBytes != sp.Bytes {
				t.Fatalf("partition %d after compaction %+v", p, sp)
			}
			// About one row per ChunkBytes (4 KiB) of data: chunks
			// end more than half full.
			if max := sp.Bytes/2048 + 2; sp.Rows > max {
				t.Fatalf("partition %d: %d rows for %d bytes, want at most %d", p, sp.Rows, sp.Bytes, max)
			}
			// Exact timestamp lookups still work at row level: the
			// first row whose max reaches a batch's timestamp.
			e0, found, err := e.store.OffsetForTimestamp(t.Context(), tp, now+20_000, 0)
			if err != nil || !found || e0.BaseOffset > e0.LastOffset {
				t.Fatalf("OffsetForTimestamp after compaction: %+v, %v, %v", e0, found, err)
			}
		}
		objs := e.objects(t)
		for _, k := range objs {
			if !strings.HasPrefix(k, CompactedPrefix) {
				t.Fatalf("produce segment %s left after compaction and the grace period (0)", k)
			}
		}
		t.Logf("%d produce segments compacted into %d objects", segsBefore, len(objs))
		if len(objs) > 9 {
			t.Fatalf("%d compacted objects for 3 partitions of under 32 KiB each (objects of up to 16 KiB)", len(objs))
		}
	})
}

// TestCompactionMergesSmallObjects: data arriving a little at a time is
// compacted into small objects, which later rewrites merge: the row count
// stays logarithmic, not linear, in the number of rounds.
func TestCompactionMergesSmallObjects(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		now := time.Now().UnixMilli()
		top := e.topic(t, "t", 1, nil)
		tp := metastore.TopicPartition{Topic: top.ID}
		cfg := testConfig("j")
		cfg.ChunkBytes, cfg.ObjectBytes = 64<<10, 256<<10
		const rounds = 16
		for i := range rounds {
			e.produce(t, top, now+int64(i), 1, 0)
			e.runOnce(t, cfg)
		}
		data, offs, err := e.read(t, tp, 0)
		if err != nil || offs.HighWatermark != rounds {
			t.Fatalf("read: %+v, %v", offs, err)
		}
		sp := e.stored(t, tp)
		// A binary counter over 16 rounds: one row.
		if sp.Rows > 5 {
			t.Fatalf("%d rows after %d rounds of one batch each; small objects were not merged", sp.Rows, rounds)
		}
		if got := len(e.objects(t)); got > 5 {
			t.Fatalf("%d objects after %d rounds", got, rounds)
		}
		var n int
		for len(data) > 0 {
			if base, _ := segment.BatchOffsets(data); base != int64(n) {
				t.Fatalf("batch %d at offset %d", n, base)
			}
			data = data[batchLen(data):]
			n++
		}
		if n != rounds {
			t.Fatalf("%d batches, want %d", n, rounds)
		}
	})
}

// TestCompactionLosesToRetention: a rewrite whose rows retention removed
// meanwhile is dropped, never undoing the retention.
func TestCompactionLosesToRetention(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		now := time.Now().UnixMilli()
		top := e.topic(t, "t", 1, nil)
		tp := metastore.TopicPartition{Topic: top.ID}
		for i := range 6 {
			e.produce(t, top, now+int64(i), 2, 0)
		}
		j := e.janitor(t, testConfig("j"))
		l, ok, err := e.store.AcquireLease(t.Context(), LeaseName, "j", time.Hour)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		sp := e.stored(t, tp)
		// DeleteRecords and retention land between the read and the swap.
		j.store = &interfere{Store: e.store, before: func() {
			if _, err := e.store.DeleteRecords(t.Context(), tp, 5); err != nil {
				t.Error(err)
			}
			if _, err := e.store.Retain(t.Context(), l, metastore.RetainRequest{PartitionID: sp.ID, RetainBytes: -1, MaxRows: 100}); err != nil {
				t.Error(err)
			}
		}}
		if _, err := j.rewrite(t.Context(), l, &sp, "t"); !errors.Is(err, metastore.ErrSwapConflict) {
			t.Fatalf("rewrite racing retention: %v, want ErrSwapConflict", err)
		}
		if p := e.stored(t, tp); p.LogStartOffset != 5 || p.Rows != 4 || p.CompactedOffset > 5 {
			t.Fatalf("after the lost rewrite %+v; retention's result must stand", p)
		}
		for _, k := range e.objects(t) {
			if strings.HasPrefix(k, CompactedPrefix) {
				t.Fatalf("unused compacted object %s left behind", k)
			}
		}
		if err := e.store.ReleaseLease(t.Context(), l); err != nil {
			t.Fatal(err)
		}
		// The next pass compacts what retention left.
		e.runOnce(t, testConfig("j"))
		if p := e.stored(t, tp); p.LogStartOffset != 5 || p.CompactedOffset != 12 {
			t.Fatalf("after the next pass %+v", p)
		}
		if data, _, err := e.read(t, tp, 5); err != nil || len(data) == 0 {
			t.Fatalf("read from 5: %v", err)
		}
	})
}

// interfere runs before once, just before the first SwapRows.
type interfere struct {
	Store
	before func()
	once   sync.Once
}

func (i *interfere) SwapRows(ctx context.Context, l metastore.Lease, s metastore.Swap) error {
	i.once.Do(i.before)
	return i.Store.SwapRows(ctx, l, s)
}

// TestOneJanitorAtATime: of two janitors, one leads; when it stops the
// other takes over; a janitor paused past its lease finds its writes
// refused when it wakes.
func TestOneJanitorAtATime(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		top := e.topic(t, "t", 1, map[string]string{"retention.ms": "1000"})
		cfgA, cfgB := testConfig("a"), testConfig("b")
		for _, c := range []*Config{&cfgA, &cfgB} {
			c.LeaseTTL = 300 * time.Millisecond
			c.OrphanAge = time.Hour // the test's own produce must commit
		}
		paused := newPausable(e.store)
		a, err := New(cfgA, paused, e.bucket, nil, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		b := e.janitor(t, cfgB)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		wg.Go(func() { _ = a.Run(ctx) })
		waitGauge(t, a.m.leader, 1)
		wg.Go(func() { _ = b.Run(ctx) })
		waitPasses(t, a.m.passes, 2)
		if counterValue(b.m.passes) != 0 {
			t.Fatal("b made passes while a led")
		}

		// Pause a inside a fenced write: b takes over once a's lease
		// expires; when a resumes, its write is refused.
		e.produce(t, top, time.Now().UnixMilli()-3_600_000, 1, 0)
		paused.pause.Store(true)
		<-paused.entered
		waitGauge(t, b.m.leader, 1)
		waitPasses(t, b.m.passes, 1)
		close(paused.resume)
		select {
		case err := <-paused.result:
			if !errors.Is(err, metastore.ErrLeaseLost) {
				t.Fatalf("write of the paused janitor after it lost the lease: %v, want ErrLeaseLost", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("paused janitor's write never returned")
		}
		if p := e.stored(t, metastore.TopicPartition{Topic: top.ID}); p.LogStartOffset != 1 {
			t.Fatalf("retention by the new leader: %+v", p)
		}
	})
}

// pausable stands for an agent paused (SIGSTOP) while its janitor was in
// a fenced write: once pause is set, the next Retain call, and from then on
// every lease call, wait until resume is closed; the held Retain's result
// is reported.
type pausable struct {
	Store
	pause   atomic.Bool
	held    atomic.Bool
	entered chan struct{}
	resume  chan struct{}
	result  chan error
	once    sync.Once
}

func newPausable(s Store) *pausable {
	return &pausable{Store: s, entered: make(chan struct{}, 1), resume: make(chan struct{}), result: make(chan error, 1)}
}

func (p *pausable) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (metastore.Lease, bool, error) {
	if p.held.Load() {
		<-p.resume
	}
	return p.Store.AcquireLease(ctx, name, holder, ttl)
}

func (p *pausable) Retain(ctx context.Context, l metastore.Lease, req metastore.RetainRequest) (metastore.RetainResult, error) {
	if p.pause.Load() {
		held := false
		p.once.Do(func() { held = true })
		if held {
			p.held.Store(true)
			p.entered <- struct{}{}
			<-p.resume
			res, err := p.Store.Retain(context.WithoutCancel(ctx), l, req)
			p.result <- err
			return res, err
		}
	}
	return p.Store.Retain(ctx, l, req)
}
