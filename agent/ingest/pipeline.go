package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/segment"
	"github.com/siltdata/silt/segment/objstore"
)

// Item is one validated record batch to append, with the facts about it
// the metastore needs at commit.
type Item struct {
	metastore.TopicPartition
	// Batch is the raw Kafka record batch (magic 2). Append copies it.
	Batch []byte
	// Records is the batch's record count (last offset delta + 1).
	Records      int32
	MaxTimestamp int64
	// ProducerID is -1 for a non-idempotent batch.
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	// Transactional is the batch's transactional attribute.
	Transactional bool
}

// Pending is the outcome of one Append call, known once its segment is
// committed or has failed.
type Pending struct {
	done    chan struct{} // closed when results or err is set
	results []metastore.BatchResult
	err     error
	started time.Time
	n       int     // items
	src     *Source // the connection waiting for it; nil when not counted
}

// Wait returns the commit result of each appended item, in Append order, or
// an error wrapping ErrSegmentFailed. It returns ctx's error if ctx ends
// first (the batches may still commit).
func (p *Pending) Wait(ctx context.Context) ([]metastore.BatchResult, error) {
	select {
	case <-p.done:
		return p.results, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Done is closed once Wait would return without blocking.
func (p *Pending) Done() <-chan struct{} { return p.done }

// itemRef ties one appended batch to its Pending and to its place in the
// segment.
type itemRef struct {
	item    Item // Batch not kept: the writer holds the bytes
	pending *Pending
	index   int // in pending.results
	nth     int // index among the batches of its partition in this segment
}

// openSegment is a segment being filled or in flight.
type openSegment struct {
	w        *segment.Writer
	items    []itemRef
	pendings []*Pending
	perTP    map[metastore.TopicPartition]int
	bytes    int
	deadline time.Time // when the timer cuts it; set at its first byte
	early    bool      // deadline was brought forward by the early cut
	sources  []*Source // that appended to it (see Source)
	reason   string
	uploaded chan struct{} // closed when the upload finished
	key      string
	size     int64
	chunks   []segment.ChunkInfo
	upErr    error
}

func newOpenSegment() *openSegment {
	return &openSegment{w: segment.NewWriter(), perTP: make(map[metastore.TopicPartition]int)}
}

// Pipeline batches produced record batches into segment objects. Append and
// Close are safe for concurrent use.
type Pipeline struct {
	cfg    Config
	store  metastore.Store
	bucket objstore.Bucket
	logger *slog.Logger
	hooks  Hooks
	m      *metrics

	// ctx is cancelled when Close gives up waiting: it aborts uploads and
	// commits in flight.
	ctx    context.Context
	cancel context.CancelFunc

	uploadSem chan struct{} // bounds uploads in flight
	arm       chan struct{} // cap 1: the open segment got its first byte
	work      chan struct{} // cap 1: a segment was queued for commit
	stop      chan struct{} // closed by Close after the final cut
	wg        sync.WaitGroup

	// mu guards open, queue, buffered, space, lastCut, closed, sources
	// and every Source's fields.
	mu       sync.Mutex
	open     *openSegment
	lastCut  time.Time      // when the previous segment was cut; zero before the first
	queue    []*openSegment // cut, not yet taken by the committer, in cut order
	buffered int            // bytes appended, not yet committed or failed
	space    chan struct{}  // closed and replaced when buffered shrinks
	closed   bool
	sources  sourceState
}

// Hooks are the pipeline's calls out to the rest of the agent. Both run on
// the pipeline's goroutines and must not block for long; a nil hook is
// not called.
type Hooks struct {
	// Uploaded is called once a segment's object is stored, before its
	// commit, with the object's key, its chunks, and each chunk's
	// decoded payload (same index), which the hook may keep but not
	// modify: the read path caches them, so consumers of the newest data
	// on this agent need no GET.
	Uploaded func(key string, chunks []segment.ChunkInfo, payloads [][]byte)
	// Committed is called after each segment commit, before its
	// produce requests are answered, with every partition the segment
	// touched and the batch index entries the commit added to it (in
	// offset order; none for a partition whose batches were all
	// duplicates or refused, or that got a transactional batch): the read
	// path extends its cached index with them and wakes waiting fetches.
	Committed func(map[metastore.TopicPartition][]metastore.Batch)
}

// New starts a pipeline.
func New(cfg Config, store metastore.Store, bucket objstore.Bucket, logger *slog.Logger, reg prometheus.Registerer, hooks Hooks) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ingest config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if hooks.Committed == nil {
		hooks.Committed = func(map[metastore.TopicPartition][]metastore.Batch) {}
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pipeline{
		cfg:       cfg,
		store:     store,
		bucket:    bucket,
		logger:    logger,
		hooks:     hooks,
		m:         m,
		ctx:       ctx,
		cancel:    cancel,
		uploadSem: make(chan struct{}, cfg.UploadConcurrency),
		arm:       make(chan struct{}, 1),
		work:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		open:      newOpenSegment(),
		space:     make(chan struct{}),
	}
	p.wg.Add(2)
	go p.timerLoop()
	go p.commitLoop()
	return p, nil
}

// Append adds the items, in order, to the open segment: all of them land in
// the same segment. It blocks only while MaxBufferedBytes is reached (or
// until ctx ends). The returned Pending completes when the segment is
// committed or has failed.
func (p *Pipeline) Append(ctx context.Context, items []Item) (*Pending, error) {
	return p.AppendFrom(ctx, nil, items)
}

// AppendFrom is Append for a producer connection that will wait for the
// Pending: src counts the append until it completes (see Config.EarlyCut).
// A nil src is Append.
func (p *Pipeline) AppendFrom(ctx context.Context, src *Source, items []Item) (*Pending, error) {
	size := 0
	for i := range items {
		size += len(items[i].Batch)
	}
	if size > segment.MaxChunkRawLength/2 {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	pend := &Pending{done: make(chan struct{}), started: time.Now(), n: len(items), src: src}
	if len(items) == 0 {
		close(pend.done)
		return pend, nil
	}

	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		// Admit one request larger than the whole bound when nothing else
		// is buffered, or it would wait forever.
		if p.buffered == 0 || p.buffered+size <= p.cfg.MaxBufferedBytes {
			break
		}
		// When the open segment holds everything buffered, nothing in
		// flight will free space: cut it rather than stall until its
		// timer. Otherwise the commits in flight free space, and cutting
		// early would only make more, smaller segments (more PUTs per
		// byte) exactly when the store is the bottleneck.
		if p.open.bytes > 0 && p.open.bytes == p.buffered {
			p.cutLocked("backpressure")
		}
		space := p.space
		p.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		p.mu.Lock()
	}

	s := p.open
	now := time.Now()
	if s.bytes == 0 {
		s.deadline = cutDeadline(now, p.lastCut, p.cfg.FlushInterval)
		select {
		case p.arm <- struct{}{}:
		default:
		}
	}
	for i := range items {
		it := items[i]
		s.w.Append(segment.TopicID(it.Topic), it.Partition, it.Batch)
		nth := s.perTP[it.TopicPartition]
		s.perTP[it.TopicPartition] = nth + 1
		it.Batch = nil
		s.items = append(s.items, itemRef{item: it, pending: pend, index: i, nth: nth})
	}
	s.pendings = append(s.pendings, pend)
	s.bytes += size
	p.buffered += size
	p.m.buffered.Set(float64(p.buffered))
	if src != nil {
		p.appendedLocked(src, now)
	}
	if s.bytes >= p.cfg.FlushBytes {
		p.cutLocked("bytes")
	} else {
		p.earlyCutLocked(src, now)
	}
	p.mu.Unlock()
	return pend, nil
}

// cutLocked closes the open segment, starts its upload and queues it for
// commit. p.mu must be held.
func (p *Pipeline) cutLocked(reason string) {
	s := p.open
	p.open = newOpenSegment()
	p.recountLocked(s)
	if s.bytes == 0 {
		return
	}
	p.lastCut = time.Now()
	s.reason = reason
	s.uploaded = make(chan struct{})
	p.queue = append(p.queue, s)
	p.m.segments.WithLabelValues(reason).Inc()
	p.m.segmentBytes.Observe(float64(s.bytes))
	p.wg.Add(1)
	go p.upload(s)
	select {
	case p.work <- struct{}{}:
	default:
	}
}

// releaseLocked returns n buffered bytes and wakes blocked Appends.
func (p *Pipeline) releaseLocked(n int) {
	p.buffered -= n
	p.m.buffered.Set(float64(p.buffered))
	close(p.space)
	p.space = make(chan struct{})
}

// cutDeadline returns when the timer cuts a segment whose first byte
// arrived at first, the previous segment having been cut at lastCut.
//
// Under continuous traffic segments are cut every interval: a segment
// opened within interval of the previous cut is cut interval after that
// cut, not after its own first byte. Otherwise every segment would also
// last the gap between the previous cut and the next request's arrival,
// and that gap is large exactly when producers wait for the previous
// segment's commit before sending more: an idempotent producer has at most
// five requests in flight per broker, typically all in one segment, so it
// sends nothing between that segment's cut and its commit. Keying the
// deadline on the first byte made such producers' cycle interval + upload
// + commit instead of interval. A time cut still comes at least interval
// after the previous cut, so time cuts are at most one per interval as
// before; after an idle interval a segment still waits a full interval
// from its first byte, to gather a burst.
func cutDeadline(first, lastCut time.Time, interval time.Duration) time.Time {
	if next := lastCut.Add(interval); first.Before(next) {
		return next
	}
	return first.Add(interval)
}

// timerLoop cuts the open segment at its deadline (see cutDeadline).
func (p *Pipeline) timerLoop() {
	defer p.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-p.stop:
			t.Stop()
			return
		case <-p.arm:
		case <-t.C:
		}
		p.mu.Lock()
		var wait time.Duration
		if p.open.bytes > 0 {
			wait = time.Until(p.open.deadline)
			if wait <= 0 {
				reason := "time"
				if p.open.early {
					reason = "early"
				}
				p.cutLocked(reason)
				wait = 0
			}
		}
		p.mu.Unlock()
		if wait > 0 {
			t.Reset(wait)
		}
	}
}

