// Package group is silt's consumer-group coordinator: Kafka's classic group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), the consumer group
// protocol of KIP-848 (ConsumerGroupHeartbeat, ConsumerGroupDescribe),
// committed offsets and the group admin APIs, with Apache Kafka's state
// machines and error codes.
//
// A group has a type, as in Kafka 4.x: classic (members join, the leader
// assigns, every member syncs; a rebalance stops the world) or consumer
// (KIP-848: the coordinator assigns, members heartbeat and reconcile
// towards their target assignment one epoch at a time, without a global
// barrier). A consumer group's state, as GroupMetadataManager keeps it:
//
//   - a group epoch, bumped whenever the members' subscriptions (topic
//     names, or regular expressions the coordinator resolves against the
//     topics that exist) or the subscribed topics' partition counts change;
//   - a target assignment, computed by a server-side assignor (uniform or
//     range, Kafka's group.consumer.assignors) for the group epoch, and its
//     epoch;
//   - per member: its member epoch and previous epoch, its assigned
//     partitions and those pending revocation, and its state (stable,
//     unrevoked partitions, unreleased partitions). A member moves to the
//     target epoch only after it has stopped owning partitions that go to
//     others, and it gets a partition only once its previous owner released
//     it (reconcile.go, Kafka's CurrentAssignmentBuilder).
//
// Members that still speak the classic protocol may be part of a consumer
// group (Kafka's online migration, group.consumer.migration.policy
// bidirectional): a classic group whose members use the consumer embedded
// protocol becomes a consumer group when a ConsumerGroupHeartbeat joins it;
// its classic members then get their assignment from the coordinator
// through JoinGroup and SyncGroup and are asked to rejoin (Heartbeat
// answers REBALANCE_IN_PROGRESS) when they must reconcile. When the last
// member using the consumer protocol leaves, a group of classic members
// becomes a classic group again and rebalances.
//
// Offsets committed by members of a consumer group name their member epoch
// (OffsetCommit v9+ carries it in the generation field): a commit with
// another epoch answers STALE_MEMBER_EPOCH, as in Kafka.
//
// Every group is owned by one goroutine (group.run) fed by an unbuffered
// channel of closures: all of a group's state, its timers' effects and its
// metastore writes happen on that goroutine, so nothing in a group needs a
// lock. A request that must wait (JoinGroup during a rebalance, a follower's
// SyncGroup) leaves a reply channel with the group and waits on it.
//
// State that must survive an agent (members, generation, protocol, leader,
// assignments, static instance ids; for a consumer group its epochs,
// target assignment and every member's reconciliation state) is saved
// whenever a generation completes or membership changes, and for a
// consumer group before any heartbeat is answered with a new epoch or
// assignment, so a member never holds an epoch the metastore does not
// know; committed offsets go straight to the metastore. A group is loaded from the metastore the first time this
// coordinator touches it, so another agent can take over a group whose
// coordinator died.
//
// Two agents can believe at once that they coordinate a group: one paused
// past its lease wakes up with the state it had, and agents' lists of live
// agents differ for a moment when one joins or leaves. Two guards keep
// the second one from acting:
//   - before every operation, a request's or a timer's, the group asks its
//     agent (Ownership) whether it still coordinates the group and can
//     vouch for its lease, under the same lease term it loaded the group
//     in; if not, the group's state is dropped without acting on it, and
//     the next request reloads it from the metastore;
//   - loading claims the group in the metastore (metastore.GroupOwnership)
//     and every write names that claim, so a write from a coordinator
//     whose group was claimed since by another is refused, whatever the
//     coordinator believed; it drops the group and answers
//     NOT_COORDINATOR.
package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltdata/silt/groupconfig"
	"github.com/siltdata/silt/metastore"
)

