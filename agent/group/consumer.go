package group

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/groupconfig"
	"github.com/siltdata/silt/metastore"
)

// The KIP-848 consumer group (see the package doc): ConsumerGroupHeartbeat
// and the group's member lifecycle. Members using the classic protocol in
// a consumer group, and conversions between the two kinds of group, are
// in migrate.go.

// consumerProtocolType is the protocol type of consumer groups, as
// ListGroups reports it and as classic members of them must join with.
const consumerProtocolType = "consumer"

// Consumer group states (Kafka's ConsumerGroupState).
const (
	consumerEmpty       = "Empty"
	consumerAssigning   = "Assigning"
	consumerReconciling = "Reconciling"
	consumerStable      = "Stable"
)

// Member epochs with a meaning of their own in ConsumerGroupHeartbeat.
const (
	epochJoin        = 0
	epochLeave       = -1
	epochStaticLeave = -2
)

// consumerGroup is a consumer group's state, owned by its group goroutine.
type consumerGroup struct {
	epoch           int32 // the group epoch
	assignmentEpoch int32 // the epoch target was computed for
	members         map[string]*cmember
	static          map[string]string     // instance id -> member id
	target          map[string]assignment // member id -> target assignment
	// subs are the subscribed topics that exist, as of the last refresh;
	// a change bumps the group epoch.
	subs map[string]topicMeta
	// refreshAt is when subs and cfg are looked at again.
	refreshAt time.Time
	// cfg is the group's effective configs, refreshed with subs.
	cfg groupconfig.Group
}

// cmember is one member of a consumer group.
type cmember struct {
	id               string
	instanceID       *string
	rackID           *string
	clientID         string
	clientHost       string
	rebalanceTimeout time.Duration
	topics           []string // subscribed names, sorted
	regex            string   // subscribed regular expression, "" for none
	assignor         string   // server assignor it asked for, "" for none
	epoch, prevEpoch int32
	state            memberState
	assigned         assignment
	revoking         assignment
	// classic is set for a member that speaks the classic protocol
	// (JoinGroup, SyncGroup, Heartbeat) in this consumer group.
	classic *classicMeta

	// Timers, each with a sequence number so that a timer that fires
	// after it was replaced does nothing: the session, the rebalance
	// timeout while revoking, and for classic members the join and sync
	// deadlines.
	sessionSeq, rebalanceSeq, joinSeq, syncSeq         uint64
	sessionTimer, rebalanceTimer, joinTimer, syncTimer *time.Timer
}

// classicMeta is what a classic member of a consumer group joined with.
type classicMeta struct {
	sessionTimeout time.Duration
	protocols      []kmsg.JoinGroupRequestProtocol
}

// reconciledTo reports whether m has its whole target at epoch.
func (m *cmember) reconciledTo(epoch int32) bool {
	return m.epoch == epoch && m.state == memberStable
}

// persistedEqual reports whether m and o would be saved alike.
func (m *cmember) persistedEqual(o *cmember) bool {
	eq := func(a, b *string) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }
	return m.id == o.id && eq(m.instanceID, o.instanceID) && eq(m.rackID, o.rackID) &&
		m.clientID == o.clientID && m.clientHost == o.clientHost && m.rebalanceTimeout == o.rebalanceTimeout &&
		slices.Equal(m.topics, o.topics) && m.regex == o.regex && m.assignor == o.assignor &&
		m.epoch == o.epoch && m.prevEpoch == o.prevEpoch && m.state == o.state &&
		m.assigned.equal(o.assigned) && m.revoking.equal(o.revoking) &&
		(m.classic == nil) == (o.classic == nil) &&
		(m.classic == nil || m.classic.sessionTimeout == o.classic.sessionTimeout && slices.EqualFunc(m.classic.protocols, o.classic.protocols,
			func(a, b kmsg.JoinGroupRequestProtocol) bool {
				return a.Name == b.Name && string(a.Metadata) == string(b.Metadata)
			}))
}

