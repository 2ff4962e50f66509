package share

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/groupconfig"
	"github.com/siltdata/silt/metastore"
)

// view is what metrics and ListGroups read of a running group.
type view struct{ state string }

type viewPtr struct{ p atomic.Pointer[view] }

func (v *viewPtr) store(x *view) { v.p.Store(x) }
func (v *viewPtr) load() *view   { return v.p.Load() }

// tpSet is a set of partitions by topic id; partition lists sorted.
type tpSet map[metastore.TopicID][]int32

func (s tpSet) add(t metastore.TopicID, p int32) {
	i, ok := slices.BinarySearch(s[t], p)
	if !ok {
		s[t] = slices.Insert(s[t], i, p)
	}
}

func (s tpSet) topics() []metastore.TopicID {
	ts := slices.Collect(maps.Keys(s))
	slices.SortFunc(ts, func(a, b metastore.TopicID) int { return bytes.Compare(a[:], b[:]) })
	return ts
}

func (s tpSet) equal(o tpSet) bool {
	if len(s) != len(o) {
		return false
	}
	for t, ps := range s {
		if !slices.Equal(ps, o[t]) {
			return false
		}
	}
	return true
}

func (s tpSet) clone() tpSet {
	out := make(tpSet, len(s))
	for t, ps := range s {
		out[t] = slices.Clone(ps)
	}
	return out
}

// topicMeta is a subscribed topic as the group saw it last.
type topicMeta struct {
	ID         metastore.TopicID
	Partitions int32
}

// topicCache is the coordinator's view of the topics, refreshed at most
// every MetadataRefresh; mu is held while it is read from the store.
type topicCache struct {
	mu     sync.Mutex
	at     time.Time
	byName map[string]metastore.Topic
	byID   map[metastore.TopicID]metastore.Topic
}

func (c *Coordinator) topicsNow() (byName map[string]metastore.Topic, byID map[metastore.TopicID]metastore.Topic, err error) {
	c.topics.mu.Lock()
	defer c.topics.mu.Unlock()
	if c.topics.byName != nil && time.Since(c.topics.at) < c.cfg.MetadataRefresh {
		return c.topics.byName, c.topics.byID, nil
	}
	ctx, cancel := c.storeCtx()
	defer cancel()
	ts, err := c.store.Topics(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list topics: %w", err)
	}
	c.topics.byName, c.topics.byID = map[string]metastore.Topic{}, map[metastore.TopicID]metastore.Topic{}
	for _, t := range ts {
		c.topics.byName[t.Name] = t
		c.topics.byID[t.ID] = t
	}
	c.topics.at = time.Now()
	return c.topics.byName, c.topics.byID, nil
}

// Client is who sent a request, as ShareGroupDescribe shows it.
type Client struct {
	ID   string
	Host string
}

// Heartbeat answers a ShareGroupHeartbeat request (v1): epoch 0 joins,
// -1 leaves, a positive epoch heartbeats.
func (c *Coordinator) Heartbeat(ctx context.Context, cl Client, req *kmsg.ShareGroupHeartbeatRequest) *kmsg.ShareGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
	invalid := func(msg string) *kmsg.ShareGroupHeartbeatResponse {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(msg)
		return resp
	}
	switch {
	case strings.TrimSpace(req.GroupID) == "":
		return invalid("GroupId can't be empty.")
	case strings.TrimSpace(req.MemberID) == "":
		return invalid("MemberId can't be empty.")
	case len(req.MemberID) > 36:
		return invalid("MemberId can't be longer than 36 characters.")
	case req.RackID != nil && strings.TrimSpace(*req.RackID) == "":
		return invalid("RackId can't be empty.")
	case req.MemberEpoch < -1:
		return invalid("MemberEpoch is invalid.")
	case req.MemberEpoch == 0 && len(req.SubscribedTopicNames) == 0:
		return invalid("SubscribedTopicNames must be set in first request.")
	}
	if err := c.do(ctx, req.GroupID, func(g *sgroup) { g.heartbeat(cl, req, resp) }); err != nil {
		resp.ErrorCode = errorCode(err)
	}
	return resp
}

