package janitor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/segment"
)

// CompactedPrefix starts the key of every compacted object.
const CompactedPrefix = "compacted/"

// maxRewritesPerPass bounds the rewrites of one partition in one pass, so
// a partition with a large backlog does not starve the others (and the
// other steps) of a pass.
const maxRewritesPerPass = 16

// mergeCandidates is how many rows before a rewrite's first one are
// looked at for merging small compacted objects into it.
const mergeCandidates = 16

// compact rewrites the partition's data older than CompactAge into
// compacted objects, one rewrite of at most ObjectBytes at a time.
func (j *Janitor) compact(ctx context.Context, l metastore.Lease, p *metastore.StoredPartition, topic string) error {
	for range maxRewritesPerPass {
		more, err := j.rewrite(ctx, l, p, topic)
		if errors.Is(err, metastore.ErrSwapConflict) {
			// Retention or DeleteRecords changed the rows meanwhile:
			// they win; the next pass starts from what they left.
			j.m.compactConflicts.Inc()
			j.logger.Debug("compaction of a partition lost to a concurrent change", "topic", topic, "partition", p.Partition, "err", err)
			return nil
		}
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// rewrite makes one rewrite of partition p: the rows from where its
// produce-segment data begins, older than CompactAge, up to ObjectBytes,
// and the small compacted rows right before them. It reports whether more
// rows are ready for another rewrite, and advances p.CompactedOffset.
func (j *Janitor) rewrite(ctx context.Context, l metastore.Lease, p *metastore.StoredPartition, topic string) (more bool, err error) {
	start := max(p.CompactedOffset, p.LogStartOffset)
	rows, err := j.store.IndexRows(ctx, p.ID, start, j.cfg.BatchRows)
	if err != nil {
		return false, fmt.Errorf("compaction of partition %d of %s: index rows: %w", p.Partition, topic, err)
	}
	// The row holding start may be a compacted one (start moved into it):
	// begin after it.
	for len(rows) > 0 && rows[0].Compacted {
		rows = rows[1:]
	}
	var take []metastore.IndexRow
	sum := 0
	for _, r := range rows {
		if r.Compacted || r.SegmentAge < j.cfg.CompactAge || len(take) > 0 && sum+int(r.Len) > j.cfg.ObjectBytes {
			break
		}
		take = append(take, r)
		sum += int(r.Len)
	}
	if len(take) == 0 {
		return false, nil
	}
	if n := len(take); n < len(rows) {
		more = !rows[n].Compacted && rows[n].SegmentAge >= j.cfg.CompactAge
	} else {
		more = n == j.cfg.BatchRows // the page ended: there may be more
	}
	// Small compacted objects right before: merged into this rewrite
	// while they are no larger than what it already holds, so objects
	// grow by doubling and a byte is rewritten O(log n) times.
	before, err := j.store.IndexRowsBefore(ctx, p.ID, take[0].BaseOffset, mergeCandidates)
	if err != nil {
		return false, fmt.Errorf("compaction of partition %d of %s: rows before: %w", p.Partition, topic, err)
	}
	for _, b := range before {
		if !b.Compacted || int(b.Len) >= j.cfg.ChunkBytes/2 || int(b.Len) > sum || sum+int(b.Len) > j.cfg.ObjectBytes || b.LastOffset < p.LogStartOffset {
			break
		}
		take = append([]metastore.IndexRow{b}, take...)
		sum += int(b.Len)
	}

	batches, err := j.readRows(ctx, take)
	if err != nil {
		return false, fmt.Errorf("compaction of partition %d of %s: %w", p.Partition, topic, err)
	}
	if err := j.replace(ctx, l, p, take, batches); err != nil {
		return false, fmt.Errorf("compaction of partition %d of %s: %w", p.Partition, topic, err)
	}
	p.CompactedOffset = max(p.CompactedOffset, take[len(take)-1].LastOffset+1)
	j.m.compactedBytes.Add(float64(sum))
	j.m.compactedRows.Add(float64(len(take)))
	j.logger.Debug("compacted", "topic", topic, "partition", p.Partition,
		"from", take[0].BaseOffset, "to", take[len(take)-1].LastOffset, "rows", len(take), "bytes", sum)
	return more, nil
}

// replace writes batches (in offset order, within the old rows' offsets)
// into a compacted object and swaps the index from the old rows to it.
// With no batches it only removes the old rows. A swap that loses to a
// concurrent change (metastore.ErrSwapConflict) deletes the object it
// wrote.
func (j *Janitor) replace(ctx context.Context, l metastore.Lease, p *metastore.StoredPartition, old []metastore.IndexRow, batches []batch) error {
	if len(batches) == 0 {
		return j.store.SwapRows(ctx, l, metastore.Swap{PartitionID: p.ID, Old: old})
	}
	in, maxTS := j.chunk(p, batches)
	obj, chunks, err := segment.WriteCompacted(in)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	key := CompactedPrefix + id.String()
	// Pending before the upload, as produce segments are: if this agent
	// dies between the upload and the swap, the object is an orphan that
	// a later pass finds.
	if err := j.store.AddPendingSegment(ctx, key); err != nil {
		return fmt.Errorf("record pending %s: %w", key, err)
	}
	if err := j.bucket.Put(ctx, key, obj); err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	newRows := make([]metastore.Batch, len(chunks))
	for i, c := range chunks {
		newRows[i] = metastore.Batch{BaseOffset: c.BaseOffset, LastOffset: c.LastOffset, MaxTimestamp: maxTS[i],
			ChunkOffset: c.Offset, ChunkLength: c.Length, Pos: 0, Len: int32(c.RawLength)}
	}
	err = j.store.SwapRows(ctx, l, metastore.Swap{PartitionID: p.ID, Old: old, Key: key, Size: int64(len(obj)), New: newRows})
	if err != nil {
		if errors.Is(err, metastore.ErrSwapConflict) {
			// Nothing points into it: delete it now rather than after
			// the orphan age (its pending row is claimed then).
			if derr := j.bucket.Delete(ctx, key); derr != nil {
				j.logger.Warn("delete unused compacted object", "key", key, "err", derr)
			}
		}
		return fmt.Errorf("swap to %s: %w", key, err)
	}
	j.m.compactedObjects.Inc()
	return nil
}

// batch is one record batch read for a rewrite: its bytes, with the real
// base offset set.
type batch []byte

// readRows reads the batches of rows (consecutive index rows of one
// partition), each with its real base offset. Rows in the same chunk
// share one range GET; GETs run ReadConcurrency at a time.
func (j *Janitor) readRows(ctx context.Context, rows []metastore.IndexRow) ([]batch, error) {
	type chunkKey struct {
		key         string
		off, length int64
	}
	data := map[chunkKey][]byte{}
	var keys []chunkKey
	for _, r := range rows {
		if r.IsMarker() {
			continue // made from its row
		}
		k := chunkKey{r.SegmentKey, r.ChunkOffset, r.ChunkLength}
		if _, ok := data[k]; !ok {
			data[k] = nil
			keys = append(keys, k)
		}
	}
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, j.cfg.ReadConcurrency)
	)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			payload, err := segment.ReadChunk(rctx, j.bucket, k.key, k.off, k.length)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				cancel()
				return
			}
			data[k] = payload
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	j.m.compactReads.Add(float64(len(keys)))
	var out []batch
	for _, r := range rows {
		if r.IsMarker() {
			// A transaction marker's row names no object: its bytes are
			// made from the row, and from now on the rewrite stores them.
			m := r.Marker()
			mb := segment.MarkerBatch(m.ProducerID, m.ProducerEpoch, m.Commit, m.CoordinatorEpoch, r.MaxTimestamp)
			var err error
			if out, err = appendRowBatches(out, mb, r.Batch); err != nil {
				return nil, err
			}
			continue
		}
		chunk := data[chunkKey{r.SegmentKey, r.ChunkOffset, r.ChunkLength}]
		end := int64(r.Pos) + int64(r.Len)
		if r.Pos < 0 || end > int64(len(chunk)) {
			return nil, fmt.Errorf("row [%d, %d] of %s: %w: range [%d, %d) outside chunk of %d bytes",
				r.BaseOffset, r.LastOffset, r.SegmentKey, segment.ErrCorrupt, r.Pos, end, len(chunk))
		}
		var err error
		if out, err = appendRowBatches(out, chunk[r.Pos:end], r.Batch); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// appendRowBatches appends the batches of one index row (its bytes in the
// decoded chunk), copied, with their real base offsets: the row's first
// batch starts at the row's base offset, the others (a compacted row's)
// carry theirs. The offsets must ascend within the row.
func appendRowBatches(out []batch, entry []byte, r metastore.Batch) ([]batch, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("row [%d, %d] of %s: %w: %s", r.BaseOffset, r.LastOffset, r.SegmentKey, segment.ErrCorrupt, fmt.Sprintf(format, args...))
	}
	prev := r.BaseOffset - 1
	for pos, i := 0, 0; pos < len(entry); i++ {
		rest := entry[pos:]
		if len(rest) < batchHeaderLen {
			return nil, bad("%d bytes left at %d", len(rest), pos)
		}
		n := int(int32(binary.BigEndian.Uint32(rest[8:]))) + 12
		if n < batchHeaderLen || n > len(rest) {
			return nil, bad("batch length %d at %d", n, pos)
		}
		b := batch(append([]byte(nil), rest[:n]...))
		pos += n
		base, last := segment.BatchOffsets(b)
		if i == 0 {
			last += r.BaseOffset - base
			base = r.BaseOffset
			segment.PatchBaseOffset(b, base)
		}
		if base <= prev || last < base || last > r.LastOffset {
			return nil, bad("batch [%d, %d] after offset %d", base, last, prev)
		}
		prev = last
		out = append(out, b)
	}
	return out, nil
}

// batchHeaderLen is a v2 record batch header's length.
const batchHeaderLen = 61

// chunk groups batches into compacted chunks of about ChunkBytes (a batch
// larger than that is a chunk of its own) and returns each chunk's max
// timestamp.
func (j *Janitor) chunk(p *metastore.StoredPartition, batches []batch) ([]segment.CompactedChunk, []int64) {
	var (
		in    []segment.CompactedChunk
		maxTS []int64
		cur   []byte
		ts    int64
	)
	flush := func() {
		if len(cur) > 0 {
			in = append(in, segment.CompactedChunk{TopicID: segment.TopicID(p.Topic), Partition: p.Partition, Payload: cur})
			maxTS = append(maxTS, ts)
			cur = nil
		}
	}
	for _, b := range batches {
		if len(cur) > 0 && len(cur)+len(b) > j.cfg.ChunkBytes {
			flush()
		}
		bts := int64(binary.BigEndian.Uint64(b[35:]))
		if len(cur) == 0 || bts > ts {
			ts = bts
		}
		cur = append(cur, b...)
	}
	flush()
	return in, maxTS
}
