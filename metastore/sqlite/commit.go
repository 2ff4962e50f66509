package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/siltdata/silt/metastore"
)

// AddPendingSegment implements metastore.Store. A key already recorded
// (pending or committed) is left as it is.
func (s *Store) AddPendingSegment(ctx context.Context, key string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO segments (key, size, state, created_at) VALUES (?, 0, 'pending', ?)
			ON CONFLICT (key) DO NOTHING`, key, s.now().UnixMicro())
		return err
	})
}

// commitStmts are CommitSegment's per-batch statements, prepared once on
// the writer connection: a commit of a 100-partition segment runs several
// hundred of them, and parsing each one again would dominate its cost.
type commitStmts struct {
	partition, insertBatch, updatePartition, loadProducer, saveProducer, txn *sql.Stmt
}

func prepareCommit(ctx context.Context, db *sql.DB) (*commitStmts, error) {
	var c commitStmts
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&c.partition, `SELECT id, high_watermark, log_start_offset, max_timestamp, txn_first_offset FROM partitions WHERE topic_id = ? AND partition = ? AND deleted = 0`},
		{&c.insertBatch, `INSERT INTO batches (partition_id, base_offset, last_offset, max_timestamp,
			running_max_timestamp, segment_id, chunk_offset, chunk_length, pos, len) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&c.updatePartition, `UPDATE partitions SET high_watermark = ?, max_timestamp = ?, bytes = bytes + ?, rows = rows + ?,
			txn_first_offset = ? WHERE id = ?`},
		{&c.loadProducer, `SELECT epoch, batches, txn_first_offset FROM producer_state WHERE partition_id = ? AND producer_id = ?`},
		{&c.saveProducer, `INSERT INTO producer_state (partition_id, producer_id, epoch, batches, last_write, txn_first_offset) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (partition_id, producer_id) DO UPDATE SET epoch = excluded.epoch, batches = excluded.batches,
				last_write = excluded.last_write, txn_first_offset = excluded.txn_first_offset`},
		// A transactional batch's transaction: its epoch, and whether it
		// is ongoing and holds the partition.
		{&c.txn, `SELECT t.epoch, t.state = 'Ongoing' AND EXISTS (
				SELECT 1 FROM txn_partitions x WHERE x.transactional_id = t.transactional_id AND x.partition_id = ?)
			FROM transactions t WHERE t.producer_id = ?`},
	} {
		st, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			c.close()
			return nil, err
		}
		*p.dst = st
	}
	return &c, nil
}

func (c *commitStmts) close() {
	for _, st := range []*sql.Stmt{c.partition, c.insertBatch, c.updatePartition, c.loadProducer, c.saveProducer, c.txn} {
		if st != nil {
			st.Close()
		}
	}
}

// partState is a partition row while a commit works on it.
type partState struct {
	id, hw, lso, maxTS int64
	txnFirst           int64 // the oldest open transaction's first offset, -1
	bytes, rows        int64 // added by this commit
	dirty              bool
}

type producerKey struct{ partitionID, producerID int64 }

type prodEntry struct {
	st    *producerState // nil: no state yet
	dirty bool
}

