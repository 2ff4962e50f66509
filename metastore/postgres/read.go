package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/siltdata/silt/metastore"
)

// Batches reads the index in pages: the first asks for firstPage rows (a
// typical fetch of 1 MiB in 32 KiB+ batches fits), each next one for twice
// as many up to maxPage. Every page is one index range scan, so a read is
// O(result) and never ships many more rows than it uses.
const (
	firstPage = 32
	maxPage   = 1024
)

func unknownTP(tp metastore.TopicPartition) error {
	return fmt.Errorf("partition %s/%d: %w", tp.Topic, tp.Partition, metastore.ErrUnknownTopicOrPartition)
}

// offsetsColumns are a partition row's offsets (metastore.PartitionOffsets),
// of the row named p: the last stable offset is where the oldest open
// transaction begins (never below the log start), else the high
// watermark.
const offsetsColumns = `p.log_start_offset, p.high_watermark,
	CASE WHEN p.txn_first_offset >= 0 THEN greatest(p.txn_first_offset, p.log_start_offset) ELSE p.high_watermark END,
	p.aborted_end`

// batchesQuery reads the partition row and up to limit batches from $3.
// The limit is a literal, not a parameter: with LIMIT $n Postgres
// estimates a generic plan for 10% of the table and so re-plans the
// statement on every call (planning costs several times the execution);
// with a literal the cached generic plan is used. There are only a few
// page sizes, so only a few statements.
func batchesQuery(limit int) string {
	return `SELECT ` + offsetsColumns + `,
			coalesce(b.base_offset, -1), coalesce(b.last_offset, -1), coalesce(b.max_timestamp, -1),
			coalesce(b.key, ''), coalesce(b.chunk_offset, 0), coalesce(b.chunk_length, 0),
			coalesce(b.pos, 0), coalesce(b.len, 0)
		FROM partitions p
		LEFT JOIN LATERAL (
			SELECT b.base_offset, b.last_offset, b.max_timestamp, s.key, b.chunk_offset, b.chunk_length, b.pos, b.len
			FROM batches b LEFT JOIN segments s ON s.id = b.segment_id
			WHERE b.partition_id = p.id AND b.last_offset >= $3
			ORDER BY b.last_offset LIMIT ` + strconv.Itoa(limit) + `
		) b ON true
		WHERE p.topic_id = $1 AND p.partition = $2 AND NOT p.deleted`
}

// Batches implements metastore.Store. One statement reads the partition
// row and walks the primary key (partition_id, last_offset) from offset,
// so offsets and batches come from one snapshot. A batch after the first
// is included only while the sum stays within maxBytes, as Kafka bounds a
// fetch response.
func (s *Store) Batches(ctx context.Context, tp metastore.TopicPartition, offset int64, maxBytes int64) ([]metastore.Batch, metastore.PartitionOffsets, error) {
	var (
		out   []metastore.Batch
		po    metastore.PartitionOffsets
		sum   int64
		first = true
		page  = firstPage
	)
	for {
		rows, err := s.pool.Query(ctx, batchesQuery(page), uuidOf(tp.Topic), tp.Partition, offset)
		if err != nil {
			return nil, po, err
		}
		n, full, found := 0, false, false
		for rows.Next() {
			var b metastore.Batch
			var o metastore.PartitionOffsets
			if err := rows.Scan(&o.LogStartOffset, &o.HighWatermark, &o.LastStableOffset, &o.AbortedEnd, &b.BaseOffset, &b.LastOffset, &b.MaxTimestamp,
				&b.SegmentKey, &b.ChunkOffset, &b.ChunkLength, &b.Pos, &b.Len); err != nil {
				rows.Close()
				return nil, po, err
			}
			found = true
			if first {
				po, first = o, false
			}
			if b.BaseOffset < 0 {
				break // the partition row without batches
			}
			n++
			if len(out) > 0 && sum+int64(b.Len) > maxBytes {
				full = true
				break
			}
			out = append(out, b)
			sum += int64(b.Len)
			offset = b.LastOffset + 1
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, po, err
		}
		if !found {
			if len(out) > 0 { // deleted while paging
				return out, po, nil
			}
			return nil, po, unknownTP(tp)
		}
		if full || n < page || sum >= maxBytes {
			return out, po, nil
		}
		page = min(2*page, maxPage)
	}
}

