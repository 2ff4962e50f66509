package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/siltdata/silt/metastore"
)

// liveRefresh bounds how stale the cached list of live agents may be; the
// list decides partition leaders and group coordinators, so every agent
// should agree on it within about a second. One indexed query per agent
// per second is cheap next to the commit traffic.
const liveRefresh = time.Second

// onDemandRefresh is how old the cached list may be when a client asks
// where to go (Metadata, FindCoordinator) before it is re-read first. A
// client asks after NOT_LEADER_OR_FOLLOWER or NOT_COORDINATOR, typically
// because an agent is leaving: answering from a list that still names
// that agent would send the client straight back to it.
const onDemandRefresh = 250 * time.Millisecond

// membership is the agent's cluster membership: its lease in the
// metastore and the cached list of live agents.
type membership struct {
	a *Agent

	// refreshMu serializes refreshes, so that a burst of on-demand
	// refreshes costs one store query. Taken before mu, never inside it.
	refreshMu sync.Mutex

	// mu guards self, others, refreshed, registered, validUntil, term,
	// lapsed, leaving, running and view.
	mu   sync.Mutex
	self metastore.Agent
	// others are the other agents the store last listed as live, sorted
	// by node id, each with how long this agent can vouch for its lease.
	others     []vouched
	refreshed  time.Time // when others was last read from the store
	registered bool
	// validUntil is how long the agent can vouch for its lease: the
	// start of its last successful registration or renewal plus the
	// lease TTL. The store computed the lease's expiry from a moment
	// after that start, so the lease outlives validUntil, and no other
	// agent can have seen it lapse before then. The time carries Go's
	// monotonic reading, which keeps counting while the process is
	// stopped (SIGSTOP, a stalled VM): an agent that wakes up past it
	// knows at once, before it renews.
	validUntil time.Time
	// term counts registrations: it changes when the agent registers
	// anew after its lease lapsed, so state loaded and requests read
	// under the old lease (group coordination) can tell they are stale.
	term uint64
	// lapsed is set when a renewal found the lease gone; the agent
	// registers anew one renewal interval later (see renew).
	lapsed bool
	// leaving is set once shutdown starts: the agent has deregistered
	// and no longer names itself as a leader, coordinator or broker.
	leaving bool
	running bool // the lease loop was started
	// view caches vouchedLocked's answer until viewUntil, the first
	// moment a lease in it can no longer be vouched for; nil when a
	// change made it stale.
	view      []metastore.Agent
	viewUntil time.Time

	// ctx bounds the lease loop's store calls; stop cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	stopc  chan struct{}
	done   chan struct{}
}

// vouched is another agent as the store listed it, and until when its
// lease certainly runs: the store's answer of how long it had left, added
// to the moment the question was sent (the store read its clock after
// that), on this agent's monotonic clock.
type vouched struct {
	metastore.Agent
	until time.Time
}

