package metastore

import "context"

// BulkReads answers reads of many partitions in one round trip, for
// requests that name thousands of partitions (a consumer of a wide topic,
// a lag monitor listing every partition's offsets): their cost must not
// grow by a round trip per partition.
type BulkReads interface {
	// BatchesMany is Batches for many partitions at once: results[i]
	// answers queries[i]. A partition's answer is a prefix of what
	// Batches would answer: it may hold fewer entries (at most
	// BulkBatches), but always the entry holding the offset when there
	// is one, and it ends at the first entry that does not fit MaxBytes
	// (never leaving one out to take a smaller one after it: readers
	// serve the entries as consecutive). Unknown partitions answer
	// ErrUnknownTopicOrPartition in their result; an error return means
	// the store failed.
	BatchesMany(ctx context.Context, queries []BatchesQuery) ([]BatchesResult, error)
	// OffsetsMany is Offsets for many partitions at once: results[i]
	// answers tps[i].
	OffsetsMany(ctx context.Context, tps []TopicPartition) ([]OffsetsResult, error)
}

// BulkBatches bounds the entries BatchesMany returns per partition.
const BulkBatches = 32

// BatchesQuery is one partition's part of a BatchesMany call.
type BatchesQuery struct {
	TopicPartition
	Offset   int64
	MaxBytes int64
}

// BatchesResult is one partition's answer of BatchesMany.
type BatchesResult struct {
	Batches []Batch
	Offsets PartitionOffsets
	Err     error
}

// OffsetsResult is one partition's answer of OffsetsMany.
type OffsetsResult struct {
	Offsets PartitionOffsets
	Err     error
}