// copyMember returns a copy of m's persisted fields (no timers).
func (m *cmember) copyMember() *cmember {
	c := &cmember{
		id: m.id, instanceID: m.instanceID, rackID: m.rackID, clientID: m.clientID, clientHost: m.clientHost,
		rebalanceTimeout: m.rebalanceTimeout, topics: slices.Clone(m.topics), regex: m.regex, assignor: m.assignor,
		epoch: m.epoch, prevEpoch: m.prevEpoch, state: m.state, assigned: m.assigned.clone(), revoking: m.revoking.clone(),
	}
	if m.classic != nil {
		cm := *m.classic
		cm.protocols = slices.Clone(m.classic.protocols)
		c.classic = &cm
	}
	return c
}

// newConsumerGroup returns an empty consumer group with the groups'
// default configs (its own are read at the first heartbeat).
func newConsumerGroup(d groupconfig.Defaults) *consumerGroup {
	return &consumerGroup{
		members: map[string]*cmember{},
		static:  map[string]string{},
		target:  map[string]assignment{},
		subs:    map[string]topicMeta{},
		cfg:     groupconfig.Effective(d, nil),
	}
}

// stateName is the group's state (Kafka's maybeUpdateGroupState).
func (cg *consumerGroup) stateName() string {
	switch {
	case len(cg.members) == 0:
		return consumerEmpty
	case cg.epoch > cg.assignmentEpoch:
		return consumerAssigning
	}
	for _, m := range cg.members {
		if !m.reconciledTo(cg.assignmentEpoch) {
			return consumerReconciling
		}
	}
	return consumerStable
}

// numClassic counts the members using the classic protocol.
func (cg *consumerGroup) numClassic() int {
	n := 0
	for _, m := range cg.members {
		if m.classic != nil {
			n++
		}
	}
	return n
}

// ownerEpoch returns the epoch of the member owning partition p of topic
// t (assigned or pending revocation), or -1.
func (cg *consumerGroup) ownerEpochs() func(metastore.TopicID, int32) int32 {
	owners := map[metastore.TopicID]map[int32]int32{}
	put := func(a assignment, epoch int32) {
		for t, ps := range a {
			if owners[t] == nil {
				owners[t] = map[int32]int32{}
			}
			for _, p := range ps {
				owners[t][p] = epoch
			}
		}
	}
	for _, m := range cg.members {
		put(m.assigned, m.epoch)
		put(m.revoking, m.epoch)
	}
	return func(t metastore.TopicID, p int32) int32 {
		if e, ok := owners[t][p]; ok {
			return e
		}
		return -1
	}
}

// preferredAssignor is the assignor most members asked for (ties: the
// first in name order), or def when none asked.
func (cg *consumerGroup) preferredAssignor(def string) string {
	counts := map[string]int{}
	for _, m := range cg.members {
		if m.assignor != "" {
			counts[m.assignor]++
		}
	}
	best, n := def, 0
	for _, name := range slices.Sorted(maps.Keys(counts)) {
		if counts[name] > n {
			best, n = name, counts[name]
		}
	}
	return best
}

// stopTimers stops every member's timers.
func (cg *consumerGroup) stopTimers() {
	for _, m := range cg.members {
		m.stopTimers()
	}
}

func (m *cmember) stopTimers() {
	for _, t := range []*time.Timer{m.sessionTimer, m.rebalanceTimer, m.joinTimer, m.syncTimer} {
		if t != nil {
			t.Stop()
		}
	}
	m.sessionSeq++
	m.rebalanceSeq++
	m.joinSeq++
	m.syncSeq++
}

// ConsumerGroupHeartbeat answers a ConsumerGroupHeartbeat request (v0-v1).
func (c *Coordinator) ConsumerGroupHeartbeat(ctx context.Context, cl Client, req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	resp.MemberEpoch = req.MemberEpoch
	if code, msg := c.validateConsumerHeartbeat(req); code != 0 {
		resp.ErrorCode, resp.ErrorMessage = code, &msg
		return resp
	}
	err := c.do(ctx, req.Group, func(g *group) { g.consumerHeartbeat(cl, req, resp) })
	if err != nil {
		resp.ErrorCode = errorCode(err)
	}
	return resp
}

