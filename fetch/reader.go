package fetch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/segment"
	"github.com/siltdata/silt/segment/objstore"
)

// Store is what the read path needs of the metastore.
type Store interface {
	Batches(ctx context.Context, tp metastore.TopicPartition, offset int64, maxBytes int64) ([]metastore.Batch, metastore.PartitionOffsets, error)
	Offsets(ctx context.Context, tp metastore.TopicPartition) (metastore.PartitionOffsets, error)
	metastore.BulkReads
	AbortedTransactions(ctx context.Context, tp metastore.TopicPartition, from, upTo int64) ([]metastore.AbortedTxn, error)
}

// Reader serves fetches. It is safe for concurrent use. Its read-ahead
// goroutines, and the reads ReadMany leaves running, run until Close.
type Reader struct {
	cfg       Config
	store     Store
	logger    *slog.Logger
	m         *metrics
	index     *tailIndex
	chunks    *chunks
	pf        *prefetcher // nil: read-ahead off
	closeOnce sync.Once   // stops read-ahead once

	// bgCtx is the context of the reads ReadMany leaves running when its
	// fetch answers; Close cancels it (bgCancel) and waits for them (bg).
	// bgSlots bounds them, with every ReadMany's own reads.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	bgSlots  chan struct{}

	// watchMu guards watchers and closed.
	watchMu  sync.Mutex
	watchers map[metastore.TopicPartition]map[*Watch]struct{}
	closed   bool
}

// New returns a Reader. With a CacheDir, the directory's contents are
// removed.
func New(cfg Config, store Store, bucket objstore.Bucket, logger *slog.Logger, reg prometheus.Registerer) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("fetch config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	c, err := newChunks(cfg, bucket, m)
	if err != nil {
		return nil, err
	}
	index := newTailIndex(cfg)
	bgCtx, bgCancel := context.WithCancel(context.Background())
	return &Reader{
		bgCtx:    bgCtx,
		bgCancel: bgCancel,
		bgSlots:  make(chan struct{}, backgroundReads),
		cfg:      cfg,
		store:    store,
		logger:   logger,
		m:        m,
		index:    index,
		chunks:   c,
		pf:       newPrefetcher(cfg, store, index, c, logger, m),
		watchers: make(map[metastore.TopicPartition]map[*Watch]struct{}),
	}, nil
}

// Read returns the record batches of tp from the batch containing offset
// on, their base offsets patched, whole batches only, up to maxBytes but at
// least one batch when any exists (KIP-74). It also returns the partition's
// offsets. Reading at the high watermark returns no records and no error.
// Errors: ErrOffsetOutOfRange (with the offsets),
// metastore.ErrUnknownTopicOrPartition, or a store/bucket failure.
//
// An index entry of a compacted object holds many batches (see
// metastore.Batch): Read returns those from the one holding offset on.
func (r *Reader) Read(ctx context.Context, tp metastore.TopicPartition, offset, maxBytes int64) ([]byte, metastore.PartitionOffsets, error) {
	out, offs, _, err := r.readRetry(ctx, tp, offset, maxBytes, false)
	return out, offs, err
}

// ReadCommitted is Read for a read_committed consumer: only batches below
// the last stable offset (offs.LastStableOffset), and the aborted
// transactions that overlap what it returns, in marker order, so the
// client can drop their batches (Kafka's collectAbortedTxns).
func (r *Reader) ReadCommitted(ctx context.Context, tp metastore.TopicPartition, offset, maxBytes int64) ([]byte, metastore.PartitionOffsets, []metastore.AbortedTxn, error) {
	out, offs, next, err := r.readRetry(ctx, tp, offset, maxBytes, true)
	if err != nil {
		return nil, offs, nil, err
	}
	aborted, err := r.aborted(ctx, tp, offset, next, offs, len(out))
	if err != nil {
		return nil, offs, nil, err
	}
	return out, offs, aborted, nil
}

