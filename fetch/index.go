package fetch

import (
	"container/list"
	"sort"
	"sync"
	"time"

	"github.com/siltdata/silt/metastore"
)

// tailIndex caches, per partition, two contiguous runs of batch index
// entries, and the partition's offsets: the tail run, where consumers that
// keep up read, and the replay run, the batches just ahead of a reader far
// behind the tail, which its own lookups and its read-ahead fill. Committed
// batches never change, so cached entries stay valid; only the high
// watermark goes stale, which Notify (or IndexMaxAge) tells us.
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
	batches []metastore.Batch // tail run: contiguous, in offset order
	replay  []metastore.Batch // replay run: contiguous, in offset order
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
// must be asked, and gen is then the generation to pass to update. behind
// reports, on a miss, that the cached offsets put offset at least minLag
// behind the high watermark: a replaying reader, worth a larger lookup.
// A committed (read_committed) reader at or past a last stable offset
// that may be stale asks the store: only a commit of this agent moves a
// cached last stable offset.
func (x *tailIndex) lookup(tp metastore.TopicPartition, offset, maxBytes, minLag int64, committed bool) (batches []metastore.Batch, offs metastore.PartitionOffsets, gen uint64, ok, behind bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.maxEntries == 0 {
		return nil, offs, 0, false, false
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
	if time.Since(e.at) > x.maxAge {
		return nil, offs, e.gen, false, false
	}
	// Out-of-range answers make consumers reset their position: never
	// give one from the cache.
	if offset < e.offs.LogStartOffset || offset > e.offs.HighWatermark {
		return nil, offs, e.gen, false, false
	}
	behind = e.offs.HighWatermark-offset >= minLag
	if committed && !e.fresh && offset >= e.offs.LastStableOffset {
		return nil, offs, e.gen, false, behind
	}
	if offset == e.offs.HighWatermark {
		if e.fresh {
			return nil, e.offs, e.gen, true, false
		}
		return nil, offs, e.gen, false, false
	}
	// Batches below the cached high watermark are served even when
	// commits have made it stale: they never change, and a high
	// watermark that lags (by at most maxAge, as a follower's does) is
	// never ahead of the log. A reader at the stale end asks the store.
	for _, run := range [2][]metastore.Batch{e.batches, e.replay} {
		if batches, ok := serve(run, offset, maxBytes, e.offs.HighWatermark); ok {
			return batches, e.offs, e.gen, true, behind
		}
	}
	return nil, offs, e.gen, false, behind
}

// serve picks from run the batches from offset on, up to maxBytes (at
// least one); ok is false when run does not hold offset, or ends before
// maxBytes while the log (up to hw) goes on: the store can give more.
func serve(run []metastore.Batch, offset, maxBytes, hw int64) ([]metastore.Batch, bool) {
	i := sort.Search(len(run), func(i int) bool { return run[i].LastOffset >= offset })
	if i == len(run) || run[i].BaseOffset > offset {
		return nil, false
	}
	batches := pick(run[i:], maxBytes)
	if len(batches) == len(run)-i && batches[len(batches)-1].LastOffset+1 < hw && sumLen(batches) < maxBytes {
		return nil, false
	}
	return batches, true
}

// ahead returns the cached batches from offset on, contiguous, from the
// run that holds offset: what read-ahead can plan without the store.
func (x *tailIndex) ahead(tp metastore.TopicPartition, offset int64) []metastore.Batch {
	x.mu.Lock()
	defer x.mu.Unlock()
	el := x.entries[tp]
	if el == nil {
		return nil
	}
	e := el.Value.(*tailEntry)
	for _, run := range [2][]metastore.Batch{e.replay, e.batches} {
		i := sort.Search(len(run), func(i int) bool { return run[i].LastOffset >= offset })
		if i < len(run) && run[i].BaseOffset <= offset {
			return append([]metastore.Batch(nil), run[i:]...)
		}
	}
	return nil
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

// update merges a store answer for tp read at generation gen. An answer
// that reaches the high watermark, or continues the tail run, goes to the
// tail run; any other is a reader behind the tail and goes to the replay
// run.
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
	// A commit of this agent applied (by committed) after the store read
	// began is newer than the answer: offsets only grow, keep the higher,
	// with the last stable offset and aborted end of the same snapshot
	// (both only grow too, and a read_committed read below one relies on
	// the other being at least as new).
	if e.offs.HighWatermark > offs.HighWatermark {
		offs.HighWatermark, offs.LastStableOffset, offs.AbortedEnd = e.offs.HighWatermark, e.offs.LastStableOffset, e.offs.AbortedEnd
	}
	e.offs = offs
	e.at = time.Now()
	e.fresh = e.gen == gen

	if len(res) > 0 {
		atTail := res[len(res)-1].LastOffset+1 >= offs.HighWatermark
		if n := len(e.batches); n > 0 && res[0].BaseOffset >= e.batches[0].BaseOffset && res[0].BaseOffset <= e.batches[n-1].LastOffset+1 {
			// Overlaps or extends the tail run.
			e.batches = x.extend(e.batches, res)
		} else if atTail {
			// A new tail position: follow it.
			e.batches = x.bound(append([]metastore.Batch(nil), res...))
		} else {
			e.replay = x.merge(e.replay, res)
		}
	}
	// Drop what retention removed.
	e.batches = dropBelow(e.batches, offs.LogStartOffset)
	e.replay = dropBelow(e.replay, offs.LogStartOffset)
}

// addAhead adds batches that read-ahead looked up for a replaying reader
// now at offset next to tp's replay run: appended when they continue a run
// that holds next, else in place of the run (which then serves no reader
// read-ahead follows). They lie ahead of the reader: the run drops what the
// reader has passed, and when it is still full, the newest are left out.
func (x *tailIndex) addAhead(tp metastore.TopicPartition, next int64, res []metastore.Batch) {
	x.mu.Lock()
	defer x.mu.Unlock()
	el := x.entries[tp]
	if el == nil || len(res) == 0 {
		return
	}
	e := el.Value.(*tailEntry)
	run := e.replay
	if n := len(run); n == 0 || next < run[0].BaseOffset || next > run[n-1].LastOffset+1 ||
		res[0].BaseOffset < run[0].BaseOffset || res[0].BaseOffset > run[n-1].LastOffset+1 {
		e.replay = x.bound(append([]metastore.Batch(nil), res...))
		return
	}
	keep := sort.Search(len(run), func(i int) bool { return run[i].BaseOffset >= res[0].BaseOffset })
	passed := sort.Search(keep, func(i int) bool { return run[i].LastOffset >= next })
	e.replay = x.bound(append(append([]metastore.Batch(nil), run[passed:keep]...), res...))
}

// merge adds a reader's answer to a run: appended when it overlaps or
// continues the run, else it replaces it (another position).
func (x *tailIndex) merge(run, res []metastore.Batch) []metastore.Batch {
	if n := len(run); n > 0 && res[0].BaseOffset >= run[0].BaseOffset && res[0].BaseOffset <= run[n-1].LastOffset+1 {
		return x.extend(run, res)
	}
	return x.bound(append([]metastore.Batch(nil), res...))
}

// extend replaces run's batches from res's first to its last with res
// (keeping those of run that continue after it), then keeps at most
// maxBatches: the older batches go first (the reader has moved past
// them), then, if res alone is too long, its newest.
func (x *tailIndex) extend(run, res []metastore.Batch) []metastore.Batch {
	keep := sort.Search(len(run), func(i int) bool { return run[i].BaseOffset >= res[0].BaseOffset })
	end := res[len(res)-1].LastOffset + 1
	var after []metastore.Batch
	if j := sort.Search(len(run), func(i int) bool { return run[i].BaseOffset >= end }); j < len(run) && run[j].BaseOffset == end {
		after = run[j:]
	}
	run = append(append(run[:keep:keep], res...), after...)
	if len(run) <= x.maxBatches {
		return run
	}
	start := min(len(run)-x.maxBatches, keep)
	return append([]metastore.Batch(nil), run[start:start+x.maxBatches]...)
}

// bound keeps at most the first maxBatches of run.
func (x *tailIndex) bound(run []metastore.Batch) []metastore.Batch {
	if len(run) <= x.maxBatches {
		return run
	}
	return run[:x.maxBatches:x.maxBatches]
}

// dropBelow removes the batches wholly below the log start offset.
func dropBelow(run []metastore.Batch, logStart int64) []metastore.Batch {
	drop := sort.Search(len(run), func(i int) bool { return run[i].LastOffset >= logStart })
	if drop == 0 {
		return run
	}
	return append([]metastore.Batch(nil), run[drop:]...)
}

// committed takes the batches a commit on this agent added to tp (in
// offset order). When they begin at the cached high watermark, nothing
// else was committed in between (offsets are dense): they extend the tail
// run and the high watermark moves past them, as current as it was, so a
// tailing reader's next fetch needs no store lookup; a store answer read
// before this commit cannot undo that (update keeps the higher high
// watermark and the batches after its answer). The batches are not
// transactional (the pipeline passes none for a partition whose commit
// holds transactional ones): a last stable offset that was the high
// watermark moves with it, and no transaction began or ended. Otherwise
// the high watermark is marked stale, as by invalidate.
func (x *tailIndex) committed(tp metastore.TopicPartition, batches []metastore.Batch) {
	x.mu.Lock()
	defer x.mu.Unlock()
	el := x.entries[tp]
	if el == nil {
		return
	}
	e := el.Value.(*tailEntry)
	if time.Since(e.at) > x.maxAge || len(batches) == 0 || batches[0].BaseOffset != e.offs.HighWatermark {
		e.gen++ // store answers read before this commit are not current
		e.fresh = false
		return
	}
	if n := len(e.batches); n == 0 || e.batches[n-1].LastOffset+1 == batches[0].BaseOffset {
		e.batches = x.extend(e.batches, batches)
	}
	if e.offs.LastStableOffset == e.offs.HighWatermark {
		e.offs.LastStableOffset = batches[len(batches)-1].LastOffset + 1
	}
	e.offs.HighWatermark = batches[len(batches)-1].LastOffset + 1
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

// forget drops tp's cached entry, so its next lookup asks the store.
func (x *tailIndex) forget(tp metastore.TopicPartition) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if el := x.entries[tp]; el != nil {
		x.lru.Remove(el)
		delete(x.entries, tp)
	}
}
