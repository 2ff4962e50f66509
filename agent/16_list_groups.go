package agent

// ListGroups: v0-v5.
//
// Behaviour: like a Kafka broker, each agent lists the groups it
// coordinates (clients ask every broker and merge), with their protocol
// type, v4+ state and v5+ type (classic, consumer, share), filtered by
// StatesFilter and TypesFilter (case-insensitive). Groups created only by
// offset commits are listed with an empty protocol type. Share groups are
// listed from v5 on.
//
// Authorization (when on): DESCRIBE on the cluster lists every group;
// otherwise only the groups the principal may DESCRIBE are listed.
//
// Differences from Kafka: none intended.

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/auth/acl"
)

func (a *Agent) handleListGroups(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	var states, types []string
	if req.Version >= 4 {
		states = req.StatesFilter
	}
	if req.Version >= 5 {
		types = req.TypesFilter
	}
	owns := func(name string) bool { _, ok := (groupOwnership{a}).Owns(name); return ok }
	groups, err := a.groups.ListGroups(ctx, states, types, owns)
	if err != nil {
		resp.ErrorCode = groupErrorCode(err)
		r.logError(resp.ErrorCode, err)
		return resp, nil
	}
	// Kafka: DESCRIBE on the cluster lists every group, else only the
	// groups the principal may DESCRIBE.
	all := r.authorizedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeCluster, acl.ClusterName)
	for _, g := range groups {
		if !all && !r.authorizedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, g.Name) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.Name, g.ProtocolType, g.State, g.Type
		resp.Groups = append(resp.Groups, lg)
	}
	// Share groups only from v5, whose answers name group types: an older
	// client would take them for groups it can describe and join.
	if req.Version >= 5 && (len(types) == 0 || slices.ContainsFunc(types, func(t string) bool { return strings.EqualFold(strings.TrimSpace(t), "share") })) {
		shares, err := a.shares.List(ctx, states, owns)
		if err != nil {
			resp.ErrorCode = groupErrorCode(err)
			r.logError(resp.ErrorCode, err)
			resp.Groups = nil
			return resp, nil
		}
		for _, g := range shares {
			if !all && !r.authorizedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, g.Name) {
				continue
			}
			lg := kmsg.NewListGroupsResponseGroup()
			lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.Name, "share", g.State, "share"
			resp.Groups = append(resp.Groups, lg)
		}
	}
	return resp, nil
}