func newMembership(a *Agent) *membership {
	ctx, cancel := context.WithCancel(context.Background())
	return &membership{
		a:      a,
		ctx:    ctx,
		cancel: cancel,
		self:   metastore.Agent{ID: a.cfg.AgentID, NodeID: -1, Zone: a.cfg.Zone},
		stopc:  make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// register computes each listener's advertised address from its bound
// address and registers the agent. The first listener's is the agent's
// Host and Port.
func (m *membership) register(ctx context.Context, lns []*listener) error {
	var eps []metastore.Endpoint
	for _, l := range lns {
		ep, err := advertised(l)
		if err != nil {
			return err
		}
		eps = append(eps, ep)
	}
	m.mu.Lock()
	m.self.Host, m.self.Port = eps[0].Host, eps[0].Port
	m.self.Listeners = eps
	m.mu.Unlock()

	if err := m.registerAgain(ctx); err != nil {
		return fmt.Errorf("register agent: %w", err)
	}
	m.refresh(ctx)
	return nil
}

// registerAgain registers the agent (first, or after its lease lapsed),
// starting a new lease term.
func (m *membership) registerAgain(ctx context.Context) error {
	m.mu.Lock()
	self := m.self
	m.mu.Unlock()
	start := time.Now()
	id, err := m.a.store.RegisterAgent(ctx, self, m.a.cfg.LeaseTTL)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.self.NodeID = id
	m.registered = true
	m.term++
	m.lapsed = false
	m.validUntil = start.Add(m.a.cfg.LeaseTTL)
	m.view = nil
	return nil
}

// advertised is what a listener tells clients to connect to: its
// configured advertised address, else the bound one (127.0.0.1 for a
// wildcard host).
func advertised(l *listener) (metastore.Endpoint, error) {
	bound := l.ln.Addr()
	host, portStr, err := net.SplitHostPort(bound.String())
	if err != nil {
		return metastore.Endpoint{}, fmt.Errorf("listener address %s: %w", bound, err)
	}
	port, _ := strconv.Atoi(portStr)
	if h, _, err := net.SplitHostPort(l.cfg.Addr); err == nil && h != "" {
		host = h
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() || host == "" {
		host = "127.0.0.1"
	}
	if l.cfg.AdvertisedHost != "" {
		host = l.cfg.AdvertisedHost
	}
	if l.cfg.AdvertisedPort != 0 {
		port = int(l.cfg.AdvertisedPort)
	}
	return metastore.Endpoint{Name: l.cfg.Name, Host: host, Port: int32(port)}, nil
}

// start runs the lease loop.
func (m *membership) start() {
	m.mu.Lock()
	m.running = true
	m.mu.Unlock()
	go m.run()
}

// run renews the lease every LeaseTTL/3 (sooner after a failed renewal,
// see renew) and refreshes the live list every liveRefresh, until stop.
func (m *membership) run() {
	defer close(m.done)
	renew := time.NewTimer(m.a.cfg.LeaseTTL / 3)
	defer renew.Stop()
	live := time.NewTicker(min(liveRefresh, m.a.cfg.LeaseTTL/3))
	defer live.Stop()
	for {
		select {
		case <-m.stopc:
			return
		case <-renew.C:
			renew.Reset(m.renew())
		case <-live.C:
			ctx, cancel := context.WithTimeout(m.ctx, m.a.cfg.LeaseTTL/3)
			m.refresh(ctx)
			cancel()
		}
	}
}

// renewRetry is how soon a failed renewal is tried again, as a fraction
// of the lease: a lease renewed every third of its life survives two
// failed renewals in a row and no more, so an outage of the metastore
// shorter than the lease (a Postgres restart, a failover) would still end
// every agent's lease at once, and every group coordinator with it, if
// the agents waited a whole renewal interval after each failure.
const renewRetry = 18

// renew renews the lease, or registers anew once it has lapsed, and
// returns when to try next: a renewal interval after a renewal (or while
// a lapsed agent waits before registering anew), LeaseTTL/renewRetry after
// a failure.
func (m *membership) renew() time.Duration {
	interval := m.a.cfg.LeaseTTL / 3
	ctx, cancel := context.WithTimeout(m.ctx, interval)
	defer cancel()
	start := time.Now()
	err := m.a.store.RenewAgent(ctx, m.a.cfg.AgentID, m.a.cfg.LeaseTTL)
	if err == nil {
		m.mu.Lock()
		// Still the same lease: the term stays.
		m.validUntil = start.Add(m.a.cfg.LeaseTTL)
		m.view = nil
		m.mu.Unlock()
		return interval
	}
	if errors.Is(err, metastore.ErrLeaseExpired) {
		if m.lapse() {
			// Requests that reached this agent while its lease was
			// lapsing (queued in its sockets while it was stopped, say)
			// were sent before whatever the agents that took over did
			// meanwhile. Every request read until the agent registers
			// anew is marked as read without a lease, and a group
			// coordinator does not act on it; one renewal interval is
			// ample to read what was queued.
			m.a.logger.Warn("agent lease expired; registering again after one renewal interval", "interval", interval)
			return interval
		}
		m.a.logger.Warn("agent lease expired; registering again")
		if err = m.registerAgain(ctx); err == nil {
			m.refresh(ctx)
			return interval
		}
	}
	// Until the lease lapses nothing changes for clients; try again soon.
	m.a.logger.Error("renew agent lease", "err", err)
	return m.a.cfg.LeaseTTL / renewRetry
}

// lapse records that the lease is gone; it reports whether this is news
// (the lease was not known to be lapsed before).
func (m *membership) lapse() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lapsed {
		return false
	}
	m.lapsed = true
	m.validUntil = time.Time{}
	m.view = nil
	return true
}

// lease reports the current lease term and whether the agent can vouch
// for its lease now (registered, and not past validUntil).
func (m *membership) lease() (term uint64, held bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.term, m.registered && time.Now().Before(m.validUntil)
}

// refresh reloads the live agents; on failure the old list stays.
func (m *membership) refresh(ctx context.Context) {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	m.refreshLocked(ctx)
}

// refreshIfOlder reloads the live agents when the cached list is older
// than age. Concurrent callers share one reload.
func (m *membership) refreshIfOlder(ctx context.Context, age time.Duration) {
	stale := func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.registered && !m.leaving && time.Since(m.refreshed) > age
	}
	if !stale() {
		return
	}
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	if stale() { // nobody refreshed while we waited
		m.refreshLocked(ctx)
	}
}

// refreshLocked is refresh with refreshMu held.
func (m *membership) refreshLocked(ctx context.Context) {
	m.mu.Lock()
	leaving := m.leaving
	m.mu.Unlock()
	if leaving {
		// Deregistered: the store no longer lists this agent, and the
		// list must not grow it back (see liveAgents).
		return
	}
	start := time.Now()
	live, err := m.a.store.LiveAgents(ctx)
	if err != nil {
		// The agents listed before stay named only until their leases,
		// as last read, run out (see vouchedLocked).
		m.a.logger.Warn("list live agents", "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leaving {
		return
	}
	m.refreshed = time.Now()
	before := m.others
	m.others = make([]vouched, 0, len(live))
	for _, x := range live {
		if x.ID != m.self.ID {
			m.others = append(m.others, vouched{Agent: x, until: start.Add(x.LeaseLeft)})
		}
	}
	m.view = nil
	if !slices.EqualFunc(before, m.others, func(x, y vouched) bool { return sameAgent(x.Agent, y.Agent) }) {
		m.a.logger.Info("live agents", "agents", agentList(m.vouchedLocked(time.Now())))
	}
}

// vouchedLocked returns the agents whose lease this agent can vouch for
// at now, sorted by node id: itself while its own lease holds (see
// validUntil) unless it is leaving, and each other agent until its lease,
// as the store last listed it, runs out. An agent that cannot reach the
// store (or that was stopped past the leases it knew of) thus stops
// naming agents that may be gone, at the latest when their leases end,
// however stale its list. m.mu must be held; the slice is shared.
func (m *membership) vouchedLocked(now time.Time) []metastore.Agent {
	if m.view != nil && now.Before(m.viewUntil) {
		return m.view
	}
	view := make([]metastore.Agent, 0, len(m.others)+1)
	until := now.Add(time.Hour)
	if m.registered && !m.leaving && now.Before(m.validUntil) {
		self := m.self
		self.LeaseLeft = 0
		view = append(view, self)
		until = m.validUntil
	}
	for _, x := range m.others {
		if now.Before(x.until) {
			a := x.Agent
			a.LeaseLeft = 0
			view = append(view, a)
			until = minTime(until, x.until)
		}
	}
	slices.SortFunc(view, func(x, y metastore.Agent) int { return int(x.NodeID) - int(y.NodeID) })
	m.view, m.viewUntil = view, until
	return view
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// sameAgent compares two registrations, listeners included (not the
// lease time left).
func sameAgent(x, y metastore.Agent) bool {
	return x.ID == y.ID && x.NodeID == y.NodeID && x.Host == y.Host && x.Port == y.Port && x.Zone == y.Zone &&
		slices.Equal(x.Listeners, y.Listeners)
}

// stop ends the lease loop (no-op when it never started).
func (m *membership) stop() {
	m.mu.Lock()
	running := m.running
	m.mu.Unlock()
	select {
	case <-m.stopc:
		return
	default:
	}
	close(m.stopc)
	m.cancel()
	if running {
		<-m.done
	}
}

// leave starts a graceful exit: the lease loop stops (it would register
// again), the agent stops naming itself as a broker, leader or group
// coordinator, and its lease is removed so the other agents stop naming
// it too. It reports whether other agents remain to take the clients.
func (m *membership) leave(ctx context.Context) (others bool, err error) {
	m.stop()
	m.mu.Lock()
	now := time.Now()
	for _, x := range m.others {
		others = others || now.Before(x.until)
	}
	m.leaving = true
	m.view = nil
	m.mu.Unlock()
	return others, m.deregister(ctx)
}

// isRegistered reports whether the agent holds its lease and is not
// leaving.
func (m *membership) isRegistered() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.registered && !m.leaving
}

// deregister removes the lease so other agents stop naming this one.
func (m *membership) deregister(ctx context.Context) error {
	m.mu.Lock()
	registered := m.registered
	m.registered = false
	m.view = nil
	m.mu.Unlock()
	if !registered {
		return nil
	}
	if err := m.a.store.DeregisterAgent(ctx, m.a.cfg.AgentID); err != nil {
		return fmt.Errorf("deregister agent: %w", err)
	}
	return nil
}

func (m *membership) nodeID() int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.self.NodeID
}

// liveAgents returns the agents to list as brokers: those this agent
// can vouch for (vouchedLocked), sorted by node id. When it can vouch for
// none (it cannot reach the metastore, or it is leaving and the others'
// leases ran out) it lists itself alone: an empty broker list helps no
// client, and Metadata then names no leader (see brokersFor). The slice is
// shared: callers must not modify it.
func (m *membership) liveAgents() []metastore.Agent {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v := m.vouchedLocked(time.Now()); len(v) > 0 {
		return v
	}
	return []metastore.Agent{m.self}
}

// vouchedAgents returns the agents this agent can vouch for now, perhaps
// none. The slice is shared: callers must not modify it.
func (m *membership) vouchedAgents() []metastore.Agent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.vouchedLocked(time.Now())
}

