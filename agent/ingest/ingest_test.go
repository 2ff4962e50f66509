package ingest

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/sqlite"
	"github.com/siltdata/silt/segment"
	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/segment/segmenttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	store  metastore.Store
	bucket objstore.Bucket
	topic  metastore.Topic
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b, err := objstore.NewFS(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	top, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: st, bucket: b, topic: top}
}

func (e *env) tp(p int32) metastore.TopicPartition {
	return metastore.TopicPartition{Topic: e.topic.ID, Partition: p}
}

func (e *env) item(p int32, records int, seed uint64) Item {
	b := segmenttest.New(segmenttest.Options{Records: records, Seed: seed})
	return Item{
		TopicPartition: e.tp(p),
		Batch:          b,
		Records:        int32(records),
		MaxTimestamp:   segmenttest.BaseTimestamp + int64(records-1),
		ProducerID:     -1,
		ProducerEpoch:  -1,
		BaseSequence:   -1,
	}
}

func testConfig() Config {
	c := DefaultConfig()
	c.FlushInterval = time.Hour // tests cut by size or Close unless they say otherwise
	return c
}

func start(t *testing.T, cfg Config, st metastore.Store, b objstore.Bucket, onCommit func([]metastore.TopicPartition)) *Pipeline {
	t.Helper()
	var committed func(map[metastore.TopicPartition][]metastore.Batch)
	if onCommit != nil {
		committed = func(added map[metastore.TopicPartition][]metastore.Batch) {
			tps := make([]metastore.TopicPartition, 0, len(added))
			for tp := range added {
				tps = append(tps, tp)
			}
			onCommit(tps)
		}
	}
	p, err := New(cfg, st, b, nil, prometheus.NewRegistry(), Hooks{Committed: committed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return p
}

func waitOK(t *testing.T, p *Pending) []metastore.BatchResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("result %d: %v", i, r.Err)
		}
	}
	return res
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := DefaultConfig()
	bad.FlushBytes = 0
	bad.UploadConcurrency = 0
	if err := bad.Validate(); err == nil {
		t.Fatal("invalid config accepted")
	}
}

func TestCutBySize(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.FlushBytes = 1 << 10
	var notified atomic.Int64
	p := start(t, cfg, e.store, e.bucket, func(tps []metastore.TopicPartition) { notified.Add(int64(len(tps))) })

	// Three partitions, two batches on partition 0, in one request.
	items := []Item{e.item(0, 5, 1), e.item(1, 3, 2), e.item(0, 20, 3), e.item(2, 1, 4)}
	pend, err := p.Append(t.Context(), items)
	if err != nil {
		t.Fatal(err)
	}
	res := waitOK(t, pend)
	want := []int64{0, 0, 5, 0}
	for i, r := range res {
		if r.BaseOffset != want[i] {
			t.Errorf("item %d: base offset %d, want %d", i, r.BaseOffset, want[i])
		}
	}
	if got := testutil.ToFloat64(p.m.segments.WithLabelValues("bytes")); got != 1 {
		t.Errorf("segments cut by bytes = %v, want 1", got)
	}
	if notified.Load() != 3 {
		t.Errorf("onCommit saw %d partitions, want 3", notified.Load())
	}
	offs, err := e.store.Offsets(t.Context(), e.tp(0))
	if err != nil || offs.HighWatermark != 25 {
		t.Fatalf("partition 0 offsets %+v, %v; want high watermark 25", offs, err)
	}

	// The index rows point at the batches as appended.
	batches, _, err := e.store.Batches(t.Context(), e.tp(0), 0, 1<<20)
	if err != nil || len(batches) != 2 {
		t.Fatalf("batches %v, %v", batches, err)
	}
	for i, b := range batches {
		chunk, err := e.bucket.GetRange(t.Context(), b.SegmentKey, b.ChunkOffset, b.ChunkLength)
		if err != nil {
			t.Fatal(err)
		}
		data, err := segment.DecodeChunk(chunk)
		if err != nil {
			t.Fatal(err)
		}
		got := data[b.Pos : b.Pos+b.Len]
		if string(got) != string(items[[]int{0, 2}[i]].Batch) {
			t.Errorf("batch %d bytes differ from what was appended", i)
		}
	}
}

