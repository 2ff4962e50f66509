package metastore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Backend is everything a metastore backend implements: the Store the
// protocol server uses, and the small interfaces of other concerns. Each
// consumer takes only the interface it needs; the contract suite checks
// all of them on every backend.
type Backend interface {
	Store
	BulkReads
	Leases
	Lifecycle
	GroupOwnership
	Credentials
	ACLs
	Transactions
	GroupConfigs
	ShareGroupOwnership
	SharePartitions
}

// Leases elect singletons among agents, such as the storage janitor: a
// named lease is held by one holder at a time, until it expires or is
// released. Its epoch grows every time the lease changes hands (or is
// taken again after it expired), and writes made under a lease name it
// (see Lease), so a holder that lost its lease while paused cannot write
// any more: the store refuses with ErrLeaseLost.
type Leases interface {
	// AcquireLease takes the named lease for holder for ttl when it is
	// free (never taken, released or expired), or renews it when holder
	// still holds it. ok is false, with no error, when another holder
	// holds it.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (l Lease, ok bool, err error)
	// RenewLease extends a held lease by ttl from now. Errors:
	// ErrLeaseLost when it expired or changed hands.
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) error
	// ReleaseLease gives the lease up, so another holder can take it at
	// once. Releasing a lease already lost is not an error.
	ReleaseLease(ctx context.Context, l Lease) error
}

// Lease is a held lease. Writes that must not outlive it take it as their
// fence: the store checks, in the write's own transaction, that the lease
// is still held with this epoch and has not expired.
type Lease struct {
	Name   string
	Holder string
	Epoch  int64
}

// Lifecycle is the storage lifecycle's view of the metastore: moving log
// start offsets (DeleteRecords, retention), reclaiming batch-index rows,
// swapping rows to compacted objects, and finding segment objects that may
// be deleted. Apart from DeleteRecords, which any agent answers, the
// callers are the storage janitor, and every write takes its lease as a
// fence. Every call does a bounded amount of work (limits in rows), so no
// transaction grows with a partition's or a bucket's size.
//
// Index rows and segment objects: every segment (a produce segment, or a
// compacted object the janitor wrote) counts the index rows that point
// into it. When the count drops to zero the segment is dead: no reader
// looking up the index from then on can reach it. Its object is deleted
// after a grace period longer than any agent caches index rows, so a
// reader that looked a row up just before can still read it.
type Lifecycle interface {
	// DeleteRecords moves tp's log start offset up to offset (Kafka's
	// DeleteRecords): offset -1 means the high watermark; an offset at or
	// below the log start offset changes nothing. It returns the
	// partition's offsets after the change. Index rows wholly below the
	// new start are reclaimed later (Retain). Errors:
	// ErrUnknownTopicOrPartition, ErrOffsetOutOfRange (beyond the high
	// watermark, or negative other than -1).
	DeleteRecords(ctx context.Context, tp TopicPartition, offset int64) (PartitionOffsets, error)

	// StoredPartitions lists partitions whose ID is above after, in ID
	// order, at most limit: those of live topics and those of deleted
	// topics whose rows are not reclaimed yet.
	StoredPartitions(ctx context.Context, after int64, limit int) ([]StoredPartition, error)

	// Retain removes index rows from the front of one partition, in
	// offset order, while each is below the log start offset, or (time
	// retention) its max timestamp is below TimestampBelow, or (size
	// retention) the partition's bytes without it are still at least
	// RetainBytes, or the request is to remove All. It stops at the
	// first row it keeps, or after MaxRows. The log start offset moves
	// past the last row removed, never past the high watermark. Errors:
	// ErrUnknownTopicOrPartition, ErrLeaseLost.
	Retain(ctx context.Context, fence Lease, req RetainRequest) (RetainResult, error)

	// IndexRows returns up to limit index rows of a partition from the
	// row holding offset on, in offset order, with their segments.
	IndexRows(ctx context.Context, partitionID, offset int64, limit int) ([]IndexRow, error)
	// IndexRowsBefore returns up to limit index rows of a partition that
	// end before offset, nearest first (descending offsets).
	IndexRowsBefore(ctx context.Context, partitionID, offset int64, limit int) ([]IndexRow, error)

	// SwapRows replaces consecutive index rows of a partition by rows
	// pointing into a compacted object, in one transaction: the object's
	// key must be pending (AddPendingSegment, before its upload) and
	// becomes committed; the old rows' segments lose their references.
	// With no new rows (and no key), the old rows are removed: log
	// compaction by key found none of their records worth keeping.
	// It refuses with ErrSwapConflict, changing nothing, unless exactly
	// the rows in Swap.Old are still there: a concurrent retention step
	// or another swap always wins. Errors: ErrSwapConflict,
	// ErrSegmentGone, ErrLeaseLost.
	SwapRows(ctx context.Context, fence Lease, swap Swap) error
	// MarkCleaned moves a partition's cleaned offset (the log compaction
	// checkpoint, StoredPartition.CleanedOffset) up to offset. Errors:
	// ErrUnknownTopicOrPartition, ErrLeaseLost.
	MarkCleaned(ctx context.Context, fence Lease, partitionID, offset int64) error
	// ProducerTails returns, for each producer with idempotence state on
	// the partition, the last offset of the last batch it wrote there:
	// log compaction keeps such a batch (emptied if need be), as Kafka's
	// cleaner does, so the producer's sequence stays in the log.
	ProducerTails(ctx context.Context, partitionID int64) (map[int64]int64, error)

	// ClaimOrphans marks up to limit segments that are still pending
	// (uploaded, never committed) after olderThan as dead: a commit of
	// one of them from now on fails with ErrSegmentGone. It returns how
	// many it claimed.
	ClaimOrphans(ctx context.Context, fence Lease, olderThan time.Duration, limit int) (int, error)
	// DeadSegments returns up to limit segments dead for at least
	// olderThan: their objects may be deleted.
	DeadSegments(ctx context.Context, olderThan time.Duration, limit int) ([]SegmentInfo, error)
	// ForgetSegments removes the rows of dead segments whose objects
	// are deleted. Keys that are not dead are left alone.
	ForgetSegments(ctx context.Context, fence Lease, keys []string) error
	// KnownSegments reports which of keys have a segment row (pending,
	// committed or dead): an object in the bucket without one is an
	// orphan nobody can commit any more.
	KnownSegments(ctx context.Context, keys []string) (map[string]bool, error)

	// DropPartition removes a deleted topic's partition once it holds no
	// index rows, and the topic's row with its last partition. dropped
	// is false when rows remain (a commit raced the deletion; Retain
	// again).
	DropPartition(ctx context.Context, fence Lease, partitionID int64) (dropped bool, err error)

	// ExpireProducers removes the idempotent-producer state of producers
	// that wrote nothing for olderThan (Kafka's producer.id.expiration.ms),
	// scanning up to limit state rows after cursor. next is where the
	// next call continues; done is true when the scan reached the end.
	ExpireProducers(ctx context.Context, fence Lease, olderThan time.Duration, cursor ProducerCursor, limit int) (next ProducerCursor, removed int, done bool, err error)

	// StorageStats summarizes what is stored: per live topic, and the
	// segments by state.
	StorageStats(ctx context.Context) (StorageStats, error)
}

