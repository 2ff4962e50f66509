package fetch

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/siltdata/silt/segment"
	"github.com/siltdata/silt/segment/objstore"
)

// chunkKey names one chunk: a byte range of a segment object.
type chunkKey struct {
	seg    string
	offset int64
	length int64
}

// chunks serves decoded chunks: memory LRU, then disk LRU, then the bucket,
// with concurrent misses of one chunk sharing one load.
type chunks struct {
	bucket objstore.Bucket
	m      *metrics
	dir    string // empty: no disk tier

	diskMax int64

	// pre is the prefetch pool: decoded chunks read ahead for replaying
	// readers. It is separate from mem so read-ahead of old data never
	// evicts the hot tail, and a chunk read from it is not promoted to mem
	// for the same reason.
	pre *memLRU
	// mem is the hot tier of decoded chunks.
	mem *memLRU

	// diskMu guards disk, diskLRU and diskSize (not the files' contents:
	// a file is written under a temporary name and renamed into place
	// before it is indexed, and a read of a file evicted meanwhile is a
	// miss).
	diskMu   sync.Mutex
	disk     map[chunkKey]*list.Element // of *cached (data nil)
	diskLRU  *list.List
	diskSize int64

	// flightMu guards flight.
	flightMu sync.Mutex
	flight   map[chunkKey]*load

	// onJoin, when set (tests), is called when a reader joins another's
	// load instead of starting its own.
	onJoin func()
	// onPrefetch, when set (tests), is called after each prefetch load
	// that read the chunk, with its error.
	onPrefetch func(chunkKey, error)
}

type cached struct {
	key  chunkKey
	data []byte // decoded payload (memory tier only)
	size int64
}

// load is one chunk read in progress that concurrent readers share.
type load struct {
	done chan struct{}
	data []byte
	err  error
}

func newChunks(cfg Config, bucket objstore.Bucket, m *metrics) (*chunks, error) {
	c := &chunks{
		bucket:  bucket,
		m:       m,
		dir:     cfg.CacheDir,
		diskMax: cfg.CacheBytes,
		pre:     newMemLRU(cfg.PrefetchBytes, m.cacheBytes.WithLabelValues("prefetch")),
		mem:     newMemLRU(cfg.MemoryBytes, m.cacheBytes.WithLabelValues("memory")),
		disk:    make(map[chunkKey]*list.Element),
		diskLRU: list.New(),
		flight:  make(map[chunkKey]*load),
	}
	if c.dir != "" {
		// The disk cache survives nothing: a previous run's files have no
		// index and are removed.
		if err := os.RemoveAll(c.dir); err != nil {
			return nil, fmt.Errorf("clear cache dir: %w", err)
		}
		if err := os.MkdirAll(c.dir, 0o755); err != nil {
			return nil, fmt.Errorf("create cache dir: %w", err)
		}
	}
	return c, nil
}