func TestCutByTime(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.FlushInterval = time.Millisecond // nothing waits on the clock: we wait for the commit
	p := start(t, cfg, e.store, e.bucket, nil)
	pend, err := p.Append(t.Context(), []Item{e.item(1, 2, 1)})
	if err != nil {
		t.Fatal(err)
	}
	waitOK(t, pend)
	if got := testutil.ToFloat64(p.m.segments.WithLabelValues("time")); got != 1 {
		t.Errorf("segments cut by time = %v, want 1", got)
	}
	// The timer re-arms for the next segment.
	pend, err = p.Append(t.Context(), []Item{e.item(1, 2, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if res := waitOK(t, pend); res[0].BaseOffset != 2 {
		t.Errorf("second segment base offset %d, want 2", res[0].BaseOffset)
	}
}

func TestCloseFlushes(t *testing.T) {
	e := newEnv(t)
	p, err := New(testConfig(), e.store, e.bucket, nil, prometheus.NewRegistry(), Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	pend, err := p.Append(t.Context(), []Item{e.item(0, 4, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitOK(t, pend)
	if got := testutil.ToFloat64(p.m.segments.WithLabelValues("close")); got != 1 {
		t.Errorf("segments cut by close = %v, want 1", got)
	}
	if _, err := p.Append(t.Context(), []Item{e.item(0, 1, 1)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
}

// bigItem makes a batch whose segment is larger than any other a test
// writes, so holdBig holds exactly its upload (uploads run concurrently, so
// their arrival order says nothing).
func (e *env) bigItem(p int32, seed uint64) Item {
	it := e.item(p, 3, seed)
	it.Batch = segmenttest.New(segmenttest.Options{Records: 3, Seed: seed, Random: true, ValueSize: 4096})
	return it
}

func holdBig(_ int, body []byte) bool { return len(body) > 8192 }

// gatedBucket holds the Put of keys chosen by hold until release is closed,
// and reports every finished Put on putDone.
type gatedBucket struct {
	objstore.Bucket
	mu      sync.Mutex
	puts    int
	hold    func(n int, body []byte) bool // n: the Put's 0-based arrival index
	release chan struct{}
	putDone chan string
	fail    error
}

func (g *gatedBucket) Put(ctx context.Context, key string, body []byte) error {
	g.mu.Lock()
	n := g.puts
	g.puts++
	g.mu.Unlock()
	if g.hold != nil && g.hold(n, body) {
		select {
		case <-g.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	g.mu.Lock()
	err := g.fail
	g.mu.Unlock()
	if err == nil {
		err = g.Bucket.Put(ctx, key, body)
	}
	if g.putDone != nil {
		g.putDone <- key
	}
	return err
}

func TestCommitOrderUnderOverlappingUploads(t *testing.T) {
	e := newEnv(t)
	g := &gatedBucket{Bucket: e.bucket, hold: holdBig, release: make(chan struct{}), putDone: make(chan string, 4)}
	cfg := testConfig()
	cfg.FlushBytes = 1 // every Append is its own segment
	p := start(t, cfg, e.store, g, nil)

	first, err := p.Append(t.Context(), []Item{e.bigItem(0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	second, err := p.Append(t.Context(), []Item{e.item(0, 2, 2)})
	if err != nil {
		t.Fatal(err)
	}
	// The second upload finishes while the first is held.
	select {
	case <-g.putDone:
	case <-t.Context().Done():
		t.Fatal(t.Context().Err())
	}
	select {
	case <-second.Done():
		t.Fatal("second segment committed before the first")
	default:
	}
	if offs, _ := e.store.Offsets(t.Context(), e.tp(0)); offs.HighWatermark != 0 {
		t.Fatalf("high watermark %d before the first segment committed", offs.HighWatermark)
	}
	close(g.release)
	if r := waitOK(t, first); r[0].BaseOffset != 0 {
		t.Errorf("first base offset %d, want 0", r[0].BaseOffset)
	}
	if r := waitOK(t, second); r[0].BaseOffset != 3 {
		t.Errorf("second base offset %d, want 3", r[0].BaseOffset)
	}
}

func TestUploadFailureFailsEveryPending(t *testing.T) {
	e := newEnv(t)
	g := &gatedBucket{Bucket: e.bucket, fail: errors.New("injected put failure")}
	var commits atomic.Int64
	p := start(t, testConfig(), e.store, g, func([]metastore.TopicPartition) { commits.Add(1) })

	a, err := p.Append(t.Context(), []Item{e.item(0, 3, 1), e.item(1, 1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Append(t.Context(), []Item{e.item(2, 2, 3)})
	if err != nil {
		t.Fatal(err)
	}
	// Close cuts the segment holding both requests.
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, pend := range []*Pending{a, b} {
		if _, err := pend.Wait(t.Context()); !errors.Is(err, ErrSegmentFailed) || !IsRetriable(err) {
			t.Fatalf("Wait: %v, want ErrSegmentFailed", err)
		}
	}
	for p := int32(0); p < 3; p++ {
		batches, offs, err := e.store.Batches(t.Context(), e.tp(p), 0, 1<<20)
		if err != nil || len(batches) != 0 || offs.HighWatermark != 0 {
			t.Fatalf("partition %d after failed upload: %v %+v %v", p, batches, offs, err)
		}
	}
	if commits.Load() != 0 {
		t.Fatal("onCommit called for a failed segment")
	}
	if got := testutil.ToFloat64(p.m.failures.WithLabelValues("upload")); got != 1 {
		t.Errorf("upload failures = %v, want 1", got)
	}
}

func TestFailureFailsLaterSegmentsInFlight(t *testing.T) {
	e := newEnv(t)
	g := &gatedBucket{Bucket: e.bucket, hold: holdBig, release: make(chan struct{}), putDone: make(chan string, 4)}
	cfg := testConfig()
	cfg.FlushBytes = 1
	p := start(t, cfg, e.store, g, nil)
	first, err := p.Append(t.Context(), []Item{e.bigItem(0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	second, err := p.Append(t.Context(), []Item{e.item(0, 2, 2)})
	if err != nil {
		t.Fatal(err)
	}
	<-g.putDone // the second upload is done and waits behind the first
	g.mu.Lock()
	g.fail = errors.New("injected")
	g.mu.Unlock()
	close(g.release)
	for _, pend := range []*Pending{first, second} {
		if _, err := pend.Wait(t.Context()); !errors.Is(err, ErrSegmentFailed) {
			t.Fatalf("Wait: %v, want ErrSegmentFailed", err)
		}
	}
	// A later segment commits normally once the failure was dealt with.
	g.mu.Lock()
	g.fail = nil
	g.mu.Unlock()
	third, err := p.Append(t.Context(), []Item{e.item(0, 1, 3)})
	if err != nil {
		t.Fatal(err)
	}
	if r := waitOK(t, third); r[0].BaseOffset != 0 {
		t.Errorf("third base offset %d, want 0 (nothing before it committed)", r[0].BaseOffset)
	}
}

func TestBackpressure(t *testing.T) {
	e := newEnv(t)
	// Only one upload is in flight at a time here, so arrival order is
	// deterministic.
	g := &gatedBucket{Bucket: e.bucket, hold: func(n int, _ []byte) bool { return n == 0 }, release: make(chan struct{}), putDone: make(chan string, 4)}
	it := e.item(0, 10, 1)
	cfg := testConfig()
	cfg.FlushBytes = len(it.Batch)
	cfg.MaxBufferedBytes = len(it.Batch)
	p := start(t, cfg, e.store, g, nil)

	first, err := p.Append(t.Context(), []Item{it})
	if err != nil {
		t.Fatal(err)
	}
	// The buffer is full while the first upload is held: a caller whose
	// context is done gets its error instead of growing the buffer.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.Append(ctx, []Item{e.item(0, 1, 2)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append over the bound: %v, want context.Canceled", err)
	}
	if got := testutil.ToFloat64(p.m.buffered); got != float64(len(it.Batch)) {
		t.Errorf("buffered bytes %v, want %d", got, len(it.Batch))
	}
	// A blocked Append proceeds once the first segment commits.
	type out struct {
		p   *Pending
		err error
	}
	done := make(chan out, 1)
	go func() {
		pend, err := p.Append(t.Context(), []Item{e.item(0, 10, 2)}) // fills a segment: cut at once
		done <- out{pend, err}
	}()
	close(g.release)
	waitOK(t, first)
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	if r := waitOK(t, o.p); r[0].BaseOffset != 10 {
		t.Errorf("base offset %d, want 10", r[0].BaseOffset)
	}
}

// A produce blocked on the buffered-bytes bound cuts the open segment
// early only when that segment holds everything buffered (nothing in
// flight would free space); otherwise the segment waits to fill (or for
// its timer) instead of becoming one more small PUT.
func TestBackpressureCutsOnlyWhenNothingElseFreesSpace(t *testing.T) {
	e := newEnv(t)
	g := &gatedBucket{Bucket: e.bucket, hold: func(n int, _ []byte) bool { return n == 0 }, release: make(chan struct{}), putDone: make(chan string, 4)}
	l := len(e.item(0, 10, 1).Batch)
	cfg := testConfig()
	cfg.FlushBytes = 3 * l
	cfg.MaxBufferedBytes = 4 * l
	p := start(t, cfg, e.store, g, nil)
	released := false
	defer func() {
		if !released {
			close(g.release)
		}
	}()
	backpressureCuts := func() float64 { return testutil.ToFloat64(p.m.segments.WithLabelValues("backpressure")) }
	// blocked goes once through the blocking path of an Append over the
	// bound: its context is already done.
	blocked := func(items ...Item) {
		t.Helper()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := p.Append(ctx, items); !errors.Is(err, context.Canceled) {
			t.Fatalf("Append over the bound: %v, want context.Canceled", err)
		}
	}

	// 3 batches fill a segment, whose upload is held; one more opens the
	// next segment; the buffer is then full, but the held segment's
	// commit will free space.
	first, err := p.Append(t.Context(), []Item{e.item(0, 10, 1), e.item(0, 10, 2), e.item(0, 10, 3)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(t.Context(), []Item{e.item(0, 10, 4)}); err != nil {
		t.Fatal(err)
	}
	blocked(e.item(0, 10, 5))
	if got := backpressureCuts(); got != 0 {
		t.Fatalf("%v backpressure cuts with a commit in flight, want 0", got)
	}

	// Once that commits, the open segment (two batches, under
	// FlushBytes) is all that is buffered, and a request of three does
	// not fit the bound: now the open segment is cut.
	close(g.release)
	released = true
	waitOK(t, first)
	if _, err := p.Append(t.Context(), []Item{e.item(0, 10, 5)}); err != nil {
		t.Fatal(err)
	}
	blocked(e.item(0, 10, 6), e.item(0, 10, 7), e.item(0, 10, 8))
	if got := backpressureCuts(); got != 1 {
		t.Fatalf("%v backpressure cuts with only the open segment buffered, want 1", got)
	}
}

// BenchmarkPipeline measures produce throughput into a filesystem bucket
// and the SQLite metastore: 16 KiB batches over 8 partitions, one batch per
// Append, up to 1024 requests in flight (many producers).
func BenchmarkPipeline(b *testing.B) {
	dir := b.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	bucket, err := objstore.NewFS(filepath.Join(dir, "bucket"))
	if err != nil {
		b.Fatal(err)
	}
	top, err := st.CreateTopic(ctx, metastore.TopicSpec{Name: "bench", Partitions: 8})
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.FlushBytes = 1 << 20
	p, err := New(cfg, st, bucket, nil, prometheus.NewRegistry(), Hooks{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(ctx)
	batch := segmenttest.New(segmenttest.Options{Records: 64, ValueSize: 240, Random: true})
	b.SetBytes(int64(len(batch)))
	inflight := make(chan *Pending, 1024)
	done := make(chan error, 1)
	go func() {
		for pend := range inflight {
			if _, err := pend.Wait(ctx); err != nil {
				done <- err
				for range inflight {
				}
				return
			}
		}
		done <- nil
	}()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		pend, err := p.Append(ctx, []Item{{
			TopicPartition: metastore.TopicPartition{Topic: top.ID, Partition: int32(i % 8)},
			Batch:          batch, Records: 64, MaxTimestamp: segmenttest.BaseTimestamp,
			ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		}})
		if err != nil {
			b.Fatal(err)
		}
		inflight <- pend
		i++
	}
	close(inflight)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// failingCommits is the real store with CommitSegment failing.
type failingCommits struct{ metastore.Store }

func (failingCommits) CommitSegment(context.Context, metastore.Segment) ([]metastore.BatchResult, error) {
	return nil, errors.New("injected commit failure")
}

func TestCommitFailureFailsEveryPending(t *testing.T) {
	e := newEnv(t)
	p := start(t, testConfig(), failingCommits{e.store}, e.bucket, nil)
	pend, err := p.Append(t.Context(), []Item{e.item(0, 3, 1), e.item(1, 2, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := pend.Wait(t.Context()); !IsRetriable(err) {
		t.Fatalf("Wait: %v, want ErrSegmentFailed", err)
	}
	if got := testutil.ToFloat64(p.m.failures.WithLabelValues("commit")); got != 1 {
		t.Errorf("commit failures = %v, want 1", got)
	}
	if got := testutil.ToFloat64(p.m.buffered); got != 0 {
		t.Errorf("buffered bytes %v after the failure, want 0", got)
	}
	for p := int32(0); p < 2; p++ {
		if offs, err := e.store.Offsets(t.Context(), e.tp(p)); err != nil || offs.HighWatermark != 0 {
			t.Fatalf("partition %d: %+v %v", p, offs, err)
		}
	}
}
