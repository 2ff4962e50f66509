package group

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Classic and consumer members in one group (Kafka's online migration,
// KIP-848): a classic group becomes a consumer group when a member using
// the consumer protocol joins it, and a consumer group becomes a classic
// group again when its last consumer-protocol member leaves. Meanwhile
// the classic members of a consumer group keep speaking JoinGroup,
// SyncGroup, Heartbeat and LeaveGroup: the coordinator computes their
// assignments, a JoinGroup returns at once (there is no join barrier) and
// SyncGroup returns the member's assignment; Heartbeat answers
// REBALANCE_IN_PROGRESS when the member must rejoin to reconcile.

// upgradeAllowed and downgradeAllowed read the migration policy.
func (c *Coordinator) upgradeAllowed() bool {
	return c.cfg.MigrationPolicy == "bidirectional" || c.cfg.MigrationPolicy == "upgrade"
}

func (c *Coordinator) downgradeAllowed() bool {
	return c.cfg.MigrationPolicy == "bidirectional" || c.cfg.MigrationPolicy == "downgrade"
}

// upgradeToConsumer converts a classic group with members into a consumer
// group, as Kafka's convertToConsumerGroup: every member keeps its
// assignment at an epoch equal to the classic generation, and its classic
// protocols, so it carries on with JoinGroup and SyncGroup. Waiting joins
// and syncs are answered REBALANCE_IN_PROGRESS. It reports false, changing
// nothing, when the policy, the group's protocol type or size, or a
// member's metadata does not allow it.
func (g *group) upgradeToConsumer() bool {
	if !g.c.upgradeAllowed() || g.protocolType != consumerProtocolType || len(g.members) > g.c.cfg.ConsumerMaxSize {
		g.c.logger.Info("classic group not upgraded to a consumer group", "group", g.name, "protocol_type", g.protocolType,
			"members", len(g.members), "policy", g.c.cfg.MigrationPolicy)
		return false
	}
	snap, err := g.c.topicSnapshot(g.c.cfg.MetadataRefresh)
	if err != nil {
		return false
	}
	cg := newConsumerGroup(g.c.cfg.Groups)
	cg.epoch, cg.assignmentEpoch = g.generation, g.generation
	for _, cm := range g.members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(cm.metadataFor(g.protocol)); err != nil {
			g.c.logger.Info("classic group not upgraded: a member's subscription is unreadable", "group", g.name, "member", cm.id, "err", err)
			return false
		}
		assigned := assignment{}
		if len(cm.assignment) > 0 {
			var a kmsg.ConsumerMemberAssignment
			if err := a.ReadFrom(cm.assignment); err != nil {
				g.c.logger.Info("classic group not upgraded: a member's assignment is unreadable", "group", g.name, "member", cm.id, "err", err)
				return false
			}
			assigned = namedAssignment(snap, a.Topics)
		}
		m := &cmember{
			id: cm.id, instanceID: cm.instanceID, clientID: cm.clientID, clientHost: cm.clientHost,
			rebalanceTimeout: cm.rebalanceTimeout, topics: sortedNames(meta.Topics),
			epoch: g.generation, prevEpoch: g.generation, state: memberStable,
			assigned: assigned, revoking: assignment{},
			classic: &classicMeta{sessionTimeout: cm.sessionTimeout, protocols: slices.Clone(cm.protocols)},
		}
		if meta.Rack != nil && *meta.Rack != "" {
			m.rackID = meta.Rack
		}
		cg.members[m.id] = m
		cg.target[m.id] = assigned.clone()
		if m.instanceID != nil {
			cg.static[*m.instanceID] = m.id
		}
	}
	cg.subs = cg.subscriptions(snap)
	// The classic group's waiting requests and timers end here.
	for _, cm := range g.members {
		g.replyJoinErr(cm, kerr.RebalanceInProgress.Code)
		g.replySyncErr(cm, kerr.RebalanceInProgress.Code)
		if cm.hbTimer != nil {
			cm.hbTimer.Stop()
		}
	}
	for _, t := range g.pending {
		t.Stop()
	}
	g.stopRebalanceTimer()
	g.stopSyncTimer()
	g.members, g.static, g.pending, g.pendingSync = map[string]*member{}, map[string]string{}, map[string]*time.Timer{}, map[string]bool{}
	g.leader, g.protocol = "", ""
	g.state = stateEmpty
	g.becomeConsumer(cg)
	for _, m := range cg.members {
		g.consumerSession(m)
	}
	g.c.logger.Info("classic group upgraded to a consumer group", "group", g.name, "epoch", cg.epoch, "members", len(cg.members))
	return true
}

