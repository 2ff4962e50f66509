package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/siltdata/silt/metastore"
)

var (
	_ metastore.Backend   = (*Store)(nil)
	_ metastore.Leases    = (*Store)(nil)
	_ metastore.Lifecycle = (*Store)(nil)
)

// micros is a duration as Postgres arithmetic takes it here
// ($n * interval '1 microsecond').
func micros(d time.Duration) int64 { return d.Microseconds() }

// AcquireLease implements metastore.Leases in one statement. The epoch
// grows when the lease was free (expired or released), whoever takes it.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (metastore.Lease, bool, error) {
	l := metastore.Lease{Name: name, Holder: holder}
	err := s.pool.QueryRow(ctx, `INSERT INTO leases AS l (name, holder, epoch, expires_at)
		VALUES ($1, $2, 1, now() + $3 * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE SET
			holder = excluded.holder,
			epoch = CASE WHEN l.expires_at > now() THEN l.epoch ELSE l.epoch + 1 END,
			expires_at = excluded.expires_at
		WHERE l.expires_at <= now() OR l.holder = excluded.holder
		RETURNING l.epoch`, name, holder, micros(ttl)).Scan(&l.Epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return metastore.Lease{}, false, nil
	}
	if err != nil {
		return metastore.Lease{}, false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return l, true, nil
}

// RenewLease implements metastore.Leases.
func (s *Store) RenewLease(ctx context.Context, l metastore.Lease, ttl time.Duration) error {
	tag, err := s.pool.Exec(ctx, `UPDATE leases SET expires_at = now() + $4 * interval '1 microsecond'
		WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > now()`, l.Name, l.Holder, l.Epoch, micros(ttl))
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", l.Name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("renew lease %s epoch %d: %w", l.Name, l.Epoch, metastore.ErrLeaseLost)
	}
	return nil
}

// ReleaseLease implements metastore.Leases.
func (s *Store) ReleaseLease(ctx context.Context, l metastore.Lease) error {
	_, err := s.pool.Exec(ctx, `UPDATE leases SET expires_at = '-infinity' WHERE name = $1 AND holder = $2 AND epoch = $3`,
		l.Name, l.Holder, l.Epoch)
	if err != nil {
		return fmt.Errorf("release lease %s: %w", l.Name, err)
	}
	return nil
}

// fenced runs fn in a transaction that first checks, and share-locks, the
// lease row: a successor's AcquireLease (which updates the row) waits
// until fn's transaction ends, and fn never runs once the lease is lost.
// So two holders' writes never interleave.
func (s *Store) fenced(ctx context.Context, l metastore.Lease, fn func(pgx.Tx) error) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM leases WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > now()
			FOR SHARE`, l.Name, l.Holder, l.Epoch).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("lease %s epoch %d: %w", l.Name, l.Epoch, metastore.ErrLeaseLost)
		}
		if err != nil {
			return err
		}
		return fn(tx)
	})
}

// DeleteRecords implements metastore.Lifecycle.
func (s *Store) DeleteRecords(ctx context.Context, tp metastore.TopicPartition, offset int64) (metastore.PartitionOffsets, error) {
	var o metastore.PartitionOffsets
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var id, txnFirst int64
		err := tx.QueryRow(ctx, `SELECT id, log_start_offset, high_watermark, txn_first_offset, aborted_end FROM partitions
			WHERE topic_id = $1 AND partition = $2 AND NOT deleted FOR UPDATE`, uuidOf(tp.Topic), tp.Partition).
			Scan(&id, &o.LogStartOffset, &o.HighWatermark, &txnFirst, &o.AbortedEnd)
		if errors.Is(err, pgx.ErrNoRows) {
			return unknownTP(tp)
		}
		if err != nil {
			return err
		}
		if offset == -1 {
			offset = o.HighWatermark
		}
		if offset < 0 || offset > o.HighWatermark {
			return fmt.Errorf("delete records of %s/%d to %d (high watermark %d): %w",
				tp.Topic, tp.Partition, offset, o.HighWatermark, metastore.ErrOffsetOutOfRange)
		}
		defer func() { o.LastStableOffset = metastore.LastStable(o.LogStartOffset, o.HighWatermark, txnFirst) }()
		if offset <= o.LogStartOffset {
			return nil
		}
		o.LogStartOffset = offset
		_, err = tx.Exec(ctx, `UPDATE partitions SET log_start_offset = $2 WHERE id = $1`, id, offset)
		return err
	})
	return o, err
}

// StoredPartitions implements metastore.Lifecycle.
func (s *Store) StoredPartitions(ctx context.Context, after int64, limit int) ([]metastore.StoredPartition, error) {
	rows, err := s.pool.Query(ctx, `SELECT p.id, p.topic_id, p.partition, p.deleted, `+offsetsColumns+`,
			p.bytes, p.rows, p.compacted_offset, p.compacted_bytes, p.cleaned_offset,
			coalesce(f.base_offset, -1), coalesce(f.last_offset, -1), coalesce(f.max_timestamp, 0), coalesce(f.len, 0)
		FROM partitions p
		LEFT JOIN LATERAL (
			SELECT base_offset, last_offset, max_timestamp, len FROM batches b
			WHERE b.partition_id = p.id ORDER BY b.last_offset LIMIT 1
		) f ON true
		WHERE p.id > $1 ORDER BY p.id LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.StoredPartition, error) {
		var (
			p     metastore.StoredPartition
			topic pgtype.UUID
		)
		err := r.Scan(&p.ID, &topic, &p.Partition, &p.Deleted, &p.LogStartOffset, &p.HighWatermark, &p.LastStableOffset, &p.AbortedEnd,
			&p.Bytes, &p.Rows, &p.CompactedOffset, &p.CompactedBytes, &p.CleanedOffset,
			&p.Front.BaseOffset, &p.Front.LastOffset, &p.Front.MaxTimestamp, &p.Front.Len)
		p.Topic = topic.Bytes
		p.FrontOK = p.Front.LastOffset >= 0
		return p, err
	})
}

