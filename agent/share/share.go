// Package share is silt's share-group support (KIP-932, "queues for
// Kafka"): the share-group coordinator (ShareGroupHeartbeat,
// ShareGroupDescribe, the share-group offset admin APIs) and the
// share-fetch path (ShareFetch, ShareAcknowledge: acquisition locks,
// delivery counts, acknowledgements).
//
// The state layout in the metastore is written down in STATE.md. In
// short: a share group's membership is run by its coordinator, one agent
// placed by hash like a group coordinator, on one goroutine per group,
// saved in the group's row under the coordinator's claim (a coordinator
// whose claim another took is refused every write); each share-partition
// is one row that any agent changes by compare-and-set, so the agent
// answering a ShareFetch need not be the coordinator and no agent's death
// loses an acquisition or an acknowledgement.
package share

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltdata/silt/agent/group"
	"github.com/siltdata/silt/groupconfig"
	"github.com/siltdata/silt/metastore"
)

// Config sets the share-group trade-offs. Names follow Kafka's broker
// settings.
type Config struct {
	// Groups are the group configs' defaults and bounds: session timeout,
	// heartbeat interval, record lock duration, delivery count limit,
	// in-flight records per partition.
	Groups groupconfig.Defaults
	// MaxSize bounds members per share group (group.share.max.size);
	// beyond it ShareGroupHeartbeat answers GROUP_MAX_SIZE_REACHED.
	MaxSize int
	// MetadataRefresh is how often a share group's subscriptions and
	// configs are looked at again (at its next heartbeat after it
	// passed), and how long the fetch path trusts a group's configs.
	MetadataRefresh time.Duration
	// StoreTimeout bounds one metastore call.
	StoreTimeout time.Duration
	// UpdateRetries bounds the compare-and-set attempts of one change to
	// a share-partition (each attempt reads the row again); beyond it
	// the request answers a retriable error. Contention is between
	// consumers of one partition, so a handful is plenty.
	UpdateRetries int
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		Groups:          groupconfig.KafkaDefaults(),
		MaxSize:         200,
		MetadataRefresh: time.Second,
		StoreTimeout:    10 * time.Second,
		UpdateRetries:   20,
	}
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	if err := c.Groups.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxSize < 1 {
		errs = append(errs, fmt.Errorf("share group max size %d: must be at least 1", c.MaxSize))
	}
	if c.MetadataRefresh <= 0 {
		errs = append(errs, fmt.Errorf("metadata refresh %s: must be positive", c.MetadataRefresh))
	}
	if c.StoreTimeout <= 0 {
		errs = append(errs, fmt.Errorf("store timeout %s: must be positive", c.StoreTimeout))
	}
	if c.UpdateRetries < 1 {
		errs = append(errs, fmt.Errorf("update retries %d: must be at least 1", c.UpdateRetries))
	}
	return errors.Join(errs...)
}

// Errors of the package.
var (
	// ErrClosed means the coordinator was closed: NOT_COORDINATOR.
	ErrClosed = errors.New("share coordinator closed")
	// errNotOwned means the agent does not coordinate the group now:
	// NOT_COORDINATOR.
	errNotOwned = errors.New("share group not coordinated by this agent now")
	// errContended means a share-partition kept changing under a
	// compare-and-set: a retriable error for the client.
	errContended = errors.New("share-partition contended")
)

// Store is what share groups need of the metastore.
type Store interface {
	metastore.Store
	metastore.GroupConfigs
	metastore.ShareGroupOwnership
	metastore.SharePartitions
}

// Coordinator runs share groups: membership and assignment.
type Coordinator struct {
	cfg     Config
	store   Store
	owner   group.Ownership // nil: owns every group (tests)
	parts   *Partitions
	logger  *slog.Logger
	metrics *metrics

	// ctx is cancelled by Close; group goroutines, timers and metastore
	// calls made for groups watch it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // group goroutines and releases

	// mu guards groups and closed; never held while talking to a group
	// goroutine or the store.
	mu     sync.Mutex
	groups map[string]*sgroup
	closed bool

	topics topicCache
}

// New returns a Coordinator acting for a group only while owner says the
// agent owns it (nil: always); parts is the share-fetch path, whose
// records of departed members it releases.
func New(cfg Config, store Store, owner group.Ownership, parts *Partitions, logger *slog.Logger, reg prometheus.Registerer) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("share config: %w", err)
	}
	if store == nil || parts == nil {
		return nil, errors.New("share coordinator: nil store or partitions")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{cfg: cfg, store: store, owner: owner, parts: parts, logger: logger, groups: map[string]*sgroup{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	m, err := newMetrics(c, reg)
	if err != nil {
		return nil, err
	}
	c.metrics = m
	parts.metrics = m
	return c, nil
}

// Close stops every group goroutine and timer; state is in the metastore.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.cancel()
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

func (c *Coordinator) lookup(name string) (*sgroup, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	g := c.groups[name]
	if g == nil {
		g = newGroup(c, name)
		c.groups[name] = g
		c.wg.Add(1)
		go g.run()
	}
	return g, nil
}

func (c *Coordinator) unregister(g *sgroup) {
	c.mu.Lock()
	if c.groups[g.name] == g {
		delete(c.groups, g.name)
	}
	c.mu.Unlock()
}

func (c *Coordinator) running() []*sgroup {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*sgroup, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, g)
	}
	return out
}

