package janitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/topicconfig"
)

// Store is what the janitor needs of the metastore.
type Store interface {
	metastore.Leases
	metastore.Lifecycle
	Topics(ctx context.Context) ([]metastore.Topic, error)
	AddPendingSegment(ctx context.Context, key string) error
	// AbortedTransactions tells log compaction by key which batches
	// belong to aborted transactions.
	AbortedTransactions(ctx context.Context, tp metastore.TopicPartition, from, upTo int64) ([]metastore.AbortedTxn, error)
}

// LeaseName is the metastore lease the janitors of a cluster share.
const LeaseName = "janitor"

// Config is a janitor's configuration. DefaultConfig gives every field a
// default; Validate reports what is wrong.
type Config struct {
	// Holder names this janitor in the lease (the agent's id).
	Holder string
	// LeaseTTL is how long the lease lives without renewal; it is renewed
	// every LeaseTTL/3, and the others try to take it as often. Longer: a
	// dead janitor's successor waits longer; shorter: a metastore hiccup
	// interrupts a pass sooner.
	LeaseTTL time.Duration
	// Interval is the time between the starts of two passes.
	Interval time.Duration
	// Defaults are the cluster's topic config defaults (retention), as
	// the agents describe them.
	Defaults topicconfig.Defaults
	// Grace is how long a dead segment's object stays before it is
	// deleted: it must exceed how long any agent uses index rows it
	// looked up (a fetch in flight; cached tail indexes re-read the index
	// when an object is gone). Longer costs storage, never correctness.
	Grace time.Duration
	// OrphanAge is how old a never-committed segment must be before it is
	// claimed as an orphan: well above an upload's and a commit's
	// timeouts, so a slow commit is rarely refused (a refused one fails
	// its produce requests retriably).
	OrphanAge time.Duration
	// OrphanScanInterval is how often the bucket is listed for objects the
	// metastore does not know; 0 never lists it.
	OrphanScanInterval time.Duration
	// SegmentPrefix is the key prefix of produce segments (the agents'
	// ingest.Config.KeyPrefix); compacted objects are under
	// CompactedPrefix.
	SegmentPrefix string
	// Compact enables compaction into per-partition objects.
	Compact bool
	// CompactAge is how old data must be before it is rewritten into
	// per-partition objects: younger data is read by tailing consumers
	// from the agents' caches anyway.
	CompactAge time.Duration
	// ChunkBytes is the target raw size of a compacted chunk, which is
	// one index row and one range GET for a replaying reader: larger means
	// fewer rows and GETs, and more bytes read for a reader that wants
	// only the start of one.
	ChunkBytes int
	// ObjectBytes bounds a compacted object, and the data one rewrite
	// reads and holds in memory.
	ObjectBytes int
	// ReadConcurrency bounds the range GETs of one rewrite.
	ReadConcurrency int
	// CleanerKeys bounds the keys log compaction maps at once (about 64
	// bytes of memory each): a partition with more keys in its dirty
	// part is cleaned in several passes.
	CleanerKeys int
	// ProducerExpiration removes the idempotence state of producers idle
	// this long (Kafka's producer.id.expiration.ms; a returning producer
	// is then unknown, and any sequence is accepted, as in Kafka).
	ProducerExpiration time.Duration
	// BatchRows bounds the rows one metastore transaction touches.
	BatchRows int
	// DeleteConcurrency bounds object deletions in flight.
	DeleteConcurrency int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		LeaseTTL:           15 * time.Second,
		Interval:           30 * time.Second,
		Defaults:           topicconfig.KafkaDefaults(),
		Grace:              5 * time.Minute,
		OrphanAge:          10 * time.Minute,
		OrphanScanInterval: time.Hour,
		SegmentPrefix:      "segments/",
		Compact:            true,
		CompactAge:         5 * time.Minute,
		ChunkBytes:         4 << 20,
		ObjectBytes:        16 << 20,
		ReadConcurrency:    8,
		CleanerKeys:        1 << 20,
		ProducerExpiration: 24 * time.Hour,
		BatchRows:          1000,
		DeleteConcurrency:  8,
	}
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var errs []error
	if c.Holder == "" {
		errs = append(errs, errors.New("holder is empty"))
	}
	if c.LeaseTTL < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("lease ttl %s: must be at least 100ms", c.LeaseTTL))
	}
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("interval %s: must be positive", c.Interval))
	}
	if c.Grace < 0 || c.OrphanAge < 0 || c.OrphanScanInterval < 0 || c.CompactAge < 0 || c.ProducerExpiration < 0 {
		errs = append(errs, errors.New("grace, orphan age, orphan scan interval, compact age and producer expiration must not be negative"))
	}
	if c.SegmentPrefix == "" || c.SegmentPrefix == CompactedPrefix {
		errs = append(errs, fmt.Errorf("segment prefix %q: must be set and differ from %q", c.SegmentPrefix, CompactedPrefix))
	}
	if c.ChunkBytes < 1<<10 || c.ObjectBytes < c.ChunkBytes {
		errs = append(errs, fmt.Errorf("chunk bytes %d, object bytes %d: chunks of at least 1 KiB, objects at least a chunk", c.ChunkBytes, c.ObjectBytes))
	}
	if c.ObjectBytes > 256<<20 {
		errs = append(errs, fmt.Errorf("object bytes %d: at most 256 MiB", c.ObjectBytes))
	}
	if c.ReadConcurrency < 1 || c.DeleteConcurrency < 1 || c.BatchRows < 1 || c.CleanerKeys < 1 {
		errs = append(errs, errors.New("read concurrency, delete concurrency, batch rows and cleaner keys must be at least 1"))
	}
	return errors.Join(errs...)
}

