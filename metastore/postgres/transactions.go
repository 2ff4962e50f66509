package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/siltdata/silt/metastore"
)

var _ metastore.Transactions = (*Store)(nil)

// ClaimTransaction implements metastore.Transactions.
func (s *Store) ClaimTransaction(ctx context.Context, id string) (int64, error) {
	var epoch int64
	err := s.pool.QueryRow(ctx, `INSERT INTO txn_owners AS o (id, epoch) VALUES ($1, 1)
		ON CONFLICT (id) DO UPDATE SET epoch = o.epoch + 1 RETURNING o.epoch`, id).Scan(&epoch)
	if err != nil {
		return 0, fmt.Errorf("claim transactional id %q: %w", id, err)
	}
	return epoch, nil
}

// checkClaim share-locks the id's owner row and checks the claim: a
// later ClaimTransaction waits for this transaction, and this one fails
// once a later claim replaced the caller's. Claim 0 is not a
// coordinator's write and checks nothing.
func checkClaim(ctx context.Context, tx pgx.Tx, id string, claim int64) error {
	if claim == 0 {
		return nil
	}
	var epoch int64
	err := tx.QueryRow(ctx, `SELECT epoch FROM txn_owners WHERE id = $1 FOR SHARE`, id).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && epoch != claim {
		return fmt.Errorf("transactional id %q, claim %d (now %d): %w", id, claim, epoch, metastore.ErrTxnCoordinatorFenced)
	}
	return err
}

// loadTxn reads (and locks) a transactional id's row; nil when unknown.
func loadTxn(ctx context.Context, tx pgx.Tx, id string) (*metastore.Txn, error) {
	t := metastore.Txn{ID: id}
	var (
		state            string
		started, updated pgtype.Timestamptz
	)
	err := tx.QueryRow(ctx, `SELECT producer_id, prev_producer_id, epoch, last_epoch, state, timeout_ms, started_at, updated_at
		FROM transactions WHERE transactional_id = $1 FOR UPDATE`, id).
		Scan(&t.ProducerID, &t.PrevProducerID, &t.Epoch, &t.LastEpoch, &state, &t.TimeoutMs, &started, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t.State = metastore.TxnState(state)
	t.Started, t.Updated = started.Time, updated.Time
	return &t, nil
}

func nextProducerID(ctx context.Context, tx pgx.Tx) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `SELECT nextval('producer_ids')`).Scan(&id)
	return id, err
}

// writeEnd writes an EndPlan (see silt_end_txn) and returns the
// partitions it wrote markers to.
func writeEnd(ctx context.Context, tx pgx.Tx, cur *metastore.Txn, p *metastore.EndPlan, claim int64) ([]metastore.TopicPartition, error) {
	if p.Rotate {
		id, err := nextProducerID(ctx, tx)
		if err != nil {
			return nil, err
		}
		p.Next.ProducerID, p.ProducerID = id, id
	}
	rows, err := tx.Query(ctx, `SELECT out_topic, out_partition FROM silt_end_txn($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		cur.ID, int32(claim), cur.ProducerID, p.MarkerEpoch, p.Commit,
		p.Next.ProducerID, p.Next.PrevProducerID, p.Next.Epoch, p.Next.LastEpoch, string(p.Next.State))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.TopicPartition, error) {
		var (
			tp    metastore.TopicPartition
			topic pgtype.UUID
		)
		err := r.Scan(&topic, &tp.Partition)
		tp.Topic = topic.Bytes
		return tp, err
	})
}

// InitProducer implements metastore.Transactions.
func (s *Store) InitProducer(ctx context.Context, req metastore.InitProducerRequest) (metastore.InitProducerResult, error) {
	var res metastore.InitProducerResult
	var planErr error
	err := s.tx(ctx, func(tx pgx.Tx) error {
		res, planErr = metastore.InitProducerResult{}, nil
		if err := checkClaim(ctx, tx, req.ID, req.Claim); err != nil {
			return err
		}
		cur, err := loadTxn(ctx, tx, req.ID)
		if err != nil {
			return err
		}
		p := metastore.PlanInit(cur, req, time.Now())
		if p.Abort != nil && p.Abort.Write {
			if res.Written, err = writeEnd(ctx, tx, cur, p.Abort, req.Claim); err != nil {
				return fmt.Errorf("abort the open transaction: %w", err)
			}
		}
		if p.Err != nil {
			planErr = p.Err // the abort stays written
			return nil
		}
		n := p.Next
		if p.Create || p.Rotate {
			if n.ProducerID, err = nextProducerID(ctx, tx); err != nil {
				return err
			}
		}
		if p.Create {
			_, err = tx.Exec(ctx, `INSERT INTO transactions (transactional_id, producer_id, prev_producer_id, epoch, last_epoch, state, timeout_ms)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, n.ID, n.ProducerID, n.PrevProducerID, n.Epoch, n.LastEpoch, string(n.State), n.TimeoutMs)
		} else {
			_, err = tx.Exec(ctx, `UPDATE transactions SET producer_id = $2, prev_producer_id = $3, epoch = $4, last_epoch = $5,
					state = $6, timeout_ms = $7, started_at = NULL, expires_at = NULL, updated_at = now()
				WHERE transactional_id = $1`, n.ID, n.ProducerID, n.PrevProducerID, n.Epoch, n.LastEpoch, string(n.State), n.TimeoutMs)
		}
		if err != nil {
			return err
		}
		res.ProducerID, res.Epoch = n.ProducerID, n.Epoch
		return nil
	})
	if err != nil {
		return metastore.InitProducerResult{}, fmt.Errorf("init producer of %q: %w", req.ID, err)
	}
	if planErr != nil {
		return metastore.InitProducerResult{Written: res.Written}, fmt.Errorf("init producer of %q: %w", req.ID, planErr)
	}
	return res, nil
}

