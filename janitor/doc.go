// Package janitor is silt's storage lifecycle: it makes what is stored
// follow the retention users set, reclaims what nothing needs any more, and
// rewrites old data into objects that replay fast. It uses segment/ (the
// object formats), objstore (the bucket) and the metastore's Lifecycle and
// Leases interfaces, and knows nothing of the Kafka protocol.
//
// # One janitor per cluster
//
// Every agent runs a Janitor, and exactly one of them works at a time: the
// one holding the metastore lease "janitor". The others try to take it
// every LeaseTTL/3, so when the holder dies another one takes over within
// a lease period. The lease's epoch fences the work: every metastore write
// a pass makes checks, in its own transaction, that the lease is still
// held with the epoch the pass started under (Postgres share-locks the
// lease row, so a successor's acquisition waits for a write in flight). A
// janitor paused past its lease wakes to find its writes refused.
// Deleting objects is not fenced, and need not be: only objects that the
// metastore has declared dead are deleted, and deleting one twice is
// harmless.
//
// # A pass
//
// Every Interval the leader makes one pass; each step works in bounded
// metastore transactions (BatchRows rows each) and is safe to interrupt at
// any point and to repeat:
//
//  1. Retention. For each partition of a topic whose cleanup.policy has
//     delete, index rows are removed from the front while their max
//     timestamp is older than retention.ms or the partition's bytes
//     without them stay at or above retention.bytes; the log start offset
//     moves past them (Kafka's rules, at batch granularity, never past the
//     high watermark). Rows wholly below a start that DeleteRecords moved
//     are removed for every topic. A deleted topic's partitions lose all
//     their rows, then the partitions and the topic row go.
//  2. Compaction into per-partition objects (compact.go). Each produce
//     segment holds a small chunk of many partitions, so replaying one
//     partition's history would read a few kilobytes from each of
//     thousands of objects. Once a partition's rows are older than
//     CompactAge, their batches are read and written, in offset order, to
//     a compacted object (segment/FORMAT.md, version 2) holding only that
//     partition, in chunks of about ChunkBytes; the index swaps to one row
//     per chunk in one metastore transaction that fails unless the old
//     rows are exactly still there (retention or DeleteRecords meanwhile
//     always wins). Small compacted objects of a partition are merged
//     into larger ones as more data comes, doubling in size, so each byte
//     is rewritten a logarithmic number of times. Batches stay byte for
//     byte what the producer sent, at their offsets.
//  3. Orphans. A segment recorded pending before its upload but never
//     committed (its agent died, or its commit failed) is claimed as dead
//     after OrphanAge; from then on its commit is refused, so its object
//     can go. Every OrphanScanInterval the bucket is listed and objects
//     older than OrphanAge that the metastore does not know at all are
//     deleted (an upload that landed after its pending row was claimed
//     and forgotten).
//  4. Reclamation. A segment that no index row points into any more is
//     dead from that moment; its object is deleted once it has been dead
//     for Grace (longer than any agent caches index rows, so a reader that
//     looked a row up just before can still read it; a reader whose cached
//     index is older re-reads the index), then its row.
//  5. Producer state of producers idle for ProducerExpiration is removed
//     (Kafka's producer.id.expiration.ms), a bounded slice per pass.
//  6. Metrics: what is stored per topic, objects by state, compaction
//     backlog, from the metastore's counters (no scans).
package janitor
