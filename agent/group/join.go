package group

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

// JoinGroup answers a JoinGroup request (v0-v9). It blocks while the group
// rebalances, until this member's join completes or ctx ends.
func (c *Coordinator) JoinGroup(ctx context.Context, cl Client, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = -1
	resp.MemberID = req.MemberID
	switch {
	case req.Group == "":
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	case time.Duration(req.SessionTimeoutMillis)*time.Millisecond < c.cfg.MinSessionTimeout,
		time.Duration(req.SessionTimeoutMillis)*time.Millisecond > c.cfg.MaxSessionTimeout:
		resp.ErrorCode = kerr.InvalidSessionTimeout.Code
		return resp
	}
	if req.Version == 0 {
		// v0 has no rebalance timeout; Kafka uses the session timeout.
		req.RebalanceTimeoutMillis = req.SessionTimeoutMillis
	}
	var wait chan *kmsg.JoinGroupResponse
	err := c.do(ctx, req.Group, func(g *group) { wait = g.join(cl, req, resp) })
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp
	}
	if wait == nil {
		return resp
	}
	select {
	case r := <-wait:
		return r
	case <-ctx.Done():
		// The request ends unanswered by the group only when its
		// connection closed (no one reads this) or the agent is shutting
		// down: then, as Kafka answers pending joins of a group it
		// unloads, NOT_COORDINATOR sends the member to the new
		// coordinator, which clients do without surfacing an error.
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	case <-c.ctx.Done():
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
}

// join runs on the group goroutine. It either fills resp and returns nil,
// or returns the channel the answer will arrive on.
func (g *group) join(cl Client, req *kmsg.JoinGroupRequest, resp *kmsg.JoinGroupResponse) chan *kmsg.JoinGroupResponse {
	if err := g.ensureLoaded(); err != nil {
		resp.ErrorCode = errorCode(err)
		return nil
	}
	switch g.kind {
	case kindShare:
		resp.ErrorCode = kerr.InconsistentGroupProtocol.Code
		return nil
	case kindConsumer:
		if len(g.cg.members) > 0 {
			g.joinConsumer(cl, req, resp)
			return nil
		}
		g.emptyConsumerToClassic()
	}
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		resp.ErrorCode = kerr.InconsistentGroupProtocol.Code
		return nil
	}
	if req.MemberID == "" {
		return g.joinNew(cl, req, resp)
	}

	if t, ok := g.pending[req.MemberID]; ok {
		// The second half of the MEMBER_ID_REQUIRED handshake.
		t.Stop()
		delete(g.pending, req.MemberID)
		return g.addMember(cl, req.MemberID, req)
	}
	if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
		resp.ErrorCode = code
		return nil
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		return g.updateMember(m, cl, req)
	case stateCompletingRebalance:
		if m.sameProtocols(req.ProtocolType, req.Protocols) {
			// A retried join of this generation: answer it again.
			*resp = *g.joinResponse(m, req.Version, false)
			g.heartbeat(m)
			return nil
		}
		return g.updateMember(m, cl, req)
	case stateStable:
		if m.id != g.leader && m.sameProtocols(req.ProtocolType, req.Protocols) {
			*resp = *g.joinResponse(m, req.Version, false)
			g.heartbeat(m)
			return nil
		}
		// The leader rejoining, or changed metadata (a new subscription,
		// or a cooperative member's owned partitions): rebalance.
		return g.updateMember(m, cl, req)
	default:
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return nil
	}
}