// validateConsumerHeartbeat is Kafka's
// throwIfConsumerGroupHeartbeatRequestIsInvalid: INVALID_REQUEST,
// UNSUPPORTED_ASSIGNOR or INVALID_REGULAR_EXPRESSION with Kafka's
// messages.
func (c *Coordinator) validateConsumerHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) (int16, string) {
	invalid := kerr.InvalidRequest.Code
	empty := func(s *string) bool { return s != nil && len(strings.TrimSpace(*s)) == 0 }
	switch {
	case strings.TrimSpace(req.Group) == "":
		return invalid, "GroupId can't be empty."
	case empty(req.InstanceID):
		return invalid, "InstanceId can't be empty."
	case empty(req.RackID):
		return invalid, "RackId can't be empty."
	}
	switch e := req.MemberEpoch; {
	case e > 0 || e == epochLeave:
		if strings.TrimSpace(req.MemberID) == "" {
			return invalid, "MemberId can't be empty."
		}
	case e == epochJoin:
		if req.Version >= 1 && strings.TrimSpace(req.MemberID) == "" {
			return invalid, "MemberId can't be empty."
		}
		if req.RebalanceTimeoutMillis == -1 {
			return invalid, "RebalanceTimeoutMs must be provided in first request."
		}
		if req.Topics == nil || len(req.Topics) > 0 {
			return invalid, "TopicPartitions must be empty when (re-)joining."
		}
		if len(req.SubscribedTopicNames) == 0 && (req.SubscribedTopicRegex == nil || *req.SubscribedTopicRegex == "") {
			return invalid, "SubscribedTopicNames or SubscribedTopicRegex must be set in first request."
		}
	case e == epochStaticLeave:
		if strings.TrimSpace(req.MemberID) == "" {
			return invalid, "MemberId can't be empty."
		}
		if req.InstanceID == nil {
			return invalid, "InstanceId can't be null."
		}
	default:
		return invalid, "MemberEpoch is invalid."
	}
	if req.ServerAssignor != nil && !slices.Contains(c.cfg.ConsumerAssignors, *req.ServerAssignor) {
		return kerr.UnsupportedAssignor.Code, fmt.Sprintf("ServerAssignor %s is not supported. Supported assignors: %s.",
			*req.ServerAssignor, strings.Join(c.cfg.ConsumerAssignors, ", "))
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		if _, err := compileRegex(*req.SubscribedTopicRegex); err != nil {
			return kerr.InvalidRegularExpression.Code, fmt.Sprintf("SubscribedTopicRegex `%s` is not a valid regular expression: %v.", *req.SubscribedTopicRegex, err)
		}
	}
	return 0, ""
}

