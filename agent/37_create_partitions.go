package agent

// CreatePartitions: v0-v3.
//
// Behaviour:
//   - Grows a topic to count partitions; count must be larger than the
//     current count (INVALID_PARTITIONS, with Kafka's messages) and at most
//     maxPartitions. A manual assignment must list count - current new
//     partitions (INVALID_REPLICA_ASSIGNMENT otherwise); its broker ids
//     are accepted and ignored, since every agent serves every partition.
//   - A topic named twice is INVALID_REQUEST; validate_only checks and
//     changes nothing.
//
// Authorization (when on): ALTER on each topic, else
// TOPIC_AUTHORIZATION_FAILED.
//
// Differences from Kafka: none intended.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (a *Agent) handleCreatePartitions(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)

	count := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		count[rt.Topic]++
	}
	answered := make(map[string]bool, len(req.Topics))
	for _, rt := range req.Topics {
		if answered[rt.Topic] {
			continue // one answer per name, as Kafka gives
		}
		answered[rt.Topic] = true
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var err error
		switch {
		case count[rt.Topic] > 1:
			err = kafkaErr(kerr.InvalidRequest, "Duplicate topic in request: %s", rt.Topic)
		case !r.authorized(kmsg.ACLOperationAlter, kmsg.ACLResourceTypeTopic, rt.Topic):
			err = kerr.TopicAuthorizationFailed
		default:
			err = a.createPartitions(ctx, rt, req.ValidateOnly)
		}
		if err != nil {
			st.ErrorCode = errorCode(err)
			st.ErrorMessage = kmsg.StringPtr(errMessage(err))
			r.logError(st.ErrorCode, err, "topic", rt.Topic)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (a *Agent) createPartitions(ctx context.Context, rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	t, err := a.store.Topic(ctx, rt.Topic)
	if err != nil {
		return err
	}
	switch {
	case rt.Count < t.Partitions:
		return kafkaErr(kerr.InvalidPartitions, "Topic currently has %d partitions, which is higher than the requested %d.", t.Partitions, rt.Count)
	case rt.Count == t.Partitions:
		return kafkaErr(kerr.InvalidPartitions, "Topic already has %d partitions.", t.Partitions)
	case rt.Count > maxPartitions:
		return kafkaErr(kerr.InvalidPartitions, "Number of partitions %d is above silt's limit of %d.", rt.Count, maxPartitions)
	}
	if rt.Assignment != nil && len(rt.Assignment) != int(rt.Count-t.Partitions) {
		return kafkaErr(kerr.InvalidReplicaAssignment, "Increasing the number of partitions by %d but %d assignments provided.", rt.Count-t.Partitions, len(rt.Assignment))
	}
	for _, as := range rt.Assignment {
		if len(as.Replicas) == 0 {
			return kafkaErr(kerr.InvalidReplicaAssignment, "an assignment has no replicas")
		}
	}
	if validateOnly {
		return nil
	}
	a.topics.invalidate(rt.Topic)
	if err := a.store.CreatePartitions(ctx, rt.Topic, rt.Count); err != nil {
		return fmt.Errorf("create partitions of %q: %w", rt.Topic, err)
	}
	a.topics.invalidate(rt.Topic)
	a.logger.Info("partitions created", "topic", rt.Topic, "partitions", rt.Count)
	return nil
}