// lifecyclePart is a partition row as lifecycle writes read it (locked).
type lifecyclePart struct {
	lso, hw, bytes, co, cbytes int64
}

func lockPart(ctx context.Context, tx pgx.Tx, id int64) (lifecyclePart, error) {
	var p lifecyclePart
	err := tx.QueryRow(ctx, `SELECT log_start_offset, high_watermark, bytes, compacted_offset, compacted_bytes
		FROM partitions WHERE id = $1 FOR UPDATE`, id).Scan(&p.lso, &p.hw, &p.bytes, &p.co, &p.cbytes)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("partition id %d: %w", id, metastore.ErrUnknownTopicOrPartition)
	}
	return p, err
}

// unref drops references to segments (segment id -> rows removed), in id
// order; those left without any are dead from now.
func unref(ctx context.Context, tx pgx.Tx, refs map[int64]int32) error {
	ids := make([]int64, 0, len(refs))
	for id := range refs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ns := make([]int32, len(ids))
	for i, id := range ids {
		ns[i] = refs[id]
	}
	_, err := tx.Exec(ctx, `UPDATE segments s SET refs = s.refs - u.n,
			state = CASE WHEN s.refs - u.n <= 0 THEN 'dead' ELSE s.state END,
			dead_at = CASE WHEN s.refs - u.n <= 0 THEN now() ELSE s.dead_at END
		FROM unnest($1::bigint[], $2::integer[]) AS u(id, n) WHERE s.id = u.id`, ids, ns)
	return err
}