// consumerHeartbeat runs on the group goroutine (Kafka's
// GroupMetadataManager.consumerGroupHeartbeat).
func (g *group) consumerHeartbeat(cl Client, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) {
	if err := g.ensureLoaded(); err != nil {
		resp.ErrorCode = errorCode(err)
		return
	}
	fail := func(code int16, format string, args ...any) {
		resp.ErrorCode = code
		resp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf(format, args...))
	}
	switch g.kind {
	case kindShare:
		fail(kerr.GroupIDNotFound.Code, "Group %s is not a consumer group.", g.name)
		return
	case kindClassic:
		switch {
		case req.MemberEpoch != epochJoin && (!g.exists || len(g.members) == 0):
			fail(kerr.GroupIDNotFound.Code, "Consumer group %s not found.", g.name)
			return
		case req.MemberEpoch != epochJoin:
			fail(kerr.GroupIDNotFound.Code, "Group %s is not a consumer group.", g.name)
			return
		case len(g.members) == 0 && len(g.pending) == 0:
			g.becomeConsumer(newConsumerGroup(g.c.cfg.Groups))
		default:
			if !g.upgradeToConsumer() {
				fail(kerr.GroupIDNotFound.Code, "Group %s is not a consumer group.", g.name)
				return
			}
		}
	}
	if req.MemberEpoch == epochLeave || req.MemberEpoch == epochStaticLeave {
		g.consumerLeave(req, resp)
		return
	}
	cg := g.cg

	// Find or make the member.
	memberID := req.MemberID
	if memberID == "" {
		memberID = uuid.NewString()
	}
	var m *cmember
	isNew := false
	switch {
	case req.MemberEpoch == epochJoin && req.InstanceID != nil:
		old := cg.members[cg.static[*req.InstanceID]]
		switch {
		case old == nil:
			m, isNew = cg.members[memberID], cg.members[memberID] == nil
		case old.classic == nil && old.epoch != epochStaticLeave:
			fail(kerr.UnreleasedInstanceID.Code, "Static member %s with instance id %s cannot join the group because the instance id is owned by %s member.",
				memberID, *req.InstanceID, old.id)
			return
		default:
			// The static member comes back (a restart): a new member
			// id takes over its assignment and target.
			m = old.copyMember()
			m.id, m.epoch, m.prevEpoch = memberID, 0, 0
			cg.target[memberID] = cg.target[old.id]
			g.removeConsumerMember(old)
			cg.members[memberID] = m
			cg.static[*req.InstanceID] = memberID
			g.c.logger.Info("static consumer group member replaced", "group", g.name, "instance", *req.InstanceID, "old", old.id, "new", memberID)
		}
	case req.MemberEpoch == epochJoin:
		m, isNew = cg.members[memberID], cg.members[memberID] == nil
	case req.InstanceID != nil:
		m = cg.members[cg.static[*req.InstanceID]]
		switch {
		case m == nil:
			fail(kerr.UnknownMemberID.Code, "Instance id %s is unknown.", *req.InstanceID)
			return
		case m.id != memberID:
			fail(kerr.FencedInstanceID.Code, "Static member %s with instance id %s was fenced by member %s.", memberID, *req.InstanceID, m.id)
			return
		}
	default:
		m = cg.members[memberID]
		if m == nil {
			fail(kerr.UnknownMemberID.Code, "Member %s is not a member of group %s.", memberID, g.name)
			return
		}
	}
	if isNew {
		if len(cg.members) >= g.c.cfg.ConsumerMaxSize {
			fail(kerr.GroupMaxSizeReached.Code, "The consumer group has reached its maximum capacity of %d members.", g.c.cfg.ConsumerMaxSize)
			return
		}
		m = &cmember{id: memberID, assigned: assignment{}, revoking: assignment{}}
	} else if req.MemberEpoch != epochJoin {
		owned := ownedAssignment(req.Topics)
		if code, msg := validateMemberEpoch(m, req.MemberEpoch, owned); code != 0 {
			fail(code, "%s", msg)
			return
		}
	}

	// 1. Update the member; a new subscription bumps the group epoch.
	before := m.copyMember()
	beforeEpoch, beforeTargetEpoch := cg.epoch, cg.assignmentEpoch
	updated := m.copyMember()
	if req.InstanceID != nil {
		updated.instanceID = req.InstanceID
	}
	if req.RackID != nil {
		updated.rackID = req.RackID
	}
	if req.RebalanceTimeoutMillis != -1 {
		updated.rebalanceTimeout = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	if req.ServerAssignor != nil {
		updated.assignor = *req.ServerAssignor
	}
	if req.SubscribedTopicNames != nil {
		names := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(names)
		updated.topics = slices.Compact(names)
	}
	if req.SubscribedTopicRegex != nil {
		updated.regex = *req.SubscribedTopicRegex
	}
	updated.clientID, updated.clientHost, updated.classic = cl.ID, cl.Host, nil
	subscriptionChanged := isNew || !slices.Equal(updated.topics, m.topics) || updated.regex != m.regex
	if isNew {
		cg.members[memberID] = m
		if updated.instanceID != nil {
			cg.static[*updated.instanceID] = memberID
		}
	}
	m.setPersisted(updated)
	if err := g.afterMemberChange(subscriptionChanged); err != nil {
		resp.ErrorCode = errorCode(err)
		return
	}

	// 2. The member reconciles towards its target.
	g.reconcileMember(m, ownedAssignment(req.Topics))
	g.consumerSession(m)

	if !m.persistedEqual(before) || isNew || cg.epoch != beforeEpoch || cg.assignmentEpoch != beforeTargetEpoch {
		if err := g.saveConsumer(); err != nil {
			resp.ErrorCode = errorCode(err)
			return
		}
	}
	resp.MemberID = &m.id
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(cg.cfg.ConsumerHeartbeatInterval.Milliseconds())
	full := req.MemberEpoch == epochJoin ||
		req.RebalanceTimeoutMillis != -1 && (req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil
	if full || !m.assigned.equal(before.assigned) {
		resp.Assignment = heartbeatAssignment(m.assigned)
	}
}

// setPersisted copies u's persisted fields into m, keeping m's timers.
func (m *cmember) setPersisted(u *cmember) {
	m.id, m.instanceID, m.rackID, m.clientID, m.clientHost = u.id, u.instanceID, u.rackID, u.clientID, u.clientHost
	m.rebalanceTimeout, m.topics, m.regex, m.assignor = u.rebalanceTimeout, u.topics, u.regex, u.assignor
	m.epoch, m.prevEpoch, m.state, m.assigned, m.revoking, m.classic = u.epoch, u.prevEpoch, u.state, u.assigned, u.revoking, u.classic
}

// validateMemberEpoch is Kafka's throwIfConsumerGroupMemberEpochIsInvalid:
// a member may be one epoch behind only when its bumped response was lost
// and it owns nothing beyond its current assignment.
func validateMemberEpoch(m *cmember, got int32, owned assignment) (int16, string) {
	switch {
	case got > m.epoch:
		return kerr.FencedMemberEpoch.Code, fmt.Sprintf("The consumer group member has a greater member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", got, m.epoch)
	case got < m.epoch && (got != m.prevEpoch || owned == nil || owned.minus(m.assigned).count() > 0):
		return kerr.FencedMemberEpoch.Code, fmt.Sprintf("The consumer group member has a smaller member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", got, m.epoch)
	}
	return 0, ""
}

// ownedAssignment is the owned partitions a heartbeat reports (nil: it
// did not say).
func ownedAssignment(ts []kmsg.ConsumerGroupHeartbeatRequestTopic) assignment {
	if ts == nil {
		return nil
	}
	a := assignment{}
	for _, t := range ts {
		for _, p := range t.Partitions {
			a.add(t.TopicID, p)
		}
	}
	return a
}

// heartbeatAssignment is a ConsumerGroupHeartbeat response's assignment.
func heartbeatAssignment(a assignment) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	out := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	out.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for _, t := range a.topics() {
		rt := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		rt.TopicID = t
		rt.Partitions = slices.Clone(a[t])
		out.Topics = append(out.Topics, rt)
	}
	return &out
}