// aborted returns the aborted transactions a read_committed read of tp
// that returned [offset, next) (n bytes) answers.
func (r *Reader) aborted(ctx context.Context, tp metastore.TopicPartition, offset, next int64, offs metastore.PartitionOffsets, n int) ([]metastore.AbortedTxn, error) {
	if n == 0 || offset >= offs.AbortedEnd {
		// No abort marker at or after offset: nothing to list (the
		// common case, and every read of a partition without aborts).
		return nil, nil
	}
	return r.store.AbortedTransactions(ctx, tp, offset, next)
}

func (r *Reader) readRetry(ctx context.Context, tp metastore.TopicPartition, offset, maxBytes int64, committed bool) ([]byte, metastore.PartitionOffsets, int64, error) {
	out, offs, next, err := r.read(ctx, tp, offset, maxBytes, committed)
	if err != nil && r.chunks.bucket.IsNotFound(err) {
		// The cached index named an object the storage janitor deleted
		// (its rows were swapped to a compacted object, or reclaimed by
		// retention, longer ago than the grace period): forget the
		// partition's cached index and look it up again, once.
		r.logger.Debug("cached batch index named a deleted object; reading the index again", "partition", tp.Partition, "offset", offset, "err", err)
		r.index.forget(tp)
		out, offs, next, err = r.read(ctx, tp, offset, maxBytes, committed)
	}
	return out, offs, next, err
}

// read returns the batches from offset on (below the last stable offset
// when committed), the partition's offsets, and the offset after the last
// batch returned.
func (r *Reader) read(ctx context.Context, tp metastore.TopicPartition, offset, maxBytes int64, committed bool) ([]byte, metastore.PartitionOffsets, int64, error) {
	batches, offs, gen, ok, behind := r.index.lookup(tp, offset, maxBytes, r.cfg.PrefetchMinLag, committed)
	if ok {
		r.m.lookups.WithLabelValues("cache").Inc()
	} else {
		r.m.lookups.WithLabelValues("store").Inc()
		res, o, err := r.store.Batches(ctx, tp, offset, lookupBytes(maxBytes, behind))
		if err != nil {
			return nil, o, offset, err
		}
		if batches, offs, err = r.looked(tp, gen, offset, maxBytes, res, o); err != nil {
			return nil, offs, offset, err
		}
	}
	out, next, err := r.materialize(ctx, tp, offset, maxBytes, batches, offs, committed)
	return out, offs, next, err
}

// lookupBytes is how many stored bytes of entries a store lookup for a
// read of maxBytes asks for. A reader far behind the tail will want what
// follows: one larger lookup serves its next fetches from the replay run.
func lookupBytes(maxBytes int64, behind bool) int64 {
	want := max(maxBytes, 1)
	if behind {
		want = max(want, replayLookupBytes)
	}
	return want
}

// looked takes a store lookup's answer for a read of tp at offset (read
// at index generation gen) into the index cache and returns the entries
// to read, or ErrOffsetOutOfRange.
func (r *Reader) looked(tp metastore.TopicPartition, gen uint64, offset, maxBytes int64, res []metastore.Batch, offs metastore.PartitionOffsets) ([]metastore.Batch, metastore.PartitionOffsets, error) {
	r.index.update(tp, gen, res, offs)
	if offset < offs.LogStartOffset || offset > offs.HighWatermark {
		return nil, offs, ErrOffsetOutOfRange
	}
	return pick(res, maxBytes), offs, nil
}

