package agent

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltdata/silt/metastore"
)

// waitFor polls cond until it holds or the test's deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// TestShutdownAnswersBufferedProduce checks Shutdown's order: a produce
// request sitting in the open segment (flush interval far away) is
// flushed, committed and answered before the connection closes.
func TestShutdownAnswersBufferedProduce(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Ingest.FlushInterval = time.Hour })
	ctx := ctxTimeout(t)
	top, err := a.createTopic(ctx, metastore.TopicSpec{Name: "drain", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := a.client(t, kgo.RecordRetries(0), kgo.RequestRetries(0))
	done := make(chan error, 1)
	cl.Produce(ctx, &kgo.Record{Topic: "drain", Value: []byte("last words")}, func(_ *kgo.Record, err error) { done <- err })

	waitFor(t, "the record to reach the segment buffer", func() bool {
		mfs, _ := a.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "silt_ingest_buffered_bytes" {
				for _, m := range mf.GetMetric() {
					if m.GetGauge().GetValue() > 0 {
						return true
					}
				}
			}
		}
		return false
	})

	sctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := a.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("produce during shutdown: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("produce never answered")
	}
	o, err := a.store.Offsets(ctx, metastore.TopicPartition{Topic: top.ID, Partition: 0})
	if err != nil || o.HighWatermark != 1 {
		t.Fatalf("high watermark %d (%v), want 1", o.HighWatermark, err)
	}
}
