package share

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/siltdata/silt/groupconfig"
	"github.com/siltdata/silt/metastore"
)

// Partitions is the share-fetch path of one agent: it acquires records
// for ShareFetch and applies acknowledgements, each a compare-and-set of
// the share-partition's row (STATE.md). It holds no state that matters:
// a small cache of groups' configs, which it reads again every
// MetadataRefresh.
type Partitions struct {
	cfg     Config
	store   Store
	logger  *slog.Logger
	metrics *metrics // set by New (Coordinator) before use
	now     func() time.Time

	// mu guards configs.
	mu      sync.Mutex
	configs map[string]cachedConfig
}

type cachedConfig struct {
	at  time.Time
	cfg groupconfig.Group
}

// NewPartitions returns the share-fetch path over store.
func NewPartitions(cfg Config, store Store, logger *slog.Logger) *Partitions {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Partitions{cfg: cfg, store: store, logger: logger, now: time.Now, configs: map[string]cachedConfig{},
		metrics: &metrics{}}
}

// groupConfig is group's effective configs, read again every
// MetadataRefresh.
func (p *Partitions) groupConfig(ctx context.Context, group string) (groupconfig.Group, error) {
	p.mu.Lock()
	c, ok := p.configs[group]
	p.mu.Unlock()
	if ok && p.now().Sub(c.at) < p.cfg.MetadataRefresh {
		return c.cfg, nil
	}
	set, err := p.store.GroupConfigs(ctx, group)
	if err != nil {
		return groupconfig.Group{}, fmt.Errorf("group %s configs: %w", group, err)
	}
	g := groupconfig.Effective(p.cfg.Groups, set)
	p.mu.Lock()
	if len(p.configs) > 10000 {
		clear(p.configs) // a bound; it refills with the groups in use
	}
	p.configs[group] = cachedConfig{at: p.now(), cfg: g}
	p.mu.Unlock()
	return g, nil
}

// forget drops what the path cached of group (after its offsets were
// altered, its configs may be read again).
func (p *Partitions) forget(group string) {
	p.mu.Lock()
	delete(p.configs, group)
	p.mu.Unlock()
}

func limitsOf(g groupconfig.Group) Limits {
	return Limits{LockMs: g.ShareRecordLockDuration.Milliseconds(), DeliveryLimit: int32(g.ShareDeliveryCountLimit), MaxLocks: int64(g.ShareMaxRecordLocks)}
}

// LockDuration is a group's acquisition lock duration, as ShareFetch and
// ShareAcknowledge answer it.
func (p *Partitions) LockDuration(ctx context.Context, group string) time.Duration {
	g, err := p.groupConfig(ctx, group)
	if err != nil {
		return p.cfg.Groups.ShareRecordLockDuration
	}
	return g.ShareRecordLockDuration
}

// initialize makes sure the group has a row for tp, starting where reset
// says (earliest: the log start; latest: the high watermark; by_duration:
// the first record at or after now minus the duration).
func (p *Partitions) initialize(ctx context.Context, group string, tp metastore.TopicPartition, reset groupconfig.Reset) (metastore.SharePartition, error) {
	offs, err := p.store.Offsets(ctx, tp)
	if err != nil {
		return metastore.SharePartition{}, err
	}
	start := offs.HighWatermark
	switch reset.Kind {
	case groupconfig.ResetEarliest:
		start = offs.LogStartOffset
	case groupconfig.ResetByDuration:
		ts := p.now().Add(-reset.Duration).UnixMilli()
		entry, found, err := p.store.OffsetForTimestamp(ctx, tp, ts, offs.LogStartOffset)
		if err != nil {
			return metastore.SharePartition{}, err
		}
		if found {
			// The first batch whose records reach ts; records before ts
			// in it are delivered too (at least once, never skipped).
			start = max(entry.BaseOffset, offs.LogStartOffset)
		}
	}
	return p.store.InitSharePartition(ctx, group, metastore.SharePartition{TopicPartition: tp, StartOffset: start})
}

// row reads tp's row, initializing it when the group has none.
func (p *Partitions) row(ctx context.Context, group string, tp metastore.TopicPartition, g groupconfig.Group) (metastore.SharePartition, error) {
	row, found, err := p.store.SharePartition(ctx, group, tp)
	if err != nil || found {
		return row, err
	}
	return p.initialize(ctx, group, tp, g.ShareAutoOffsetReset)
}