// materialize reads the chunks of the index entries to read and returns
// their batches from offset on, up to maxBytes (at least one), below the
// last stable offset when committed (a read_committed reader's), and the
// offset after the last batch returned. A transaction marker's batch is
// made from its entry (segment.MarkerBatch): no object holds it.
func (r *Reader) materialize(ctx context.Context, tp metastore.TopicPartition, offset, maxBytes int64, batches []metastore.Batch, offs metastore.PartitionOffsets, committed bool) ([]byte, int64, error) {
	stop := offs.HighWatermark
	if committed {
		stop = offs.LastStableOffset
	}
	if len(batches) == 0 || offset >= stop {
		return nil, offset, nil
	}
	chunks, err := r.loadChunks(ctx, batches)
	if err != nil {
		return nil, offset, err
	}
	out := make([]byte, 0, min(sumLen(batches), max(maxBytes, int64(batches[0].Len))))
	next := offset // the first offset not yet returned
	for i, b := range batches {
		var entry []byte
		if b.IsMarker() {
			m := b.Marker()
			entry = segment.MarkerBatch(m.ProducerID, m.ProducerEpoch, m.Commit, m.CoordinatorEpoch, b.MaxTimestamp)
		} else {
			data := chunks[i]
			end := int64(b.Pos) + int64(b.Len)
			if b.Pos < 0 || b.Len < 12 || end > int64(len(data)) {
				return nil, offset, fmt.Errorf("batch %d of %s: range [%d,%d) outside chunk of %d bytes", b.BaseOffset, b.SegmentKey, b.Pos, end, len(data))
			}
			entry = data[b.Pos:end]
		}
		var full bool
		if out, next, full, err = appendEntry(out, entry, b, next, maxBytes, stop); err != nil {
			return nil, offset, err
		}
		if full {
			break
		}
	}
	r.m.bytes.Add(float64(len(out)))
	r.pf.observe(tp, offset, next, offs.HighWatermark)
	return out, next, nil
}

// appendEntry appends to out the batches of one index entry (its bytes in
// the decoded chunk) that end at or after next and begin before stop,
// their base offsets set and partition leader epochs stamped, while out
// stays within maxBytes (the first batch always goes: KIP-74). The
// entry's first batch starts at the entry's base offset; the others, in a
// compacted object, carry their own. It returns the next offset to read
// and whether maxBytes or stop ended it.
func appendEntry(out, entry []byte, b metastore.Batch, next, maxBytes, stop int64) ([]byte, int64, bool, error) {
	for pos, i := 0, 0; pos < len(entry); i++ {
		rest := entry[pos:]
		if len(rest) < batchHeaderLen {
			return out, next, false, fmt.Errorf("index entry [%d, %d] of %s: %w: %d bytes left at %d", b.BaseOffset, b.LastOffset, b.SegmentKey, errCorruptEntry, len(rest), pos)
		}
		n := int(int32(binary.BigEndian.Uint32(rest[8:]))) + 12
		if n < batchHeaderLen || n > len(rest) {
			return out, next, false, fmt.Errorf("index entry [%d, %d] of %s: %w: batch length %d at %d", b.BaseOffset, b.LastOffset, b.SegmentKey, errCorruptEntry, n, pos)
		}
		pos += n
		base, last := segment.BatchOffsets(rest[:n])
		if i == 0 {
			last += b.BaseOffset - base
			base = b.BaseOffset
		}
		if last < base || last > b.LastOffset || i > 0 && base < b.BaseOffset {
			return out, next, false, fmt.Errorf("index entry [%d, %d] of %s: %w: batch [%d, %d]", b.BaseOffset, b.LastOffset, b.SegmentKey, errCorruptEntry, base, last)
		}
		if last < next {
			continue // before the offset asked for
		}
		if base >= stop {
			return out, next, true, nil // beyond the last stable offset
		}
		if len(out) > 0 && int64(len(out)+n) > maxBytes {
			return out, next, true, nil
		}
		start := len(out)
		out = append(out, rest[:n]...)
		segment.PatchBaseOffset(out[start:], base)
		// The partition leader epoch (outside the CRC) is what Metadata
		// reports for every partition, as Kafka stamps it at append.
		binary.BigEndian.PutUint32(out[start+12:], uint32(LeaderEpoch))
		next = last + 1
	}
	return out, next, false, nil
}

// batchHeaderLen is a v2 record batch header's length.
const batchHeaderLen = 61

// errCorruptEntry means an index entry's bytes are not the record batches
// the entry says: storage or index corruption.
var errCorruptEntry = errors.New("stored batches do not match their index entry")

// replayLookupBytes is how many stored bytes of batches one index lookup
// for a reader behind the tail (or its read-ahead) asks the store for.
const replayLookupBytes = 8 << 20

// chunkReadConcurrency bounds the chunks one Read loads at once. A reader
// behind the tail needs one chunk per segment it crosses; loading them
// together costs about one GET's latency instead of one per segment.
const chunkReadConcurrency = 8

