package fetch

import (
	"container/list"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// memLRU is a size-bounded LRU of decoded chunks in memory, safe for
// concurrent use. The hot-tail tier and the read-ahead pool are one each.
type memLRU struct {
	max   int64
	gauge prometheus.Gauge // the tier's silt_fetch_cache_bytes

	mu    sync.Mutex                 // mu guards items, order and size
	items map[chunkKey]*list.Element // of *cached
	order *list.List                 // front: evicted last
	size  int64
}

func newMemLRU(max int64, gauge prometheus.Gauge) *memLRU {
	return &memLRU{max: max, gauge: gauge, items: make(map[chunkKey]*list.Element), order: list.New()}
}

func (l *memLRU) has(k chunkKey) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.items[k] != nil
}

// get returns k's data. keep moves the entry to the front (a hot chunk
// others will read again); otherwise it moves to the back, to be evicted
// first (a read-ahead chunk its replaying reader has now passed).
func (l *memLRU) get(k chunkKey, keep bool) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	el := l.items[k]
	if el == nil {
		return nil, false
	}
	if keep {
		l.order.MoveToFront(el)
	} else {
		l.order.MoveToBack(el)
	}
	return el.Value.(*cached).data, true
}

// put adds k unless it is there already or larger than the whole tier,
// evicting from the back until the tier fits its bound.
func (l *memLRU) put(k chunkKey, data []byte) {
	size := int64(len(data))
	if size > l.max {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.items[k] != nil {
		return
	}
	l.items[k] = l.order.PushFront(&cached{key: k, data: data, size: size})
	l.size += size
	for l.size > l.max {
		el := l.order.Back()
		e := el.Value.(*cached)
		l.order.Remove(el)
		delete(l.items, e.key)
		l.size -= e.size
	}
	l.gauge.Set(float64(l.size))
}

// bytes is the size of what the tier holds.
func (l *memLRU) bytes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}