// maybeDowngrade converts the consumer group into a classic group when
// leaving, the last member using the consumer protocol, leaves members
// that all use the classic protocol (Kafka's convertToClassicGroup): they
// keep their assignments and rejoin, since the group starts a rebalance.
func (g *group) maybeDowngrade(leaving *cmember) bool {
	cg := g.cg
	if leaving.classic != nil || len(cg.members) <= 1 || cg.numClassic() != len(cg.members)-1 ||
		!g.c.downgradeAllowed() || len(cg.members)-1 > g.c.cfg.MaxGroupSize {
		return false
	}
	snap, err := g.c.topicSnapshot(g.c.cfg.MetadataRefresh)
	if err != nil {
		return false
	}
	g.removeConsumerMember(leaving)
	cg.stopTimers()
	g.kind, g.cg = kindClassic, nil
	g.protocolType = consumerProtocolType
	g.generation = cg.epoch
	g.members, g.static = map[string]*member{}, map[string]string{}
	for _, m := range cg.members {
		cm := &member{
			id: m.id, instanceID: m.instanceID, clientID: m.clientID, clientHost: m.clientHost,
			sessionTimeout: m.classic.sessionTimeout, rebalanceTimeout: m.rebalanceTimeout,
			protocolType: consumerProtocolType, protocols: m.classic.protocols,
			assignment: classicAssignment(snap, m.assigned, m.classic.protocols),
		}
		g.members[cm.id] = cm
		if cm.instanceID != nil {
			g.static[*cm.instanceID] = cm.id
		}
		if g.leader == "" || cm.id < g.leader {
			g.leader = cm.id
		}
	}
	g.protocol = g.selectProtocol()
	g.setState(stateStable)
	for _, m := range g.members {
		g.heartbeat(m)
	}
	g.c.logger.Info("consumer group downgraded to a classic group", "group", g.name, "generation", g.generation, "members", len(g.members), "leaving", leaving.id)
	g.prepareRebalance()
	if err := g.persist(); err != nil {
		g.gone = true
	}
	return true
}

// namedAssignment maps a classic assignment (topic names) to topic ids;
// topics that no longer exist are dropped.
func namedAssignment(snap *topicSnapshot, topics []kmsg.ConsumerMemberAssignmentTopic) assignment {
	a := assignment{}
	for _, t := range topics {
		top, ok := snap.byName[t.Topic]
		if !ok {
			continue
		}
		for _, p := range t.Partitions {
			a.add(top.ID, p)
		}
	}
	return a
}

// ownedFromMetadata maps the owned partitions of a classic member's
// subscription to topic ids.
func ownedFromMetadata(snap *topicSnapshot, owned []kmsg.ConsumerMemberMetadataOwnedPartition) assignment {
	a := assignment{}
	for _, t := range owned {
		top, ok := snap.byName[t.Topic]
		if !ok {
			continue
		}
		for _, p := range t.Partitions {
			a.add(top.ID, p)
		}
	}
	return a
}

