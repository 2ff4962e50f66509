package group

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

// DescribeGroup describes one group (DescribeGroups v0-v6). An unknown
// group is reported in state Dead, with GROUP_ID_NOT_FOUND from v6 (no
// error before, as Kafka); a consumer or share group in state Dead with
// GROUP_ID_NOT_FOUND and "is not a classic group", as Kafka 4.x answers.
// Members' metadata and assignments are shown only while Stable.
func (c *Coordinator) DescribeGroup(ctx context.Context, name string, version int16) kmsg.DescribeGroupsResponseGroup {
	out := kmsg.NewDescribeGroupsResponseGroup()
	out.Group = name
	out.State = stateDead.String()
	err := c.do(ctx, name, func(g *group) {
		if err := g.ensureLoaded(); err != nil {
			out.ErrorCode = errorCode(err)
			return
		}
		switch {
		case g.kind != kindClassic:
			out.ErrorCode = kerr.GroupIDNotFound.Code
			out.ErrorMessage = kmsg.StringPtr("Group " + name + " is not a classic group.")
			return
		case !g.exists && version >= 6:
			out.ErrorCode = kerr.GroupIDNotFound.Code
			out.ErrorMessage = kmsg.StringPtr("Group " + name + " not found.")
			return
		case !g.exists:
			return
		}
		out.State = g.state.String()
		out.ProtocolType = g.protocolType
		stable := g.state == stateStable
		if stable {
			out.Protocol = g.protocol
		}
		for _, m := range g.members {
			dm := kmsg.NewDescribeGroupsResponseGroupMember()
			dm.MemberID = m.id
			dm.InstanceID = m.instanceID
			dm.ClientID = m.clientID
			dm.ClientHost = m.clientHost
			dm.ProtocolMetadata = []byte{}
			dm.MemberAssignment = []byte{}
			if stable {
				dm.ProtocolMetadata = m.metadataFor(g.protocol)
				if m.assignment != nil {
					dm.MemberAssignment = m.assignment
				}
			}
			out.Members = append(out.Members, dm)
		}
		slices.SortFunc(out.Members, func(a, b kmsg.DescribeGroupsResponseGroupMember) int {
			return strings.Compare(a.MemberID, b.MemberID)
		})
	})
	if err != nil {
		out.ErrorCode = errorCode(err)
	}
	return out
}

// ListedGroup is one ListGroups entry.
type ListedGroup struct {
	Name         string
	ProtocolType string
	State        string
	Type         string // metastore.GroupType*
}

// ListGroups lists the classic and consumer groups for which owns returns
// true (the agent passes "this agent coordinates it", as each Kafka broker
// lists its own groups), filtered by state names and group types
// (case-insensitive; empty: all). Loaded groups report their live state,
// others their saved one. Share groups are agent/share's to list.
func (c *Coordinator) ListGroups(ctx context.Context, states, types []string, owns func(name string) bool) ([]ListedGroup, error) {
	saved, err := c.store.Groups(ctx)
	if err != nil {
		return nil, err
	}
	live := map[string]*groupView{}
	for _, g := range c.running() {
		if v := g.view.Load(); v != nil {
			live[g.name] = v
		}
	}
	want := func(filter []string, s string) bool {
		return len(filter) == 0 || slices.ContainsFunc(filter, func(w string) bool { return strings.EqualFold(strings.TrimSpace(w), s) })
	}
	// A group in its first rebalance is not saved yet.
	known := map[string]bool{}
	for _, sg := range saved {
		known[sg.Name] = true
	}
	for name, v := range live {
		if !known[name] {
			saved = append(saved, metastore.Group{Name: name, State: v.state, ProtocolType: v.protocolType, Type: v.groupType})
		}
	}
	slices.SortFunc(saved, func(a, b metastore.Group) int { return strings.Compare(a.Name, b.Name) })
	var out []ListedGroup
	for _, sg := range saved {
		lg := ListedGroup{Name: sg.Name, ProtocolType: sg.ProtocolType, State: sg.State, Type: sg.Type}
		if lg.Type == "" {
			lg.Type = metastore.GroupTypeClassic
		}
		if v, ok := live[sg.Name]; ok {
			lg.State, lg.ProtocolType, lg.Type = v.state, v.protocolType, v.groupType
		}
		if lg.Type == metastore.GroupTypeShare || lg.State == stateDead.String() ||
			!want(states, lg.State) || !want(types, lg.Type) || (owns != nil && !owns(sg.Name)) {
			continue
		}
		out = append(out, lg)
	}
	return out, nil
}