func (g *sgroup) heartbeat(cl Client, req *kmsg.ShareGroupHeartbeatRequest, resp *kmsg.ShareGroupHeartbeatResponse) {
	if err := g.ensureLoaded(); err != nil {
		resp.ErrorCode = errorCode(err)
		return
	}
	fail := func(code int16, format string, args ...any) {
		resp.ErrorCode, resp.ErrorMessage = code, kmsg.StringPtr(fmt.Sprintf(format, args...))
	}
	if g.foreign {
		fail(kerr.GroupIDNotFound.Code, "Group %s is not a share group.", g.name)
		return
	}
	if req.MemberEpoch != 0 && !g.exists {
		fail(kerr.GroupIDNotFound.Code, "Share group %s not found.", g.name)
		return
	}
	m := g.members[req.MemberID]
	if req.MemberEpoch == -1 {
		resp.MemberID = &req.MemberID
		resp.MemberEpoch = -1
		if m == nil {
			fail(kerr.UnknownMemberID.Code, "Member %s is not a member of group %s.", req.MemberID, g.name)
			return
		}
		g.c.logger.Info("share group member left", "group", g.name, "member", m.id)
		if err := g.fence(m); err != nil {
			resp.ErrorCode = errorCode(err)
		}
		return
	}
	isNew := m == nil
	switch {
	case isNew && req.MemberEpoch != 0:
		fail(kerr.UnknownMemberID.Code, "Member %s is not a member of group %s.", req.MemberID, g.name)
		return
	case isNew && len(g.members) >= g.c.cfg.MaxSize:
		fail(kerr.GroupMaxSizeReached.Code, "The share group has reached its maximum capacity of %d members.", g.c.cfg.MaxSize)
		return
	case !isNew && req.MemberEpoch > m.epoch,
		!isNew && req.MemberEpoch != 0 && req.MemberEpoch < m.epoch && req.MemberEpoch != m.prevEpoch:
		fail(kerr.FencedMemberEpoch.Code, "The share group member's epoch (%d) is not the group coordinator's (%d). The member must abandon all its partitions and rejoin.", req.MemberEpoch, m.epoch)
		return
	}
	if isNew {
		m = &smember{id: req.MemberID, assigned: tpSet{}}
	}
	beforeTopics, beforeAssigned := slices.Clone(m.topics), m.assigned.clone()
	changed := isNew || m.clientID != cl.ID || m.clientHost != cl.Host
	m.clientID, m.clientHost = cl.ID, cl.Host
	if req.RackID != nil && (m.rackID == nil || *m.rackID != *req.RackID) {
		m.rackID, changed = req.RackID, true
	}
	if req.SubscribedTopicNames != nil {
		names := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(names)
		m.topics = slices.Compact(names)
	}
	subChanged := isNew || !slices.Equal(beforeTopics, m.topics)
	if isNew {
		g.members[m.id] = m
	}
	beforeEpoch := g.groupEpoch
	topicsChanged, err := g.refresh(subChanged)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return
	}
	if subChanged || topicsChanged {
		g.groupEpoch++
	}
	if g.groupEpoch > g.assignmentEpoch {
		g.computeTarget()
	}
	// Share members take their target at once: a partition may be read by
	// several members, so nothing waits for another member to let go
	// (Kafka's ShareGroupAssignmentBuilder).
	if m.epoch != g.assignmentEpoch {
		m.prevEpoch, m.epoch = m.epoch, g.assignmentEpoch
		m.assigned = g.target[m.id].clone()
		if m.assigned == nil {
			m.assigned = tpSet{}
		}
	}
	g.session(m)
	if changed || subChanged || g.groupEpoch != beforeEpoch || !m.assigned.equal(beforeAssigned) {
		if err := g.save(); err != nil {
			resp.ErrorCode = errorCode(err)
			return
		}
	}
	if err := g.initPartitions(m.assigned); err != nil {
		g.c.logger.Warn("share partitions not initialized yet", "group", g.name, "err", err)
	}
	resp.MemberID = &m.id
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(g.cfg.ShareHeartbeatInterval.Milliseconds())
	if req.MemberEpoch == 0 || req.SubscribedTopicNames != nil || !m.assigned.equal(beforeAssigned) {
		a := kmsg.NewShareGroupHeartbeatResponseAssignment()
		a.TopicPartitions = []kmsg.ShareGroupHeartbeatResponseAssignmentTopicPartition{}
		for _, t := range m.assigned.topics() {
			a.TopicPartitions = append(a.TopicPartitions, kmsg.ShareGroupHeartbeatResponseAssignmentTopicPartition{TopicID: t, Partitions: slices.Clone(m.assigned[t])})
		}
		resp.Assignment = &a
	}
}

