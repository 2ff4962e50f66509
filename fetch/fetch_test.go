package fetch

import (
	"context"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/agent/ingest"
	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/sqlite"
	"github.com/siltdata/silt/segment"
	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/segment/segmenttest"
	"github.com/siltdata/silt/tests/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.RunCheckingLeaks(m)) }

// countingBucket counts GetRange calls and can hold them until release
// is closed, reporting each held call on entered.
type countingBucket struct {
	objstore.Bucket
	gets    atomic.Int64
	hold    atomic.Bool
	release chan struct{}
	entered chan struct{}
}

func (c *countingBucket) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	c.gets.Add(1)
	if c.hold.Load() {
		c.entered <- struct{}{}
		select {
		case <-c.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.Bucket.GetRange(ctx, key, off, n)
}

type env struct {
	store  metastore.Backend
	bucket *countingBucket
	topic  metastore.Topic
	pipe   *ingest.Pipeline
	// notify is where commits are reported; set before producing.
	notify atomic.Pointer[Reader]
	// seed, when set, gets each uploaded segment's chunks, as an
	// agent's reader does.
	seed atomic.Pointer[Reader]
	// sent holds every batch produced, by partition, in offset order.
	mu   sync.Mutex
	sent map[int32][][]byte
}

func newEnv(t testing.TB) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newEnvOn(t, st)
}

// newEnvOn is newEnv on the metastore st.
func newEnvOn(t testing.TB, st metastore.Backend) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	fs, err := objstore.NewFS(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	top, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: st, bucket: &countingBucket{Bucket: fs}, topic: top, sent: map[int32][][]byte{}}
	cfg := ingest.DefaultConfig()
	cfg.FlushBytes = 1 // one segment per produce call
	e.pipe, err = ingest.New(cfg, st, fs, nil, prometheus.NewRegistry(), ingest.Hooks{
		Uploaded: func(key string, chunks []segment.ChunkInfo, payloads [][]byte) {
			if r := e.seed.Load(); r != nil {
				r.Seed(key, chunks, payloads)
			}
		},
		Committed: func(added map[metastore.TopicPartition][]metastore.Batch) {
			if r := e.notify.Load(); r != nil {
				r.Committed(added)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.pipe.Close(context.Background()) })
	return e
}

func (e *env) tp(p int32) metastore.TopicPartition {
	return metastore.TopicPartition{Topic: e.topic.ID, Partition: p}
}

// produce writes one segment holding one batch per records count, on
// partition p, and waits for its commit.
func (e *env) produce(t testing.TB, p int32, records ...int) {
	t.Helper()
	var items []ingest.Item
	e.mu.Lock()
	for _, n := range records {
		b := segmenttest.New(segmenttest.Options{Records: n, Seed: uint64(len(e.sent[p]))})
		e.sent[p] = append(e.sent[p], b)
		items = append(items, ingest.Item{TopicPartition: e.tp(p), Batch: b, Records: int32(n), MaxTimestamp: segmenttest.BaseTimestamp, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})
	}
	e.mu.Unlock()
	pend, err := e.pipe.Append(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := pend.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func newReader(t testing.TB, e *env, cfg Config) *Reader {
	t.Helper()
	r, err := New(cfg, e.store, e.bucket, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	e.notify.Store(r)
	return r
}

// parse splits records into batches, checking each CRC and base offset
// continuity, and returns the batches and their base offsets.
func parse(t *testing.T, records []byte) (batches []kmsg.RecordBatch, raw [][]byte) {
	t.Helper()
	for len(records) > 0 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(records); err != nil {
			t.Fatal(err)
		}
		n := int(b.Length) + 12
		if crc := int32(crc32.Checksum(records[21:n], crc32.MakeTable(crc32.Castagnoli))); crc != b.CRC {
			t.Fatalf("batch at offset %d: bad CRC", b.FirstOffset)
		}
		batches = append(batches, b)
		raw = append(raw, records[:n])
		records = records[n:]
	}
	return batches, raw
}

func TestReadAcrossChunks(t *testing.T) {
	e := newEnv(t)
	r := newReader(t, e, DefaultConfig())
	e.produce(t, 0, 5, 1)
	e.produce(t, 1, 7) // another partition between
	e.produce(t, 0, 3)
	e.produce(t, 0, 2, 4)

	recs, offs, err := r.Read(t.Context(), e.tp(0), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if offs.HighWatermark != 15 || offs.LogStartOffset != 0 {
		t.Fatalf("offsets %+v, want high watermark 15", offs)
	}
	batches, raw := parse(t, recs)
	wantBase := []int64{0, 5, 6, 9, 11}
	if len(batches) != len(wantBase) {
		t.Fatalf("%d batches, want %d", len(batches), len(wantBase))
	}
	for i, b := range batches {
		if b.FirstOffset != wantBase[i] {
			t.Errorf("batch %d base offset %d, want %d", i, b.FirstOffset, wantBase[i])
		}
		if b.PartitionLeaderEpoch != LeaderEpoch {
			t.Errorf("batch %d leader epoch %d, want %d", i, b.PartitionLeaderEpoch, LeaderEpoch)
		}
		// Apart from the patched base offset and leader epoch, the bytes
		// are the producer's.
		if string(raw[i][8:12]) != string(e.sent[0][i][8:12]) || string(raw[i][16:]) != string(e.sent[0][i][16:]) {
			t.Errorf("batch %d bytes differ from the produced batch", i)
		}
	}
}

func TestReadOffsetInsideBatchAndLimits(t *testing.T) {
	e := newEnv(t)
	r := newReader(t, e, DefaultConfig())
	e.produce(t, 0, 5, 3)

	recs, _, err := r.Read(t.Context(), e.tp(0), 3, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if batches, _ := parse(t, recs); len(batches) != 2 || batches[0].FirstOffset != 0 {
		t.Fatalf("offset 3: got %d batches from %d, want the whole containing batch first", len(batches), batches[0].FirstOffset)
	}
	// maxBytes smaller than one batch still returns that batch (KIP-74),
	// and only it.
	recs, _, err = r.Read(t.Context(), e.tp(0), 6, 1)
	if err != nil {
		t.Fatal(err)
	}
	if batches, _ := parse(t, recs); len(batches) != 1 || batches[0].FirstOffset != 5 {
		t.Fatalf("maxBytes 1: %d batches", len(batches))
	}
	// At the high watermark: nothing, no error.
	recs, offs, err := r.Read(t.Context(), e.tp(0), 8, 1<<20)
	if err != nil || len(recs) != 0 || offs.HighWatermark != 8 {
		t.Fatalf("at high watermark: %d bytes, %+v, %v", len(recs), offs, err)
	}
	// Past it, or before the start: out of range, with the offsets.
	for _, off := range []int64{9, -1} {
		_, offs, err = r.Read(t.Context(), e.tp(0), off, 1<<20)
		if !errors.Is(err, ErrOffsetOutOfRange) || offs.HighWatermark != 8 {
			t.Fatalf("offset %d: %+v, %v; want ErrOffsetOutOfRange", off, offs, err)
		}
	}
	_, _, err = r.Read(t.Context(), metastore.TopicPartition{Topic: e.topic.ID, Partition: 9}, 0, 1)
	if !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
		t.Fatalf("unknown partition: %v", err)
	}
}

func TestCacheTiers(t *testing.T) {
	e := newEnv(t)
	cfg := DefaultConfig()
	cfg.CacheDir = filepath.Join(t.TempDir(), "cache")
	r := newReader(t, e, cfg)
	e.produce(t, 0, 5)

	for range 3 {
		if _, _, err := r.Read(t.Context(), e.tp(0), 0, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.bucket.gets.Load(); n != 1 {
		t.Fatalf("%d GETs for three reads, want 1", n)
	}
	if got := testutil.ToFloat64(r.m.hits.WithLabelValues("memory")); got != 2 {
		t.Errorf("memory hits %v, want 2", got)
	}

	// Without the memory tier, the disk tier serves repeats.
	cfg.MemoryBytes = 0
	cfg.CacheDir = filepath.Join(t.TempDir(), "cache2")
	r2 := newReader(t, e, cfg)
	e.bucket.gets.Store(0)
	for range 3 {
		if _, _, err := r2.Read(t.Context(), e.tp(0), 0, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.bucket.gets.Load(); n != 1 {
		t.Fatalf("%d GETs with the disk cache, want 1", n)
	}
	if got := testutil.ToFloat64(r2.m.hits.WithLabelValues("disk")); got != 2 {
		t.Errorf("disk hits %v, want 2", got)
	}
}

// A reader seeded with the segments its agent uploads serves them without
// a GET, and within its memory bound.
func TestSeededChunksNeedNoGet(t *testing.T) {
	e := newEnv(t)
	cfg := DefaultConfig()
	cfg.MemoryBytes = 64 << 10
	r := newReader(t, e, cfg)
	e.seed.Store(r)
	e.produce(t, 0, 5)
	e.produce(t, 1, 3)
	for p := range int32(2) {
		recs, _, err := r.Read(t.Context(), e.tp(p), 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		batches, raw := parse(t, recs)
		e.mu.Lock()
		want := e.sent[p]
		e.mu.Unlock()
		if len(batches) != len(want) || batches[0].FirstOffset != 0 || len(raw[0]) != len(want[0]) {
			t.Fatalf("partition %d: %d batches, want %d", p, len(batches), len(want))
		}
	}
	if n := e.bucket.gets.Load(); n != 0 {
		t.Fatalf("%d GETs for seeded chunks, want 0", n)
	}
	if got := testutil.ToFloat64(r.m.seeded); got == 0 {
		t.Fatal("seeded bytes not counted")
	}
	// More seeded than the memory tier holds: the oldest go, the bound holds.
	for range 40 {
		e.produce(t, 0, 20)
	}
	if mem, _ := r.chunks.sizes(); mem > cfg.MemoryBytes {
		t.Fatalf("memory tier holds %d bytes, bound %d", mem, cfg.MemoryBytes)
	}
	if _, _, err := r.Read(t.Context(), e.tp(1), 0, 1<<20); err != nil {
		t.Fatal(err)
	}
	if n := e.bucket.gets.Load(); n != 1 {
		t.Fatalf("%d GETs after the seeded chunk was evicted, want 1", n)
	}
}

func TestConcurrentMissesShareOneGet(t *testing.T) {
	e := newEnv(t)
	cfg := DefaultConfig()
	cfg.MemoryBytes = 0 // a late reader would GET again: only sharing avoids it
	r := newReader(t, e, cfg)
	e.produce(t, 0, 5)
	// Load the index so readers only differ in the chunk read.
	if _, _, err := r.Read(t.Context(), e.tp(0), 0, 1); err != nil {
		t.Fatal(err)
	}
	e.bucket.gets.Store(0)
	e.bucket.release = make(chan struct{})
	e.bucket.entered = make(chan struct{}, 1)
	e.bucket.hold.Store(true)
	const readers = 8
	joined := make(chan struct{}, readers)
	r.chunks.onJoin = func() { joined <- struct{}{} }

	errs := make(chan error, readers)
	for range readers {
		go func() {
			recs, _, err := r.Read(t.Context(), e.tp(0), 0, 1<<20)
			if err == nil && len(recs) == 0 {
				err = errors.New("no records")
			}
			errs <- err
		}()
	}
	<-e.bucket.entered
	for range readers - 1 {
		<-joined
	}
	close(e.bucket.release)
	for range readers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := e.bucket.gets.Load(); n != 1 {
		t.Fatalf("%d GETs for %d concurrent readers, want 1", n, readers)
	}
}

func TestLongPollWokenByNotify(t *testing.T) {
	e := newEnv(t)
	r := newReader(t, e, DefaultConfig())
	e.produce(t, 0, 2)

	w := r.Watch([]metastore.TopicPartition{e.tp(0)})
	defer w.Stop()
	recs, _, err := r.Read(t.Context(), e.tp(0), 2, 1<<20)
	if err != nil || len(recs) != 0 {
		t.Fatalf("at high watermark: %d bytes, %v", len(recs), err)
	}
	woken := make(chan bool, 1)
	go func() { woken <- w.Wait(t.Context(), time.Now().Add(time.Hour)) }()
	e.produce(t, 0, 3) // the commit notifies the reader
	if !<-woken {
		t.Fatal("wait ended without a notification")
	}
	recs, offs, err := r.Read(t.Context(), e.tp(0), 2, 1<<20)
	if err != nil || offs.HighWatermark != 5 {
		t.Fatalf("after notify: %+v, %v", offs, err)
	}
	if batches, _ := parse(t, recs); len(batches) != 1 || batches[0].FirstOffset != 2 {
		t.Fatalf("after notify: %d batches", len(batches))
	}

	// A watch on another partition is not woken; it times out.
	w2 := r.Watch([]metastore.TopicPartition{e.tp(1)})
	defer w2.Stop()
	e.produce(t, 0, 1)
	if w2.Wait(t.Context(), time.Now()) {
		t.Fatal("watch on partition 1 woken by a commit to partition 0")
	}
	// Notify(nil) ("commits may have been missed") wakes everything.
	r.Notify(nil)
	if !w2.Wait(t.Context(), time.Now().Add(time.Hour)) {
		t.Fatal("Notify(nil) did not wake the watch")
	}
}

func TestTailIndexAvoidsStore(t *testing.T) {
	e := newEnv(t)
	cfg := DefaultConfig()
	cfg.IndexMaxAge = time.Hour // only Notify makes the cache stale here
	r := newReader(t, e, cfg)
	e.produce(t, 0, 2, 3)
	read := func(off int64) int {
		recs, _, err := r.Read(t.Context(), e.tp(0), off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := parse(t, recs)
		return len(b)
	}
	store := func() float64 { return testutil.ToFloat64(r.m.lookups.WithLabelValues("store")) }

	read(0)
	before := store()
	// A tailing consumer: re-reads and reads at the end come from the cache.
	if n := read(2); n != 1 {
		t.Fatalf("%d batches at 2", n)
	}
	read(5)
	read(5)
	if store() != before {
		t.Fatalf("store asked %v times for cached reads", store()-before)
	}
	// This agent's own commit extends the cached index: the new batch
	// is read without asking the store.
	e.produce(t, 0, 1)
	if n := read(5); n != 1 {
		t.Fatalf("%d batches after commit", n)
	}
	read(6)
	if got := store() - before; got != 0 {
		t.Fatalf("store asked %v times after this agent's commit, want 0", got)
	}
	// A commit elsewhere (only Notify reaches this reader) makes the next
	// read ask once, then the cache serves again.
	e.notify.Store(nil)
	e.produce(t, 0, 2)
	r.Notify([]metastore.TopicPartition{e.tp(0)})
	if n := read(6); n != 1 {
		t.Fatalf("%d batches after a commit elsewhere", n)
	}
	read(8)
	if got := store() - before; got != 1 {
		t.Fatalf("store asked %v times after a commit elsewhere, want 1", got)
	}
}

func TestEvictionRespectsBounds(t *testing.T) {
	e := newEnv(t)
	for range 10 {
		e.produce(t, 0, 20)
	}
	cfg := DefaultConfig()
	cfg.CacheDir = filepath.Join(t.TempDir(), "cache")
	// Room for about three chunks in each tier.
	probe := newReader(t, e, DefaultConfig())
	if _, _, err := probe.Read(t.Context(), e.tp(0), 0, 1); err != nil {
		t.Fatal(err)
	}
	memOne, _ := probe.chunks.sizes()
	batches, _, err := e.store.Batches(t.Context(), e.tp(0), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MemoryBytes = 3*memOne + memOne/2
	cfg.CacheBytes = 3*batches[0].ChunkLength + batches[0].ChunkLength/2
	r := newReader(t, e, cfg)
	for off := int64(0); off < 200; off += 20 {
		if _, _, err := r.Read(t.Context(), e.tp(0), off, 1); err != nil {
			t.Fatal(err)
		}
		mem, disk := r.chunks.sizes()
		if mem > cfg.MemoryBytes || disk > cfg.CacheBytes {
			t.Fatalf("cache over its bounds: memory %d > %d or disk %d > %d", mem, cfg.MemoryBytes, disk, cfg.CacheBytes)
		}
	}
	ents, err := os.ReadDir(cfg.CacheDir)
	if err != nil {
		t.Fatal(err)
	}
	var onDisk int64
	for _, ent := range ents {
		info, err := ent.Info()
		if err != nil {
			t.Fatal(err)
		}
		onDisk += info.Size()
	}
	if onDisk > cfg.CacheBytes || len(ents) != 3 {
		t.Fatalf("%d files, %d bytes on disk; want 3 files within %d", len(ents), onDisk, cfg.CacheBytes)
	}
	// The most recent chunk is still cached; the oldest was evicted.
	gets := e.bucket.gets.Load()
	if _, _, err := r.Read(t.Context(), e.tp(0), 180, 1); err != nil {
		t.Fatal(err)
	}
	if e.bucket.gets.Load() != gets {
		t.Fatal("most recent chunk was evicted")
	}
	if _, _, err := r.Read(t.Context(), e.tp(0), 0, 1); err != nil {
		t.Fatal(err)
	}
	if e.bucket.gets.Load() != gets+1 {
		t.Fatal("oldest chunk was not evicted")
	}
}

func TestStartClearsCacheDir(t *testing.T) {
	e := newEnv(t)
	cfg := DefaultConfig()
	cfg.CacheDir = filepath.Join(t.TempDir(), "cache")
	if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(cfg.CacheDir, "stale")
	if err := os.WriteFile(stale, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	newReader(t, e, cfg)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale cache file survived start: %v", err)
	}
}

func benchReader(b *testing.B, cfg Config) {
	e := newEnv(b)
	for range 4 {
		e.produce(b, 0, 100, 100)
	}
	r := newReader(b, e, cfg)
	ctx := context.Background()
	recs, _, err := r.Read(ctx, e.tp(0), 0, 1<<30)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(recs)))
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := r.Read(ctx, e.tp(0), 0, 1<<30); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReaderHot reads 8 batches of 4 chunks from the memory cache.
func BenchmarkReaderHot(b *testing.B) { benchReader(b, DefaultConfig()) }

// BenchmarkReaderCold reads them from the bucket (filesystem) every time.
func BenchmarkReaderCold(b *testing.B) {
	cfg := DefaultConfig()
	cfg.MemoryBytes = 0
	benchReader(b, cfg)
}

func TestReadMissingObjectFails(t *testing.T) {
	e := newEnv(t)
	r := newReader(t, e, DefaultConfig())
	e.produce(t, 0, 2)
	e.produce(t, 0, 3)
	batches, _, err := e.store.Batches(t.Context(), e.tp(0), 0, 1<<20)
	if err != nil || len(batches) != 2 {
		t.Fatalf("batches %v %v", batches, err)
	}
	if err := e.bucket.Delete(t.Context(), batches[1].SegmentKey); err != nil {
		t.Fatal(err)
	}
	// Two chunks loaded together; the missing one fails the read.
	_, _, err = r.Read(t.Context(), e.tp(0), 0, 1<<20)
	if err == nil || !e.bucket.IsNotFound(err) {
		t.Fatalf("read of a deleted object: %v, want not found", err)
	}
	// The chunk that exists still reads.
	recs, _, err := r.Read(t.Context(), e.tp(0), 0, 1)
	if err != nil || len(recs) == 0 {
		t.Fatalf("read of the existing chunk: %d bytes, %v", len(recs), err)
	}
}
