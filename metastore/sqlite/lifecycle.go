package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/siltdata/silt/metastore"
)

var (
	_ metastore.Backend   = (*Store)(nil)
	_ metastore.Leases    = (*Store)(nil)
	_ metastore.Lifecycle = (*Store)(nil)
)

// AcquireLease implements metastore.Leases.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (metastore.Lease, bool, error) {
	l := metastore.Lease{Name: name, Holder: holder}
	ok := false
	err := s.write(ctx, func(tx *sql.Tx) error {
		now := s.now()
		expires := now.Add(ttl).UnixMicro()
		var (
			cur   string
			epoch int64
			until int64
		)
		err := tx.QueryRowContext(ctx, `SELECT holder, epoch, expires_at FROM leases WHERE name = ?`, name).Scan(&cur, &epoch, &until)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			l.Epoch, ok = 1, true
			_, err = tx.ExecContext(ctx, `INSERT INTO leases (name, holder, epoch, expires_at) VALUES (?, ?, 1, ?)`, name, holder, expires)
			return err
		case err != nil:
			return err
		case until > now.UnixMicro() && cur != holder:
			return nil // held by another
		case until > now.UnixMicro():
			l.Epoch, ok = epoch, true // renewal
		default:
			l.Epoch, ok = epoch+1, true // free again: a new term
		}
		_, err = tx.ExecContext(ctx, `UPDATE leases SET holder = ?, epoch = ?, expires_at = ? WHERE name = ?`, holder, l.Epoch, expires, name)
		return err
	})
	if err != nil {
		return metastore.Lease{}, false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return l, ok, nil
}

// RenewLease implements metastore.Leases.
func (s *Store) RenewLease(ctx context.Context, l metastore.Lease, ttl time.Duration) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		now := s.now()
		res, err := tx.ExecContext(ctx, `UPDATE leases SET expires_at = ?
			WHERE name = ? AND holder = ? AND epoch = ? AND expires_at > ?`,
			now.Add(ttl).UnixMicro(), l.Name, l.Holder, l.Epoch, now.UnixMicro())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("renew lease %s epoch %d: %w", l.Name, l.Epoch, metastore.ErrLeaseLost)
		}
		return nil
	})
}

// ReleaseLease implements metastore.Leases: the lease expires now, so the
// next holder to acquire it starts a new epoch.
func (s *Store) ReleaseLease(ctx context.Context, l metastore.Lease) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ? AND epoch = ?`,
			l.Name, l.Holder, l.Epoch)
		return err
	})
}

// checkFence fails with ErrLeaseLost unless l is held, in tx. SQLite has
// one writer, so nothing can take the lease before tx commits.
func (s *Store) checkFence(ctx context.Context, tx *sql.Tx, l metastore.Lease) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM leases WHERE name = ? AND holder = ? AND epoch = ? AND expires_at > ?`,
		l.Name, l.Holder, l.Epoch, s.now().UnixMicro()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("lease %s epoch %d: %w", l.Name, l.Epoch, metastore.ErrLeaseLost)
	}
	return err
}

// DeleteRecords implements metastore.Lifecycle.
func (s *Store) DeleteRecords(ctx context.Context, tp metastore.TopicPartition, offset int64) (metastore.PartitionOffsets, error) {
	var o metastore.PartitionOffsets
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, cur, err := partitionRow(ctx, tx, tp)
		if err != nil {
			return err
		}
		o = cur
		if offset == -1 {
			offset = cur.HighWatermark
		}
		if offset < 0 || offset > cur.HighWatermark {
			return fmt.Errorf("delete records of %s/%d to %d (high watermark %d): %w",
				tp.Topic, tp.Partition, offset, cur.HighWatermark, metastore.ErrOffsetOutOfRange)
		}
		if offset <= cur.LogStartOffset {
			return nil
		}
		o.LogStartOffset = offset
		if o.LastStableOffset < offset {
			// An open transaction begins below the new start.
			o.LastStableOffset = offset
		}
		_, err = tx.ExecContext(ctx, `UPDATE partitions SET log_start_offset = ? WHERE id = ?`, offset, id)
		return err
	})
	return o, err
}

