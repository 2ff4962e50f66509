package ingest

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func earlyCuts(p *Pipeline) float64 { return testutil.ToFloat64(p.m.segments.WithLabelValues("early")) }

// appendN appends n one-record items from src and returns their Pendings.
func (e *env) appendN(t *testing.T, p *Pipeline, src *Source, n int, seed uint64) []*Pending {
	t.Helper()
	var out []*Pending
	for i := range n {
		pend, err := p.AppendFrom(t.Context(), src, []Item{e.item(int32(i%3), 1, seed+uint64(i))})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pend)
	}
	return out
}

// TestEarlyCutOneProducer: one connection's StalledRequests appends cut
// the open segment at once (the flush interval is an hour), not one
// append fewer, and the count follows the commits.
func TestEarlyCutOneProducer(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.EarlyCutMinInterval = 0
	p := start(t, cfg, e.store, e.bucket, nil)
	src := p.NewSource()
	defer src.Close()

	pends := e.appendN(t, p, src, StalledRequests-1, 1)
	if got := earlyCuts(p); got != 0 {
		t.Fatalf("%d appends waiting: %v early cuts, want 0", StalledRequests-1, got)
	}
	pends = append(pends, e.appendN(t, p, src, 1, 100)...)
	if got := earlyCuts(p); got != 1 {
		t.Fatalf("%d appends waiting: %v early cuts, want 1", StalledRequests, got)
	}
	for _, pend := range pends {
		waitOK(t, pend)
	}
	p.mu.Lock()
	waiting, idle := src.waiting, src.kind == sourceIdle
	p.mu.Unlock()
	if waiting != 0 || !idle {
		t.Fatalf("after the commit: %d waiting (idle %v), want 0 (idle)", waiting, idle)
	}

	// The next round cuts again; appends without a Source are not
	// counted and do not cut.
	e.appendN(t, p, nil, StalledRequests, 200)
	if got := earlyCuts(p); got != 1 {
		t.Fatalf("appends without a Source: %v early cuts, want 1", got)
	}
	for _, pend := range e.appendN(t, p, src, StalledRequests, 300) {
		waitOK(t, pend)
	}
	if got := earlyCuts(p); got != 2 {
		t.Fatalf("second round: %v early cuts, want 2", got)
	}
}