// ReadFunc reads record batches of tp from offset, at most about maxBytes
// (at least one batch), and the partition's bounds: the fetch path's
// Reader.Read. Errors: fetch.ErrOffsetOutOfRange for an offset outside
// the log (the bounds are returned with it).
type ReadFunc func(ctx context.Context, tp metastore.TopicPartition, offset, maxBytes int64) ([]byte, metastore.PartitionOffsets, error)

// FetchResult is one partition's ShareFetch answer.
type FetchResult struct {
	Records  []byte     // whole batches covering the acquired ranges
	Acquired []Acquired // ranges and delivery counts
	// Wake is when records may become available again by lock expiry
	// (zero: none are locked); a fetch that found nothing waits until then
	// at most.
	Wake time.Time
}

// Fetch acquires for member up to maxRecords records of tp, reading at
// most about maxBytes: the records available again in the in-flight
// window first, then new ones, only ever records of the batches read (so
// nothing is acquired that is not returned). The acquisition is stored
// before the records are returned. isOutOfRange classifies read's error
// for an offset below the log start (retention), whose records are
// skipped.
func (p *Partitions) Fetch(ctx context.Context, group, member string, tp metastore.TopicPartition, maxRecords, maxBytes int64,
	read ReadFunc, isOutOfRange func(error) bool) (FetchResult, error) {
	g, err := p.groupConfig(ctx, group)
	if err != nil {
		return FetchResult{}, err
	}
	lim := limitsOf(g)
	for attempt := 0; attempt < p.cfg.UpdateRetries; attempt++ {
		row, err := p.row(ctx, group, tp, g)
		if err != nil {
			return FetchResult{}, err
		}
		st, err := decode(row.StartOffset, row.State)
		if err != nil {
			return FetchResult{}, fmt.Errorf("share partition %s %x/%d: %w", group, tp.Topic[:4], tp.Partition, err)
		}
		now := p.now().UnixMilli()
		before := row.State
		off, ok := st.nextFetch(now, lim)
		var res FetchResult
		skipped := false
		if ok {
			recs, offs, rerr := read(ctx, tp, off, maxBytes)
			switch {
			case rerr != nil && isOutOfRange(rerr) && off < offs.LogStartOffset:
				// The records left the log: nothing to deliver below its
				// start. Skip them and try again from there.
				st.skipTo(offs.LogStartOffset)
				skipped = true
			case rerr != nil && isOutOfRange(rerr):
				// Past the high watermark (the log was truncated by a
				// topic recreated under the name): nothing to read.
			case rerr != nil:
				return FetchResult{}, rerr
			case len(recs) > 0:
				last := lastOffset(recs)
				to := min(last, offs.HighWatermark-1)
				res.Acquired = st.acquire(member, off, to, maxRecords, now, lim)
				if len(res.Acquired) > 0 {
					res.Records = trimToAcquired(recs, res.Acquired[0].First, res.Acquired[len(res.Acquired)-1].Last)
				}
			}
		}
		if d := st.earliestDeadline(); d > 0 {
			res.Wake = time.UnixMilli(d)
		}
		next := st.encode()
		if st.start == row.StartOffset && string(next) == string(before) {
			return res, nil // nothing changed (nothing to acquire)
		}
		row.StartOffset, row.State = st.start, next
		err = p.store.UpdateSharePartition(ctx, group, row)
		if errors.Is(err, metastore.ErrShareStateChanged) {
			p.metrics.conflict()
			continue
		}
		if err != nil {
			return FetchResult{}, err
		}
		var n int64
		for _, a := range res.Acquired {
			n += a.Last - a.First + 1
		}
		p.metrics.addAcquired(n)
		if skipped {
			continue // skipped records that left the log: read again
		}
		return res, nil
	}
	return FetchResult{}, fmt.Errorf("fetch %s %x/%d: %w", group, tp.Topic[:4], tp.Partition, errContended)
}

// Acknowledge applies member's acknowledgement batches to tp (validated
// already with ValidateAcks). Errors: ErrRecordState (nothing applied). It
// reports whether records became available again.
func (p *Partitions) Acknowledge(ctx context.Context, group, member string, tp metastore.TopicPartition, batches []AckBatch) (bool, error) {
	g, err := p.groupConfig(ctx, group)
	if err != nil {
		return false, err
	}
	lim := limitsOf(g)
	for attempt := 0; attempt < p.cfg.UpdateRetries; attempt++ {
		row, found, err := p.store.SharePartition(ctx, group, tp)
		if err != nil {
			return false, err
		}
		if !found {
			return false, fmt.Errorf("%w: the group has no state for the partition", ErrRecordState)
		}
		st, err := decode(row.StartOffset, row.State)
		if err != nil {
			return false, err
		}
		released, err := st.acknowledge(member, batches, p.now().UnixMilli(), lim)
		if err != nil {
			return false, err
		}
		next := st.encode()
		if st.start == row.StartOffset && string(next) == string(row.State) {
			return false, nil
		}
		row.StartOffset, row.State = st.start, next
		err = p.store.UpdateSharePartition(ctx, group, row)
		if errors.Is(err, metastore.ErrShareStateChanged) {
			p.metrics.conflict()
			continue
		}
		if err != nil {
			return false, err
		}
		p.metrics.countAcks(batches)
		return released, nil
	}
	return false, fmt.Errorf("acknowledge %s %x/%d: %w", group, tp.Topic[:4], tp.Partition, errContended)
}

