package sqlite

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) metastore.Store { return openTemp(t) })
}

// TestReopen checks migrations are applied once and data survives.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	top, err := s.Topic(t.Context(), "t")
	if err != nil || top.Partitions != 2 {
		t.Fatalf("after reopen: %+v, %v", top, err)
	}
	var n int
	if err := s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("schema_migrations rows %d, %v", n, err)
	}
}

// TestConcurrentOpen opens one file from several stores at once, as
// several processes starting together would.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	errs := make(chan error, 4)
	stores := make(chan *Store, 4)
	for range 4 {
		go func() {
			s, err := Open(t.Context(), path, nil)
			errs <- err
			stores <- s
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
		if s := <-stores; s != nil {
			s.Close()
		}
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

// TestOddPath opens a file whose name has URI metacharacters.
func TestOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a?b#c%d.db")
	s, err := Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %s: %v", path, err)
	}
	if _, err := Open(t.Context(), ":memory:", nil); err == nil {
		t.Fatal("Open(:memory:) succeeded; the store needs a shared file")
	}
}