// liveCount is the number of live agents this agent can vouch for, for
// the silt_agents_live gauge.
func (m *membership) liveCount() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return float64(len(m.vouchedLocked(time.Now())))
}

// agentList formats agents for a log line.
func agentList(agents []metastore.Agent) string {
	var b strings.Builder
	for i, x := range agents {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d=%s", x.NodeID, net.JoinHostPort(x.Host, strconv.Itoa(int(x.Port))))
	}
	return b.String()
}

// self describes this agent as Metadata advertises it.
func (a *Agent) self() metastore.Agent {
	a.members.mu.Lock()
	defer a.members.mu.Unlock()
	return a.members.self
}

// liveAgents is the agents to list as brokers (membership.liveAgents),
// sorted by node id. Callers must not modify it.
func (a *Agent) liveAgents() []metastore.Agent { return a.members.liveAgents() }

// leaderAmong names the agent that Metadata reports as a partition's
// leader, among agents (the live ones this agent can vouch for, as
// reachable on the client's listener: see brokersFor). Every agent can
// serve every partition; the leader only steers one client's traffic for
// a partition to one agent, so it is picked by rendezvous hashing over
// the agents: deterministic on every agent, and only the partitions of an
// agent that joins or leaves move. With a client zone that some agent
// has, only agents of that zone are candidates (no cross-zone traffic).
// ok is false when there are no agents: no leader may be named.
func leaderAmong(agents []metastore.Agent, topic metastore.TopicID, partition int32, clientZone string) (leader metastore.Agent, ok bool) {
	var key [20]byte
	copy(key[:], topic[:])
	binary.BigEndian.PutUint32(key[16:], uint32(partition))
	return pick(agents, key[:], clientZone)
}

