-- Transactions (metastore.Transactions, agent/txn), SQLite. Same shape as
-- the Postgres migration 0005; see the comments there and agent/txn's
-- package doc for the reasons. Times are unix microseconds.

ALTER TABLE partitions ADD COLUMN txn_first_offset INTEGER NOT NULL DEFAULT -1;
ALTER TABLE partitions ADD COLUMN aborted_end INTEGER NOT NULL DEFAULT 0;

ALTER TABLE producer_state ADD COLUMN txn_first_offset INTEGER NOT NULL DEFAULT -1;
CREATE INDEX producer_state_open_txns ON producer_state (partition_id, txn_first_offset)
	WHERE txn_first_offset >= 0;

CREATE TABLE txn_owners (
	id    TEXT PRIMARY KEY,
	epoch INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE transactions (
	transactional_id TEXT PRIMARY KEY,
	producer_id      INTEGER NOT NULL UNIQUE,
	prev_producer_id INTEGER NOT NULL DEFAULT -1,
	epoch            INTEGER NOT NULL,
	last_epoch       INTEGER NOT NULL DEFAULT -1,
	state            TEXT NOT NULL CHECK (state IN ('Empty', 'Ongoing', 'CompleteCommit', 'CompleteAbort')),
	timeout_ms       INTEGER NOT NULL,
	started_at       INTEGER,
	expires_at       INTEGER,
	updated_at       INTEGER NOT NULL
);
CREATE INDEX transactions_expiry ON transactions (expires_at) WHERE state = 'Ongoing';
CREATE INDEX transactions_idle ON transactions (updated_at) WHERE state <> 'Ongoing';

CREATE TABLE txn_partitions (
	transactional_id TEXT NOT NULL REFERENCES transactions ON DELETE CASCADE,
	partition_id     INTEGER NOT NULL,
	PRIMARY KEY (transactional_id, partition_id)
) WITHOUT ROWID;
CREATE INDEX txn_partitions_partition ON txn_partitions (partition_id);

CREATE TABLE txn_groups (
	transactional_id TEXT NOT NULL REFERENCES transactions ON DELETE CASCADE,
	group_name       TEXT NOT NULL,
	PRIMARY KEY (transactional_id, group_name)
) WITHOUT ROWID;

CREATE TABLE txn_offsets (
	transactional_id TEXT NOT NULL REFERENCES transactions ON DELETE CASCADE,
	group_name       TEXT NOT NULL,
	topic_id         BLOB NOT NULL,
	partition        INTEGER NOT NULL,
	committed_offset INTEGER NOT NULL,
	leader_epoch     INTEGER NOT NULL,
	metadata         TEXT NOT NULL,
	commit_time      INTEGER NOT NULL,
	PRIMARY KEY (transactional_id, group_name, topic_id, partition)
) WITHOUT ROWID;
CREATE INDEX txn_offsets_group ON txn_offsets (group_name, topic_id, partition);

CREATE TABLE aborted_txns (
	partition_id       INTEGER NOT NULL,
	last_offset        INTEGER NOT NULL,
	producer_id        INTEGER NOT NULL,
	first_offset       INTEGER NOT NULL,
	last_stable_offset INTEGER NOT NULL,
	PRIMARY KEY (partition_id, last_offset)
) WITHOUT ROWID;
