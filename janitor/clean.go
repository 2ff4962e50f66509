package janitor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/topicconfig"
)

// Log compaction by key (cleanup.policy with compact), Kafka's log cleaner
// in silt's terms:
//
//   - The cleanable part of a partition is its compacted rows (below the
//     compacted offset: data older than CompactAge, as Kafka's cleaner never
//     touches the active segment) from the log start offset, up to the first
//     row newer than min.compaction.lag.ms. Its dirty part begins at the
//     cleaned offset, the checkpoint of the last cleaning.
//   - A partition is cleaned when the dirty part is at least
//     min.cleanable.dirty.ratio of the cleanable bytes, or its oldest dirty
//     row is older than max.compaction.lag.ms.
//   - Cleaning maps each key of the dirty part to its latest offset, in an
//     offset map of at most CleanerKeys keys (16-byte hashes, as Kafka's).
//     When the map fills, only the dirty part up to there is mapped: the
//     rest is left for the next cleaning, so a partition with more keys
//     than fit is cleaned in several passes, never by loading it all.
//   - Then every row of the cleanable part up to the last mapped offset is
//     rewritten (in groups of at most ObjectBytes), keeping a record unless
//     a later offset of its key is mapped, or it is a tombstone (a null
//     value) older than delete.retention.ms. A batch that loses records is
//     re-encoded with the survivors' bytes, its base and last offsets,
//     producer id, epoch, base sequence, attributes and codec unchanged;
//     one that loses all of them goes, unless it is the last batch of a
//     producer with idempotence state, which stays as an empty batch (the
//     producer's sequence stays in the log, as Kafka's cleaner keeps it).
//     Offsets never change: gaps appear. Rows whose batches all stay are
//     not rewritten.
//   - Each group swaps in one metastore transaction (readers see the old
//     rows or the new ones, never a mix), then the cleaned offset moves to
//     the end of what was mapped.
//
//   - Transactions, as Kafka's cleaner treats them: nothing at or after the
//     last stable offset is cleaned (an open transaction may still abort);
//     the batches of aborted transactions put no key in the offset map and
//     are removed (but for a producer's last batch, emptied); transaction
//     markers stay.
//
// Deliberate differences from Kafka: a tombstone's delete.retention.ms
// runs from its own timestamp, where Kafka (KIP-534) starts it when the
// cleaner first sees the tombstone and records that time in the batch;
// transaction markers are never removed (Kafka removes a marker once the
// transaction's data is gone and delete.retention.ms has passed).

// offsetMap maps key hashes to their latest offset, up to a capacity.
type offsetMap struct {
	m   map[[16]byte]int64
	cap int
}

func newOffsetMap(capacity int) *offsetMap {
	return &offsetMap{m: make(map[[16]byte]int64, min(capacity, 1<<16)), cap: capacity}
}

func keyHash(key []byte) [16]byte {
	sum := sha256.Sum256(key)
	return [16]byte(sum[:16])
}

// put records key at offset; false when the map is full and the key is
// new.
func (m *offsetMap) put(key []byte, offset int64) bool {
	h := keyHash(key)
	if _, ok := m.m[h]; !ok && len(m.m) >= m.cap {
		return false
	}
	m.m[h] = offset
	return true
}

func (m *offsetMap) get(key []byte) (int64, bool) {
	o, ok := m.m[keyHash(key)]
	return o, ok
}

