-- Group types, group configs and share groups (KIP-848, KIP-932); the
-- Postgres migration of the same number says why. Independent of
-- migrations 0002, 0004 and 0005: it only adds to 0001 and 0003.

ALTER TABLE groups ADD COLUMN group_type TEXT NOT NULL DEFAULT 'classic';

CREATE TABLE group_configs (
	group_name TEXT NOT NULL,
	name       TEXT NOT NULL,
	value      TEXT NOT NULL,
	PRIMARY KEY (group_name, name)
) WITHOUT ROWID;

CREATE TABLE share_group_owners (
	name  TEXT PRIMARY KEY,
	epoch INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE share_partitions (
	group_name   TEXT NOT NULL,
	topic_id     BLOB NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
	partition    INTEGER NOT NULL,
	state_epoch  INTEGER NOT NULL,
	start_offset INTEGER NOT NULL,
	version      INTEGER NOT NULL,
	state        BLOB NOT NULL,
	PRIMARY KEY (group_name, topic_id, partition)
) WITHOUT ROWID;
CREATE INDEX share_partitions_topic ON share_partitions (topic_id);