// brokersFor is the live agents this agent can vouch for as a client of
// the named listener sees them: each with its address on that listener
// (Kafka answers each client the addresses of the listener it connected
// to); agents without the listener are left out. vouched is false when
// none is left (this agent is leaving, cannot reach the metastore, or
// the registry lost the listener): then the list holds this agent alone,
// since an empty broker list helps no client, and no agent may be named
// as a leader.
func (a *Agent) brokersFor(listener string) (brokers []metastore.Agent, vouched bool) {
	live := a.members.vouchedAgents()
	out := make([]metastore.Agent, 0, len(live))
	for _, x := range live {
		if ep, ok := x.Endpoint(listener); ok {
			x.Host, x.Port = ep.Host, ep.Port
			out = append(out, x)
		}
	}
	if len(out) > 0 {
		return out, true
	}
	self := a.self()
	if ep, ok := self.Endpoint(listener); ok {
		self.Host, self.Port = ep.Host, ep.Port
	}
	return []metastore.Agent{self}, false
}

// coordinatorFor names the agent that coordinates a consumer group (or
// any other keyed coordinator), by the same hashing as leaderAmong, over
// the agents whose lease this agent can vouch for (ok is false when there
// are none). Group state is persisted, so another agent takes over when
// one leaves.
func (a *Agent) coordinatorFor(key string) (coordinator metastore.Agent, ok bool) {
	return pick(a.members.vouchedAgents(), []byte("c\x00"+key), "")
}

