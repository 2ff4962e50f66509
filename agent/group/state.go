package group

import (
	"bytes"
	"errors"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

// state is a group's place in Kafka's classic group state machine:
//
//	Empty -> PreparingRebalance        a member joins
//	PreparingRebalance -> Completing   every known member rejoined, or the
//	                                   rebalance timeout passed
//	PreparingRebalance -> Empty        nobody is left when the join completes
//	CompletingRebalance -> Stable      the leader's SyncGroup was saved
//	Completing/Stable -> Preparing     a member joins, leaves, changes its
//	                                   metadata or its session expires
//	any -> Dead                        DeleteGroups (the group is then unloaded)
type state int32

const (
	stateEmpty state = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s state) String() string { return stateNames[s] }

func parseState(s string) (state, bool) {
	for i, n := range stateNames {
		if n == s {
			return state(i), true
		}
	}
	return stateEmpty, false
}

// member is one classic-protocol group member.
type member struct {
	id               string
	instanceID       *string // static membership (KIP-345)
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol // in the member's preference order
	assignment       []byte

	// joinReply is set while the member waits in JoinGroup, syncReply
	// while it waits in SyncGroup; each is buffered (1) so the group
	// goroutine never blocks on a client.
	joinReply   chan *kmsg.JoinGroupResponse
	joinVersion int16
	syncReply   chan *kmsg.SyncGroupResponse
	syncVersion int16

	// hbSeq identifies the current session timer; a timer that fires with
	// an older seq was superseded by a heartbeat.
	hbSeq   uint64
	hbTimer *time.Timer
}

// metadataFor returns the member's metadata for protocol name.
func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

// sameProtocols reports whether a rejoin carries exactly the protocols (names,
// order and metadata) the member joined with.
func (m *member) sameProtocols(protocolType string, ps []kmsg.JoinGroupRequestProtocol) bool {
	if protocolType != m.protocolType || len(ps) != len(m.protocols) {
		return false
	}
	for i := range ps {
		if ps[i].Name != m.protocols[i].Name || !bytes.Equal(ps[i].Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

// sameSubscription reports whether a restarted static member asks for what
// its previous incarnation had: the same protocol type, the group's current
// protocol still among its choices (Kafka's test: the protocol selected for
// the next generation would not change), and, for the consumer protocol,
// the same subscribed topics. The rest of consumer metadata (owned
// partitions, generation, user data) differs in every restarted client by
// design, so comparing bytes would rebalance on every static restart; for
// other protocol types the metadata bytes are compared.
func (m *member) sameSubscription(protocol, protocolType string, ps []kmsg.JoinGroupRequestProtocol) bool {
	if protocolType != m.protocolType {
		return false
	}
	var next []byte
	found := false
	for _, p := range ps {
		if p.Name == protocol {
			next, found = p.Metadata, true
		}
	}
	if !found {
		return false
	}
	prev := m.metadataFor(protocol)
	if protocolType != "consumer" {
		return bytes.Equal(prev, next)
	}
	var a, b kmsg.ConsumerMemberMetadata
	if a.ReadFrom(prev) != nil || b.ReadFrom(next) != nil {
		return bytes.Equal(prev, next)
	}
	x, y := slices.Clone(a.Topics), slices.Clone(b.Topics)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// group is one consumer group. Every field below ops/done is owned by the
// group's goroutine (run) and touched nowhere else; the exception is view,
// an atomic mirror for metrics and ListGroups.
type group struct {
	c    *Coordinator
	name string
	ops  chan func(*group) // unbuffered: an accepted op always runs
	done chan struct{}     // closed when run returns

	view atomic.Pointer[groupView] // nil while the group does not exist

	// kind is the group's type. A consumer group's state is in cg; the
	// classic fields below are then unused (a group converts between the
	// two, see migrate.go). kindShare marks a share group's name: this
	// coordinator does not run share groups (agent/share does) and only
	// answers that the group is of another type.
	kind groupKind
	cg   *consumerGroup

	loaded bool  // the metastore copy was read (and the group claimed)
	exists bool  // the group is in the metastore (or about to be)
	gone   bool  // run should unload the group after the current op
	seq    int64 // write counter of the metastore copy (see persist.go)
	// epoch is the ownership epoch of this coordinator's claim, which
	// every metastore write names; term is the agent's lease term the
	// group was loaded under (see Ownership).
	epoch int64
	term  uint64

	state        state
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	static       map[string]string      // instance id -> member id
	pending      map[string]*time.Timer // member ids handed out with MEMBER_ID_REQUIRED
	pendingSync  map[string]bool        // members that have not synced this generation

	rebalanceSeq   uint64
	rebalanceTimer *time.Timer
	// initialDelay is true while an empty group's first rebalance is held
	// open by Config.InitialRebalanceDelay.
	initialDelay bool
	syncSeq      uint64
	syncTimer    *time.Timer
}

func newGroup(c *Coordinator, name string) *group {
	g := &group{
		c:           c,
		name:        name,
		ops:         make(chan func(*group)),
		done:        make(chan struct{}),
		members:     make(map[string]*member),
		static:      make(map[string]string),
		pending:     make(map[string]*time.Timer),
		pendingSync: make(map[string]bool),
	}
	return g
}

// groupKind is a group's type as this coordinator handles it.
type groupKind int8

const (
	kindClassic groupKind = iota
	kindConsumer
	kindShare
)

// groupView is what metrics and ListGroups read of a running group.
type groupView struct {
	state        string
	protocolType string
	groupType    string // metastore.GroupType*
}

// publish updates view from the group's state.
func (g *group) publish() {
	switch g.kind {
	case kindConsumer:
		g.view.Store(&groupView{state: g.cg.stateName(), protocolType: consumerProtocolType, groupType: metastore.GroupTypeConsumer})
	case kindShare:
		g.view.Store(nil)
	default:
		g.view.Store(&groupView{state: g.state.String(), protocolType: g.protocolType, groupType: metastore.GroupTypeClassic})
	}
}

// run owns the group until it unloads itself or the coordinator closes.
func (g *group) run() {
	defer g.c.wg.Done()
	defer close(g.done)
	for {
		select {
		case op := <-g.ops:
			g.runOp(op)
			if !g.gone && g.loaded && (g.kind == kindShare || !g.exists && len(g.members) == 0 && len(g.pending) == 0) {
				// A name that was only looked at (DescribeGroups of an
				// unknown group): keep nothing for it.
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

// runOp runs one op. A panic (a bug) must not take the agent down: the
// group is dropped and reloaded from the metastore on next use, and its
// waiting clients get NOT_COORDINATOR and retry.
func (g *group) runOp(op func(*group)) {
	defer func() {
		if p := recover(); p != nil {
			g.c.logger.Error("panic in group coordinator; unloading group", "group", g.name, "panic", p, "stack", string(debug.Stack()))
			g.gone = true
		}
	}()
	op(g)
}

// unload makes run drop the group after the current op.
func (g *group) unload() { g.gone = true }

// shutdown answers every waiting request with NOT_COORDINATOR and stops
// every timer.
func (g *group) shutdown() {
	for _, m := range g.members {
		g.replyJoinErr(m, kerr.NotCoordinator.Code)
		g.replySyncErr(m, kerr.NotCoordinator.Code)
		if m.hbTimer != nil {
			m.hbTimer.Stop()
		}
	}
	for _, t := range g.pending {
		t.Stop()
	}
	g.stopRebalanceTimer()
	g.stopSyncTimer()
	if g.cg != nil {
		g.cg.stopTimers()
	}
	g.view.Store(nil)
}

// setState moves the state machine and its metrics mirror.
func (g *group) setState(s state) {
	g.state = s
	g.publish()
	if h := g.c.stateHook; h != nil {
		h(g.name, s.String())
	}
}

// owned reports whether the coordinator may act for g now: the agent owns
// the group, under the lease term g was loaded in. When it may not, g is
// dropped after the current op, unchanged, and the next request reloads
// it under a new claim.
func (g *group) owned() bool {
	term, ok := g.c.owns(g.name)
	if ok && !g.loaded {
		g.term = term // ensureLoaded runs under this term
		return true
	}
	if ok && term == g.term {
		return true
	}
	if g.loaded && !g.gone {
		g.c.logger.Info("dropping group state: this agent does not coordinate the group now, or its lease lapsed since the group was loaded",
			"group", g.name, "state", g.state, "generation", g.generation, "members", len(g.members))
	}
	g.gone = true
	return false
}

// after runs fn on the group goroutine once d has passed, unless the group
// is gone by then or not owned (owned) when it fires. Callers guard
// against stale timers with a seq.
func (g *group) after(d time.Duration, fn func()) *time.Timer {
	return time.AfterFunc(d, func() {
		select {
		case g.ops <- func(*group) {
			if g.owned() {
				fn()
			}
		}:
		case <-g.done:
		case <-g.c.ctx.Done():
		}
	})
}

// heartbeat (re)starts m's session timer.
func (g *group) heartbeat(m *member) {
	if m.hbTimer != nil {
		m.hbTimer.Stop()
	}
	m.hbSeq++
	seq := m.hbSeq
	m.hbTimer = g.after(m.sessionTimeout, func() { g.sessionExpired(m, seq) })
}

// sessionExpired removes a member whose session ran out. A member waiting
// in JoinGroup or SyncGroup is alive: its request is its heartbeat.
func (g *group) sessionExpired(m *member, seq uint64) {
	if g.members[m.id] != m || m.hbSeq != seq {
		return
	}
	if m.joinReply != nil || m.syncReply != nil {
		g.heartbeat(m)
		return
	}
	g.c.logger.Info("group member session expired", "group", g.name, "member", m.id, "timeout", m.sessionTimeout)
	g.removeMember(m, kerr.UnknownMemberID.Code)
	g.membershipChanged()
}

// membershipChanged reacts to a member leaving, as Kafka's
// maybePrepareRebalance / tryCompleteJoin do.
func (g *group) membershipChanged() {
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.prepareRebalance()
	case statePreparingRebalance:
		g.tryCompleteJoin()
	}
}

// removeMember drops m without touching the state machine; callers follow
// with membershipChanged when the group should react.
func (g *group) removeMember(m *member, code int16) {
	if m.hbTimer != nil {
		m.hbTimer.Stop()
	}
	g.replyJoinErr(m, code)
	g.replySyncErr(m, code)
	delete(g.members, m.id)
	delete(g.pendingSync, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		for id := range g.members {
			g.leader = id
			break
		}
	}
}

func (g *group) replyJoinErr(m *member, code int16) {
	if m.joinReply == nil {
		return
	}
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = m.joinVersion
	resp.ErrorCode = code
	resp.MemberID = m.id
	resp.Generation = -1
	m.joinReply <- resp
	m.joinReply = nil
}

func (g *group) replySyncErr(m *member, code int16) {
	if m.syncReply == nil {
		return
	}
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = m.syncVersion
	resp.ErrorCode = code
	m.syncReply <- resp
	m.syncReply = nil
}

func (g *group) stopRebalanceTimer() {
	g.rebalanceSeq++
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
		g.rebalanceTimer = nil
	}
	g.initialDelay = false
}

func (g *group) stopSyncTimer() {
	g.syncSeq++
	if g.syncTimer != nil {
		g.syncTimer.Stop()
		g.syncTimer = nil
	}
}

// maxRebalanceTimeout is how long a rebalance waits for members to rejoin.
func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// prepareRebalance starts a new generation's join phase. Members waiting
// for an assignment of the abandoned generation get REBALANCE_IN_PROGRESS.
func (g *group) prepareRebalance() {
	if g.state == stateCompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			g.replySyncErr(m, kerr.RebalanceInProgress.Code)
		}
	}
	g.stopSyncTimer()
	clear(g.pendingSync)
	g.stopRebalanceTimer()

	wasEmpty := g.state == stateEmpty
	g.setState(statePreparingRebalance)
	g.c.metrics.rebalances.Inc()

	d := g.maxRebalanceTimeout()
	if wasEmpty && g.c.cfg.InitialRebalanceDelay > 0 {
		// Kafka holds an empty group's first rebalance open a little so
		// members starting together share one generation.
		d = min(d, g.c.cfg.InitialRebalanceDelay)
		g.initialDelay = true
	}
	seq := g.rebalanceSeq
	g.rebalanceTimer = g.after(d, func() {
		if g.rebalanceSeq != seq || g.state != statePreparingRebalance {
			return
		}
		if g.initialDelay {
			g.initialDelay = false
			// The delay is over; wait the rest of the rebalance
			// timeout only for members that have not rejoined.
			if g.allJoined() {
				g.completeJoin()
				return
			}
			g.rebalanceSeq++
			seq2 := g.rebalanceSeq
			g.rebalanceTimer = g.after(g.maxRebalanceTimeout(), func() {
				if g.rebalanceSeq == seq2 && g.state == statePreparingRebalance {
					g.completeJoin()
				}
			})
			return
		}
		g.completeJoin()
	})
	// A group left with nobody to wait for completes at once.
	g.tryCompleteJoin()
}

// maybePrepareRebalance is Kafka's: only a group that can rebalance does.
func (g *group) maybePrepareRebalance() {
	switch g.state {
	case stateEmpty, stateStable, stateCompletingRebalance:
		g.prepareRebalance()
	}
}

// allJoined reports whether every member has rejoined and no member id
// handed out with MEMBER_ID_REQUIRED is still expected.
func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.joinReply == nil {
			return false
		}
	}
	return true
}

func (g *group) tryCompleteJoin() {
	if g.state == statePreparingRebalance && !g.initialDelay && g.allJoined() {
		g.completeJoin()
	}
}

// completeJoin ends the join phase: dynamic members that did not rejoin
// are dropped (static ones stay until their session expires, as in Kafka),
// the generation advances, a protocol is chosen and every waiting member
// gets its JoinGroup answer; the leader's carries every member's metadata.
func (g *group) completeJoin() {
	g.stopRebalanceTimer()
	for _, m := range g.members {
		if m.joinReply == nil && m.instanceID == nil {
			g.removeMember(m, kerr.UnknownMemberID.Code)
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol = ""
		g.leader = ""
		g.setState(stateEmpty)
		// A failure is logged by persist; the next save catches up.
		_ = g.persist()
		return
	}
	g.protocol = g.selectProtocol()
	if m := g.members[g.leader]; m == nil || m.joinReply == nil {
		// Prefer a leader that is here to receive the metadata.
		for id, m := range g.members {
			if m.joinReply != nil {
				g.leader = id
				break
			}
		}
	}
	g.setState(stateCompletingRebalance)
	for id, m := range g.members {
		g.pendingSync[id] = true
		m.assignment = nil
	}
	// Saved before anyone learns the new generation, so a coordinator
	// that lost the group to another agent answers NOT_COORDINATOR
	// (run's shutdown does) instead of handing out a generation that the
	// metastore never saw. Other save failures are not fatal here: the
	// state is saved again when the generation's assignment is.
	if err := g.persist(); errors.Is(err, metastore.ErrGroupFenced) {
		return
	}
	for _, m := range g.members {
		if m.joinReply == nil {
			continue
		}
		resp := g.joinResponse(m, m.joinVersion, false)
		m.joinReply <- resp
		m.joinReply = nil
		g.heartbeat(m)
	}
	// A member that never sends SyncGroup must not hold the group
	// forever (Kafka's pending-sync timeout).
	g.stopSyncTimer()
	seq := g.syncSeq
	g.syncTimer = g.after(g.maxRebalanceTimeout(), func() { g.syncExpired(seq) })
}

// syncExpired drops members that did not sync within the rebalance timeout
// of their generation and rebalances.
func (g *group) syncExpired(seq uint64) {
	if g.syncSeq != seq || len(g.pendingSync) == 0 {
		return
	}
	if g.state != stateCompletingRebalance && g.state != stateStable {
		return
	}
	for id := range g.pendingSync {
		if m := g.members[id]; m != nil {
			g.c.logger.Info("group member did not sync in time", "group", g.name, "member", id)
			g.removeMember(m, kerr.UnknownMemberID.Code)
		}
	}
	g.prepareRebalance()
}

// joinResponse is the JoinGroup answer for m in the current generation.
// The leader gets every member's metadata for the chosen protocol.
func (g *group) joinResponse(m *member, version int16, skipAssignment bool) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	resp.Generation = g.generation
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	resp.SkipAssignment = skipAssignment
	if m.id == g.leader {
		for _, o := range g.members {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID = o.id
			rm.InstanceID = o.instanceID
			rm.ProtocolMetadata = o.metadataFor(g.protocol)
			resp.Members = append(resp.Members, rm)
		}
	}
	return resp
}

// selectProtocol picks the group's protocol as Kafka does: among the
// protocols every member supports, each member votes for the first one in
// its own preference order, and the most votes win (ties: the earliest in
// the leader's preference order).
func (g *group) selectProtocol() string {
	counts := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			counts[p.Name]++
		}
	}
	n := len(g.members)
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if counts[p.Name] == n {
				votes[p.Name]++
				break
			}
		}
	}
	var order []kmsg.JoinGroupRequestProtocol
	if l := g.members[g.leader]; l != nil {
		order = l.protocols
	} else {
		for _, m := range g.members {
			order = m.protocols
			break
		}
	}
	best, bestVotes := "", 0
	for _, p := range order {
		if v := votes[p.Name]; v > bestVotes {
			best, bestVotes = p.Name, v
		}
	}
	return best
}

// supportsProtocols is Kafka's check that a joining member can be part of
// the group: an empty group takes any non-empty protocol list; otherwise
// the protocol type must match and one protocol must be supported by every
// current member.
func (g *group) supportsProtocols(protocolType string, ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(ps) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	counts := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			counts[p.Name]++
		}
	}
	for _, p := range ps {
		if counts[p.Name] == len(g.members) {
			return true
		}
	}
	return false
}
