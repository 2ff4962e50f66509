package loadgen

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Samples keeps every latency observation so that high quantiles (p999)
// are exact: a bucketed histogram (Prometheus's) is only as precise as
// its bucket bounds, which is not enough to compare p999 against a
// flush interval. A million samples cost 8 MB, which a benchmark can
// afford.
type Samples struct {
	mu     sync.Mutex // mu guards vals and sorted
	vals   []time.Duration
	sorted bool
}

// Add records one observation. Safe for concurrent use.
func (s *Samples) Add(d time.Duration) {
	s.mu.Lock()
	s.vals = append(s.vals, d)
	s.sorted = false
	s.mu.Unlock()
}

// Merge adds every observation of o.
func (s *Samples) Merge(o *Samples) {
	o.mu.Lock()
	vals := slices.Clone(o.vals)
	o.mu.Unlock()
	s.mu.Lock()
	s.vals = append(s.vals, vals...)
	s.sorted = false
	s.mu.Unlock()
}

// Len is the number of observations (0 for a nil Samples).
func (s *Samples) Len() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.vals)
}

// Quantile returns the q-quantile (0 < q <= 1) by the nearest-rank method,
// or 0 when there are no observations (or s is nil).
func (s *Samples) Quantile(q float64) time.Duration {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.vals) == 0 {
		return 0
	}
	if !s.sorted {
		slices.Sort(s.vals)
		s.sorted = true
	}
	rank := int(math.Ceil(q*float64(len(s.vals)))) - 1
	rank = max(0, min(rank, len(s.vals)-1))
	return s.vals[rank]
}