// groupOwnership is the agent as its group coordinator asks it
// (group.Ownership).
type groupOwnership struct{ a *Agent }

// Owns implements group.Ownership: the group hashes to this agent and the
// agent can vouch for its lease. An agent past its lease may have been
// replaced as the group's coordinator by now, whatever its cached list of
// live agents says.
func (o groupOwnership) Owns(group string) (term uint64, ok bool) {
	term, held := o.a.members.lease()
	c, named := o.a.coordinatorFor(group)
	return term, held && named && c.NodeID == o.a.self().NodeID
}

// txnCoordinatorFor names the agent that coordinates a transactional id,
// by the same hashing as groups over the same vouched-for agents, with a
// key of its own so a group and a transactional id of one name need not
// land together; ok is false when no agent can be vouched for.
func (a *Agent) txnCoordinatorFor(id string) (coordinator metastore.Agent, ok bool) {
	return pick(a.members.vouchedAgents(), []byte("t\x00"+id), "")
}

// txnOwnership is the agent as its transaction coordinator asks it
// (txn.Ownership), as groupOwnership is for groups.
type txnOwnership struct{ a *Agent }

// Owns implements txn.Ownership.
func (o txnOwnership) Owns(id string) (term uint64, ok bool) {
	term, held := o.a.members.lease()
	c, named := o.a.txnCoordinatorFor(id)
	return term, held && named && c.NodeID == o.a.self().NodeID
}

// pick is rendezvous (highest random weight) hashing of key over agents;
// ok is false when there are none.
func pick(agents []metastore.Agent, key []byte, zone string) (best metastore.Agent, ok bool) {
	if len(agents) == 0 {
		return metastore.Agent{}, false
	}
	candidates := agents
	if zone != "" && slices.ContainsFunc(agents, func(x metastore.Agent) bool { return x.Zone == zone }) {
		candidates = nil
		for _, x := range agents {
			if x.Zone == zone {
				candidates = append(candidates, x)
			}
		}
	}
	var bestHi uint64
	for i, x := range candidates {
		h := fnv.New64a()
		_, _ = h.Write(key)
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(x.ID))
		score := mix64(h.Sum64())
		if i == 0 || score > bestHi || score == bestHi && x.NodeID < best.NodeID {
			best, bestHi = x, score
		}
	}
	return best, true
}

// mix64 is a finalizer that spreads FNV's weak high bits (splitmix64).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// zoneMarker in a client id names the client's availability zone, e.g.
// client.id "orders-svc,silt_az=eu-west-1a".
const zoneMarker = "silt_az="

// clientZone extracts the zone from a client id ("" when absent). The zone
// ends at a comma, semicolon, space or ampersand.
func clientZone(clientID string) string {
	i := strings.Index(clientID, zoneMarker)
	if i < 0 {
		return ""
	}
	z := clientID[i+len(zoneMarker):]
	if j := strings.IndexAny(z, ",; &"); j >= 0 {
		z = z[:j]
	}
	return z
}