// Retain implements metastore.Lifecycle.
func (s *Store) Retain(ctx context.Context, fence metastore.Lease, req metastore.RetainRequest) (metastore.RetainResult, error) {
	var res metastore.RetainResult
	err := s.fenced(ctx, fence, func(tx pgx.Tx) error {
		res = metastore.RetainResult{}
		p, err := lockPart(ctx, tx, req.PartitionID)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT last_offset, max_timestamp, segment_id, len FROM batches
			WHERE partition_id = $1 ORDER BY last_offset LIMIT $2`, req.PartitionID, req.MaxRows)
		if err != nil {
			return err
		}
		var (
			n, removed int
			last       = int64(-1)
			bytes      = p.bytes
			cbytes     = p.cbytes
			refs       = map[int64]int32{}
			kept       bool
		)
		for rows.Next() {
			var (
				lastOff, maxTS, seg int64
				length              int32
			)
			if err := rows.Scan(&lastOff, &maxTS, &seg, &length); err != nil {
				rows.Close()
				return err
			}
			n++
			reason := metastore.RetainReason(req, lastOff, maxTS, int64(length), p.lso, bytes)
			if reason < 0 {
				kept = true
				break
			}
			res.Removed[reason].Rows++
			res.Removed[reason].Bytes += int64(length)
			bytes -= int64(length)
			if lastOff < p.co {
				cbytes -= int64(length)
			}
			refs[seg]++
			removed++
			last = lastOff
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		res.More = !kept && n == req.MaxRows
		res.LogStartOffset = p.lso
		if last < 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM batches WHERE partition_id = $1 AND last_offset <= $2`, req.PartitionID, last); err != nil {
			return err
		}
		// The aborted transactions whose markers were in the removed rows:
		// at most one per removed row.
		if _, err := tx.Exec(ctx, `DELETE FROM aborted_txns WHERE partition_id = $1 AND last_offset <= $2`, req.PartitionID, last); err != nil {
			return err
		}
		if err := unref(ctx, tx, refs); err != nil {
			return err
		}
		res.LogStartOffset = max(p.lso, last+1)
		res.Moved = res.LogStartOffset - p.lso
		_, err = tx.Exec(ctx, `UPDATE partitions SET log_start_offset = $2, bytes = $3, rows = rows - $4,
			compacted_bytes = $5, compacted_offset = greatest(compacted_offset, $2) WHERE id = $1`,
			req.PartitionID, res.LogStartOffset, bytes, removed, cbytes)
		return err
	})
	return res, err
}

// indexRowSelect reads index rows with their segments. A marker row has
// no segment (segment id 0): no key, size 0, and its age is its
// timestamp's.
const indexRowSelect = `SELECT b.base_offset, b.last_offset, b.max_timestamp, coalesce(s.key, ''), b.chunk_offset, b.chunk_length,
		b.pos, b.len, b.segment_id, coalesce(s.size, 0), coalesce(s.compacted, false),
		extract(epoch FROM now() - coalesce(s.created_at, to_timestamp(b.max_timestamp / 1000.0)))::float8
	FROM batches b LEFT JOIN segments s ON s.id = b.segment_id `

func scanIndexRows(rows pgx.Rows) ([]metastore.IndexRow, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.IndexRow, error) {
		var (
			ir  metastore.IndexRow
			age float64
		)
		err := r.Scan(&ir.BaseOffset, &ir.LastOffset, &ir.MaxTimestamp, &ir.SegmentKey, &ir.ChunkOffset, &ir.ChunkLength,
			&ir.Pos, &ir.Len, &ir.SegmentID, &ir.SegmentSize, &ir.Compacted, &age)
		ir.SegmentAge = time.Duration(age * float64(time.Second))
		return ir, err
	})
}

// IndexRows implements metastore.Lifecycle.
func (s *Store) IndexRows(ctx context.Context, partitionID, offset int64, limit int) ([]metastore.IndexRow, error) {
	rows, err := s.pool.Query(ctx, indexRowSelect+`WHERE b.partition_id = $1 AND b.last_offset >= $2
		ORDER BY b.last_offset LIMIT $3`, partitionID, offset, limit)
	if err != nil {
		return nil, err
	}
	return scanIndexRows(rows)
}

// IndexRowsBefore implements metastore.Lifecycle.
func (s *Store) IndexRowsBefore(ctx context.Context, partitionID, offset int64, limit int) ([]metastore.IndexRow, error) {
	rows, err := s.pool.Query(ctx, indexRowSelect+`WHERE b.partition_id = $1 AND b.last_offset < $2
		ORDER BY b.last_offset DESC LIMIT $3`, partitionID, offset, limit)
	if err != nil {
		return nil, err
	}
	return scanIndexRows(rows)
}