// refreshConsumer looks at the topics and the group's configs again when
// the refresh deadline passed (or always, with force), and reports
// whether the subscribed topics changed (a topic created that a regular
// expression matches, partitions added, a topic deleted).
func (g *group) refreshConsumer(force bool) (bool, error) {
	cg := g.cg
	if !force && time.Now().Before(cg.refreshAt) {
		return false, nil
	}
	snap, err := g.c.topicSnapshot(g.c.cfg.MetadataRefresh)
	if err != nil {
		return false, err
	}
	ctx, cancel := g.c.storeCtx()
	defer cancel()
	set, err := g.c.store.GroupConfigs(ctx, g.name)
	if err != nil {
		return false, fmt.Errorf("group %s configs: %w", g.name, err)
	}
	cg.cfg = groupconfig.Effective(g.c.cfg.Groups, set)
	cg.refreshAt = time.Now().Add(g.c.cfg.MetadataRefresh)
	subs := cg.subscriptions(snap)
	if sameSubscriptions(subs, cg.subs) {
		return false, nil
	}
	cg.subs = subs
	return true, nil
}

// afterMemberChange brings the group up to date after a member joined or
// changed, as Kafka's heartbeat does: a changed subscription, or changed
// subscribed topics (looked at again when the refresh deadline passed),
// bump the group epoch once; a group epoch ahead of the target assignment
// gets a new target.
func (g *group) afterMemberChange(subscriptionChanged bool) error {
	cg := g.cg
	topicsChanged, err := g.refreshConsumer(subscriptionChanged)
	if err != nil {
		return err
	}
	if (subscriptionChanged || topicsChanged) && len(cg.members) > 0 {
		cg.epoch++
		g.c.metrics.rebalances.Inc()
	}
	if cg.epoch > cg.assignmentEpoch {
		if err := g.computeTarget(); err != nil {
			return err
		}
	}
	return nil
}