// do runs fn on the group's goroutine, as agent/group's coordinator does:
// not at all when the agent does not own the group now or the request was
// read before a lapse of the agent's lease (errNotOwned).
func (c *Coordinator) do(ctx context.Context, name string, fn func(g *sgroup)) error {
	term, held, stamped := group.RequestLease(ctx)
	for {
		g, err := c.lookup(name)
		if err != nil {
			return err
		}
		done := make(chan struct{})
		owned := true
		op := func(g *sgroup) {
			defer close(done)
			owned = g.owned() && (!stamped || held && term == g.term)
			if owned {
				fn(g)
			}
		}
		select {
		case g.ops <- op:
			<-done
			if !owned {
				return errNotOwned
			}
			return nil
		case <-g.done:
			continue
		case <-c.ctx.Done():
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Forget drops the in-memory state of a group this agent no longer
// coordinates; nothing is written.
func (c *Coordinator) Forget(ctx context.Context, name string) {
	c.mu.Lock()
	g := c.groups[name]
	c.mu.Unlock()
	if g == nil {
		return
	}
	select {
	case g.ops <- func(g *sgroup) { g.gone = true }:
	case <-g.done:
	case <-c.ctx.Done():
	case <-ctx.Done():
	}
}

func (c *Coordinator) owns(name string) (uint64, bool) {
	if c.owner == nil {
		return 0, true
	}
	return c.owner.Owns(name)
}

func (c *Coordinator) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.cfg.StoreTimeout)
}

// sgroup is one share group; every field below ops/done is owned by its
// goroutine, except view (metrics and ListGroups read it).
type sgroup struct {
	c    *Coordinator
	name string
	ops  chan func(*sgroup)
	done chan struct{}

	view viewPtr

	loaded  bool
	exists  bool  // stored in the metastore (or about to be)
	foreign bool  // the name is a classic or consumer group's
	gone    bool  // unload after the current op
	seq     int64 // write counter of the group's document
	epoch   int64 // the claim's epoch, which every write names
	term    uint64

	groupEpoch      int32
	assignmentEpoch int32
	members         map[string]*smember
	target          map[string]tpSet
	subs            map[string]topicMeta
	refreshAt       time.Time
	cfg             groupconfig.Group
	// initialized are the partitions known to have a share-partition
	// row, so they are initialized once.
	initialized map[metastore.TopicPartition]bool
}

// smember is one share-group member.
type smember struct {
	id, clientID, clientHost string
	rackID                   *string
	topics                   []string
	epoch, prevEpoch         int32
	assigned                 tpSet

	sessionSeq   uint64
	sessionTimer *time.Timer
}

func newGroup(c *Coordinator, name string) *sgroup {
	return &sgroup{
		c: c, name: name,
		ops:         make(chan func(*sgroup)),
		done:        make(chan struct{}),
		members:     map[string]*smember{},
		target:      map[string]tpSet{},
		subs:        map[string]topicMeta{},
		initialized: map[metastore.TopicPartition]bool{},
		cfg:         groupconfig.Effective(c.cfg.Groups, nil),
	}
}

func (g *sgroup) run() {
	defer g.c.wg.Done()
	defer close(g.done)
	for {
		select {
		case op := <-g.ops:
			g.runOp(op)
			if !g.gone && g.loaded && (g.foreign || !g.exists && len(g.members) == 0) {
				g.gone = true
			}
			if g.gone {
				g.c.unregister(g)
				g.shutdown()
				return
			}
		case <-g.c.ctx.Done():
			g.shutdown()
			return
		}
	}
}

// runOp runs one op; a panic (a bug) unloads the group rather than take
// the agent down.
func (g *sgroup) runOp(op func(*sgroup)) {
	defer func() {
		if p := recover(); p != nil {
			g.c.logger.Error("panic in share coordinator; unloading group", "group", g.name, "panic", p, "stack", string(debug.Stack()))
			g.gone = true
		}
	}()
	op(g)
}

func (g *sgroup) shutdown() {
	for _, m := range g.members {
		if m.sessionTimer != nil {
			m.sessionTimer.Stop()
		}
	}
	g.view.store(nil)
}

// owned is agent/group's owned: the agent owns the group under the lease
// term it was loaded in; otherwise the group is dropped unchanged.
func (g *sgroup) owned() bool {
	term, ok := g.c.owns(g.name)
	if ok && !g.loaded {
		g.term = term
		return true
	}
	if ok && term == g.term {
		return true
	}
	if g.loaded && !g.gone {
		g.c.logger.Info("dropping share group state: this agent does not coordinate it now, or its lease lapsed", "group", g.name)
	}
	g.gone = true
	return false
}

// after runs fn on the group goroutine once d passed, unless the group is
// gone or not owned then.
func (g *sgroup) after(d time.Duration, fn func()) *time.Timer {
	return time.AfterFunc(d, func() {
		select {
		case g.ops <- func(*sgroup) {
			if g.owned() {
				fn()
			}
		}:
		case <-g.done:
		case <-g.c.ctx.Done():
		}
	})
}

// stateName is Empty or Stable (a share group has no rebalance states).
func (g *sgroup) stateName() string {
	if len(g.members) == 0 {
		return "Empty"
	}
	return "Stable"
}

func (g *sgroup) publish() {
	if !g.exists {
		g.view.store(nil)
		return
	}
	g.view.store(&view{state: g.stateName()})
}
