package share

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

// Describe answers ShareGroupDescribe (v1) for one group:
// GROUP_ID_NOT_FOUND for an unknown group or one of another type.
func (c *Coordinator) Describe(ctx context.Context, name string) kmsg.ShareGroupDescribeResponseGroup {
	out := kmsg.NewShareGroupDescribeResponseGroup()
	out.GroupID = name
	err := c.do(ctx, name, func(g *sgroup) {
		if err := g.ensureLoaded(); err != nil {
			out.ErrorCode = errorCode(err)
			return
		}
		switch {
		case g.foreign:
			out.ErrorCode, out.ErrorMessage = kerr.GroupIDNotFound.Code, kmsg.StringPtr("Group "+name+" is not a share group.")
			return
		case !g.exists:
			out.ErrorCode, out.ErrorMessage = kerr.GroupIDNotFound.Code, kmsg.StringPtr("Group "+name+" not found.")
			return
		}
		_, byID, err := c.topicsNow()
		if err != nil {
			out.ErrorCode = errorCode(err)
			return
		}
		out.GroupState, out.GroupEpoch, out.AssignmentEpoch, out.Assignor = g.stateName(), g.groupEpoch, g.assignmentEpoch, "simple"
		for _, id := range slices.Sorted(maps.Keys(g.members)) {
			m := g.members[id]
			dm := kmsg.NewShareGroupDescribeResponseGroupMember()
			dm.MemberID, dm.RackID, dm.MemberEpoch, dm.ClientID, dm.ClientHost = m.id, m.rackID, m.epoch, m.clientID, m.clientHost
			dm.SubscribedTopicNames = slices.Clone(m.topics)
			dm.Assignment.TopicPartitions = []kmsg.ShareGroupDescribeResponseGroupMemberAssignmentTopicPartition{}
			for _, t := range m.assigned.topics() {
				dm.Assignment.TopicPartitions = append(dm.Assignment.TopicPartitions, kmsg.ShareGroupDescribeResponseGroupMemberAssignmentTopicPartition{
					TopicID: t, Topic: byID[t].Name, Partitions: slices.Clone(m.assigned[t]),
				})
			}
			out.Members = append(out.Members, dm)
		}
	})
	if err != nil {
		out.ErrorCode = errorCode(err)
	}
	return out
}

// Listed is one share group as ListGroups lists it.
type Listed struct {
	Name  string
	State string
}

// List lists the share groups for which owns is true, with their live
// state when loaded here, their saved one otherwise, filtered by state
// names (case-insensitive; empty: all).
func (c *Coordinator) List(ctx context.Context, states []string, owns func(string) bool) ([]Listed, error) {
	saved, err := c.store.Groups(ctx)
	if err != nil {
		return nil, err
	}
	live := map[string]string{}
	for _, g := range c.running() {
		if v := g.view.load(); v != nil {
			live[g.name] = v.state
		}
	}
	var out []Listed
	for _, sg := range saved {
		if sg.Type != metastore.GroupTypeShare || owns != nil && !owns(sg.Name) {
			continue
		}
		st := sg.State
		if s, ok := live[sg.Name]; ok {
			st = s
		}
		if len(states) > 0 && !slices.ContainsFunc(states, func(w string) bool { return strings.EqualFold(strings.TrimSpace(w), st) }) {
			continue
		}
		out = append(out, Listed{Name: sg.Name, State: st})
	}
	return out, nil
}

// Delete deletes an empty share group and all its share-partitions
// (DeleteGroups): GROUP_ID_NOT_FOUND when unknown, NON_EMPTY_GROUP while
// it has members.
func (c *Coordinator) Delete(ctx context.Context, name string) int16 {
	var code int16
	err := c.do(ctx, name, func(g *sgroup) {
		if err := g.ensureLoaded(); err != nil {
			code = errorCode(err)
			return
		}
		switch {
		case g.foreign || !g.exists:
			code = kerr.GroupIDNotFound.Code
			return
		case len(g.members) > 0:
			code = kerr.NonEmptyGroup.Code
			return
		}
		sctx, cancel := c.storeCtx()
		defer cancel()
		if err := c.store.DeleteOwnedShareGroup(sctx, name, g.epoch); err != nil {
			g.gone = true
			code = errorCode(err)
			return
		}
		c.logger.Info("share group deleted", "group", name)
		g.gone = true
	})
	if err != nil {
		return errorCode(err)
	}
	return code
}

