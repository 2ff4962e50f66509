// Package ingest is the agent's produce pipeline: it gathers validated
// record batches of many partitions into one open segment, cuts the segment
// when it is large or old enough, uploads it to the object store under a
// unique key, commits it to the metastore in cut order, and only then
// answers the produce requests whose batches it holds.
//
// Goroutines (all owned by the Pipeline and stopped by Close):
//   - the timer loop cuts the open segment FlushInterval after its first
//     byte, or after the previous cut when that came less than
//     FlushInterval before the first byte (see cutDeadline);
//   - one upload goroutine per cut segment, at most UploadConcurrency of
//     them uploading at once;
//   - the committer commits uploaded segments strictly in cut order, so
//     pipelined produce requests of one producer keep their order.
//
// Lock order: Pipeline.mu is never held while calling the store, the bucket
// or onCommit.
package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/siltdata/silt/segment"
)

// Config sets the produce pipeline's trade-offs.
type Config struct {
	// FlushBytes cuts the open segment once it holds this many batch
	// bytes. Larger segments mean fewer PUTs and metastore commits per
	// byte, at the cost of memory and produce latency under load.
	FlushBytes int
	// FlushInterval cuts the open segment this long after its first byte
	// (the produce latency floor when traffic is light), or this long
	// after the previous cut when traffic is continuous, so that segments
	// are cut every FlushInterval then (see cutDeadline).
	FlushInterval time.Duration
	// MaxBufferedBytes bounds batch bytes appended but not yet committed
	// (or failed). Append blocks while it is reached (backpressure to the
	// producers) instead of letting memory grow when uploads or commits
	// are slow.
	MaxBufferedBytes int
	// UploadConcurrency bounds segment uploads in flight. Commits stay
	// serial; overlapping uploads hide object-store latency.
	UploadConcurrency int
	// KeyPrefix is prepended to every segment object key.
	KeyPrefix string
	// UploadTimeout bounds one segment upload; CommitTimeout bounds one
	// metastore commit. A segment that exceeds either fails its requests
	// with a retriable error.
	UploadTimeout time.Duration
	CommitTimeout time.Duration
	// EarlyCut cuts the open segment before FlushInterval when every
	// producer connection that appended within the last FlushInterval
	// has at least StalledRequests produce requests waiting for their
	// commit, all of them in the open segment, but never sooner than
	// EarlyCutMinInterval after the previous cut. An idempotent producer
	// (the default in every major client) keeps at most 5 requests in
	// flight per broker: once they are all in the open segment it sends
	// nothing more until that segment commits, so waiting for the flush
	// interval adds latency and gathers no more data. (A connection with
	// requests in segments already cut is not stalled: their commits let
	// it send more.) On, one producer's throughput is no longer capped at
	// 5 requests per flush interval; the price is smaller segments (more
	// PUTs per byte) under loads that keep every producer stalled.
	// Connections that pass no Source to AppendFrom are not counted.
	EarlyCut bool
	// EarlyCutMinInterval is the least time between a cut and an early
	// cut: the bound on the object PUT rate early cuts can cause.
	EarlyCutMinInterval time.Duration
}

// StalledRequests is how many produce requests a connection has waiting
// for their commit when the early cut counts it as stalled: the most an
// idempotent producer keeps in flight per broker (Kafka's limit for
// max.in.flight.requests.per.connection with idempotence).
const StalledRequests = 5

// DefaultConfig returns the defaults: 8 MiB or 250 ms segments, cut early
// (at most every 50 ms) when every producer is stalled, 64 MiB of
// buffered data, 4 concurrent uploads.
func DefaultConfig() Config {
	return Config{
		FlushBytes:          8 << 20,
		FlushInterval:       250 * time.Millisecond,
		MaxBufferedBytes:    64 << 20,
		UploadConcurrency:   4,
		KeyPrefix:           "segments/",
		UploadTimeout:       30 * time.Second,
		CommitTimeout:       10 * time.Second,
		EarlyCut:            true,
		EarlyCutMinInterval: 50 * time.Millisecond,
	}
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var errs []error
	if c.FlushBytes < 1 {
		errs = append(errs, fmt.Errorf("flush bytes %d: must be positive", c.FlushBytes))
	}
	if c.FlushBytes > segment.MaxChunkRawLength/2 {
		// One Append may add up to a request's size to a segment that
		// just fell short of FlushBytes; both must fit one chunk.
		errs = append(errs, fmt.Errorf("flush bytes %d: must be at most %d", c.FlushBytes, segment.MaxChunkRawLength/2))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("flush interval %s: must be positive", c.FlushInterval))
	}
	if c.MaxBufferedBytes < c.FlushBytes {
		errs = append(errs, fmt.Errorf("max buffered bytes %d: must be at least flush bytes %d", c.MaxBufferedBytes, c.FlushBytes))
	}
	if c.UploadConcurrency < 1 {
		errs = append(errs, fmt.Errorf("upload concurrency %d: must be at least 1", c.UploadConcurrency))
	}
	if c.UploadTimeout <= 0 {
		errs = append(errs, fmt.Errorf("upload timeout %s: must be positive", c.UploadTimeout))
	}
	if c.CommitTimeout <= 0 {
		errs = append(errs, fmt.Errorf("commit timeout %s: must be positive", c.CommitTimeout))
	}
	if c.EarlyCutMinInterval < 0 {
		errs = append(errs, fmt.Errorf("early cut min interval %s: must not be negative", c.EarlyCutMinInterval))
	}
	return errors.Join(errs...)
}

// Errors returned by the pipeline.
var (
	// ErrClosed is returned by Append after Close started.
	ErrClosed = errors.New("ingest: pipeline closed")
	// ErrSegmentFailed wraps the cause when a segment's upload or commit
	// failed (or an earlier segment's did, see Pipeline). Nothing of the
	// segment is visible to readers; the producer should retry, which is
	// what a retriable Kafka error code tells it.
	ErrSegmentFailed = errors.New("ingest: segment not committed")
	// ErrTooLarge is returned by Append for a call larger than a segment
	// chunk can hold.
	ErrTooLarge = errors.New("ingest: append larger than a segment chunk")
)
