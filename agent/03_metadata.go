package agent

// Metadata: v0-v13.
//
// Behaviour:
//   - Brokers are the live agents (cached; re-read when older than
//     onDemandRefresh, so a client sent here by an agent that is leaving
//     is not sent back to it), and only those whose lease this agent can
//     vouch for: an agent is never named past the end of its lease as
//     the store last reported it, however stale the cached list (the
//     store unreachable, this agent stopped for a while). The controller
//     id is the live agent with the lowest node id.
//   - Topics are read from the metastore, not the agents' topic cache: a
//     client keeps a Metadata answer for minutes (metadata.max.age.ms),
//     so partitions another agent just added must be in it (a consumer
//     group's leader assigning from a stale count leaves the new
//     partitions unread until its next refresh).
//   - Every agent serves every partition. The "leader" of a partition is
//     picked by leaderAmong (rendezvous hashing over the live agents, within
//     the client's zone when its client id carries silt_az=<zone>), so one
//     client's traffic for a partition goes to one agent. Replicas and ISR
//     are [leader], leader epoch 0, no offline replicas. When this agent
//     can vouch for no agent's lease (it cannot reach the metastore), it
//     lists itself as the only broker and every partition with leader -1
//     and LEADER_NOT_AVAILABLE: clients retry, on other agents too.
//   - No topics listed (v0: an empty array; v1+: null) means all topics;
//     v1+ empty array means none. v12+ topics may be named by id; an
//     unknown id answers UNKNOWN_TOPIC_ID. v10 and v11 carry the id field
//     but, as in Kafka, a topic named by id answers INVALID_REQUEST.
//   - Unknown names are created when auto.create.topics.enable
//     (Config.AutoCreateTopics) and the request allow it (v4+ flag; always
//     for v0-v3), with Config.DefaultPartitions; invalid names answer
//     INVALID_TOPIC_EXCEPTION; otherwise UNKNOWN_TOPIC_OR_PARTITION.
//   - Authorization (when on), as Kafka: listing all topics leaves out
//     those the principal may not DESCRIBE; a named topic it may not
//     DESCRIBE answers TOPIC_AUTHORIZATION_FAILED (named by id: with the
//     id and no name); auto-creation needs
//     CREATE on the cluster or the topic, else TOPIC_AUTHORIZATION_FAILED.
//     Authorized operations (v8+) come from the ACLs (everything without
//     an authorizer, like Kafka without one).
//   - Internal topics (__consumer_offsets, created by the first group
//     FindCoordinator) are flagged IsInternal, by name as Kafka decides.
//
// Differences from Kafka: Kafka answers the Metadata request that
// auto-creates a topic with an error (4.4: UNKNOWN_TOPIC_OR_PARTITION;
// older brokers LEADER_NOT_AVAILABLE) because its creation completes
// asynchronously; silt's creation is one metastore transaction, so the
// new topic is answered ready to use, saving the client a metadata round
// trip (the differential test in tests/e2e keeps this listed). A
// metastore failure answers the affected topics with the retriable
// LEADER_NOT_AVAILABLE; when the topic list itself cannot be read the
// connection is closed (the client retries on a new one), rather than
// answering a misleading empty list.

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/auth/acl"
	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleMetadata(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)

	a.members.refreshIfOlder(ctx, onDemandRefresh)
	live, vouched := a.brokersFor(r.conn.l.cfg.Name)
	leaders := live // the candidate leaders: none unless vouched for
	if !vouched {
		leaders = nil
	}
	for _, ag := range live {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = ag.NodeID, ag.Host, ag.Port
		if ag.Zone != "" {
			b.Rack = kmsg.StringPtr(ag.Zone)
		}
		resp.Brokers = append(resp.Brokers, b)
	}
	resp.ClusterID = kmsg.StringPtr(a.cfg.ClusterID)
	resp.ControllerID = live[0].NodeID
	if req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = r.authorizedOps(kmsg.ACLResourceTypeCluster, acl.ClusterName, clusterOps)
	}

	zone := clientZone(r.clientID)
	all := req.Topics == nil || req.Version == 0 && len(req.Topics) == 0
	if all {
		topics, err := a.store.Topics(ctx)
		if err != nil {
			r.logError(kerr.LeaderNotAvailable.Code, err)
			return nil, fmt.Errorf("list topics: %w", err)
		}
		for _, t := range topics {
			if !r.authorizedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t.Name) {
				continue
			}
			resp.Topics = append(resp.Topics, a.metadataTopic(r, leaders, t, zone, req.IncludeTopicAuthorizedOperations))
		}
		return resp, nil
	}

	allowAuto := a.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	seenName := make(map[string]bool, len(req.Topics))
	seenID := make(map[metastore.TopicID]bool)
	for _, rt := range req.Topics {
		if rt.Topic == nil { // v10+: by id
			if req.Version < 12 {
				// Kafka takes topic ids in Metadata from v12 on; v10 and
				// v11 carry the field but answer INVALID_REQUEST.
				st := kmsg.NewMetadataResponseTopic()
				st.TopicID = rt.TopicID
				st.ErrorCode = kerr.InvalidRequest.Code
				r.logError(st.ErrorCode, nil, "reason", "topic ids before Metadata v12")
				resp.Topics = append(resp.Topics, st)
				continue
			}
			id := metastore.TopicID(rt.TopicID)
			if seenID[id] {
				continue
			}
			seenID[id] = true
			t, err := a.freshTopicByID(ctx, id)
			if err == nil && !r.authorized(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t.Name) {
				// Kafka: topic ids are not secret, the answer says so.
				err = kerr.TopicAuthorizationFailed
			}
			if err != nil {
				st := kmsg.NewMetadataResponseTopic()
				st.TopicID = rt.TopicID
				st.ErrorCode = metadataErrorCode(err, kerr.UnknownTopicID.Code)
				r.logError(st.ErrorCode, err)
				resp.Topics = append(resp.Topics, st)
				continue
			}
			seenName[t.Name] = true
			resp.Topics = append(resp.Topics, a.metadataTopic(r, leaders, t, zone, req.IncludeTopicAuthorizedOperations))
			continue
		}
		name := *rt.Topic
		if seenName[name] {
			continue
		}
		seenName[name] = true
		var (
			t   metastore.Topic
			err error
		)
		if !r.authorized(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, name) {
			err = kerr.TopicAuthorizationFailed
		} else {
			t, err = a.freshTopicByName(ctx, name)
		}
		if errors.Is(err, metastore.ErrUnknownTopic) && allowAuto {
			if r.authorizedQuiet(kmsg.ACLOperationCreate, kmsg.ACLResourceTypeCluster, acl.ClusterName) ||
				r.authorized(kmsg.ACLOperationCreate, kmsg.ACLResourceTypeTopic, name) {
				t, err = a.autoCreateTopic(ctx, name)
			} else {
				err = kerr.TopicAuthorizationFailed
			}
		}
		if err != nil {
			st := kmsg.NewMetadataResponseTopic()
			st.Topic = kmsg.StringPtr(name)
			st.ErrorCode = metadataErrorCode(err, kerr.UnknownTopicOrPartition.Code)
			if st.ErrorCode != kerr.UnknownTopicOrPartition.Code {
				r.logError(st.ErrorCode, err, "topic", name)
			}
			resp.Topics = append(resp.Topics, st)
			continue
		}
		resp.Topics = append(resp.Topics, a.metadataTopic(r, leaders, t, zone, req.IncludeTopicAuthorizedOperations))
	}
	return resp, nil
}

