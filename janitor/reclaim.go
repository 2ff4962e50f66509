package janitor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/segment/objstore"
)

// claimOrphans claims segments pending for longer than OrphanAge: from
// then on they can never be committed, and reclaim deletes them once
// Grace has passed as well.
func (j *Janitor) claimOrphans(ctx context.Context, l metastore.Lease) error {
	for {
		n, err := j.store.ClaimOrphans(ctx, l, j.cfg.OrphanAge, j.cfg.BatchRows)
		if err != nil {
			return fmt.Errorf("claim orphans: %w", err)
		}
		if n > 0 {
			j.m.orphansFound.WithLabelValues("pending").Add(float64(n))
			j.logger.Info("orphaned segments claimed (uploaded, never committed)", "count", n)
		}
		if n < j.cfg.BatchRows {
			return nil
		}
	}
}

// reclaim deletes the objects of segments dead for at least Grace, then
// their rows.
func (j *Janitor) reclaim(ctx context.Context, l metastore.Lease) error {
	for {
		dead, err := j.store.DeadSegments(ctx, j.cfg.Grace, j.cfg.BatchRows)
		if err != nil {
			return fmt.Errorf("dead segments: %w", err)
		}
		if len(dead) == 0 {
			return nil
		}
		keys := make([]string, len(dead))
		sizes := make(map[string]int64, len(dead))
		for i, d := range dead {
			keys[i] = d.Key
			sizes[d.Key] = d.Size
		}
		deleted, err := j.deleteObjects(ctx, keys)
		for _, k := range deleted {
			j.m.reclaimedObjects.Inc()
			j.m.reclaimedBytes.Add(float64(sizes[k]))
		}
		if ferr := j.store.ForgetSegments(ctx, l, deleted); ferr != nil {
			return fmt.Errorf("forget deleted segments: %w", errors.Join(ferr, err))
		}
		if err != nil {
			return err
		}
		if len(dead) < j.cfg.BatchRows {
			return nil
		}
	}
}

// deleteObjects deletes keys, DeleteConcurrency at a time, and returns
// those deleted (a missing object counts as deleted) with the first
// error.
func (j *Janitor) deleteObjects(ctx context.Context, keys []string) ([]string, error) {
	var (
		mu      sync.Mutex
		deleted []string
		first   error
		wg      sync.WaitGroup
		sem     = make(chan struct{}, j.cfg.DeleteConcurrency)
	)
	for _, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := j.bucket.Delete(ctx, k)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = fmt.Errorf("delete object %s: %w", k, err)
				}
				return
			}
			deleted = append(deleted, k)
		})
	}
	wg.Wait()
	return deleted, first
}

// scanPage is how many listed keys are looked up in the metastore at once.
const scanPage = 500

// scanBucket lists the bucket's segment and compacted objects and deletes
// those older than OrphanAge that the metastore does not know at all: an
// upload that landed after its pending row was claimed and forgotten, or
// one whose row was lost. A key is only ever recorded before its upload,
// so an object without a row can never become one anybody reads, and the
// scan needs no fence.
func (j *Janitor) scanBucket(ctx context.Context) error {
	cutoff := time.Now().Add(-j.cfg.OrphanAge)
	var page []string
	flush := func() error {
		if len(page) == 0 {
			return nil
		}
		known, err := j.store.KnownSegments(ctx, page)
		if err != nil {
			return fmt.Errorf("orphan scan: %w", err)
		}
		var unknown []string
		for _, k := range page {
			if !known[k] {
				unknown = append(unknown, k)
			}
		}
		page = page[:0]
		if len(unknown) == 0 {
			return nil
		}
		j.m.orphansFound.WithLabelValues("unknown").Add(float64(len(unknown)))
		deleted, err := j.deleteObjects(ctx, unknown)
		j.m.orphansDeleted.Add(float64(len(deleted)))
		j.logger.Info("objects unknown to the metastore deleted", "count", len(deleted))
		return err
	}
	for _, prefix := range []string{j.cfg.SegmentPrefix, CompactedPrefix} {
		err := j.bucket.List(ctx, prefix, func(a objstore.Attrs) error {
			if !a.LastModified.Before(cutoff) {
				return nil
			}
			page = append(page, a.Key)
			if len(page) == scanPage {
				return flush()
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("orphan scan of %s: %w", prefix, err)
		}
		if err := flush(); err != nil {
			return err
		}
	}
	return nil
}

// producerPages bounds the producer-state rows one pass scans for
// expiry, in pages of BatchRows; the scan goes on where it stopped in the
// next pass.
const producerPages = 100

func (j *Janitor) expireProducers(ctx context.Context, l metastore.Lease) error {
	for range producerPages {
		next, n, done, err := j.store.ExpireProducers(ctx, l, j.cfg.ProducerExpiration, j.producerCursor, j.cfg.BatchRows)
		if err != nil {
			return fmt.Errorf("expire producers: %w", err)
		}
		j.m.producersExpired.Add(float64(n))
		j.producerCursor = next
		if done {
			return nil
		}
	}
	return nil
}

// observe sets the storage gauges from the metastore's counters.
func (j *Janitor) observe(ctx context.Context) error {
	st, err := j.store.StorageStats(ctx)
	if err != nil {
		return fmt.Errorf("storage stats: %w", err)
	}
	j.m.topicBytes.Reset()
	j.m.topicRows.Reset()
	var backlog int64
	for name, t := range st.Topics {
		j.m.topicBytes.WithLabelValues(name).Set(float64(t.Bytes))
		j.m.topicRows.WithLabelValues(name).Set(float64(t.Rows))
		backlog += t.Uncompacted
	}
	j.m.backlog.Set(float64(backlog))
	for _, state := range []string{"pending", "committed", "dead"} {
		c := st.Segments[state]
		j.m.objects.WithLabelValues(state).Set(float64(c.Objects))
		j.m.objectBytes.WithLabelValues(state).Set(float64(c.Bytes))
	}
	j.m.compactedObjectsStored.Set(float64(st.CompactedSegments.Objects))
	return nil
}