// Janitor runs the storage lifecycle. Run drives it; RunOnce makes one
// pass (tests, tools).
type Janitor struct {
	cfg    Config
	store  Store
	bucket objstore.Bucket
	logger *slog.Logger
	m      *metrics

	// The pass's own state, touched only by the goroutine running a
	// pass (one at a time: Run starts the next only after the last one
	// ended).
	producerCursor metastore.ProducerCursor
	lastOrphanScan time.Time
	// cleanable sums the dirty bytes of compacted topics seen by a pass.
	cleanable int64
}

// New returns a janitor. It does nothing until Run or RunOnce.
func New(cfg Config, store Store, bucket objstore.Bucket, logger *slog.Logger, reg prometheus.Registerer) (*Janitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("janitor config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Janitor{cfg: cfg, store: store, bucket: bucket, logger: logger.With("component", "janitor"), m: m}, nil
}

// Run takes part in the election until ctx ends: it tries to take the
// lease every LeaseTTL/3 and, while it holds it, makes a pass every
// Interval. A pass is stopped as soon as the lease is lost. On return the
// lease is released, so another agent takes over at once. It returns
// ctx's error.
func (j *Janitor) Run(ctx context.Context) error {
	tick := time.NewTicker(j.cfg.LeaseTTL / 3)
	defer tick.Stop()
	var (
		held       metastore.Lease
		leading    bool
		passDone   chan struct{} // open while a pass runs
		passCancel context.CancelFunc
		passLease  metastore.Lease
		next       = time.Now() // when the next pass is due
		due        = time.NewTimer(0)
	)
	defer due.Stop()
	stopPass := func() {
		if passCancel != nil {
			passCancel()
			<-passDone
			passDone, passCancel = nil, nil
		}
	}
	defer func() {
		stopPass()
		if leading {
			rctx, cancel := context.WithTimeout(context.Background(), j.cfg.LeaseTTL/3)
			if err := j.store.ReleaseLease(rctx, held); err != nil {
				j.logger.Warn("could not release the janitor lease; it expires by itself", "err", err)
			}
			cancel()
			j.m.leader.Set(0)
		}
	}()
	for {
		l, ok, err := j.hold(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			j.logger.Warn("janitor lease", "err", err)
			ok = false // unknown: stop working until it is held again
		}
		if ok != leading || ok && l.Epoch != held.Epoch {
			if ok {
				j.logger.Info("janitor lease taken: this agent runs the storage lifecycle", "epoch", l.Epoch)
			} else if leading {
				j.logger.Info("janitor lease lost", "epoch", held.Epoch)
			}
		}
		leading, held = ok, l
		j.m.leader.Set(boolFloat(leading))
		if passDone != nil && (!leading || passLease.Epoch != held.Epoch) {
			stopPass() // its writes would be refused anyway
		}
		if passDone != nil {
			select {
			case <-passDone:
				passDone, passCancel = nil, nil
			default:
			}
		}
		if leading && passDone == nil && !time.Now().Before(next) {
			pctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			passDone, passCancel, passLease = done, cancel, held
			next = time.Now().Add(j.cfg.Interval)
			go func() {
				defer close(done)
				defer cancel()
				_ = j.pass(pctx, passLease) // logged and counted by pass
			}()
		}
		due.Reset(max(time.Until(next), 0))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case <-passDone: // nil channel when no pass runs: never ready
		case <-due.C:
		}
	}
}

