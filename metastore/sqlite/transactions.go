package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/siltdata/silt/metastore"
)

var _ metastore.Transactions = (*Store)(nil)

// ClaimTransaction implements metastore.Transactions.
func (s *Store) ClaimTransaction(ctx context.Context, id string) (int64, error) {
	var epoch int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO txn_owners (id, epoch) VALUES (?, 1)
			ON CONFLICT (id) DO UPDATE SET epoch = epoch + 1 RETURNING epoch`, id).Scan(&epoch)
	})
	if err != nil {
		return 0, fmt.Errorf("claim transactional id %q: %w", id, err)
	}
	return epoch, nil
}

// checkClaim checks a coordinator write's claim (claim 0: not the
// coordinator's write). The one writer serializes it with claims.
func checkClaim(ctx context.Context, tx *sql.Tx, id string, claim int64) error {
	if claim == 0 {
		return nil
	}
	var epoch int64
	err := tx.QueryRowContext(ctx, `SELECT epoch FROM txn_owners WHERE id = ?`, id).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) || err == nil && epoch != claim {
		return fmt.Errorf("transactional id %q, claim %d (now %d): %w", id, claim, epoch, metastore.ErrTxnCoordinatorFenced)
	}
	return err
}

const txnColumns = `transactional_id, producer_id, prev_producer_id, epoch, last_epoch, state, timeout_ms, started_at, updated_at`

func scanTxn(sc interface{ Scan(...any) error }) (metastore.Txn, error) {
	var (
		t       metastore.Txn
		state   string
		started sql.NullInt64
		updated int64
	)
	err := sc.Scan(&t.ID, &t.ProducerID, &t.PrevProducerID, &t.Epoch, &t.LastEpoch, &state, &t.TimeoutMs, &started, &updated)
	t.State = metastore.TxnState(state)
	if started.Valid {
		t.Started = time.UnixMicro(started.Int64)
	}
	t.Updated = time.UnixMicro(updated)
	return t, err
}

func loadTxn(ctx context.Context, tx *sql.Tx, id string) (*metastore.Txn, error) {
	t, err := scanTxn(tx.QueryRowContext(ctx, `SELECT `+txnColumns+` FROM transactions WHERE transactional_id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func nextProducerID(ctx context.Context, tx *sql.Tx) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `UPDATE producer_ids SET value = value + 1 WHERE id = 1 RETURNING value`).Scan(&id)
	return id, err
}

