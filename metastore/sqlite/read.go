package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/siltdata/silt/metastore"
)

// batchPage bounds one index query of Batches; a read wanting more batches
// than this continues with another page, so each query stays O(result).
const batchPage = 256

func partitionRow(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, tp metastore.TopicPartition) (id int64, o metastore.PartitionOffsets, err error) {
	var txnFirst int64
	err = q.QueryRowContext(ctx, `SELECT id, log_start_offset, high_watermark, txn_first_offset, aborted_end FROM partitions
		WHERE topic_id = ? AND partition = ? AND deleted = 0`,
		tp.Topic[:], tp.Partition).Scan(&id, &o.LogStartOffset, &o.HighWatermark, &txnFirst, &o.AbortedEnd)
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("partition %s/%d: %w", tp.Topic, tp.Partition, metastore.ErrUnknownTopicOrPartition)
	}
	o.LastStableOffset = metastore.LastStable(o.LogStartOffset, o.HighWatermark, txnFirst)
	return id, o, err
}

// Batches implements metastore.Store. It walks the primary key
// (partition_id, last_offset) from offset: the first row is the batch
// containing offset. A batch after the first is included only when the sum
// stays within maxBytes, as Kafka bounds a fetch response.
func (s *Store) Batches(ctx context.Context, tp metastore.TopicPartition, offset int64, maxBytes int64) ([]metastore.Batch, metastore.PartitionOffsets, error) {
	var (
		out []metastore.Batch
		po  metastore.PartitionOffsets
	)
	err := s.read(ctx, func(tx *sql.Tx) error {
		id, o, err := partitionRow(ctx, tx, tp)
		if err != nil {
			return err
		}
		po = o
		var sum int64
		from := offset
		for {
			rows, err := tx.QueryContext(ctx, `SELECT b.base_offset, b.last_offset, b.max_timestamp, coalesce(s.key, ''),
				b.chunk_offset, b.chunk_length, b.pos, b.len
				FROM batches b LEFT JOIN segments s ON s.id = b.segment_id
				WHERE b.partition_id = ? AND b.last_offset >= ? ORDER BY b.last_offset LIMIT ?`, id, from, batchPage)
			if err != nil {
				return err
			}
			n, full := 0, false
			for rows.Next() {
				var b metastore.Batch
				if err := rows.Scan(&b.BaseOffset, &b.LastOffset, &b.MaxTimestamp, &b.SegmentKey,
					&b.ChunkOffset, &b.ChunkLength, &b.Pos, &b.Len); err != nil {
					rows.Close()
					return err
				}
				n++
				if len(out) > 0 && sum+int64(b.Len) > maxBytes {
					full = true
					break
				}
				out = append(out, b)
				sum += int64(b.Len)
				from = b.LastOffset + 1
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if full || n < batchPage || sum >= maxBytes {
				return nil
			}
		}
	})
	return out, po, err
}

// Offsets implements metastore.Store.
func (s *Store) Offsets(ctx context.Context, tp metastore.TopicPartition) (metastore.PartitionOffsets, error) {
	_, o, err := partitionRow(ctx, s.r, tp)
	return o, err
}

// OffsetForTimestamp implements metastore.Store through the index on
// (partition_id, running_max_timestamp, last_offset): running_max_timestamp
// never decreases with the offset, and the first entry whose running max
// reaches ts is exactly the first entry whose own max timestamp does.
// Entries ending before from are skipped (they lie ahead of it in the
// index order), so a caller that found no record in one entry asks again
// from the next.
func (s *Store) OffsetForTimestamp(ctx context.Context, tp metastore.TopicPartition, ts, from int64) (e metastore.Batch, found bool, err error) {
	err = s.read(ctx, func(tx *sql.Tx) error {
		id, _, err := partitionRow(ctx, tx, tp)
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `SELECT base_offset, last_offset, max_timestamp FROM batches
			WHERE partition_id = ? AND running_max_timestamp >= ? AND last_offset >= ?
			ORDER BY running_max_timestamp, last_offset LIMIT 1`, id, ts, from).Scan(&e.BaseOffset, &e.LastOffset, &e.MaxTimestamp)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	})
	return e, found, err
}

// MaxTimestamp implements metastore.Store: the first entry (by offset)
// whose running max equals the partition's largest running max is the
// entry holding the largest timestamp; two index probes.
func (s *Store) MaxTimestamp(ctx context.Context, tp metastore.TopicPartition) (e metastore.Batch, found bool, err error) {
	err = s.read(ctx, func(tx *sql.Tx) error {
		id, _, err := partitionRow(ctx, tx, tp)
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `SELECT base_offset, last_offset, max_timestamp FROM batches
			WHERE partition_id = ?1 AND running_max_timestamp >=
				(SELECT max(running_max_timestamp) FROM batches WHERE partition_id = ?1)
			ORDER BY running_max_timestamp, last_offset LIMIT 1`, id).Scan(&e.BaseOffset, &e.LastOffset, &e.MaxTimestamp)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	})
	return e, found, err
}

// NextProducerID implements metastore.Store.
func (s *Store) NextProducerID(ctx context.Context) (int64, error) {
	var id int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `UPDATE producer_ids SET value = value + 1 WHERE id = 1 RETURNING value`).Scan(&id)
	})
	return id, err
}

var _ metastore.BulkReads = (*Store)(nil)

// BatchesMany implements metastore.BulkReads: SQLite runs in process, so
// one read transaction of per-partition lookups costs no round trips.
func (s *Store) BatchesMany(ctx context.Context, queries []metastore.BatchesQuery) ([]metastore.BatchesResult, error) {
	out := make([]metastore.BatchesResult, len(queries))
	err := s.read(ctx, func(tx *sql.Tx) error {
		for i, q := range queries {
			r := &out[i]
			id, o, err := partitionRow(ctx, tx, q.TopicPartition)
			if errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
				r.Err = err
				continue
			}
			if err != nil {
				return err
			}
			r.Offsets = o
			rows, err := tx.QueryContext(ctx, `SELECT b.base_offset, b.last_offset, b.max_timestamp, coalesce(s.key, ''),
				b.chunk_offset, b.chunk_length, b.pos, b.len
				FROM batches b LEFT JOIN segments s ON s.id = b.segment_id
				WHERE b.partition_id = ? AND b.last_offset >= ? ORDER BY b.last_offset LIMIT ?`, id, q.Offset, metastore.BulkBatches)
			if err != nil {
				return err
			}
			var sum int64
			for rows.Next() {
				var b metastore.Batch
				if err := rows.Scan(&b.BaseOffset, &b.LastOffset, &b.MaxTimestamp, &b.SegmentKey,
					&b.ChunkOffset, &b.ChunkLength, &b.Pos, &b.Len); err != nil {
					rows.Close()
					return err
				}
				if len(r.Batches) > 0 && sum+int64(b.Len) > q.MaxBytes {
					break
				}
				r.Batches = append(r.Batches, b)
				sum += int64(b.Len)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// OffsetsMany implements metastore.BulkReads.
func (s *Store) OffsetsMany(ctx context.Context, tps []metastore.TopicPartition) ([]metastore.OffsetsResult, error) {
	out := make([]metastore.OffsetsResult, len(tps))
	err := s.read(ctx, func(tx *sql.Tx) error {
		for i, tp := range tps {
			_, o, err := partitionRow(ctx, tx, tp)
			if err != nil && !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
				return err
			}
			out[i] = metastore.OffsetsResult{Offsets: o, Err: err}
		}
		return nil
	})
	return out, err
}
