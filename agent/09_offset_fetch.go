package agent

// OffsetFetch: v0-v9 (several groups per request from v8).
//
// Behaviour: committed offsets with their leader epoch (v5+) and metadata.
// An unknown group, an unknown topic or a partition without a commit
// answers offset -1 and no error, as Kafka does (librdkafka and kafka-go
// consumers break on GROUP_ID_NOT_FOUND). Null topics (v2+) return every
// committed partition of the group. RequireStable (v7+) never waits: silt
// has no transactional offsets.
//
// Differences from Kafka: none intended. The v9 member id and epoch
// (KIP-848 groups) are not checked; classic groups do not use them.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (a *Agent) handleOffsetFetch(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetFetchRequest)
	if req.Version < 8 {
		if !a.ownsGroup(ctx, req.Group) {
			resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
			resp.ErrorCode = kerr.NotCoordinator.Code
			for _, rt := range req.Topics {
				st := kmsg.NewOffsetFetchResponseTopic()
				st.Topic = rt.Topic
				for _, p := range rt.Partitions {
					sp := kmsg.NewOffsetFetchResponseTopicPartition()
					sp.Partition, sp.Offset, sp.ErrorCode = p, -1, kerr.NotCoordinator.Code
					st.Partitions = append(st.Partitions, sp)
				}
				resp.Topics = append(resp.Topics, st)
			}
			return resp, nil
		}
		return a.groups.OffsetFetch(ctx, req), nil
	}

	// v8+: answer the groups this agent coordinates, NOT_COORDINATOR for
	// the others (the client then sends those to their coordinator).
	owned := *req
	owned.Groups = nil
	var foreign []string
	for _, g := range req.Groups {
		if a.ownsGroup(ctx, g.Group) {
			owned.Groups = append(owned.Groups, g)
		} else {
			foreign = append(foreign, g.Group)
		}
	}
	resp := a.groups.OffsetFetch(ctx, &owned)
	for _, name := range foreign {
		sg := kmsg.NewOffsetFetchResponseGroup()
		sg.Group = name
		sg.ErrorCode = kerr.NotCoordinator.Code
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}
