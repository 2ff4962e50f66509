package fetch

import (
	"container/list"
	"sort"
	"sync"
	"time"

	"github.com/siltdata/silt/metastore"
)

// tailIndex caches, per partition, a contiguous run of batch index entries
// near where readers are, and the partition's offsets. Committed batches
// never change, so cached entries stay valid; only the high watermark goes
// stale, which Notify (or IndexMaxAge) tells us.
type tailIndex struct {
	maxEntries int
	maxBatches int
	maxAge     time.Duration

	// mu guards entries, lru and every tailEntry's fields.
	mu      sync.Mutex
	entries map[metastore.TopicPartition]*list.Element // of *tailEntry
	lru     *list.List                                 // front: most recently used
}

type tailEntry struct {
	tp      metastore.TopicPartition
	batches []metastore.Batch // contiguous, in offset order
	offs    metastore.PartitionOffsets
	fresh   bool      // offs known current (no Notify since read)
	at      time.Time // when offs was read from the store
	gen     uint64    // bumped by every Notify
}

func newTailIndex(cfg Config) *tailIndex {
	return &tailIndex{
		maxEntries: cfg.IndexCacheEntries,
		maxBatches: cfg.IndexBatches,
		maxAge:     cfg.IndexMaxAge,
		entries:    make(map[metastore.TopicPartition]*list.Element),
		lru:        list.New(),
	}
}

// lookup answers from the cache when it can: ok is false when the store
// must be asked, and gen is then the generation to pass to update.
func (x *tailIndex) lookup(tp metastore.TopicPartition, offset, maxBytes int64) (batches []metastore.Batch, offs metastore.PartitionOffsets, gen uint64, ok bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.maxEntries == 0 {
		return nil, offs, 0, false
	}
	el := x.entries[tp]
	if el == nil {
		el = x.lru.PushFront(&tailEntry{tp: tp})
		x.entries[tp] = el
		x.evictLocked()
	} else {
		x.lru.MoveToFront(el)
	}
	e := el.Value.(*tailEntry)
	if !e.fresh || time.Since(e.at) > x.maxAge {
		return nil, offs, e.gen, false
	}
	// Out-of-range answers make consumers reset their position: never
	// give one from the cache.
	if offset < e.offs.LogStartOffset || offset > e.offs.HighWatermark {
		return nil, offs, e.gen, false
	}
	if offset == e.offs.HighWatermark {
		return nil, e.offs, e.gen, true
	}
	i := sort.Search(len(e.batches), func(i int) bool { return e.batches[i].LastOffset >= offset })
	if i == len(e.batches) || e.batches[i].BaseOffset > offset {
		return nil, offs, e.gen, false
	}
	batches = pick(e.batches[i:], maxBytes)
	last := batches[len(batches)-1]
	if len(batches) == len(e.batches)-i && last.LastOffset+1 < e.offs.HighWatermark && sumLen(batches) < maxBytes {
		// The cache ends before maxBytes is reached but the log does
		// not: the store can give more.
		return nil, offs, e.gen, false
	}
	return batches, e.offs, e.gen, true
}

// offsets returns tp's cached offsets when they are current.
func (x *tailIndex) offsets(tp metastore.TopicPartition) (metastore.PartitionOffsets, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	el := x.entries[tp]
	if el == nil {
		return metastore.PartitionOffsets{}, false
	}
	e := el.Value.(*tailEntry)
	if !e.fresh || time.Since(e.at) > x.maxAge {
		return metastore.PartitionOffsets{}, false
	}
	return e.offs, true
}

// update merges a store answer for tp read at generation gen.
func (x *tailIndex) update(tp metastore.TopicPartition, gen uint64, res []metastore.Batch, offs metastore.PartitionOffsets) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.maxEntries == 0 {
		return
	}
	el := x.entries[tp]
	if el == nil {
		// Evicted meanwhile: start over, but not trusted as fresh since a
		// Notify may have been missed.
		el = x.lru.PushFront(&tailEntry{tp: tp, gen: gen + 1})
		x.entries[tp] = el
		x.evictLocked()
	}
	e := el.Value.(*tailEntry)
	e.offs = offs
	e.at = time.Now()
	e.fresh = e.gen == gen

	switch {
	case len(res) == 0:
	case len(e.batches) == 0:
		e.batches = append([]metastore.Batch(nil), res...)
	default:
		first, last := e.batches[0], e.batches[len(e.batches)-1]
		switch {
		case res[0].BaseOffset >= first.BaseOffset && res[0].BaseOffset <= last.LastOffset+1:
			// Overlaps or extends the cached run.
			keep := sort.Search(len(e.batches), func(i int) bool { return e.batches[i].BaseOffset >= res[0].BaseOffset })
			e.batches = append(e.batches[:keep:keep], res...)
		case res[0].BaseOffset > last.LastOffset+1:
			// A reader jumped ahead: follow the newest position.
			e.batches = append([]metastore.Batch(nil), res...)
		default:
			// A reader behind the cached run (replay): keep the tail.
		}
	}
	// Drop what retention removed and bound the entry.
	drop := sort.Search(len(e.batches), func(i int) bool { return e.batches[i].LastOffset >= offs.LogStartOffset })
	if n := len(e.batches) - drop; n > x.maxBatches {
		drop = len(e.batches) - x.maxBatches
	}
	if drop > 0 {
		e.batches = append([]metastore.Batch(nil), e.batches[drop:]...)
	}
}

// invalidate marks the partitions' high watermarks stale.
func (x *tailIndex) invalidate(tps []metastore.TopicPartition) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, tp := range tps {
		if el := x.entries[tp]; el != nil {
			e := el.Value.(*tailEntry)
			e.fresh = false
			e.gen++
		}
	}
}

// invalidateAll marks every cached high watermark stale.
func (x *tailIndex) invalidateAll() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, el := range x.entries {
		e := el.Value.(*tailEntry)
		e.fresh = false
		e.gen++
	}
}

func (x *tailIndex) evictLocked() {
	for x.lru.Len() > x.maxEntries {
		el := x.lru.Back()
		x.lru.Remove(el)
		delete(x.entries, el.Value.(*tailEntry).tp)
	}
}

// pick returns the leading batches whose summed length fits maxBytes, and
// at least one (KIP-74: a large batch must not block the consumer).
func pick(batches []metastore.Batch, maxBytes int64) []metastore.Batch {
	if len(batches) == 0 {
		return nil
	}
	total := int64(batches[0].Len)
	n := 1
	for n < len(batches) && total+int64(batches[n].Len) <= maxBytes {
		total += int64(batches[n].Len)
		n++
	}
	return batches[:n]
}

func sumLen(batches []metastore.Batch) int64 {
	var n int64
	for _, b := range batches {
		n += int64(b.Len)
	}
	return n
}