// upload encodes and uploads one cut segment. The segment's key is
// recorded as pending in the metastore first, so garbage collection finds
// the object if the commit never happens.
func (p *Pipeline) upload(s *openSegment) {
	defer p.wg.Done()
	defer close(s.uploaded)
	select {
	case p.uploadSem <- struct{}{}:
	case <-p.ctx.Done():
		s.upErr = p.ctx.Err()
		return
	}
	defer func() { <-p.uploadSem }()

	start := time.Now()
	w := s.w
	s.w = nil // the segment waits for its commit without its buffers
	obj, chunks, err := w.Finish()
	if err != nil {
		s.upErr = fmt.Errorf("encode segment: %w", err)
		p.m.failures.WithLabelValues("encode").Inc()
		return
	}
	id, err := uuid.NewV7()
	if err != nil {
		s.upErr = fmt.Errorf("segment key: %w", err)
		p.m.failures.WithLabelValues("encode").Inc()
		return
	}
	s.key = p.cfg.KeyPrefix + id.String()
	s.size = int64(len(obj))
	s.chunks = chunks

	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.UploadTimeout)
	defer cancel()
	if err := p.store.AddPendingSegment(ctx, s.key); err != nil {
		s.upErr = fmt.Errorf("record pending segment %s: %w", s.key, err)
		p.m.failures.WithLabelValues("pending").Inc()
		return
	}
	if err := p.bucket.Put(ctx, s.key, obj); err != nil {
		s.upErr = fmt.Errorf("upload segment %s: %w", s.key, err)
		p.m.failures.WithLabelValues("upload").Inc()
		return
	}
	if p.hooks.Uploaded != nil {
		p.hooks.Uploaded(s.key, chunks, w.Payloads())
	}
	p.m.uploadDuration.Observe(time.Since(start).Seconds())
}

