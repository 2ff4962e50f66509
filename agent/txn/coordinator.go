package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltdata/silt/metastore"
)

// Config sets the coordinator's trade-offs. The names follow Kafka's
// broker settings.
type Config struct {
	// MaxTimeout bounds the transaction timeout a producer may ask for
	// (transaction.max.timeout.ms); InitProducerId beyond it answers
	// INVALID_TRANSACTION_TIMEOUT. An open transaction holds back every
	// read_committed consumer of its partitions for up to its timeout
	// when its producer dies.
	MaxTimeout time.Duration
	// AbortInterval is how often each agent looks for expired
	// transactions of the ids it coordinates
	// (transaction.abort.timed.out.transaction.cleanup.interval.ms): an
	// expired transaction is aborted within its timeout plus this.
	AbortInterval time.Duration
	// IDExpiration forgets transactional ids idle this long
	// (transactional.id.expiration.ms).
	IDExpiration time.Duration
	// MaxPartitions bounds the partitions and groups of one transaction,
	// and the offsets it stages: its end is one metastore transaction
	// that writes a marker into each partition.
	MaxPartitions int
	// StoreTimeout bounds one metastore call.
	StoreTimeout time.Duration
}

// DefaultConfig returns Kafka's defaults, and 10,000 partitions per
// transaction.
func DefaultConfig() Config {
	return Config{
		MaxTimeout:    15 * time.Minute,
		AbortInterval: 10 * time.Second,
		IDExpiration:  7 * 24 * time.Hour,
		MaxPartitions: 10000,
		StoreTimeout:  10 * time.Second,
	}
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	if c.MaxTimeout <= 0 || c.MaxTimeout > time.Duration(1<<31-1)*time.Millisecond {
		errs = append(errs, fmt.Errorf("max transaction timeout %s: must be positive and fit 2^31-1 ms", c.MaxTimeout))
	}
	if c.AbortInterval <= 0 {
		errs = append(errs, fmt.Errorf("abort interval %s: must be positive", c.AbortInterval))
	}
	if c.IDExpiration <= 0 {
		errs = append(errs, fmt.Errorf("transactional id expiration %s: must be positive", c.IDExpiration))
	}
	if c.MaxPartitions < 1 {
		errs = append(errs, fmt.Errorf("max partitions %d: must be at least 1", c.MaxPartitions))
	}
	if c.StoreTimeout <= 0 {
		errs = append(errs, fmt.Errorf("store timeout %s: must be positive", c.StoreTimeout))
	}
	return errors.Join(errs...)
}

// Errors of the coordinator; the metastore's (metastore.ErrProducerFenced
// and the others of metastore.Transactions) come through wrapped.
var (
	// ErrNotCoordinator means this agent does not coordinate the
	// transactional id now (another agent does, or it cannot vouch for
	// its lease, or the request was read across a lapse of it), or
	// another agent claimed the id since: NOT_COORDINATOR, and the
	// client looks the coordinator up again.
	ErrNotCoordinator = errors.New("transactional id not coordinated by this agent now")
	// ErrInvalidTimeout means a transaction timeout outside (0,
	// MaxTimeout]: INVALID_TRANSACTION_TIMEOUT.
	ErrInvalidTimeout = errors.New("invalid transaction timeout")
	// ErrClosed means the coordinator is closed.
	ErrClosed = errors.New("transaction coordinator closed")
)

// Ownership is what the coordinator asks its agent before it acts for a
// transactional id, as the group coordinator does (group.Ownership).
type Ownership interface {
	// Owns reports whether the agent coordinates id and can vouch, now,
	// that its lease has not lapsed; and the lease's term, which changes
	// whenever the agent registers anew.
	Owns(id string) (term uint64, ok bool)
}

// Lease is the agent's lease when it read a request: a request read
// without a held lease, or under another term than the coordinator's
// claim, was sent before whatever another coordinator did meanwhile, and
// is refused (ErrNotCoordinator).
type Lease struct {
	Term uint64
	Held bool
}

// Store is what the coordinator needs of the metastore.
type Store interface {
	metastore.Transactions
}

// Coordinator is one agent's transaction coordinator. It keeps no
// transaction state of its own: each request is one metastore transaction
// (see the package doc). What it keeps is its claims, the coordinator
// epochs its writes name.
type Coordinator struct {
	cfg     Config
	store   Store
	owner   Ownership
	logger  *slog.Logger
	metrics *metrics
	// written is told the partitions markers were written to, so the
	// agent's read path looks them up again and wakes its fetches.
	written func([]metastore.TopicPartition)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the sweeper

	// mu guards claims.
	mu     sync.Mutex
	claims map[string]claim
}

// claim is a coordinator epoch held for a transactional id, and the lease
// term it was taken under.
type claim struct {
	epoch int64
	term  uint64
}