// classicAssignment serializes a as a consumer-protocol assignment, in the
// version of the member's first protocol's metadata (Kafka's
// prepareAssignment).
func classicAssignment(snap *topicSnapshot, a assignment, protocols []kmsg.JoinGroupRequestProtocol) []byte {
	out := kmsg.NewConsumerMemberAssignment()
	if len(protocols) > 0 {
		var meta kmsg.ConsumerMemberMetadata
		if meta.ReadFrom(protocols[0].Metadata) == nil {
			out.Version = min(meta.Version, 3)
		}
	}
	for _, t := range a.topics() {
		top, ok := snap.byID[t]
		if !ok {
			continue
		}
		at := kmsg.NewConsumerMemberAssignmentTopic()
		at.Topic = top.Name
		at.Partitions = slices.Clone(a[t])
		out.Topics = append(out.Topics, at)
	}
	return out.AppendTo(nil)
}

func sortedNames(ns []string) []string {
	out := slices.Clone(ns)
	slices.Sort(out)
	return slices.Compact(out)
}

// supportsClassic is Kafka's ConsumerGroup.supportsClassicProtocols: a
// classic member may join a consumer group with the consumer protocol
// type and a protocol every classic member supports.
func (cg *consumerGroup) supportsClassic(protocolType string, ps []kmsg.JoinGroupRequestProtocol) bool {
	if protocolType != consumerProtocolType || len(ps) == 0 {
		return false
	}
	n := cg.numClassic()
	if len(cg.members) == 0 || n == 0 {
		return true
	}
	for _, p := range ps {
		count := 0
		for _, m := range cg.members {
			if m.classic != nil && slices.ContainsFunc(m.classic.protocols, func(x kmsg.JoinGroupRequestProtocol) bool { return x.Name == p.Name }) {
				count++
			}
		}
		if count == n {
			return true
		}
	}
	return false
}

// joinConsumer is a classic member's JoinGroup to a consumer group with
// members (Kafka's classicGroupJoinToConsumerGroup). It is answered at
// once with the member's epoch as the generation.
func (g *group) joinConsumer(cl Client, req *kmsg.JoinGroupRequest, resp *kmsg.JoinGroupResponse) {
	cg := g.cg
	memberID := req.MemberID
	unknown := memberID == ""
	if unknown {
		memberID = newMemberID(cl.ID, req.InstanceID)
	}
	if cg.members[memberID] == nil && len(cg.members) >= g.c.cfg.ConsumerMaxSize {
		resp.ErrorCode = kerr.GroupMaxSizeReached.Code
		return
	}
	if !cg.supportsClassic(req.ProtocolType, req.Protocols) {
		resp.ErrorCode = kerr.InconsistentGroupProtocol.Code
		return
	}
	if unknown && req.InstanceID == nil && req.Version >= 4 {
		resp.MemberID = memberID
		resp.ErrorCode = kerr.MemberIDRequired.Code
		return
	}
	snap, err := g.c.topicSnapshot(g.c.cfg.MetadataRefresh)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return
	}
	var meta kmsg.ConsumerMemberMetadata
	if err := meta.ReadFrom(req.Protocols[0].Metadata); err != nil {
		resp.ErrorCode = kerr.InconsistentGroupProtocol.Code
		return
	}

	var m *cmember
	isNew := false
	if req.InstanceID == nil {
		m = cg.members[memberID]
		isNew = m == nil
	} else {
		old := cg.members[cg.static[*req.InstanceID]]
		switch {
		case old == nil:
			m = cg.members[memberID]
			isNew = m == nil
		case unknown:
			m = old.copyMember()
			m.id = memberID
			cg.target[memberID] = cg.target[old.id]
			g.removeConsumerMember(old)
			cg.members[memberID] = m
			cg.static[*req.InstanceID] = memberID
		case old.id != memberID:
			resp.ErrorCode = kerr.FencedInstanceID.Code
			return
		default:
			m = old
		}
	}
	if isNew {
		m = &cmember{id: memberID, epoch: 0, assigned: assignment{}, revoking: assignment{}}
		cg.members[memberID] = m
		if req.InstanceID != nil {
			cg.static[*req.InstanceID] = memberID
		}
	}
	before := m.copyMember()
	beforeEpoch, beforeTargetEpoch := cg.epoch, cg.assignmentEpoch
	u := m.copyMember()
	u.instanceID = req.InstanceID
	if meta.Rack != nil && *meta.Rack != "" {
		u.rackID = meta.Rack
	}
	if req.RebalanceTimeoutMillis > 0 {
		u.rebalanceTimeout = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	u.topics = sortedNames(meta.Topics)
	u.clientID, u.clientHost = cl.ID, cl.Host
	u.classic = &classicMeta{sessionTimeout: time.Duration(req.SessionTimeoutMillis) * time.Millisecond, protocols: slices.Clone(req.Protocols)}
	subscriptionChanged := isNew || !slices.Equal(u.topics, m.topics) || u.regex != m.regex
	m.setPersisted(u)
	if err := g.afterMemberChange(subscriptionChanged); err != nil {
		resp.ErrorCode = errorCode(err)
		return
	}
	g.reconcileMember(m, ownedFromMetadata(snap, meta.OwnedPartitions))
	if isNew || !m.persistedEqual(before) || cg.epoch != beforeEpoch || cg.assignmentEpoch != beforeTargetEpoch {
		if err := g.saveConsumer(); err != nil {
			resp.ErrorCode = errorCode(err)
			return
		}
	}
	m.joinSeq++
	if m.joinTimer != nil {
		m.joinTimer.Stop()
	}
	g.consumerSession(m)
	g.classicDeadline(m, &m.syncSeq, &m.syncTimer, "did not sync in time")
	resp.MemberID = m.id
	resp.Generation = m.epoch
	resp.ProtocolType = kmsg.StringPtr(consumerProtocolType)
	resp.Protocol = kmsg.StringPtr(m.classic.protocols[0].Name)
	resp.LeaderID = ""
}

