// Package fetch is silt's read path. PLACEHOLDER: the fetch-path helper
// replaces this file, keeping New/Notify/Close/Config.
package fetch

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/segment/objstore"
)

// Config sets the read path's trade-offs.
type Config struct{}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{} }

// Reader serves fetches.
type Reader struct{}

// New returns a Reader.
func New(cfg Config, store metastore.Store, bucket objstore.Bucket, logger *slog.Logger, reg prometheus.Registerer) (*Reader, error) {
	return &Reader{}, nil
}

// Notify wakes fetches waiting on the given partitions.
func (r *Reader) Notify(tps []metastore.TopicPartition) {}

// Close stops the reader.
func (r *Reader) Close() error { return nil }
