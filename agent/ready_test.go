package agent

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltdata/silt/metastore/sqlite"
	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/segment/objstore/objstoretest"
)

// TestReady: ready once registered; unready while the bucket fails and
// again after shutdown began (deregistered).
func TestReady(t *testing.T) {
	dir := t.TempDir()
	store, err := sqlite.Open(t.Context(), filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	fs, err := objstore.NewFS(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	bucket := objstoretest.NewFaulty(fs)
	cfg := DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	a, err := New(cfg, store, bucket, testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t)
	if err := a.Ready(ctx); !errors.Is(err, errNotRegistered) {
		t.Fatalf("before Start: Ready = %v, want %v", err, errNotRegistered)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := a.Ready(ctx); err != nil {
		t.Fatalf("started: Ready = %v", err)
	}
	bucket.FailGets(nil)
	if err := a.Ready(ctx); !errors.Is(err, objstoretest.ErrInjected) {
		t.Fatalf("bucket failing: Ready = %v, want %v", err, objstoretest.ErrInjected)
	}
	bucket.Heal()
	if err := a.Ready(ctx); err != nil {
		t.Fatalf("bucket healed: Ready = %v", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Ready(ctx); !errors.Is(err, errNotRegistered) {
		t.Fatalf("after Shutdown: Ready = %v, want %v", err, errNotRegistered)
	}
}