// joinNew handles a JoinGroup with no member id.
func (g *group) joinNew(cl Client, req *kmsg.JoinGroupRequest, resp *kmsg.JoinGroupResponse) chan *kmsg.JoinGroupResponse {
	if req.InstanceID != nil {
		if old := g.members[g.static[*req.InstanceID]]; old != nil {
			return g.replaceStatic(old, cl, req, resp)
		}
	}
	if len(g.members)+len(g.pending) >= g.c.cfg.MaxGroupSize {
		resp.ErrorCode = kerr.GroupMaxSizeReached.Code
		return nil
	}
	id := newMemberID(cl.ID, req.InstanceID)
	if req.InstanceID == nil && req.Version >= 4 {
		// KIP-394: hand out the id first, so a client that times out
		// and retries does not leave ghost members behind.
		timeout := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
		g.pending[id] = g.after(timeout, func() {
			if _, ok := g.pending[id]; ok {
				delete(g.pending, id)
				g.tryCompleteJoin()
			}
		})
		resp.MemberID = id
		resp.ErrorCode = kerr.MemberIDRequired.Code
		return nil
	}
	return g.addMember(cl, id, req)
}

func newMemberID(clientID string, instanceID *string) string {
	prefix := clientID
	if instanceID != nil {
		prefix = *instanceID
	}
	return prefix + "-" + uuid.NewString()
}

// addMember adds a new member waiting for the join to complete.
func (g *group) addMember(cl Client, id string, req *kmsg.JoinGroupRequest) chan *kmsg.JoinGroupResponse {
	m := &member{id: id, instanceID: req.InstanceID}
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
		g.publish()
	}
	g.members[id] = m
	if req.InstanceID != nil {
		g.static[*req.InstanceID] = id
	}
	if g.leader == "" {
		g.leader = id
	}
	g.exists = true
	reply := g.setJoin(m, cl, req)
	g.maybePrepareRebalance()
	g.tryCompleteJoin()
	return reply
}

// updateMember records a rejoin and rebalances.
func (g *group) updateMember(m *member, cl Client, req *kmsg.JoinGroupRequest) chan *kmsg.JoinGroupResponse {
	// A retried join replaces the one still waiting.
	g.replyJoinErr(m, kerr.RebalanceInProgress.Code)
	reply := g.setJoin(m, cl, req)
	g.maybePrepareRebalance()
	g.tryCompleteJoin()
	return reply
}

// setJoin copies the request into m and marks it waiting.
func (g *group) setJoin(m *member, cl Client, req *kmsg.JoinGroupRequest) chan *kmsg.JoinGroupResponse {
	m.clientID = cl.ID
	m.clientHost = cl.Host
	m.sessionTimeout = time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	m.rebalanceTimeout = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	m.protocolType = req.ProtocolType
	m.protocols = req.Protocols
	m.joinVersion = req.Version
	m.joinReply = make(chan *kmsg.JoinGroupResponse, 1)
	return m.joinReply
}

// replaceStatic handles a static member coming back with its instance id
// and no member id (a restarted process): it gets a new member id, the old
// one is fenced, and when the group is Stable and its subscription unchanged it
// keeps its assignment without a rebalance (KIP-345). A static leader gets
// SkipAssignment (KIP-814) on v9+; before v9 it cannot be told to skip, so
// the group rebalances.
func (g *group) replaceStatic(old *member, cl Client, req *kmsg.JoinGroupRequest, resp *kmsg.JoinGroupResponse) chan *kmsg.JoinGroupResponse {
	id := newMemberID(cl.ID, req.InstanceID)
	unchanged := old.sameSubscription(g.protocol, req.ProtocolType, req.Protocols)

	// Fence the old incarnation without a rebalance.
	if old.hbTimer != nil {
		old.hbTimer.Stop()
	}
	g.replyJoinErr(old, kerr.FencedInstanceID.Code)
	g.replySyncErr(old, kerr.FencedInstanceID.Code)
	delete(g.members, old.id)
	m := &member{id: id, instanceID: req.InstanceID, assignment: old.assignment}
	g.members[id] = m
	g.static[*req.InstanceID] = id
	if g.leader == old.id {
		g.leader = id
	}
	if g.pendingSync[old.id] {
		delete(g.pendingSync, old.id)
		g.pendingSync[id] = true
	}
	g.c.logger.Info("static group member replaced", "group", g.name, "instance", *req.InstanceID, "old", old.id, "new", id)

	isLeader := g.leader == id
	if g.state == stateStable && unchanged {
		g.setJoin(m, cl, req)
		m.joinReply = nil // answered right here
		g.heartbeat(m)
		if err := g.persist(); errors.Is(err, metastore.ErrGroupFenced) {
			resp.ErrorCode = errorCode(err)
			return nil
		}
		*resp = *g.joinResponse(m, req.Version, isLeader && req.Version >= 9)
		if isLeader && req.Version < 9 {
			// As Kafka's updateStaticMemberAndRebalance: a client that
			// cannot skip the assignment (JoinGroup < v9) is told the
			// leader is its old member id, so it acts as a follower and
			// syncs the assignment it already has instead of computing a
			// new one. It is still the group's leader internally.
			resp.LeaderID = old.id
			resp.Members = nil
		}
		return nil
	}
	return g.updateMember(m, cl, req)
}

