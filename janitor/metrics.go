package janitor

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the janitor's Prometheus metrics. Counters count what this
// agent's janitor did while it led; the storage gauges are set by the
// leader's passes (a follower keeps the values of its last pass as
// leader, or none).
type metrics struct {
	leader       prometheus.Gauge
	passes       prometheus.Counter
	failures     prometheus.Counter
	passDuration prometheus.Histogram

	startMoves    prometheus.Counter
	retainedRows  *prometheus.CounterVec
	retainedBytes *prometheus.CounterVec

	compactedBytes         prometheus.Counter
	compactedRows          prometheus.Counter
	compactedObjects       prometheus.Counter
	compactReads           prometheus.Counter
	compactConflicts       prometheus.Counter
	backlog                prometheus.Gauge
	compactedObjectsStored prometheus.Gauge

	cleanableBytes      prometheus.Gauge
	dirtyRatio          *prometheus.GaugeVec
	cleanedBytes        prometheus.Counter
	cleanerRemovedBytes prometheus.Counter
	cleanerRuns         prometheus.Counter
	cleanerDuration     prometheus.Histogram

	reclaimedObjects prometheus.Counter
	reclaimedBytes   prometheus.Counter
	orphansFound     *prometheus.CounterVec
	orphansDeleted   prometheus.Counter
	producersExpired prometheus.Counter

	topicBytes  *prometheus.GaugeVec
	topicRows   *prometheus.GaugeVec
	objects     *prometheus.GaugeVec
	objectBytes *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "silt_janitor_leader",
			Help: "1 while this agent holds the janitor lease and runs the storage lifecycle."}),
		passes: prometheus.NewCounter(prometheus.CounterOpts{Name: "silt_janitor_passes_total",
			Help: "Storage lifecycle passes made."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "silt_janitor_pass_failures_total",
			Help: "Passes that stopped on an error (the next one retries)."}),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "silt_janitor_pass_duration_seconds",
			Help: "Duration of a storage lifecycle pass.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}),

		startMoves: prometheus.NewCounter(prometheus.CounterOpts{Name: "silt_retention_log_start_moves_total",
			Help: "Times retention moved a partition's log start offset."}),
		retainedRows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "silt_retention_removed_rows_total",
			Help: "Batch-index rows removed, by reason (time, size, delete_records, topic_deleted)."}, []string{"reason"}),
		retainedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "silt_retention_removed_bytes_total",
			Help: "Record batch bytes removed from the log, by reason."}, []string{"reason"}),

		compactedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "silt_compaction_bytes_total",
			Help: "Record batch bytes rewritten into compacted per-partition objects."}),
		compactedRows: prometheus.NewCounter(prometheus.CounterOpts{Name: "silt_compaction_rows_total",
			Help: "Batch-index rows replaced by compaction."}),
		compactedObjects: prometheus.NewCounter(prometheus.CounterOpts{Name: "silt_compaction_objects_total",
			Help: "Compacted objects written."}),
		compactReads: prometheus.NewCounter(prometheus.CounterOpts{Name: "silt_compaction_chunk_reads_total",
			Help: "Chunks read (range GETs) by compaction."}),
		compactConflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "silt_compaction_conflicts_total",
			Help: "Rewrites dropped because retention or DeleteRecords changed their rows meanwhile."}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "silt_compaction_backlog_bytes",
			Help: "Record batch bytes still in produce segments (not yet compacted), all topics."}),
		compactedObjectsStored: prometheus.NewGauge(prometheus.GaugeOpts{Name: "silt_storage_compacted_objects",
			Help: "Compacted objects stored (among the committed ones)."}),

		cleanableBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "silt_cleaner_cleanable_bytes",
			Help: "Bytes of compacted topics written since their last cleaning (the dirty part), at the last pass."}),
		dirtyRatio: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "silt_cleaner_dirty_ratio",
			Help: "Share of a compacted partition's cleanable log written since its last cleaning."}, []string{"topic", "partition"}),
		cleanedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "silt_cleaner_bytes_total",
			Help: "Record batch bytes log compaction by key read and filtered."}),
		cleanerRemovedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "silt_cleaner_removed_bytes_total",
			Help: "Record batch bytes log compaction by key removed (older values, expired tombstones)."}),
		cleanerRuns: prometheus.NewCounter(prometheus.CounterOpts{Name: "silt_cleaner_runs_total",
			Help: "Partition cleanings (log compaction by key)."}),
		cleanerDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "silt_cleaner_duration_seconds",
			Help: "Duration of one partition's cleaning.", Buckets: prometheus.ExponentialBuckets(0.005, 4, 10)}),

		reclaimedObjects: prometheus.NewCounter(prometheus.CounterOpts{Name: "silt_reclaimed_objects_total",
			Help: "Dead objects (no index row points into them) deleted after the grace period."}),
		reclaimedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "silt_reclaimed_bytes_total",
			Help: "Bytes of dead objects deleted."}),
		orphansFound: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "silt_orphans_found_total",
			Help: "Orphaned objects found: pending segments never committed (pending), objects the metastore does not know (unknown)."}, []string{"kind"}),
		orphansDeleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "silt_orphans_deleted_total",
			Help: "Objects unknown to the metastore deleted by the bucket scan (claimed pending orphans count as reclaimed objects)."}),
		producersExpired: prometheus.NewCounter(prometheus.CounterOpts{Name: "silt_producers_expired_total",
			Help: "Idempotent producer states removed after producer.id.expiration.ms without writes."}),

		topicBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "silt_storage_topic_bytes",
			Help: "Record batch bytes a topic's log holds (as producers sent them)."}, []string{"topic"}),
		topicRows: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "silt_storage_topic_index_rows",
			Help: "Batch-index rows of a topic in the metastore."}, []string{"topic"}),
		objects: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "silt_storage_objects",
			Help: "Objects in the bucket known to the metastore, by state (pending, committed, dead)."}, []string{"state"}),
		objectBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "silt_storage_object_bytes",
			Help: "Bytes of those objects, by state."}, []string{"state"}),
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.leader, m.passes, m.failures, m.passDuration, m.startMoves, m.retainedRows, m.retainedBytes,
		m.compactedBytes, m.compactedRows, m.compactedObjects, m.compactReads, m.compactConflicts, m.backlog, m.compactedObjectsStored,
		m.cleanableBytes, m.dirtyRatio, m.cleanedBytes, m.cleanerRemovedBytes, m.cleanerRuns, m.cleanerDuration,
		m.reclaimedObjects, m.reclaimedBytes, m.orphansFound, m.orphansDeleted, m.producersExpired,
		m.topicBytes, m.topicRows, m.objects, m.objectBytes} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}
