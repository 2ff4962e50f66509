package metastore

import (
	"context"
	"errors"
)

// GroupOwnership fences a group coordinator's writes. A group's
// coordinator is picked by hashing over the live agents, so two agents can
// both believe they coordinate one group: an agent paused past its lease
// wakes up with the state it had, and agents' lists of live agents differ
// for a moment whenever one joins or leaves. Whatever each one believes,
// the store accepts the writes of only one of them.
//
// A coordinator claims a group when it loads it: ClaimGroup increments the
// group's ownership epoch and returns the group as of that claim. Every
// write names the epoch its coordinator loaded the group under and fails
// with ErrGroupFenced once a later claim has replaced it. The epoch check
// and the write are one statement or one transaction, serialized against
// claims: a write is either applied before a later claim reads the group
// (and so is part of what the new coordinator loads), or not at all.
//
// A group's epoch outlives the group (DeleteOwnedGroup keeps it), so a
// coordinator that claimed the group before it was deleted stays fenced
// after it is created again.
type GroupOwnership interface {
	// ClaimGroup makes the caller the group's owner: it increments the
	// group's ownership epoch (1 for a name never claimed) and returns the
	// new epoch with the group's stored state; Found is false for a group
	// that is not stored. Writes with an earlier epoch fail from then on.
	ClaimGroup(ctx context.Context, name string) (GroupClaim, error)
	// SaveOwnedGroup is SaveGroup fenced by epoch, for classic and
	// consumer groups: a group of type share stored under the name is
	// never overwritten, nor is g saved as one (share groups are saved by
	// ShareGroupOwnership). Errors: ErrGroupFenced, ErrGroupTypeConflict.
	SaveOwnedGroup(ctx context.Context, epoch int64, g Group) error
	// CommitOwnedOffsets is CommitOffsets fenced by epoch and, for a
	// generation >= 0 (a member's commit), by the group's stored
	// generation. Errors: ErrGroupFenced; ErrIllegalGeneration when the
	// group is not stored at that generation; ErrUnknownTopicOrPartition.
	// On any error nothing is committed.
	CommitOwnedOffsets(ctx context.Context, group string, epoch int64, generation int32, offsets []CommittedOffset) error
	// DeleteOwnedGroup is DeleteGroup fenced by epoch; a share group of
	// that name is left alone. Errors: ErrGroupFenced.
	DeleteOwnedGroup(ctx context.Context, name string, epoch int64) error
	// DeleteOwnedOffsets is DeleteOffsets fenced by epoch. Errors:
	// ErrGroupFenced.
	DeleteOwnedOffsets(ctx context.Context, group string, epoch int64, tps []TopicPartition) error
}

// GroupClaim is what ClaimGroup returns.
type GroupClaim struct {
	// Epoch is the caller's ownership epoch, which its writes name.
	Epoch int64
	// Group is the stored group when Found.
	Group Group
	Found bool
}

// Errors of GroupOwnership.
var (
	// ErrGroupFenced means a group write named an ownership epoch that a
	// later ClaimGroup replaced: another coordinator has the group.
	ErrGroupFenced = errors.New("group claimed by another coordinator")
	// ErrIllegalGeneration means an offset commit named a generation
	// other than the group's stored one.
	ErrIllegalGeneration = errors.New("group generation mismatch")
	// ErrGroupTypeConflict means a save would turn a share group into a
	// group of another type, or the other way round: the name belongs to
	// a group of the other kind.
	ErrGroupTypeConflict = errors.New("group is of another type")
)

// GroupConfigs are the dynamic configs of groups (Kafka's GROUP config
// resource: consumer.session.timeout.ms, share.auto.offset.reset, ...),
// set with IncrementalAlterConfigs and read by coordinators and the
// share-fetch path. Validation is the caller's; the store keeps strings.
// A group's configs outlive the group, as Kafka's do (they belong to the
// name, not to one incarnation of the group).
type GroupConfigs interface {
	// GroupConfigs returns the configs explicitly set for group (an empty
	// map when none are).
	GroupConfigs(ctx context.Context, group string) (map[string]string, error)
	// AlterGroupConfigs applies changes in one transaction: a nil value
	// deletes the key, a non-nil one sets it.
	AlterGroupConfigs(ctx context.Context, group string, changes map[string]*string) error
}
