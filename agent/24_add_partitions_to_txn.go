package agent

// AddPartitionsToTxn: v0-v5.
//
// Behaviour:
//   - v0-v3 (clients): the partitions join the producer's transaction,
//     which becomes Ongoing and starts its timeout (agent/txn; one
//     metastore transaction, none when every partition is in it already).
//     The agent must coordinate the transactional id (NOT_COORDINATOR).
//   - v4+ (KIP-890, what Kafka's brokers send their coordinators): several
//     transactions per request, and verify_only, which adds nothing and
//     answers TRANSACTION_ABORTABLE for the partitions the ongoing
//     transaction does not hold. A transaction this agent does not
//     coordinate answers NOT_COORDINATOR for its partitions.
//   - Errors are per partition: an unknown topic or partition answers
//     UNKNOWN_TOPIC_OR_PARTITION and the transaction's other partitions
//     OPERATION_NOT_ATTEMPTED (nothing is added); a producer id not the
//     transactional id's INVALID_PRODUCER_ID_MAPPING; another epoch
//     PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v2); an empty
//     transactional id INVALID_REQUEST; a transaction that would hold more
//     than its limit of partitions UNKNOWN_SERVER_ERROR (as Kafka answers
//     a transaction whose metadata outgrows its log).
//
// Authorization (when on): WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition) and on each
// topic (TOPIC_AUTHORIZATION_FAILED; the other partitions then
// OPERATION_NOT_ATTEMPTED); v4+ needs CLUSTER_ACTION on the cluster
// (CLUSTER_AUTHORIZATION_FAILED for the whole request), as in Kafka.
//
// Differences from Kafka: CONCURRENT_TRANSACTIONS is never answered (a
// transaction ends in one metastore transaction: there is no pending end).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleAddPartitionsToTxn(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version < 4 {
		topics := make([]txnTopic, len(req.Topics))
		for i, t := range req.Topics {
			topics[i] = txnTopic{t.Topic, t.Partitions}
		}
		codes := a.addPartitions(ctx, r, req.TransactionalID, req.ProducerID, req.ProducerEpoch, topics, false)
		for i, t := range topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.name
			for j, p := range t.parts {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	if !r.authorizedCluster(kmsg.ACLOperationClusterAction) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	for _, tx := range req.Transactions {
		topics := make([]txnTopic, len(tx.Topics))
		for i, t := range tx.Topics {
			topics[i] = txnTopic{t.Topic, t.Partitions}
		}
		codes := a.addPartitions(ctx, r, tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, topics, tx.VerifyOnly)
		rtx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rtx.TransactionalID = tx.TransactionalID
		for i, t := range topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			rt.Topic = t.name
			for j, p := range t.parts {
				rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			rtx.Topics = append(rtx.Topics, rt)
		}
		resp.Transactions = append(resp.Transactions, rtx)
	}
	return resp, nil
}

// txnTopic is one topic's partitions of an AddPartitionsToTxn request.
type txnTopic struct {
	name  string
	parts []int32
}

// addPartitions adds (or verifies) one transaction's partitions and
// returns each partition's error code, same shape as topics.
func (a *Agent) addPartitions(ctx context.Context, r *request, id string, pid int64, epoch int16, topics []txnTopic, verifyOnly bool) [][]int16 {
	codes := make([][]int16, len(topics))
	all := func(code int16) [][]int16 {
		for i, t := range topics {
			codes[i] = make([]int16, len(t.parts))
			for j := range codes[i] {
				codes[i][j] = code
			}
		}
		return codes
	}
	switch {
	case id == "":
		r.logError(kerr.InvalidRequest.Code, nil, "transactional_id", id)
		return all(kerr.InvalidRequest.Code)
	case !r.authorized(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, id):
		return all(kerr.TransactionalIDAuthorizationFailed.Code)
	}
	// Topics first: any partition that cannot be added fails the request,
	// the others are not attempted.
	all(0)
	var (
		tps    []metastore.TopicPartition
		failed bool
	)
	for i, t := range topics {
		if !r.authorized(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, t.name) {
			for j := range codes[i] {
				codes[i][j] = kerr.TopicAuthorizationFailed.Code
			}
			failed = true
			continue
		}
		top, err := a.topicByName(ctx, t.name)
		for j, p := range t.parts {
			switch {
			case err != nil:
				codes[i][j] = errorCode(err)
			case p < 0 || p >= top.Partitions:
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			default:
				tps = append(tps, metastore.TopicPartition{Topic: top.ID, Partition: p})
				continue
			}
			failed = true
		}
	}
	if failed {
		for i := range codes {
			for j := range codes[i] {
				if codes[i][j] == 0 {
					codes[i][j] = kerr.OperationNotAttempted.Code
				}
			}
		}
		return codes
	}
	notIn, err := a.txns.AddPartitions(ctx, r.lease(), metastore.TxnProducer{ID: id, ProducerID: pid, Epoch: epoch}, tps, verifyOnly)
	if err != nil {
		code := txnErrorCode(err, fencedCode(r.version, 2))
		r.logError(code, err, "transactional_id", id, "producer_id", pid, "producer_epoch", epoch)
		return all(code)
	}
	if len(notIn) > 0 {
		missing := make(map[metastore.TopicPartition]bool, len(notIn))
		for _, tp := range notIn {
			missing[tp] = true
		}
		k := 0
		for i, t := range topics {
			for j := range t.parts {
				if missing[tps[k]] {
					codes[i][j] = kerr.TransactionAbortable.Code
				}
				k++
			}
		}
	}
	return codes
}
