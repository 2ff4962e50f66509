package fetch

import (
	"context"
	"log/slog"
	"sync"

	"github.com/siltdata/silt/metastore"
)

// Read-ahead for replaying readers. A Read that starts where an earlier
// Read of the same partition ended, far behind the high watermark, is a
// sequential reader of old data: it will want the next chunks soon, and
// each costs a GET's latency when it asks. The prefetcher loads them
// while the client processes what it has, into a pool of its own (see
// chunks.pre) so replay never evicts the hot tail tailing readers use.

// maxStreamsPerPartition bounds the sequential readers tracked per
// partition: consumer groups replaying the same partition at different
// positions each keep their own read-ahead.
const maxStreamsPerPartition = 4

// stream is one sequential reader of a partition.
type stream struct {
	next    int64   // offset the reader's next Read is expected at
	ahead   int64   // offset up to which chunks were scheduled
	queued  []int64 // end offset (last offset + 1) of each scheduled chunk, ascending
	hw      int64   // high watermark at the reader's last Read
	pending bool    // a plan for this stream is queued or running
	again   bool    // the reader moved while pending: plan again after
}

type planJob struct {
	tp   metastore.TopicPartition
	s    *stream
	next int64 // the reader's position
	from int64
	want int
}

// prefetcher owns the read-ahead goroutines: planners, which look up the
// batches after a stream's position, and loaders, which read chunks into
// the prefetch pool. Both stop when Close cancels ctx.
type prefetcher struct {
	cfg    Config
	store  Store
	index  *tailIndex
	chunks *chunks
	logger *slog.Logger
	m      *metrics

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	plans  chan planJob
	loads  chan chunkKey

	// mu guards streams, every stream's fields, and closed.
	mu      sync.Mutex
	streams map[metastore.TopicPartition][]*stream
	closed  bool
}

// newPrefetcher starts the read-ahead goroutines; nil when read-ahead is
// off.
func newPrefetcher(cfg Config, store Store, index *tailIndex, c *chunks, logger *slog.Logger, m *metrics) *prefetcher {
	if cfg.PrefetchChunks == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &prefetcher{
		cfg:     cfg,
		store:   store,
		index:   index,
		chunks:  c,
		logger:  logger,
		m:       m,
		ctx:     ctx,
		cancel:  cancel,
		plans:   make(chan planJob, 64),
		loads:   make(chan chunkKey, cfg.PrefetchConcurrency*cfg.PrefetchChunks),
		streams: make(map[metastore.TopicPartition][]*stream),
	}
	for range cfg.PrefetchConcurrency {
		p.wg.Go(p.planLoop)
		p.wg.Go(p.loadLoop)
	}
	return p
}

// close stops the goroutines and waits for them. Loads in flight end
// with their context; readers sharing one retry with their own.
func (p *prefetcher) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}

// observe records a Read of tp that returned [offset, end) while the high
// watermark was hw, and schedules read-ahead when the reader is
// sequential and far enough behind. It never blocks: with the planners
// busy the plan is dropped and the next Read tries again.
func (p *prefetcher) observe(tp metastore.TopicPartition, offset, end, hw int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	list := p.streams[tp]
	var s *stream
	for i, c := range list {
		if c.next == offset {
			s = c
			// Most recently used first.
			copy(list[1:i+1], list[:i])
			list[0] = s
			break
		}
	}
	if s == nil {
		// A new position (first read, or a jump: random access): track
		// it, but only a Read that continues it is sequential.
		if list == nil && len(p.streams) >= p.cfg.IndexCacheEntries+1 {
			for k := range p.streams { // bounded: forget any one partition
				delete(p.streams, k)
				break
			}
		}
		s = &stream{ahead: end}
		list = append([]*stream{s}, list...)
		if len(list) > maxStreamsPerPartition {
			list = list[:maxStreamsPerPartition]
		}
		p.streams[tp] = list
		s.next = end
		return
	}
	s.next, s.hw = end, hw
	// Chunks the reader has passed are no longer ahead of it.
	drop := 0
	for drop < len(s.queued) && s.queued[drop] <= end {
		drop++
	}
	s.queued = s.queued[drop:]
	if s.ahead < end {
		s.ahead = end
	}
	if s.pending {
		// The running plan may have started before this Read: look
		// again when it is done, or read-ahead could stall behind it.
		s.again = true
		return
	}
	p.maybePlanLocked(tp, s)
}