// hold takes or renews the lease.
func (j *Janitor) hold(ctx context.Context) (metastore.Lease, bool, error) {
	hctx, cancel := context.WithTimeout(ctx, j.cfg.LeaseTTL/3)
	defer cancel()
	return j.store.AcquireLease(hctx, LeaseName, j.cfg.Holder, j.cfg.LeaseTTL)
}

// RunOnce takes the lease and makes one pass under it, then releases it.
// It returns ErrNotLeader when another janitor holds the lease.
func (j *Janitor) RunOnce(ctx context.Context) error {
	l, ok, err := j.hold(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotLeader
	}
	defer func() {
		if err := j.store.ReleaseLease(context.WithoutCancel(ctx), l); err != nil {
			j.logger.Warn("release janitor lease", "err", err)
		}
	}()
	// Renew the lease while the pass runs, as Run does.
	pctx, cancel := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		tick := time.NewTicker(j.cfg.LeaseTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-tick.C:
				if err := j.store.RenewLease(pctx, l, j.cfg.LeaseTTL); err != nil && pctx.Err() == nil {
					j.logger.Warn("janitor lease lost during a pass", "err", err)
					cancel()
					return
				}
			}
		}
	}()
	err = j.pass(pctx, l)
	cancel()
	<-renewed
	return err
}

// ErrNotLeader is RunOnce's answer when another janitor holds the lease.
var ErrNotLeader = errors.New("janitor: another agent holds the janitor lease")

// pass makes one pass under lease l (see the package comment); it stops
// at the first error of a step that needs the lease, and returns it.
func (j *Janitor) pass(ctx context.Context, l metastore.Lease) error {
	start := time.Now()
	err := j.steps(ctx, l)
	j.m.passes.Inc()
	j.m.passDuration.Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
	case errors.Is(err, metastore.ErrLeaseLost), ctx.Err() != nil:
		j.logger.Info("janitor pass stopped", "reason", err)
	default:
		j.m.failures.Inc()
		j.logger.Warn("janitor pass failed; the next one retries", "err", err)
	}
	return err
}

func (j *Janitor) steps(ctx context.Context, l metastore.Lease) error {
	topics, err := j.store.Topics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	configs := make(map[metastore.TopicID]topicconfig.Config, len(topics))
	names := make(map[metastore.TopicID]string, len(topics))
	for _, t := range topics {
		configs[t.ID] = topicconfig.Parse(t.Configs, j.cfg.Defaults)
		names[t.ID] = t.Name
	}
	type compactable struct {
		p     metastore.StoredPartition
		clean bool // log compaction by key too
	}
	var todo []compactable
	for after := int64(0); ; {
		parts, err := j.store.StoredPartitions(ctx, after, j.cfg.BatchRows)
		if err != nil {
			return fmt.Errorf("list partitions: %w", err)
		}
		for _, p := range parts {
			after = p.ID
			cfg, live := configs[p.Topic]
			if !p.Deleted && !live {
				continue // created after Topics: the next pass
			}
			if err := j.retain(ctx, l, p, cfg, names[p.Topic]); err != nil {
				return err
			}
			if !p.Deleted && j.cfg.Compact && (max(p.CompactedOffset, p.LogStartOffset) < p.HighWatermark ||
				cfg.Compact && max(p.CleanedOffset, p.LogStartOffset) < p.CompactedOffset) {
				todo = append(todo, compactable{p, cfg.Compact})
			}
		}
		if len(parts) < j.cfg.BatchRows {
			break
		}
	}
	// Compaction reads what retention left; log compaction by key works
	// on what compaction into per-partition objects wrote.
	j.cleanable = 0
	for _, c := range todo {
		if err := j.compact(ctx, l, &c.p, names[c.p.Topic]); err != nil {
			return err
		}
		if !c.clean {
			continue
		}
		if err := j.clean(ctx, l, &c.p, configs[c.p.Topic], names[c.p.Topic]); err != nil {
			return err
		}
	}
	j.m.cleanableBytes.Set(float64(j.cleanable))
	if err := j.claimOrphans(ctx, l); err != nil {
		return err
	}
	if err := j.reclaim(ctx, l); err != nil {
		return err
	}
	if j.cfg.OrphanScanInterval > 0 && time.Since(j.lastOrphanScan) >= j.cfg.OrphanScanInterval {
		if err := j.scanBucket(ctx); err != nil {
			return err
		}
		j.lastOrphanScan = time.Now()
	}
	if err := j.expireProducers(ctx, l); err != nil {
		return err
	}
	return j.observe(ctx)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
