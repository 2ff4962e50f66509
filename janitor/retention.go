package janitor

import (
	"context"
	"fmt"
	"time"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/topicconfig"
)

// retain applies one partition's retention (or, for a deleted topic,
// removes all its rows and then the partition), in steps of BatchRows.
func (j *Janitor) retain(ctx context.Context, l metastore.Lease, p metastore.StoredPartition, cfg topicconfig.Config, topic string) error {
	req := metastore.RetainRequest{PartitionID: p.ID, RetainBytes: -1, MaxRows: j.cfg.BatchRows}
	switch {
	case p.Deleted:
		req.All = true
	case cfg.Delete:
		if cfg.RetentionMs >= 0 {
			cutoff := time.Now().UnixMilli() - cfg.RetentionMs
			// 0 disables the rule; a cutoff at or below it keeps all.
			req.TimestampBelow = max(cutoff, 1)
		}
		req.RetainBytes = cfg.RetentionBytes
	}
	if !req.All && !frontGoes(p, req) {
		return nil // the first row stays, so every row does: no transaction
	}
	start := p.LogStartOffset
	for {
		res, err := j.store.Retain(ctx, l, req)
		if err != nil {
			return fmt.Errorf("retention of partition %d of %s: %w", p.Partition, topic, err)
		}
		for reason, r := range res.Removed {
			if r.Rows > 0 {
				j.m.retainedRows.WithLabelValues(reasonNames[reason]).Add(float64(r.Rows))
				j.m.retainedBytes.WithLabelValues(reasonNames[reason]).Add(float64(r.Bytes))
			}
		}
		if res.Moved > 0 {
			j.m.startMoves.Inc()
		}
		if !res.More {
			if res.LogStartOffset != start && !p.Deleted {
				j.logger.Debug("log start offset moved", "topic", topic, "partition", p.Partition, "from", start, "to", res.LogStartOffset)
			}
			break
		}
	}
	if !p.Deleted {
		return nil
	}
	dropped, err := j.store.DropPartition(ctx, l, p.ID)
	if err != nil {
		return fmt.Errorf("drop partition %d of a deleted topic: %w", p.Partition, err)
	}
	if dropped {
		j.logger.Debug("deleted topic's partition reclaimed", "topic_id", p.Topic.String(), "partition", p.Partition)
	}
	return nil
}

// frontGoes reports whether Retain would remove the partition's first row
// (the rules of metastore.Lifecycle.Retain, applied to what
// StoredPartitions said of it).
func frontGoes(p metastore.StoredPartition, req metastore.RetainRequest) bool {
	f := p.Front
	return p.FrontOK && (f.LastOffset < p.LogStartOffset ||
		req.TimestampBelow != 0 && f.MaxTimestamp < req.TimestampBelow ||
		req.RetainBytes >= 0 && p.Bytes-int64(f.Len) >= req.RetainBytes)
}

// reasonNames label the retention metrics, by metastore.Retain* reason.
var reasonNames = [metastore.RetainReasons]string{
	metastore.RetainBelowStart: "delete_records",
	metastore.RetainTime:       "time",
	metastore.RetainSize:       "size",
	metastore.RetainDeleted:    "topic_deleted",
}
