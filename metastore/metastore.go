// Package metastore holds silt's order and bookkeeping: topics and their
// partitions, the per-partition batch index that turns segment objects into
// offsets, idempotent-producer state, consumer-group state and committed
// offsets, and agent leases. Record data itself lives in the object store.
//
// There is one interface, Store, with two backends: Postgres through pgx
// (metastore/postgres, production) and SQLite through modernc.org/sqlite
// (metastore/sqlite, the embedded default). Both share one schema shape,
// versioned migrations embedded in the binary and applied on open, and one
// contract suite (metastore/storetest).
package metastore

import (
	"context"
	"errors"
	"time"
)

// TopicID is a Kafka topic id (a UUID). The zero value is not a valid id.
type TopicID [16]byte

// Store is the metastore. Every method is safe for concurrent use. Every
// lookup is O(result): nothing scans a partition's history.
type Store interface {
	// CreateTopic creates a topic with its partitions (log start and high
	// watermark 0). Errors: ErrTopicExists, ErrInvalidTopic (name rules),
	// ErrInvalidPartitions (count < 1).
	CreateTopic(ctx context.Context, spec TopicSpec) (Topic, error)
	// DeleteTopic removes a topic: from then on it is not found by name
	// or id (the name can be used again at once), and its producer state
	// and committed offsets are gone. Its partitions' batch-index rows,
	// and the segment objects only they still use, are reclaimed later by
	// the storage lifecycle (Lifecycle.Retain and DropPartition), in
	// bounded steps rather than in one transaction. Errors:
	// ErrUnknownTopic.
	DeleteTopic(ctx context.Context, name string) error
	// Topic describes one topic by name. Errors: ErrUnknownTopic.
	Topic(ctx context.Context, name string) (Topic, error)
	// TopicByID describes one topic by id. Errors: ErrUnknownTopic.
	TopicByID(ctx context.Context, id TopicID) (Topic, error)
	// Topics lists every topic, ordered by name.
	Topics(ctx context.Context) ([]Topic, error)
	// CreatePartitions grows a topic to count partitions. Errors:
	// ErrUnknownTopic, ErrInvalidPartitions (count not larger).
	CreatePartitions(ctx context.Context, name string, count int32) error
	// AlterTopicConfigs applies changes to a topic's configs: a nil value
	// deletes the key (back to the default), a non-nil one sets it.
	// Validation of keys and values is the caller's. Errors: ErrUnknownTopic.
	AlterTopicConfigs(ctx context.Context, name string, changes map[string]*string) error

	// AddPendingSegment records a segment object key before its upload, so
	// garbage collection can find an object whose commit never happened.
	AddPendingSegment(ctx context.Context, key string) error
	// CommitSegment commits one uploaded segment in one transaction: it
	// locks the affected partition rows in sorted order, checks each
	// idempotent batch against its producer state, gives each accepted batch
	// its base offset (the partition's high watermark), advances the high
	// watermarks, inserts the batch index rows and marks the segment
	// committed. Batches of one partition are committed in slice order.
	//
	// Per-batch outcomes (duplicate, sequence errors, unknown partition) are
	// in the result and do not fail the commit; an error return means
	// nothing was committed.
	//
	// The segment must be pending (AddPendingSegment, before its upload):
	// a key never recorded, or one that garbage collection claimed as an
	// orphan meanwhile (its object may be deleted), fails with
	// ErrSegmentGone; a committed one with ErrSegmentCommitted.
	CommitSegment(ctx context.Context, seg Segment) ([]BatchResult, error)

	// Batches returns the index entries needed to read a partition from
	// offset: the entry containing offset and those after it, in offset
	// order, until their summed Len reaches maxBytes (at least one batch is
	// returned when any exists at or after offset). It also returns the
	// partition's current offsets, so the caller can answer
	// OFFSET_OUT_OF_RANGE. Entries of transaction markers name no object
	// (Batch.IsMarker). Errors: ErrUnknownTopicOrPartition.
	Batches(ctx context.Context, tp TopicPartition, offset int64, maxBytes int64) ([]Batch, PartitionOffsets, error)
	// Offsets returns a partition's log start offset and high watermark.
	// Errors: ErrUnknownTopicOrPartition.
	Offsets(ctx context.Context, tp TopicPartition) (PartitionOffsets, error)
	// OffsetForTimestamp returns the first index entry ending at or
	// after from whose max timestamp is >= ts (only its BaseOffset,
	// LastOffset and MaxTimestamp are set); found is false when there is
	// none. The record itself is found by reading the entry's batches (an
	// entry of a compacted object holds many). Errors:
	// ErrUnknownTopicOrPartition.
	OffsetForTimestamp(ctx context.Context, tp TopicPartition, ts, from int64) (entry Batch, found bool, err error)
	// MaxTimestamp returns the index entry with the largest max timestamp
	// (ListOffsets -3; the first such entry), set as by
	// OffsetForTimestamp; found is false for an empty partition.
	MaxTimestamp(ctx context.Context, tp TopicPartition) (entry Batch, found bool, err error)

	// NextProducerID allocates a fresh idempotent producer id.
	NextProducerID(ctx context.Context) (int64, error)

	// SaveGroup stores a consumer group's state (opaque to the store),
	// replacing what was there. LoadGroup returns found=false for an unknown
	// group. DeleteGroup removes the group and its committed offsets.
	// These group and offset writes are not fenced: a group coordinator
	// writes through GroupOwnership.
	SaveGroup(ctx context.Context, g Group) error
	LoadGroup(ctx context.Context, name string) (g Group, found bool, err error)
	Groups(ctx context.Context) ([]Group, error)
	DeleteGroup(ctx context.Context, name string) error
	// CommitOffsets stores committed offsets of a group in one
	// transaction. Offsets of unknown topics or partitions fail the call
	// with ErrUnknownTopicOrPartition and commit nothing.
	CommitOffsets(ctx context.Context, group string, offsets []CommittedOffset) error
	// FetchOffsets returns a group's committed offsets for the given
	// partitions, or all of them when tps is nil. Partitions without a
	// committed offset are left out.
	FetchOffsets(ctx context.Context, group string, tps []TopicPartition) ([]CommittedOffset, error)
	// DeleteOffsets removes committed offsets of a group.
	DeleteOffsets(ctx context.Context, group string, tps []TopicPartition) error

	// RegisterAgent inserts or refreshes an agent's lease, valid for ttl,
	// and returns the agent's broker (node) id, stable for a given agent ID.
	RegisterAgent(ctx context.Context, a Agent, ttl time.Duration) (nodeID int32, err error)
	// RenewAgent extends a lease. Errors: ErrLeaseExpired when the lease
	// already lapsed or was removed (the agent must register again).
	RenewAgent(ctx context.Context, agentID string, ttl time.Duration) error
	// DeregisterAgent removes an agent's lease.
	DeregisterAgent(ctx context.Context, agentID string) error
	// LiveAgents lists agents whose lease has not expired, by node id,
	// each with the time its lease still runs (Agent.LeaseLeft).
	LiveAgents(ctx context.Context) ([]Agent, error)

	// Ping checks that the metastore answers.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// CommitWatcher is implemented by stores that can tell an agent about
// segments committed by other agents (Postgres: LISTEN/NOTIFY), so their
// waiting fetches wake at once instead of after a cache timeout. Check for
// it with a type assertion; a store without it (SQLite, one process) only
// has the committing agent's own in-process notification.
type CommitWatcher interface {
	// WatchCommits calls fn with the partitions of each segment committed
	// by any other agent (a store's own commits are left out: its caller
	// learns of them when CommitSegment returns), until ctx ends; then it
	// returns ctx's error. It runs
	// in the caller's goroutine and calls fn one call at a time, so fn
	// must not block for long. fn(nil) means "commits may have been
	// missed: treat every partition as changed"; it is called once the
	// watch is listening (so a caller may use it as a ready signal), again
	// after each reconnection, and for commits too large to list.
	// Connection failures are retried with backoff inside.
	WatchCommits(ctx context.Context, fn func([]TopicPartition)) error
}

// TopicPartition names a partition by topic id.
type TopicPartition struct {
	Topic     TopicID
	Partition int32
}

// TopicSpec is what CreateTopic needs.
type TopicSpec struct {
	Name       string
	ID         TopicID // zero: the store generates a random UUID
	Partitions int32
	Configs    map[string]string // explicitly set configs only
}

// Topic is a topic as stored.
type Topic struct {
	Name       string
	ID         TopicID
	Partitions int32
	Configs    map[string]string // explicitly set configs only
}

// Segment is one uploaded segment object to commit.
type Segment struct {
	Key     string // object key, unique
	Size    int64  // object size in bytes
	Batches []BatchAppend
}

// BatchAppend is one record batch in a segment, as the produce path saw it.
type BatchAppend struct {
	TopicPartition
	// Records is the batch's record count (last offset delta + 1): the
	// number of offsets it takes.
	Records      int32
	MaxTimestamp int64
	// Producer state; ProducerID -1 for a non-idempotent batch.
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	// Transactional is set for a batch of a transaction: it is committed
	// only while its producer's transaction is ongoing and holds the
	// partition (see Transactions).
	Transactional bool
	// Where the batch lives: the chunk's byte range in the object, and the
	// batch's byte range inside the decoded chunk.
	ChunkOffset int64
	ChunkLength int64
	Pos         int32
	Len         int32
}

// BatchResult is CommitSegment's outcome for one BatchAppend, same index.
type BatchResult struct {
	// BaseOffset is the offset given to the batch's first record. For a
	// duplicate (Err == ErrDuplicateSequence) it is the offset the batch got
	// the first time, and the batch is not indexed again.
	BaseOffset     int64
	LogStartOffset int64
	// Err is nil, ErrDuplicateSequence (answer success with BaseOffset),
	// ErrOutOfOrderSequence, ErrInvalidProducerEpoch (fenced),
	// ErrUnknownProducerID, or ErrUnknownTopicOrPartition; for
	// transactions, ErrPartitionNotInTxn (a transactional batch whose
	// transaction is not ongoing or did not add the partition),
	// ErrInvalidProducerIDMapping (no transactional id holds its producer
	// id) or ErrInvalidTxnState (a non-transactional batch of a producer
	// whose transaction is open on the partition).
	Err error
}

// Batch is one batch index entry, as the fetch path reads it. An entry
// of a produce segment holds exactly one record batch, stored with base
// offset 0; an entry of a compacted object (segment/FORMAT.md, version 2)
// holds one chunk's batches, which carry their own base offsets. Either
// way the entry's first batch starts at BaseOffset, its last ends at
// LastOffset, and they lie at [Pos, Pos+Len) of the decoded chunk. An
// entry of a transaction marker names no object (SegmentKey ""): its one
// control batch is made from the entry (see Marker).
type Batch struct {
	BaseOffset   int64
	LastOffset   int64
	MaxTimestamp int64
	SegmentKey   string
	ChunkOffset  int64
	ChunkLength  int64
	Pos          int32
	Len          int32
}

// PartitionOffsets are a partition's log bounds.
type PartitionOffsets struct {
	LogStartOffset int64
	HighWatermark  int64
	// LastStableOffset is where the oldest transaction still open on the
	// partition begins (never below the log start offset), or the high
	// watermark when none is: read_committed consumers read below it.
	LastStableOffset int64
	// AbortedEnd is one past the newest abort marker of a transaction
	// that wrote to the partition, 0 when there is none: a read_committed
	// read from AbortedEnd on needs no aborted-transaction list.
	AbortedEnd int64
}

// Group is a consumer group's persisted state. The coordinator owns the
// encoding of Data; the store keeps State, ProtocolType and Type readable
// for ListGroups filters, and Generation for fencing offset commits
// (CommitOwnedOffsets).
type Group struct {
	Name         string
	State        string
	ProtocolType string
	// Type is the group's type as ListGroups v5 names it: GroupTypeClassic
	// (also for "", as groups saved before types were stored read),
	// GroupTypeConsumer (KIP-848) or GroupTypeShare (KIP-932).
	Type       string
	Generation int32
	Data       []byte
}

// Group types (Group.Type).
const (
	GroupTypeClassic  = "classic"
	GroupTypeConsumer = "consumer"
	GroupTypeShare    = "share"
)

// CommittedOffset is one committed consumer offset.
type CommittedOffset struct {
	TopicPartition
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  time.Time
}

// Agent is one registered agent (broker).
type Agent struct {
	ID     string // unique per agent process
	NodeID int32  // assigned by RegisterAgent
	Host   string // advertised host
	Port   int32  // advertised port
	Zone   string // optional availability zone (rack)
	// Listeners are the advertised addresses of each named listener
	// (Kafka's advertised.listeners), so Metadata can answer a client
	// the addresses of the listener it connected to. Host and Port are
	// the first one's.
	Listeners []Endpoint
	// LeaseLeft is set by LiveAgents: how long the agent's lease still
	// ran, by the store's clock, when the list was read. A reader that
	// adds it to the time it sent the query gets a moment at which the
	// lease has not yet expired anywhere, on its own clock.
	LeaseLeft time.Duration
}

// Endpoint is one advertised listener of an agent.
type Endpoint struct {
	Name string // listener name, e.g. "PLAINTEXT", "EXTERNAL"
	Host string
	Port int32
}

// Endpoint returns the agent's advertised address on the named listener;
// an agent registered without listeners has its Host and Port on every
// listener.
func (a Agent) Endpoint(listener string) (Endpoint, bool) {
	if len(a.Listeners) == 0 {
		return Endpoint{Name: listener, Host: a.Host, Port: a.Port}, true
	}
	for _, e := range a.Listeners {
		if e.Name == listener {
			return e, true
		}
	}
	return Endpoint{}, false
}

// Errors returned by Store implementations. Callers test them with
// errors.Is; the agent maps them to Kafka error codes in one place.
var (
	ErrTopicExists             = errors.New("topic already exists")
	ErrUnknownTopic            = errors.New("unknown topic")
	ErrUnknownTopicOrPartition = errors.New("unknown topic or partition")
	ErrInvalidTopic            = errors.New("invalid topic name")
	ErrInvalidPartitions       = errors.New("invalid partition count")

	// ErrDuplicateSequence marks a batch the producer already wrote; its
	// BatchResult carries the original base offset.
	ErrDuplicateSequence = errors.New("duplicate sequence number")
	// ErrOutOfOrderSequence marks a sequence gap for a known producer.
	ErrOutOfOrderSequence = errors.New("out of order sequence number")
	// ErrInvalidProducerEpoch marks a batch from an older producer epoch.
	ErrInvalidProducerEpoch = errors.New("producer epoch fenced")
	// ErrUnknownProducerID marks a non-zero first sequence from a producer
	// the partition has no state for.
	ErrUnknownProducerID = errors.New("unknown producer id")

	// ErrUnknownCredential means the user has no SCRAM credential for
	// the mechanism.
	ErrUnknownCredential = errors.New("unknown scram credential")

	// ErrLeaseExpired means an agent's lease is gone.
	ErrLeaseExpired = errors.New("agent lease expired")

	// ErrSegmentCommitted means CommitSegment was called for a key that is
	// already committed: committing twice would index its batches twice.
	ErrSegmentCommitted = errors.New("segment already committed")
	// ErrSegmentGone means a segment to commit is not pending: it was
	// never recorded, or garbage collection claimed it as an orphan.
	ErrSegmentGone = errors.New("segment not pending")
)
