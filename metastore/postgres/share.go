package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/siltdata/silt/metastore"
)

// Group configs, share-group claims and share-partition rows
// (metastore.GroupConfigs, ShareGroupOwnership, SharePartitions).
//
// Share-group claims work as group claims do (owners.go), on their own
// table. Share-partition rows are changed by compare-and-set: an UPDATE
// whose WHERE names the version read, so two agents' writes of one row
// serialize on its row lock and the second finds another version and
// changes nothing. No statement holds a row lock beyond itself.

// shareOwnerCTE is ownerCTE for share groups.
const shareOwnerCTE = `owner AS (SELECT 1 FROM share_group_owners WHERE name = $1 AND epoch = %s FOR SHARE)`

// GroupConfigs implements metastore.GroupConfigs.
func (s *Store) GroupConfigs(ctx context.Context, group string) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, value FROM group_configs WHERE group_name = $1`, group)
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
	return s.tx(ctx, func(tx pgx.Tx) error {
		for k, v := range changes {
			var err error
			if v == nil {
				_, err = tx.Exec(ctx, `DELETE FROM group_configs WHERE group_name = $1 AND name = $2`, group, k)
			} else {
				_, err = tx.Exec(ctx, `INSERT INTO group_configs (group_name, name, value) VALUES ($1, $2, $3)
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
	err := s.tx(ctx, func(tx pgx.Tx) error {
		c = metastore.GroupClaim{}
		if err := tx.QueryRow(ctx, `INSERT INTO share_group_owners AS o (name, epoch) VALUES ($1, 1)
			ON CONFLICT (name) DO UPDATE SET epoch = o.epoch + 1 RETURNING epoch`, name).Scan(&c.Epoch); err != nil {
			return err
		}
		// A statement of its own, so its snapshot follows the claim.
		var err error
		c.Group, c.Found, err = loadGroup(ctx, tx, name)
		return err
	})
	if err != nil {
		return metastore.GroupClaim{}, fmt.Errorf("claim share group %s: %w", name, err)
	}
	return c, nil
}

// SaveOwnedShareGroup implements metastore.ShareGroupOwnership.
func (s *Store) SaveOwnedShareGroup(ctx context.Context, epoch int64, g metastore.Group) error {
	g.Type = metastore.GroupTypeShare
	return s.saveOwned(ctx, shareOwnerCTE, epoch, g)
}

// shareOwnedTx checks in tx that epoch is the share group's claim, and
// holds the owner row against claims until tx ends.
func shareOwnedTx(ctx context.Context, tx pgx.Tx, name string, epoch int64) error {
	var one int
	err := tx.QueryRow(ctx, `WITH `+fmt.Sprintf(shareOwnerCTE, "$2")+` SELECT 1 FROM owner`, name, epoch).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fenced(name, epoch)
	}
	return err
}

// DeleteOwnedShareGroup implements metastore.ShareGroupOwnership.
func (s *Store) DeleteOwnedShareGroup(ctx context.Context, name string, epoch int64) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := shareOwnedTx(ctx, tx, name, epoch); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM share_partitions WHERE group_name = $1`, name); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM groups WHERE name = $1 AND group_type = 'share'`, name)
		return err
	})
}