// validateMember is Kafka's validateCurrentMember: a static member must use
// its current member id; anyone else must be a member.
func (g *group) validateMember(id string, instanceID *string) int16 {
	if instanceID != nil {
		if cur, ok := g.static[*instanceID]; ok && cur != id {
			return kerr.FencedInstanceID.Code
		}
	}
	if g.members[id] == nil {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// SyncGroup answers a SyncGroup request (v0-v5). A follower waits until the
// leader's assignment is saved.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	var wait chan *kmsg.SyncGroupResponse
	if err := c.do(ctx, req.Group, func(g *group) { wait = g.sync(req, resp) }); err != nil {
		resp.ErrorCode = errorCode(err)
		return resp
	}
	if wait == nil {
		return resp
	}
	select {
	case r := <-wait:
		return r
	case <-ctx.Done():
		// As for JoinGroup: a closed connection or a shutting-down agent.
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	case <-c.ctx.Done():
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
}

func (g *group) sync(req *kmsg.SyncGroupRequest, resp *kmsg.SyncGroupResponse) chan *kmsg.SyncGroupResponse {
	if err := g.ensureLoaded(); err != nil {
		resp.ErrorCode = errorCode(err)
		return nil
	}
	switch g.kind {
	case kindShare:
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return nil
	case kindConsumer:
		g.syncConsumer(req, resp)
		return nil
	}
	if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
		resp.ErrorCode = code
		return nil
	}
	switch {
	case req.Generation != g.generation:
		resp.ErrorCode = kerr.IllegalGeneration.Code
		return nil
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		resp.ErrorCode = kerr.InconsistentGroupProtocol.Code
		return nil
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		resp.ErrorCode = kerr.RebalanceInProgress.Code
		return nil
	case stateStable:
		delete(g.pendingSync, m.id)
		g.heartbeat(m)
		g.fillSync(resp, m)
		return nil
	case stateCompletingRebalance:
	default:
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return nil
	}

	g.replySyncErr(m, kerr.RebalanceInProgress.Code) // a retried sync replaces the waiting one
	m.syncReply = make(chan *kmsg.SyncGroupResponse, 1)
	m.syncVersion = req.Version
	delete(g.pendingSync, m.id)
	g.heartbeat(m)
	reply := m.syncReply
	if m.id != g.leader {
		return reply
	}

	assigned := make(map[string][]byte, len(req.GroupAssignment))
	for _, a := range req.GroupAssignment {
		assigned[a.MemberID] = a.MemberAssignment
	}
	for id, o := range g.members {
		o.assignment = assigned[id] // absent: empty, as Kafka does
	}
	g.setState(stateStable)
	if err := g.persist(); err != nil {
		// Nothing acknowledged that is not saved: the generation is
		// abandoned and everyone rejoins.
		code := errorCode(err)
		for _, o := range g.members {
			o.assignment = nil
			g.replySyncErr(o, code)
		}
		g.setState(stateCompletingRebalance)
		if !g.gone {
			g.prepareRebalance()
		}
		return reply
	}
	for _, o := range g.members {
		if o.syncReply == nil {
			continue
		}
		r := kmsg.NewPtrSyncGroupResponse()
		r.Version = o.syncVersion
		g.fillSync(r, o)
		o.syncReply <- r
		o.syncReply = nil
	}
	return reply
}

func (g *group) fillSync(resp *kmsg.SyncGroupResponse, m *member) {
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.MemberAssignment = m.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
}

// Heartbeat answers a Heartbeat request (v0-v4).
func (c *Coordinator) Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	err := c.do(ctx, req.Group, func(g *group) {
		if err := g.ensureLoaded(); err != nil {
			resp.ErrorCode = errorCode(err)
			return
		}
		switch g.kind {
		case kindShare:
			resp.ErrorCode = kerr.UnknownMemberID.Code
			return
		case kindConsumer:
			g.heartbeatConsumer(req, resp)
			return
		}
		if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
			resp.ErrorCode = code
			return
		}
		if req.Generation != g.generation {
			resp.ErrorCode = kerr.IllegalGeneration.Code
			return
		}
		m := g.members[req.MemberID]
		switch g.state {
		case stateEmpty, stateDead:
			resp.ErrorCode = kerr.UnknownMemberID.Code
		case statePreparingRebalance:
			g.heartbeat(m)
			resp.ErrorCode = kerr.RebalanceInProgress.Code
		default:
			g.heartbeat(m)
		}
	})
	if err != nil {
		resp.ErrorCode = errorCode(err)
	}
	return resp
}