// classicDeadline fences classic member m unless the deadline tracked by
// seq and timer is renewed or cancelled within its rebalance timeout.
func (g *group) classicDeadline(m *cmember, seq *uint64, timer **time.Timer, why string) {
	if *timer != nil {
		(*timer).Stop()
	}
	*seq++
	mine := *seq
	d := m.rebalanceTimeout
	if d <= 0 {
		d = m.classic.sessionTimeout
	}
	*timer = g.after(d, func() {
		if g.kind == kindConsumer && g.cg.members[m.id] == m && *seq == mine {
			g.c.logger.Info("classic member of a consumer group "+why, "group", g.name, "member", m.id, "timeout", d)
			_ = g.fenceConsumerMember(m)
		}
	})
}

// classicMember finds the classic member a request names (by instance id
// when given), as Kafka's validateConsumerGroupMember.
func (cg *consumerGroup) classicMember(memberID string, instanceID *string) (*cmember, int16) {
	var m *cmember
	if instanceID != nil {
		m = cg.members[cg.static[*instanceID]]
		if m == nil {
			return nil, kerr.UnknownMemberID.Code
		}
		if m.id != memberID {
			return nil, kerr.FencedInstanceID.Code
		}
	} else if m = cg.members[memberID]; m == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	if m.classic == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	return m, 0
}

// rejoinNeeded is Kafka's condition for telling a classic member of a
// consumer group to rejoin: the group moved on, the member must revoke
// partitions, or partitions it waits for were released.
func (cg *consumerGroup) rejoinNeeded(m *cmember) bool {
	if m.epoch < cg.epoch || m.state == memberUnrevoked {
		return true
	}
	if m.state == memberUnreleased {
		owner := cg.ownerEpochs()
		for t, ps := range cg.target[m.id] {
			for _, p := range ps {
				if !m.assigned.has(t, p) && owner(t, p) != -1 {
					return false // still waiting on another member
				}
			}
		}
		return true
	}
	return false
}

