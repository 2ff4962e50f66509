-- silt metastore schema, SQLite. Same shape as the Postgres schema
-- (metastore/postgres/migrations); see the comments there for the reasons.
-- Times are unix microseconds; topic ids are 16-byte blobs.

CREATE TABLE topics (
	id      BLOB PRIMARY KEY,
	name    TEXT NOT NULL UNIQUE,
	configs TEXT NOT NULL DEFAULT '{}'
);

-- One row per partition, updated by every commit touching it: kept small.
-- max_timestamp is the largest batch max timestamp so far, used to fill
-- batches.running_max_timestamp.
CREATE TABLE partitions (
	id               INTEGER PRIMARY KEY,
	topic_id         BLOB NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
	partition        INTEGER NOT NULL,
	high_watermark   INTEGER NOT NULL DEFAULT 0,
	log_start_offset INTEGER NOT NULL DEFAULT 0,
	max_timestamp    INTEGER NOT NULL DEFAULT -1,
	UNIQUE (topic_id, partition)
);

CREATE TABLE segments (
	id         INTEGER PRIMARY KEY,
	key        TEXT NOT NULL UNIQUE,
	size       INTEGER NOT NULL DEFAULT 0,
	state      TEXT NOT NULL CHECK (state IN ('pending', 'committed')),
	created_at INTEGER NOT NULL
);

-- The batch index. Fetch walks the primary key (partition_id, last_offset).
-- running_max_timestamp is max(max_timestamp) over this batch and every
-- earlier one of the partition: it never decreases with the offset, so the
-- index on it finds "the first batch by offset whose max timestamp >= ts"
-- without scanning. segment_id has no foreign key on purpose: garbage
-- collection of segments must not make SQLite scan this table.
CREATE TABLE batches (
	partition_id          INTEGER NOT NULL REFERENCES partitions(id) ON DELETE CASCADE,
	base_offset           INTEGER NOT NULL,
	last_offset           INTEGER NOT NULL,
	max_timestamp         INTEGER NOT NULL,
	running_max_timestamp INTEGER NOT NULL,
	segment_id            INTEGER NOT NULL,
	chunk_offset          INTEGER NOT NULL,
	chunk_length          INTEGER NOT NULL,
	pos                   INTEGER NOT NULL,
	len                   INTEGER NOT NULL,
	PRIMARY KEY (partition_id, last_offset)
) WITHOUT ROWID;
CREATE INDEX batches_running_max ON batches (partition_id, running_max_timestamp, last_offset);

-- Idempotent producer state per (partition, producer): the epoch and the
-- last 5 batches as JSON [[base_seq, last_seq, base_offset], ...], oldest first.
CREATE TABLE producer_state (
	partition_id INTEGER NOT NULL REFERENCES partitions(id) ON DELETE CASCADE,
	producer_id  INTEGER NOT NULL,
	epoch        INTEGER NOT NULL,
	batches      TEXT NOT NULL,
	PRIMARY KEY (partition_id, producer_id)
) WITHOUT ROWID;

-- Producer id allocation (a sequence; SQLite has none).
CREATE TABLE producer_ids (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	value INTEGER NOT NULL
);
INSERT INTO producer_ids (id, value) VALUES (1, 0);

CREATE TABLE groups (
	name          TEXT PRIMARY KEY,
	state         TEXT NOT NULL,
	protocol_type TEXT NOT NULL,
	data          BLOB
);

CREATE TABLE offsets (
	group_name       TEXT NOT NULL,
	topic_id         BLOB NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
	partition        INTEGER NOT NULL,
	committed_offset INTEGER NOT NULL,
	leader_epoch     INTEGER NOT NULL,
	metadata         TEXT NOT NULL,
	commit_time      INTEGER NOT NULL,
	PRIMARY KEY (group_name, topic_id, partition)
) WITHOUT ROWID;
-- The cascade from topics looks offsets up by topic_id.
CREATE INDEX offsets_topic ON offsets (topic_id);

CREATE TABLE agents (
	agent_id   TEXT PRIMARY KEY,
	node_id    INTEGER NOT NULL UNIQUE,
	host       TEXT NOT NULL,
	port       INTEGER NOT NULL,
	zone       TEXT NOT NULL,
	expires_at INTEGER NOT NULL
);