// get returns the decoded payload of a chunk. The caller must not modify it.
func (c *chunks) get(ctx context.Context, k chunkKey) ([]byte, error) {
	for {
		if data, ok := c.mem.get(k, true); ok {
			c.m.hits.WithLabelValues("memory").Inc()
			return data, nil
		}
		if data, ok := c.pre.get(k, false); ok {
			c.m.hits.WithLabelValues("prefetch").Inc()
			return data, nil
		}
		c.flightMu.Lock()
		l, shared := c.flight[k]
		if !shared {
			l = &load{done: make(chan struct{})}
			c.flight[k] = l
		}
		c.flightMu.Unlock()
		if shared && c.onJoin != nil {
			c.onJoin()
		}

		if !shared {
			// A load that ended between our cache checks and the flight
			// check (often a prefetch's) left the chunk cached.
			if data, ok := c.mem.get(k, true); ok {
				c.m.hits.WithLabelValues("memory").Inc()
				l.data = data
			} else if data, ok := c.pre.get(k, false); ok {
				c.m.hits.WithLabelValues("prefetch").Inc()
				l.data = data
			} else {
				l.data, l.err = c.load(ctx, k, false)
			}
			c.flightMu.Lock()
			delete(c.flight, k)
			c.flightMu.Unlock()
			close(l.done)
			return l.data, l.err
		}
		select {
		case <-l.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		// The loader's own context may have ended; ours has not: retry.
		if l.err != nil && (errors.Is(l.err, context.Canceled) || errors.Is(l.err, context.DeadlineExceeded)) && ctx.Err() == nil {
			continue
		}
		return l.data, l.err
	}
}

// prefetch loads a chunk into the prefetch pool unless it is cached or
// being loaded already. Readers asking for it meanwhile share the load.
func (c *chunks) prefetch(ctx context.Context, k chunkKey) error {
	if c.mem.has(k) || c.pre.has(k) {
		return nil
	}
	c.flightMu.Lock()
	if c.flight[k] != nil {
		c.flightMu.Unlock()
		return nil
	}
	l := &load{done: make(chan struct{})}
	c.flight[k] = l
	c.flightMu.Unlock()
	l.data, l.err = c.load(ctx, k, true)
	c.flightMu.Lock()
	delete(c.flight, k)
	c.flightMu.Unlock()
	close(l.done)
	if c.onPrefetch != nil {
		c.onPrefetch(k, l.err)
	}
	return l.err
}

// load reads a chunk from disk or the bucket and caches it: in mem, or
// for a prefetch in the prefetch pool (and not on disk, whose LRU the
// read-ahead of old data would churn).
func (c *chunks) load(ctx context.Context, k chunkKey, prefetch bool) ([]byte, error) {
	raw, ok := c.diskGet(k)
	if ok {
		c.m.hits.WithLabelValues("disk").Inc()
	} else {
		c.m.misses.Inc()
		var err error
		raw, err = c.bucket.GetRange(ctx, k.seg, k.offset, k.length)
		if err != nil {
			return nil, fmt.Errorf("read chunk %s@%d: %w", k.seg, k.offset, err)
		}
		if int64(len(raw)) != k.length {
			return nil, fmt.Errorf("read chunk %s@%d: got %d bytes, want %d", k.seg, k.offset, len(raw), k.length)
		}
	}
	// The cache only reads data (Read copies batches out to patch
	// them), so an uncompressed chunk's payload stays inside raw: one
	// copy less of every byte read cold (12% of the agent's CPU in a
	// replay of incompressible data).
	data, err := segment.DecodeChunkShared(raw)
	if err != nil {
		return nil, fmt.Errorf("decode chunk %s@%d: %w", k.seg, k.offset, err)
	}
	if prefetch {
		c.m.prefetches.Inc()
		c.m.prefetchBytes.Add(float64(len(raw)))
		c.pre.put(k, data)
		return data, nil
	}
	if !ok {
		c.diskPut(k, raw)
	}
	c.mem.put(k, data)
	return data, nil
}

func (c *chunks) path(k chunkKey) string {
	sum := sha256.Sum256([]byte(k.seg))
	return filepath.Join(c.dir, hex.EncodeToString(sum[:16])+"-"+strconv.FormatInt(k.offset, 10))
}

func (c *chunks) diskGet(k chunkKey) ([]byte, bool) {
	if c.dir == "" {
		return nil, false
	}
	c.diskMu.Lock()
	el := c.disk[k]
	if el != nil {
		c.diskLRU.MoveToFront(el)
	}
	c.diskMu.Unlock()
	if el == nil {
		return nil, false
	}
	raw, err := os.ReadFile(c.path(k))
	if err != nil || int64(len(raw)) != k.length {
		return nil, false // evicted meanwhile, or damaged: read the bucket
	}
	return raw, true
}

// diskPut stores a raw chunk. Failures only cost a later bucket read.
func (c *chunks) diskPut(k chunkKey, raw []byte) {
	size := int64(len(raw))
	if c.dir == "" || size > c.diskMax {
		return
	}
	p := c.path(k)
	tmp, err := os.CreateTemp(c.dir, "tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(raw)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), p) != nil {
		_ = os.Remove(tmp.Name())
		return
	}
	c.diskMu.Lock()
	defer c.diskMu.Unlock()
	if c.disk[k] != nil {
		return
	}
	c.disk[k] = c.diskLRU.PushFront(&cached{key: k, size: size})
	c.diskSize += size
	for c.diskSize > c.diskMax {
		el := c.diskLRU.Back()
		e := el.Value.(*cached)
		c.diskLRU.Remove(el)
		delete(c.disk, e.key)
		c.diskSize -= e.size
		_ = os.Remove(c.path(e.key))
	}
	c.m.cacheBytes.WithLabelValues("disk").Set(float64(c.diskSize))
}

// sizes reports the bytes held by each tier (for tests and metrics).
func (c *chunks) sizes() (mem, disk int64) {
	mem = c.mem.bytes()
	c.diskMu.Lock()
	disk = c.diskSize
	c.diskMu.Unlock()
	return mem, disk
}
