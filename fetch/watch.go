package fetch

import (
	"context"
	"sync"
	"time"

	"github.com/siltdata/silt/metastore"
)

// Watch is a one-shot wake-up for a set of partitions: its channel is
// closed by the first Notify naming any of them. Create it before reading,
// so a commit between the read and the wait is not missed.
type Watch struct {
	r       *Reader
	tps     []metastore.TopicPartition
	ch      chan struct{}
	once    sync.Once
	created time.Time
}

// Watch registers a wake-up for tps. Call Stop when done with it.
func (r *Reader) Watch(tps []metastore.TopicPartition) *Watch {
	w := &Watch{r: r, tps: tps, ch: make(chan struct{}), created: time.Now()}
	r.watchMu.Lock()
	if r.closed {
		r.watchMu.Unlock()
		w.fire()
		return w
	}
	for _, tp := range tps {
		set := r.watchers[tp]
		if set == nil {
			set = make(map[*Watch]struct{})
			r.watchers[tp] = set
		}
		set[w] = struct{}{}
	}
	r.watchMu.Unlock()
	return w
}

// C is closed when one of the partitions was notified (or the reader
// closed).
func (w *Watch) C() <-chan struct{} { return w.ch }

// Wait blocks until a notification, the deadline or ctx, whichever comes
// first, and reports whether it was woken by a notification.
func (w *Watch) Wait(ctx context.Context, deadline time.Time) bool {
	start := time.Now()
	defer func() { w.r.m.waitDuration.Observe(time.Since(start).Seconds()) }()
	d := time.Until(deadline)
	if d <= 0 {
		select {
		case <-w.ch:
			return true
		default:
			return false
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.ch:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// Stop unregisters the watch.
func (w *Watch) Stop() {
	w.r.watchMu.Lock()
	for _, tp := range w.tps {
		if set := w.r.watchers[tp]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(w.r.watchers, tp)
			}
		}
	}
	w.r.watchMu.Unlock()
}

func (w *Watch) fire() { w.once.Do(func() { close(w.ch) }) }

// Committed is Notify for the commits of this agent's own segments, which
// come with the batch index entries they added (ingest.Hooks.Committed):
// the cached index is extended with them where it can be, so the fetches
// they wake read the new batches without a store lookup.
func (r *Reader) Committed(added map[metastore.TopicPartition][]metastore.Batch) {
	for tp, batches := range added {
		r.index.committed(tp, batches)
	}
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	for tp := range added {
		r.wakeLocked(tp)
	}
}

// wakeLocked fires and forgets every watch of tp. r.watchMu must be held.
func (r *Reader) wakeLocked(tp metastore.TopicPartition) {
	for w := range r.watchers[tp] {
		w.fire()
	}
	delete(r.watchers, tp)
}

// Notify wakes fetches waiting on the given partitions and marks their
// cached high watermarks stale. A nil tps means every partition (commits
// may have been missed, as metastore.CommitWatcher signals). It never
// blocks on a reader, so it may be called from a commit path.
func (r *Reader) Notify(tps []metastore.TopicPartition) {
	if tps == nil {
		r.index.invalidateAll()
	} else {
		r.index.invalidate(tps)
	}
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	if tps == nil {
		for tp := range r.watchers {
			r.wakeLocked(tp)
		}
		return
	}
	for _, tp := range tps {
		r.wakeLocked(tp)
	}
}