// DeleteGroup deletes a classic or consumer group with no members, and its
// committed offsets (DeleteGroups v0-v2). It returns the Kafka error code:
// GROUP_ID_NOT_FOUND for an unknown group, NON_EMPTY_GROUP while it has
// members; isShare when the name is a share group's, which agent/share
// deletes.
func (c *Coordinator) DeleteGroup(ctx context.Context, name string) (code int16, isShare bool) {
	err := c.do(ctx, name, func(g *group) {
		if err := g.ensureLoaded(); err != nil {
			code = errorCode(err)
			return
		}
		switch {
		case g.kind == kindShare:
			isShare = true
			return
		case !g.exists || g.state == stateDead:
			code = kerr.GroupIDNotFound.Code
			return
		case g.kind == kindConsumer && len(g.cg.members) > 0,
			g.kind == kindClassic && (g.state != stateEmpty || len(g.members) > 0):
			code = kerr.NonEmptyGroup.Code
			return
		}
		sctx, cancel := g.c.storeCtx()
		defer cancel()
		if err := g.c.store.DeleteOwnedGroup(sctx, g.name, g.epoch); err != nil {
			g.storeFailed("group delete failed", err)
			code = errorCode(err)
			return
		}
		g.setState(stateDead)
		g.c.logger.Info("group deleted", "group", g.name)
		g.gone = true
	})
	if err != nil {
		return errorCode(err), false
	}
	return code, isShare
}

// AllGroupOperations is the authorized-operations bit set Kafka 4.x
// answers for a consumer or share group when asked: READ(3), DELETE(6),
// DESCRIBE(8), DESCRIBE_CONFIGS(10), ALTER_CONFIGS(11).
const AllGroupOperations = 1<<3 | 1<<6 | 1<<8 | 1<<10 | 1<<11

// ConsumerGroupDescribe describes one consumer group (ConsumerGroupDescribe
// v0-v1): GROUP_ID_NOT_FOUND for an unknown group or one of another type.
func (c *Coordinator) ConsumerGroupDescribe(ctx context.Context, name string) kmsg.ConsumerGroupDescribeResponseGroup {
	out := kmsg.NewConsumerGroupDescribeResponseGroup()
	out.Group = name
	err := c.do(ctx, name, func(g *group) {
		if err := g.ensureLoaded(); err != nil {
			out.ErrorCode = errorCode(err)
			return
		}
		switch {
		case !g.exists && g.kind != kindShare:
			out.ErrorCode = kerr.GroupIDNotFound.Code
			out.ErrorMessage = kmsg.StringPtr("Group " + name + " not found.")
			return
		case g.kind != kindConsumer:
			out.ErrorCode = kerr.GroupIDNotFound.Code
			out.ErrorMessage = kmsg.StringPtr("Group " + name + " is not a consumer group.")
			return
		}
		snap, err := g.c.topicSnapshot(g.c.cfg.MetadataRefresh)
		if err != nil {
			out.ErrorCode = errorCode(err)
			return
		}
		cg := g.cg
		out.State = cg.stateName()
		out.Epoch = cg.epoch
		out.AssignmentEpoch = cg.assignmentEpoch
		out.AssignorName = cg.preferredAssignor(g.c.cfg.ConsumerAssignors[0])
		for _, id := range slices.Sorted(maps.Keys(cg.members)) {
			m := cg.members[id]
			dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
			dm.MemberID, dm.InstanceID, dm.RackID, dm.MemberEpoch = m.id, m.instanceID, m.rackID, m.epoch
			dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
			dm.SubscribedTopics = slices.Clone(m.topics)
			if dm.SubscribedTopics == nil {
				dm.SubscribedTopics = []string{}
			}
			if m.regex != "" {
				dm.SubscribedTopicRegex = kmsg.StringPtr(m.regex)
			}
			dm.Assignment = describedAssignment(snap, m.assigned)
			dm.TargetAssignment = describedAssignment(snap, cg.target[id])
			dm.MemberType = 1
			if m.classic != nil {
				dm.MemberType = 0
			}
			out.Members = append(out.Members, dm)
		}
	})
	if err != nil {
		out.ErrorCode = errorCode(err)
	}
	return out
}

// describedAssignment is an assignment as ConsumerGroupDescribe shows it,
// with topic names.
func describedAssignment(snap *topicSnapshot, a assignment) kmsg.Assignment {
	out := kmsg.NewAssignment()
	out.TopicPartitions = []kmsg.AssignmentTopicPartition{}
	for _, t := range a.topics() {
		tp := kmsg.AssignmentTopicPartition{TopicID: t, Topic: snap.byID[t].Name, Partitions: slices.Clone(a[t])}
		out.TopicPartitions = append(out.TopicPartitions, tp)
	}
	return out
}
