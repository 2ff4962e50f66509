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
	partition, insertBatch, updatePartition, loadProducer, saveProducer *sql.Stmt
}

func prepareCommit(ctx context.Context, db *sql.DB) (*commitStmts, error) {
	var c commitStmts
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&c.partition, `SELECT id, high_watermark, log_start_offset, max_timestamp FROM partitions WHERE topic_id = ? AND partition = ? AND deleted = 0`},
		{&c.insertBatch, `INSERT INTO batches (partition_id, base_offset, last_offset, max_timestamp,
			running_max_timestamp, segment_id, chunk_offset, chunk_length, pos, len) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&c.updatePartition, `UPDATE partitions SET high_watermark = ?, max_timestamp = ?, bytes = bytes + ?, rows = rows + ? WHERE id = ?`},
		{&c.loadProducer, `SELECT epoch, batches FROM producer_state WHERE partition_id = ? AND producer_id = ?`},
		{&c.saveProducer, `INSERT INTO producer_state (partition_id, producer_id, epoch, batches, last_write) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (partition_id, producer_id) DO UPDATE SET epoch = excluded.epoch, batches = excluded.batches,
				last_write = excluded.last_write`},
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
	for _, st := range []*sql.Stmt{c.partition, c.insertBatch, c.updatePartition, c.loadProducer, c.saveProducer} {
		if st != nil {
			st.Close()
		}
	}
}

// partState is a partition row while a commit works on it.
type partState struct {
	id, hw, lso, maxTS int64
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
// other commit.
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
		for i, b := range seg.Batches {
			p, ok := parts[b.TopicPartition]
			if !ok {
				p = &partState{}
				err := partStmt.QueryRowContext(ctx, b.Topic[:], b.Partition).Scan(&p.id, &p.hw, &p.lso, &p.maxTS)
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
				dup, err := pe.st.check(b)
				if errors.Is(err, metastore.ErrDuplicateSequence) {
					results[i].BaseOffset, results[i].Err = dup, err
					continue
				}
				if err != nil {
					results[i].BaseOffset, results[i].Err = -1, err
					continue
				}
			}
			records := int64(max(b.Records, 1))
			base := p.hw
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
					pe.st = &producerState{Epoch: b.ProducerEpoch}
				}
				pe.st.record(b, base)
				pe.dirty = true
			}
		}
		for _, p := range parts {
			if p == nil || !p.dirty {
				continue
			}
			if _, err := updStmt.ExecContext(ctx, p.hw, p.maxTS, p.bytes, p.rows, p.id); err != nil {
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
			if _, err := saveStmt.ExecContext(ctx, k.partitionID, k.producerID, pe.st.Epoch, string(js), now); err != nil {
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
		epoch int16
		js    string
	)
	err := stmt.QueryRowContext(ctx, k.partitionID, k.producerID).Scan(&epoch, &js)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st := &producerState{Epoch: epoch}
	if err := json.Unmarshal([]byte(js), &st.Batches); err != nil {
		return nil, fmt.Errorf("producer state %d: %w", k.producerID, err)
	}
	return st, nil
}