// SwapRows implements metastore.Lifecycle.
func (s *Store) SwapRows(ctx context.Context, fence metastore.Lease, swap metastore.Swap) error {
	if err := metastore.CheckSwap(swap); err != nil {
		return err
	}
	first, last := swap.Old[0], swap.Old[len(swap.Old)-1]
	return s.fenced(ctx, fence, func(tx pgx.Tx) error {
		p, err := lockPart(ctx, tx, swap.PartitionID)
		if err != nil {
			return err
		}
		var (
			segID int64
			state string
		)
		if swap.Key != "" {
			err = tx.QueryRow(ctx, `SELECT id, state FROM segments WHERE key = $1 FOR UPDATE`, swap.Key).Scan(&segID, &state)
			if errors.Is(err, pgx.ErrNoRows) || err == nil && state != "pending" {
				return fmt.Errorf("swap to %s (%s): %w", swap.Key, state, metastore.ErrSegmentGone)
			}
			if err != nil {
				return err
			}
		}
		// Exactly the old rows must be there, in the same segments.
		var stored []int64 // last offset, segment id pairs
		rows, err := tx.Query(ctx, `SELECT last_offset, segment_id FROM batches
			WHERE partition_id = $1 AND last_offset BETWEEN $2 AND $3 ORDER BY last_offset`, swap.PartitionID, first.LastOffset, last.LastOffset)
		if err != nil {
			return err
		}
		for rows.Next() {
			var lastOff, seg int64
			if err := rows.Scan(&lastOff, &seg); err != nil {
				rows.Close()
				return err
			}
			stored = append(stored, lastOff, seg)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		same := len(stored) == 2*len(swap.Old)
		for i := 0; same && i < len(swap.Old); i++ {
			same = stored[2*i] == swap.Old[i].LastOffset && stored[2*i+1] == swap.Old[i].SegmentID
		}
		if !same {
			return fmt.Errorf("swap offsets [%d, %d] to %s: %w", first.BaseOffset, last.LastOffset, swap.Key, metastore.ErrSwapConflict)
		}
		prevMax := int64(-1)
		err = tx.QueryRow(ctx, `SELECT running_max_timestamp FROM batches WHERE partition_id = $1 AND last_offset < $2
			ORDER BY last_offset DESC LIMIT 1`, swap.PartitionID, first.LastOffset).Scan(&prevMax)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM batches WHERE partition_id = $1 AND last_offset BETWEEN $2 AND $3`,
			swap.PartitionID, first.LastOffset, last.LastOffset); err != nil {
			return err
		}
		n := len(swap.New)
		var (
			base, lastOffs, maxTS, running = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
			chunkOff, chunkLen             = make([]int64, n), make([]int64, n)
			pos, lens                      = make([]int32, n), make([]int32, n)
			newBytes                       int64
		)
		run := prevMax
		for i, b := range swap.New {
			run = max(run, b.MaxTimestamp)
			base[i], lastOffs[i], maxTS[i], running[i] = b.BaseOffset, b.LastOffset, b.MaxTimestamp, run
			chunkOff[i], chunkLen[i], pos[i], lens[i] = b.ChunkOffset, b.ChunkLength, b.Pos, b.Len
			newBytes += int64(b.Len)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO batches (partition_id, base_offset, last_offset, max_timestamp, running_max_timestamp,
				segment_id, chunk_offset, chunk_length, pos, len)
			SELECT $1, u.base, u.last, u.mts, u.rmts, $2, u.coff, u.clen, u.pos, u.len
			FROM unnest($3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::integer[], $10::integer[])
				AS u(base, last, mts, rmts, coff, clen, pos, len)`,
			swap.PartitionID, segID, base, lastOffs, maxTS, running, chunkOff, chunkLen, pos, lens); err != nil {
			return fmt.Errorf("insert swapped rows: %w", err)
		}
		refs := map[int64]int32{}
		var oldBytes, oldCompacted int64
		for _, r := range swap.Old {
			refs[r.SegmentID]++
			oldBytes += int64(r.Len)
			if r.LastOffset < p.co {
				oldCompacted += int64(r.Len)
			}
		}
		if err := unref(ctx, tx, refs); err != nil {
			return err
		}
		if swap.Key != "" {
			if _, err := tx.Exec(ctx, `UPDATE segments SET state = 'committed', size = $2, refs = $3, compacted = true WHERE id = $1`,
				segID, swap.Size, n); err != nil {
				return err
			}
		}
		co, cdelta := metastore.SwapCompacted(p.co, first.BaseOffset, last.LastOffset, newBytes, oldCompacted)
		_, err = tx.Exec(ctx, `UPDATE partitions SET bytes = bytes + $2, rows = rows + $3,
			compacted_offset = $4, compacted_bytes = compacted_bytes + $5 WHERE id = $1`,
			swap.PartitionID, newBytes-oldBytes, n-len(swap.Old), co, cdelta)
		return err
	})
}

