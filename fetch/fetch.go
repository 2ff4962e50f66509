// Package fetch is silt's read path: it turns (partition, offset) into
// record batches with their real offsets. A lookup walks the metastore's
// batch index (with a per-partition tail cache, so a consumer tailing a
// partition does not query the store on every fetch), reads each batch's
// chunk from a bounded memory cache of decoded chunks, then a bounded disk
// cache of raw chunks, then a range GET of the segment object (concurrent
// misses of one chunk share one GET), and patches each batch's base offset.
// Sequential readers far behind the tail (replay) get the next chunks read
// ahead into a pool of their own (prefetch.go).
//
// Long polls wait on per-partition watchers that Notify wakes, so a commit
// wakes a waiting fetch at once and nothing polls.
//
// Lock order: Reader.idxMu, Reader.watchMu and the chunk cache's mutexes are
// never held together, and never across a store or bucket call.
package fetch

import (
	"errors"
	"fmt"
	"time"
)

// Config sets the read path's trade-offs.
type Config struct {
	// CacheDir holds raw chunks read from the bucket. Empty: no disk
	// cache (memory only). The directory's contents are deleted at start:
	// nothing on an agent's disk outlives it.
	CacheDir string
	// CacheBytes bounds the disk cache; least recently used chunks are
	// evicted first.
	CacheBytes int64
	// MemoryBytes bounds decoded chunks kept in memory, the hot tier that
	// serves tailing consumers without touching disk.
	MemoryBytes int64
	// IndexCacheEntries bounds how many partitions' tail indexes are kept.
	IndexCacheEntries int
	// IndexBatches bounds the batch index entries kept per partition.
	IndexBatches int
	// IndexMaxAge bounds how long a cached high watermark is trusted
	// without a Notify: commits made by other agents reach this one's
	// cache no later than this even if their notification is lost.
	IndexMaxAge time.Duration

	// PrefetchChunks is how many chunks are read ahead of a sequential
	// reader far behind the tail (replay). 0 turns read-ahead off.
	PrefetchChunks int
	// PrefetchAheadBytes bounds the stored bytes read ahead of one
	// reader (at least one chunk is).
	PrefetchAheadBytes int64
	// PrefetchBytes bounds the decoded chunks held for read-ahead, a
	// pool apart from MemoryBytes so replay does not evict the hot tail.
	PrefetchBytes int64
	// PrefetchConcurrency bounds the read-ahead GETs (and the batch
	// lookups planning them) in flight at once.
	PrefetchConcurrency int
	// PrefetchMinLag is how many offsets behind the high watermark a
	// reader must be for read-ahead: readers near the tail read what
	// was just committed, mostly from memory.
	PrefetchMinLag int64
}

// DefaultConfig returns the defaults: memory only, 256 MiB of decoded
// chunks, 10,000 partition indexes of up to 1,000 batches each, and
// read-ahead of 4 chunks (up to 32 MiB) per replaying reader into a
// 128 MiB pool, 8 loads at a time, for readers 1,000 offsets or more behind.
func DefaultConfig() Config {
	return Config{
		CacheBytes:        4 << 30,
		MemoryBytes:       256 << 20,
		IndexCacheEntries: 10000,
		IndexBatches:      1000,
		IndexMaxAge:       time.Second,

		PrefetchChunks:      4,
		PrefetchAheadBytes:  32 << 20,
		PrefetchBytes:       128 << 20,
		PrefetchConcurrency: 8,
		PrefetchMinLag:      1000,
	}
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var errs []error
	if c.CacheDir != "" && c.CacheBytes < 1 {
		errs = append(errs, fmt.Errorf("cache bytes %d: must be positive with a cache dir", c.CacheBytes))
	}
	if c.MemoryBytes < 0 {
		errs = append(errs, fmt.Errorf("memory bytes %d: must not be negative", c.MemoryBytes))
	}
	if c.IndexCacheEntries < 0 {
		errs = append(errs, fmt.Errorf("index cache entries %d: must not be negative", c.IndexCacheEntries))
	}
	if c.IndexBatches < 1 {
		errs = append(errs, fmt.Errorf("index batches %d: must be at least 1", c.IndexBatches))
	}
	if c.IndexMaxAge < 0 {
		errs = append(errs, fmt.Errorf("index max age %s: must not be negative", c.IndexMaxAge))
	}
	if c.PrefetchChunks < 0 {
		errs = append(errs, fmt.Errorf("prefetch chunks %d: must not be negative", c.PrefetchChunks))
	}
	if c.PrefetchChunks > 0 {
		if c.PrefetchAheadBytes < 1 {
			errs = append(errs, fmt.Errorf("prefetch ahead bytes %d: must be positive with prefetch chunks", c.PrefetchAheadBytes))
		}
		if c.PrefetchBytes < 1 {
			errs = append(errs, fmt.Errorf("prefetch bytes %d: must be positive with prefetch chunks", c.PrefetchBytes))
		}
		if c.PrefetchConcurrency < 1 {
			errs = append(errs, fmt.Errorf("prefetch concurrency %d: must be at least 1 with prefetch chunks", c.PrefetchConcurrency))
		}
	}
	if c.PrefetchMinLag < 0 {
		errs = append(errs, fmt.Errorf("prefetch min lag %d: must not be negative", c.PrefetchMinLag))
	}
	return errors.Join(errs...)
}

// Errors returned by Reader.Read.
var (
	// ErrOffsetOutOfRange means the offset is below the log start or above
	// the high watermark; Read returns the partition's offsets with it.
	ErrOffsetOutOfRange = errors.New("fetch: offset out of range")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("fetch: reader closed")
)
