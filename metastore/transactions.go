package metastore

import (
	"context"
	"errors"
	"math"
	"time"
)

// Transactions is the transaction coordinator's view of the metastore
// (Kafka's transactions, agent/txn). A transactional id's state, the
// partitions and groups of its ongoing transaction, and the offsets it
// staged live here, and ending a transaction writes its markers into the
// partitions' batch index and changes its state in one metastore
// transaction: see agent/txn's package doc for the design.
//
// Coordinator writes name a claim (ClaimTransaction) and fail with
// ErrTxnCoordinatorFenced once a later claim replaced it; writes that do
// not come from the coordinator (a produce's implicit add, staged
// offsets) pass claim 0 and are checked against the producer id and epoch
// only. Every write checks the producer id (ErrInvalidProducerIDMapping)
// and epoch (ErrProducerFenced) against the stored transactional id, in
// its own transaction.
type Transactions interface {
	// ClaimTransaction makes the caller the coordinator of a
	// transactional id: it increments the id's coordinator epoch (1 for an
	// id never claimed) and returns it. Writes naming an earlier claim
	// fail from then on.
	ClaimTransaction(ctx context.Context, id string) (claim int64, err error)

	// InitProducer is InitProducerId with a transactional id: it creates
	// the id with a fresh producer id, or bumps its epoch (a new producer
	// id when the epoch is exhausted), fencing every earlier instance. A
	// transaction left open by an earlier instance is aborted first, in
	// the same transaction (its markers are written). Errors:
	// ErrTxnCoordinatorFenced, ErrProducerFenced (a KIP-360 request whose
	// producer id or epoch is no longer the id's).
	InitProducer(ctx context.Context, req InitProducerRequest) (InitProducerResult, error)

	// AddToTransaction adds partitions and groups to the producer's
	// transaction, which becomes Ongoing (starting its timeout) if it was
	// not. With VerifyOnly nothing is written and NotInTxn lists the
	// partitions the ongoing transaction does not hold. Errors:
	// ErrTxnCoordinatorFenced, ErrInvalidProducerIDMapping,
	// ErrProducerFenced, ErrUnknownTopicOrPartition (nothing added),
	// ErrTxnTooLarge (more than MaxPartitions partitions and groups).
	AddToTransaction(ctx context.Context, req AddToTxnRequest) (AddToTxnResult, error)

	// EndTransaction commits or aborts the producer's transaction (EndTxn,
	// or the coordinator's abort of an expired one): one transaction that
	// decides by PlanEnd and, when the transaction ends, writes a marker
	// into each of its partitions, ends the producer's open transaction
	// there, records an abort in the aborted list of the partitions the
	// transaction wrote to, copies (commit) or drops its staged offsets,
	// and moves the state on. Errors: ErrTxnCoordinatorFenced,
	// ErrInvalidProducerIDMapping, ErrProducerFenced, ErrInvalidTxnState.
	EndTransaction(ctx context.Context, req EndTxnRequest) (EndTxnResult, error)

	// StageTxnOffsets stages offsets a transaction commits for a group
	// (TxnOffsetCommit, which the group's coordinator answers): they
	// become committed offsets when the transaction commits, and are
	// dropped when it aborts. Errors: ErrGroupFenced,
	// ErrIllegalGeneration, ErrInvalidProducerIDMapping,
	// ErrProducerFenced, ErrPartitionNotInTxn (the group is not in the
	// ongoing transaction, and AddGroup is not set), ErrTxnTooLarge.
	StageTxnOffsets(ctx context.Context, req TxnOffsetsRequest) error

	// PendingTxnOffsets returns which of tps (all of the group's when tps
	// is nil) have offsets staged by an open transaction: OffsetFetch's
	// require_stable answers UNSTABLE_OFFSET_COMMIT for them.
	PendingTxnOffsets(ctx context.Context, group string, tps []TopicPartition) ([]TopicPartition, error)

	// Transaction describes one transactional id, with its ongoing
	// transaction's partitions and groups; found is false for an unknown
	// id.
	Transaction(ctx context.Context, id string) (t Txn, found bool, err error)
	// ListTransactions lists every transactional id's state (without
	// partitions and groups), by id.
	ListTransactions(ctx context.Context) ([]Txn, error)
	// ExpiredTransactions lists up to limit transactions Ongoing for
	// longer than their timeout, by the store's clock.
	ExpiredTransactions(ctx context.Context, limit int) ([]Txn, error)
	// ExpireTransactionalIDs forgets up to limit transactional ids with no
	// ongoing transaction and no change for olderThan
	// (transactional.id.expiration.ms), and returns how many it forgot.
	ExpireTransactionalIDs(ctx context.Context, olderThan time.Duration, limit int) (int, error)

	// AbortedTransactions returns the aborted transactions of tp whose
	// marker is at or after from and which began before upTo, in marker
	// order: what a read_committed Fetch of [from, upTo) answers. It stops
	// at the first whose last stable offset reached upTo (no later one can
	// begin before it), so its cost follows its result.
	AbortedTransactions(ctx context.Context, tp TopicPartition, from, upTo int64) ([]AbortedTxn, error)
	// Producers describes tp's producers with state (DescribeProducers).
	Producers(ctx context.Context, tp TopicPartition) ([]ProducerInfo, error)
}

