package agent

// OffsetForLeaderEpoch: v0-v4.
//
// Behaviour: silt partitions have one leader epoch, 0, for their whole
// life (no leader elections: every agent serves every partition from the
// same log). Epoch 0 answers end offset = the high watermark; a requested
// epoch above 0 or below 0 answers epoch -1 and end offset -1 (unknown
// epoch, as Kafka answers for an epoch newer than its own); a current
// leader epoch (v2+) above 0 answers UNKNOWN_LEADER_EPOCH. Unknown topic
// or partition: UNKNOWN_TOPIC_OR_PARTITION.
//
// Authorization (when on): DESCRIBE on each topic, else
// TOPIC_AUTHORIZATION_FAILED for its partitions.
//
// Differences from Kafka: none for consumers; follower requests (replica
// id >= 0, v3+) are answered the same way, since there are no followers.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleOffsetForLeaderEpoch(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		var (
			t    metastore.Topic
			terr error = kerr.TopicAuthorizationFailed
		)
		if r.authorized(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, rt.Topic) {
			t, terr = a.topicByName(ctx, rt.Topic)
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			var err error
			switch {
			case terr != nil:
				err = terr
			case rp.Partition < 0 || rp.Partition >= t.Partitions:
				err = metastore.ErrUnknownTopicOrPartition
			case req.Version >= 2 && rp.CurrentLeaderEpoch > 0:
				err = kerr.UnknownLeaderEpoch
			case rp.LeaderEpoch == 0:
				var o metastore.PartitionOffsets
				if o, err = a.store.Offsets(ctx, metastore.TopicPartition{Topic: t.ID, Partition: rp.Partition}); err == nil {
					sp.LeaderEpoch, sp.EndOffset = 0, o.HighWatermark
				}
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
				if sp.ErrorCode != kerr.UnknownTopicOrPartition.Code && sp.ErrorCode != kerr.TopicAuthorizationFailed.Code {
					r.logError(sp.ErrorCode, err, "topic", rt.Topic, "partition", rp.Partition)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