// StoredPartition is a partition as the storage lifecycle sees it.
type StoredPartition struct {
	// ID is the store's own id of the partition, stable for its life.
	ID int64
	TopicPartition
	// Deleted is set for a partition of a deleted topic: all of its rows
	// are to be reclaimed.
	Deleted bool
	// PartitionOffsets include the last stable offset: log compaction by
	// key cleans nothing at or after it (an open transaction's records
	// may still be aborted).
	PartitionOffsets
	// Bytes and Rows are what the partition's index rows hold: the batch
	// bytes as producers sent them, and the row count.
	Bytes int64
	Rows  int64
	// CompactedOffset is where the partition's data still in produce
	// segments begins: rows below it point into compacted objects, which
	// hold CompactedBytes of Bytes.
	CompactedOffset int64
	CompactedBytes  int64
	// CleanedOffset is log compaction's checkpoint: below it the log
	// holds at most one record per key (as of the last cleaning).
	CleanedOffset int64
	// Front is the partition's first index row (only its offsets, max
	// timestamp and length are set); FrontOK is false when it has none.
	// It tells the janitor whether Retain would remove anything without
	// a transaction per partition.
	Front   Batch
	FrontOK bool
}

// RetainRequest says which front rows of a partition Retain removes.
type RetainRequest struct {
	PartitionID int64
	// TimestampBelow enables time retention: rows whose max timestamp is
	// below it go. Zero disables it (Kafka timestamps are far above 0).
	TimestampBelow int64
	// RetainBytes enables size retention: -1 disables it.
	RetainBytes int64
	// All removes every row (a deleted topic's partition).
	All bool
	// MaxRows bounds the rows removed in one call.
	MaxRows int
}

// RetainResult is what one Retain call removed, by reason.
type RetainResult struct {
	// LogStartOffset is the partition's log start offset afterwards.
	LogStartOffset int64
	// Moved is how far the log start offset moved.
	Moved int64
	// Removed counts rows and bytes by the rule that removed them.
	Removed [RetainReasons]Removed
	// More is set when MaxRows stopped the call before a kept row.
	More bool
}

// RetainReason decides one front row of a Retain call, for the backends:
// the reason it goes (a Retain* constant), or -1 to keep it and every row
// after it. bytes is the partition's bytes with the rows before removed.
func RetainReason(req RetainRequest, lastOffset, maxTS, length, logStart, bytes int64) int {
	switch {
	case req.All:
		return RetainDeleted
	case lastOffset < logStart:
		return RetainBelowStart
	case req.TimestampBelow != 0 && maxTS < req.TimestampBelow:
		return RetainTime
	case req.RetainBytes >= 0 && bytes-length >= req.RetainBytes:
		return RetainSize
	}
	return -1
}

