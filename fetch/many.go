package fetch

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/siltdata/silt/metastore"
)

// PartRead is one partition of a ReadMany call: what to read, and how it
// went.
type PartRead struct {
	TP       metastore.TopicPartition
	Offset   int64
	MaxBytes int64
	// Committed reads for a read_committed consumer (see ReadCommitted).
	Committed bool

	// Records and Err are as Read returns them (ReadCommitted with
	// Committed, and Aborted then its aborted transactions), and Offsets
	// the partition's offsets (known even when the records are not).
	Records []byte
	Aborted []metastore.AbortedTxn
	Offsets metastore.PartitionOffsets
	Err     error
	// Ready is false when the partition's data was not read in time: it
	// answers no records and no error this time, and its read goes on
	// into the cache for the next fetch.
	Ready bool
}

// manyReadConcurrency bounds the chunk reads one ReadMany call has in
// flight; backgroundReads bounds those of every call together, including
// the ones left running after their call returned.
const (
	manyReadConcurrency = 16
	backgroundReads     = 64
	// backgroundTimeout bounds a read left running after its fetch
	// answered.
	backgroundTimeout = 30 * time.Second
)

// ReadMany reads many partitions for one fetch, and answers by deadline
// with what is ready:
//
//   - Index lookups that the cache cannot answer go to the store in one
//     round trip for all of them (metastore.BulkReads).
//   - Partitions whose data is in memory are read first, in the order of
//     parts (a fetch's budget goes to partitions in request order). The
//     others' chunks are read concurrently, starting at parts[turn] and
//     wrapping around (the caller rotates turn across fetches, so that
//     when not all can be read in time every partition gets its turn).
//     Reads stop being started once maxTotal bytes are ready: the
//     response could not carry more.
//   - At the deadline ReadMany returns. Reads still running go on into the
//     cache (bounded, and until Close), so the next fetch finds them; their
//     partitions answer no records, with their offsets, this time.
//
// A partition error (out of range, unknown partition, a failed read)
// is in its Err, with Ready set.
func (r *Reader) ReadMany(ctx context.Context, parts []*PartRead, turn int, maxTotal int64, deadline time.Time) {
	type plan struct {
		p       *PartRead
		batches []metastore.Batch
	}
	var (
		plans   []plan
		misses  []*PartRead
		queries []metastore.BatchesQuery
		gens    []uint64
	)
	for _, p := range parts {
		batches, offs, gen, ok, behind := r.index.lookup(p.TP, p.Offset, p.MaxBytes, r.cfg.PrefetchMinLag, p.Committed)
		if ok {
			r.m.lookups.WithLabelValues("cache").Inc()
			p.Offsets = offs
			plans = append(plans, plan{p, batches})
			continue
		}
		r.m.lookups.WithLabelValues("store").Inc()
		misses = append(misses, p)
		gens = append(gens, gen)
		queries = append(queries, metastore.BatchesQuery{TopicPartition: p.TP, Offset: p.Offset, MaxBytes: lookupBytes(p.MaxBytes, behind)})
	}
	if len(misses) > 0 {
		res, err := r.store.BatchesMany(ctx, queries)
		for i, p := range misses {
			switch {
			case err != nil:
				p.Err, p.Ready = err, true
			case res[i].Err != nil:
				p.Offsets, p.Err, p.Ready = res[i].Offsets, res[i].Err, true
			default:
				var batches []metastore.Batch
				batches, p.Offsets, p.Err = r.looked(p.TP, gens[i], p.Offset, p.MaxBytes, res[i].Batches, res[i].Offsets)
				if p.Err != nil {
					p.Ready = true
					continue
				}
				plans = append(plans, plan{p, batches})
			}
		}
	}
	// Keep the callers' order among the partitions to read.
	order := make(map[*PartRead]int, len(parts))
	for i, p := range parts {
		order[p] = i
	}
	todo := make([]plan, 0, len(plans))
	for _, pl := range plans {
		stop := pl.p.Offsets.HighWatermark
		if pl.p.Committed {
			stop = pl.p.Offsets.LastStableOffset
		}
		if len(pl.batches) == 0 || pl.p.Offset >= stop {
			pl.p.Ready = true // nothing to read
			continue
		}
		todo = append(todo, pl)
	}
	slices.SortFunc(todo, func(a, b plan) int { return cmp.Compare(order[a.p], order[b.p]) })

	type done struct {
		p       *PartRead
		recs    []byte
		aborted []metastore.AbortedTxn
		err     error
	}
	results := make(chan done, len(todo)) // never blocks a read that outlives the call
	var (
		ready    int64
		inFlight int
		timer    = time.NewTimer(time.Until(deadline))
		expired  bool
	)
	defer timer.Stop()
	collect := func(d done) {
		inFlight--
		d.p.Records, d.p.Aborted, d.p.Err, d.p.Ready = d.recs, d.aborted, d.err, true
		ready += int64(len(d.recs))
	}
	// First what memory holds, in request order: no GET to wait for.
	cold := todo[:0:0]
	for _, pl := range todo {
		if ready >= maxTotal || !r.inMemory(pl.batches) {
			cold = append(cold, pl)
			continue
		}
		recs, next, err := r.materialize(ctx, pl.p.TP, pl.p.Offset, pl.p.MaxBytes, pl.batches, pl.p.Offsets, pl.p.Committed)
		var aborted []metastore.AbortedTxn
		if err == nil && pl.p.Committed {
			aborted, err = r.aborted(ctx, pl.p.TP, pl.p.Offset, next, pl.p.Offsets, len(recs))
		}
		inFlight++
		collect(done{pl.p, recs, aborted, err})
	}
	// Then the rest, from this fetch's turn on.
	if n := len(cold); n > 0 && len(parts) > 0 {
		first := turn % len(parts)
		at := slices.IndexFunc(cold, func(pl plan) bool { return order[pl.p] >= first })
		if at > 0 {
			cold = append(cold[at:], cold[:at]...)
		}
	}
	local := make(chan struct{}, manyReadConcurrency)
	for _, pl := range cold {
		if ready >= maxTotal || expired || ctx.Err() != nil {
			break
		}
		// A slot of this call and one of every call's.
		started := false
		for !started && !expired && ctx.Err() == nil {
			select {
			case local <- struct{}{}:
				select {
				case r.bgSlots <- struct{}{}:
					started = true
				case d := <-results:
					<-local
					collect(d)
				case <-timer.C:
					<-local
					expired = true
				case <-ctx.Done():
					<-local
				}
			case d := <-results:
				collect(d)
			case <-timer.C:
				expired = true
			case <-ctx.Done():
			}
		}
		if !started {
			break
		}
		inFlight++
		pl := pl
		r.bg.Add(1)
		go func() {
			defer r.bg.Done()
			defer func() { <-r.bgSlots }()
			// Not the fetch's context: a read that outlives its fetch
			// finishes into the cache for the next one.
			rctx, cancel := context.WithTimeout(r.bgCtx, backgroundTimeout)
			defer cancel()
			recs, next, err := r.materialize(rctx, pl.p.TP, pl.p.Offset, pl.p.MaxBytes, pl.batches, pl.p.Offsets, pl.p.Committed)
			if err != nil && r.chunks.bucket.IsNotFound(err) {
				// As Read does: the cached index named a deleted
				// object; look the partition up again.
				r.index.forget(pl.p.TP)
				recs, _, next, err = r.read(rctx, pl.p.TP, pl.p.Offset, pl.p.MaxBytes, pl.p.Committed)
			}
			var aborted []metastore.AbortedTxn
			if err == nil && pl.p.Committed {
				aborted, err = r.aborted(rctx, pl.p.TP, pl.p.Offset, next, pl.p.Offsets, len(recs))
			}
			results <- done{pl.p, recs, aborted, err}
			<-local
		}()
	}
	for inFlight > 0 && !expired && ctx.Err() == nil {
		select {
		case d := <-results:
			collect(d)
		case <-timer.C:
			expired = true
		case <-ctx.Done():
		}
	}
	if inFlight > 0 {
		r.m.lateReads.Add(float64(inFlight))
	}
}