// StoredPartitions implements metastore.Lifecycle.
func (s *Store) StoredPartitions(ctx context.Context, after int64, limit int) ([]metastore.StoredPartition, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT p.id, p.topic_id, p.partition, p.deleted,
			p.log_start_offset, p.high_watermark, p.txn_first_offset, p.aborted_end,
			p.bytes, p.rows, p.compacted_offset, p.compacted_bytes, p.cleaned_offset,
			coalesce(f.base_offset, -1), coalesce(f.last_offset, -1), coalesce(f.max_timestamp, 0), coalesce(f.len, 0)
		FROM partitions p LEFT JOIN batches f ON f.partition_id = p.id
			AND f.last_offset = (SELECT min(last_offset) FROM batches WHERE partition_id = p.id)
		WHERE p.id > ? ORDER BY p.id LIMIT ?`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []metastore.StoredPartition
	for rows.Next() {
		var (
			p        metastore.StoredPartition
			topic    []byte
			txnFirst int64
		)
		if err := rows.Scan(&p.ID, &topic, &p.Partition, &p.Deleted, &p.LogStartOffset, &p.HighWatermark, &txnFirst, &p.AbortedEnd,
			&p.Bytes, &p.Rows, &p.CompactedOffset, &p.CompactedBytes, &p.CleanedOffset,
			&p.Front.BaseOffset, &p.Front.LastOffset, &p.Front.MaxTimestamp, &p.Front.Len); err != nil {
			return nil, err
		}
		copy(p.Topic[:], topic)
		p.LastStableOffset = metastore.LastStable(p.LogStartOffset, p.HighWatermark, txnFirst)
		p.FrontOK = p.Front.LastOffset >= 0
		out = append(out, p)
	}
	return out, rows.Err()
}

// lifecyclePart is a partition row as lifecycle writes read it.
type lifecyclePart struct {
	lso, hw, bytes, rows, co, cbytes int64
}

// readPart reads a partition row by id.
func readPart(ctx context.Context, tx *sql.Tx, id int64) (lifecyclePart, error) {
	var p lifecyclePart
	err := tx.QueryRowContext(ctx, `SELECT log_start_offset, high_watermark, bytes, rows, compacted_offset, compacted_bytes
		FROM partitions WHERE id = ?`, id).Scan(&p.lso, &p.hw, &p.bytes, &p.rows, &p.co, &p.cbytes)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("partition id %d: %w", id, metastore.ErrUnknownTopicOrPartition)
	}
	return p, err
}

// unref drops references to segments (segment id -> rows removed); those
// left without any are dead from now.
func (s *Store) unref(ctx context.Context, tx *sql.Tx, refs map[int64]int) error {
	now := s.now().UnixMicro()
	for id, n := range refs {
		if _, err := tx.ExecContext(ctx, `UPDATE segments SET refs = refs - ?1,
				state = CASE WHEN refs - ?1 <= 0 THEN 'dead' ELSE state END,
				dead_at = CASE WHEN refs - ?1 <= 0 THEN ?2 ELSE dead_at END
			WHERE id = ?3`, n, now, id); err != nil {
			return err
		}
	}
	return nil
}

// Retain implements metastore.Lifecycle.
func (s *Store) Retain(ctx context.Context, fence metastore.Lease, req metastore.RetainRequest) (metastore.RetainResult, error) {
	var res metastore.RetainResult
	err := s.write(ctx, func(tx *sql.Tx) error {
		res = metastore.RetainResult{}
		if err := s.checkFence(ctx, tx, fence); err != nil {
			return err
		}
		p, err := readPart(ctx, tx, req.PartitionID)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT last_offset, max_timestamp, segment_id, len FROM batches
			WHERE partition_id = ? ORDER BY last_offset LIMIT ?`, req.PartitionID, req.MaxRows)
		if err != nil {
			return err
		}
		var (
			n      int
			last   = int64(-1)
			bytes  = p.bytes
			cbytes = p.cbytes
			refs   = map[int64]int{}
			kept   bool
		)
		for rows.Next() {
			var (
				lastOff, maxTS, seg int64
				length              int64
			)
			if err := rows.Scan(&lastOff, &maxTS, &seg, &length); err != nil {
				rows.Close()
				return err
			}
			n++
			reason := metastore.RetainReason(req, lastOff, maxTS, length, p.lso, bytes)
			if reason < 0 {
				kept = true
				break
			}
			res.Removed[reason].Rows++
			res.Removed[reason].Bytes += length
			bytes -= length
			if lastOff < p.co {
				cbytes -= length
			}
			refs[seg]++
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
		removed := 0
		for _, r := range res.Removed {
			removed += r.Rows
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM batches WHERE partition_id = ? AND last_offset <= ?`, req.PartitionID, last); err != nil {
			return err
		}
		// The aborted transactions whose markers were in the removed rows:
		// at most one per removed row.
		if _, err := tx.ExecContext(ctx, `DELETE FROM aborted_txns WHERE partition_id = ? AND last_offset <= ?`, req.PartitionID, last); err != nil {
			return err
		}
		if err := s.unref(ctx, tx, refs); err != nil {
			return err
		}
		res.LogStartOffset = max(p.lso, last+1)
		res.Moved = res.LogStartOffset - p.lso
		_, err = tx.ExecContext(ctx, `UPDATE partitions SET log_start_offset = ?, bytes = ?, rows = rows - ?,
			compacted_bytes = ?, compacted_offset = max(compacted_offset, ?) WHERE id = ?`,
			res.LogStartOffset, bytes, removed, cbytes, res.LogStartOffset, req.PartitionID)
		return err
	})
	return res, err
}

// indexRowSelect reads index rows with their segments. A marker row has
// no segment (segment id 0): no key, size 0, and its age is its
// timestamp's (ms, made microseconds).
const indexRowSelect = `SELECT b.base_offset, b.last_offset, b.max_timestamp, coalesce(s.key, ''), b.chunk_offset, b.chunk_length,
		b.pos, b.len, b.segment_id, coalesce(s.size, 0), coalesce(s.compacted, 0), coalesce(s.created_at, b.max_timestamp * 1000)
	FROM batches b LEFT JOIN segments s ON s.id = b.segment_id `

func (s *Store) scanIndexRows(rows *sql.Rows) ([]metastore.IndexRow, error) {
	defer rows.Close()
	now := s.now()
	var out []metastore.IndexRow
	for rows.Next() {
		var (
			r       metastore.IndexRow
			created int64
		)
		if err := rows.Scan(&r.BaseOffset, &r.LastOffset, &r.MaxTimestamp, &r.SegmentKey, &r.ChunkOffset, &r.ChunkLength,
			&r.Pos, &r.Len, &r.SegmentID, &r.SegmentSize, &r.Compacted, &created); err != nil {
			return nil, err
		}
		r.SegmentAge = now.Sub(time.UnixMicro(created))
		out = append(out, r)
	}
	return out, rows.Err()
}

// IndexRows implements metastore.Lifecycle.
func (s *Store) IndexRows(ctx context.Context, partitionID, offset int64, limit int) ([]metastore.IndexRow, error) {
	rows, err := s.r.QueryContext(ctx, indexRowSelect+`WHERE b.partition_id = ? AND b.last_offset >= ?
		ORDER BY b.last_offset LIMIT ?`, partitionID, offset, limit)
	if err != nil {
		return nil, err
	}
	return s.scanIndexRows(rows)
}

// IndexRowsBefore implements metastore.Lifecycle.
func (s *Store) IndexRowsBefore(ctx context.Context, partitionID, offset int64, limit int) ([]metastore.IndexRow, error) {
	rows, err := s.r.QueryContext(ctx, indexRowSelect+`WHERE b.partition_id = ? AND b.last_offset < ?
		ORDER BY b.last_offset DESC LIMIT ?`, partitionID, offset, limit)
	if err != nil {
		return nil, err
	}
	return s.scanIndexRows(rows)
}

// SwapRows implements metastore.Lifecycle.
func (s *Store) SwapRows(ctx context.Context, fence metastore.Lease, swap metastore.Swap) error {
	if err := metastore.CheckSwap(swap); err != nil {
		return err
	}
	first, last := swap.Old[0], swap.Old[len(swap.Old)-1]
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := s.checkFence(ctx, tx, fence); err != nil {
			return err
		}
		p, err := readPart(ctx, tx, swap.PartitionID)
		if err != nil {
			return err
		}
		var segID int64
		if swap.Key != "" {
			if segID, err = s.pendingSegment(ctx, tx, swap.Key); err != nil {
				return fmt.Errorf("swap to %s: %w", swap.Key, err)
			}
		}
		// Exactly the old rows must be there, in the same segments.
		rows, err := tx.QueryContext(ctx, `SELECT last_offset, segment_id FROM batches
			WHERE partition_id = ? AND last_offset BETWEEN ? AND ? ORDER BY last_offset`, swap.PartitionID, first.LastOffset, last.LastOffset)
		if err != nil {
			return err
		}
		i, same := 0, true
		for rows.Next() {
			var lastOff, seg int64
			if err := rows.Scan(&lastOff, &seg); err != nil {
				rows.Close()
				return err
			}
			if i >= len(swap.Old) || swap.Old[i].LastOffset != lastOff || swap.Old[i].SegmentID != seg {
				same = false
			}
			i++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if !same || i != len(swap.Old) {
			return fmt.Errorf("swap offsets [%d, %d] to %s: %w", first.BaseOffset, last.LastOffset, swap.Key, metastore.ErrSwapConflict)
		}
		prevMax := int64(-1)
		err = tx.QueryRowContext(ctx, `SELECT running_max_timestamp FROM batches WHERE partition_id = ? AND last_offset < ?
			ORDER BY last_offset DESC LIMIT 1`, swap.PartitionID, first.LastOffset).Scan(&prevMax)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM batches WHERE partition_id = ? AND last_offset BETWEEN ? AND ?`,
			swap.PartitionID, first.LastOffset, last.LastOffset); err != nil {
			return err
		}
		ins := tx.StmtContext(ctx, s.stmts.insertBatch)
		var newBytes int64
		running := prevMax
		for _, b := range swap.New {
			running = max(running, b.MaxTimestamp)
			if _, err := ins.ExecContext(ctx, swap.PartitionID, b.BaseOffset, b.LastOffset, b.MaxTimestamp, running, segID,
				b.ChunkOffset, b.ChunkLength, b.Pos, b.Len); err != nil {
				return fmt.Errorf("insert swapped row: %w", err)
			}
			newBytes += int64(b.Len)
		}
		refs := map[int64]int{}
		var oldBytes, oldCompacted int64
		for _, r := range swap.Old {
			refs[r.SegmentID]++
			oldBytes += int64(r.Len)
			if r.LastOffset < p.co {
				oldCompacted += int64(r.Len)
			}
		}
		if err := s.unref(ctx, tx, refs); err != nil {
			return err
		}
		if swap.Key != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE segments SET state = 'committed', size = ?, refs = ?, compacted = 1 WHERE id = ?`,
				swap.Size, len(swap.New), segID); err != nil {
				return err
			}
		}
		co, cdelta := metastore.SwapCompacted(p.co, first.BaseOffset, last.LastOffset, newBytes, oldCompacted)
		_, err = tx.ExecContext(ctx, `UPDATE partitions SET bytes = bytes + ?, rows = rows + ?,
			compacted_offset = ?, compacted_bytes = compacted_bytes + ? WHERE id = ?`,
			newBytes-oldBytes, len(swap.New)-len(swap.Old), co, cdelta, swap.PartitionID)
		return err
	})
}

// MarkCleaned implements metastore.Lifecycle.
func (s *Store) MarkCleaned(ctx context.Context, fence metastore.Lease, partitionID, offset int64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := s.checkFence(ctx, tx, fence); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE partitions SET cleaned_offset = max(cleaned_offset, ?) WHERE id = ?`, offset, partitionID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("partition id %d: %w", partitionID, metastore.ErrUnknownTopicOrPartition)
		}
		return nil
	})
}