// LeaveGroup answers a LeaveGroup request: one member (v0-v2) or a batch of
// members by member id and/or instance id (v3-v5).
func (c *Coordinator) LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	leaving := req.Members
	if req.Version < 3 {
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = req.MemberID
		leaving = []kmsg.LeaveGroupRequestMember{lm}
	}
	err := c.do(ctx, req.Group, func(g *group) {
		if err := g.ensureLoaded(); err != nil {
			resp.ErrorCode = errorCode(err)
			return
		}
		switch g.kind {
		case kindShare:
			resp.ErrorCode = kerr.UnknownMemberID.Code
			return
		case kindConsumer:
			g.leaveConsumer(leaving, resp)
			return
		}
		removed, removedPending := false, false
		for _, lm := range leaving {
			rm := kmsg.NewLeaveGroupResponseMember()
			rm.MemberID = lm.MemberID
			rm.InstanceID = lm.InstanceID
			var wasPending bool
			rm.ErrorCode, wasPending = g.leave(lm.MemberID, lm.InstanceID)
			removedPending = removedPending || wasPending
			if rm.ErrorCode == 0 && !wasPending {
				removed = true
				reason := ""
				if lm.Reason != nil {
					reason = *lm.Reason
				}
				g.c.logger.Info("group member left", "group", g.name, "member", lm.MemberID, "reason", reason)
			}
			resp.Members = append(resp.Members, rm)
		}
		if removed {
			g.membershipChanged()
		} else if removedPending {
			g.tryCompleteJoin()
		}
	})
	if err != nil {
		resp.ErrorCode = errorCode(err)
		resp.Members = nil
		return resp
	}
	if req.Version < 3 {
		if len(resp.Members) > 0 && resp.ErrorCode == 0 {
			resp.ErrorCode = resp.Members[0].ErrorCode
		}
		resp.Members = nil
	}
	return resp
}

// leave removes one leaving member and returns its error code, and whether
// it was only a pending member id (MEMBER_ID_REQUIRED handed out).
func (g *group) leave(id string, instanceID *string) (int16, bool) {
	if instanceID != nil {
		cur, ok := g.static[*instanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code, false
		case id != "" && id != cur:
			return kerr.FencedInstanceID.Code, false
		}
		id = cur
	} else if t, ok := g.pending[id]; ok {
		t.Stop()
		delete(g.pending, id)
		return 0, true
	}
	m := g.members[id]
	if m == nil {
		return kerr.UnknownMemberID.Code, false
	}
	g.removeMember(m, kerr.UnknownMemberID.Code)
	return 0, false
}