// ResetOwnedSharePartitions implements metastore.ShareGroupOwnership.
func (s *Store) ResetOwnedSharePartitions(ctx context.Context, group string, epoch int64, resets []metastore.SharePartitionReset) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := shareOwnedTx(ctx, tx, group, epoch); err != nil {
			return err
		}
		for _, r := range resets {
			var one int
			err := tx.QueryRow(ctx, `SELECT 1 FROM partitions WHERE topic_id = $1 AND partition = $2 AND NOT deleted`,
				uuidOf(r.Topic), r.Partition).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("reset share partitions %s: %w", group, metastore.ErrUnknownTopicOrPartition)
			}
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO share_partitions AS sp (group_name, topic_id, partition, state_epoch, start_offset, version, state)
				VALUES ($1, $2, $3, 1, $4, 1, '') ON CONFLICT (group_name, topic_id, partition) DO UPDATE SET
				state_epoch = sp.state_epoch + 1, start_offset = excluded.start_offset, version = sp.version + 1, state = ''`,
				group, uuidOf(r.Topic), r.Partition, r.StartOffset); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteOwnedSharePartitions implements metastore.ShareGroupOwnership.
func (s *Store) DeleteOwnedSharePartitions(ctx context.Context, group string, epoch int64, tps []metastore.TopicPartition) error {
	ids, parts := tpArrays(tps)
	var owned bool
	err := s.pool.QueryRow(ctx, `WITH `+fmt.Sprintf(shareOwnerCTE, "$4")+`,
		del AS (
			DELETE FROM share_partitions sp USING unnest($2::uuid[], $3::integer[]) AS u(topic_id, partition)
			WHERE sp.group_name = $1 AND sp.topic_id = u.topic_id AND sp.partition = u.partition
				AND EXISTS (SELECT 1 FROM owner)
		)
		SELECT EXISTS (SELECT 1 FROM owner)`, group, ids, parts, epoch).Scan(&owned)
	if err != nil {
		return fmt.Errorf("delete share partitions %s: %w", group, err)
	}
	if !owned {
		return fenced(group, epoch)
	}
	return nil
}

const sharePartitionCols = `SELECT topic_id, partition, state_epoch, start_offset, version, state FROM share_partitions`

func scanSharePartition(row pgx.Row) (metastore.SharePartition, error) {
	var (
		sp metastore.SharePartition
		id pgtype.UUID
	)
	if err := row.Scan(&id, &sp.Partition, &sp.StateEpoch, &sp.StartOffset, &sp.Version, &sp.State); err != nil {
		return sp, err
	}
	sp.Topic = id.Bytes
	return sp, nil
}

// SharePartition implements metastore.SharePartitions.
func (s *Store) SharePartition(ctx context.Context, group string, tp metastore.TopicPartition) (metastore.SharePartition, bool, error) {
	sp, err := scanSharePartition(s.pool.QueryRow(ctx, sharePartitionCols+` WHERE group_name = $1 AND topic_id = $2 AND partition = $3`,
		group, uuidOf(tp.Topic), tp.Partition))
	if errors.Is(err, pgx.ErrNoRows) {
		return metastore.SharePartition{}, false, nil
	}
	if err != nil {
		return metastore.SharePartition{}, false, fmt.Errorf("share partition %s: %w", group, err)
	}
	return sp, true, nil
}

// GroupSharePartitions implements metastore.SharePartitions.
func (s *Store) GroupSharePartitions(ctx context.Context, group string) ([]metastore.SharePartition, error) {
	rows, err := s.pool.Query(ctx, sharePartitionCols+` WHERE group_name = $1 ORDER BY topic_id, partition`, group)
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

// InitSharePartition implements metastore.SharePartitions: one statement
// inserts the row unless there is one (or the partition does not exist),
// and returns the stored row.
func (s *Store) InitSharePartition(ctx context.Context, group string, sp metastore.SharePartition) (metastore.SharePartition, error) {
	state := sp.State
	if state == nil {
		state = []byte{}
	}
	var (
		out   metastore.SharePartition
		found bool
	)
	err := retry(ctx, func() error {
		var err error
		// ON CONFLICT DO NOTHING returns nothing for an existing row, so
		// the existing row is read in a second statement when needed.
		out, err = scanSharePartition(s.pool.QueryRow(ctx, `INSERT INTO share_partitions (group_name, topic_id, partition, state_epoch, start_offset, version, state)
			SELECT $1, $2, $3, $4, $5, 1, $6 WHERE EXISTS (SELECT 1 FROM partitions WHERE topic_id = $2 AND partition = $3 AND NOT deleted)
			ON CONFLICT (group_name, topic_id, partition) DO NOTHING
			RETURNING topic_id, partition, state_epoch, start_offset, version, state`,
			group, uuidOf(sp.Topic), sp.Partition, max(sp.StateEpoch, 1), sp.StartOffset, state))
		if errors.Is(err, pgx.ErrNoRows) {
			out, found, err = s.SharePartition(ctx, group, sp.TopicPartition)
			if err == nil && !found {
				return fmt.Errorf("init share partition %s: %w", group, metastore.ErrUnknownTopicOrPartition)
			}
		}
		return err
	})
	if err != nil {
		return metastore.SharePartition{}, fmt.Errorf("init share partition %s: %w", group, err)
	}
	return out, nil
}

// UpdateSharePartition implements metastore.SharePartitions.
func (s *Store) UpdateSharePartition(ctx context.Context, group string, sp metastore.SharePartition) error {
	state := sp.State
	if state == nil {
		state = []byte{}
	}
	tag, err := s.pool.Exec(ctx, `UPDATE share_partitions SET start_offset = $1, state = $2, version = version + 1
		WHERE group_name = $3 AND topic_id = $4 AND partition = $5 AND version = $6`,
		sp.StartOffset, state, group, uuidOf(sp.Topic), sp.Partition, sp.Version)
	if err != nil {
		return fmt.Errorf("update share partition %s: %w", group, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update share partition %s version %d: %w", group, sp.Version, metastore.ErrShareStateChanged)
	}
	return nil
}
