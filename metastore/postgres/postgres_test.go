package postgres

import (
	"context"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

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
	storetest.Run(t, func(t *testing.T) metastore.Backend { return openFresh(t) })
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
	if files, _ := fs.Glob(migrations, "migrations/*.sql"); applied != len(files) {
		t.Fatalf("schema_migrations has %d rows, want %d", applied, len(files))
	}
}

// TestUpgradeLifecycle opens a database written with migration 0001 only
// and checks what migration 0002 filled in from the existing rows.
func TestUpgradeLifecycle(t *testing.T) {
	url := harness.Postgres(t)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	init, err := migrations.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), string(init), pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	id := uuidOf(storetest.UpgradeTopic)
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
		`INSERT INTO schema_migrations (version, name) VALUES (1, '0001_init.sql')`,
		`INSERT INTO topics (id, name) VALUES ($1, 't')`,
		`INSERT INTO partitions (id, topic_id, partition, high_watermark) VALUES (1, $1, 0, 3), (2, $1, 1, 1)`,
		`INSERT INTO segments (id, key, size, state) VALUES (1, 'a', 100, 'committed'), (2, 'b', 100, 'committed'),
			(3, 'empty', 100, 'committed'), (4, 'pend', 0, 'pending')`,
		`INSERT INTO batches VALUES (1, 0, 0, 100, 100, 1, 0, 50, 0, 10), (1, 1, 2, 200, 200, 2, 0, 50, 0, 20),
			(2, 0, 0, 300, 300, 1, 50, 50, 0, 30)`,
		`INSERT INTO producer_state VALUES (1, 7, 0, '{0}', '{0}', '{0}')`,
	} {
		args := []any{}
		if strings.Contains(q, "$1") {
			args = append(args, id)
		}
		if _, err := conn.Exec(t.Context(), q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Serial ids were given by hand: move the sequences past them.
	if _, err := conn.Exec(t.Context(), `SELECT setval('partitions_id_seq', 2), setval('segments_id_seq', 4)`); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckUpgrade(t, s)
}