// partitionIDs resolves partitions to their ids; a partition that does not
// exist (or whose topic is deleted) fails with ErrUnknownTopicOrPartition.
func partitionIDs(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, tps []metastore.TopicPartition) (map[metastore.TopicPartition]int64, error) {
	topics := make([]pgtype.UUID, len(tps))
	parts := make([]int32, len(tps))
	for i, tp := range tps {
		topics[i], parts[i] = uuidOf(tp.Topic), tp.Partition
	}
	rows, err := q.Query(ctx, `SELECT p.id, p.topic_id, p.partition FROM partitions p
		JOIN unnest($1::uuid[], $2::integer[]) AS u(t, pa) ON p.topic_id = u.t AND p.partition = u.pa
		WHERE NOT p.deleted`, topics, parts)
	if err != nil {
		return nil, err
	}
	ids := make(map[metastore.TopicPartition]int64, len(tps))
	var (
		id    int64
		topic pgtype.UUID
		part  int32
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &topic, &part}, func() error {
		ids[metastore.TopicPartition{Topic: topic.Bytes, Partition: part}] = id
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, tp := range tps {
		if _, ok := ids[tp]; !ok {
			return nil, unknownTP(tp)
		}
	}
	return ids, nil
}

// startOngoing makes the transaction Ongoing (and starts its timeout) if
// it was not.
const startOngoing = `UPDATE transactions SET
		started_at = CASE WHEN state = 'Ongoing' THEN started_at ELSE now() END,
		expires_at = CASE WHEN state = 'Ongoing' THEN expires_at ELSE now() + timeout_ms * interval '1 millisecond' END,
		state = 'Ongoing', updated_at = now()
	WHERE transactional_id = $1`

// AddToTransaction implements metastore.Transactions.
func (s *Store) AddToTransaction(ctx context.Context, req metastore.AddToTxnRequest) (metastore.AddToTxnResult, error) {
	var res metastore.AddToTxnResult
	err := s.tx(ctx, func(tx pgx.Tx) error {
		res = metastore.AddToTxnResult{}
		if err := checkClaim(ctx, tx, req.ID, req.Claim); err != nil {
			return err
		}
		cur, err := loadTxn(ctx, tx, req.ID)
		if err != nil {
			return err
		}
		if err := metastore.CheckProducer(cur, req.ProducerID, req.Epoch); err != nil {
			return err
		}
		ids, err := partitionIDs(ctx, tx, req.Partitions)
		if err != nil {
			return err
		}
		want := make([]int64, 0, len(ids))
		for _, tp := range req.Partitions {
			want = append(want, ids[tp])
		}
		if req.VerifyOnly {
			held := map[int64]bool{}
			if cur.State == metastore.TxnOngoing {
				rows, err := tx.Query(ctx, `SELECT partition_id FROM txn_partitions WHERE transactional_id = $1 AND partition_id = ANY ($2)`, req.ID, want)
				if err != nil {
					return err
				}
				got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
				if err != nil {
					return err
				}
				for _, id := range got {
					held[id] = true
				}
			}
			for _, tp := range req.Partitions {
				if !held[ids[tp]] {
					res.NotInTxn = append(res.NotInTxn, tp)
				}
			}
			return nil
		}
		var added, total int
		err = tx.QueryRow(ctx, `WITH p AS (
				INSERT INTO txn_partitions (transactional_id, partition_id) SELECT $1, unnest($2::bigint[])
				ON CONFLICT DO NOTHING RETURNING 1
			), g AS (
				INSERT INTO txn_groups (transactional_id, group_name) SELECT $1, unnest($3::text[])
				ON CONFLICT DO NOTHING RETURNING 1
			)
			SELECT (SELECT count(*) FROM p)::integer + (SELECT count(*) FROM g)::integer,
				(SELECT count(*) FROM txn_partitions WHERE transactional_id = $1)::integer
				+ (SELECT count(*) FROM txn_groups WHERE transactional_id = $1)::integer`,
			req.ID, want, req.Groups).Scan(&added, &total)
		if err != nil {
			return err
		}
		// The counts ran on the snapshot before the inserts.
		if req.MaxPartitions > 0 && total+added > req.MaxPartitions {
			return fmt.Errorf("%d partitions and groups, at most %d: %w", total+added, req.MaxPartitions, metastore.ErrTxnTooLarge)
		}
		if added == 0 && cur.State == metastore.TxnOngoing {
			return nil
		}
		_, err = tx.Exec(ctx, startOngoing, req.ID)
		return err
	})
	if err != nil {
		return metastore.AddToTxnResult{}, fmt.Errorf("add to transaction %q: %w", req.ID, err)
	}
	return res, nil
}

// EndTransaction implements metastore.Transactions.
func (s *Store) EndTransaction(ctx context.Context, req metastore.EndTxnRequest) (metastore.EndTxnResult, error) {
	var res metastore.EndTxnResult
	err := s.tx(ctx, func(tx pgx.Tx) error {
		res = metastore.EndTxnResult{}
		if err := checkClaim(ctx, tx, req.ID, req.Claim); err != nil {
			return err
		}
		cur, err := loadTxn(ctx, tx, req.ID)
		if err != nil {
			return err
		}
		p := metastore.PlanEnd(cur, req, time.Now())
		if p.Err != nil {
			return p.Err
		}
		if p.Write {
			if res.Written, err = writeEnd(ctx, tx, cur, &p, req.Claim); err != nil {
				return err
			}
		}
		res.ProducerID, res.Epoch = p.ProducerID, p.Epoch
		return nil
	})
	if err != nil {
		return metastore.EndTxnResult{}, fmt.Errorf("end transaction %q: %w", req.ID, err)
	}
	return res, nil
}

// StageTxnOffsets implements metastore.Transactions.
func (s *Store) StageTxnOffsets(ctx context.Context, req metastore.TxnOffsetsRequest) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if req.GroupEpoch != 0 {
			// The group coordinator's fence, as CommitOwnedOffsets
			// checks it (see owners.go): first, as a claim takes the
			// owner row before anything else.
			var owned, genOK bool
			if err := tx.QueryRow(ctx, `WITH `+fmt.Sprintf(ownerCTE, "$2")+`
				SELECT EXISTS (SELECT 1 FROM owner),
					$3::integer < 0 OR EXISTS (SELECT 1 FROM groups WHERE name = $1 AND generation = $3)`,
				req.Group, req.GroupEpoch, req.Generation).Scan(&owned, &genOK); err != nil {
				return err
			}
			if !owned {
				return fenced(req.Group, req.GroupEpoch)
			}
			if !genOK {
				return fmt.Errorf("generation %d: %w", req.Generation, metastore.ErrIllegalGeneration)
			}
		}
		cur, err := loadTxn(ctx, tx, req.ID)
		if err != nil {
			return err
		}
		if err := metastore.CheckProducer(cur, req.ProducerID, req.Epoch); err != nil {
			return err
		}
		inTxn := false
		if cur.State == metastore.TxnOngoing {
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM txn_groups WHERE transactional_id = $1 AND group_name = $2)`,
				req.ID, req.Group).Scan(&inTxn); err != nil {
				return err
			}
		}
		if !inTxn {
			if !req.AddGroup {
				return fmt.Errorf("group %q: %w", req.Group, metastore.ErrPartitionNotInTxn)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO txn_groups (transactional_id, group_name) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
				req.ID, req.Group); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, startOngoing, req.ID); err != nil {
				return err
			}
		}
		n := len(req.Offsets)
		var (
			topics = make([]pgtype.UUID, n)
			parts  = make([]int32, n)
			offs   = make([]int64, n)
			epochs = make([]int32, n)
			metas  = make([]string, n)
			times  = make([]time.Time, n)
			staged int
		)
		for i, o := range req.Offsets {
			topics[i], parts[i], offs[i], epochs[i], metas[i], times[i] = uuidOf(o.Topic), o.Partition, o.Offset, o.LeaderEpoch, o.Metadata, o.CommitTime
		}
		err = tx.QueryRow(ctx, `WITH ins AS (
				INSERT INTO txn_offsets AS o (transactional_id, group_name, topic_id, partition, committed_offset, leader_epoch, metadata, commit_time)
				SELECT $1, $2, u.t, u.p, u.o, u.e, u.m, u.c
				FROM unnest($3::uuid[], $4::integer[], $5::bigint[], $6::integer[], $7::text[], $8::timestamptz[]) AS u(t, p, o, e, m, c)
				ON CONFLICT (transactional_id, group_name, topic_id, partition) DO UPDATE SET
					committed_offset = excluded.committed_offset, leader_epoch = excluded.leader_epoch,
					metadata = excluded.metadata, commit_time = excluded.commit_time
				RETURNING (xmax = 0) AS inserted
			)
			SELECT (SELECT count(*) FROM txn_offsets WHERE transactional_id = $1)::integer
				+ (SELECT count(*) FROM ins WHERE inserted)::integer`,
			req.ID, req.Group, topics, parts, offs, epochs, metas, times).Scan(&staged)
		if err != nil {
			return err
		}
		if req.MaxOffsets > 0 && staged > req.MaxOffsets {
			return fmt.Errorf("%d staged offsets, at most %d: %w", staged, req.MaxOffsets, metastore.ErrTxnTooLarge)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("stage offsets of %q for group %q: %w", req.ID, req.Group, err)
	}
	return nil
}

// PendingTxnOffsets implements metastore.Transactions.
func (s *Store) PendingTxnOffsets(ctx context.Context, group string, tps []metastore.TopicPartition) ([]metastore.TopicPartition, error) {
	var (
		rows pgx.Rows
		err  error
	)
	if tps == nil {
		rows, err = s.pool.Query(ctx, `SELECT DISTINCT topic_id, partition FROM txn_offsets WHERE group_name = $1`, group)
	} else {
		topics := make([]pgtype.UUID, len(tps))
		parts := make([]int32, len(tps))
		for i, tp := range tps {
			topics[i], parts[i] = uuidOf(tp.Topic), tp.Partition
		}
		rows, err = s.pool.Query(ctx, `SELECT DISTINCT o.topic_id, o.partition FROM txn_offsets o
			JOIN unnest($2::uuid[], $3::integer[]) AS u(t, p) ON o.topic_id = u.t AND o.partition = u.p
			WHERE o.group_name = $1`, group, topics, parts)
	}
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.TopicPartition, error) {
		var (
			tp    metastore.TopicPartition
			topic pgtype.UUID
		)
		err := r.Scan(&topic, &tp.Partition)
		tp.Topic = topic.Bytes
		return tp, err
	})
}

const txnColumns = `transactional_id, producer_id, prev_producer_id, epoch, last_epoch, state, timeout_ms, started_at, updated_at`

func scanTxns(rows pgx.Rows) ([]metastore.Txn, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.Txn, error) {
		var (
			t                metastore.Txn
			state            string
			started, updated pgtype.Timestamptz
		)
		err := r.Scan(&t.ID, &t.ProducerID, &t.PrevProducerID, &t.Epoch, &t.LastEpoch, &state, &t.TimeoutMs, &started, &updated)
		t.State = metastore.TxnState(state)
		t.Started, t.Updated = started.Time, updated.Time
		return t, err
	})
}

// Transaction implements metastore.Transactions.
func (s *Store) Transaction(ctx context.Context, id string) (metastore.Txn, bool, error) {
	var (
		t     metastore.Txn
		found bool
	)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+txnColumns+` FROM transactions WHERE transactional_id = $1`, id)
		if err != nil {
			return err
		}
		ts, err := scanTxns(rows)
		if err != nil || len(ts) == 0 {
			return err
		}
		t, found = ts[0], true
		rows, err = tx.Query(ctx, `SELECT p.topic_id, p.partition FROM txn_partitions x JOIN partitions p ON p.id = x.partition_id
			WHERE x.transactional_id = $1 ORDER BY p.topic_id, p.partition`, id)
		if err != nil {
			return err
		}
		var (
			topic pgtype.UUID
			part  int32
		)
		if _, err := pgx.ForEachRow(rows, []any{&topic, &part}, func() error {
			t.Partitions = append(t.Partitions, metastore.TopicPartition{Topic: topic.Bytes, Partition: part})
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT group_name FROM txn_groups WHERE transactional_id = $1 ORDER BY group_name`, id)
		if err != nil {
			return err
		}
		t.Groups, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return t, found, err
}