// Removed counts removed index rows and their batch bytes.
type Removed struct {
	Rows  int
	Bytes int64
}

// Reasons a Retain call removes a row, indexes of RetainResult.Removed.
const (
	// RetainBelowStart: below the log start offset (DeleteRecords, or a
	// row the start moved into earlier).
	RetainBelowStart = iota
	// RetainTime: older than retention.ms.
	RetainTime
	// RetainSize: beyond retention.bytes.
	RetainSize
	// RetainDeleted: the topic was deleted.
	RetainDeleted
	// RetainReasons is the number of reasons.
	RetainReasons
)

// IndexRow is one batch-index row with what the janitor needs to know of
// its segment.
type IndexRow struct {
	Batch
	SegmentID int64
	// SegmentSize is the segment object's size in bytes.
	SegmentSize int64
	// Compacted is set when the segment is a compacted object.
	Compacted bool
	// SegmentAge is how long ago the segment was recorded, by the
	// store's clock.
	SegmentAge time.Duration
}

// Swap is one SwapRows call.
type Swap struct {
	PartitionID int64
	// Old are the consecutive rows being replaced, in offset order, as
	// IndexRows returned them.
	Old []IndexRow
	// Key and Size name the compacted object holding the new rows
	// (empty with no new rows).
	Key  string
	Size int64
	// New are the rows pointing into it, in offset order (their
	// SegmentKey is ignored: it is Key).
	New []Batch
}

// CheckSwap checks a swap's own consistency (the store checks it against
// the index): old rows in ascending offset order, new rows ascending without
// overlap and within the old rows' offsets.
func CheckSwap(s Swap) error {
	if len(s.Old) == 0 || (len(s.New) == 0) != (s.Key == "") {
		return fmt.Errorf("%w: %d old rows, %d new rows, key %q", ErrInvalidSwap, len(s.Old), len(s.New), s.Key)
	}
	for i := 1; i < len(s.Old); i++ {
		if s.Old[i].BaseOffset <= s.Old[i-1].LastOffset {
			return fmt.Errorf("%w: old rows out of order at %d", ErrInvalidSwap, s.Old[i].BaseOffset)
		}
	}
	lo, hi := s.Old[0].BaseOffset, s.Old[len(s.Old)-1].LastOffset
	prev := lo - 1
	for _, b := range s.New {
		if b.BaseOffset <= prev || b.LastOffset < b.BaseOffset || b.LastOffset > hi || b.Len <= 0 {
			return fmt.Errorf("%w: new row [%d, %d] after %d, outside [%d, %d] or empty", ErrInvalidSwap, b.BaseOffset, b.LastOffset, prev, lo, hi)
		}
		prev = b.LastOffset
	}
	return nil
}

// SwapCompacted is how a swap of the rows [first, last] (oldCompacted of
// whose bytes lay below the compacted offset co) moves the compacted offset
// and bytes, for the backends: a swap that starts at or below co extends
// the compacted prefix past its rows, which now hold newBytes; one above
// co (there is none today) leaves both alone.
func SwapCompacted(co, first, last, newBytes, oldCompacted int64) (newCO, compactedDelta int64) {
	if first > co {
		return co, 0
	}
	return max(co, last+1), newBytes - oldCompacted
}

// SegmentInfo names a segment object.
type SegmentInfo struct {
	Key  string
	Size int64
}

// ProducerCursor is a position in the scan of producer state; the zero
// value starts at the beginning.
type ProducerCursor struct {
	PartitionID int64
	ProducerID  int64
}

// StorageStats is what StorageStats returns.
type StorageStats struct {
	// Topics maps each live topic's name to its partitions' sums.
	Topics map[string]TopicStorage
	// Segments counts segment objects by state ("pending", "committed",
	// "dead") and CompactedSegments the committed ones that are
	// compacted objects.
	Segments          map[string]SegmentCount
	CompactedSegments SegmentCount
}

// TopicStorage sums a topic's partitions.
type TopicStorage struct {
	Bytes int64 // batch bytes referenced by index rows
	Rows  int64 // index rows
	// Uncompacted is the bytes of rows still in produce segments.
	Uncompacted int64
}

// SegmentCount is a count of segment objects and their bytes.
type SegmentCount struct {
	Objects int64
	Bytes   int64
}

// Errors of the lifecycle interfaces.
var (
	// ErrLeaseLost means a lease expired or changed hands: the holder
	// must stop what it does under it.
	ErrLeaseLost = errors.New("lease lost")
	// ErrSwapConflict means the rows a swap would replace changed.
	ErrSwapConflict = errors.New("index rows changed since they were read")
	// ErrOffsetOutOfRange means an offset lies beyond the high watermark.
	ErrOffsetOutOfRange = errors.New("offset out of range")
	// ErrInvalidSwap means a Swap contradicts itself (a caller's bug).
	ErrInvalidSwap = errors.New("invalid swap")
)
