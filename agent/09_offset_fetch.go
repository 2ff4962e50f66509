package agent

// OffsetFetch: v0-v9 (several groups per request from v8).
//
// Behaviour: committed offsets with their leader epoch (v5+) and metadata.
// An unknown group, an unknown topic or a partition without a commit
// answers offset -1 and no error, as Kafka does (librdkafka and kafka-go
// consumers break on GROUP_ID_NOT_FOUND). Null topics (v2+) return every
// committed partition of the group. RequireStable (v7+, KIP-447): a
// partition with offsets staged by an open transaction (TxnOffsetCommit)
// answers UNSTABLE_OFFSET_COMMIT and offset -1, and the client retries.
// Authorization (when on): DESCRIBE on the
// group (GROUP_AUTHORIZATION_FAILED) and on each topic (its partitions
// answer TOPIC_AUTHORIZATION_FAILED; left out when all topics are asked).
//
// Differences from Kafka: none intended. The v9 member id and epoch
// (KIP-848 groups) are not checked; classic groups do not use them.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (a *Agent) handleOffsetFetch(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetFetchRequest)
	if req.Version < 8 {
		groupOK := r.authorized(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, req.Group)
		if !groupOK || !a.ownsGroup(ctx, req.Group) {
			code := kerr.NotCoordinator.Code
			if !groupOK {
				code = kerr.GroupAuthorizationFailed.Code
			}
			resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
			resp.ErrorCode = code
			for _, rt := range req.Topics {
				st := kmsg.NewOffsetFetchResponseTopic()
				st.Topic = rt.Topic
				for _, p := range rt.Partitions {
					sp := kmsg.NewOffsetFetchResponseTopicPartition()
					sp.Partition, sp.Offset, sp.ErrorCode = p, -1, code
					st.Partitions = append(st.Partitions, sp)
				}
				resp.Topics = append(resp.Topics, st)
			}
			return resp, nil
		}
		resp := a.groups.OffsetFetch(ctx, req)
		for i := range resp.Topics {
			st := &resp.Topics[i]
			if !r.authorizedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, st.Topic) {
				for j := range st.Partitions {
					st.Partitions[j].Offset, st.Partitions[j].Metadata, st.Partitions[j].ErrorCode = -1, nil, kerr.TopicAuthorizationFailed.Code
				}
			}
		}
		if req.Topics == nil { // all topics: leave out the unauthorized
			resp.Topics = slices.DeleteFunc(resp.Topics, func(st kmsg.OffsetFetchResponseTopic) bool {
				return len(st.Partitions) > 0 && st.Partitions[0].ErrorCode == kerr.TopicAuthorizationFailed.Code
			})
		}
		return resp, nil
	}

	// v8+: answer the groups this agent coordinates, NOT_COORDINATOR for
	// the others (the client then sends those to their coordinator).
	owned := *req
	owned.Groups = nil
	var foreign, denied []string
	all := map[string]bool{}
	for _, g := range req.Groups {
		switch {
		case !r.authorized(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, g.Group):
			denied = append(denied, g.Group)
		case a.ownsGroup(ctx, g.Group):
			owned.Groups = append(owned.Groups, g)
			all[g.Group] = g.Topics == nil
		default:
			foreign = append(foreign, g.Group)
		}
	}
	resp := a.groups.OffsetFetch(ctx, &owned)
	for gi := range resp.Groups {
		g := &resp.Groups[gi]
		for i := range g.Topics {
			st := &g.Topics[i]
			if !r.authorizedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, st.Topic) {
				for j := range st.Partitions {
					st.Partitions[j].Offset, st.Partitions[j].Metadata, st.Partitions[j].ErrorCode = -1, nil, kerr.TopicAuthorizationFailed.Code
				}
			}
		}
		if all[g.Group] {
			g.Topics = slices.DeleteFunc(g.Topics, func(st kmsg.OffsetFetchResponseGroupTopic) bool {
				return len(st.Partitions) > 0 && st.Partitions[0].ErrorCode == kerr.TopicAuthorizationFailed.Code
			})
		}
	}
	for _, name := range denied {
		sg := kmsg.NewOffsetFetchResponseGroup()
		sg.Group = name
		sg.ErrorCode = kerr.GroupAuthorizationFailed.Code
		resp.Groups = append(resp.Groups, sg)
	}
	for _, name := range foreign {
		sg := kmsg.NewOffsetFetchResponseGroup()
		sg.Group = name
		sg.ErrorCode = kerr.NotCoordinator.Code
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}
