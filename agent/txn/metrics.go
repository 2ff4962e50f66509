package txn

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	ends        *prometheus.CounterVec
	endDuration prometheus.Histogram
	claims      prometheus.Counter
	fenced      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		ends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_transactions_ended_total",
			Help: "Transactions ended by this agent's coordinator, by result: commit, abort (EndTxn), timeout (aborted past transaction.timeout.ms), fence (aborted by a new producer instance's InitProducerId).",
		}, []string{"result"}),
		endDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "silt_transaction_end_duration_seconds",
			Help:    "Time of the one metastore transaction that writes an EndTxn's markers and state.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		claims: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_transaction_claims_total",
			Help: "Transactional ids this agent claimed as their coordinator.",
		}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_transaction_coordinator_fenced_total",
			Help: "Coordinator writes refused because another agent had claimed the transactional id since.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.ends, m.endDuration, m.claims, m.fenced} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range []string{"commit", "abort", "timeout", "fence"} {
		m.ends.WithLabelValues(r)
	}
	return m, nil
}