// CommitSegment implements metastore.Store. SQLite has one writer, so the
// transaction needs no row locks: BEGIN IMMEDIATE already excludes every
// other commit (and every EndTransaction). Transactional batches are
// checked as the Postgres function silt_commit_segment checks them (see
// its comment in migration 0005).
func (s *Store) CommitSegment(ctx context.Context, seg metastore.Segment) ([]metastore.BatchResult, error) {
	results := make([]metastore.BatchResult, len(seg.Batches))
	err := s.write(ctx, func(tx *sql.Tx) error {
		clear(results)
		segID, err := s.pendingSegment(ctx, tx, seg.Key)
		if err != nil {
			return err
		}
		parts := map[metastore.TopicPartition]*partState{}
		refs := 0
		prods := map[producerKey]*prodEntry{}
		// The statements were prepared on the one writer connection, which
		// this transaction runs on: Tx.StmtContext reuses them.
		partStmt := tx.StmtContext(ctx, s.stmts.partition)
		ins := tx.StmtContext(ctx, s.stmts.insertBatch)
		updStmt := tx.StmtContext(ctx, s.stmts.updatePartition)
		loadStmt := tx.StmtContext(ctx, s.stmts.loadProducer)
		saveStmt := tx.StmtContext(ctx, s.stmts.saveProducer)
		txnStmt := tx.StmtContext(ctx, s.stmts.txn)
		for i, b := range seg.Batches {
			p, ok := parts[b.TopicPartition]
			if !ok {
				p = &partState{}
				err := partStmt.QueryRowContext(ctx, b.Topic[:], b.Partition).Scan(&p.id, &p.hw, &p.lso, &p.maxTS, &p.txnFirst)
				if errors.Is(err, sql.ErrNoRows) {
					p = nil
				} else if err != nil {
					return err
				}
				parts[b.TopicPartition] = p
			}
			if p == nil {
				results[i] = metastore.BatchResult{BaseOffset: -1, LogStartOffset: -1, Err: metastore.ErrUnknownTopicOrPartition}
				continue
			}
			results[i].LogStartOffset = p.lso
			var pe *prodEntry
			if b.ProducerID >= 0 {
				k := producerKey{p.id, b.ProducerID}
				if pe = prods[k]; pe == nil {
					pe = &prodEntry{}
					if pe.st, err = loadProducer(ctx, loadStmt, k); err != nil {
						return err
					}
					prods[k] = pe
				}
			}
			started, terr := s.checkTxn(ctx, txnStmt, b, p.id, pe)
			if terr != nil {
				if !isTxnResult(terr) {
					return terr
				}
				results[i].BaseOffset, results[i].Err = -1, terr
				continue
			}
			if pe != nil {
				dup, err := pe.st.check(b)
				if errors.Is(err, metastore.ErrDuplicateSequence) {
					results[i].BaseOffset, results[i].Err = dup, err
					continue
				}
				if err != nil {
					results[i].BaseOffset, results[i].Err = -1, err
					continue
				}
				if !b.Transactional && pe.st != nil && pe.st.TxnFirst >= 0 {
					// Kafka, after the sequence checks: a
					// non-transactional write while the producer's
					// transaction is open here.
					results[i].BaseOffset = -1
					results[i].Err = fmt.Errorf("%w: producer %d has a transaction open", metastore.ErrInvalidTxnState, b.ProducerID)
					continue
				}
			}
			records := int64(max(b.Records, 1))
			base := p.hw
			if started && p.txnFirst < 0 {
				p.txnFirst = base
			}
			p.hw += records
			p.maxTS = max(p.maxTS, b.MaxTimestamp)
			p.bytes += int64(b.Len)
			p.rows++
			p.dirty = true
			refs++
			if _, err := ins.ExecContext(ctx, p.id, base, base+records-1, b.MaxTimestamp, p.maxTS, segID,
				b.ChunkOffset, b.ChunkLength, b.Pos, b.Len); err != nil {
				return fmt.Errorf("insert batch: %w", err)
			}
			results[i].BaseOffset = base
			if pe != nil {
				if pe.st == nil {
					pe.st = &producerState{Epoch: b.ProducerEpoch, TxnFirst: -1}
				}
				pe.st.record(b, base)
				if started {
					pe.st.TxnFirst = base
				}
				pe.dirty = true
			}
		}
		for _, p := range parts {
			if p == nil || !p.dirty {
				continue
			}
			if _, err := updStmt.ExecContext(ctx, p.hw, p.maxTS, p.bytes, p.rows, p.txnFirst, p.id); err != nil {
				return err
			}
		}
		// The rows now pointing into the segment; a segment of duplicates
		// only is dead at once.
		now := s.now().UnixMicro()
		if refs > 0 {
			_, err = tx.ExecContext(ctx, `UPDATE segments SET state = 'committed', size = ?, refs = ? WHERE id = ?`, seg.Size, refs, segID)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE segments SET state = 'dead', size = ?, refs = 0, dead_at = ? WHERE id = ?`, seg.Size, now, segID)
		}
		if err != nil {
			return err
		}
		for k, pe := range prods {
			if !pe.dirty {
				continue
			}
			js, err := json.Marshal(pe.st.Batches)
			if err != nil {
				return err
			}
			if _, err := saveStmt.ExecContext(ctx, k.partitionID, k.producerID, pe.st.Epoch, string(js), now, pe.st.TxnFirst); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("commit segment %s: %w", seg.Key, err)
	}
	return results, nil
}

// pendingSegment returns the id of the segment to commit, which must be
// pending (the caller marks it committed once it knows its references).
func (s *Store) pendingSegment(ctx context.Context, tx *sql.Tx, key string) (int64, error) {
	var (
		id    int64
		state string
	)
	err := tx.QueryRowContext(ctx, `SELECT id, state FROM segments WHERE key = ?`, key).Scan(&id, &state)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, metastore.ErrSegmentGone
	case err != nil:
		return 0, err
	case state == "committed":
		return 0, metastore.ErrSegmentCommitted
	case state != "pending":
		return 0, metastore.ErrSegmentGone
	}
	return id, nil
}

func loadProducer(ctx context.Context, stmt *sql.Stmt, k producerKey) (*producerState, error) {
	var (
		epoch    int16
		js       string
		txnFirst int64
	)
	err := stmt.QueryRowContext(ctx, k.partitionID, k.producerID).Scan(&epoch, &js, &txnFirst)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st := &producerState{Epoch: epoch, TxnFirst: txnFirst}
	if err := json.Unmarshal([]byte(js), &st.Batches); err != nil {
		return nil, fmt.Errorf("producer state %d: %w", k.producerID, err)
	}
	return st, nil
}

// checkTxn makes the transaction checks of a transactional batch (see
// CommitSegment): that its transaction is ongoing at its epoch and holds
// the partition; started reports that the batch starts the transaction on
// the partition. A refusal is a batch result (isTxnResult); other errors
// fail the commit.
func (s *Store) checkTxn(ctx context.Context, txnStmt *sql.Stmt, b metastore.BatchAppend, partitionID int64, pe *prodEntry) (started bool, err error) {
	if !b.Transactional {
		return false, nil
	}
	var st *producerState
	if pe != nil {
		st = pe.st
	}
	open := st != nil && st.TxnFirst >= 0
	if b.ProducerID < 0 {
		return false, fmt.Errorf("%w: a transactional batch without a producer id", metastore.ErrInvalidTxnState)
	}
	if open && st.Epoch == b.ProducerEpoch {
		return false, nil
	}
	var (
		epoch int16
		ok    bool
	)
	err = txnStmt.QueryRowContext(ctx, partitionID, b.ProducerID).Scan(&epoch, &ok)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("%w: producer %d", metastore.ErrInvalidProducerIDMapping, b.ProducerID)
	case err != nil:
		return false, err
	case epoch != b.ProducerEpoch:
		return false, fmt.Errorf("%w: producer %d epoch %d, transaction at %d", metastore.ErrInvalidProducerEpoch, b.ProducerID, b.ProducerEpoch, epoch)
	case !ok:
		return false, fmt.Errorf("%w: producer %d", metastore.ErrPartitionNotInTxn, b.ProducerID)
	}
	return !open, nil
}

// isTxnResult reports whether err is a per-batch refusal of checkTxn.
func isTxnResult(err error) bool {
	return errors.Is(err, metastore.ErrInvalidTxnState) || errors.Is(err, metastore.ErrInvalidProducerIDMapping) ||
		errors.Is(err, metastore.ErrInvalidProducerEpoch) || errors.Is(err, metastore.ErrPartitionNotInTxn)
}
