package fetch

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/segment/objstore"
)

// replayEnv produces n segments on partition 0, one batch (one chunk) of
// 10 records each, and returns the batches in offset order.
func replayEnv(t *testing.T, n int) (*env, []metastore.Batch) {
	t.Helper()
	e := newEnv(t)
	for range n {
		e.produce(t, 0, 10)
	}
	batches, _, err := e.store.Batches(t.Context(), e.tp(0), 0, 1<<30)
	if err != nil || len(batches) != n {
		t.Fatalf("batches: %d, %v; want %d", len(batches), err, n)
	}
	return e, batches
}

func prefetchConfig() Config {
	cfg := DefaultConfig()
	cfg.PrefetchChunks = 2
	cfg.PrefetchConcurrency = 2
	cfg.PrefetchMinLag = 1
	return cfg
}

// keyCountingBucket counts GETs per chunk.
type keyCountingBucket struct {
	objstore.Bucket
	mu   sync.Mutex
	gets map[chunkKey]int
}

func (b *keyCountingBucket) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	b.mu.Lock()
	b.gets[chunkKey{seg: key, offset: off, length: n}]++
	b.mu.Unlock()
	return b.Bucket.GetRange(ctx, key, off, n)
}

func (b *keyCountingBucket) count(k chunkKey) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.gets[k]
}

// prefetched records the chunks prefetch loads have read.
type prefetched struct {
	mu   sync.Mutex
	cond *sync.Cond
	done map[chunkKey]bool
}

func watchPrefetch(r *Reader) *prefetched {
	p := &prefetched{done: map[chunkKey]bool{}}
	p.cond = sync.NewCond(&p.mu)
	// Set before any Read: the goroutines read it only after a Read hands
	// them work.
	r.chunks.onPrefetch = func(k chunkKey, err error) {
		p.mu.Lock()
		if err == nil {
			p.done[k] = true
		}
		p.mu.Unlock()
		p.cond.Broadcast()
	}
	return p
}

// wait returns once every chunk of batches was prefetched, or fails the
// test at the deadline.
func (p *prefetched) wait(t *testing.T, batches ...metastore.Batch) {
	t.Helper()
	timer := time.AfterFunc(10*time.Second, p.cond.Broadcast)
	defer timer.Stop()
	deadline := time.Now().Add(10 * time.Second)
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		all := true
		for _, b := range batches {
			all = all && p.done[keyOf(b)]
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("chunks of %d batches (first at %d) not prefetched in time (%d prefetched)", len(batches), batches[0].BaseOffset, len(p.done))
		}
		p.cond.Wait()
	}
}

// sumChunks returns the decoded size of the batches' chunks (cached).
func sumChunks(r *Reader, batches []metastore.Batch) int64 {
	var n int64
	for _, b := range batches {
		data, ok := r.chunks.mem.get(keyOf(b), true)
		if !ok {
			data, _ = r.chunks.pre.get(keyOf(b), false)
		}
		n += int64(len(data))
	}
	return n
}

func keyOf(b metastore.Batch) chunkKey {
	return chunkKey{seg: b.SegmentKey, offset: b.ChunkOffset, length: b.ChunkLength}
}

func read(t *testing.T, r *Reader, tp metastore.TopicPartition, offset int64) {
	t.Helper()
	recs, _, err := r.Read(t.Context(), tp, offset, 1)
	if err != nil || len(recs) == 0 {
		t.Fatalf("read at %d: %d bytes, %v", offset, len(recs), err)
	}
}