// TestEarlyCutWaitsForEveryProducer: a connection that can still send
// (fewer than StalledRequests waiting, or none waiting but recently
// active) holds the early cut back; a closed or long idle one does not.
func TestEarlyCutWaitsForEveryProducer(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.EarlyCutMinInterval = 0
	cfg.FlushBytes = 8 << 10
	p := start(t, cfg, e.store, e.bucket, nil)
	a, b, c := p.NewSource(), p.NewSource(), p.NewSource()
	defer a.Close()
	defer b.Close()

	// c appended and was answered (a big item cuts by bytes): it is idle
	// but recent, so it may send again at any moment.
	big, err := p.AppendFrom(t.Context(), c, []Item{e.bigItem(0, 1), e.bigItem(1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	waitOK(t, big)

	pends := e.appendN(t, p, a, StalledRequests, 10)
	e.appendN(t, p, b, 2, 20)
	p.mu.Lock()
	sending := p.sources.sending
	p.mu.Unlock()
	if got := earlyCuts(p); got != 0 || sending != 1 {
		t.Fatalf("b can still send: %v early cuts, %d sources sending; want 0, 1", got, sending)
	}
	pends = append(pends, e.appendN(t, p, b, StalledRequests-2, 30)...)
	if got := earlyCuts(p); got != 0 {
		t.Fatalf("c answered recently: %v early cuts, want 0", got)
	}

	// Seen a flush interval later, c is dormant: a and b are all there
	// is, and both are stalled.
	p.mu.Lock()
	stalled := p.stalledLocked(b, time.Now().Add(cfg.FlushInterval))
	_, cIdle := p.sources.idle[c]
	cKind := c.kind
	p.mu.Unlock()
	if cKind != sourceOff {
		t.Errorf("c idle for a flush interval: kind %d, want off (dormant)", cKind)
	}
	if !stalled || cIdle {
		t.Fatalf("with c idle for a flush interval: stalled %v, c still idle %v; want true, false", stalled, cIdle)
	}

	// So is a closed c, now.
	c.Close()
	p.mu.Lock()
	if p.open.bytes == 0 || !p.earlyCutLocked(b, time.Now()) {
		t.Error("c closed, a and b stalled: no early cut")
	}
	p.mu.Unlock()
	for _, pend := range pends {
		waitOK(t, pend)
	}
}

// TestEarlyCutOnlyWhenAllWaitInTheOpenSegment: a connection with
// requests in a segment already cut is not stalled on the open one (the
// cut segment's commit lets it send more), however many it has waiting.
func TestEarlyCutOnlyWhenAllWaitInTheOpenSegment(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.EarlyCutMinInterval = 0
	cfg.FlushBytes = 8 << 10
	gb := &gatedBucket{Bucket: e.bucket, hold: holdBig, release: make(chan struct{}), putDone: make(chan string, 16)}
	p := start(t, cfg, e.store, gb, nil)
	src := p.NewSource()
	defer src.Close()

	// Three of src's requests go into a segment that a big append cuts
	// by bytes; its upload is held, so they stay waiting.
	first := e.appendN(t, p, src, 3, 1)
	big, err := p.Append(t.Context(), []Item{e.bigItem(0, 2), e.bigItem(1, 3)})
	if err != nil {
		t.Fatal(err)
	}
	rest := e.appendN(t, p, src, StalledRequests-1, 10)
	p.mu.Lock()
	waiting, kind := src.waiting, src.kind
	p.mu.Unlock()
	if got := earlyCuts(p); got != 0 || waiting != 3+StalledRequests-1 || kind != sourceSending {
		t.Fatalf("%d waiting, %d of them in a cut segment: %v early cuts, kind %d; want 0, sending", waiting, 3, got, kind)
	}

	// Once the cut segment commits, src's requests all wait in the open
	// segment; one more makes StalledRequests there and cuts it.
	close(gb.release)
	for _, pend := range append(first, big) {
		waitOK(t, pend)
	}
	rest = append(rest, e.appendN(t, p, src, 1, 20)...)
	if got := earlyCuts(p); got != 1 {
		t.Fatalf("%d requests waiting, all in the open segment: %v early cuts, want 1", StalledRequests, got)
	}
	for _, pend := range rest {
		waitOK(t, pend)
	}
}

// TestEarlyCutMinInterval: an early cut comes no sooner than
// EarlyCutMinInterval after the previous cut; the timer makes it then.
func TestEarlyCutMinInterval(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.EarlyCutMinInterval = 200 * time.Millisecond
	cfg.FlushBytes = 8 << 10
	p := start(t, cfg, e.store, e.bucket, nil)
	src := p.NewSource()
	defer src.Close()

	first, err := p.Append(t.Context(), []Item{e.bigItem(0, 2), e.bigItem(1, 3)})
	if err != nil {
		t.Fatal(err)
	}
	waitOK(t, first)
	p.mu.Lock()
	lastCut := p.lastCut
	p.mu.Unlock()

	pends := e.appendN(t, p, src, StalledRequests, 10)
	for _, pend := range pends {
		waitOK(t, pend)
	}
	p.mu.Lock()
	cut := p.lastCut
	p.mu.Unlock()
	if got := earlyCuts(p); got != 1 {
		t.Fatalf("%v early cuts, want 1", got)
	}
	if gap := cut.Sub(lastCut); gap < cfg.EarlyCutMinInterval {
		t.Fatalf("early cut %s after the previous cut, want at least %s", gap, cfg.EarlyCutMinInterval)
	}
}

// TestEarlyCutOff: with EarlyCut false, stalled producers wait for the
// flush interval.
func TestEarlyCutOff(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.EarlyCut = false
	p := start(t, cfg, e.store, e.bucket, nil)
	src := p.NewSource()
	defer src.Close()
	e.appendN(t, p, src, 2*StalledRequests, 1)
	p.mu.Lock()
	open := p.open.bytes
	p.mu.Unlock()
	if got := earlyCuts(p); got != 0 || open == 0 {
		t.Fatalf("early cut off: %v early cuts, open segment %d bytes; want 0 and every append still open", got, open)
	}
}