// loadChunks returns the decoded chunk of each batch, same index.
func (r *Reader) loadChunks(ctx context.Context, batches []metastore.Batch) ([][]byte, error) {
	out := make([][]byte, len(batches))
	keyOf := func(b metastore.Batch) chunkKey {
		return chunkKey{seg: b.SegmentKey, offset: b.ChunkOffset, length: b.ChunkLength}
	}
	first := make(map[chunkKey]int, 1) // chunk -> first batch index using it
	var distinct []int
	for i, b := range batches {
		if b.IsMarker() {
			continue // made from its row, not read
		}
		if _, ok := first[keyOf(b)]; !ok {
			first[keyOf(b)] = i
			distinct = append(distinct, i)
		}
	}
	switch len(distinct) {
	case 0:
		return out, nil
	case 1:
		data, err := r.chunks.get(ctx, keyOf(batches[distinct[0]]))
		if err != nil {
			return nil, err
		}
		for i, b := range batches {
			if !b.IsMarker() {
				out[i] = data
			}
		}
		return out, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, chunkReadConcurrency)
		errs = make([]error, len(batches))
	)
	for _, i := range distinct {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i], errs[i] = r.chunks.get(ctx, keyOf(batches[i]))
			if errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	// Report the cause, not the cancellations it led to.
	var firstErr error
	for _, i := range distinct {
		if err := errs[i]; err != nil && (firstErr == nil || errors.Is(firstErr, context.Canceled)) {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	for i, b := range batches {
		if !b.IsMarker() {
			out[i] = out[first[keyOf(b)]]
		}
	}
	return out, nil
}

// LeaderEpoch is the partition leader epoch stamped into every batch read:
// silt's partitions never change leader in the Kafka sense, and Metadata
// reports epoch 0.
const LeaderEpoch int32 = 0

// Seed caches the decoded chunks of a segment object this agent just
// stored (see ingest.Hooks.Uploaded), so consumers tailing the partitions
// this agent writes read them from memory instead of with a GET. Seeded
// chunks share the hot tier's bound with the chunks reads loaded.
func (r *Reader) Seed(key string, chunks []segment.ChunkInfo, payloads [][]byte) {
	for i, c := range chunks {
		data := payloads[i]
		if cap(data)-len(data) > len(data)/8 {
			// The tier's bound counts lengths: keep no large spare
			// room (a buffer grown by appends can be twice its length).
			data = append([]byte(nil), data...)
		}
		r.chunks.mem.put(chunkKey{seg: key, offset: c.Offset, length: c.Length}, data)
		r.m.seeded.Add(float64(len(data)))
	}
}

// Offsets returns a partition's log start offset and high watermark, from
// the tail cache when it is current.
func (r *Reader) Offsets(ctx context.Context, tp metastore.TopicPartition) (metastore.PartitionOffsets, error) {
	if offs, ok := r.index.offsets(tp); ok {
		return offs, nil
	}
	return r.store.Offsets(ctx, tp)
}

// Close wakes every waiting fetch and stops read-ahead, waiting for its
// goroutines. Reads after Close still work (without read-ahead); new
// watches fire at once. Close may be called more than once.
func (r *Reader) Close() error {
	r.closeOnce.Do(func() {
		r.pf.close()
		r.bgCancel()
		r.bg.Wait()
	})
	r.watchMu.Lock()
	r.closed = true
	for tp, set := range r.watchers {
		for w := range set {
			w.fire()
		}
		delete(r.watchers, tp)
	}
	r.watchMu.Unlock()
	return nil
}

// IsOutOfRange reports whether err is ErrOffsetOutOfRange.
func IsOutOfRange(err error) bool { return errors.Is(err, ErrOffsetOutOfRange) }

// Forget drops what this reader caches of tp's index and offsets, so its
// next read asks the store: for changes this agent made that move the log
// start (DeleteRecords), which commit notifications do not carry.
func (r *Reader) Forget(tp metastore.TopicPartition) { r.index.forget(tp) }
