package ingest

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCutDeadline(t *testing.T) {
	const interval = 250 * time.Millisecond
	cut := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name           string
		first, lastCut time.Time
		want           time.Time
	}{
		{"first segment", cut, time.Time{}, cut.Add(interval)},
		{"just after the previous cut", cut.Add(30 * time.Millisecond), cut, cut.Add(interval)},
		{"late in the previous interval", cut.Add(interval - time.Millisecond), cut, cut.Add(interval)},
		{"a full interval after the previous cut", cut.Add(interval), cut, cut.Add(2 * interval)},
		{"after idle", cut.Add(time.Hour), cut, cut.Add(time.Hour + interval)},
	} {
		if got := cutDeadline(tc.first, tc.lastCut, interval); !got.Equal(tc.want) {
			t.Errorf("%s: deadline %s after the cut, want %s", tc.name, got.Sub(cut), tc.want.Sub(cut))
		}
	}
}

// TestDeadlineFollowsPreviousCut checks the pipeline wiring of
// cutDeadline: the first segment is due FlushInterval after its first
// byte, the segment opened right after a cut FlushInterval after that cut.
func TestDeadlineFollowsPreviousCut(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig() // FlushInterval: an hour, so the timer never cuts here
	cfg.FlushBytes = 4096
	p := start(t, cfg, e.store, e.bucket, nil)

	before := time.Now()
	if _, err := p.Append(t.Context(), []Item{e.item(0, 1, 1)}); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	p.mu.Lock()
	deadline := p.open.deadline
	p.mu.Unlock()
	if first := deadline.Add(-cfg.FlushInterval); first.Before(before) || first.After(after) {
		t.Errorf("first segment due %s after its Append started, want FlushInterval", deadline.Sub(before))
	}

	// A batch that takes the open segment to FlushBytes joins it and
	// cuts it: segments reach FlushBytes rather than stopping short of it.
	pend, err := p.Append(t.Context(), []Item{e.bigItem(1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	waitOK(t, pend)
	if got := testutil.ToFloat64(p.m.segments.WithLabelValues("bytes")); got != 1 {
		t.Fatalf("segments cut by bytes = %v, want 1", got)
	}

	if _, err := p.Append(t.Context(), []Item{e.item(0, 1, 3)}); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	deadline, lastCut := p.open.deadline, p.lastCut
	p.mu.Unlock()
	if lastCut.IsZero() || !deadline.Equal(lastCut.Add(cfg.FlushInterval)) {
		t.Errorf("segment after a cut due %s after the cut, want FlushInterval (%s)", deadline.Sub(lastCut), cfg.FlushInterval)
	}
}
