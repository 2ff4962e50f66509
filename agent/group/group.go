// Package group is the consumer-group coordinator. PLACEHOLDER: the
// group helper replaces this file, keeping New/Close/Config.
package group

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltdata/silt/metastore"
)

// Config sets the coordinator's trade-offs.
type Config struct{}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{} }

// Coordinator runs consumer groups.
type Coordinator struct{}

// New returns a Coordinator.
func New(cfg Config, store metastore.Store, logger *slog.Logger, reg prometheus.Registerer) (*Coordinator, error) {
	return &Coordinator{}, nil
}

// Close stops the coordinator.
func (c *Coordinator) Close() error { return nil }
