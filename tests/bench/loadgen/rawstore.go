package loadgen

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siltdata/silt/segment/objstore"
)

// RawConfig is a raw object-store load: the physical limit silt's
// numbers are compared with. Sizes and concurrency should be silt's own
// (the ingest flush size and upload concurrency, the read path's chunk
// size and read concurrency) so the comparison is like for like.
type RawConfig struct {
	ObjectSize     int           // bytes per PUT (silt: FlushBytes at saturation)
	PutConcurrency int           // PUTs in flight (silt: UploadConcurrency)
	ChunkSize      int           // bytes per range GET (silt: one partition's chunk)
	GetConcurrency int           // GETs in flight (silt: chunk read concurrency)
	Duration       time.Duration // per phase
	Prefix         string        // key prefix of the objects written
}

// RawResult is one phase (PUT or GET) of a raw load.
type RawResult struct {
	Ops     int64
	Bytes   int64
	Elapsed time.Duration
	Latency *Samples
	Errors  int64
	// MachineCPU is the CPU time the whole machine was busy during the
	// phase (the client here and the store's server, plus anything else
	// running), ClientCPU this process's and MinIOCPU that of the MinIO
	// server this process started (the harness's); -1 when unknown.
	MachineCPU, ClientCPU, MinIOCPU float64
}

// cpuMark is the CPU counters at the start of a raw phase.
type cpuMark struct {
	busy, self float64
	tree       map[string]float64
}

func markCPU() cpuMark {
	m := cpuMark{busy: -1, self: -1}
	if v, _, err := MachineCPU(); err == nil {
		m.busy = v
	}
	if v, err := CPUWithChildren(os.Getpid()); err == nil {
		m.self = v
	}
	m.tree, _ = DescendantsCPU(os.Getpid())
	return m
}

func (r *RawResult) setCPU(before cpuMark) {
	after := markCPU()
	r.MachineCPU, r.ClientCPU = -1, -1
	if before.busy >= 0 && after.busy >= 0 {
		r.MachineCPU = after.busy - before.busy
	}
	if before.self >= 0 && after.self >= 0 {
		r.ClientCPU = after.self - before.self
	}
	r.MinIOCPU = treeDelta(before.tree, after.tree, "minio")
}

// Throughput is bytes per second.
func (r RawResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / r.Elapsed.Seconds()
}

// RawPut writes cfg.ObjectSize objects from cfg.PutConcurrency workers
// for cfg.Duration and returns the keys written.
func RawPut(ctx context.Context, b objstore.Bucket, cfg RawConfig) (RawResult, []string, error) {
	body := make([]byte, cfg.ObjectSize)
	_, _ = crand.Read(body)
	var (
		res   = RawResult{Latency: &Samples{}}
		mu    sync.Mutex // mu guards keys
		keys  []string
		ops   atomic.Int64
		errs  atomic.Int64
		first firstError
		wg    sync.WaitGroup
		busy  = markCPU()
		start = time.Now()
		end   = start.Add(cfg.Duration)
	)
	for w := range cfg.PutConcurrency {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil && time.Now().Before(end); i++ {
				key := fmt.Sprintf("%s/put-%d-%d-%d", cfg.Prefix, cfg.ObjectSize, w, i)
				t0 := time.Now()
				if err := b.Put(ctx, key, body); err != nil {
					errs.Add(1)
					first.set(err)
					continue
				}
				res.Latency.Add(time.Since(t0))
				ops.Add(1)
				mu.Lock()
				keys = append(keys, key)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.setCPU(busy)
	res.Ops, res.Errors = ops.Load(), errs.Load()
	res.Bytes = res.Ops * int64(cfg.ObjectSize)
	if res.Ops == 0 {
		return res, nil, fmt.Errorf("raw put: nothing written: %w", first.get())
	}
	return res, keys, nil
}

// RawGet reads cfg.ChunkSize ranges at random chunk-aligned offsets of
// keys (objects of cfg.ObjectSize) from cfg.GetConcurrency workers for
// cfg.Duration.
func RawGet(ctx context.Context, b objstore.Bucket, keys []string, cfg RawConfig) (RawResult, error) {
	if len(keys) == 0 || cfg.ChunkSize <= 0 {
		return RawResult{}, fmt.Errorf("raw get: no objects to read")
	}
	chunks := max(1, cfg.ObjectSize/cfg.ChunkSize)
	var (
		res   = RawResult{Latency: &Samples{}}
		ops   atomic.Int64
		bytes atomic.Int64
		errs  atomic.Int64
		first firstError
		wg    sync.WaitGroup
		busy  = markCPU()
		start = time.Now()
		end   = start.Add(cfg.Duration)
	)
	for range cfg.GetConcurrency {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				key := keys[rand.IntN(len(keys))]
				off := int64(rand.IntN(chunks)) * int64(cfg.ChunkSize)
				t0 := time.Now()
				data, err := b.GetRange(ctx, key, off, int64(cfg.ChunkSize))
				if err != nil {
					errs.Add(1)
					first.set(err)
					continue
				}
				res.Latency.Add(time.Since(t0))
				ops.Add(1)
				bytes.Add(int64(len(data)))
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.setCPU(busy)
	res.Ops, res.Bytes, res.Errors = ops.Load(), bytes.Load(), errs.Load()
	if res.Ops == 0 {
		return res, fmt.Errorf("raw get: nothing read: %w", first.get())
	}
	return res, nil
}

// firstError keeps the first error reported by concurrent workers.
type firstError struct {
	mu  sync.Mutex // mu guards err
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
