package main

import (
	"time"

	"github.com/siltdata/silt/agent"
	"github.com/siltdata/silt/janitor"
	"github.com/siltdata/silt/topicconfig"
)

// applyTuning maps the produce-buffer and read-cache flags onto the ingest
// and fetch configurations (their defaults are the flags' defaults).
func applyTuning(cfg *agent.Config, o options, cacheDir string) {
	cfg.Ingest.FlushBytes = int(o.flushBytes)
	cfg.Ingest.FlushInterval = o.flushInterval
	cfg.Ingest.EarlyCut = o.earlyCut
	cfg.Ingest.EarlyCutMinInterval = o.earlyCutMin
	cfg.Ingest.MaxBufferedBytes = int(o.maxBufferedBytes)
	cfg.QueuedRequestBytes = int64(o.maxQueuedBytes)
	cfg.Fetch.CacheDir = cacheDir
	cfg.Fetch.CacheBytes = int64(o.cacheBytes)
	cfg.TopicDefaults = topicDefaults(o)
	// Zero: the package default (options built without flags).
	if o.txnMaxTimeout > 0 {
		cfg.Txn.MaxTimeout = o.txnMaxTimeout
	}
	if o.txnAbortInterval > 0 {
		cfg.Txn.AbortInterval = o.txnAbortInterval
	}
	if o.txnIDExpiration > 0 {
		cfg.Txn.IDExpiration = o.txnIDExpiration
	}
	if o.txnMaxPartitions > 0 {
		cfg.Txn.MaxPartitions = o.txnMaxPartitions
	}
}

// topicDefaults are the cluster's topic config defaults the flags set.
func topicDefaults(o options) topicconfig.Defaults {
	return topicconfig.Defaults{Retention: time.Duration(o.defaultRetention), RetentionBytes: int64(o.defaultRetentionBytes)}
}

// janitorConfig maps the options onto janitor.Config; holder is the
// agent's id. The janitor's lease lives as long as the agent's own, so a
// dead agent's janitor is replaced about when its partitions move.
func janitorConfig(o options, holder, keyPrefix string, leaseTTL time.Duration) janitor.Config {
	c := janitor.DefaultConfig()
	c.Holder = holder
	c.LeaseTTL = leaseTTL
	c.Defaults = topicDefaults(o)
	c.Interval = o.janitorInterval
	c.Grace = o.reclaimGrace
	c.OrphanAge = o.orphanAge
	c.Compact = o.compaction
	c.CompactAge = o.compactionAge
	c.ChunkBytes, c.ObjectBytes = int(o.compactionChunkBytes), int(o.compactionObjectBytes)
	c.ProducerExpiration = o.producerIDExpiration
	c.CleanerKeys = o.cleanerKeys
	c.SegmentPrefix = keyPrefix
	return c
}