// ReleaseMember releases every record member holds in tps (its share
// session closed, its connection dropped, or it left the group). Failures
// are logged: the locks expire anyway.
func (p *Partitions) ReleaseMember(ctx context.Context, group, member string, tps []metastore.TopicPartition) (released []metastore.TopicPartition) {
	g, err := p.groupConfig(ctx, group)
	if err != nil {
		p.logger.Warn("releasing a member's records failed; their locks will expire", "group", group, "member", member, "err", err)
		return nil
	}
	lim := limitsOf(g)
	for _, tp := range tps {
		for attempt := 0; attempt < p.cfg.UpdateRetries; attempt++ {
			row, found, err := p.store.SharePartition(ctx, group, tp)
			if err != nil || !found {
				break
			}
			st, err := decode(row.StartOffset, row.State)
			if err != nil {
				break
			}
			any := st.releaseMember(member, p.now().UnixMilli(), lim)
			next := st.encode()
			if st.start == row.StartOffset && string(next) == string(row.State) {
				break
			}
			row.StartOffset, row.State = st.start, next
			err = p.store.UpdateSharePartition(ctx, group, row)
			if errors.Is(err, metastore.ErrShareStateChanged) {
				p.metrics.conflict()
				continue
			}
			if err != nil {
				p.logger.Warn("releasing a member's records failed; their locks will expire", "group", group, "member", member, "err", err)
				break
			}
			if any {
				released = append(released, tp)
			}
			break
		}
	}
	return released
}

// lastOffset is the last offset of the last whole batch in recs (Kafka
// record batch v2: base offset at 0, last offset delta at 23).
func lastOffset(recs []byte) int64 {
	last := int64(-1)
	for len(recs) >= 61 {
		size := int64(int32(binary.BigEndian.Uint32(recs[8:]))) + 12
		if size < 61 || size > int64(len(recs)) {
			break
		}
		base := int64(binary.BigEndian.Uint64(recs))
		last = base + int64(int32(binary.BigEndian.Uint32(recs[23:])))
		recs = recs[size:]
	}
	return last
}

// trimToAcquired keeps the batches of recs that hold records in [first,
// last].
func trimToAcquired(recs []byte, first, last int64) []byte {
	start, end := -1, 0
	pos := 0
	for len(recs[pos:]) >= 61 {
		b := recs[pos:]
		size := int(int32(binary.BigEndian.Uint32(b[8:]))) + 12
		if size < 61 || size > len(b) {
			break
		}
		base := int64(binary.BigEndian.Uint64(b))
		lastIn := base + int64(int32(binary.BigEndian.Uint32(b[23:])))
		if lastIn >= first && base <= last {
			if start < 0 {
				start = pos
			}
			end = pos + size
		}
		pos += size
	}
	if start < 0 {
		return nil
	}
	return recs[start:end]
}

func (m *metrics) conflict() {
	if m.conflicts != nil {
		m.conflicts.Inc()
	}
}

func (m *metrics) addAcquired(n int64) {
	if m.acquired != nil && n > 0 {
		m.acquired.Add(float64(n))
	}
}

var ackTypeNames = [...]string{"gap", "accept", "release", "reject", "renew"}

func (m *metrics) countAcks(batches []AckBatch) {
	if m.acknowledged == nil {
		return
	}
	for _, b := range batches {
		if len(b.Types) == 1 {
			if t := b.Types[0]; t >= 0 && int(t) < len(ackTypeNames) {
				m.acknowledged.WithLabelValues(ackTypeNames[t]).Add(float64(b.Last - b.First + 1))
			}
			continue
		}
		for _, t := range b.Types {
			if t >= 0 && int(t) < len(ackTypeNames) {
				m.acknowledged.WithLabelValues(ackTypeNames[t]).Inc()
			}
		}
	}
}