// ListTransactions implements metastore.Transactions.
func (s *Store) ListTransactions(ctx context.Context) ([]metastore.Txn, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+txnColumns+` FROM transactions ORDER BY transactional_id`)
	if err != nil {
		return nil, err
	}
	return scanTxns(rows)
}

// ExpiredTransactions implements metastore.Transactions.
func (s *Store) ExpiredTransactions(ctx context.Context, limit int) ([]metastore.Txn, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+txnColumns+` FROM transactions
		WHERE state = 'Ongoing' AND expires_at <= now() ORDER BY expires_at LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	return scanTxns(rows)
}

// ExpireTransactionalIDs implements metastore.Transactions.
func (s *Store) ExpireTransactionalIDs(ctx context.Context, olderThan time.Duration, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM transactions WHERE transactional_id IN (
			SELECT transactional_id FROM transactions
			WHERE state <> 'Ongoing' AND updated_at <= now() - $1 * interval '1 microsecond'
			ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, micros(olderThan), limit)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// abortedPage is how many aborted-list entries one query of
// AbortedTransactions reads.
const abortedPage = 64

// AbortedTransactions implements metastore.Transactions: pages of the
// primary key (partition_id, last_offset) from from on, until an entry's
// last stable offset reaches upTo.
func (s *Store) AbortedTransactions(ctx context.Context, tp metastore.TopicPartition, from, upTo int64) ([]metastore.AbortedTxn, error) {
	var out []metastore.AbortedTxn
	for {
		rows, err := s.pool.Query(ctx, `SELECT a.producer_id, a.first_offset, a.last_offset, a.last_stable_offset
			FROM partitions p JOIN aborted_txns a ON a.partition_id = p.id
			WHERE p.topic_id = $1 AND p.partition = $2 AND a.last_offset >= $3
			ORDER BY a.last_offset LIMIT `+fmt.Sprint(abortedPage), uuidOf(tp.Topic), tp.Partition, from)
		if err != nil {
			return nil, err
		}
		var (
			a      metastore.AbortedTxn
			stable int64
			n      int
			done   bool
		)
		_, err = pgx.ForEachRow(rows, []any{&a.ProducerID, &a.FirstOffset, &a.LastOffset, &stable}, func() error {
			n++
			if done {
				return nil
			}
			if a.FirstOffset < upTo {
				out = append(out, a)
			}
			from = a.LastOffset + 1
			done = stable >= upTo
			return nil
		})
		if err != nil {
			return nil, err
		}
		if done || n < abortedPage {
			return out, nil
		}
	}
}

// Producers implements metastore.Transactions.
func (s *Store) Producers(ctx context.Context, tp metastore.TopicPartition) ([]metastore.ProducerInfo, error) {
	var found bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM partitions WHERE topic_id = $1 AND partition = $2 AND NOT deleted)`,
		uuidOf(tp.Topic), tp.Partition).Scan(&found); err != nil {
		return nil, err
	}
	if !found {
		return nil, unknownTP(tp)
	}
	rows, err := s.pool.Query(ctx, `SELECT ps.producer_id, ps.epoch, coalesce(ps.last_seqs[cardinality(ps.last_seqs)], -1),
			(extract(epoch FROM ps.last_write) * 1000)::bigint, ps.txn_first_offset
		FROM partitions p JOIN producer_state ps ON ps.partition_id = p.id
		WHERE p.topic_id = $1 AND p.partition = $2 AND NOT p.deleted ORDER BY ps.producer_id`, uuidOf(tp.Topic), tp.Partition)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.ProducerInfo, error) {
		var pi metastore.ProducerInfo
		err := r.Scan(&pi.ProducerID, &pi.Epoch, &pi.LastSequence, &pi.LastTimestamp, &pi.TxnFirstOffset)
		return pi, err
	})
}