// TxnState is a transactional id's state, named as Kafka names it in
// DescribeTransactions and ListTransactions. silt has no PrepareCommit,
// PrepareAbort or PrepareEpochFence states: a transaction ends in one
// metastore transaction.
type TxnState string

// Transaction states.
const (
	TxnEmpty          TxnState = "Empty"
	TxnOngoing        TxnState = "Ongoing"
	TxnCompleteCommit TxnState = "CompleteCommit"
	TxnCompleteAbort  TxnState = "CompleteAbort"
)

// Txn is a transactional id's state.
type Txn struct {
	ID string
	// ProducerID and Epoch are the current producer's; PrevProducerID is
	// the id before the last rotation (-1), LastEpoch the epoch before the
	// last bump (-1): Kafka's retry rules look at both.
	ProducerID     int64
	PrevProducerID int64
	Epoch          int16
	LastEpoch      int16
	State          TxnState
	TimeoutMs      int32
	// Started is when the ongoing transaction began (zero otherwise);
	// Updated when the state last changed.
	Started time.Time
	Updated time.Time
	// Partitions and Groups are the ongoing transaction's, where the call
	// fills them (Transaction).
	Partitions []TopicPartition
	Groups     []string
}

// TxnProducer names a transactional id and the producer writing to it.
type TxnProducer struct {
	ID         string
	ProducerID int64
	Epoch      int16
}

// InitProducerRequest is InitProducer's input.
type InitProducerRequest struct {
	ID        string
	Claim     int64
	TimeoutMs int32
	// ProducerID and Epoch are the caller's current producer id and epoch
	// (InitProducerId v3+, KIP-360), -1 when it has none.
	ProducerID int64
	Epoch      int16
}

// InitProducerResult is InitProducer's outcome.
type InitProducerResult struct {
	ProducerID int64
	Epoch      int16
	// Written are the partitions the call wrote an abort marker to (a
	// transaction left open by an earlier instance).
	Written []TopicPartition
}

// AddToTxnRequest is AddToTransaction's input.
type AddToTxnRequest struct {
	TxnProducer
	// Claim is the coordinator's claim; 0 for an implicit add by a
	// produce (KIP-890), which is not the coordinator's write.
	Claim      int64
	Partitions []TopicPartition
	Groups     []string
	// VerifyOnly checks membership instead of adding (AddPartitionsToTxn
	// v4+ verify_only).
	VerifyOnly bool
	// MaxPartitions bounds the transaction's partitions and groups.
	MaxPartitions int
}

// AddToTxnResult is AddToTransaction's outcome.
type AddToTxnResult struct {
	// NotInTxn are, for VerifyOnly, the requested partitions the ongoing
	// transaction does not hold.
	NotInTxn []TopicPartition
}

// EndTxnRequest is EndTransaction's input.
type EndTxnRequest struct {
	TxnProducer
	Claim  int64
	Commit bool
	// Bump is KIP-890's transaction version 2 (EndTxn v5+): the epoch is
	// bumped at the end of every transaction and retries are recognized
	// by the epoch.
	Bump bool
	// Fence is the coordinator's abort of an expired transaction: the
	// producer is fenced (Kafka's epoch fence, then the abort), so that
	// its next request fails. ProducerID and Epoch are those the
	// transaction was found expired with; nothing happens if they
	// changed meanwhile (ErrProducerFenced).
	Fence bool
}

// EndTxnResult is EndTransaction's outcome.
type EndTxnResult struct {
	// ProducerID and Epoch are what the producer uses next (EndTxn v5).
	ProducerID int64
	Epoch      int16
	// Written are the partitions a marker was written to.
	Written []TopicPartition
}