// ProducerTails implements metastore.Lifecycle.
func (s *Store) ProducerTails(ctx context.Context, partitionID int64) (map[int64]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT producer_id, batches FROM producer_state WHERE partition_id = ?`, partitionID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	tails := map[int64]int64{}
	for rows.Next() {
		var (
			pid int64
			js  string
			st  producerState
		)
		if err := rows.Scan(&pid, &js); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(js), &st.Batches); err != nil {
			return nil, fmt.Errorf("producer state %d: %w", pid, err)
		}
		if n := len(st.Batches); n > 0 {
			b := st.Batches[n-1]
			tails[pid] = b.BaseOffset + int64(seqCount(b.FirstSeq, b.LastSeq)) - 1
		}
	}
	return tails, rows.Err()
}

// ClaimOrphans implements metastore.Lifecycle.
func (s *Store) ClaimOrphans(ctx context.Context, fence metastore.Lease, olderThan time.Duration, limit int) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := s.checkFence(ctx, tx, fence); err != nil {
			return err
		}
		now := s.now()
		res, err := tx.ExecContext(ctx, `UPDATE segments SET state = 'dead', dead_at = ?
			WHERE id IN (SELECT id FROM segments WHERE state = 'pending' AND created_at <= ? ORDER BY created_at LIMIT ?)`,
			now.UnixMicro(), now.Add(-olderThan).UnixMicro(), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// DeadSegments implements metastore.Lifecycle.
func (s *Store) DeadSegments(ctx context.Context, olderThan time.Duration, limit int) ([]metastore.SegmentInfo, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT key, size FROM segments WHERE state = 'dead' AND dead_at <= ? ORDER BY dead_at LIMIT ?`,
		s.now().Add(-olderThan).UnixMicro(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []metastore.SegmentInfo
	for rows.Next() {
		var si metastore.SegmentInfo
		if err := rows.Scan(&si.Key, &si.Size); err != nil {
			return nil, err
		}
		out = append(out, si)
	}
	return out, rows.Err()
}

// keyArgs returns "?, ?, ..." for n keys and the keys as arguments.
func keyArgs(keys []string) (string, []any) {
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	return strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", "), args
}

