// Package ingest is the agent's produce pipeline. PLACEHOLDER: the
// produce-path helper replaces this file, keeping New/Close/Config.
package ingest

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/segment/objstore"
)

// Config sets the produce pipeline's trade-offs.
type Config struct{}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{} }

// Pipeline batches produced record batches into segment objects.
type Pipeline struct{}

// New starts a pipeline. onCommit is called after each segment commit with
// the partitions that got new batches (to wake waiting fetches).
func New(cfg Config, store metastore.Store, bucket objstore.Bucket, logger *slog.Logger, reg prometheus.Registerer, onCommit func([]metastore.TopicPartition)) (*Pipeline, error) {
	return &Pipeline{}, nil
}

// Close flushes and commits what is buffered, answers it, and stops.
func (p *Pipeline) Close(ctx context.Context) error { return nil }
