package group

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

// DescribeGroup describes one group (DescribeGroups v0-v5). An unknown
// group is reported in state Dead with no error, as Kafka does before v6.
// Members' metadata and assignments are shown only while Stable.
func (c *Coordinator) DescribeGroup(ctx context.Context, name string) kmsg.DescribeGroupsResponseGroup {
	out := kmsg.NewDescribeGroupsResponseGroup()
	out.Group = name
	out.State = stateDead.String()
	err := c.do(ctx, name, func(g *group) {
		if err := g.ensureLoaded(); err != nil {
			out.ErrorCode = errorCode(err)
			return
		}
		if !g.exists {
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
}

// ListGroups lists the groups for which owns returns true (the agent passes
// "this agent coordinates it", as each Kafka broker lists its own groups),
// filtered by state names (case-insensitive; empty: all). Loaded groups
// report their live state, others their saved one.
func (c *Coordinator) ListGroups(ctx context.Context, states []string, owns func(name string) bool) ([]ListedGroup, error) {
	saved, err := c.store.Groups(ctx)
	if err != nil {
		return nil, err
	}
	live := map[string]state{}
	liveType := map[string]string{}
	for _, g := range c.running() {
		if s := g.stateView.Load(); s >= 0 {
			live[g.name] = state(s)
			liveType[g.name], _ = g.typeView.Load().(string)
		}
	}
	want := func(s string) bool {
		if len(states) == 0 {
			return true
		}
		for _, w := range states {
			if strings.EqualFold(w, s) {
				return true
			}
		}
		return false
	}
	// A group in its first rebalance is not saved yet.
	known := map[string]bool{}
	for _, sg := range saved {
		known[sg.Name] = true
	}
	for name, s := range live {
		if !known[name] {
			saved = append(saved, metastore.Group{Name: name, State: s.String(), ProtocolType: liveType[name]})
		}
	}
	slices.SortFunc(saved, func(a, b metastore.Group) int { return strings.Compare(a.Name, b.Name) })
	var out []ListedGroup
	for _, sg := range saved {
		st := sg.State
		if s, ok := live[sg.Name]; ok {
			st = s.String()
		}
		if st == stateDead.String() || !want(st) || (owns != nil && !owns(sg.Name)) {
			continue
		}
		out = append(out, ListedGroup{Name: sg.Name, ProtocolType: sg.ProtocolType, State: st})
	}
	return out, nil
}

// DeleteGroup deletes a group with no members, and its committed offsets
// (DeleteGroups v0-v2). It returns the Kafka error code: GROUP_ID_NOT_FOUND
// for an unknown group, NON_EMPTY_GROUP while it has members.
func (c *Coordinator) DeleteGroup(ctx context.Context, name string) int16 {
	var code int16
	err := c.do(ctx, name, func(g *group) {
		if err := g.ensureLoaded(); err != nil {
			code = errorCode(err)
			return
		}
		switch {
		case !g.exists || g.state == stateDead:
			code = kerr.GroupIDNotFound.Code
			return
		case g.state != stateEmpty || len(g.members) > 0:
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
		return errorCode(err)
	}
	return code
}