// TxnOffsetsRequest is StageTxnOffsets' input.
type TxnOffsetsRequest struct {
	TxnProducer
	Group   string
	Offsets []CommittedOffset
	// AddGroup adds the group to the transaction when it is not in it
	// (TxnOffsetCommit v5+, KIP-890), as AddOffsetsToTxn would.
	AddGroup bool
	// MaxOffsets bounds the offsets the transaction stages.
	MaxOffsets int
	// GroupEpoch fences the group coordinator's write as
	// GroupOwnership.CommitOwnedOffsets does (ErrGroupFenced), and
	// Generation, when >= 0, must be the group's stored generation
	// (ErrIllegalGeneration). GroupEpoch 0 checks neither.
	GroupEpoch int64
	Generation int32
}

// AbortedTxn is one aborted transaction of a partition: its producer, its
// first offset in the partition and its marker's offset.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

// ProducerInfo is one producer's state on a partition.
type ProducerInfo struct {
	ProducerID   int64
	Epoch        int16
	LastSequence int32 // -1 when none
	// LastTimestamp is when the producer last wrote (ms).
	LastTimestamp int64
	// TxnFirstOffset is the first offset of its open transaction on the
	// partition, -1 when none.
	TxnFirstOffset int64
}

// Marker is a transaction marker (a commit or abort control batch) as its
// batch-index row holds it. No object holds a marker's bytes: a reader
// makes them from the row (segment.MarkerBatch).
type Marker struct {
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool
	CoordinatorEpoch int32
}

// MarkerBatchLen is the length of a marker's control batch: a v2 batch
// header (61 bytes) and its one record (17 bytes).
const MarkerBatchLen = 78

// MarkerRow is the batch-index row of a marker at offset, written at
// timestamp (ms): segment key "" (segment id 0 in the store), and the
// columns that locate other rows' batches in their objects carry the
// marker (see Batch.Marker).
func MarkerRow(offset int64, m Marker, timestamp int64) Batch {
	pos := int32(0)
	if m.Commit {
		pos = 1
	}
	return Batch{
		BaseOffset: offset, LastOffset: offset, MaxTimestamp: timestamp,
		ChunkOffset: m.ProducerID,
		ChunkLength: int64(uint16(m.ProducerEpoch)) | int64(m.CoordinatorEpoch)<<16,
		Pos:         pos,
		Len:         MarkerBatchLen,
	}
}

// IsMarker reports whether an index row (as Batches and IndexRows return
// them) is a transaction marker's: it names no object.
func (b Batch) IsMarker() bool { return b.SegmentKey == "" }

// Marker decodes a marker row (see MarkerRow).
func (b Batch) Marker() Marker {
	return Marker{
		ProducerID:       b.ChunkOffset,
		ProducerEpoch:    int16(uint16(b.ChunkLength)),
		Commit:           b.Pos == 1,
		CoordinatorEpoch: int32(b.ChunkLength >> 16),
	}
}

// Errors of Transactions (and, for transactional batches, of
// CommitSegment's results).
var (
	// ErrTxnCoordinatorFenced means a coordinator write named a claim that
	// a later ClaimTransaction replaced: another agent coordinates the
	// transactional id now.
	ErrTxnCoordinatorFenced = errors.New("transactional id claimed by another coordinator")
	// ErrInvalidProducerIDMapping means the producer id is not the
	// transactional id's (or the id is unknown).
	ErrInvalidProducerIDMapping = errors.New("producer id not mapped to the transactional id")
	// ErrProducerFenced means the producer epoch is not the transactional
	// id's current one: a newer instance (or the coordinator's abort of
	// an expired transaction) fenced this one.
	ErrProducerFenced = errors.New("producer fenced by a newer epoch")
	// ErrInvalidTxnState means the request does not fit the transaction's
	// state (EndTxn without a transaction, commit after abort, a
	// non-transactional write while the producer's transaction is open).
	ErrInvalidTxnState = errors.New("invalid transaction state")
	// ErrPartitionNotInTxn means a transactional write (a batch, staged
	// offsets) names a partition or group its transaction did not add.
	ErrPartitionNotInTxn = errors.New("partition not added to the transaction")
	// ErrTxnTooLarge means a transaction would hold more partitions,
	// groups or staged offsets than allowed.
	ErrTxnTooLarge = errors.New("transaction too large")
)

// LastStable is a partition's last stable offset from its log start
// offset, high watermark and the first offset of its oldest open
// transaction (-1: none).
func LastStable(logStart, hw, txnFirst int64) int64 {
	if txnFirst < 0 {
		return hw
	}
	return max(txnFirst, logStart)
}

// Epoch limits: Kafka rotates the producer id once the epoch reaches
// MaxEpoch - 1, so a bump never overflows.
const MaxEpoch = math.MaxInt16

// epochExhausted is Kafka's TransactionMetadata.isEpochExhausted.
func epochExhausted(e int16) bool { return e >= MaxEpoch-1 }
