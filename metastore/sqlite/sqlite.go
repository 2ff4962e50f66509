// Package sqlite is the embedded metastore backend, on modernc.org/sqlite
// (pure Go, no cgo). It is what `silt dev` uses: one process, one file.
//
// Settings, and why:
//   - WAL journal: readers never block the writer nor each other.
//   - synchronous=FULL: a produce is acknowledged once its commit returns,
//     so the commit must survive a power loss, not only a process crash;
//     with NORMAL, WAL commits since the last checkpoint can be lost on
//     power failure. FULL costs one fsync of the WAL per commit, which the
//     produce path amortizes over a whole segment.
//   - foreign_keys=ON: topic deletion cascades to partitions, the batch
//     index, producer state and committed offsets.
//   - Writes go through one connection (database/sql pool of size 1) and
//     start with BEGIN IMMEDIATE, so concurrent CommitSegment calls in this
//     process queue in Go instead of failing with SQLITE_BUSY; busy_timeout
//     covers other processes opening the same file.
//   - Reads use a separate pool of read-only connections.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/siltdata/silt/metastore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a statement waits for another process's write
// lock before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Store is the SQLite metastore.
type Store struct {
	w      *sql.DB      // the one writer connection; every write transaction
	r      *sql.DB      // read-only connections
	stmts  *commitStmts // prepared on w
	logger *slog.Logger
	now    func() time.Time
}

var _ metastore.Store = (*Store)(nil)

// Open opens (creating if needed) the metastore in the SQLite file at path
// and applies pending migrations. Tests use a file in t.TempDir().
func Open(ctx context.Context, path string, logger *slog.Logger) (*Store, error) {
	if path == "" || strings.Contains(path, ":memory:") {
		// An in-memory database is private to one connection, and the
		// store uses several: use a file in a temporary directory.
		return nil, fmt.Errorf("sqlite metastore: path %q: need a file path", path)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite metastore: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w, logger: logger, now: time.Now}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if s.stmts, err = prepareCommit(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite metastore: prepare: %w", err)
	}
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		s.stmts.close()
		w.Close()
		return nil, fmt.Errorf("sqlite metastore: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s.r = r
	if err := r.PingContext(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("sqlite metastore: open %s: %w", path, err)
	}
	return s, nil
}

var uriPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.Itoa(int(busyTimeout/time.Millisecond))+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	// The name is a URI path: escape what would end it early.
	return "file:" + uriPath.Replace(path) + "?" + q.Encode()
}

// migrate applies the embedded migrations not yet recorded in
// schema_migrations, all in one BEGIN IMMEDIATE transaction: a second
// process opening the same file waits for the first and then sees its
// versions.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		applied := map[int]bool{}
		rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			applied[v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, name := range names {
			base := path.Base(name)
			v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
			if err != nil {
				return fmt.Errorf("migration %s: bad version prefix", base)
			}
			if applied[v] {
				continue
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", base, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				v, base, s.now().UnixMicro()); err != nil {
				return err
			}
			s.logger.Info("metastore migration applied", "backend", "sqlite", "migration", base)
		}
		return nil
	})
}

// write runs fn in a write transaction (BEGIN IMMEDIATE on the single
// writer connection) and commits it when fn returns nil.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite metastore: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite metastore: commit: %w", err)
	}
	return nil
}

// read runs fn in a read transaction, so its statements see one snapshot.
func (s *Store) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite metastore: begin: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// Ping checks that both pools answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return err
	}
	return s.r.PingContext(ctx)
}

// Close closes both pools.
func (s *Store) Close() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.stmts != nil {
		s.stmts.close()
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}
