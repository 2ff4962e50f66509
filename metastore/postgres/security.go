package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/siltdata/silt/metastore"
)

// aclChannel is the NOTIFY channel the acls table's trigger signals on
// (migrations/0004_security.sql).
const aclChannel = "silt_acls"

var (
	_ metastore.Credentials = (*Store)(nil)
	_ metastore.ACLs        = (*Store)(nil)
	_ metastore.ACLWatcher  = (*Store)(nil)
)

// UpsertScramCredential implements metastore.Credentials.
func (s *Store) UpsertScramCredential(ctx context.Context, c metastore.ScramCredential) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO scram_credentials (user_name, mechanism, iterations, salt, stored_key, server_key)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (user_name, mechanism) DO UPDATE SET iterations = excluded.iterations,
			salt = excluded.salt, stored_key = excluded.stored_key, server_key = excluded.server_key`,
		c.User, c.Mechanism, c.Iterations, c.Salt, c.StoredKey, c.ServerKey)
	if err != nil {
		return fmt.Errorf("upsert scram credential %s/%s: %w", c.User, c.Mechanism, err)
	}
	return nil
}

// DeleteScramCredential implements metastore.Credentials.
func (s *Store) DeleteScramCredential(ctx context.Context, user, mechanism string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM scram_credentials WHERE user_name = $1 AND mechanism = $2`, user, mechanism)
	if err != nil {
		return fmt.Errorf("delete scram credential %s/%s: %w", user, mechanism, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete scram credential %s/%s: %w", user, mechanism, metastore.ErrUnknownCredential)
	}
	return nil
}

// ScramCredential implements metastore.Credentials.
func (s *Store) ScramCredential(ctx context.Context, user, mechanism string) (metastore.ScramCredential, error) {
	c := metastore.ScramCredential{User: user, Mechanism: mechanism}
	err := s.pool.QueryRow(ctx, `SELECT iterations, salt, stored_key, server_key FROM scram_credentials
		WHERE user_name = $1 AND mechanism = $2`, user, mechanism).Scan(&c.Iterations, &c.Salt, &c.StoredKey, &c.ServerKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("scram credential %s/%s: %w", user, mechanism, metastore.ErrUnknownCredential)
	}
	if err != nil {
		return c, fmt.Errorf("scram credential %s/%s: %w", user, mechanism, err)
	}
	return c, nil
}

// ScramCredentials implements metastore.Credentials.
func (s *Store) ScramCredentials(ctx context.Context, users []string) ([]metastore.ScramCredential, error) {
	rows, err := s.pool.Query(ctx, `SELECT user_name, mechanism, iterations, salt, stored_key, server_key
		FROM scram_credentials WHERE $1::text[] IS NULL OR user_name = ANY ($1)
		ORDER BY user_name, mechanism`, users)
	if err != nil {
		return nil, fmt.Errorf("list scram credentials: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.ScramCredential, error) {
		var c metastore.ScramCredential
		err := r.Scan(&c.User, &c.Mechanism, &c.Iterations, &c.Salt, &c.StoredKey, &c.ServerKey)
		return c, err
	})
}

// CreateACLs implements metastore.ACLs.
func (s *Store) CreateACLs(ctx context.Context, acls []metastore.ACL) error {
	if len(acls) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		for _, a := range acls {
			if _, err := tx.Exec(ctx, `INSERT INTO acls (resource_type, name, pattern_type, principal, host, operation, permission)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
				a.ResourceType, a.Name, a.PatternType, a.Principal, a.Host, a.Operation, a.Permission); err != nil {
				return fmt.Errorf("create acl: %w", err)
			}
		}
		return nil
	})
}

// DeleteACLs implements metastore.ACLs.
func (s *Store) DeleteACLs(ctx context.Context, acls []metastore.ACL) error {
	if len(acls) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		for _, a := range acls {
			if _, err := tx.Exec(ctx, `DELETE FROM acls WHERE resource_type = $1 AND name = $2 AND pattern_type = $3
				AND principal = $4 AND host = $5 AND operation = $6 AND permission = $7`,
				a.ResourceType, a.Name, a.PatternType, a.Principal, a.Host, a.Operation, a.Permission); err != nil {
				return fmt.Errorf("delete acl: %w", err)
			}
		}
		return nil
	})
}

// ListACLs implements metastore.ACLs.
func (s *Store) ListACLs(ctx context.Context) ([]metastore.ACL, error) {
	rows, err := s.pool.Query(ctx, `SELECT resource_type, name, pattern_type, principal, host, operation, permission
		FROM acls ORDER BY resource_type, name, pattern_type, principal, host, operation, permission`)
	if err != nil {
		return nil, fmt.Errorf("list acls: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.ACL, error) {
		var a metastore.ACL
		err := r.Scan(&a.ResourceType, &a.Name, &a.PatternType, &a.Principal, &a.Host, &a.Operation, &a.Permission)
		return a, err
	})
}

// WatchACLs implements metastore.ACLWatcher with LISTEN silt_acls. Unlike
// commits, the store's own changes are reported too: the agent's cache
// learns of every change the same way.
func (s *Store) WatchACLs(ctx context.Context, fn func()) error {
	return s.watchChannel(ctx, aclChannel, func() { fn() }, func(*pgconn.Notification) { fn() })
}
