package group

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

// TxnOffsetCommit answers a TxnOffsetCommit request (v0-v6): offsets a
// transaction commits for the group, staged in the metastore until the
// transaction ends (metastore.Transactions.StageTxnOffsets, fenced by the
// group's claim and, for a member's commit, its generation). The member is
// validated as Kafka's validateOffsetCommit does for transactional
// commits: a request naming a generation, member or instance must be the
// group's current member at that generation (UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID, ILLEGAL_GENERATION); one naming none (v0-v2
// clients) is accepted whatever the group's state. v5+ (KIP-890) adds the
// group to the transaction when it is not in it; before, a group the
// transaction did not add answers TRANSACTION_ABORTABLE (v4) or
// INVALID_TXN_STATE. A stale producer epoch answers INVALID_PRODUCER_EPOCH,
// a producer id not the transactional id's INVALID_PRODUCER_ID_MAPPING.
// Errors are per partition; unknown topics or partitions answer
// UNKNOWN_TOPIC_OR_PARTITION and the others are still staged. maxOffsets
// bounds the offsets one transaction stages (UNKNOWN_SERVER_ERROR beyond).
func (c *Coordinator) TxnOffsetCommit(ctx context.Context, req *kmsg.TxnOffsetCommitRequest, maxOffsets int) *kmsg.TxnOffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	generation, memberID, instanceID := int32(-1), "", (*string)(nil)
	if req.Version >= 3 {
		generation, memberID, instanceID = req.Generation, req.MemberID, req.InstanceID
	}
	type ref struct{ t, p int }
	var (
		valid   []ref
		offsets []metastore.CommittedOffset
		tc      = newTopicCache(c.store)
		now     = time.Now()
	)
	for _, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		l := tc.get(ctx, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = l.partition(rp.Partition)
			meta := ""
			if rp.Metadata != nil {
				meta = *rp.Metadata
			}
			if sp.ErrorCode == 0 && len(meta) > c.cfg.MaxMetadataBytes {
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			}
			if sp.ErrorCode == 0 {
				valid = append(valid, ref{len(resp.Topics), len(st.Partitions)})
				epoch := rp.LeaderEpoch
				if req.Version < 2 {
					epoch = -1
				}
				offsets = append(offsets, metastore.CommittedOffset{
					TopicPartition: metastore.TopicPartition{Topic: l.t.ID, Partition: rp.Partition},
					Offset:         rp.Offset, LeaderEpoch: epoch, Metadata: meta, CommitTime: now,
				})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(valid) == 0 {
		return resp
	}
	stage := metastore.TxnOffsetsRequest{
		TxnProducer: metastore.TxnProducer{ID: req.TransactionalID, ProducerID: req.ProducerID, Epoch: req.ProducerEpoch},
		Group:       req.Group, Offsets: offsets, AddGroup: req.Version >= 5, MaxOffsets: maxOffsets,
	}
	code := int16(0)
	err := c.do(ctx, req.Group, func(g *group) {
		code = g.txnCommit(generation, memberID, instanceID, stage, req.Version)
	})
	if err != nil {
		code = errorCode(err)
	}
	for _, r := range valid {
		resp.Topics[r.t].Partitions[r.p].ErrorCode = code
	}
	return resp
}

// txnCommit validates a transactional commit against the group and
// stages its offsets.
func (g *group) txnCommit(generation int32, memberID string, instanceID *string, stage metastore.TxnOffsetsRequest, version int16) int16 {
	if err := g.ensureLoaded(); err != nil {
		return errorCode(err)
	}
	stage.Generation = -1
	switch g.kind {
	case kindShare:
		return kerr.GroupIDNotFound.Code
	case kindConsumer:
		// Kafka's ConsumerGroup.validateOffsetCommit for a transactional
		// commit: a member at its current epoch (no OffsetCommit version
		// rule applies); the claim fences the write, the member epoch is
		// not a stored generation.
		if code := g.cg.validateCommit(9, generation, memberID); code != 0 {
			return code
		}
	default:
		if code := g.validateClassicTxn(generation, memberID, instanceID, &stage); code != 0 {
			return code
		}
	}
	return g.stageTxn(stage, version)
}

// validateClassicTxn validates a transactional commit to a classic group
// (Kafka's ClassicGroup.validateOffsetCommit) and sets the generation the
// metastore checks.
func (g *group) validateClassicTxn(generation int32, memberID string, instanceID *string, stage *metastore.TxnOffsetsRequest) int16 {
	if generation >= 0 || memberID != "" || instanceID != nil {
		if !g.exists && generation >= 0 {
			return kerr.IllegalGeneration.Code
		}
		if code := g.validateMember(memberID, instanceID); code != 0 {
			return code
		}
		if generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
		stage.Generation = generation
	}
	return 0
}

// stageTxn stages a validated transactional commit's offsets under the
// group's claim.
func (g *group) stageTxn(stage metastore.TxnOffsetsRequest, version int16) int16 {
	if !g.exists {
		// A group comes into being with its first commit, as Kafka's
		// coordinator creates it for a transactional one.
		if err := g.persist(); err != nil {
			return errorCode(err)
		}
	}
	stage.GroupEpoch = g.epoch
	ctx, cancel := g.c.storeCtx()
	defer cancel()
	err := g.c.store.StageTxnOffsets(ctx, stage)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, metastore.ErrProducerFenced):
		// What Kafka's offsets partition answers a stale epoch.
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, metastore.ErrInvalidProducerIDMapping):
		return kerr.InvalidProducerIDMapping.Code
	case errors.Is(err, metastore.ErrPartitionNotInTxn):
		// KIP-890's verification: abortable for clients that know it.
		if version >= 4 {
			return kerr.TransactionAbortable.Code
		}
		return kerr.InvalidTxnState.Code
	case errors.Is(err, metastore.ErrTxnTooLarge):
		return kerr.UnknownServerError.Code
	}
	g.storeFailed("transactional offset commit failed", err)
	return errorCode(err)
}

// unstable returns which of the group's partitions (all of them with tps
// nil) have offsets staged by an open transaction: OffsetFetch with
// require_stable answers UNSTABLE_OFFSET_COMMIT for them (KIP-447).
func (c *Coordinator) unstable(ctx context.Context, group string, tps []metastore.TopicPartition) (map[metastore.TopicPartition]bool, error) {
	pending, err := c.store.PendingTxnOffsets(ctx, group, tps)
	if err != nil || len(pending) == 0 {
		return nil, err
	}
	out := make(map[metastore.TopicPartition]bool, len(pending))
	for _, tp := range pending {
		out[tp] = true
	}
	return out, nil
}