func TestPrefetchSequentialReader(t *testing.T) {
	const n = 10
	e, batches := replayEnv(t, n)
	cfg := prefetchConfig()
	kb := &keyCountingBucket{Bucket: e.bucket, gets: map[chunkKey]int{}}
	r, err := New(cfg, e.store, kb, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	pf := watchPrefetch(r)
	tp := e.tp(0)

	// The first read only sets the position; the second continues it.
	read(t, r, tp, 0)
	read(t, r, tp, batches[1].BaseOffset)
	for k := 2; k < n; k++ {
		// Chunk k was read ahead before it is asked for: the read is a
		// prefetch pool hit and costs no GET.
		pf.wait(t, batches[k])
		hits := testutil.ToFloat64(r.m.hits.WithLabelValues("prefetch"))
		read(t, r, tp, batches[k].BaseOffset)
		if got := kb.count(keyOf(batches[k])); got != 1 {
			t.Fatalf("chunk %d read with %d GETs, want 1 (the read-ahead's)", k, got)
		}
		if got := testutil.ToFloat64(r.m.hits.WithLabelValues("prefetch")); got != hits+1 {
			t.Fatalf("read of chunk %d: prefetch hits %v -> %v, want one more", k, hits, got)
		}
		// Bounded: never more than PrefetchChunks ahead of the reader.
		if got, limit := e.bucket.gets.Load(), int64(k+1+cfg.PrefetchChunks); got > limit {
			t.Fatalf("after reading chunk %d: %d GETs, want at most %d", k, got, limit)
		}
	}
	r.Close() // fence: every prefetch has ended
	// Chunks served from the prefetch pool stay out of the hot tier:
	// only the two chunks read before read-ahead began are in memory.
	if mem, _ := r.chunks.sizes(); mem != sumChunks(r, batches[:2]) {
		t.Errorf("memory tier %d bytes, want the first two chunks' %d", mem, sumChunks(r, batches[:2]))
	}
	if got := e.bucket.gets.Load(); got != n {
		t.Errorf("%d GETs for %d chunks, want one each", got, n)
	}
	if got := testutil.ToFloat64(r.m.prefetches); got != n-2 {
		t.Errorf("silt_fetch_prefetch_total %v, want %d", got, n-2)
	}
	var want int64
	for _, b := range batches[2:] {
		want += b.ChunkLength
	}
	if got := testutil.ToFloat64(r.m.prefetchBytes); got != float64(want) {
		t.Errorf("silt_fetch_prefetch_bytes_total %v, want %d", got, want)
	}
}

func TestPrefetchBounded(t *testing.T) {
	const n = 12
	e, batches := replayEnv(t, n)
	tp := e.tp(0)

	t.Run("chunks", func(t *testing.T) {
		cfg := prefetchConfig()
		cfg.PrefetchChunks = 3
		cfg.PrefetchConcurrency = 1
		r := newReader(t, e, cfg)
		pf := watchPrefetch(r)
		e.bucket.gets.Store(0)
		read(t, r, tp, 0)
		read(t, r, tp, batches[1].BaseOffset)
		pf.wait(t, batches[2:5]...)
		r.Close() // fence: the prefetch goroutines have stopped
		if got := e.bucket.gets.Load(); got != 2+3 {
			t.Errorf("%d GETs, want 2 reads + 3 read ahead", got)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		cfg := prefetchConfig()
		cfg.PrefetchChunks = 3
		cfg.PrefetchAheadBytes = batches[2].ChunkLength // one chunk's worth
		r := newReader(t, e, cfg)
		pf := watchPrefetch(r)
		e.bucket.gets.Store(0)
		read(t, r, tp, 0)
		read(t, r, tp, batches[1].BaseOffset)
		pf.wait(t, batches[2])
		r.Close()
		if got := e.bucket.gets.Load(); got != 2+1 {
			t.Errorf("%d GETs, want 2 reads + 1 read ahead", got)
		}
	})
	t.Run("pool", func(t *testing.T) {
		// The pool holds about two decoded chunks; the hot tier is not
		// touched by read-ahead.
		cfg := prefetchConfig()
		cfg.PrefetchChunks = 4
		r := newReader(t, e, cfg)
		pf := watchPrefetch(r)
		read(t, r, tp, 0)
		read(t, r, tp, batches[1].BaseOffset)
		pf.wait(t, batches[2])
		one, _ := r.chunks.sizes()
		one /= 2 // two chunks read into memory so far
		r.Close()

		cfg.PrefetchBytes = 2*one + one/2
		r = newReader(t, e, cfg)
		pf = watchPrefetch(r)
		read(t, r, tp, 0)
		read(t, r, tp, batches[1].BaseOffset)
		memBefore, _ := r.chunks.sizes()
		for k := 2; k < n; k++ {
			pf.wait(t, batches[k])
			read(t, r, tp, batches[k].BaseOffset)
			size := r.chunks.pre.bytes()
			if size > cfg.PrefetchBytes {
				t.Fatalf("prefetch pool %d bytes, bound %d", size, cfg.PrefetchBytes)
			}
		}
		r.Close()
		if memBefore != 2*one {
			t.Errorf("memory tier %d bytes, want two chunks (%d)", memBefore, 2*one)
		}
	})
}

func TestPrefetchRandomAccessAndTail(t *testing.T) {
	const n = 8
	e, batches := replayEnv(t, n)
	tp := e.tp(0)

	t.Run("random", func(t *testing.T) {
		r := newReader(t, e, prefetchConfig())
		e.bucket.gets.Store(0)
		// Each read starts somewhere no earlier read ended.
		for _, k := range []int{7, 4, 1, 6, 3, 0} {
			read(t, r, tp, batches[k].BaseOffset)
		}
		r.Close() // fence
		if got := testutil.ToFloat64(r.m.prefetches); got != 0 {
			t.Errorf("random reads prefetched %v chunks", got)
		}
		if got := e.bucket.gets.Load(); got != 6 {
			t.Errorf("%d GETs for 6 random reads", got)
		}
	})
	t.Run("near the tail", func(t *testing.T) {
		cfg := prefetchConfig()
		cfg.PrefetchMinLag = 1 << 40
		r := newReader(t, e, cfg)
		for k := range n {
			read(t, r, tp, batches[k].BaseOffset)
		}
		r.Close()
		if got := testutil.ToFloat64(r.m.prefetches); got != 0 {
			t.Errorf("a reader near the tail prefetched %v chunks", got)
		}
	})
	t.Run("off", func(t *testing.T) {
		cfg := prefetchConfig()
		cfg.PrefetchChunks = 0
		r := newReader(t, e, cfg)
		if r.pf != nil {
			t.Fatal("read-ahead goroutines started with PrefetchChunks 0")
		}
		for k := range n {
			read(t, r, tp, batches[k].BaseOffset)
		}
		if got := testutil.ToFloat64(r.m.prefetches); got != 0 {
			t.Errorf("prefetched %v chunks with read-ahead off", got)
		}
	})
}

func TestPrefetchCloseStops(t *testing.T) {
	const n = 8
	e, batches := replayEnv(t, n)
	tp := e.tp(0)
	ignore := goleak.IgnoreCurrent()
	cfg := prefetchConfig()
	cfg.PrefetchChunks = 4
	r := newReader(t, e, cfg)

	// Warm chunks 0 and 1 without a sequential pair (the second read
	// starts inside batch 1), then hold every GET.
	read(t, r, tp, 0)
	read(t, r, tp, batches[1].BaseOffset+1)
	e.bucket.entered = make(chan struct{}, 100) // never blocks a GET
	e.bucket.release = make(chan struct{})      // never closed: GETs end with their context
	e.bucket.hold.Store(true)
	t.Cleanup(func() { e.bucket.hold.Store(false) })
	read(t, r, tp, 0)
	read(t, r, tp, batches[1].BaseOffset) // sequential: read-ahead starts
	for range cfg.PrefetchConcurrency {
		select {
		case <-e.bucket.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("read-ahead GETs did not start")
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	goleak.VerifyNone(t, ignore)
	if got := testutil.ToFloat64(r.m.prefetches); got != 0 {
		t.Errorf("%v chunks prefetched although every GET was held", got)
	}
	// Reads after Close work, without read-ahead.
	e.bucket.hold.Store(false)
	read(t, r, tp, batches[2].BaseOffset)
	read(t, r, tp, batches[3].BaseOffset)
	if got := testutil.ToFloat64(r.m.prefetches); got != 0 {
		t.Errorf("read-ahead after Close: %v", got)
	}
}

func TestPrefetchConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PrefetchChunks = -1
	cfg.PrefetchMinLag = -1
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "prefetch chunks") || !strings.Contains(err.Error(), "prefetch min lag") {
		t.Errorf("validate: %v", err)
	}
	cfg = DefaultConfig()
	cfg.PrefetchAheadBytes = 0
	cfg.PrefetchBytes = 0
	cfg.PrefetchConcurrency = 0
	err = cfg.Validate()
	for _, want := range []string{"prefetch ahead bytes", "prefetch bytes", "prefetch concurrency"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate: %v, want %q", err, want)
		}
	}
	cfg.PrefetchChunks = 0 // off: the other settings do not matter
	if err := cfg.Validate(); err != nil {
		t.Errorf("validate with read-ahead off: %v", err)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// latencyBucket adds a fixed delay to every GET, as an object store's
// request latency (the filesystem bucket has almost none).
type latencyBucket struct {
	objstore.Bucket
	delay time.Duration
}

func (b latencyBucket) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	select {
	case <-time.After(b.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.Bucket.GetRange(ctx, key, off, n)
}

// BenchmarkReaderReplay replays 32 chunks of one partition with a cold
// cache, one chunk per Read as a consumer behind the tail does, with and
// without read-ahead, on the filesystem and with 5 ms per GET.
func BenchmarkReaderReplay(b *testing.B) {
	const chunks = 32
	e := newEnv(b)
	for range chunks {
		e.produce(b, 0, 200)
	}
	tp := e.tp(0)
	for _, delay := range []time.Duration{0, 5 * time.Millisecond} {
		for _, on := range []bool{false, true} {
			name := "fs"
			if delay > 0 {
				name = "5ms"
			}
			if on {
				name += "/prefetch"
			} else {
				name += "/no-prefetch"
			}
			b.Run(name, func(b *testing.B) {
				cfg := DefaultConfig()
				cfg.PrefetchMinLag = 1
				if !on {
					cfg.PrefetchChunks = 0
				}
				ctx := context.Background()
				var total int64
				for b.Loop() {
					r, err := New(cfg, e.store, latencyBucket{Bucket: e.bucket, delay: delay}, nil, nil)
					if err != nil {
						b.Fatal(err)
					}
					total = 0
					for offset := int64(0); ; {
						recs, offs, err := r.Read(ctx, tp, offset, 1)
						if err != nil {
							b.Fatal(err)
						}
						if len(recs) == 0 {
							break
						}
						total += int64(len(recs))
						bs, _ := parseLast(recs)
						offset = bs
						if offset >= offs.HighWatermark {
							break
						}
					}
					r.Close()
				}
				b.SetBytes(total)
			})
		}
	}
}

// parseLast returns the offset after the last batch in recs.
func parseLast(recs []byte) (int64, error) {
	var next int64
	for len(recs) > 0 {
		var bt kmsg.RecordBatch
		if err := bt.ReadFrom(recs); err != nil {
			return 0, err
		}
		next = bt.FirstOffset + int64(bt.LastOffsetDelta) + 1
		recs = recs[int(bt.Length)+12:]
	}
	return next, nil
}

// A reader far behind the tail reads its batch index from the replay run:
// one larger lookup serves many fetches, commits meanwhile (which make the
// high watermark stale) do not send it back to the store, and the run
// stays within IndexBatches.
func TestReplayIndexAvoidsStore(t *testing.T) {
	const n = 60
	e, batches := replayEnv(t, n)
	cfg := DefaultConfig()
	cfg.PrefetchChunks = 0 // the reader's own lookups only
	cfg.PrefetchMinLag = 1
	cfg.IndexBatches = 25
	cfg.IndexMaxAge = time.Hour
	r := newReader(t, e, cfg)
	store := func() float64 { return testutil.ToFloat64(r.m.lookups.WithLabelValues("store")) }

	for i, b := range batches {
		recs, offs, err := r.Read(t.Context(), e.tp(0), b.BaseOffset, 1)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := parse(t, recs)
		if len(got) != 1 || got[0].FirstOffset != b.BaseOffset {
			t.Fatalf("read %d at %d: %d batches, first at %v", i, b.BaseOffset, len(got), got)
		}
		if offs.HighWatermark != batches[n-1].LastOffset+1 {
			t.Fatalf("high watermark %d, want %d", offs.HighWatermark, batches[n-1].LastOffset+1)
		}
		r.Notify([]metastore.TopicPartition{e.tp(0)}) // as a commit elsewhere would
	}
	// The first read learns the high watermark, the second finds the
	// reader behind it and asks for IndexBatches at a time after that.
	if got, most := store(), float64(2+n/cfg.IndexBatches); got > most || got < 2 {
		t.Fatalf("%v store lookups for %d sequential reads, want 2..%v", got, n, most)
	}
}

// Read-ahead plans from the replay run and adds what it looks up to it,
// so the reader it runs ahead of finds its batches cached.
func TestPrefetchFeedsReplayIndex(t *testing.T) {
	const n = 40
	e, batches := replayEnv(t, n)
	cfg := prefetchConfig()
	cfg.PrefetchChunks = 4
	cfg.IndexBatches = 8 // read-ahead must look past what the reader's lookups cached
	cfg.IndexMaxAge = time.Hour
	r := newReader(t, e, cfg)
	p := watchPrefetch(r)
	lookups := func(src string) float64 { return testutil.ToFloat64(r.m.lookups.WithLabelValues(src)) }

	read(t, r, e.tp(0), 0)
	read(t, r, e.tp(0), batches[1].BaseOffset)
	before := lookups("store")
	for _, b := range batches[2:] {
		p.wait(t, b) // planned, so in the index, before the reader gets there
		read(t, r, e.tp(0), b.BaseOffset)
	}
	if got := lookups("store") - before; got != 0 {
		t.Fatalf("%v store lookups by a reader its read-ahead planned for, want 0", got)
	}
	if lookups("prefetch") == 0 {
		t.Fatal("read-ahead never looked up batches")
	}
}

// batch is a batch index entry of [base, last] for the index tests.
func batch(base, last int64) metastore.Batch {
	return metastore.Batch{BaseOffset: base, LastOffset: last, SegmentKey: "s", Len: 100}
}

// indexHolding10 returns a tail index holding one partition's batch
// [0, 9] with high watermark 10, current.
func indexHolding10(t *testing.T) (*tailIndex, metastore.TopicPartition) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.IndexMaxAge = time.Hour
	tp := metastore.TopicPartition{Partition: 3}
	x := newTailIndex(cfg)
	if _, _, _, ok, _ := x.lookup(tp, 0, 1<<20, 1, false); ok {
		t.Fatal("empty index answered")
	}
	_, _, gen, _, _ := x.lookup(tp, 0, 1<<20, 1, false)
	x.update(tp, gen, []metastore.Batch{batch(0, 9)}, metastore.PartitionOffsets{HighWatermark: 10})
	return x, tp
}

// A commit of this agent extends the cached index only when it starts at
// the cached high watermark; one that does not (another agent committed in
// between) leaves the high watermark to the store.
func TestCommittedExtendsOnlyAContiguousIndex(t *testing.T) {
	x, tp := indexHolding10(t)

	x.committed(tp, []metastore.Batch{batch(10, 14)})
	got, offs, _, ok, _ := x.lookup(tp, 10, 1<<20, 1, false)
	if !ok || len(got) != 1 || got[0].BaseOffset != 10 || offs.HighWatermark != 15 {
		t.Fatalf("after a contiguous commit: %v %+v ok=%v; want batch 10 and high watermark 15", got, offs, ok)
	}
	if _, offs, _, ok, _ := x.lookup(tp, 15, 1<<20, 1, false); !ok || offs.HighWatermark != 15 {
		t.Fatalf("at the new high watermark: %+v ok=%v, want a current empty answer", offs, ok)
	}

	// Offsets 15-19 were committed elsewhere: this commit starts at 20.
	x.committed(tp, []metastore.Batch{batch(20, 21)})
	if _, _, _, ok, _ := x.lookup(tp, 15, 1<<20, 1, false); ok {
		t.Fatal("a commit that does not start at the cached high watermark was trusted")
	}
}

// A store answer read before a commit of this agent, arriving after it,
// does not undo it: the high watermark and the committed batch stay.
func TestStoreAnswerRacingACommitKeepsIt(t *testing.T) {
	x, tp := indexHolding10(t)

	// A commit elsewhere is announced; a reader at the end misses and
	// asks the store...
	x.invalidate([]metastore.TopicPartition{tp})
	_, _, gen, ok, _ := x.lookup(tp, 10, 1<<20, 1, false)
	if ok {
		t.Fatal("want a miss after the announcement")
	}
	// ...this agent commits [10, 15)...
	x.committed(tp, []metastore.Batch{batch(10, 14)})
	// ...and the store's answer, read before that commit, arrives.
	x.update(tp, gen, nil, metastore.PartitionOffsets{HighWatermark: 10})

	got, offs, _, ok, _ := x.lookup(tp, 10, 1<<20, 1, false)
	if !ok || len(got) != 1 || got[0].BaseOffset != 10 || offs.HighWatermark != 15 {
		t.Fatalf("after the racing answer: %v %+v ok=%v; want batch 10 and high watermark 15", got, offs, ok)
	}
	// The next commit still extends it without the store.
	x.committed(tp, []metastore.Batch{batch(15, 19)})
	if got, offs, _, ok, _ := x.lookup(tp, 15, 1<<20, 1, false); !ok || len(got) != 1 || offs.HighWatermark != 20 {
		t.Fatalf("after the next commit: %v %+v ok=%v", got, offs, ok)
	}
}
