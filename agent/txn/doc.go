// Package txn is silt's transaction coordinator: Kafka's transactions
// (KIP-98) with the KIP-447 and KIP-890 refinements, for transactional
// producers, read_committed consumers and consume-transform-produce
// applications. It answers InitProducerId with a transactional id,
// AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, DescribeTransactions and
// ListTransactions, and aborts transactions that outlive their timeout.
//
// Kafka keeps a transaction's state in the __transaction_state log and
// moves it through Ongoing, PrepareCommit and CompleteCommit while the
// coordinator sends WriteTxnMarkers to every partition leader; a
// coordinator that dies between "prepare" and "complete" leaves its
// successor to replay the log and finish sending markers. silt has no
// partition leaders to send markers to: every partition's log is the
// batch index in the metastore. So silt keeps the whole state in the
// metastore and ends a transaction in one metastore transaction that
// writes the markers and changes the state together. There is no
// "prepare" state for anyone to find half done.
//
// # State in the metastore (metastore.Transactions, migration 0005)
//
//   - transactions: one row per transactional id: its producer id (and
//     the previous one, after a rotation), producer epoch (and the one
//     before it, for retries), state (Empty, Ongoing, CompleteCommit,
//     CompleteAbort), its timeout and when the transaction started.
//   - txn_owners: each transactional id's coordinator epoch (below); it
//     outlives the id's transactions row, so an epoch is never handed
//     out twice for one id.
//   - txn_partitions and txn_groups: the partitions and consumer groups
//     the ongoing transaction has added.
//   - txn_offsets: offsets staged by TxnOffsetCommit, invisible until the
//     commit copies them into the committed offsets.
//   - producer_state gains txn_first_offset: the first offset of the
//     producer's open transaction on that partition, -1 when none, as
//     Kafka's ProducerStateManager keeps currentTxnFirstOffset.
//   - partitions gain txn_first_offset (the smallest of the above over
//     the partition's producers, -1 when none) and aborted_end (one past
//     the newest abort marker of a transaction that wrote to the
//     partition, 0 when none), both kept by the writes that change them,
//     so a read finds the last stable offset and whether it needs an
//     aborted list in the partition row it reads anyway.
//   - aborted_txns: per partition, each aborted transaction that wrote to
//     it: producer id, first offset, the marker's offset and the last
//     stable offset after the marker (Kafka's transaction index).
//
// # Markers are index rows without an object
//
// A commit or abort marker is a control batch of one record (key: version
// 0 and the control type, 0 abort or 1 commit; value: version 0 and the
// coordinator epoch), transactional and control bits set, with the
// producer's id and epoch, sequence -1 and the coordinator's clock as
// timestamps. It occupies one offset in each partition of the
// transaction, as in Kafka. silt does not upload an object for it: the
// marker is a batch index row with segment id 0 (no segment has that id)
// whose location columns carry what the bytes are made from: chunk_offset
// the producer id, chunk_length the producer epoch plus the coordinator
// epoch times 65536, pos the control type, len the control batch's length
// (metastore.Batch.Marker decodes it). Readers synthesize the bytes
// (segment.MarkerBatch), which depend only on the row, so every agent
// returns byte-identical batches. The storage janitor treats marker rows
// as rows: retention removes them from the front like any other, and
// compaction reads them by synthesizing their bytes and writes them into
// the compacted object, where from then on they are ordinary bytes; the
// row then points into that object like every other compacted row.
//
// So an EndTxn costs no object upload and no wait for a segment flush:
// one metastore transaction, whose latency is that of the metastore.
//
// # Ending a transaction: one metastore transaction
//
// metastore.Transactions.EndTransaction locks the transaction's row,
// decides (metastore.PlanEnd: Kafka's rules for the request's epoch, the
// state and the result, for both transaction versions), and when a
// transaction ends it, in the same transaction:
//
//  1. locks the rows of the transaction's partitions in id order (the
//     order every segment commit locks them in);
//  2. appends a marker row at each partition's high watermark and moves
//     the high watermark past it;
//  3. ends the producer's open transaction on each partition
//     (producer_state.txn_first_offset back to -1, the epoch raised to
//     the marker's when it is higher, which resets the sequences), and
//     recomputes the partition's txn_first_offset from the producers
//     still open there;
//  4. for an abort, records the aborted transaction of each partition it
//     wrote to (aborted_txns, partitions.aborted_end);
//  5. for a commit, copies the staged offsets into the committed offsets;
//     either way the staged offsets, partitions and groups are dropped;
//  6. moves the transaction to CompleteCommit or CompleteAbort (and, with
//     KIP-890, bumps the producer epoch, rotating the producer id when
//     the epoch is exhausted);
//  7. notifies the other agents of the partitions it wrote (Postgres
//     NOTIFY, as a segment commit does), so waiting read_committed
//     fetches wake up.
//
// Either all of it is committed or none: a coordinator killed at any
// point leaves the transaction Ongoing with no marker anywhere, or
// complete with a marker everywhere. The producer's retry of EndTxn
// reaches the next coordinator, which finds one or the other and
// answers as Kafka does for a retry (success for the same result).
//
// # Writes to a transactional partition: the segment commit checks
//
// A transactional batch is committed (metastore.Store.CommitSegment, in
// the one statement or transaction of its segment) only while its
// producer's transaction is Ongoing with the batch's epoch and includes
// the partition: the commit reads the transaction under the partition
// row lock that EndTxn also takes. A batch of a transaction that ended
// (a produce delayed in a buffer, a zombie) therefore never lands after
// its marker; a partition not added answers INVALID_TXN_STATE
// (TRANSACTION_ABORTABLE from produce v11), a stale epoch
// INVALID_PRODUCER_EPOCH, a producer id no transactional id holds
// INVALID_PRODUCER_ID_MAPPING. The producer's first batch in a
// transaction on a partition starts it there (txn_first_offset); later
// ones need no read of the transaction (Kafka's verification is also only
// for the first). Non-transactional batches pay nothing: their checks
// are the idempotence checks that were there already, plus Kafka's
// refusal of a non-transactional batch from a producer with an open
// transaction on the partition, read from the same producer_state row.
//
// Lock order: a coordinator write takes the owner row (shared), then the
// transaction row, then partition rows in id order; a segment commit
// takes its segment row and then partition rows in id order, and only
// reads transaction rows. Nothing that holds a partition row lock waits
// for an owner or transaction row, so there is no cycle. (The new tables
// have no foreign keys to partitions, whose rows every commit updates:
// a foreign key check would lock them too.)
//
// # Read committed
//
// The last stable offset (LSO) of a partition is its txn_first_offset
// (never below the log start offset) or, when no transaction is open on
// it, the high watermark. A read_committed Fetch returns batches below
// the LSO only, and the aborted transactions overlapping what it returns
// (aborted_txns from the fetch offset on, until the first whose
// recorded LSO passes the end of the answer: Kafka's
// collectAbortedTxns), so clients drop aborted batches and skip markers.
// ListOffsets latest answers the LSO for read_committed. On partitions
// without transactions (txn_first_offset -1, aborted_end 0) a
// read_committed fetch does exactly what a read_uncommitted one does.
// The read path's cached partition offsets carry the LSO; commits of this
// agent that hold transactional batches, and every EndTxn, invalidate
// them.
//
// # Coordinators, claims and fencing
//
// A transactional id's coordinator is picked like a group's, by hashing
// over the live agents (FindCoordinator key type 1); the others answer
// NOT_COORDINATOR. A coordinator claims the id before it acts on it
// (ClaimTransaction increments its coordinator epoch in txn_owners,
// Kafka's coordinator epoch, which the markers also carry), and every
// coordinator write names the claim and checks it in its own metastore
// transaction, under a share lock of the owner row that a later claim
// waits for: the store refuses the write (and the agent answers
// NOT_COORDINATOR) once another agent has claimed the id since. Each write also checks the producer id
// and epoch against the row. So:
//
//   - a producer that initializes again with the same transactional id
//     bumps the epoch (aborting the transaction a previous instance left
//     open, in the same metastore transaction), and every later write of
//     the zombie fails on its epoch: its produce, its AddPartitionsToTxn,
//     its TxnOffsetCommit, its EndTxn;
//   - an agent paused past its lease (SIGSTOP) that wakes with requests in
//     its sockets cannot end or alter a transaction another agent has
//     claimed meanwhile: the claim epoch no longer matches. Requests read
//     across a lapse of the agent's lease are refused outright, as the
//     group coordinator refuses them.
//
// Writes that do not come from the transaction's coordinator are guarded
// by the producer epoch and the transaction state alone: the implicit add
// of a partition by a Produce v12+ (KIP-890), and TxnOffsetCommit, which
// the group's coordinator stages under the group's own fence.
//
// # KIP-890
//
// The agents advertise the finalized feature transaction.version 2, so
// clients that know it (Kafka 4.x, franz-go) use EndTxn v5 (the epoch is
// bumped at every transaction end and returned to the client, so a
// delayed write of one transaction can never land in the next), Produce
// v12+ (the first produce to a partition adds it to the transaction
// implicitly, instead of AddPartitionsToTxn) and TxnOffsetCommit v5+ (the
// group is added implicitly). Older clients keep the older protocol on
// the same coordinator. AddPartitionsToTxn v4+ (the broker-to-coordinator
// batched and verify-only form) is answered too.
//
// # Timeouts and expiry
//
// A transaction Ongoing for longer than its timeout (transaction.timeout.ms,
// at most MaxTimeout, Kafka's transaction.max.timeout.ms) is aborted by its
// coordinator, which bumps the epoch so that the producer's next request
// is fenced, as Kafka does; every agent looks for expired transactions of
// the ids it coordinates every AbortInterval. Transactional ids unused for
// IDExpiration (transactional.id.expiration.ms) are forgotten.
//
// # Deliberate differences from Kafka
//
//   - InitProducerId for an id whose transaction is open aborts it and
//     answers the new epoch at once; Kafka aborts asynchronously and answers
//     CONCURRENT_TRANSACTIONS, and the client's retry gets the new epoch.
//   - There is no PrepareCommit/PrepareAbort state: EndTxn returns only
//     once the markers are written, so CONCURRENT_TRANSACTIONS is never
//     answered.
//   - A transaction may hold at most MaxPartitions partitions and staged
//     offsets (its end is one metastore transaction); AddPartitionsToTxn
//     beyond that answers UNKNOWN_SERVER_ERROR, as Kafka does when a
//     transaction's metadata outgrows its log's message size.
package txn
