package ingest

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	segmentBytes   prometheus.Histogram
	segments       *prometheus.CounterVec
	buffered       prometheus.Gauge
	commitDuration prometheus.Histogram
	uploadDuration prometheus.Histogram
	failures       *prometheus.CounterVec
	produceLatency prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		segmentBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "silt_ingest_segment_bytes",
			Help:    "Batch bytes per cut segment.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10), // 1 KiB .. 256 MiB
		}),
		segments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_ingest_segments_total",
			Help: "Segments cut, by reason (bytes: full, time: flush interval, early: every producer stalled on it, backpressure: produce blocked on the buffered-bytes bound, close).",
		}, []string{"reason"}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "silt_ingest_buffered_bytes",
			Help: "Batch bytes appended but not yet committed or failed.",
		}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "silt_ingest_commit_duration_seconds",
			Help:    "Metastore commit time per segment.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		uploadDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "silt_ingest_upload_duration_seconds",
			Help:    "Encode and upload time per segment.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_ingest_failures_total",
			Help: "Segment failures by stage (encode, pending, upload, commit).",
		}, []string{"stage"}),
		produceLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "silt_produce_latency_seconds",
			Help:    "Time from Append to the segment's commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	// Create every series up front so dashboards and alerts see zeros,
	// not gaps, before the first cut or failure.
	for _, reason := range []string{"bytes", "time", "early", "backpressure", "close"} {
		m.segments.WithLabelValues(reason)
	}
	for _, stage := range []string{"encode", "pending", "upload", "commit"} {
		m.failures.WithLabelValues(stage)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.segmentBytes, m.segments, m.buffered, m.commitDuration, m.uploadDuration, m.failures, m.produceLatency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register ingest metrics: %w", err)
		}
	}
	return m, nil
}