// Config sets the coordinator's trade-offs. The names follow Kafka's broker
// settings.
type Config struct {
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (group.min/max.session.timeout.ms); outside them
	// JoinGroup answers INVALID_SESSION_TIMEOUT. A low minimum detects dead
	// consumers sooner at the cost of more heartbeats.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// InitialRebalanceDelay (group.initial.rebalance.delay.ms) holds the
	// first rebalance of an empty group open so members starting together
	// land in one generation. Kafka's code default is 3s and its shipped
	// server.properties sets 0; silt defaults to 0 (faster first join).
	InitialRebalanceDelay time.Duration
	// MaxMetadataBytes bounds committed offset metadata
	// (offset.metadata.max.bytes); larger gets OFFSET_METADATA_TOO_LARGE.
	MaxMetadataBytes int
	// MaxGroupSize bounds members per group (group.max.size);
	// JoinGroup beyond it answers GROUP_MAX_SIZE_REACHED.
	MaxGroupSize int
	// StoreTimeout bounds one metastore call made by a group.
	StoreTimeout time.Duration

	// Groups are the defaults and bounds of the group configs
	// (consumer.session.timeout.ms, ...): KIP-848 members' session
	// timeout and heartbeat interval.
	Groups groupconfig.Defaults
	// ConsumerAssignors are the server-side assignors KIP-848 members may
	// name (group.consumer.assignors: uniform, range); the first is used
	// for groups whose members name none.
	ConsumerAssignors []string
	// ConsumerMaxSize bounds members per consumer group
	// (group.consumer.max.size); beyond it ConsumerGroupHeartbeat answers
	// GROUP_MAX_SIZE_REACHED.
	ConsumerMaxSize int
	// MigrationPolicy allows converting groups between the classic and
	// the consumer protocol while they have members
	// (group.consumer.migration.policy): bidirectional, upgrade,
	// downgrade or disabled.
	MigrationPolicy string
	// MetadataRefresh is how often a consumer group's subscriptions are
	// matched against the topics again (new topics for regular
	// expressions, partitions added, topics deleted), at the next
	// heartbeat after it passed. Shorter picks up changes sooner and
	// reads the topic list more often.
	MetadataRefresh time.Duration
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		MinSessionTimeout:     6 * time.Second,
		MaxSessionTimeout:     30 * time.Minute,
		InitialRebalanceDelay: 0,
		MaxMetadataBytes:      4096,
		MaxGroupSize:          1 << 20,
		StoreTimeout:          10 * time.Second,
		Groups:                groupconfig.KafkaDefaults(),
		ConsumerAssignors:     []string{"uniform", "range"},
		ConsumerMaxSize:       1 << 20,
		MigrationPolicy:       "bidirectional",
		MetadataRefresh:       time.Second,
	}
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	if c.MinSessionTimeout <= 0 || c.MaxSessionTimeout < c.MinSessionTimeout {
		errs = append(errs, fmt.Errorf("session timeouts [%s, %s]: need 0 < min <= max", c.MinSessionTimeout, c.MaxSessionTimeout))
	}
	if c.InitialRebalanceDelay < 0 {
		errs = append(errs, fmt.Errorf("initial rebalance delay %s: must not be negative", c.InitialRebalanceDelay))
	}
	if c.MaxMetadataBytes < 0 {
		errs = append(errs, fmt.Errorf("max metadata bytes %d: must not be negative", c.MaxMetadataBytes))
	}
	if c.MaxGroupSize < 1 {
		errs = append(errs, fmt.Errorf("max group size %d: must be at least 1", c.MaxGroupSize))
	}
	if c.StoreTimeout <= 0 {
		errs = append(errs, fmt.Errorf("store timeout %s: must be positive", c.StoreTimeout))
	}
	if err := c.Groups.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(c.ConsumerAssignors) == 0 {
		errs = append(errs, errors.New("consumer assignors: need at least one"))
	}
	for _, a := range c.ConsumerAssignors {
		if assignors[a] == nil {
			errs = append(errs, fmt.Errorf("consumer assignor %q: silt has uniform and range", a))
		}
	}
	if c.ConsumerMaxSize < 1 {
		errs = append(errs, fmt.Errorf("consumer group max size %d: must be at least 1", c.ConsumerMaxSize))
	}
	if !slices.Contains([]string{"bidirectional", "upgrade", "downgrade", "disabled"}, c.MigrationPolicy) {
		errs = append(errs, fmt.Errorf("migration policy %q: one of bidirectional, upgrade, downgrade, disabled", c.MigrationPolicy))
	}
	if c.MetadataRefresh <= 0 {
		errs = append(errs, fmt.Errorf("metadata refresh %s: must be positive", c.MetadataRefresh))
	}
	return errors.Join(errs...)
}