// clean compacts one partition of a compacted topic by key when it is due
// (see above).
func (j *Janitor) clean(ctx context.Context, l metastore.Lease, p *metastore.StoredPartition, cfg topicconfig.Config, topic string) error {
	// Nothing at or after the last stable offset: an open transaction's
	// records may still be aborted.
	start, end := p.LogStartOffset, min(p.CompactedOffset, p.LastStableOffset)
	if end <= start {
		return nil
	}
	now := time.Now().UnixMilli()
	var rows []metastore.IndexRow
	for from := start; from < end; {
		page, err := j.store.IndexRows(ctx, p.ID, from, j.cfg.BatchRows)
		if err != nil {
			return fmt.Errorf("log compaction of %s/%d: index rows: %w", topic, p.Partition, err)
		}
		for _, r := range page {
			if r.BaseOffset >= end || !r.Compacted {
				from = end
				break
			}
			rows = append(rows, r)
			from = r.LastOffset + 1
		}
		if len(page) < j.cfg.BatchRows {
			break
		}
	}
	firstDirty := max(p.CleanedOffset, start)
	var (
		total, dirty int64
		dirtyRows    []metastore.IndexRow
		oldestDirty  = int64(-1)
	)
	for i, r := range rows {
		if r.LastOffset >= firstDirty && now-r.MaxTimestamp < cfg.MinCompactionLagMs {
			rows = rows[:i] // younger than min.compaction.lag.ms: not cleanable yet
			break
		}
		total += int64(r.Len)
		if r.LastOffset >= firstDirty {
			dirty += int64(r.Len)
			dirtyRows = append(dirtyRows, r)
			if oldestDirty < 0 {
				oldestDirty = r.MaxTimestamp
			}
		}
	}
	if dirty == 0 {
		j.m.dirtyRatio.DeleteLabelValues(topic, strconv.Itoa(int(p.Partition)))
		return nil
	}
	ratio := float64(dirty) / float64(total)
	j.m.dirtyRatio.WithLabelValues(topic, strconv.Itoa(int(p.Partition))).Set(ratio)
	j.cleanable += dirty
	overdue := cfg.MaxCompactionLagMs > 0 && now-oldestDirty > cfg.MaxCompactionLagMs
	if ratio < cfg.MinCleanableDirtyRatio && !overdue {
		return nil
	}

	began := time.Now()
	var aborted abortedSet
	if p.AbortedEnd > start {
		list, err := j.store.AbortedTransactions(ctx, p.TopicPartition, start, end)
		if err != nil {
			return fmt.Errorf("log compaction of %s/%d: aborted transactions: %w", topic, p.Partition, err)
		}
		aborted = newAbortedSet(list)
	}
	m, latest, err := j.mapKeys(ctx, dirtyRows, firstDirty, end, aborted)
	if err != nil {
		return fmt.Errorf("log compaction of %s/%d: offset map: %w", topic, p.Partition, err)
	}
	if latest < firstDirty {
		return nil // the first record's key did not fit: CleanerKeys is 0
	}
	tails, err := j.store.ProducerTails(ctx, p.ID)
	if err != nil {
		return fmt.Errorf("log compaction of %s/%d: producer state: %w", topic, p.Partition, err)
	}
	f := filter{offsets: m, latest: latest, tombstonesBefore: now - cfg.DeleteRetentionMs, tails: tails, aborted: aborted}
	var group []metastore.IndexRow
	size := 0
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		err := j.cleanRows(ctx, l, p, group, &f)
		group, size = group[:0], 0
		return err
	}
	for _, r := range rows {
		if r.BaseOffset > latest {
			break
		}
		if len(group) > 0 && size+int(r.Len) > j.cfg.ObjectBytes {
			if err := flush(); err != nil {
				return fmt.Errorf("log compaction of %s/%d: %w", topic, p.Partition, err)
			}
		}
		group = append(group, r)
		size += int(r.Len)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("log compaction of %s/%d: %w", topic, p.Partition, err)
	}
	if err := j.store.MarkCleaned(ctx, l, p.ID, latest+1); err != nil {
		return fmt.Errorf("log compaction of %s/%d: %w", topic, p.Partition, err)
	}
	p.CleanedOffset = latest + 1
	j.m.cleanerRuns.Inc()
	j.m.cleanerDuration.Observe(time.Since(began).Seconds())
	j.logger.Debug("partition cleaned", "topic", topic, "partition", p.Partition, "dirty_ratio", ratio,
		"mapped_to", latest, "keys", len(m.m), "removed_records", f.removedRecords)
	return nil
}