// ForgetSegments implements metastore.Lifecycle.
func (s *Store) ForgetSegments(ctx context.Context, fence metastore.Lease, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := s.checkFence(ctx, tx, fence); err != nil {
			return err
		}
		in, args := keyArgs(keys)
		_, err := tx.ExecContext(ctx, `DELETE FROM segments WHERE state = 'dead' AND key IN (`+in+`)`, args...)
		return err
	})
}

// KnownSegments implements metastore.Lifecycle.
func (s *Store) KnownSegments(ctx context.Context, keys []string) (map[string]bool, error) {
	known := make(map[string]bool, len(keys))
	if len(keys) == 0 {
		return known, nil
	}
	in, args := keyArgs(keys)
	rows, err := s.r.QueryContext(ctx, `SELECT key FROM segments WHERE key IN (`+in+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		known[k] = true
	}
	return known, rows.Err()
}

// DropPartition implements metastore.Lifecycle.
func (s *Store) DropPartition(ctx context.Context, fence metastore.Lease, partitionID int64) (bool, error) {
	dropped := false
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := s.checkFence(ctx, tx, fence); err != nil {
			return err
		}
		var (
			topic   []byte
			deleted bool
		)
		err := tx.QueryRowContext(ctx, `SELECT topic_id, deleted FROM partitions WHERE id = ?`, partitionID).Scan(&topic, &deleted)
		if errors.Is(err, sql.ErrNoRows) {
			dropped = true // gone already
			return nil
		}
		if err != nil {
			return err
		}
		if !deleted {
			return fmt.Errorf("drop partition id %d: %w: its topic is not deleted", partitionID, metastore.ErrUnknownTopicOrPartition)
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM batches WHERE partition_id = ? LIMIT 1`, partitionID).Scan(&one)
		if err == nil {
			return nil // rows remain
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// Cascades to producer state; the transactions' tables have no
		// foreign keys to partitions (see migration 0005).
		if _, err := tx.ExecContext(ctx, `DELETE FROM partitions WHERE id = ?`, partitionID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM aborted_txns WHERE partition_id = ?`, partitionID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM txn_partitions WHERE partition_id = ?`, partitionID); err != nil {
			return err
		}
		dropped = true
		_, err = tx.ExecContext(ctx, `DELETE FROM topics WHERE id = ? AND NOT EXISTS (SELECT 1 FROM partitions WHERE topic_id = ?)`, topic, topic)
		return err
	})
	return dropped, err
}

// ExpireProducers implements metastore.Lifecycle.
func (s *Store) ExpireProducers(ctx context.Context, fence metastore.Lease, olderThan time.Duration, cursor metastore.ProducerCursor, limit int) (metastore.ProducerCursor, int, bool, error) {
	var (
		next    = cursor
		removed int
		done    bool
	)
	err := s.write(ctx, func(tx *sql.Tx) error {
		next, removed, done = cursor, 0, false
		if err := s.checkFence(ctx, tx, fence); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT partition_id, producer_id, last_write, txn_first_offset FROM producer_state
			WHERE (partition_id, producer_id) > (?, ?) ORDER BY partition_id, producer_id LIMIT ?`,
			cursor.PartitionID, cursor.ProducerID, limit)
		if err != nil {
			return err
		}
		cutoff := s.now().Add(-olderThan).UnixMicro()
		var expired []metastore.ProducerCursor
		n := 0
		for rows.Next() {
			var (
				c          metastore.ProducerCursor
				last, open int64
			)
			if err := rows.Scan(&c.PartitionID, &c.ProducerID, &last, &open); err != nil {
				rows.Close()
				return err
			}
			n++
			next = c
			// A producer with a transaction open here keeps its state.
			if last <= cutoff && open < 0 {
				expired = append(expired, c)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		done = n < limit
		if done {
			next = metastore.ProducerCursor{}
		}
		for _, c := range expired {
			if _, err := tx.ExecContext(ctx, `DELETE FROM producer_state WHERE partition_id = ? AND producer_id = ? AND last_write <= ?`,
				c.PartitionID, c.ProducerID, cutoff); err != nil {
				return err
			}
		}
		removed = len(expired)
		return nil
	})
	return next, removed, done, err
}

