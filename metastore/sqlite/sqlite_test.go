package sqlite

import (
	"database/sql"
	"io/fs"
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
	storetest.Run(t, func(t *testing.T) metastore.Backend { return openTemp(t) })
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
	files, _ := fs.Glob(migrations, "migrations/*.sql")
	if err := s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(files) {
		t.Fatalf("schema_migrations rows %d, %v; want %d", n, err, len(files))
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

// TestUpgradeLifecycle opens a database written with migration 0001 only
// and checks what migration 0002 filled in from the existing rows.
func TestUpgradeLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	init, err := migrations.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	id := storetest.UpgradeTopic
	for _, q := range []string{
		string(init),
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, '0001_init.sql', 0)`,
		`INSERT INTO topics (id, name) VALUES (?1, 't')`,
		`INSERT INTO partitions (id, topic_id, partition, high_watermark) VALUES (1, ?1, 0, 3), (2, ?1, 1, 1)`,
		`INSERT INTO segments (id, key, size, state, created_at) VALUES (1, 'a', 100, 'committed', 0), (2, 'b', 100, 'committed', 0),
			(3, 'empty', 100, 'committed', 0), (4, 'pend', 0, 'pending', 0)`,
		`INSERT INTO batches VALUES (1, 0, 0, 100, 100, 1, 0, 50, 0, 10), (1, 1, 2, 200, 200, 2, 0, 50, 0, 20),
			(2, 0, 0, 300, 300, 1, 50, 50, 0, 30)`,
		`INSERT INTO producer_state VALUES (1, 7, 0, '[[0,0,0]]')`,
	} {
		if _, err := db.Exec(q, id[:]); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s, err := Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckUpgrade(t, s)
}