// MarkCleaned implements metastore.Lifecycle.
func (s *Store) MarkCleaned(ctx context.Context, fence metastore.Lease, partitionID, offset int64) error {
	return s.fenced(ctx, fence, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE partitions SET cleaned_offset = greatest(cleaned_offset, $2) WHERE id = $1`, partitionID, offset)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("partition id %d: %w", partitionID, metastore.ErrUnknownTopicOrPartition)
		}
		return nil
	})
}

// ProducerTails implements metastore.Lifecycle: the last batch of each
// producer's window, its record count from its sequences (which wrap from
// MaxInt32 to 0).
func (s *Store) ProducerTails(ctx context.Context, partitionID int64) (map[int64]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT producer_id,
			base_offsets[cardinality(base_offsets)]
			+ ((last_seqs[cardinality(last_seqs)]::bigint - first_seqs[cardinality(first_seqs)]::bigint + 2147483648) % 2147483648)
		FROM producer_state WHERE partition_id = $1 AND cardinality(base_offsets) > 0`, partitionID)
	if err != nil {
		return nil, err
	}
	tails := map[int64]int64{}
	var pid, last int64
	_, err = pgx.ForEachRow(rows, []any{&pid, &last}, func() error {
		tails[pid] = last
		return nil
	})
	return tails, err
}

// ClaimOrphans implements metastore.Lifecycle.
func (s *Store) ClaimOrphans(ctx context.Context, fence metastore.Lease, olderThan time.Duration, limit int) (int, error) {
	var n int64
	err := s.fenced(ctx, fence, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE segments SET state = 'dead', dead_at = now()
			WHERE id IN (SELECT id FROM segments WHERE state = 'pending' AND created_at <= now() - $1 * interval '1 microsecond'
				ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, micros(olderThan), limit)
		n = tag.RowsAffected()
		return err
	})
	return int(n), err
}

// DeadSegments implements metastore.Lifecycle.
func (s *Store) DeadSegments(ctx context.Context, olderThan time.Duration, limit int) ([]metastore.SegmentInfo, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, size FROM segments
		WHERE state = 'dead' AND dead_at <= now() - $1 * interval '1 microsecond' ORDER BY dead_at LIMIT $2`, micros(olderThan), limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.SegmentInfo, error) {
		var si metastore.SegmentInfo
		err := r.Scan(&si.Key, &si.Size)
		return si, err
	})
}

// ForgetSegments implements metastore.Lifecycle.
func (s *Store) ForgetSegments(ctx context.Context, fence metastore.Lease, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	return s.fenced(ctx, fence, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM segments WHERE state = 'dead' AND key = ANY ($1)`, keys)
		return err
	})
}

// KnownSegments implements metastore.Lifecycle.
func (s *Store) KnownSegments(ctx context.Context, keys []string) (map[string]bool, error) {
	known := make(map[string]bool, len(keys))
	if len(keys) == 0 {
		return known, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT key FROM segments WHERE key = ANY ($1)`, keys)
	if err != nil {
		return nil, err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, k := range found {
		known[k] = true
	}
	return known, err
}

// DropPartition implements metastore.Lifecycle.
func (s *Store) DropPartition(ctx context.Context, fence metastore.Lease, partitionID int64) (bool, error) {
	dropped := false
	err := s.fenced(ctx, fence, func(tx pgx.Tx) error {
		var (
			topic   pgtype.UUID
			deleted bool
		)
		err := tx.QueryRow(ctx, `SELECT topic_id, deleted FROM partitions WHERE id = $1 FOR UPDATE`, partitionID).Scan(&topic, &deleted)
		if errors.Is(err, pgx.ErrNoRows) {
			dropped = true // gone already
			return nil
		}
		if err != nil {
			return err
		}
		if !deleted {
			return fmt.Errorf("drop partition id %d: %w: its topic is not deleted", partitionID, metastore.ErrUnknownTopicOrPartition)
		}
		var remain bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM batches WHERE partition_id = $1)`, partitionID).Scan(&remain); err != nil {
			return err
		}
		if remain {
			return nil
		}
		// Cascades to producer state; the transactions' tables have no
		// foreign keys to partitions (see migration 0005).
		if _, err := tx.Exec(ctx, `DELETE FROM partitions WHERE id = $1`, partitionID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM aborted_txns WHERE partition_id = $1`, partitionID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM txn_partitions WHERE partition_id = $1`, partitionID); err != nil {
			return err
		}
		dropped = true
		_, err = tx.Exec(ctx, `DELETE FROM topics WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM partitions WHERE topic_id = $1)`, topic)
		return err
	})
	return dropped, err
}

