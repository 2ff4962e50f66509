package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/siltdata/silt/metastore"
)

// Group ownership (metastore.GroupOwnership). A claim updates the group's
// group_owners row, which takes a row lock that conflicts with FOR SHARE;
// every fenced write reads that row FOR SHARE with its epoch in the WHERE
// clause, in the statement (or transaction) that writes. So a claim waits
// for fenced writes in flight, and a write waiting for a claim re-reads
// the row once the claim commits (READ COMMITTED re-checks a locked row's
// conditions against its newest version), finds another epoch and writes
// nothing.

// ownerCTE selects the group's owner row when $1's epoch is the one named
// by the given parameter, locking it against claims until the statement's
// transaction ends.
const ownerCTE = `owner AS (SELECT 1 FROM group_owners WHERE name = $1 AND epoch = %s FOR SHARE)`

// ClaimGroup implements metastore.GroupOwnership.
func (s *Store) ClaimGroup(ctx context.Context, name string) (metastore.GroupClaim, error) {
	var c metastore.GroupClaim
	err := s.tx(ctx, func(tx pgx.Tx) error {
		c = metastore.GroupClaim{}
		if err := tx.QueryRow(ctx, `INSERT INTO group_owners AS o (name, epoch) VALUES ($1, 1)
			ON CONFLICT (name) DO UPDATE SET epoch = o.epoch + 1 RETURNING epoch`, name).Scan(&c.Epoch); err != nil {
			return err
		}
		// A statement of its own, so its snapshot is taken after the
		// claim holds the row: every write that got in before the claim
		// has committed and is read here.
		var err error
		c.Group, c.Found, err = loadGroup(ctx, tx, name)
		return err
	})
	if err != nil {
		return metastore.GroupClaim{}, fmt.Errorf("claim group %s: %w", name, err)
	}
	return c, nil
}

// fenced is the error of a write refused for its epoch.
func fenced(name string, epoch int64) error {
	return fmt.Errorf("group %s epoch %d: %w", name, epoch, metastore.ErrGroupFenced)
}

// SaveOwnedGroup implements metastore.GroupOwnership.
func (s *Store) SaveOwnedGroup(ctx context.Context, epoch int64, g metastore.Group) error {
	if g.Type == metastore.GroupTypeShare {
		return fmt.Errorf("save group %s: %w", g.Name, metastore.ErrGroupTypeConflict)
	}
	return s.saveOwned(ctx, ownerCTE, epoch, g)
}

// saveOwned saves g if the owner row the CTE selects (ownerCTE or
// shareOwnerCTE) holds epoch.
func (s *Store) saveOwned(ctx context.Context, cte string, epoch int64, g metastore.Group) error {
	var owned, saved bool
	err := s.pool.QueryRow(ctx, `WITH `+fmt.Sprintf(cte, "$2")+`, up AS (`+fmt.Sprintf(groupUpsert, "FROM owner")+`)
		SELECT EXISTS (SELECT 1 FROM owner), EXISTS (SELECT 1 FROM up)`,
		g.Name, epoch, g.State, g.ProtocolType, groupType(g.Type), g.Generation, g.Data).Scan(&owned, &saved)
	switch {
	case err != nil:
		return fmt.Errorf("save group %s: %w", g.Name, err)
	case !owned:
		return fenced(g.Name, epoch)
	case !saved:
		return fmt.Errorf("save group %s as %s: %w", g.Name, groupType(g.Type), metastore.ErrGroupTypeConflict)
	}
	return nil
}

// CommitOwnedOffsets implements metastore.GroupOwnership: one statement
// checks the epoch, the generation and that every partition exists, and
// upserts the offsets only when all hold.
func (s *Store) CommitOwnedOffsets(ctx context.Context, group string, epoch int64, generation int32, offsets []metastore.CommittedOffset) error {
	r := newOffsetRows(offsets)
	var (
		owned, genOK bool
		missing      int
	)
	// The generation is read in the statement's snapshot: a group save
	// that could change it after the snapshot is either this owner's
	// (which does not run concurrently with its own commits) or comes
	// after a claim, which the owner check catches.
	err := s.pool.QueryRow(ctx, `WITH `+fmt.Sprintf(ownerCTE, "$8")+`,
		gen AS (SELECT $9::integer < 0 OR EXISTS (SELECT 1 FROM groups WHERE name = $1 AND generation = $9) AS ok),
		`+offsetInput+`, `+fmt.Sprintf(offsetUpsert, "EXISTS (SELECT 1 FROM owner) AND (SELECT ok FROM gen)")+`
		SELECT EXISTS (SELECT 1 FROM owner), (SELECT ok FROM gen), n::integer FROM missing`,
		r.args(group, epoch, generation)...).Scan(&owned, &genOK, &missing)
	switch {
	case err != nil:
		return fmt.Errorf("commit offsets %s: %w", group, err)
	case !owned:
		return fenced(group, epoch)
	case !genOK:
		return fmt.Errorf("commit offsets %s: generation %d: %w", group, generation, metastore.ErrIllegalGeneration)
	case missing > 0:
		return fmt.Errorf("commit offsets %s: %d partitions: %w", group, missing, metastore.ErrUnknownTopicOrPartition)
	}
	return nil
}

// DeleteOwnedGroup implements metastore.GroupOwnership. The owner row
// stays: the next claim continues its epochs.
func (s *Store) DeleteOwnedGroup(ctx context.Context, name string, epoch int64) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `WITH `+fmt.Sprintf(ownerCTE, "$2")+` SELECT 1 FROM owner`, name, epoch).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fenced(name, epoch)
		}
		if err != nil {
			return err
		}
		return deleteGroup(ctx, tx, name)
	})
}

// DeleteOwnedOffsets implements metastore.GroupOwnership.
func (s *Store) DeleteOwnedOffsets(ctx context.Context, group string, epoch int64, tps []metastore.TopicPartition) error {
	ids, parts := tpArrays(tps)
	var owned bool
	// A data-modifying WITH runs whether or not the query reads it.
	err := s.pool.QueryRow(ctx, `WITH `+fmt.Sprintf(ownerCTE, "$4")+`,
		del AS (
			DELETE FROM offsets o USING unnest($2::uuid[], $3::integer[]) AS u(topic_id, partition)
			WHERE o.group_name = $1 AND o.topic_id = u.topic_id AND o.partition = u.partition
				AND EXISTS (SELECT 1 FROM owner)
		)
		SELECT EXISTS (SELECT 1 FROM owner)`, group, ids, parts, epoch).Scan(&owned)
	if err != nil {
		return fmt.Errorf("delete offsets %s: %w", group, err)
	}
	if !owned {
		return fenced(group, epoch)
	}
	return nil
}