// OffsetsTopic names the partitions of one topic in the offset admin
// APIs; nil Partitions: every one the group has state for.
type OffsetsTopic struct {
	Name       string
	Partitions []int32
}

// DescribeOffsets answers DescribeShareGroupOffsets for one group: each
// partition's start offset (-1 when the group has no state for it) and
// its lag, the records from the start offset to the high watermark not
// yet done. Nil topics: every partition with state. It reads the rows
// directly; the group need not be loaded.
func (c *Coordinator) DescribeOffsets(ctx context.Context, name string, topics []OffsetsTopic) kmsg.DescribeShareGroupOffsetsResponseGroup {
	out := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
	out.GroupID = name
	byName, byID, err := c.topicsNow()
	if err != nil {
		out.ErrorCode = errorCode(err)
		return out
	}
	rows, err := c.store.GroupSharePartitions(ctx, name)
	if err != nil {
		out.ErrorCode = errorCode(err)
		return out
	}
	have := map[metastore.TopicPartition]metastore.SharePartition{}
	for _, r := range rows {
		have[r.TopicPartition] = r
	}
	if topics == nil {
		perTopic := map[string][]int32{}
		for _, r := range rows {
			if t, ok := byID[r.Topic]; ok {
				perTopic[t.Name] = append(perTopic[t.Name], r.Partition)
			}
		}
		for _, n := range slices.Sorted(maps.Keys(perTopic)) {
			topics = append(topics, OffsetsTopic{Name: n, Partitions: perTopic[n]})
		}
	}
	for _, ot := range topics {
		rt := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
		rt.Topic = ot.Name
		t, known := byName[ot.Name]
		rt.TopicID = t.ID
		for _, p := range ot.Partitions {
			rp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
			rp.Partition, rp.StartOffset, rp.Lag = p, -1, -1
			tp := metastore.TopicPartition{Topic: t.ID, Partition: p}
			switch row, ok := have[tp]; {
			case !known || p < 0 || p >= t.Partitions:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case ok:
				rp.StartOffset = row.StartOffset
				if offs, err := c.store.Offsets(ctx, tp); err == nil {
					rp.Lag = lag(row, offs.HighWatermark)
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out
}

// lag is the records of a share-partition not done yet: from its start
// offset to the high watermark, less those already acknowledged or
// archived in its window.
func lag(row metastore.SharePartition, hw int64) int64 {
	st, err := decode(row.StartOffset, row.State)
	if err != nil {
		return -1
	}
	done := int64(0)
	for _, s := range st.spans {
		if s.state.done() {
			done += s.n
		}
	}
	return max(hw-row.StartOffset-done, 0)
}

// AlterOffsets answers AlterShareGroupOffsets: the group must be empty
// (NON_EMPTY_GROUP); each partition's start offset is set and its
// in-flight records dropped. A group that does not exist yet is created
// empty, as in Kafka.
func (c *Coordinator) AlterOffsets(ctx context.Context, req *kmsg.AlterShareGroupOffsetsRequest) *kmsg.AlterShareGroupOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
	byName, _, err := c.topicsNow()
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp
	}
	var resets []metastore.SharePartitionReset
	for _, rt := range req.Topics {
		st := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		st.Topic = rt.Topic
		t, known := byName[rt.Topic]
		st.TopicID = t.ID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			if !known || rp.Partition < 0 || rp.Partition >= t.Partitions {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				resets = append(resets, metastore.SharePartitionReset{TopicPartition: metastore.TopicPartition{Topic: t.ID, Partition: rp.Partition}, StartOffset: rp.StartOffset})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	err = c.do(ctx, req.GroupID, func(g *sgroup) {
		if err := g.ensureLoaded(); err != nil {
			resp.ErrorCode = errorCode(err)
			return
		}
		switch {
		case g.foreign:
			resp.ErrorCode = kerr.GroupIDNotFound.Code
			return
		case len(g.members) > 0:
			resp.ErrorCode, resp.ErrorMessage = kerr.NonEmptyGroup.Code, kmsg.StringPtr("The group is not empty.")
			return
		}
		if !g.exists {
			if err := g.save(); err != nil {
				resp.ErrorCode = errorCode(err)
				return
			}
		}
		if len(resets) == 0 {
			return
		}
		sctx, cancel := c.storeCtx()
		defer cancel()
		if err := c.store.ResetOwnedSharePartitions(sctx, g.name, g.epoch, resets); err != nil {
			g.gone = true
			resp.ErrorCode = errorCode(err)
			return
		}
		c.parts.forget(g.name)
	})
	if err != nil {
		resp.ErrorCode = errorCode(err)
	}
	if resp.ErrorCode != 0 {
		resp.Topics = nil
	}
	return resp
}

// DeleteOffsets answers DeleteShareGroupOffsets: the group must be empty;
// every share-partition of the named topics is removed.
func (c *Coordinator) DeleteOffsets(ctx context.Context, req *kmsg.DeleteShareGroupOffsetsRequest) *kmsg.DeleteShareGroupOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
	byName, _, err := c.topicsNow()
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp
	}
	err = c.do(ctx, req.GroupID, func(g *sgroup) {
		if err := g.ensureLoaded(); err != nil {
			resp.ErrorCode = errorCode(err)
			return
		}
		switch {
		case g.foreign || !g.exists:
			resp.ErrorCode = kerr.GroupIDNotFound.Code
			return
		case len(g.members) > 0:
			resp.ErrorCode, resp.ErrorMessage = kerr.NonEmptyGroup.Code, kmsg.StringPtr("The group is not empty.")
			return
		}
		var tps []metastore.TopicPartition
		for _, rt := range req.Topics {
			st := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
			st.Topic = rt.Topic
			t, known := byName[rt.Topic]
			st.TopicID = t.ID
			if !known {
				st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			for p := range t.Partitions {
				tp := metastore.TopicPartition{Topic: t.ID, Partition: p}
				tps = append(tps, tp)
				delete(g.initialized, tp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		if len(tps) == 0 {
			return
		}
		sctx, cancel := c.storeCtx()
		defer cancel()
		if err := c.store.DeleteOwnedSharePartitions(sctx, g.name, g.epoch, tps); err != nil {
			g.gone = true
			resp.ErrorCode = errorCode(err)
			return
		}
		c.parts.forget(g.name)
	})
	if err != nil {
		resp.ErrorCode = errorCode(err)
	}
	if resp.ErrorCode != 0 {
		resp.Topics = nil
	}
	return resp
}

// metrics are the share groups' Prometheus metrics.
type metrics struct {
	acquired     prometheus.Counter
	acknowledged *prometheus.CounterVec
	conflicts    prometheus.Counter
}

func newMetrics(c *Coordinator, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		acquired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_share_records_acquired_total", Help: "Records handed to share consumers under an acquisition lock.",
		}),
		acknowledged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_share_records_acknowledged_total", Help: "Records share consumers acknowledged, by type (accept, release, reject, gap, renew).",
		}, []string{"type"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_share_partition_conflicts_total", Help: "Share-partition compare-and-set writes that lost to another agent's and were retried.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	groups := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "silt_share_groups", Help: "Share groups loaded on this coordinator.",
	}, func() float64 { return float64(len(c.running())) })
	for _, col := range []prometheus.Collector{m.acquired, m.acknowledged, m.conflicts, groups} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}
