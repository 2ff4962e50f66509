package objstore

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Operation label values.
const (
	opPut    = "put"
	opGet    = "get"
	opDelete = "delete"
	opList   = "list"
)

// bucketMetrics are the collectors WithMetrics registers.
type bucketMetrics struct {
	requests *prometheus.CounterVec
	failures *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
}

// metricsBucket is the Bucket decorator WithMetrics returns.
type metricsBucket struct {
	Bucket
	m *bucketMetrics
}

// WithMetrics wraps b so every operation is counted and timed:
//
//	silt_objstore_requests_total{op}
//	silt_objstore_request_failures_total{op}
//	silt_objstore_request_duration_seconds{op}
//	silt_objstore_bytes_total{op="put"|"get"}
//
// op is put, get (GetRange), delete or list. A GetRange of a missing
// object, an unsatisfiable range and a canceled context are answers, not
// failures of the store, so they are not counted as failures; neither is
// an error returned by List's callback. A nil reg registers nothing. When
// the collectors are already registered in reg (a second bucket), they are
// shared.
func WithMetrics(b Bucket, reg prometheus.Registerer) Bucket {
	m := &bucketMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_objstore_requests_total",
			Help: "Object store operations started, by operation.",
		}, []string{"op"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_objstore_request_failures_total",
			Help: "Object store operations that failed, by operation (not-found reads excluded).",
		}, []string{"op"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "silt_objstore_request_duration_seconds",
			Help:    "Object store operation latency, by operation.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"op"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_objstore_bytes_total",
			Help: "Object bytes transferred by put and get.",
		}, []string{"op"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.failures = register(reg, m.failures)
		m.duration = register(reg, m.duration)
		m.bytes = register(reg, m.bytes)
	}
	// Create every series up front so dashboards see zeros, not gaps.
	for _, op := range []string{opPut, opGet, opDelete, opList} {
		m.requests.WithLabelValues(op)
		m.failures.WithLabelValues(op)
		m.duration.WithLabelValues(op)
	}
	m.bytes.WithLabelValues(opPut)
	m.bytes.WithLabelValues(opGet)
	return &metricsBucket{Bucket: b, m: m}
}

// register registers c, or returns the collector already registered under
// the same description.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a conflicting collector under our name is a programming error
	}
	return c
}

func (b *metricsBucket) observe(op string, start time.Time, err error) {
	b.m.requests.WithLabelValues(op).Inc()
	b.m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, context.Canceled) {
		b.m.failures.WithLabelValues(op).Inc()
	}
}

func (b *metricsBucket) Put(ctx context.Context, key string, body []byte) error {
	start := time.Now()
	err := b.Bucket.Put(ctx, key, body)
	b.observe(opPut, start, err)
	if err == nil {
		b.m.bytes.WithLabelValues(opPut).Add(float64(len(body)))
	}
	return err
}

func (b *metricsBucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	start := time.Now()
	data, err := b.Bucket.GetRange(ctx, key, offset, length)
	failure := err
	if err != nil && (b.Bucket.IsNotFound(err) || errors.Is(err, ErrRangeNotSatisfiable)) {
		failure = nil
	}
	b.observe(opGet, start, failure)
	b.m.bytes.WithLabelValues(opGet).Add(float64(len(data)))
	return data, err
}

func (b *metricsBucket) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := b.Bucket.Delete(ctx, key)
	b.observe(opDelete, start, err)
	return err
}

func (b *metricsBucket) List(ctx context.Context, prefix string, fn func(Attrs) error) error {
	start := time.Now()
	var fnErr error
	err := b.Bucket.List(ctx, prefix, func(a Attrs) error {
		fnErr = fn(a)
		return fnErr
	})
	failure := err
	if fnErr != nil && errors.Is(err, fnErr) {
		failure = nil
	}
	b.observe(opList, start, failure)
	return err
}
