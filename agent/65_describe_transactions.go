package agent

// DescribeTransactions: v0.
//
// Behaviour: for each transactional id this agent coordinates, its state
// (Empty, Ongoing, CompleteCommit, CompleteAbort), producer id and epoch,
// timeout, when the ongoing transaction started (-1 when none) and its
// partitions. Others answer NOT_COORDINATOR (the admin client asks each
// id's coordinator), unknown ids TRANSACTIONAL_ID_NOT_FOUND, an empty id
// INVALID_REQUEST.
//
// Authorization (when on): DESCRIBE on each transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); topics the principal may not
// DESCRIBE are left out of the partitions, as in Kafka.
//
// Differences from Kafka: the states PrepareCommit, PrepareAbort and
// PrepareEpochFence never occur (a transaction ends in one metastore
// transaction).

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleDescribeTransactions(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		// An id in error has Kafka's zero fields.
		st.ProducerID, st.ProducerEpoch, st.StartTimestamp = 0, 0, 0
		switch {
		case !r.authorized(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, id):
			st.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		case id == "":
			st.ErrorCode = kerr.InvalidRequest.Code
		default:
			t, found, err := a.txns.Describe(ctx, id)
			switch {
			case err != nil:
				st.ErrorCode = txnErrorCode(err, kerr.ProducerFenced.Code)
			case !found:
				st.ErrorCode = kerr.TransactionalIDNotFound.Code
			default:
				a.describeTxn(ctx, r, t, &st)
			}
		}
		if st.ErrorCode != 0 && st.ErrorCode != kerr.NotCoordinator.Code {
			r.logError(st.ErrorCode, nil, "transactional_id", id)
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}

// describeTxn fills st from t; partitions of topics the principal may not
// describe (or that are gone) are left out.
func (a *Agent) describeTxn(ctx context.Context, r *request, t metastore.Txn, st *kmsg.DescribeTransactionsResponseTransactionState) {
	st.State, st.TimeoutMillis = string(t.State), t.TimeoutMs
	st.ProducerID, st.ProducerEpoch, st.StartTimestamp = t.ProducerID, t.Epoch, -1
	if !t.Started.IsZero() {
		st.StartTimestamp = t.Started.UnixMilli()
	}
	byTopic := map[string][]int32{}
	for _, tp := range t.Partitions {
		top, err := a.topicByID(ctx, tp.Topic)
		if err != nil || !r.authorizedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, top.Name) {
			continue
		}
		byTopic[top.Name] = append(byTopic[top.Name], tp.Partition)
	}
	// A group's offsets are in the transaction as Kafka's partition of
	// __consumer_offsets for the group (silt's stays empty: offsets live
	// in the metastore), which is what Kafka lists.
	for _, g := range t.Groups {
		p := offsetsPartitionFor(g)
		if !slices.Contains(byTopic[metastore.ConsumerOffsetsTopic], p) {
			byTopic[metastore.ConsumerOffsetsTopic] = append(byTopic[metastore.ConsumerOffsetsTopic], p)
		}
	}
	for name, parts := range byTopic {
		rt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
		slices.Sort(parts)
		rt.Topic, rt.Partitions = name, parts
		st.Topics = append(st.Topics, rt)
	}
	slices.SortFunc(st.Topics, func(x, y kmsg.DescribeTransactionsResponseTransactionStateTopic) int {
		return strings.Compare(x.Topic, y.Topic)
	})
}
