package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/siltdata/silt/metastore"
)

// Group configs, share-group claims and share-partition rows
// (metastore.GroupConfigs, ShareGroupOwnership, SharePartitions). As for
// group ownership, every write runs on the one writer connection, so a
// claim and a fenced write, or two compare-and-sets of one row, never
// interleave.

// GroupConfigs implements metastore.GroupConfigs.
func (s *Store) GroupConfigs(ctx context.Context, group string) (map[string]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, value FROM group_configs WHERE group_name = ?`, group)
	if err != nil {
		return nil, fmt.Errorf("group configs %s: %w", group, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// AlterGroupConfigs implements metastore.GroupConfigs.
func (s *Store) AlterGroupConfigs(ctx context.Context, group string, changes map[string]*string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		for k, v := range changes {
			var err error
			if v == nil {
				_, err = tx.ExecContext(ctx, `DELETE FROM group_configs WHERE group_name = ? AND name = ?`, group, k)
			} else {
				_, err = tx.ExecContext(ctx, `INSERT INTO group_configs (group_name, name, value) VALUES (?, ?, ?)
					ON CONFLICT (group_name, name) DO UPDATE SET value = excluded.value`, group, k, *v)
			}
			if err != nil {
				return fmt.Errorf("alter group configs %s: %w", group, err)
			}
		}
		return nil
	})
}

// ClaimShareGroup implements metastore.ShareGroupOwnership.
func (s *Store) ClaimShareGroup(ctx context.Context, name string) (metastore.GroupClaim, error) {
	var c metastore.GroupClaim
	err := s.write(ctx, func(tx *sql.Tx) error {
		c = metastore.GroupClaim{}
		if err := tx.QueryRowContext(ctx, `INSERT INTO share_group_owners (name, epoch) VALUES (?, 1)
			ON CONFLICT (name) DO UPDATE SET epoch = epoch + 1 RETURNING epoch`, name).Scan(&c.Epoch); err != nil {
			return err
		}
		var err error
		c.Group, c.Found, err = loadGroup(ctx, tx.QueryRowContext, name)
		return err
	})
	if err != nil {
		return metastore.GroupClaim{}, fmt.Errorf("claim share group %s: %w", name, err)
	}
	return c, nil
}

// shareOwned checks, in a write transaction, that epoch is the share
// group's ownership epoch.
func shareOwned(ctx context.Context, tx *sql.Tx, name string, epoch int64) error {
	var cur int64
	err := tx.QueryRowContext(ctx, `SELECT epoch FROM share_group_owners WHERE name = ?`, name).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) || err == nil && cur != epoch {
		return fmt.Errorf("share group %s epoch %d: %w", name, epoch, metastore.ErrGroupFenced)
	}
	return err
}

// SaveOwnedShareGroup implements metastore.ShareGroupOwnership.
func (s *Store) SaveOwnedShareGroup(ctx context.Context, epoch int64, g metastore.Group) error {
	g.Type = metastore.GroupTypeShare
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := shareOwned(ctx, tx, g.Name, epoch); err != nil {
			return err
		}
		return saveGroup(ctx, tx, g)
	})
}

// DeleteOwnedShareGroup implements metastore.ShareGroupOwnership.
func (s *Store) DeleteOwnedShareGroup(ctx context.Context, name string, epoch int64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := shareOwned(ctx, tx, name, epoch); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM share_partitions WHERE group_name = ?`, name); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM groups WHERE name = ? AND group_type = 'share'`, name)
		return err
	})
}

// partitionExists checks, in tx, that tp is a partition of a live topic.
func partitionExists(ctx context.Context, tx *sql.Tx, tp metastore.TopicPartition) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM partitions WHERE topic_id = ? AND partition = ? AND deleted = 0`, tp.Topic[:], tp.Partition).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%x/%d: %w", tp.Topic[:], tp.Partition, metastore.ErrUnknownTopicOrPartition)
	}
	return err
}