// New returns a coordinator. written (may be nil) is told every partition
// a marker was written to.
func New(cfg Config, store Store, owner Ownership, written func([]metastore.TopicPartition), logger *slog.Logger, reg prometheus.Registerer) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("transaction coordinator config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if written == nil {
		written = func([]metastore.TopicPartition) {}
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	c := &Coordinator{cfg: cfg, store: store, owner: owner, logger: logger, metrics: m, written: written, claims: map[string]claim{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Start runs the sweeper, which aborts expired transactions of the ids
// this agent coordinates and forgets idle ids, until Close.
func (c *Coordinator) Start() {
	c.wg.Go(c.sweep)
}

// Close stops the sweeper.
func (c *Coordinator) Close() {
	c.cancel()
	c.wg.Wait()
}

// MaxTimeout is the largest transaction timeout a producer may ask for.
func (c *Coordinator) MaxTimeout() time.Duration { return c.cfg.MaxTimeout }

// Owns reports whether this agent coordinates id now.
func (c *Coordinator) Owns(id string) bool {
	_, ok := c.owner.Owns(id)
	if !ok {
		c.forget(id)
	}
	return ok
}

// claimFor returns the claim to write to id under: this agent must own id
// now, and l (the request's lease; nil for the coordinator's own work)
// must be held and of the current term. A claim of an earlier term is
// replaced.
func (c *Coordinator) claimFor(ctx context.Context, id string, l *Lease) (int64, error) {
	term, ok := c.owner.Owns(id)
	if !ok || l != nil && (!l.Held || l.Term != term) {
		c.forget(id)
		return 0, ErrNotCoordinator
	}
	c.mu.Lock()
	cl, have := c.claims[id]
	c.mu.Unlock()
	if have && cl.term == term {
		return cl.epoch, nil
	}
	sctx, cancel := context.WithTimeout(ctx, c.cfg.StoreTimeout)
	defer cancel()
	epoch, err := c.store.ClaimTransaction(sctx, id)
	if err != nil {
		return 0, err
	}
	c.metrics.claims.Inc()
	c.mu.Lock()
	c.claims[id] = claim{epoch: epoch, term: term}
	c.mu.Unlock()
	return epoch, nil
}

// forget drops the claim of an id this agent does not coordinate now.
func (c *Coordinator) forget(id string) {
	c.mu.Lock()
	delete(c.claims, id)
	c.mu.Unlock()
}

// fenced turns a write refused for its claim into ErrNotCoordinator, and
// forgets the claim: another agent claimed the id since.
func (c *Coordinator) fenced(id string, err error) error {
	if errors.Is(err, metastore.ErrTxnCoordinatorFenced) {
		c.forget(id)
		c.metrics.fenced.Inc()
		return fmt.Errorf("%w: %w", ErrNotCoordinator, err)
	}
	return err
}

func (c *Coordinator) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.StoreTimeout)
}

// InitProducer answers InitProducerId for a transactional id: the producer
// id and epoch the producer uses (see metastore.Transactions.InitProducer).
// producerID and epoch are the caller's current ones (KIP-360), -1 when
// none.
func (c *Coordinator) InitProducer(ctx context.Context, l Lease, id string, timeout time.Duration, producerID int64, epoch int16) (int64, int16, error) {
	if timeout <= 0 || timeout > c.cfg.MaxTimeout {
		return -1, -1, fmt.Errorf("%w: %s (at most %s)", ErrInvalidTimeout, timeout, c.cfg.MaxTimeout)
	}
	cl, err := c.claimFor(ctx, id, &l)
	if err != nil {
		return -1, -1, err
	}
	sctx, cancel := c.storeCtx(ctx)
	defer cancel()
	res, err := c.store.InitProducer(sctx, metastore.InitProducerRequest{ID: id, Claim: cl, TimeoutMs: int32(timeout.Milliseconds()),
		ProducerID: producerID, Epoch: epoch})
	if len(res.Written) > 0 {
		// A transaction an earlier instance left open was aborted.
		c.written(res.Written)
		c.metrics.ends.WithLabelValues("fence").Inc()
		c.logger.Info("aborted the transaction an earlier producer instance left open", "transactional_id", id)
	}
	if err != nil {
		return -1, -1, c.fenced(id, err)
	}
	return res.ProducerID, res.Epoch, nil
}

// AddPartitions adds partitions to the producer's transaction
// (AddPartitionsToTxn), or with verifyOnly returns those it does not hold.
func (c *Coordinator) AddPartitions(ctx context.Context, l Lease, p metastore.TxnProducer, tps []metastore.TopicPartition, verifyOnly bool) ([]metastore.TopicPartition, error) {
	cl, err := c.claimFor(ctx, p.ID, &l)
	if err != nil {
		return nil, err
	}
	sctx, cancel := c.storeCtx(ctx)
	defer cancel()
	res, err := c.store.AddToTransaction(sctx, metastore.AddToTxnRequest{TxnProducer: p, Claim: cl, Partitions: tps,
		VerifyOnly: verifyOnly, MaxPartitions: c.cfg.MaxPartitions})
	if err != nil {
		return nil, c.fenced(p.ID, err)
	}
	return res.NotInTxn, nil
}

// AddGroup adds a consumer group to the producer's transaction
// (AddOffsetsToTxn).
func (c *Coordinator) AddGroup(ctx context.Context, l Lease, p metastore.TxnProducer, group string) error {
	cl, err := c.claimFor(ctx, p.ID, &l)
	if err != nil {
		return err
	}
	sctx, cancel := c.storeCtx(ctx)
	defer cancel()
	_, err = c.store.AddToTransaction(sctx, metastore.AddToTxnRequest{TxnProducer: p, Claim: cl, Groups: []string{group},
		MaxPartitions: c.cfg.MaxPartitions})
	return c.fenced(p.ID, err)
}

// End commits or aborts the producer's transaction (EndTxn; bump is
// KIP-890's EndTxn v5+) and returns the producer id and epoch the producer
// uses next.
func (c *Coordinator) End(ctx context.Context, l Lease, p metastore.TxnProducer, commit, bump bool) (int64, int16, error) {
	cl, err := c.claimFor(ctx, p.ID, &l)
	if err != nil {
		return -1, -1, err
	}
	sctx, cancel := c.storeCtx(ctx)
	defer cancel()
	start := time.Now()
	res, err := c.store.EndTransaction(sctx, metastore.EndTxnRequest{TxnProducer: p, Claim: cl, Commit: commit, Bump: bump})
	if err != nil {
		return -1, -1, c.fenced(p.ID, err)
	}
	c.metrics.endDuration.Observe(time.Since(start).Seconds())
	if len(res.Written) > 0 {
		c.written(res.Written)
	}
	result := "abort"
	if commit {
		result = "commit"
	}
	c.metrics.ends.WithLabelValues(result).Inc()
	return res.ProducerID, res.Epoch, nil
}

// Describe describes a transactional id this agent coordinates; found is
// false for an unknown one.
func (c *Coordinator) Describe(ctx context.Context, id string) (metastore.Txn, bool, error) {
	if !c.Owns(id) {
		return metastore.Txn{}, false, ErrNotCoordinator
	}
	sctx, cancel := c.storeCtx(ctx)
	defer cancel()
	return c.store.Transaction(sctx, id)
}

// List lists the transactional ids this agent coordinates (Kafka's
// coordinators each list theirs; an admin client asks every broker).
func (c *Coordinator) List(ctx context.Context) ([]metastore.Txn, error) {
	sctx, cancel := c.storeCtx(ctx)
	defer cancel()
	all, err := c.store.ListTransactions(sctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, t := range all {
		if _, ok := c.owner.Owns(t.ID); ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// sweepBatch bounds the expired transactions and idle ids one sweep
// handles; the next sweep goes on.
const sweepBatch = 100

// sweep aborts expired transactions of the ids this agent coordinates,
// and forgets idle ids, every AbortInterval until Close.
func (c *Coordinator) sweep() {
	t := time.NewTicker(c.cfg.AbortInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		c.SweepOnce(c.ctx)
	}
}

// SweepOnce aborts the expired transactions of the ids this agent
// coordinates and forgets idle ids, once. It reports how many
// transactions it aborted.
func (c *Coordinator) SweepOnce(ctx context.Context) int {
	sctx, cancel := c.storeCtx(ctx)
	expired, err := c.store.ExpiredTransactions(sctx, sweepBatch)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			c.logger.Warn("list expired transactions", "err", err)
		}
		return 0
	}
	aborted := 0
	for _, t := range expired {
		if _, ok := c.owner.Owns(t.ID); !ok {
			continue // its coordinator aborts it
		}
		if err := c.abortExpired(ctx, t); err != nil {
			if !errors.Is(err, metastore.ErrProducerFenced) && !errors.Is(err, metastore.ErrInvalidTxnState) && ctx.Err() == nil {
				c.logger.Warn("abort expired transaction", "transactional_id", t.ID, "err", err)
			}
			continue
		}
		aborted++
	}
	sctx, cancel = c.storeCtx(ctx)
	n, err := c.store.ExpireTransactionalIDs(sctx, c.cfg.IDExpiration, sweepBatch)
	cancel()
	if err != nil && ctx.Err() == nil {
		c.logger.Warn("expire transactional ids", "err", err)
	}
	if n > 0 {
		c.logger.Info("forgot idle transactional ids", "count", n, "idle", c.cfg.IDExpiration)
	}
	return aborted
}

// abortExpired aborts one expired transaction, fencing its producer, if
// it is still the one found expired.
func (c *Coordinator) abortExpired(ctx context.Context, t metastore.Txn) error {
	cl, err := c.claimFor(ctx, t.ID, nil)
	if err != nil {
		return err
	}
	sctx, cancel := c.storeCtx(ctx)
	defer cancel()
	res, err := c.store.EndTransaction(sctx, metastore.EndTxnRequest{
		TxnProducer: metastore.TxnProducer{ID: t.ID, ProducerID: t.ProducerID, Epoch: t.Epoch}, Claim: cl, Fence: true})
	if err != nil {
		return c.fenced(t.ID, err)
	}
	c.written(res.Written)
	c.metrics.ends.WithLabelValues("timeout").Inc()
	c.logger.Info("aborted a transaction past its timeout", "transactional_id", t.ID, "producer_id", t.ProducerID,
		"timeout", time.Duration(t.TimeoutMs)*time.Millisecond, "started", t.Started)
	return nil
}
