package group

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

// topicCache resolves topic names for one request.
type topicCache struct {
	store  metastore.Store
	byName map[string]topicLookup
}

type topicLookup struct {
	t    metastore.Topic
	code int16 // 0, UNKNOWN_TOPIC_OR_PARTITION, or a retriable store error
}

func newTopicCache(s metastore.Store) *topicCache {
	return &topicCache{store: s, byName: map[string]topicLookup{}}
}

func (tc *topicCache) get(ctx context.Context, name string) topicLookup {
	if l, ok := tc.byName[name]; ok {
		return l
	}
	t, err := tc.store.Topic(ctx, name)
	l := topicLookup{t: t}
	switch {
	case err == nil:
	case errors.Is(err, metastore.ErrUnknownTopic), errors.Is(err, metastore.ErrUnknownTopicOrPartition):
		l.code = kerr.UnknownTopicOrPartition.Code
	default:
		l.code = kerr.CoordinatorNotAvailable.Code
	}
	tc.byName[name] = l
	return l
}

// partition code for partition p of a looked-up topic.
func (l topicLookup) partition(p int32) int16 {
	if l.code != 0 {
		return l.code
	}
	if p < 0 || p >= l.t.Partitions {
		return kerr.UnknownTopicOrPartition.Code
	}
	return 0
}