// Errors returned by the coordinator.
var (
	// ErrClosed means the coordinator was closed; the agent answers
	// NOT_COORDINATOR so the client looks for another one.
	ErrClosed = errors.New("group coordinator closed")
	// errNotOwned means the agent does not coordinate the group now, or
	// cannot vouch for its lease (Ownership): NOT_COORDINATOR.
	errNotOwned = errors.New("group not coordinated by this agent now")
)

// Store is what the coordinator needs of the metastore: its reads, the
// fenced group writes, and groups' configs.
type Store interface {
	metastore.Store
	metastore.GroupOwnership
	metastore.BulkReads
	// StageTxnOffsets and PendingTxnOffsets are the transactional
	// offsets of TxnOffsetCommit and OffsetFetch's require_stable.
	StageTxnOffsets(ctx context.Context, req metastore.TxnOffsetsRequest) error
	PendingTxnOffsets(ctx context.Context, group string, tps []metastore.TopicPartition) ([]metastore.TopicPartition, error)
	metastore.GroupConfigs
}

// Ownership is what the coordinator asks its agent before it acts for a
// group.
type Ownership interface {
	// Owns reports whether the agent coordinates group and can vouch,
	// now, that its lease in the metastore has not lapsed; and the
	// lease's term, which changes whenever the agent registers anew.
	// State loaded under an earlier term is not acted on: while the
	// lease was lapsed another agent may have run the group.
	Owns(group string) (term uint64, ok bool)
}

// requestLeaseKey is the context key of WithRequestLease.
type requestLeaseKey struct{}

// requestLease is the agent's lease as it was when the agent read a
// request.
type requestLease struct {
	term uint64
	held bool
}

// WithRequestLease returns ctx carrying the agent's lease as it was when
// the agent read the request ctx belongs to: its term, and whether the
// agent could vouch for it then (Ownership). The coordinator acts on a
// request only if it was read under a held lease of the term the group
// was loaded in: a request that waited, in a socket of a stopped agent
// or in a handler, across a lapse of the lease was sent before whatever
// another coordinator did meanwhile, and is answered NOT_COORDINATOR.
// Requests without it (tests, admin calls) are checked only against the
// lease at the time they run.
func WithRequestLease(ctx context.Context, term uint64, held bool) context.Context {
	return context.WithValue(ctx, requestLeaseKey{}, requestLease{term, held})
}

// RequestLease returns the lease WithRequestLease put in ctx, and whether
// there is one: for other coordinators (agent/share) that fence requests
// read across a lapse of the lease the same way.
func RequestLease(ctx context.Context) (term uint64, held, ok bool) {
	rl, ok := ctx.Value(requestLeaseKey{}).(requestLease)
	return rl.term, rl.held, ok
}

// Client is who sent a request, as DescribeGroups shows it.
type Client struct {
	ID   string // client.id
	Host string // remote address, "/1.2.3.4" as Kafka prints it
}