// Offsets implements metastore.Store.
func (s *Store) Offsets(ctx context.Context, tp metastore.TopicPartition) (metastore.PartitionOffsets, error) {
	var o metastore.PartitionOffsets
	err := s.pool.QueryRow(ctx, `SELECT `+offsetsColumns+` FROM partitions p
		WHERE p.topic_id = $1 AND p.partition = $2 AND NOT p.deleted`,
		uuidOf(tp.Topic), tp.Partition).Scan(&o.LogStartOffset, &o.HighWatermark, &o.LastStableOffset, &o.AbortedEnd)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, unknownTP(tp)
	}
	return o, err
}

// OffsetForTimestamp implements metastore.Store through the index on
// (partition_id, running_max_timestamp, last_offset): running_max_timestamp
// never decreases with the offset, and the first entry whose running max
// reaches ts is exactly the first entry whose own max timestamp does.
// Entries ending before from are skipped.
func (s *Store) OffsetForTimestamp(ctx context.Context, tp metastore.TopicPartition, ts, from int64) (e metastore.Batch, found bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT coalesce(b.base_offset, -1), coalesce(b.last_offset, -1), coalesce(b.max_timestamp, -1)
		FROM partitions p
		LEFT JOIN LATERAL (
			SELECT base_offset, last_offset, max_timestamp FROM batches
			WHERE partition_id = p.id AND running_max_timestamp >= $3 AND last_offset >= $4
			ORDER BY running_max_timestamp, last_offset LIMIT 1
		) b ON true
		WHERE p.topic_id = $1 AND p.partition = $2 AND NOT p.deleted`, uuidOf(tp.Topic), tp.Partition, ts, from).
		Scan(&e.BaseOffset, &e.LastOffset, &e.MaxTimestamp)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, false, unknownTP(tp)
	}
	if err != nil || e.BaseOffset < 0 {
		return metastore.Batch{}, false, err
	}
	return e, true, nil
}

// MaxTimestamp implements metastore.Store: the first entry (by offset)
// whose running max equals the partition's largest running max holds the
// largest timestamp; two index probes.
func (s *Store) MaxTimestamp(ctx context.Context, tp metastore.TopicPartition) (e metastore.Batch, found bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT coalesce(b.base_offset, -1), coalesce(b.last_offset, -1), coalesce(b.max_timestamp, -1)
		FROM partitions p
		LEFT JOIN LATERAL (
			SELECT base_offset, last_offset, max_timestamp FROM batches
			WHERE partition_id = p.id AND running_max_timestamp >= (
				SELECT running_max_timestamp FROM batches WHERE partition_id = p.id
				ORDER BY running_max_timestamp DESC LIMIT 1)
			ORDER BY running_max_timestamp, last_offset LIMIT 1
		) b ON true
		WHERE p.topic_id = $1 AND p.partition = $2 AND NOT p.deleted`, uuidOf(tp.Topic), tp.Partition).
		Scan(&e.BaseOffset, &e.LastOffset, &e.MaxTimestamp)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, false, unknownTP(tp)
	}
	if err != nil || e.BaseOffset < 0 {
		return metastore.Batch{}, false, err
	}
	return e, true, nil
}

// NextProducerID implements metastore.Store.
func (s *Store) NextProducerID(ctx context.Context) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `SELECT nextval('producer_ids')`).Scan(&id)
	return id, err
}

var _ metastore.BulkReads = (*Store)(nil)

