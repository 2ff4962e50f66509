package main

import "github.com/siltdata/silt/agent"

// applyTuning maps the produce-buffer and read-cache flags onto the ingest
// and fetch configurations (their defaults are the flags' defaults).
func applyTuning(cfg *agent.Config, o options, cacheDir string) {
	cfg.Ingest.FlushBytes = int(o.flushBytes)
	cfg.Ingest.FlushInterval = o.flushInterval
	cfg.Ingest.MaxBufferedBytes = int(o.maxBufferedBytes)
	cfg.QueuedRequestBytes = int64(o.maxQueuedBytes)
	cfg.Fetch.CacheDir = cacheDir
	cfg.Fetch.CacheBytes = int64(o.cacheBytes)
}