// ResetOwnedSharePartitions implements metastore.ShareGroupOwnership.
func (s *Store) ResetOwnedSharePartitions(ctx context.Context, group string, epoch int64, resets []metastore.SharePartitionReset) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := shareOwned(ctx, tx, group, epoch); err != nil {
			return err
		}
		for _, r := range resets {
			if err := partitionExists(ctx, tx, r.TopicPartition); err != nil {
				return fmt.Errorf("reset share partitions %s: %w", group, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO share_partitions (group_name, topic_id, partition, state_epoch, start_offset, version, state)
				VALUES (?, ?, ?, 1, ?, 1, x'') ON CONFLICT (group_name, topic_id, partition) DO UPDATE SET
				state_epoch = state_epoch + 1, start_offset = excluded.start_offset, version = version + 1, state = x''`,
				group, r.Topic[:], r.Partition, r.StartOffset); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteOwnedSharePartitions implements metastore.ShareGroupOwnership.
func (s *Store) DeleteOwnedSharePartitions(ctx context.Context, group string, epoch int64, tps []metastore.TopicPartition) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := shareOwned(ctx, tx, group, epoch); err != nil {
			return err
		}
		for _, tp := range tps {
			if _, err := tx.ExecContext(ctx, `DELETE FROM share_partitions WHERE group_name = ? AND topic_id = ? AND partition = ?`,
				group, tp.Topic[:], tp.Partition); err != nil {
				return err
			}
		}
		return nil
	})
}

const sharePartitionCols = `SELECT topic_id, partition, state_epoch, start_offset, version, state FROM share_partitions`

func scanSharePartition(row interface{ Scan(...any) error }) (metastore.SharePartition, error) {
	var (
		sp metastore.SharePartition
		id []byte
	)
	if err := row.Scan(&id, &sp.Partition, &sp.StateEpoch, &sp.StartOffset, &sp.Version, &sp.State); err != nil {
		return sp, err
	}
	copy(sp.Topic[:], id)
	return sp, nil
}

// SharePartition implements metastore.SharePartitions.
func (s *Store) SharePartition(ctx context.Context, group string, tp metastore.TopicPartition) (metastore.SharePartition, bool, error) {
	sp, err := scanSharePartition(s.r.QueryRowContext(ctx, sharePartitionCols+` WHERE group_name = ? AND topic_id = ? AND partition = ?`,
		group, tp.Topic[:], tp.Partition))
	if errors.Is(err, sql.ErrNoRows) {
		return metastore.SharePartition{}, false, nil
	}
	if err != nil {
		return metastore.SharePartition{}, false, fmt.Errorf("share partition %s: %w", group, err)
	}
	return sp, true, nil
}

// GroupSharePartitions implements metastore.SharePartitions.
func (s *Store) GroupSharePartitions(ctx context.Context, group string) ([]metastore.SharePartition, error) {
	rows, err := s.r.QueryContext(ctx, sharePartitionCols+` WHERE group_name = ? ORDER BY topic_id, partition`, group)
	if err != nil {
		return nil, fmt.Errorf("share partitions %s: %w", group, err)
	}
	defer rows.Close()
	var out []metastore.SharePartition
	for rows.Next() {
		sp, err := scanSharePartition(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	return out, rows.Err()
}

// InitSharePartition implements metastore.SharePartitions.
func (s *Store) InitSharePartition(ctx context.Context, group string, sp metastore.SharePartition) (metastore.SharePartition, error) {
	var out metastore.SharePartition
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := partitionExists(ctx, tx, sp.TopicPartition); err != nil {
			return err
		}
		epoch := max(sp.StateEpoch, 1)
		state := sp.State
		if state == nil {
			state = []byte{}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO share_partitions (group_name, topic_id, partition, state_epoch, start_offset, version, state)
			VALUES (?, ?, ?, ?, ?, 1, ?) ON CONFLICT (group_name, topic_id, partition) DO NOTHING`,
			group, sp.Topic[:], sp.Partition, epoch, sp.StartOffset, state); err != nil {
			return err
		}
		var err error
		out, err = scanSharePartition(tx.QueryRowContext(ctx, sharePartitionCols+` WHERE group_name = ? AND topic_id = ? AND partition = ?`,
			group, sp.Topic[:], sp.Partition))
		return err
	})
	if err != nil {
		return metastore.SharePartition{}, fmt.Errorf("init share partition %s: %w", group, err)
	}
	return out, nil
}

// UpdateSharePartition implements metastore.SharePartitions.
func (s *Store) UpdateSharePartition(ctx context.Context, group string, sp metastore.SharePartition) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		state := sp.State
		if state == nil {
			state = []byte{}
		}
		res, err := tx.ExecContext(ctx, `UPDATE share_partitions SET start_offset = ?, state = ?, version = version + 1
			WHERE group_name = ? AND topic_id = ? AND partition = ? AND version = ?`,
			sp.StartOffset, state, group, sp.Topic[:], sp.Partition, sp.Version)
		if err != nil {
			return fmt.Errorf("update share partition %s: %w", group, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, fmt.Errorf("update share partition %s version %d: %w", group, sp.Version, metastore.ErrShareStateChanged))
		}
		return nil
	})
}