// commitLoop commits cut segments strictly in cut order. When a segment
// fails, every segment cut before the failure was seen fails too: they may
// hold later batches of the same idempotent producers, which would then be
// committed out of sequence. Segments cut afterwards proceed normally.
func (p *Pipeline) commitLoop() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		var s *openSegment
		if len(p.queue) > 0 {
			s = p.queue[0]
			p.queue = p.queue[1:]
		}
		p.mu.Unlock()
		if s == nil {
			select {
			case <-p.work:
				continue
			case <-p.stop:
				// Close cut the last segment before closing stop; drain.
				p.mu.Lock()
				empty := len(p.queue) == 0
				p.mu.Unlock()
				if empty {
					return
				}
				continue
			}
		}

		<-s.uploaded
		err := s.upErr
		var (
			rows    []metastore.BatchAppend
			results []metastore.BatchResult
		)
		if err == nil {
			rows, results, err = p.commit(s)
		}
		if err != nil {
			p.logger.Warn("segment failed", "key", s.key, "bytes", s.bytes, "error", err)
			p.mu.Lock()
			later := p.queue
			p.queue = nil
			p.mu.Unlock()
			p.fail(s, err)
			for _, l := range later {
				<-l.uploaded
				p.fail(l, fmt.Errorf("earlier segment %s failed: %w", s.key, err))
			}
			continue
		}
		p.complete(s, rows, results)
	}
}

func (p *Pipeline) commit(s *openSegment) ([]metastore.BatchAppend, []metastore.BatchResult, error) {
	rows, err := s.rows()
	if err != nil {
		p.m.failures.WithLabelValues("encode").Inc()
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.CommitTimeout)
	defer cancel()
	start := time.Now()
	results, err := p.store.CommitSegment(ctx, metastore.Segment{Key: s.key, Size: s.size, Batches: rows})
	if err != nil {
		p.m.failures.WithLabelValues("commit").Inc()
		return nil, nil, fmt.Errorf("commit segment %s: %w", s.key, err)
	}
	if len(results) != len(rows) {
		p.m.failures.WithLabelValues("commit").Inc()
		return nil, nil, fmt.Errorf("commit segment %s: %d results for %d batches", s.key, len(results), len(rows))
	}
	p.m.commitDuration.Observe(time.Since(start).Seconds())
	return rows, results, nil
}

