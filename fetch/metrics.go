package fetch

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	hits         *prometheus.CounterVec
	misses       prometheus.Counter
	cacheBytes   *prometheus.GaugeVec
	bytes        prometheus.Counter
	waitDuration prometheus.Histogram
	lookups      *prometheus.CounterVec
	// prefetches and prefetchBytes count chunks read ahead (raw bytes).
	prefetches    prometheus.Counter
	prefetchBytes prometheus.Counter
	// seeded counts decoded bytes of this agent's own segments cached
	// at upload.
	seeded prometheus.Counter
	// lateReads counts partition reads of a multi-partition fetch that
	// were not done by its deadline (they finish into the cache).
	lateReads prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_fetch_cache_hits_total",
			Help: "Chunk reads served by a cache tier (memory, disk, prefetch).",
		}, []string{"tier"}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_fetch_cache_misses_total",
			Help: "Chunk reads that went to the object store.",
		}),
		cacheBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "silt_fetch_cache_bytes",
			Help: "Bytes held by each chunk cache tier (memory and prefetch: decoded, disk: raw).",
		}, []string{"tier"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_fetch_bytes_total",
			Help: "Record batch bytes returned by reads.",
		}),
		waitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "silt_fetch_wait_duration_seconds",
			Help:    "Time fetches spent waiting for new data (long poll).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_fetch_index_lookups_total",
			Help: "Batch index lookups, by source: cache, store (a reader's miss), prefetch (read-ahead planning).",
		}, []string{"source"}),
		prefetches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_fetch_prefetch_total",
			Help: "Chunks read ahead for sequential readers behind the tail.",
		}),
		prefetchBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_fetch_prefetch_bytes_total",
			Help: "Bytes of chunks read ahead (as stored).",
		}),
		seeded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_fetch_seeded_bytes_total",
			Help: "Decoded bytes of segments this agent uploaded, cached in memory for tailing consumers.",
		}),
		lateReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_fetch_late_reads_total",
			Help: "Partition reads of a fetch not done by its deadline: the partition answered no records that time, and the read finished into the cache.",
		}),
	}
	// Zeros, not gaps, before the first read of each tier.
	for _, tier := range []string{"memory", "disk", "prefetch"} {
		m.hits.WithLabelValues(tier)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.hits, m.misses, m.cacheBytes, m.bytes, m.waitDuration, m.lookups, m.prefetches, m.prefetchBytes, m.seeded, m.lateReads} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register fetch metrics: %w", err)
		}
	}
	return m, nil
}