// maybePlanLocked queues a plan for s when its reader is far enough
// behind and fewer than half its read-ahead window is queued (refilling
// in half-window steps costs one store lookup per several chunks).
func (p *prefetcher) maybePlanLocked(tp metastore.TopicPartition, s *stream) {
	if s.hw-s.next < p.cfg.PrefetchMinLag || s.ahead >= s.hw || len(s.queued) > p.cfg.PrefetchChunks/2 {
		return
	}
	select {
	case p.plans <- planJob{tp: tp, s: s, next: s.next, from: s.ahead, want: p.cfg.PrefetchChunks - len(s.queued)}:
		s.pending = true
	default:
	}
}

func (p *prefetcher) planLoop() {
	for {
		select {
		case <-p.ctx.Done():
			return
		case j := <-p.plans:
			p.plan(j)
		}
	}
}

// plan looks up the batches from j.from on and schedules the loads of up
// to j.want chunks holding at most PrefetchAheadBytes (at least one).
func (p *prefetcher) plan(j planJob) {
	var ends []int64
	var keys []chunkKey
	// done records the plan before any of its loads can finish, so a
	// Read that follows a load sees the stream's queue as it is.
	done := func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		s := j.s
		s.pending = false
		for _, e := range ends {
			if e > s.ahead {
				s.ahead = e
				s.queued = append(s.queued, e)
			}
		}
		if s.again && !p.closed {
			s.again = false
			p.maybePlanLocked(j.tp, s)
		}
	}
	batches, err := p.batchesFrom(j)
	if err != nil {
		if p.ctx.Err() == nil {
			p.logger.Debug("prefetch lookup failed", "topic", j.tp.Topic, "partition", j.tp.Partition, "offset", j.from, "err", err)
		}
		ends = nil
		done()
		return
	}
	var bytes int64
	for _, b := range batches {
		if b.IsMarker() {
			// Made from its row: nothing to read ahead.
			if n := len(ends); n > 0 {
				ends[n-1] = b.LastOffset + 1
			}
			continue
		}
		k := chunkKey{seg: b.SegmentKey, offset: b.ChunkOffset, length: b.ChunkLength}
		if n := len(keys); n > 0 && keys[n-1] == k {
			ends[n-1] = b.LastOffset + 1
			continue
		}
		if len(keys) == j.want || (len(keys) > 0 && bytes+k.length > p.cfg.PrefetchAheadBytes) {
			break
		}
		bytes += k.length
		keys = append(keys, k)
		ends = append(ends, b.LastOffset+1)
	}
	done()
	for _, k := range keys {
		select {
		case p.loads <- k:
		case <-p.ctx.Done():
			return
		}
	}
}

// batchesFrom returns the batches from j.from on that hold at least j.want
// chunks (or end at the log's end as far as known): from the index's
// cached runs when they reach that far, else also from one store lookup,
// whose answer joins the replay run so the reader's own fetches find it.
func (p *prefetcher) batchesFrom(j planJob) ([]metastore.Batch, error) {
	cached := p.index.ahead(j.tp, j.from)
	if chunksIn(cached) > j.want {
		return cached, nil // the last chunk may go on past the run: want whole ones
	}
	from := j.from
	if n := len(cached); n > 0 {
		from = cached[n-1].LastOffset + 1
	}
	res, offs, err := p.store.Batches(p.ctx, j.tp, from, replayLookupBytes)
	if err != nil {
		return nil, err
	}
	p.m.lookups.WithLabelValues("prefetch").Inc()
	if from >= offs.HighWatermark {
		return cached, nil
	}
	p.index.addAhead(j.tp, j.next, res)
	return append(cached, res...), nil
}

// chunksIn counts the distinct chunks of contiguous batches.
func chunksIn(batches []metastore.Batch) int {
	n := 0
	for i, b := range batches {
		if !b.IsMarker() && (i == 0 || b.SegmentKey != batches[i-1].SegmentKey || b.ChunkOffset != batches[i-1].ChunkOffset) {
			n++
		}
	}
	return n
}

func (p *prefetcher) loadLoop() {
	for {
		select {
		case <-p.ctx.Done():
			return
		case k := <-p.loads:
			if p.ctx.Err() != nil {
				return
			}
			if err := p.chunks.prefetch(p.ctx, k); err != nil && p.ctx.Err() == nil {
				p.logger.Debug("prefetch failed", "segment", k.seg, "offset", k.offset, "err", err)
			}
		}
	}
}