// mapKeys reads the dirty rows' records from firstDirty on into an offset
// map, until it is full or the batches reach stable (the last stable
// offset), and returns it with the last offset mapped (every record up to
// it, keyed or not, is accounted for). Aborted batches map no key.
func (j *Janitor) mapKeys(ctx context.Context, rows []metastore.IndexRow, firstDirty, stable int64, aborted abortedSet) (*offsetMap, int64, error) {
	m := newOffsetMap(j.cfg.CleanerKeys)
	latest := firstDirty - 1
	for _, r := range rows {
		batches, err := j.readRows(ctx, []metastore.IndexRow{r})
		if err != nil {
			return nil, 0, err
		}
		for _, b := range batches {
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(b); err != nil {
				return nil, 0, fmt.Errorf("batch at %d: %w", rb.FirstOffset, err)
			}
			last := rb.FirstOffset + int64(rb.LastOffsetDelta)
			if last < firstDirty {
				continue
			}
			if rb.FirstOffset >= stable {
				return m, latest, nil
			}
			if rb.Attributes&attrControl == 0 && !aborted.has(&rb) {
				full := false
				err := eachRecord(&rb, func(off int64, rec *kmsg.Record, _ []byte) bool {
					if off >= firstDirty && rec.Key != nil && !m.put(rec.Key, off) {
						full = true
						return false
					}
					return true
				})
				if err != nil {
					return nil, 0, err
				}
				if full {
					return m, latest, nil
				}
			}
			latest = last
		}
	}
	return m, latest, nil
}

// cleanRows rewrites a group of rows through the filter; a group whose
// batches all stay as they are is left alone.
func (j *Janitor) cleanRows(ctx context.Context, l metastore.Lease, p *metastore.StoredPartition, rows []metastore.IndexRow, f *filter) error {
	batches, err := j.readRows(ctx, rows)
	if err != nil {
		return err
	}
	out := make([]batch, 0, len(batches))
	changed := false
	var read, written int64
	for _, b := range batches {
		read += int64(len(b))
		nb, err := f.apply(b)
		if err != nil {
			return err
		}
		changed = changed || len(nb) != len(b) || nb == nil
		if nb != nil {
			out = append(out, nb)
			written += int64(len(nb))
		}
	}
	j.m.cleanedBytes.Add(float64(read))
	if !changed {
		return nil
	}
	if err := j.replace(ctx, l, p, rows, out); err != nil {
		return err
	}
	j.m.cleanerRemovedBytes.Add(float64(read - written))
	return nil
}

// filter decides which records of a cleaned batch stay.
type filter struct {
	offsets *offsetMap
	// latest is the last offset mapped: records after it stay.
	latest int64
	// tombstonesBefore: a tombstone older than this (ms) goes.
	tombstonesBefore int64
	// tails is each producer's last batch's last offset: such a batch
	// stays, emptied if need be.
	tails map[int64]int64
	// aborted are the aborted transactions: their batches go.
	aborted abortedSet

	removedRecords int
}

