package agent

// DescribeProducers: v0.
//
// Behaviour: for each partition, the producers with idempotence state
// there (metastore producer state): producer id and epoch, last sequence
// (-1 when a transaction marker reset it), when it last wrote, and the
// first offset of its open transaction on the partition (-1 when none).
// Unknown topics or partitions answer UNKNOWN_TOPIC_OR_PARTITION.
//
// Authorization (when on): READ on each topic (TOPIC_AUTHORIZATION_FAILED
// for its partitions), as Kafka checks.
//
// Differences from Kafka: any agent answers for any partition (Kafka's
// partition leader answers; others NOT_LEADER_OR_FOLLOWER); the coordinator
// epoch is -1 (silt's markers carry one, its producer state does not).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleDescribeProducers(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		authorized := r.authorized(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, rt.Topic)
		t, terr := a.topicByName(ctx, rt.Topic)
		for _, p := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = p
			switch {
			case !authorized:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case terr != nil:
				sp.ErrorCode = errorCode(terr)
			case p < 0 || p >= t.Partitions:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				producers, err := a.store.Producers(ctx, metastore.TopicPartition{Topic: t.ID, Partition: p})
				if err != nil {
					sp.ErrorCode = errorCode(err)
					break
				}
				for _, pi := range producers {
					ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
					ap.ProducerID, ap.ProducerEpoch, ap.LastSequence = pi.ProducerID, int32(pi.Epoch), pi.LastSequence
					ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = pi.LastTimestamp, -1, pi.TxnFirstOffset
					sp.ActiveProducers = append(sp.ActiveProducers, ap)
				}
			}
			if sp.ErrorCode != 0 && sp.ErrorCode != kerr.UnknownTopicOrPartition.Code {
				r.logError(sp.ErrorCode, terr, "topic", rt.Topic, "partition", p)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