// inMemory reports whether every chunk batches need is in a memory tier.
func (r *Reader) inMemory(batches []metastore.Batch) bool {
	for _, b := range batches {
		if b.IsMarker() {
			continue
		}
		k := chunkKey{seg: b.SegmentKey, offset: b.ChunkOffset, length: b.ChunkLength}
		if !r.chunks.mem.has(k) && !r.chunks.pre.has(k) {
			return false
		}
	}
	return true
}

// OffsetsMany is Offsets for many partitions: current cached offsets
// where there are, one store round trip for the rest. results[i] answers
// tps[i].
func (r *Reader) OffsetsMany(ctx context.Context, tps []metastore.TopicPartition) ([]metastore.OffsetsResult, error) {
	out := make([]metastore.OffsetsResult, len(tps))
	var (
		missTPs []metastore.TopicPartition
		missAt  []int
	)
	for i, tp := range tps {
		if offs, ok := r.index.offsets(tp); ok {
			out[i].Offsets = offs
			continue
		}
		missTPs = append(missTPs, tp)
		missAt = append(missAt, i)
	}
	if len(missTPs) == 0 {
		return out, nil
	}
	res, err := r.store.OffsetsMany(ctx, missTPs)
	if err != nil {
		return nil, err
	}
	for j, i := range missAt {
		out[i] = res[j]
	}
	return out, nil
}