// computeTarget computes the target assignment for the group epoch with
// the preferred assignor.
func (g *group) computeTarget() error {
	cg := g.cg
	snap, err := g.c.topicSnapshot(g.c.cfg.MetadataRefresh)
	if err != nil {
		return err
	}
	name := cg.preferredAssignor(g.c.cfg.ConsumerAssignors[0])
	spec := assignSpec{partitions: map[metastore.TopicID]int32{}}
	for _, meta := range cg.subs {
		spec.partitions[meta.ID] = meta.Partitions
	}
	for _, id := range slices.Sorted(maps.Keys(cg.members)) {
		m := cg.members[id]
		am := assignMember{id: id, previous: cg.target[id]}
		if m.instanceID != nil {
			am.instanceID = *m.instanceID
		}
		for _, n := range m.memberTopics(snap) {
			if meta, ok := cg.subs[n]; ok {
				am.topics = append(am.topics, meta.ID)
			}
		}
		spec.members = append(spec.members, am)
	}
	cg.target = assignors[name].assign(spec)
	cg.assignmentEpoch = cg.epoch
	g.c.logger.Debug("consumer group target assignment computed", "group", g.name, "epoch", cg.epoch, "assignor", name, "members", len(cg.members))
	return nil
}

// reconcileMember moves m towards its target (owned: what it reported it
// owns) and starts or stops its rebalance timeout.
func (g *group) reconcileMember(m *cmember, owned assignment) {
	cg := g.cg
	if m.reconciledTo(cg.assignmentEpoch) || m.epoch == epochStaticLeave {
		return
	}
	target := cg.target[m.id]
	if target == nil {
		target = assignment{}
	}
	prevEpoch := m.epoch
	r := reconcile(reconciled{state: m.state, epoch: m.epoch, assigned: m.assigned, revoking: m.revoking},
		cg.assignmentEpoch, target, owned, cg.ownerEpochs())
	if r.epoch != m.epoch {
		m.prevEpoch = prevEpoch
	}
	m.state, m.epoch, m.assigned, m.revoking = r.state, r.epoch, r.assigned, r.revoking
	if m.classic != nil {
		return // classic members have join and sync deadlines instead
	}
	if m.state == memberUnrevoked {
		g.startRebalanceTimer(m)
	} else {
		m.rebalanceSeq++
		if m.rebalanceTimer != nil {
			m.rebalanceTimer.Stop()
		}
	}
}

// consumerSession (re)starts m's session timer.
func (g *group) consumerSession(m *cmember) {
	d := g.cg.cfg.ConsumerSessionTimeout
	if m.classic != nil {
		d = m.classic.sessionTimeout
	}
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
	}
	m.sessionSeq++
	seq := m.sessionSeq
	m.sessionTimer = g.after(d, func() {
		if g.kind == kindConsumer && g.cg.members[m.id] == m && m.sessionSeq == seq {
			g.c.logger.Info("consumer group member session expired", "group", g.name, "member", m.id, "timeout", d)
			if err := g.fenceConsumerMember(m); err != nil {
				// A failed save has already unloaded the group; a
				// timer has no one to answer, so it only logs.
				g.c.logger.Warn("fencing consumer group member", "group", g.name, "member", m.id, "err", err)
			}
		}
	})
}