// Record batch attribute bits.
const (
	attrCodec         = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// abortedSet holds a partition's aborted transactions by producer.
type abortedSet map[int64][]metastore.AbortedTxn

func newAbortedSet(list []metastore.AbortedTxn) abortedSet {
	s := abortedSet{}
	for _, a := range list {
		s[a.ProducerID] = append(s[a.ProducerID], a)
	}
	return s
}

// has reports whether rb is a batch of an aborted transaction: a
// transactional batch of the producer between one of its aborted
// transactions' first offset and marker.
func (s abortedSet) has(rb *kmsg.RecordBatch) bool {
	if rb.Attributes&attrTransactional == 0 || rb.Attributes&attrControl != 0 {
		return false
	}
	list := s[rb.ProducerID]
	// In marker order: the first marker after the batch ends its
	// transaction.
	i := sort.Search(len(list), func(i int) bool { return list[i].LastOffset > rb.FirstOffset })
	return i < len(list) && list[i].FirstOffset <= rb.FirstOffset
}

// keep reports whether the record at offset stays.
func (f *filter) keep(offset int64, rec *kmsg.Record, ts int64) bool {
	if offset > f.latest {
		return true
	}
	if rec.Key == nil {
		return false // Kafka's cleaner drops keyless records of a compacted log
	}
	if o, ok := f.offsets.get(rec.Key); ok && offset < o {
		return false
	}
	return rec.Value != nil || ts >= f.tombstonesBefore
}

// apply returns the batch with the records that stay: b itself when all
// stay, a re-encoded batch when some do (or an empty one for a producer's
// last batch), nil when the batch goes.
func (f *filter) apply(b batch) (batch, error) {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	if rb.Attributes&attrControl != 0 || rb.FirstOffset > f.latest {
		return b, nil
	}
	var (
		kept    [][]byte
		maxTS   = int64(-1)
		dropped int
	)
	abortedBatch := f.aborted.has(&rb)
	err := eachRecord(&rb, func(off int64, rec *kmsg.Record, raw []byte) bool {
		if abortedBatch {
			dropped++
			return true
		}
		ts := rb.FirstTimestamp + rec.TimestampDelta64
		if rb.Attributes&attrLogAppendTime != 0 {
			ts = rb.MaxTimestamp
		}
		if f.keep(off, rec, ts) {
			kept = append(kept, raw)
			maxTS = max(maxTS, ts)
		} else {
			dropped++
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if dropped == 0 {
		return b, nil
	}
	f.removedRecords += dropped
	last := rb.FirstOffset + int64(rb.LastOffsetDelta)
	if len(kept) == 0 {
		if tail, ok := f.tails[rb.ProducerID]; !(ok && rb.ProducerID >= 0 && tail == last) {
			return nil, nil
		}
		// The producer's last batch: kept empty, uncompressed.
		rb.Attributes &^= attrCodec
		rb.NumRecords, rb.Records = 0, nil
		return encodeBatch(&rb), nil
	}
	var records []byte
	for _, r := range kept {
		records = append(records, r...)
	}
	if codec := rb.Attributes & attrCodec; codec != 0 {
		if records, err = compress(records, codec); err != nil {
			return nil, err
		}
	}
	if rb.Attributes&attrLogAppendTime == 0 {
		rb.MaxTimestamp = maxTS
	}
	rb.NumRecords, rb.Records = int32(len(kept)), records
	return encodeBatch(&rb), nil
}

// eachRecord decodes rb's records (decompressed) and calls fn with each
// record's offset, the record and its encoding (length prefix included),
// until fn returns false.
func eachRecord(rb *kmsg.RecordBatch, fn func(offset int64, rec *kmsg.Record, raw []byte) bool) error {
	records := rb.Records
	if codec := rb.Attributes & attrCodec; codec != 0 {
		var err error
		if records, err = kgo.DefaultDecompressor().Decompress(records, kgo.CompressionCodecType(codec)); err != nil {
			return fmt.Errorf("batch at %d: decompress: %w", rb.FirstOffset, err)
		}
	}
	for i := int32(0); i < rb.NumRecords; i++ {
		length, n := binary.Varint(records)
		if n <= 0 || length < 0 || int64(len(records)-n) < length {
			return fmt.Errorf("batch at %d: record %d: %w", rb.FirstOffset, i, errCorruptRecord)
		}
		raw := records[:n+int(length)]
		var rec kmsg.Record
		if err := rec.ReadFrom(raw); err != nil {
			return fmt.Errorf("batch at %d: record %d: %w", rb.FirstOffset, i, err)
		}
		records = records[len(raw):]
		if !fn(rb.FirstOffset+int64(rec.OffsetDelta), &rec, raw) {
			return nil
		}
	}
	return nil
}

// errCorruptRecord means a stored batch's records do not parse.
var errCorruptRecord = errors.New("stored record does not parse")

// compress compresses records with a batch's codec, as a producer would.
func compress(records []byte, codec int16) ([]byte, error) {
	var c kgo.CompressionCodec
	switch codec {
	case 1:
		c = kgo.GzipCompression()
	case 2:
		c = kgo.SnappyCompression()
	case 3:
		c = kgo.Lz4Compression()
	case 4:
		c = kgo.ZstdCompression()
	default:
		return nil, fmt.Errorf("unknown compression codec %d", codec)
	}
	comp, err := kgo.DefaultCompressor(c)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	out, got := comp.Compress(&buf, records)
	if int16(got) != codec {
		return nil, fmt.Errorf("compressor used codec %d, want %d", got, codec)
	}
	return append([]byte(nil), out...), nil
}

// encodeBatch encodes rb with its length and CRC-32C computed.
func encodeBatch(rb *kmsg.RecordBatch) batch {
	rb.Length = int32(batchHeaderLen - 12 + len(rb.Records))
	rb.Magic = 2
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], castagnoli))
	return out
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)