// refresh reads the topics and the group's configs again when the
// deadline passed or force, and reports whether the subscribed topics
// changed.
func (g *sgroup) refresh(force bool) (bool, error) {
	if !force && time.Now().Before(g.refreshAt) {
		return false, nil
	}
	byName, _, err := g.c.topicsNow()
	if err != nil {
		return false, err
	}
	ctx, cancel := g.c.storeCtx()
	defer cancel()
	set, err := g.c.store.GroupConfigs(ctx, g.name)
	if err != nil {
		return false, fmt.Errorf("group %s configs: %w", g.name, err)
	}
	g.cfg = groupconfig.Effective(g.c.cfg.Groups, set)
	g.refreshAt = time.Now().Add(g.c.cfg.MetadataRefresh)
	subs := map[string]topicMeta{}
	for _, m := range g.members {
		for _, n := range m.topics {
			if t, ok := byName[n]; ok {
				subs[n] = topicMeta{ID: t.ID, Partitions: t.Partitions}
			}
		}
	}
	if maps.Equal(subs, g.subs) {
		return false, nil
	}
	g.subs = subs
	return true, nil
}

// computeTarget assigns every subscribed partition to at least one
// subscribed member and spreads members evenly (the aim of Kafka's share
// "simple" assignor; the algorithm is silt's): per topic, with S
// subscribers (in member id order) and P partitions, partition i goes to
// member i mod S when S <= P, and member j reads partition j mod P when S
// > P, so that members' counts differ by at most one and partitions'
// readers by at most one.
func (g *sgroup) computeTarget() {
	ids := slices.Sorted(maps.Keys(g.members))
	target := make(map[string]tpSet, len(ids))
	for _, id := range ids {
		target[id] = tpSet{}
	}
	for _, meta := range g.subs {
		var subs []string
		for _, id := range ids {
			for _, n := range g.members[id].topics {
				if g.subs[n] == meta {
					subs = append(subs, id)
					break
				}
			}
		}
		p := int(meta.Partitions)
		switch {
		case len(subs) == 0 || p == 0:
		case len(subs) <= p:
			for part := range p {
				target[subs[part%len(subs)]].add(meta.ID, int32(part))
			}
		default:
			for j, id := range subs {
				target[id].add(meta.ID, int32(j%p))
			}
		}
	}
	g.target = target
	g.assignmentEpoch = g.groupEpoch
}

// initPartitions makes sure every partition in a has a share-partition
// row, at the offset share.auto.offset.reset picks now. Rows are only
// inserted when absent, so a row the fetch path initialized first stays.
func (g *sgroup) initPartitions(a tpSet) error {
	for t, ps := range a {
		for _, p := range ps {
			tp := metastore.TopicPartition{Topic: t, Partition: p}
			if g.initialized[tp] {
				continue
			}
			ctx, cancel := g.c.storeCtx()
			_, err := g.c.parts.initialize(ctx, g.name, tp, g.cfg.ShareAutoOffsetReset)
			cancel()
			if err != nil {
				return err
			}
			g.initialized[tp] = true
		}
	}
	return nil
}

// session (re)starts m's session timer.
func (g *sgroup) session(m *smember) {
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
	}
	m.sessionSeq++
	seq := m.sessionSeq
	d := g.cfg.ShareSessionTimeout
	m.sessionTimer = g.after(d, func() {
		if g.members[m.id] == m && m.sessionSeq == seq {
			g.c.logger.Info("share group member session expired", "group", g.name, "member", m.id, "timeout", d)
			_ = g.fence(m)
		}
	})
}

// fence removes m (it left or its session expired), bumps the group
// epoch, saves, and releases the records m holds in the background.
func (g *sgroup) fence(m *smember) error {
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
	}
	m.sessionSeq++
	delete(g.members, m.id)
	delete(g.target, m.id)
	if _, err := g.refresh(true); err != nil {
		g.gone = true
		return err
	}
	g.groupEpoch++
	if err := g.save(); err != nil {
		return err
	}
	g.c.releaseMember(g.name, m.id)
	return nil
}

// releaseMember releases, in the background, every record member holds in
// the group's share-partitions (it left the group or its session
// expired), so others get them before the locks expire.
func (c *Coordinator) releaseMember(group, member string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.wg.Go(func() {
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.StoreTimeout)
		defer cancel()
		rows, err := c.store.GroupSharePartitions(ctx, group)
		if err != nil {
			c.logger.Warn("releasing a departed member's records failed; their locks will expire", "group", group, "member", member, "err", err)
			return
		}
		tps := make([]metastore.TopicPartition, len(rows))
		for i, r := range rows {
			tps[i] = r.TopicPartition
		}
		c.parts.ReleaseMember(ctx, group, member, tps)
	})
}
