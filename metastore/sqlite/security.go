package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/siltdata/silt/metastore"
)

var (
	_ metastore.Credentials = (*Store)(nil)
	_ metastore.ACLs        = (*Store)(nil)
)

// UpsertScramCredential implements metastore.Credentials.
func (s *Store) UpsertScramCredential(ctx context.Context, c metastore.ScramCredential) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO scram_credentials (user_name, mechanism, iterations, salt, stored_key, server_key)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (user_name, mechanism) DO UPDATE SET iterations = excluded.iterations,
				salt = excluded.salt, stored_key = excluded.stored_key, server_key = excluded.server_key`,
			c.User, c.Mechanism, c.Iterations, c.Salt, c.StoredKey, c.ServerKey)
		if err != nil {
			return fmt.Errorf("upsert scram credential %s/%s: %w", c.User, c.Mechanism, err)
		}
		return nil
	})
}

// DeleteScramCredential implements metastore.Credentials.
func (s *Store) DeleteScramCredential(ctx context.Context, user, mechanism string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM scram_credentials WHERE user_name = ? AND mechanism = ?`, user, mechanism)
		if err != nil {
			return fmt.Errorf("delete scram credential %s/%s: %w", user, mechanism, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("delete scram credential %s/%s: %w", user, mechanism, metastore.ErrUnknownCredential)
		}
		return nil
	})
}

// ScramCredential implements metastore.Credentials.
func (s *Store) ScramCredential(ctx context.Context, user, mechanism string) (metastore.ScramCredential, error) {
	c := metastore.ScramCredential{User: user, Mechanism: mechanism}
	err := s.r.QueryRowContext(ctx, `SELECT iterations, salt, stored_key, server_key FROM scram_credentials
		WHERE user_name = ? AND mechanism = ?`, user, mechanism).Scan(&c.Iterations, &c.Salt, &c.StoredKey, &c.ServerKey)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("scram credential %s/%s: %w", user, mechanism, metastore.ErrUnknownCredential)
	}
	if err != nil {
		return c, fmt.Errorf("scram credential %s/%s: %w", user, mechanism, err)
	}
	return c, nil
}

// ScramCredentials implements metastore.Credentials.
func (s *Store) ScramCredentials(ctx context.Context, users []string) ([]metastore.ScramCredential, error) {
	q := `SELECT user_name, mechanism, iterations, salt, stored_key, server_key FROM scram_credentials`
	args := make([]any, len(users))
	if users != nil {
		if len(users) == 0 {
			return nil, nil
		}
		for i, u := range users {
			args[i] = u
		}
		q += ` WHERE user_name IN (?` + strings.Repeat(`, ?`, len(users)-1) + `)`
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY user_name, mechanism`, args...)
	if err != nil {
		return nil, fmt.Errorf("list scram credentials: %w", err)
	}
	defer rows.Close()
	var out []metastore.ScramCredential
	for rows.Next() {
		var c metastore.ScramCredential
		if err := rows.Scan(&c.User, &c.Mechanism, &c.Iterations, &c.Salt, &c.StoredKey, &c.ServerKey); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CreateACLs implements metastore.ACLs.
func (s *Store) CreateACLs(ctx context.Context, acls []metastore.ACL) error {
	if len(acls) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		for _, a := range acls {
			if _, err := tx.ExecContext(ctx, `INSERT INTO acls (resource_type, name, pattern_type, principal, host, operation, permission)
				VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
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
	return s.write(ctx, func(tx *sql.Tx) error {
		for _, a := range acls {
			if _, err := tx.ExecContext(ctx, `DELETE FROM acls WHERE resource_type = ? AND name = ? AND pattern_type = ?
				AND principal = ? AND host = ? AND operation = ? AND permission = ?`,
				a.ResourceType, a.Name, a.PatternType, a.Principal, a.Host, a.Operation, a.Permission); err != nil {
				return fmt.Errorf("delete acl: %w", err)
			}
		}
		return nil
	})
}

// ListACLs implements metastore.ACLs.
func (s *Store) ListACLs(ctx context.Context) ([]metastore.ACL, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT resource_type, name, pattern_type, principal, host, operation, permission
		FROM acls ORDER BY resource_type, name, pattern_type, principal, host, operation, permission`)
	if err != nil {
		return nil, fmt.Errorf("list acls: %w", err)
	}
	defer rows.Close()
	var out []metastore.ACL
	for rows.Next() {
		var a metastore.ACL
		if err := rows.Scan(&a.ResourceType, &a.Name, &a.PatternType, &a.Principal, &a.Host, &a.Operation, &a.Permission); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