// BatchesMany implements metastore.BulkReads with one statement: the
// queries as arrays, each partition's entries by a lateral index scan.
func (s *Store) BatchesMany(ctx context.Context, queries []metastore.BatchesQuery) ([]metastore.BatchesResult, error) {
	n := len(queries)
	topics, parts, offsets := make([]pgtype.UUID, n), make([]int32, n), make([]int64, n)
	for i, q := range queries {
		topics[i], parts[i], offsets[i] = uuidOf(q.Topic), q.Partition, q.Offset
	}
	out := make([]metastore.BatchesResult, n)
	found := make([]bool, n)
	sums := make([]int64, n)
	// full[i]: an entry of partition i did not fit, so its answer ends
	// there. The rows of all partitions come in one result set, so the
	// scan cannot stop as Batches does; it must skip the partition's
	// remaining rows, or a smaller entry after the one that did not fit
	// would join the answer and the fetch would jump over the offsets
	// between them (entries differ in size by thousands of times once the
	// janitor has compacted part of a partition).
	full := make([]bool, n)
	rows, err := s.pool.Query(ctx, `SELECT u.ord::integer, `+offsetsColumns+`,
			coalesce(b.base_offset, -1), coalesce(b.last_offset, -1), coalesce(b.max_timestamp, -1),
			coalesce(b.key, ''), coalesce(b.chunk_offset, 0), coalesce(b.chunk_length, 0), coalesce(b.pos, 0), coalesce(b.len, 0)
		FROM unnest($1::uuid[], $2::integer[], $3::bigint[]) WITH ORDINALITY AS u(t, pa, off, ord)
		JOIN partitions p ON p.topic_id = u.t AND p.partition = u.pa AND NOT p.deleted
		LEFT JOIN LATERAL (
			SELECT b.base_offset, b.last_offset, b.max_timestamp, s.key, b.chunk_offset, b.chunk_length, b.pos, b.len
			FROM batches b LEFT JOIN segments s ON s.id = b.segment_id
			WHERE b.partition_id = p.id AND b.last_offset >= u.off
			ORDER BY b.last_offset LIMIT `+strconv.Itoa(metastore.BulkBatches)+`
		) b ON true
		ORDER BY u.ord, b.last_offset`, topics, parts, offsets)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			ord int32
			o   metastore.PartitionOffsets
			b   metastore.Batch
		)
		if err := rows.Scan(&ord, &o.LogStartOffset, &o.HighWatermark, &o.LastStableOffset, &o.AbortedEnd, &b.BaseOffset, &b.LastOffset, &b.MaxTimestamp,
			&b.SegmentKey, &b.ChunkOffset, &b.ChunkLength, &b.Pos, &b.Len); err != nil {
			return nil, err
		}
		i := int(ord) - 1
		r := &out[i]
		found[i] = true
		r.Offsets = o
		if b.BaseOffset < 0 || full[i] {
			continue
		}
		if len(r.Batches) > 0 && sums[i]+int64(b.Len) > queries[i].MaxBytes {
			full[i] = true
			continue
		}
		r.Batches = append(r.Batches, b)
		sums[i] += int64(b.Len)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if !found[i] {
			out[i].Err = unknownTP(queries[i].TopicPartition)
		}
	}
	return out, nil
}

// OffsetsMany implements metastore.BulkReads with one statement.
func (s *Store) OffsetsMany(ctx context.Context, tps []metastore.TopicPartition) ([]metastore.OffsetsResult, error) {
	n := len(tps)
	topics, parts := make([]pgtype.UUID, n), make([]int32, n)
	for i, tp := range tps {
		topics[i], parts[i] = uuidOf(tp.Topic), tp.Partition
	}
	out := make([]metastore.OffsetsResult, n)
	found := make([]bool, n)
	rows, err := s.pool.Query(ctx, `SELECT u.ord::integer, `+offsetsColumns+`
		FROM unnest($1::uuid[], $2::integer[]) WITH ORDINALITY AS u(t, pa, ord)
		JOIN partitions p ON p.topic_id = u.t AND p.partition = u.pa AND NOT p.deleted`, topics, parts)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			ord int32
			o   metastore.PartitionOffsets
		)
		if err := rows.Scan(&ord, &o.LogStartOffset, &o.HighWatermark, &o.LastStableOffset, &o.AbortedEnd); err != nil {
			return nil, err
		}
		out[ord-1].Offsets, found[ord-1] = o, true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if !found[i] {
			out[i].Err = unknownTP(tps[i])
		}
	}
	return out, nil
}
