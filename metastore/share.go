package metastore

import (
	"context"
	"errors"
)

// Share groups (KIP-932) keep two kinds of state (agent/share/STATE.md):
// the group itself (members, epochs, assignment), written by the group's
// share coordinator under a claim like a consumer group's; and one row
// per share-partition (start offset, in-flight records), written by any
// agent with a compare-and-set on the row's version.

// ShareGroupOwnership fences share-group coordinators' writes, as
// GroupOwnership fences group coordinators': ClaimShareGroup increments
// the share group's ownership epoch and returns what is stored under the
// name; every write names the epoch and fails with ErrGroupFenced once a
// later claim replaced it. Share coordinators claim in their own
// namespace, so a group coordinator loading a share group's name (to
// answer DescribeGroups, say) does not fence the share coordinator, nor
// the other way round; the store keeps the two kinds of group apart by
// type (ErrGroupTypeConflict).
type ShareGroupOwnership interface {
	// ClaimShareGroup claims name and returns the new epoch with the
	// group stored under the name, whatever its type (Found false when
	// none is).
	ClaimShareGroup(ctx context.Context, name string) (GroupClaim, error)
	// SaveOwnedShareGroup stores g, of type share, fenced by epoch. A
	// group of another type stored under the name is not overwritten.
	// Errors: ErrGroupFenced, ErrGroupTypeConflict.
	SaveOwnedShareGroup(ctx context.Context, epoch int64, g Group) error
	// DeleteOwnedShareGroup deletes the share group and every one of its
	// share-partitions, fenced by epoch. Errors: ErrGroupFenced.
	DeleteOwnedShareGroup(ctx context.Context, name string, epoch int64) error
	// ResetOwnedSharePartitions sets each partition's start offset and
	// empties its in-flight records (AlterShareGroupOffsets), creating the
	// rows that do not exist; an existing row's state epoch and version
	// are incremented, so a compare-and-set made against the old row
	// fails. Fenced by epoch. Errors: ErrGroupFenced,
	// ErrUnknownTopicOrPartition (nothing is written).
	ResetOwnedSharePartitions(ctx context.Context, group string, epoch int64, resets []SharePartitionReset) error
	// DeleteOwnedSharePartitions removes share-partitions
	// (DeleteShareGroupOffsets). Fenced by epoch. Errors: ErrGroupFenced.
	DeleteOwnedSharePartitions(ctx context.Context, group string, epoch int64, tps []TopicPartition) error
}

// SharePartitionReset is one partition of ResetOwnedSharePartitions.
type SharePartitionReset struct {
	TopicPartition
	StartOffset int64
}

// SharePartitions is the share-fetch path's view of share-partition rows.
// Rows are changed only by compare-and-set on their version, so agents
// never hold a row locked between reading and writing it.
type SharePartitions interface {
	// SharePartition reads one row; found is false when the partition is
	// not initialized for the group.
	SharePartition(ctx context.Context, group string, tp TopicPartition) (sp SharePartition, found bool, err error)
	// GroupSharePartitions reads every row of a group, ordered by topic id
	// and partition.
	GroupSharePartitions(ctx context.Context, group string) ([]SharePartition, error)
	// InitSharePartition stores sp (version 1, state epoch 1 when sp's is
	// 0) unless the group already has a row for the partition, and returns
	// the stored row either way. Errors: ErrUnknownTopicOrPartition.
	InitSharePartition(ctx context.Context, group string, sp SharePartition) (SharePartition, error)
	// UpdateSharePartition replaces the row's start offset and state if
	// its version is still sp.Version, and stores version sp.Version+1.
	// Errors: ErrShareStateChanged when the version moved on or the row is
	// gone (nothing is written; read it again).
	UpdateSharePartition(ctx context.Context, group string, sp SharePartition) error
}

// SharePartition is one share-partition row. State is encoded by
// agent/share (STATE.md); the store does not read it.
type SharePartition struct {
	TopicPartition
	StateEpoch  int32
	StartOffset int64
	Version     int64
	State       []byte
}

// Errors of SharePartitions.
var (
	// ErrShareStateChanged means a compare-and-set of a share-partition
	// found another version: another agent wrote it first.
	ErrShareStateChanged = errors.New("share-partition changed since it was read")
)
