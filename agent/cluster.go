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
// should agree on it within a few seconds.
const liveRefresh = 2 * time.Second

// membership is the agent's cluster membership: its lease in the
// metastore and the cached list of live agents.
type membership struct {
	a *Agent

	// mu guards self, live, registered and running.
	mu         sync.Mutex
	self       metastore.Agent
	live       []metastore.Agent // sorted by node id; always holds self once registered
	registered bool
	running    bool // the lease loop was started

	// ctx bounds the lease loop's store calls; stop cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	stopc  chan struct{}
	done   chan struct{}
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

// register computes the advertised address from the bound listener and
// registers the agent.
func (m *membership) register(ctx context.Context, bound net.Addr) error {
	host, portStr, err := net.SplitHostPort(bound.String())
	if err != nil {
		return fmt.Errorf("listener address %s: %w", bound, err)
	}
	port, _ := strconv.Atoi(portStr)
	if h, _, err := net.SplitHostPort(m.a.cfg.ListenAddr); err == nil && h != "" {
		host = h
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() || host == "" {
		host = "127.0.0.1"
	}
	if m.a.cfg.AdvertisedHost != "" {
		host = m.a.cfg.AdvertisedHost
	}
	if m.a.cfg.AdvertisedPort != 0 {
		port = int(m.a.cfg.AdvertisedPort)
	}
	m.mu.Lock()
	m.self.Host, m.self.Port = host, int32(port)
	self := m.self
	m.mu.Unlock()

	id, err := m.a.store.RegisterAgent(ctx, self, m.a.cfg.LeaseTTL)
	if err != nil {
		return fmt.Errorf("register agent: %w", err)
	}
	m.mu.Lock()
	m.self.NodeID = id
	m.registered = true
	m.mu.Unlock()
	m.refresh(ctx)
	return nil
}

// start runs the lease loop.
func (m *membership) start() {
	m.mu.Lock()
	m.running = true
	m.mu.Unlock()
	go m.run()
}

// run renews the lease every LeaseTTL/3 and refreshes the live list every
// liveRefresh, until stop.
func (m *membership) run() {
	defer close(m.done)
	renew := time.NewTicker(m.a.cfg.LeaseTTL / 3)
	defer renew.Stop()
	live := time.NewTicker(min(liveRefresh, m.a.cfg.LeaseTTL/3))
	defer live.Stop()
	for {
		select {
		case <-m.stopc:
			return
		case <-renew.C:
			m.renew()
		case <-live.C:
			ctx, cancel := context.WithTimeout(m.ctx, m.a.cfg.LeaseTTL/3)
			m.refresh(ctx)
			cancel()
		}
	}
}

func (m *membership) renew() {
	ctx, cancel := context.WithTimeout(m.ctx, m.a.cfg.LeaseTTL/3)
	defer cancel()
	err := m.a.store.RenewAgent(ctx, m.a.cfg.AgentID, m.a.cfg.LeaseTTL)
	if errors.Is(err, metastore.ErrLeaseExpired) {
		m.a.logger.Warn("agent lease expired; registering again")
		m.mu.Lock()
		self := m.self
		m.mu.Unlock()
		var id int32
		if id, err = m.a.store.RegisterAgent(ctx, self, m.a.cfg.LeaseTTL); err == nil {
			m.mu.Lock()
			m.self.NodeID = id
			m.mu.Unlock()
		}
	}
	if err != nil {
		// The next tick retries; until the lease lapses nothing changes
		// for clients.
		m.a.logger.Error("renew agent lease", "err", err)
	}
}

// refresh reloads the live agents; on failure the old list stays.
func (m *membership) refresh(ctx context.Context) {
	live, err := m.a.store.LiveAgents(ctx)
	if err != nil {
		m.a.logger.Warn("list live agents", "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.ContainsFunc(live, func(x metastore.Agent) bool { return x.ID == m.self.ID }) {
		live = append(live, m.self)
	}
	slices.SortFunc(live, func(x, y metastore.Agent) int { return int(x.NodeID) - int(y.NodeID) })
	m.live = live
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

// deregister removes the lease so other agents stop naming this one.
func (m *membership) deregister(ctx context.Context) error {
	m.mu.Lock()
	registered := m.registered
	m.registered = false
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

// liveAgents returns the cached live agents, sorted by node id. The slice
// is shared: callers must not modify it.
func (m *membership) liveAgents() []metastore.Agent {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.live) == 0 {
		return []metastore.Agent{m.self}
	}
	return m.live
}

// self describes this agent as Metadata advertises it.
func (a *Agent) self() metastore.Agent {
	a.members.mu.Lock()
	defer a.members.mu.Unlock()
	return a.members.self
}

// liveAgents is the cached list of live agents (always holding this one),
// sorted by node id. Callers must not modify it.
func (a *Agent) liveAgents() []metastore.Agent { return a.members.liveAgents() }

// leaderFor names the agent that Metadata reports as a partition's leader.
// Every agent can serve every partition; the leader only steers one
// client's traffic for a partition to one agent, so it is picked by
// rendezvous hashing over the live agents: deterministic on every agent,
// and only the partitions of an agent that joins or leaves move. With a
// client zone that some live agent has, only agents of that zone are
// candidates (no cross-zone traffic).
func (a *Agent) leaderFor(topic metastore.TopicID, partition int32, clientZone string) metastore.Agent {
	var key [20]byte
	copy(key[:], topic[:])
	binary.BigEndian.PutUint32(key[16:], uint32(partition))
	return pick(a.liveAgents(), key[:], clientZone)
}

// coordinatorFor names the agent that coordinates a consumer group (or
// any other keyed coordinator), by the same hashing as leaderFor. Group
// state is persisted, so another agent takes over when one leaves.
func (a *Agent) coordinatorFor(key string) metastore.Agent {
	return pick(a.liveAgents(), []byte("c\x00"+key), "")
}

// pick is rendezvous (highest random weight) hashing of key over agents.
func pick(agents []metastore.Agent, key []byte, zone string) metastore.Agent {
	candidates := agents
	if zone != "" && slices.ContainsFunc(agents, func(x metastore.Agent) bool { return x.Zone == zone }) {
		candidates = nil
		for _, x := range agents {
			if x.Zone == zone {
				candidates = append(candidates, x)
			}
		}
	}
	var (
		best   metastore.Agent
		bestHi uint64
	)
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
	return best
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