// ExpireProducers implements metastore.Lifecycle: one statement deletes the
// expired rows among the next limit rows of the primary key after cursor
// and reports where the scan got to.
func (s *Store) ExpireProducers(ctx context.Context, fence metastore.Lease, olderThan time.Duration, cursor metastore.ProducerCursor, limit int) (metastore.ProducerCursor, int, bool, error) {
	var (
		next    metastore.ProducerCursor
		scanned int
		removed int
	)
	err := s.fenced(ctx, fence, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `WITH page AS (
				SELECT partition_id, producer_id, last_write FROM producer_state
				WHERE (partition_id, producer_id) > ($1, $2) ORDER BY partition_id, producer_id LIMIT $3
			), gone AS (
				DELETE FROM producer_state ps USING page
				WHERE ps.partition_id = page.partition_id AND ps.producer_id = page.producer_id
					AND page.last_write <= now() - $4 * interval '1 microsecond' AND ps.txn_first_offset < 0
				RETURNING 1
			)
			SELECT coalesce((SELECT partition_id FROM page ORDER BY partition_id DESC, producer_id DESC LIMIT 1), 0),
				coalesce((SELECT producer_id FROM page ORDER BY partition_id DESC, producer_id DESC LIMIT 1), 0),
				(SELECT count(*) FROM page)::integer, (SELECT count(*) FROM gone)::integer`,
			cursor.PartitionID, cursor.ProducerID, limit, micros(olderThan)).Scan(&next.PartitionID, &next.ProducerID, &scanned, &removed)
	})
	if err != nil {
		return cursor, 0, false, err
	}
	done := scanned < limit
	if done {
		next = metastore.ProducerCursor{}
	}
	return next, removed, done, nil
}

// StorageStats implements metastore.Lifecycle.
func (s *Store) StorageStats(ctx context.Context) (metastore.StorageStats, error) {
	st := metastore.StorageStats{Topics: map[string]metastore.TopicStorage{}, Segments: map[string]metastore.SegmentCount{}}
	rows, err := s.pool.Query(ctx, `SELECT t.name, coalesce(sum(p.bytes), 0)::bigint, coalesce(sum(p.rows), 0)::bigint,
			coalesce(sum(p.bytes - p.compacted_bytes), 0)::bigint
		FROM topics t LEFT JOIN partitions p ON p.topic_id = t.id WHERE t.deleted_at IS NULL GROUP BY t.name`)
	if err != nil {
		return st, err
	}
	for rows.Next() {
		var (
			name string
			ts   metastore.TopicStorage
		)
		if err := rows.Scan(&name, &ts.Bytes, &ts.Rows, &ts.Uncompacted); err != nil {
			rows.Close()
			return st, err
		}
		st.Topics[name] = ts
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, err
	}
	rows, err = s.pool.Query(ctx, `SELECT state, compacted, count(*), coalesce(sum(size), 0)::bigint FROM segments GROUP BY state, compacted`)
	if err != nil {
		return st, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			state     string
			compacted bool
			c         metastore.SegmentCount
		)
		if err := rows.Scan(&state, &compacted, &c.Objects, &c.Bytes); err != nil {
			return st, err
		}
		sum := st.Segments[state]
		sum.Objects += c.Objects
		sum.Bytes += c.Bytes
		st.Segments[state] = sum
		if compacted && state == "committed" {
			st.CompactedSegments = c
		}
	}
	return st, rows.Err()
}
