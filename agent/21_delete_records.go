package agent

// DeleteRecords: v0-v2.
//
// Behaviour, per partition:
//   - Moves the partition's log start offset up to the given offset (-1:
//     the high watermark) and answers the new low watermark. An offset at
//     or below the current start changes nothing and answers the start.
//     Consumers below the new start get OFFSET_OUT_OF_RANGE and reset
//     (auto.offset.reset); the first fetch from the new start returns the
//     batch containing it and the client skips the records before it.
//   - The data below the start is reclaimed by the storage janitor
//     (index rows at its next pass, objects after its grace period).
//   - Offset beyond the high watermark, or negative other than -1:
//     OFFSET_OUT_OF_RANGE. Unknown topic or partition:
//     UNKNOWN_TOPIC_OR_PARTITION. A topic whose cleanup.policy does not
//     include delete: POLICY_VIOLATION, as Kafka refuses to delete records
//     of a compacted-only topic. Errors answer low watermark -1.
//   - The change is in the metastore when answered, on every agent; this
//     agent's cached view of the partition is dropped at once, the others'
//     within their index cache age (1 s). The timeout is not needed: the
//     answer never waits for replicas.
//   - Authorization (when on): DELETE on the topic, else
//     TOPIC_AUTHORIZATION_FAILED for its partitions.
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleDeleteRecords(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		var (
			t    metastore.Topic
			terr error = kerr.TopicAuthorizationFailed
		)
		if r.authorized(kmsg.ACLOperationDelete, kmsg.ACLResourceTypeTopic, rt.Topic) {
			t, terr = a.topicByName(ctx, rt.Topic)
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			err := terr
			if err == nil {
				err = a.deleteRecords(ctx, t, rp.Partition, rp.Offset, &sp)
			}
			if err != nil {
				sp.ErrorCode, sp.LowWatermark = errorCode(err), -1
				r.logError(sp.ErrorCode, err, "topic", rt.Topic, "partition", rp.Partition, "offset", rp.Offset)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (a *Agent) deleteRecords(ctx context.Context, t metastore.Topic, partition int32, offset int64, sp *kmsg.DeleteRecordsResponseTopicPartition) error {
	if partition < 0 || partition >= t.Partitions {
		return metastore.ErrUnknownTopicOrPartition
	}
	if !a.topicConfig(t.Configs).Delete {
		return kafkaErr(kerr.PolicyViolation, "Records of partition %s-%d can not be deleted due to the configured policy", t.Name, partition)
	}
	tp := metastore.TopicPartition{Topic: t.ID, Partition: partition}
	o, err := a.store.DeleteRecords(ctx, tp, offset)
	if err != nil {
		return err
	}
	a.reader.Forget(tp)
	sp.LowWatermark = o.LogStartOffset
	return nil
}