// writeEnd writes an EndPlan, as the Postgres function silt_end_txn does
// (see its comment in migration 0005), and returns the partitions it wrote
// markers to.
func (s *Store) writeEnd(ctx context.Context, tx *sql.Tx, cur *metastore.Txn, p *metastore.EndPlan, claim int64) ([]metastore.TopicPartition, error) {
	if p.Rotate {
		id, err := nextProducerID(ctx, tx)
		if err != nil {
			return nil, err
		}
		p.Next.ProducerID, p.ProducerID = id, id
	}
	now := s.now()
	ts := now.UnixMilli()
	type part struct {
		id, hw, lso, maxTS int64
		tp                 metastore.TopicPartition
	}
	rows, err := tx.QueryContext(ctx, `SELECT p.id, p.topic_id, p.partition, p.high_watermark, p.log_start_offset, p.max_timestamp
		FROM partitions p JOIN txn_partitions x ON x.partition_id = p.id
		WHERE x.transactional_id = ? AND p.deleted = 0 ORDER BY p.id`, cur.ID)
	if err != nil {
		return nil, err
	}
	var parts []part
	for rows.Next() {
		var (
			pt    part
			topic []byte
		)
		if err := rows.Scan(&pt.id, &topic, &pt.tp.Partition, &pt.hw, &pt.lso, &pt.maxTS); err != nil {
			rows.Close()
			return nil, err
		}
		copy(pt.tp.Topic[:], topic)
		parts = append(parts, pt)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	m := metastore.Marker{ProducerID: cur.ProducerID, ProducerEpoch: p.MarkerEpoch, Commit: p.Commit, CoordinatorEpoch: int32(claim)}
	var written []metastore.TopicPartition
	for _, pt := range parts {
		off := pt.hw
		row := metastore.MarkerRow(off, m, ts)
		if _, err := tx.ExecContext(ctx, `INSERT INTO batches (partition_id, base_offset, last_offset, max_timestamp,
				running_max_timestamp, segment_id, chunk_offset, chunk_length, pos, len) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?)`,
			pt.id, off, off, ts, max(pt.maxTS, ts), row.ChunkOffset, row.ChunkLength, row.Pos, row.Len); err != nil {
			return nil, fmt.Errorf("insert marker: %w", err)
		}
		first := int64(-1)
		var (
			epoch int16
			js    string
		)
		err := tx.QueryRowContext(ctx, `SELECT txn_first_offset, epoch, batches FROM producer_state WHERE partition_id = ? AND producer_id = ?`,
			pt.id, cur.ProducerID).Scan(&first, &epoch, &js)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			first = -1
		case err != nil:
			return nil, err
		default:
			if p.MarkerEpoch > epoch {
				// A new epoch: the sequences start over at 0 (one
				// sentinel batch ending at -1; see producerState.check).
				epoch = p.MarkerEpoch
				b, _ := json.Marshal([]producerBatch{{FirstSeq: -1, LastSeq: -1, BaseOffset: off}})
				js = string(b)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE producer_state SET txn_first_offset = -1, epoch = ?, batches = ?, last_write = ?
				WHERE partition_id = ? AND producer_id = ?`, epoch, js, now.UnixMicro(), pt.id, cur.ProducerID); err != nil {
				return nil, err
			}
		}
		var opened sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT min(txn_first_offset) FROM producer_state WHERE partition_id = ? AND txn_first_offset >= 0`,
			pt.id).Scan(&opened); err != nil {
			return nil, err
		}
		txnFirst := int64(-1)
		if opened.Valid {
			txnFirst = opened.Int64
		}
		aborted := first >= 0 && !p.Commit
		if aborted {
			if _, err := tx.ExecContext(ctx, `INSERT INTO aborted_txns (partition_id, last_offset, producer_id, first_offset, last_stable_offset)
				VALUES (?, ?, ?, ?, ?)`, pt.id, off, cur.ProducerID, first, metastore.LastStable(pt.lso, off+1, txnFirst)); err != nil {
				return nil, err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE partitions SET high_watermark = ?, max_timestamp = max(max_timestamp, ?),
				bytes = bytes + ?, rows = rows + 1, txn_first_offset = ?,
				aborted_end = CASE WHEN ? THEN ? ELSE aborted_end END WHERE id = ?`,
			off+1, ts, metastore.MarkerBatchLen, txnFirst, aborted, off+1, pt.id); err != nil {
			return nil, err
		}
		written = append(written, pt.tp)
	}
	if p.Commit {
		if _, err := tx.ExecContext(ctx, `INSERT INTO offsets (group_name, topic_id, partition, committed_offset, leader_epoch, metadata, commit_time)
			SELECT o.group_name, o.topic_id, o.partition, o.committed_offset, o.leader_epoch, o.metadata, o.commit_time
			FROM txn_offsets o JOIN topics t ON t.id = o.topic_id AND t.deleted_at IS NULL
			WHERE o.transactional_id = ?
			ON CONFLICT (group_name, topic_id, partition) DO UPDATE SET
				committed_offset = excluded.committed_offset, leader_epoch = excluded.leader_epoch,
				metadata = excluded.metadata, commit_time = excluded.commit_time`, cur.ID); err != nil {
			return nil, fmt.Errorf("commit staged offsets: %w", err)
		}
	}
	for _, q := range []string{
		`DELETE FROM txn_offsets WHERE transactional_id = ?`,
		`DELETE FROM txn_partitions WHERE transactional_id = ?`,
		`DELETE FROM txn_groups WHERE transactional_id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, cur.ID); err != nil {
			return nil, err
		}
	}
	n := p.Next
	if _, err := tx.ExecContext(ctx, `UPDATE transactions SET producer_id = ?, prev_producer_id = ?, epoch = ?, last_epoch = ?,
			state = ?, started_at = NULL, expires_at = NULL, updated_at = ? WHERE transactional_id = ?`,
		n.ProducerID, n.PrevProducerID, n.Epoch, n.LastEpoch, string(n.State), now.UnixMicro(), cur.ID); err != nil {
		return nil, err
	}
	return written, nil
}

// InitProducer implements metastore.Transactions.
func (s *Store) InitProducer(ctx context.Context, req metastore.InitProducerRequest) (metastore.InitProducerResult, error) {
	var (
		res     metastore.InitProducerResult
		planErr error
	)
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, planErr = metastore.InitProducerResult{}, nil
		if err := checkClaim(ctx, tx, req.ID, req.Claim); err != nil {
			return err
		}
		cur, err := loadTxn(ctx, tx, req.ID)
		if err != nil {
			return err
		}
		now := s.now()
		p := metastore.PlanInit(cur, req, now)
		if p.Abort != nil && p.Abort.Write {
			if res.Written, err = s.writeEnd(ctx, tx, cur, p.Abort, req.Claim); err != nil {
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
			_, err = tx.ExecContext(ctx, `INSERT INTO transactions (transactional_id, producer_id, prev_producer_id, epoch, last_epoch,
					state, timeout_ms, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				n.ID, n.ProducerID, n.PrevProducerID, n.Epoch, n.LastEpoch, string(n.State), n.TimeoutMs, now.UnixMicro())
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE transactions SET producer_id = ?, prev_producer_id = ?, epoch = ?, last_epoch = ?,
					state = ?, timeout_ms = ?, started_at = NULL, expires_at = NULL, updated_at = ? WHERE transactional_id = ?`,
				n.ProducerID, n.PrevProducerID, n.Epoch, n.LastEpoch, string(n.State), n.TimeoutMs, now.UnixMicro(), n.ID)
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

// partitionIDs resolves partitions to their ids; one that does not exist
// (or whose topic is deleted) fails with ErrUnknownTopicOrPartition.
func partitionIDs(ctx context.Context, tx *sql.Tx, tps []metastore.TopicPartition) (map[metastore.TopicPartition]int64, error) {
	ids := make(map[metastore.TopicPartition]int64, len(tps))
	for _, tp := range tps {
		if _, ok := ids[tp]; ok {
			continue
		}
		id, _, err := partitionRow(ctx, tx, tp)
		if err != nil {
			return nil, err
		}
		ids[tp] = id
	}
	return ids, nil
}

// startOngoing makes the transaction Ongoing (and starts its timeout) if
// it was not.
func (s *Store) startOngoing(ctx context.Context, tx *sql.Tx, id string) error {
	now := s.now().UnixMicro()
	_, err := tx.ExecContext(ctx, `UPDATE transactions SET
			started_at = CASE WHEN state = 'Ongoing' THEN started_at ELSE ?1 END,
			expires_at = CASE WHEN state = 'Ongoing' THEN expires_at ELSE ?1 + timeout_ms * 1000 END,
			state = 'Ongoing', updated_at = ?1
		WHERE transactional_id = ?2`, now, id)
	return err
}

// AddToTransaction implements metastore.Transactions.
func (s *Store) AddToTransaction(ctx context.Context, req metastore.AddToTxnRequest) (metastore.AddToTxnResult, error) {
	var res metastore.AddToTxnResult
	err := s.write(ctx, func(tx *sql.Tx) error {
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
		if req.VerifyOnly {
			for _, tp := range req.Partitions {
				held := false
				if cur.State == metastore.TxnOngoing {
					var one int
					err := tx.QueryRowContext(ctx, `SELECT 1 FROM txn_partitions WHERE transactional_id = ? AND partition_id = ?`, req.ID, ids[tp]).Scan(&one)
					if err != nil && !errors.Is(err, sql.ErrNoRows) {
						return err
					}
					held = err == nil
				}
				if !held {
					res.NotInTxn = append(res.NotInTxn, tp)
				}
			}
			return nil
		}
		added := 0
		for _, tp := range req.Partitions {
			r, err := tx.ExecContext(ctx, `INSERT INTO txn_partitions (transactional_id, partition_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, req.ID, ids[tp])
			if err != nil {
				return err
			}
			n, _ := r.RowsAffected()
			added += int(n)
		}
		for _, g := range req.Groups {
			r, err := tx.ExecContext(ctx, `INSERT INTO txn_groups (transactional_id, group_name) VALUES (?, ?) ON CONFLICT DO NOTHING`, req.ID, g)
			if err != nil {
				return err
			}
			n, _ := r.RowsAffected()
			added += int(n)
		}
		if req.MaxPartitions > 0 && added > 0 {
			var total int
			if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM txn_partitions WHERE transactional_id = ?1)
					+ (SELECT count(*) FROM txn_groups WHERE transactional_id = ?1)`, req.ID).Scan(&total); err != nil {
				return err
			}
			if total > req.MaxPartitions {
				return fmt.Errorf("%d partitions and groups, at most %d: %w", total, req.MaxPartitions, metastore.ErrTxnTooLarge)
			}
		}
		if added == 0 && cur.State == metastore.TxnOngoing {
			return nil
		}
		return s.startOngoing(ctx, tx, req.ID)
	})
	if err != nil {
		return metastore.AddToTxnResult{}, fmt.Errorf("add to transaction %q: %w", req.ID, err)
	}
	return res, nil
}

// EndTransaction implements metastore.Transactions.
func (s *Store) EndTransaction(ctx context.Context, req metastore.EndTxnRequest) (metastore.EndTxnResult, error) {
	var res metastore.EndTxnResult
	err := s.write(ctx, func(tx *sql.Tx) error {
		res = metastore.EndTxnResult{}
		if err := checkClaim(ctx, tx, req.ID, req.Claim); err != nil {
			return err
		}
		cur, err := loadTxn(ctx, tx, req.ID)
		if err != nil {
			return err
		}
		p := metastore.PlanEnd(cur, req, s.now())
		if p.Err != nil {
			return p.Err
		}
		if p.Write {
			if res.Written, err = s.writeEnd(ctx, tx, cur, &p, req.Claim); err != nil {
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
	err := s.write(ctx, func(tx *sql.Tx) error {
		if req.GroupEpoch != 0 {
			if err := owned(ctx, tx, req.Group, req.GroupEpoch); err != nil {
				return err
			}
			if req.Generation >= 0 {
				var one int
				err := tx.QueryRowContext(ctx, `SELECT 1 FROM groups WHERE name = ? AND generation = ?`, req.Group, req.Generation).Scan(&one)
				if errors.Is(err, sql.ErrNoRows) {
					return fmt.Errorf("generation %d: %w", req.Generation, metastore.ErrIllegalGeneration)
				}
				if err != nil {
					return err
				}
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
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM txn_groups WHERE transactional_id = ? AND group_name = ?`, req.ID, req.Group).Scan(&one)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			inTxn = err == nil
		}
		if !inTxn {
			if !req.AddGroup {
				return fmt.Errorf("group %q: %w", req.Group, metastore.ErrPartitionNotInTxn)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO txn_groups (transactional_id, group_name) VALUES (?, ?) ON CONFLICT DO NOTHING`,
				req.ID, req.Group); err != nil {
				return err
			}
			if err := s.startOngoing(ctx, tx, req.ID); err != nil {
				return err
			}
		}
		for _, o := range req.Offsets {
			if _, err := tx.ExecContext(ctx, `INSERT INTO txn_offsets (transactional_id, group_name, topic_id, partition, committed_offset,
					leader_epoch, metadata, commit_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (transactional_id, group_name, topic_id, partition) DO UPDATE SET
					committed_offset = excluded.committed_offset, leader_epoch = excluded.leader_epoch,
					metadata = excluded.metadata, commit_time = excluded.commit_time`,
				req.ID, req.Group, o.Topic[:], o.Partition, o.Offset, o.LeaderEpoch, o.Metadata, o.CommitTime.UnixMicro()); err != nil {
				return err
			}
		}
		if req.MaxOffsets > 0 {
			var staged int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM txn_offsets WHERE transactional_id = ?`, req.ID).Scan(&staged); err != nil {
				return err
			}
			if staged > req.MaxOffsets {
				return fmt.Errorf("%d staged offsets, at most %d: %w", staged, req.MaxOffsets, metastore.ErrTxnTooLarge)
			}
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
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT topic_id, partition FROM txn_offsets WHERE group_name = ?`, group)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var want map[metastore.TopicPartition]bool
	if tps != nil {
		want = make(map[metastore.TopicPartition]bool, len(tps))
		for _, tp := range tps {
			want[tp] = true
		}
	}
	var out []metastore.TopicPartition
	for rows.Next() {
		var (
			tp    metastore.TopicPartition
			topic []byte
		)
		if err := rows.Scan(&topic, &tp.Partition); err != nil {
			return nil, err
		}
		copy(tp.Topic[:], topic)
		if want == nil || want[tp] {
			out = append(out, tp)
		}
	}
	return out, rows.Err()
}

// Transaction implements metastore.Transactions.
func (s *Store) Transaction(ctx context.Context, id string) (metastore.Txn, bool, error) {
	var (
		t     metastore.Txn
		found bool
	)
	err := s.read(ctx, func(tx *sql.Tx) error {
		cur, err := loadTxn(ctx, tx, id)
		if err != nil || cur == nil {
			return err
		}
		t, found = *cur, true
		rows, err := tx.QueryContext(ctx, `SELECT p.topic_id, p.partition FROM txn_partitions x JOIN partitions p ON p.id = x.partition_id
			WHERE x.transactional_id = ?`, id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				tp    metastore.TopicPartition
				topic []byte
			)
			if err := rows.Scan(&topic, &tp.Partition); err != nil {
				rows.Close()
				return err
			}
			copy(tp.Topic[:], topic)
			t.Partitions = append(t.Partitions, tp)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		slices.SortFunc(t.Partitions, func(a, b metastore.TopicPartition) int {
			if c := strings.Compare(string(a.Topic[:]), string(b.Topic[:])); c != 0 {
				return c
			}
			return int(a.Partition - b.Partition)
		})
		rows, err = tx.QueryContext(ctx, `SELECT group_name FROM txn_groups WHERE transactional_id = ? ORDER BY group_name`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var g string
			if err := rows.Scan(&g); err != nil {
				return err
			}
			t.Groups = append(t.Groups, g)
		}
		return rows.Err()
	})
	return t, found, err
}

func (s *Store) queryTxns(ctx context.Context, q string, args ...any) ([]metastore.Txn, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []metastore.Txn
	for rows.Next() {
		t, err := scanTxn(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// ListTransactions implements metastore.Transactions.
func (s *Store) ListTransactions(ctx context.Context) ([]metastore.Txn, error) {
	return s.queryTxns(ctx, `SELECT `+txnColumns+` FROM transactions ORDER BY transactional_id`)
}

// ExpiredTransactions implements metastore.Transactions.
func (s *Store) ExpiredTransactions(ctx context.Context, limit int) ([]metastore.Txn, error) {
	return s.queryTxns(ctx, `SELECT `+txnColumns+` FROM transactions WHERE state = 'Ongoing' AND expires_at <= ?
		ORDER BY expires_at LIMIT ?`, s.now().UnixMicro(), limit)
}

// ExpireTransactionalIDs implements metastore.Transactions.
func (s *Store) ExpireTransactionalIDs(ctx context.Context, olderThan time.Duration, limit int) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM transactions WHERE transactional_id IN (
				SELECT transactional_id FROM transactions WHERE state <> 'Ongoing' AND updated_at <= ?
				ORDER BY updated_at LIMIT ?)`, s.now().Add(-olderThan).UnixMicro(), limit)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	return int(n), err
}

// AbortedTransactions implements metastore.Transactions: the primary key
// (partition_id, last_offset) from from on, until an entry's last stable
// offset reaches upTo.
func (s *Store) AbortedTransactions(ctx context.Context, tp metastore.TopicPartition, from, upTo int64) ([]metastore.AbortedTxn, error) {
	var out []metastore.AbortedTxn
	err := s.read(ctx, func(tx *sql.Tx) error {
		id, _, err := partitionRow(ctx, tx, tp)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT producer_id, first_offset, last_offset, last_stable_offset FROM aborted_txns
			WHERE partition_id = ? AND last_offset >= ? ORDER BY last_offset`, id, from)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				a      metastore.AbortedTxn
				stable int64
			)
			if err := rows.Scan(&a.ProducerID, &a.FirstOffset, &a.LastOffset, &stable); err != nil {
				return err
			}
			if a.FirstOffset < upTo {
				out = append(out, a)
			}
			if stable >= upTo {
				break
			}
		}
		return rows.Err()
	})
	return out, err
}

// Producers implements metastore.Transactions.
func (s *Store) Producers(ctx context.Context, tp metastore.TopicPartition) ([]metastore.ProducerInfo, error) {
	var out []metastore.ProducerInfo
	err := s.read(ctx, func(tx *sql.Tx) error {
		id, _, err := partitionRow(ctx, tx, tp)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT producer_id, epoch, batches, last_write, txn_first_offset FROM producer_state
			WHERE partition_id = ? ORDER BY producer_id`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				pi   metastore.ProducerInfo
				js   string
				last int64
				st   producerState
			)
			if err := rows.Scan(&pi.ProducerID, &pi.Epoch, &js, &last, &pi.TxnFirstOffset); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(js), &st.Batches); err != nil {
				return fmt.Errorf("producer state %d: %w", pi.ProducerID, err)
			}
			pi.LastSequence = -1
			if n := len(st.Batches); n > 0 {
				pi.LastSequence = st.Batches[n-1].LastSeq
			}
			pi.LastTimestamp = time.UnixMicro(last).UnixMilli()
			out = append(out, pi)
		}
		return rows.Err()
	})
	return out, err
}