// Coordinator runs consumer groups.
type Coordinator struct {
	cfg     Config
	store   Store
	owner   Ownership // nil: this coordinator owns every group (tests)
	logger  *slog.Logger
	metrics *metrics

	// ctx is cancelled by Close; every group goroutine, timer callback,
	// waiting request and metastore call made for a group watches it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // group goroutines

	// mu guards groups and closed. It is never held while talking to a
	// group goroutine or the store.
	mu     sync.Mutex
	groups map[string]*group
	closed bool

	// stateHook, when set (tests only, before use), is called on the
	// group goroutine at every state change.
	stateHook func(group string, s string)

	// topics is the coordinator's view of the topics, which consumer
	// groups match their subscriptions against.
	topics topicView
}

// New returns a Coordinator that acts for a group only while owner says
// the agent owns it (nil: always). Metrics are registered on reg (nil:
// none).
func New(cfg Config, store Store, owner Ownership, logger *slog.Logger, reg prometheus.Registerer) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("group config: %w", err)
	}
	if store == nil {
		return nil, errors.New("group coordinator: nil store")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{
		cfg:    cfg,
		store:  store,
		owner:  owner,
		logger: logger,
		groups: make(map[string]*group),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	m, err := newMetrics(c, reg)
	if err != nil {
		return nil, err
	}
	c.metrics = m
	return c, nil
}

// Close stops every group goroutine and timer and fails waiting requests
// with NOT_COORDINATOR. Group state is already in the metastore.
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

// lookup returns the running group named name, starting it when absent.
func (c *Coordinator) lookup(name string) (*group, error) {
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

// unregister removes g from the map if it is still the registered group of
// its name. Called by g's goroutine just before it exits.
func (c *Coordinator) unregister(g *group) {
	c.mu.Lock()
	if c.groups[g.name] == g {
		delete(c.groups, g.name)
	}
	c.mu.Unlock()
}

// running returns the groups currently loaded.
func (c *Coordinator) running() []*group {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, g)
	}
	return out
}

// do runs fn on the goroutine of the group named name and returns once fn
// has run, or errNotOwned when the agent does not own the group now (fn
// does not run; the group's state is dropped) or the request is from
// before a lapse of its lease (WithRequestLease; fn does not run). A
// group goroutine that exits between lookup and send (it unloaded
// itself) is replaced by a fresh one.
func (c *Coordinator) do(ctx context.Context, name string, fn func(g *group)) error {
	rl, stamped := ctx.Value(requestLeaseKey{}).(requestLease)
	for {
		g, err := c.lookup(name)
		if err != nil {
			return err
		}
		done := make(chan struct{})
		owned := true
		op := func(g *group) {
			defer close(done)
			// owned sets the term of a group not loaded yet to the
			// current one, so the request's term is compared with it.
			owned = g.owned() && (!stamped || rl.held && rl.term == g.term)
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

// doExisting is do for a group only if it is loaded; it reports whether it
// ran fn.
func (c *Coordinator) doExisting(ctx context.Context, name string, fn func(g *group)) bool {
	c.mu.Lock()
	g := c.groups[name]
	c.mu.Unlock()
	if g == nil {
		return false
	}
	done := make(chan struct{})
	select {
	case g.ops <- func(g *group) { defer close(done); fn(g) }:
		<-done
		return true
	case <-g.done:
	case <-c.ctx.Done():
	case <-ctx.Done():
	}
	return false
}

// Forget drops this coordinator's in-memory state of a group it no longer
// coordinates (another agent does now): waiting requests get
// NOT_COORDINATOR and the next use reloads the group from the metastore.
// Nothing is written to the metastore.
func (c *Coordinator) Forget(ctx context.Context, name string) {
	c.doExisting(ctx, name, func(g *group) { g.unload() })
}

// owns asks the agent whether it owns group now (see Ownership).
func (c *Coordinator) owns(group string) (term uint64, ok bool) {
	if c.owner == nil {
		return 0, true
	}
	return c.owner.Owns(group)
}

// storeCtx bounds one metastore call made on behalf of a group.
func (c *Coordinator) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.cfg.StoreTimeout)
}
