package postgres

import (
	"os"
	"sync"
	"testing"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/storetest"
	"github.com/siltdata/silt/tests/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.RunCheckingLeaks(m)) }

func openFresh(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.Context(), harness.Postgres(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) metastore.Store { return openFresh(t) })
}

// TestConcurrentOpen opens one fresh database from several stores at once,
// as agents starting together do: the advisory lock makes exactly one of
// them apply each migration.
func TestConcurrentOpen(t *testing.T) {
	url := harness.Postgres(t)
	const n = 6
	var wg sync.WaitGroup
	stores := make([]*Store, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(t.Context(), url, nil)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Open %d: %v", i, errs[i])
		}
		defer stores[i].Close()
	}
	var applied int
	if err := stores[0].pool.QueryRow(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != 1 {
		t.Fatalf("schema_migrations has %d rows, want 1", applied)
	}
}