// rows builds the segment's batch index rows, in append order, from the
// writer's chunk layout.
func (s *openSegment) rows() ([]metastore.BatchAppend, error) {
	byTP := make(map[metastore.TopicPartition]*segment.ChunkInfo, len(s.chunks))
	for i := range s.chunks {
		c := &s.chunks[i]
		byTP[metastore.TopicPartition{Topic: metastore.TopicID(c.TopicID), Partition: c.Partition}] = c
	}
	rows := make([]metastore.BatchAppend, len(s.items))
	for i, ref := range s.items {
		c := byTP[ref.item.TopicPartition]
		if c == nil || ref.nth >= len(c.Batches) {
			return nil, fmt.Errorf("segment %s: writer lost batch %d of %v", s.key, ref.nth, ref.item.TopicPartition)
		}
		b := c.Batches[ref.nth]
		rows[i] = metastore.BatchAppend{
			TopicPartition: ref.item.TopicPartition,
			Records:        ref.item.Records,
			MaxTimestamp:   ref.item.MaxTimestamp,
			ProducerID:     ref.item.ProducerID,
			ProducerEpoch:  ref.item.ProducerEpoch,
			BaseSequence:   ref.item.BaseSequence,
			Transactional:  ref.item.Transactional,
			ChunkOffset:    c.Offset,
			ChunkLength:    c.Length,
			Pos:            b.Pos,
			Len:            b.Len,
		}
	}
	return rows, nil
}

// complete answers every request of a committed segment, after waking
// readers of the partitions it touched.
func (p *Pipeline) complete(s *openSegment, rows []metastore.BatchAppend, results []metastore.BatchResult) {
	added := make(map[metastore.TopicPartition][]metastore.Batch, len(s.perTP))
	for tp := range s.perTP {
		added[tp] = nil
	}
	// A transactional batch may start a transaction on its partition
	// (moving nothing the read path can see but the last stable offset's
	// future): its partition is reported without batches, which makes
	// the read path look the partition up again.
	txn := map[metastore.TopicPartition]bool{}
	for i, row := range rows {
		if results[i].Err == nil && row.Transactional {
			txn[row.TopicPartition] = true
		}
	}
	for i, row := range rows {
		if results[i].Err != nil || txn[row.TopicPartition] {
			continue // a duplicate or a refused batch: not indexed
		}
		added[row.TopicPartition] = append(added[row.TopicPartition], metastore.Batch{
			BaseOffset:   results[i].BaseOffset,
			LastOffset:   results[i].BaseOffset + int64(row.Records) - 1,
			MaxTimestamp: row.MaxTimestamp,
			SegmentKey:   s.key,
			ChunkOffset:  row.ChunkOffset,
			ChunkLength:  row.ChunkLength,
			Pos:          row.Pos,
			Len:          row.Len,
		})
	}
	p.hooks.Committed(added)
	for _, pend := range s.pendings {
		pend.results = make([]metastore.BatchResult, pend.n)
	}
	for i, ref := range s.items {
		ref.pending.results[ref.index] = results[i]
	}
	p.mu.Lock()
	p.releaseLocked(s.bytes)
	p.sourcesDoneLocked(s)
	p.mu.Unlock()
	now := time.Now()
	for _, pend := range s.pendings {
		p.m.produceLatency.Observe(now.Sub(pend.started).Seconds())
		close(pend.done)
	}
}

// sourcesDoneLocked counts every append of s as done for its source.
// It runs before the appends' Pendings complete, so a connection's next
// request, sent once it has the answer, finds its count already lowered.
func (p *Pipeline) sourcesDoneLocked(s *openSegment) {
	for _, pend := range s.pendings {
		if pend.src != nil {
			p.doneLocked(pend.src)
		}
	}
}

func (p *Pipeline) fail(s *openSegment, err error) {
	err = fmt.Errorf("%w: %w", ErrSegmentFailed, err)
	p.mu.Lock()
	p.releaseLocked(s.bytes)
	p.sourcesDoneLocked(s)
	p.mu.Unlock()
	for _, pend := range s.pendings {
		pend.err = err
		close(pend.done)
	}
}

// Close cuts and commits what is buffered, answers it, and stops every
// goroutine. If ctx ends first, uploads and commits in flight are aborted
// (their requests get ErrSegmentFailed) and Close still waits for the
// goroutines before returning ctx's error.
func (p *Pipeline) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.cutLocked("close")
	close(p.space) // wake blocked Appends: they see closed
	p.space = make(chan struct{})
	p.mu.Unlock()
	close(p.stop)

	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		p.cancel()
		<-done
	}
	p.cancel()
	return err
}

// IsRetriable reports whether err means the batches were not committed and
// the producer may simply retry them.
func IsRetriable(err error) bool { return errors.Is(err, ErrSegmentFailed) }