// StorageStats implements metastore.Lifecycle.
func (s *Store) StorageStats(ctx context.Context) (metastore.StorageStats, error) {
	st := metastore.StorageStats{Topics: map[string]metastore.TopicStorage{}, Segments: map[string]metastore.SegmentCount{}}
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT t.name, coalesce(sum(p.bytes), 0), coalesce(sum(p.rows), 0),
				coalesce(sum(p.bytes - p.compacted_bytes), 0)
			FROM topics t LEFT JOIN partitions p ON p.topic_id = t.id WHERE t.deleted_at IS NULL GROUP BY t.name`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				name string
				ts   metastore.TopicStorage
			)
			if err := rows.Scan(&name, &ts.Bytes, &ts.Rows, &ts.Uncompacted); err != nil {
				rows.Close()
				return err
			}
			st.Topics[name] = ts
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, `SELECT state, compacted, count(*), coalesce(sum(size), 0) FROM segments GROUP BY state, compacted`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				state     string
				compacted bool
				c         metastore.SegmentCount
			)
			if err := rows.Scan(&state, &compacted, &c.Objects, &c.Bytes); err != nil {
				return err
			}
			sum := st.Segments[state]
			sum.Objects += c.Objects
			sum.Bytes += c.Bytes
			st.Segments[state] = sum
			if compacted && state == "committed" {
				st.CompactedSegments = c
			}
		}
		return rows.Err()
	})
	return st, err
}