// startRebalanceTimer fences m unless it leaves its current epoch within
// its rebalance timeout (it must revoke partitions in that time).
func (g *group) startRebalanceTimer(m *cmember) {
	if m.rebalanceTimer != nil {
		m.rebalanceTimer.Stop()
	}
	m.rebalanceSeq++
	seq, epoch := m.rebalanceSeq, m.epoch
	d := m.rebalanceTimeout
	if d <= 0 {
		d = g.cg.cfg.ConsumerSessionTimeout
	}
	m.rebalanceTimer = g.after(d, func() {
		if g.kind == kindConsumer && g.cg.members[m.id] == m && m.rebalanceSeq == seq && m.epoch == epoch {
			g.c.logger.Info("consumer group member did not revoke its partitions in time", "group", g.name, "member", m.id, "epoch", epoch, "timeout", d)
			if err := g.fenceConsumerMember(m); err != nil {
				// A failed save has already unloaded the group; a
				// timer has no one to answer, so it only logs.
				g.c.logger.Warn("fencing consumer group member", "group", g.name, "member", m.id, "err", err)
			}
		}
	})
}

// consumerLeave handles member epochs -1 (leave) and -2 (a static member
// leaving for now, keeping its assignment until its session expires).
func (g *group) consumerLeave(req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) {
	cg := g.cg
	resp.MemberID = &req.MemberID
	var m *cmember
	if req.InstanceID == nil {
		m = cg.members[req.MemberID]
		if m == nil {
			resp.ErrorCode = kerr.UnknownMemberID.Code
			return
		}
	} else {
		m = cg.members[cg.static[*req.InstanceID]]
		switch {
		case m == nil:
			resp.ErrorCode = kerr.UnknownMemberID.Code
			resp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("Instance id %s is unknown.", *req.InstanceID))
			return
		case m.id != req.MemberID:
			resp.ErrorCode = kerr.FencedInstanceID.Code
			return
		}
	}
	if req.MemberEpoch == epochStaticLeave {
		g.c.logger.Info("static consumer group member left for now", "group", g.name, "member", m.id, "instance", *req.InstanceID)
		m.epoch = epochStaticLeave
		m.revoking = assignment{}
		m.rebalanceSeq++
		if err := g.saveConsumer(); err != nil {
			resp.ErrorCode = errorCode(err)
			return
		}
		resp.MemberEpoch = epochStaticLeave
		return
	}
	g.c.logger.Info("consumer group member left", "group", g.name, "member", m.id)
	if err := g.fenceConsumerMember(m); err != nil {
		resp.ErrorCode = errorCode(err)
		return
	}
	resp.MemberEpoch = epochLeave
}

// removeConsumerMember drops m from the group's maps and stops its timers,
// without touching epochs.
func (g *group) removeConsumerMember(m *cmember) {
	cg := g.cg
	m.stopTimers()
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
		delete(cg.static, *m.instanceID)
	}
}

// fenceConsumerMember removes m from the group (it left, or its session
// or rebalance timeout expired) and bumps the group epoch, or downgrades
// the group to a classic group when only classic members are left and the
// migration policy allows it. The change is saved; a failed save unloads
// the group.
func (g *group) fenceConsumerMember(m *cmember) error {
	if g.maybeDowngrade(m) {
		return nil
	}
	g.removeConsumerMember(m)
	cg := g.cg
	if snap, err := g.c.topicSnapshot(g.c.cfg.MetadataRefresh); err == nil {
		cg.subs = cg.subscriptions(snap)
	}
	cg.epoch++
	g.c.metrics.rebalances.Inc()
	return g.saveConsumer()
}
