// Package postgres is the production metastore backend, on Postgres through
// pgx v5 (pgxpool). Several agents share one database; every agent can
// commit to every partition, and the database orders the commits.
//
// A segment commit is one round trip: one call of the plpgsql function
// silt_commit_segment (migrations/0002_lifecycle.sql) with the batches as
// parallel arrays. A pipelined pgx.Batch would also be one network round
// trip, but the producer checks need what the lock statement read before
// the offsets can be assigned, and the watermark update needs the offsets:
// a pipeline cannot branch on earlier results, so those steps would come
// back to Go and cost round trips while the partition row locks are held.
// Inside the function the locks are held only for the server-side work.
//
// Transactions run at READ COMMITTED; the row locks (taken in partition
// id order, so overlapping commits queue rather than deadlock) are what
// serialize commits. Deadlock and serialization failures, which can still
// come from elsewhere (e.g. DeleteTopic against a commit), are retried.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/siltdata/silt/metastore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Advisory lock keys (pg_advisory_xact_lock), arbitrary but fixed.
const (
	// migrationLock serializes schema migrations of agents starting at once.
	migrationLock int64 = 0x73696c74_0001
	// agentLock serializes agent registration, so two agents never pick
	// the same lowest free node id.
	agentLock int64 = 0x73696c74_0002
)

// maxAttempts bounds retries of a transaction that failed with a deadlock
// or serialization error.
const maxAttempts = 8

// SQLSTATEs silt_commit_segment raises for a segment key that is already
// committed, and for one that is not pending (never recorded, or claimed
// by garbage collection).
const (
	errSegmentCommittedCode = "SL001"
	errSegmentGoneCode      = "SL002"
)

// Store is the Postgres metastore.
type Store struct {
	pool   *pgxpool.Pool
	logger *slog.Logger

	// own holds the backend process ids of this store's open
	// connections: a commit notification sent by one of them is this
	// store's own commit, which WatchCommits leaves out.
	own sync.Map // uint32 -> struct{}
}

var _ metastore.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or DSN that
// pgxpool accepts, including pool_max_conns) and applies pending
// migrations.
func Open(ctx context.Context, url string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres metastore: %w", err)
	}
	s := &Store{logger: logger}
	afterConnect, beforeClose := cfg.AfterConnect, cfg.BeforeClose
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		s.own.Store(c.PgConn().PID(), struct{}{})
		if afterConnect != nil {
			return afterConnect(ctx, c)
		}
		return nil
	}
	cfg.BeforeClose = func(c *pgx.Conn) {
		s.own.Delete(c.PgConn().PID())
		if beforeClose != nil {
			beforeClose(c)
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres metastore: %w", err)
	}
	s.pool = pool
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// migrate applies the embedded migrations not yet in schema_migrations in
// one transaction, holding an advisory lock so that agents starting
// together apply each migration once.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return err
		}
		done := map[int]bool{}
		for _, v := range applied {
			done[int(v)] = true
		}
		for _, name := range names {
			base := path.Base(name)
			v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
			if err != nil {
				return fmt.Errorf("migration %s: bad version prefix", base)
			}
			if done[v] {
				continue
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			// Simple protocol: a migration is several statements.
			if _, err := tx.Exec(ctx, string(body), pgx.QueryExecModeSimpleProtocol); err != nil {
				return fmt.Errorf("migration %s: %w", base, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, v, base); err != nil {
				return err
			}
			s.logger.Info("metastore migration applied", "backend", "postgres", "migration", base)
		}
		return nil
	})
}

// tx runs fn in a transaction, retrying on deadlock and serialization
// failures with a short, growing pause.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return retry(ctx, func() error { return pgx.BeginFunc(ctx, s.pool, fn) })
}

// retry runs fn again while it fails with a deadlock or serialization
// failure: both mean "nothing happened, try again".
func retry(ctx context.Context, fn func() error) error {
	pause := time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !retryable(err) || attempt == maxAttempts {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		pause *= 2
	}
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	return false
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func uuidOf(id metastore.TopicID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

// Ping implements metastore.Store.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Close implements metastore.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}
