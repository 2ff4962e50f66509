package agent

// CreateTopics: v0-v7.
//
// Behaviour:
//   - num_partitions -1 (v4+) takes Config.DefaultPartitions; otherwise it
//     must be 1..maxPartitions (INVALID_PARTITIONS). A manual replica
//     assignment fixes the partition count (its replica ids are accepted
//     and ignored); combined with num_partitions or replication_factor it
//     is INVALID_REQUEST, as in Kafka.
//   - Configs are validated against package topicconfig: an unknown name,
//     a bad value or a null value answers INVALID_CONFIG with Kafka's
//     message.
//   - A name given twice in one request answers INVALID_REQUEST for it.
//   - validate_only (v1+) checks everything, including that the topic
//     does not exist yet, and creates nothing.
//   - v5+ answers the partition count, replication factor and every
//     topic config with its value and source; v7 the topic id.
//
// Authorization (when on): CREATE on the cluster, or on each topic (else
// TOPIC_AUTHORIZATION_FAILED); v5+ configs are answered only with
// DESCRIBE_CONFIGS on the topic (else config error
// TOPIC_AUTHORIZATION_FAILED).
//
// Differences from Kafka: agents are stateless and every acknowledged
// write is already durable in object storage, so replication factor means
// nothing. Any factor >= 1 (or -1) is accepted, so applications written
// for production clusters (replication.factor=3 for Connect, Streams,
// Schema Registry) work unchanged; the topic reports factor 1, matching
// Metadata's one-replica partitions. Kafka answers
// INVALID_REPLICATION_FACTOR for a factor above its broker count (the
// differential test in tests/e2e keeps this listed). Creation
// is one metastore transaction and complete when answered.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/auth/acl"
	"github.com/siltdata/silt/metastore"
)

// maxPartitions bounds one topic's partition count; larger requests are
// almost certainly mistakes that would fill the metastore with rows.
const maxPartitions = 100_000

func (a *Agent) handleCreateTopics(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)

	count := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		count[rt.Topic]++
	}
	// CREATE on the cluster allows every topic; else CREATE on each.
	createAll := r.authorizedQuiet(kmsg.ACLOperationCreate, kmsg.ACLResourceTypeCluster, acl.ClusterName)
	answered := make(map[string]bool, len(req.Topics))
	for _, rt := range req.Topics {
		if answered[rt.Topic] {
			continue // one answer per name, as Kafka gives
		}
		answered[rt.Topic] = true
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		if count[rt.Topic] > 1 {
			setCreateErr(r, &st, kafkaErr(kerr.InvalidRequest, "Create topics request from client contains multiple instances of topic %s", rt.Topic))
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if !createAll && !r.authorized(kmsg.ACLOperationCreate, kmsg.ACLResourceTypeTopic, rt.Topic) {
			setCreateErr(r, &st, kerr.TopicAuthorizationFailed)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		spec, err := a.createSpec(req.Version, rt)
		if err == nil && req.ValidateOnly {
			err = a.validateNewTopic(ctx, spec)
		} else if err == nil {
			var t metastore.Topic
			if t, err = a.createTopic(ctx, spec); err == nil {
				spec.ID = t.ID
			}
		}
		if err != nil {
			setCreateErr(r, &st, err)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		st.TopicID = spec.ID
		st.NumPartitions, st.ReplicationFactor = spec.Partitions, 1
		if req.Version >= 5 && !r.authorizedQuiet(kmsg.ACLOperationDescribeConfigs, kmsg.ACLResourceTypeTopic, rt.Topic) {
			// Kafka answers the configs only to who may describe them.
			st.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		for _, d := range describeTopicConfigs(spec.Configs, nil, a.cfg.TopicDefaults) {
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			c.Name, c.Value, c.Source = d.name, kmsg.StringPtr(d.value), int8(d.source)
			c.ReadOnly = false
			st.Configs = append(st.Configs, c)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// setCreateErr answers one topic's failure.
func setCreateErr(r *request, st *kmsg.CreateTopicsResponseTopic, err error) {
	st.ErrorCode = errorCode(err)
	if st.ErrorCode == kerr.TopicAlreadyExists.Code {
		err = kafkaErr(kerr.TopicAlreadyExists, "Topic '%s' already exists.", st.Topic)
	}
	st.ErrorMessage = kmsg.StringPtr(errMessage(err))
	r.logError(st.ErrorCode, err, "topic", st.Topic)
}

// createSpec turns one requested topic into a validated spec.
func (a *Agent) createSpec(version int16, rt kmsg.CreateTopicsRequestTopic) (metastore.TopicSpec, error) {
	spec := metastore.TopicSpec{Name: rt.Topic, Partitions: rt.NumPartitions}
	if err := metastore.ValidateTopicName(rt.Topic); err != nil {
		return spec, err
	}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return spec, kafkaErr(kerr.InvalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.")
		}
		seen := make(map[int32]bool, len(rt.ReplicaAssignment))
		for _, ra := range rt.ReplicaAssignment {
			if ra.Partition < 0 || int(ra.Partition) >= len(rt.ReplicaAssignment) || seen[ra.Partition] {
				return spec, kafkaErr(kerr.InvalidReplicaAssignment, "partitions of the replica assignment must be 0..%d, each once", len(rt.ReplicaAssignment)-1)
			}
			seen[ra.Partition] = true
			if len(ra.Replicas) == 0 {
				return spec, kafkaErr(kerr.InvalidReplicaAssignment, "partition %d has no replicas", ra.Partition)
			}
		}
		spec.Partitions = int32(len(rt.ReplicaAssignment))
	} else {
		if rt.ReplicationFactor == 0 || rt.ReplicationFactor < -1 {
			return spec, kafkaErr(kerr.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.")
		}
		if rt.NumPartitions == -1 && version >= 4 {
			spec.Partitions = a.cfg.DefaultPartitions
		}
		if spec.Partitions < 1 {
			return spec, kafkaErr(kerr.InvalidPartitions, "Number of partitions must be larger than 0, or -1 to use the default value.")
		}
	}
	if spec.Partitions > maxPartitions {
		return spec, kafkaErr(kerr.InvalidPartitions, "Number of partitions %d is above silt's limit of %d.", spec.Partitions, maxPartitions)
	}
	for _, c := range rt.Configs {
		if c.Value == nil {
			return spec, kafkaErr(kerr.InvalidConfig, "Null value not supported for topic configs: %s", c.Name)
		}
		if spec.Configs == nil {
			spec.Configs = make(map[string]string)
		}
		spec.Configs[c.Name] = *c.Value
	}
	if err := validateTopicConfigs(spec.Configs); err != nil {
		return spec, err
	}
	return spec, nil
}

// validateNewTopic is validate_only: the spec is valid, the topic must not
// exist yet.
func (a *Agent) validateNewTopic(ctx context.Context, spec metastore.TopicSpec) error {
	_, err := a.store.Topic(ctx, spec.Name)
	switch {
	case err == nil:
		return metastore.ErrTopicExists
	case errors.Is(err, metastore.ErrUnknownTopic):
		return nil
	default:
		return err
	}
}