// OffsetCommit answers an OffsetCommit request (v0-v9). Offsets are
// fenced by generation when the request names a generation or member, as
// Kafka does; a simple commit (generation -1, no member) is accepted only
// while the group has no members. Errors are per partition.
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	generation, memberID := req.Generation, req.MemberID
	if req.Version == 0 {
		generation, memberID = -1, ""
	}

	type ref struct{ t, p int }
	var valid []ref
	var offsets []metastore.CommittedOffset
	tc := newTopicCache(c.store)
	now := time.Now()
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		l := tc.get(ctx, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = l.partition(rp.Partition)
			meta := ""
			if rp.Metadata != nil {
				meta = *rp.Metadata
			}
			if sp.ErrorCode == 0 && len(meta) > c.cfg.MaxMetadataBytes {
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			}
			if sp.ErrorCode == 0 {
				valid = append(valid, ref{len(resp.Topics), len(st.Partitions)})
				epoch := rp.LeaderEpoch
				if req.Version < 6 {
					epoch = -1
				}
				offsets = append(offsets, metastore.CommittedOffset{
					TopicPartition: metastore.TopicPartition{Topic: l.t.ID, Partition: rp.Partition},
					Offset:         rp.Offset,
					LeaderEpoch:    epoch,
					Metadata:       meta,
					CommitTime:     now,
				})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(valid) == 0 {
		return resp
	}

	code := int16(0)
	err := c.do(ctx, req.Group, func(g *group) {
		code = g.commit(req.Version, generation, memberID, req.InstanceID, offsets)
	})
	if err != nil {
		code = errorCode(err)
	}
	for _, r := range valid {
		resp.Topics[r.t].Partitions[r.p].ErrorCode = code
	}
	return resp
}

// commit validates a commit against the group (Kafka's
// validateOffsetCommit) and stores it.
func (g *group) commit(version int16, generation int32, memberID string, instanceID *string, offsets []metastore.CommittedOffset) int16 {
	if err := g.ensureLoaded(); err != nil {
		return errorCode(err)
	}
	switch g.kind {
	case kindShare:
		return kerr.GroupIDNotFound.Code
	case kindConsumer:
		if code := g.cg.validateCommit(version, generation, memberID); code != 0 {
			return code
		}
		return g.commitOwned(-1, offsets)
	}
	var m *member
	storedGeneration := int32(-1) // a simple commit: no generation to check
	if generation >= 0 || memberID != "" || instanceID != nil {
		if !g.exists && generation >= 0 {
			return kerr.IllegalGeneration.Code
		}
		if code := g.validateMember(memberID, instanceID); code != 0 {
			return code
		}
		if generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
		m = g.members[memberID]
		// The metastore checks it again against the stored generation.
		storedGeneration = generation
	} else if g.state != stateEmpty {
		// Only members may commit to a group with members.
		return kerr.UnknownMemberID.Code
	}
	if g.state == stateCompletingRebalance {
		// The member has its new generation but no assignment yet.
		return kerr.RebalanceInProgress.Code
	}
	if !g.exists {
		// A simple (non-member) group comes into being with its first
		// commit, so ListGroups and DescribeGroups see it.
		if err := g.persist(); err != nil {
			return errorCode(err)
		}
	}
	if code := g.commitOwned(storedGeneration, offsets); code != 0 {
		return code
	}
	if m != nil {
		g.heartbeat(m)
	}
	return 0
}

// commitOwned stores offsets under the group's claim (and, for a
// generation >= 0, the stored generation).
func (g *group) commitOwned(generation int32, offsets []metastore.CommittedOffset) int16 {
	ctx, cancel := g.c.storeCtx()
	defer cancel()
	if err := g.c.store.CommitOwnedOffsets(ctx, g.name, g.epoch, generation, offsets); err != nil {
		g.storeFailed("offset commit failed", err)
		return errorCode(err)
	}
	g.c.metrics.commits.Add(float64(len(offsets)))
	return 0
}

// validateCommit is Kafka's ConsumerGroup.validateOffsetCommit: anyone may
// commit to an empty group; otherwise only a member, naming its current
// epoch (STALE_MEMBER_EPOCH; ILLEGAL_GENERATION for a classic member), and
// a member using the consumer protocol with OffsetCommit v9 or later.
func (cg *consumerGroup) validateCommit(version int16, epoch int32, memberID string) int16 {
	if epoch < 0 && len(cg.members) == 0 {
		return 0
	}
	m := cg.members[memberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID.Code
	case m.classic == nil && version < 9:
		return kerr.UnsupportedVersion.Code
	case epoch != m.epoch && m.classic != nil:
		return kerr.IllegalGeneration.Code
	case epoch != m.epoch:
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}

// OffsetFetch answers an OffsetFetch request (v0-v9, several groups v8+).
// An unknown group, topic or uncommitted partition answers offset -1 with
// no error, as Kafka does (librdkafka and kafka-go rely on it). Null topics
// (v2+) mean every partition the group committed.
func (c *Coordinator) OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group = rg.Group
			var topics []fetchTopic
			if rg.Topics != nil {
				topics = make([]fetchTopic, 0, len(rg.Topics))
				for _, t := range rg.Topics {
					topics = append(topics, fetchTopic{t.Topic, t.Partitions})
				}
			}
			if rg.MemberID != nil {
				if code := c.validateFetch(ctx, rg.Group, *rg.MemberID, rg.MemberEpoch); code != 0 {
					sg.ErrorCode = code
					resp.Groups = append(resp.Groups, sg)
					continue
				}
			}
			res, code := c.fetchOffsets(ctx, rg.Group, topics, rg.Topics == nil, req.RequireStable)
			sg.ErrorCode = code
			for _, t := range res {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.Topic = t.name
				for _, p := range t.parts {
					sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = p.partition, p.offset, p.epoch, kmsg.StringPtr(p.metadata), p.code
					st.Partitions = append(st.Partitions, sp)
				}
				sg.Topics = append(sg.Topics, st)
			}
			resp.Groups = append(resp.Groups, sg)
		}
		return resp
	}
	var topics []fetchTopic
	if req.Topics != nil {
		for _, t := range req.Topics {
			topics = append(topics, fetchTopic{t.Topic, t.Partitions})
		}
	}
	res, code := c.fetchOffsets(ctx, req.Group, topics, req.Topics == nil && req.Version >= 2, req.Version >= 7 && req.RequireStable)
	if req.Version >= 2 {
		resp.ErrorCode = code
	}
	for _, t := range res {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = t.name
		for _, p := range t.parts {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = p.partition, p.offset, p.epoch, kmsg.StringPtr(p.metadata), p.code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// unstablePartition is a partition with offsets staged by an open
// transaction, answered to require_stable (KIP-447): the client retries.
func unstablePartition(p int32) fetchedPartition {
	return fetchedPartition{partition: p, offset: -1, epoch: -1, code: kerr.UnstableOffsetCommit.Code}
}

// validateFetch checks the member an OffsetFetch (v9+) names, as Kafka's
// ConsumerGroup.validateOffsetFetch: in a consumer group it must be a
// member at the epoch it names (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH, or
// ILLEGAL_GENERATION for a classic member). Classic groups are not
// checked.
func (c *Coordinator) validateFetch(ctx context.Context, name, memberID string, epoch int32) int16 {
	var code int16
	err := c.do(ctx, name, func(g *group) {
		if err := g.ensureLoaded(); err != nil {
			code = errorCode(err)
			return
		}
		if g.kind != kindConsumer || memberID == "" && epoch < 0 {
			return
		}
		switch m := g.cg.members[memberID]; {
		case m == nil:
			code = kerr.UnknownMemberID.Code
		case epoch != m.epoch && m.classic != nil:
			code = kerr.IllegalGeneration.Code
		case epoch != m.epoch:
			code = kerr.StaleMemberEpoch.Code
		}
	})
	if err != nil {
		return errorCode(err)
	}
	return code
}

type fetchTopic struct {
	name  string
	parts []int32
}

type fetchedTopic struct {
	name  string
	parts []fetchedPartition
}

type fetchedPartition struct {
	partition int32
	offset    int64
	epoch     int32
	metadata  string
	code      int16
}

// fetchOffsets reads committed offsets straight from the metastore: commits
// are written there before they are acknowledged, so no group state is
// needed (and an unknown group is not loaded just to answer -1).
func (c *Coordinator) fetchOffsets(ctx context.Context, groupName string, topics []fetchTopic, all, requireStable bool) ([]fetchedTopic, int16) {
	if all {
		offs, err := c.store.FetchOffsets(ctx, groupName, nil)
		if err != nil {
			return nil, errorCode(err)
		}
		var pending map[metastore.TopicPartition]bool
		if requireStable {
			if pending, err = c.unstable(ctx, groupName, nil); err != nil {
				return nil, errorCode(err)
			}
		}
		names := map[metastore.TopicID]string{}
		byTopic := map[string][]fetchedPartition{}
		for _, o := range offs {
			name, ok := names[o.Topic]
			if !ok {
				t, err := c.store.TopicByID(ctx, o.Topic)
				if err != nil {
					if errors.Is(err, metastore.ErrUnknownTopic) || errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
						names[o.Topic] = ""
						continue
					}
					return nil, errorCode(err)
				}
				name = t.Name
				names[o.Topic] = name
			}
			if name == "" {
				continue
			}
			fp := fetchedPartition{o.Partition, o.Offset, o.LeaderEpoch, o.Metadata, 0}
			if pending[o.TopicPartition] {
				fp = unstablePartition(o.Partition)
			}
			byTopic[name] = append(byTopic[name], fp)
		}
		out := make([]fetchedTopic, 0, len(byTopic))
		for name, ps := range byTopic {
			slices.SortFunc(ps, func(a, b fetchedPartition) int { return int(a.partition - b.partition) })
			out = append(out, fetchedTopic{name, ps})
		}
		slices.SortFunc(out, func(a, b fetchedTopic) int { return strings.Compare(a.name, b.name) })
		return out, 0
	}

	tc := newTopicCache(c.store)
	var tps []metastore.TopicPartition
	for _, t := range topics {
		l := tc.get(ctx, t.name)
		if l.code == kerr.CoordinatorNotAvailable.Code {
			return nil, l.code
		}
		if l.code != 0 {
			continue
		}
		for _, p := range t.parts {
			tps = append(tps, metastore.TopicPartition{Topic: l.t.ID, Partition: p})
		}
	}
	got := map[metastore.TopicPartition]metastore.CommittedOffset{}
	if len(tps) > 0 {
		offs, err := c.store.FetchOffsets(ctx, groupName, tps)
		if err != nil {
			return nil, errorCode(err)
		}
		for _, o := range offs {
			got[o.TopicPartition] = o
		}
	}
	var pending map[metastore.TopicPartition]bool
	if requireStable && len(tps) > 0 {
		var err error
		if pending, err = c.unstable(ctx, groupName, tps); err != nil {
			return nil, errorCode(err)
		}
	}
	out := make([]fetchedTopic, 0, len(topics))
	for _, t := range topics {
		l := tc.get(ctx, t.name)
		ft := fetchedTopic{name: t.name}
		for _, p := range t.parts {
			fp := fetchedPartition{partition: p, offset: -1, epoch: -1}
			if l.code == 0 {
				tp := metastore.TopicPartition{Topic: l.t.ID, Partition: p}
				if o, ok := got[tp]; ok {
					fp.offset, fp.epoch, fp.metadata = o.Offset, o.LeaderEpoch, o.Metadata
				}
				if pending[tp] {
					fp = unstablePartition(p)
				}
			}
			ft.parts = append(ft.parts, fp)
		}
		out = append(out, ft)
	}
	return out, 0
}

// OffsetDelete answers an OffsetDelete request (v0): a group's committed
// offsets are removed unless the group is consuming the topic
// (GROUP_SUBSCRIBED_TO_TOPIC); a non-empty group of another protocol type
// gets NON_EMPTY_GROUP.
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	tc := newTopicCache(c.store)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		l := tc.get(ctx, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = l.partition(rp.Partition)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	err := c.do(ctx, req.Group, func(g *group) {
		if err := g.ensureLoaded(); err != nil {
			resp.ErrorCode = errorCode(err)
			return
		}
		if !g.exists || g.kind == kindShare {
			resp.ErrorCode = kerr.GroupIDNotFound.Code
			return
		}
		subscribed := map[string]bool{}
		if g.kind == kindConsumer {
			for n := range g.cg.subs {
				subscribed[n] = true
			}
		} else if g.state != stateEmpty {
			if g.protocolType != "consumer" {
				resp.ErrorCode = kerr.NonEmptyGroup.Code
				return
			}
			subscribed = g.subscribedTopics()
		}
		var tps []metastore.TopicPartition
		for i := range resp.Topics {
			st := &resp.Topics[i]
			for j := range st.Partitions {
				sp := &st.Partitions[j]
				if sp.ErrorCode != 0 {
					continue
				}
				if subscribed[st.Topic] {
					sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
					continue
				}
				tps = append(tps, metastore.TopicPartition{Topic: tc.get(ctx, st.Topic).t.ID, Partition: sp.Partition})
			}
		}
		if len(tps) == 0 {
			return
		}
		sctx, cancel := g.c.storeCtx()
		defer cancel()
		if err := g.c.store.DeleteOwnedOffsets(sctx, g.name, g.epoch, tps); err != nil {
			g.storeFailed("offset delete failed", err)
			code := errorCode(err)
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					if resp.Topics[i].Partitions[j].ErrorCode == 0 {
						resp.Topics[i].Partitions[j].ErrorCode = code
					}
				}
			}
		}
	})
	if err != nil {
		resp.ErrorCode = errorCode(err)
	}
	return resp
}

// subscribedTopics is the union of the members' subscriptions, read from
// their consumer-protocol metadata for the group's protocol.
func (g *group) subscribedTopics() map[string]bool {
	out := map[string]bool{}
	for _, m := range g.members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			continue
		}
		for _, t := range meta.Topics {
			out[t] = true
		}
	}
	return out
}