// metadataErrorCode maps a topic lookup error: unknown answers
// unknownCode, a bad name INVALID_TOPIC_EXCEPTION, anything else (the
// metastore is unavailable) LEADER_NOT_AVAILABLE, which every client
// retries after refreshing metadata.
func metadataErrorCode(err error, unknownCode int16) int16 {
	switch code := errorCode(err); code {
	case kerr.UnknownTopicOrPartition.Code:
		return unknownCode
	case kerr.TopicAuthorizationFailed.Code, kerr.UnknownTopicID.Code,
		kerr.InvalidTopicException.Code, kerr.InvalidConfig.Code, kerr.InvalidPartitions.Code, kerr.RequestTimedOut.Code:
		return code
	default:
		return kerr.LeaderNotAvailable.Code
	}
}

// metadataTopic describes one topic with its partitions' leaders, picked
// among brokers (none: every partition LEADER_NOT_AVAILABLE).
func (a *Agent) metadataTopic(r *request, brokers []metastore.Agent, t metastore.Topic, zone string, withOps bool) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	st.Topic = kmsg.StringPtr(t.Name)
	st.TopicID = t.ID
	st.IsInternal = metastore.IsInternalTopic(t.Name)
	if withOps {
		st.AuthorizedOperations = r.authorizedOps(kmsg.ACLResourceTypeTopic, t.Name, topicOps)
	}
	st.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, t.Partitions)
	for p := range t.Partitions {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition = p
		sp.LeaderEpoch = 0
		sp.OfflineReplicas = []int32{}
		leader, ok := leaderAmong(brokers, t.ID, p, zone)
		if !ok {
			// No agent's lease can be vouched for: name none.
			sp.ErrorCode = kerr.LeaderNotAvailable.Code
			sp.Leader = -1
			sp.Replicas, sp.ISR = []int32{}, []int32{}
			st.Partitions = append(st.Partitions, sp)
			continue
		}
		sp.Leader = leader.NodeID
		sp.Replicas = []int32{leader.NodeID}
		sp.ISR = []int32{leader.NodeID}
		st.Partitions = append(st.Partitions, sp)
	}
	return st
}
