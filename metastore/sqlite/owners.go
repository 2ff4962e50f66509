package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/siltdata/silt/metastore"
)

// Group ownership (metastore.GroupOwnership). Every write transaction
// runs on the one writer connection (BEGIN IMMEDIATE), so a claim and a
// fenced write never interleave: the write checks the epoch and writes in
// one transaction.

// ClaimGroup implements metastore.GroupOwnership.
func (s *Store) ClaimGroup(ctx context.Context, name string) (metastore.GroupClaim, error) {
	var c metastore.GroupClaim
	err := s.write(ctx, func(tx *sql.Tx) error {
		c = metastore.GroupClaim{}
		if err := tx.QueryRowContext(ctx, `INSERT INTO group_owners (name, epoch) VALUES (?, 1)
			ON CONFLICT (name) DO UPDATE SET epoch = epoch + 1 RETURNING epoch`, name).Scan(&c.Epoch); err != nil {
			return err
		}
		var err error
		c.Group, c.Found, err = loadGroup(ctx, tx.QueryRowContext, name)
		return err
	})
	if err != nil {
		return metastore.GroupClaim{}, fmt.Errorf("claim group %s: %w", name, err)
	}
	return c, nil
}

// owned checks, in a write transaction, that epoch is the group's
// ownership epoch.
func owned(ctx context.Context, tx *sql.Tx, name string, epoch int64) error {
	var cur int64
	err := tx.QueryRowContext(ctx, `SELECT epoch FROM group_owners WHERE name = ?`, name).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) || err == nil && cur != epoch {
		return fmt.Errorf("group %s epoch %d: %w", name, epoch, metastore.ErrGroupFenced)
	}
	return err
}

// SaveOwnedGroup implements metastore.GroupOwnership.
func (s *Store) SaveOwnedGroup(ctx context.Context, epoch int64, g metastore.Group) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := owned(ctx, tx, g.Name, epoch); err != nil {
			return err
		}
		return saveGroup(ctx, tx, g)
	})
}

// CommitOwnedOffsets implements metastore.GroupOwnership.
func (s *Store) CommitOwnedOffsets(ctx context.Context, group string, epoch int64, generation int32, offsets []metastore.CommittedOffset) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := owned(ctx, tx, group, epoch); err != nil {
			return err
		}
		if generation >= 0 {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM groups WHERE name = ? AND generation = ?`, group, generation).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("commit offsets %s: generation %d: %w", group, generation, metastore.ErrIllegalGeneration)
			}
			if err != nil {
				return err
			}
		}
		return s.commitOffsets(ctx, tx, group, offsets)
	})
}

// DeleteOwnedGroup implements metastore.GroupOwnership. The owner row
// stays: the next claim continues its epochs.
func (s *Store) DeleteOwnedGroup(ctx context.Context, name string, epoch int64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := owned(ctx, tx, name, epoch); err != nil {
			return err
		}
		return deleteGroup(ctx, tx, name)
	})
}

// DeleteOwnedOffsets implements metastore.GroupOwnership.
func (s *Store) DeleteOwnedOffsets(ctx context.Context, group string, epoch int64, tps []metastore.TopicPartition) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := owned(ctx, tx, group, epoch); err != nil {
			return err
		}
		return deleteOffsets(ctx, tx, group, tps)
	})
}
