package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/sqlite"
	"github.com/siltdata/silt/segment/objstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testAgent is an agent on 127.0.0.1:0 over a SQLite metastore and a
// directory bucket, both in t.TempDir().
type testAgent struct {
	*Agent
	store metastore.Backend
	reg   *prometheus.Registry
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func startAgent(t testing.TB, modify ...func(*Config)) *testAgent {
	t.Helper()
	dir := t.TempDir()
	store, err := sqlite.Open(t.Context(), filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	return startAgentOn(t, store, dir, modify...)
}

func startAgentOn(t testing.TB, store metastore.Backend, dir string, modify ...func(*Config)) *testAgent {
	t.Helper()
	return startAgentLogged(t, store, dir, testLogger(t), modify...)
}

// startAgentLogged is startAgentOn with the agent's logger.
func startAgentLogged(t testing.TB, store metastore.Backend, dir string, logger *slog.Logger, modify ...func(*Config)) *testAgent {
	t.Helper()
	bucket, err := objstore.NewFS(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatalf("fs bucket: %v", err)
	}
	cfg := DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	for _, f := range modify {
		f(&cfg)
	}
	reg := prometheus.NewRegistry()
	a, err := New(cfg, store, bucket, logger, reg)
	if err != nil {
		t.Fatalf("new agent: %v", err)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatalf("start agent: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		bucket.Close()
	})
	return &testAgent{Agent: a, store: store, reg: reg}
}

// client returns a franz-go client and an admin client for the agent.
func (a *testAgent) client(t testing.TB, opts ...kgo.Opt) (*kgo.Client, *kadm.Client) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(a.Addr())}, opts...)...)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

func ctxTimeout(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestMemoryBudgetFollowsConfig(t *testing.T) {
	c := DefaultConfig()
	if got := c.MemoryBudget(); got != 896<<20 {
		t.Fatalf("default memory budget %d MiB, want 896 MiB (README)", got>>20)
	}
	c.Ingest.MaxBufferedBytes *= 2
	c.Fetch.MemoryBytes *= 2
	if got, want := c.MemoryBudget(), int64(896+3*64+256)<<20; got != want {
		t.Fatalf("memory budget %d MiB after doubling two bounds, want %d MiB", got>>20, want>>20)
	}
}