// syncConsumer is a classic member's SyncGroup in a consumer group
// (Kafka's classicGroupSyncToConsumerGroup): it returns the member's
// assignment, or REBALANCE_IN_PROGRESS when the group moved on.
func (g *group) syncConsumer(req *kmsg.SyncGroupRequest, resp *kmsg.SyncGroupResponse) {
	cg := g.cg
	m, code := cg.classicMember(req.MemberID, req.InstanceID)
	switch {
	case code != 0:
		resp.ErrorCode = code
		return
	case req.Generation != m.epoch:
		resp.ErrorCode = kerr.IllegalGeneration.Code
		return
	case req.ProtocolType != nil && *req.ProtocolType != consumerProtocolType,
		req.Protocol != nil && *req.Protocol != m.classic.protocols[0].Name:
		resp.ErrorCode = kerr.InconsistentGroupProtocol.Code
		return
	case cg.epoch > m.epoch && m.state != memberUnrevoked:
		g.classicDeadline(m, &m.joinSeq, &m.joinTimer, "did not rejoin in time")
		resp.ErrorCode = kerr.RebalanceInProgress.Code
		return
	}
	snap, err := g.c.topicSnapshot(g.c.cfg.MetadataRefresh)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return
	}
	m.syncSeq++
	if m.syncTimer != nil {
		m.syncTimer.Stop()
	}
	g.consumerSession(m)
	resp.ProtocolType = kmsg.StringPtr(consumerProtocolType)
	resp.Protocol = kmsg.StringPtr(m.classic.protocols[0].Name)
	resp.MemberAssignment = classicAssignment(snap, m.assigned, m.classic.protocols)
}

// heartbeatConsumer is a classic member's Heartbeat in a consumer group.
func (g *group) heartbeatConsumer(req *kmsg.HeartbeatRequest, resp *kmsg.HeartbeatResponse) {
	cg := g.cg
	m, code := cg.classicMember(req.MemberID, req.InstanceID)
	switch {
	case code != 0:
		resp.ErrorCode = code
		return
	case req.Generation != m.epoch:
		resp.ErrorCode = kerr.IllegalGeneration.Code
		return
	}
	g.consumerSession(m)
	if cg.rejoinNeeded(m) {
		if m.joinTimer == nil || m.joinSeq == 0 {
			g.classicDeadline(m, &m.joinSeq, &m.joinTimer, "did not rejoin in time")
		}
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	}
}

// leaveConsumer removes classic members of a consumer group (Kafka's
// classicGroupLeaveToConsumerGroup); the group epoch moves once.
func (g *group) leaveConsumer(leaving []kmsg.LeaveGroupRequestMember, resp *kmsg.LeaveGroupResponse) {
	cg := g.cg
	removed := false
	for _, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
		var m *cmember
		if lm.InstanceID != nil {
			m = cg.members[cg.static[*lm.InstanceID]]
			switch {
			case m == nil:
				rm.ErrorCode = kerr.UnknownMemberID.Code
			case lm.MemberID != "" && lm.MemberID != m.id:
				rm.ErrorCode = kerr.FencedInstanceID.Code
			case m.classic == nil:
				rm.ErrorCode = kerr.UnknownMemberID.Code
			}
		} else if m = cg.members[lm.MemberID]; m == nil || m.classic == nil {
			rm.ErrorCode = kerr.UnknownMemberID.Code
		}
		if rm.ErrorCode == 0 {
			rm.MemberID = m.id
			g.removeConsumerMember(m)
			removed = true
			g.c.logger.Info("classic member left a consumer group", "group", g.name, "member", m.id)
		}
		resp.Members = append(resp.Members, rm)
	}
	if !removed {
		return
	}
	if snap, err := g.c.topicSnapshot(g.c.cfg.MetadataRefresh); err == nil {
		cg.subs = cg.subscriptions(snap)
	}
	cg.epoch++
	g.c.metrics.rebalances.Inc()
	if err := g.saveConsumer(); err != nil {
		resp.ErrorCode = errorCode(err)
		resp.Members = nil
	}
}

// emptyConsumerToClassic turns an empty consumer group into a classic one
// for a classic member's JoinGroup, as Kafka replaces an empty consumer
// group with a new classic group (committed offsets stay).
func (g *group) emptyConsumerToClassic() {
	g.cg.stopTimers()
	g.kind, g.cg = kindClassic, nil
	g.generation = 0
	g.protocolType, g.protocol, g.leader = "", "", ""
	g.setState(stateEmpty)
}
