-- Group types, group configs and share groups (KIP-848, KIP-932).
-- Independent of migrations 0002, 0004 and 0005: it only adds to 0001 and
-- 0003.

-- A group's type as ListGroups v5 reports it: classic, consumer (KIP-848)
-- or share (KIP-932). Rows saved before read classic, which they are.
ALTER TABLE groups ADD COLUMN group_type text NOT NULL DEFAULT 'classic';

-- Dynamic group configs (the GROUP config resource). Small: a handful of
-- rows for the groups someone configured.
CREATE TABLE group_configs (
	group_name text NOT NULL,
	name       text NOT NULL,
	value      text NOT NULL,
	PRIMARY KEY (group_name, name)
);

-- Share-group coordinators' claims, apart from group_owners so that the
-- two kinds of coordinator never fence each other (metastore/share.go).
CREATE TABLE share_group_owners (
	name  text PRIMARY KEY,
	epoch bigint NOT NULL
);

-- One row per share-partition (agent/share/STATE.md): the start offset and
-- the in-flight records, bounded by share.partition.max.record.locks.
-- Every write is a compare-and-set on version, so the row is rewritten
-- often and kept small: its updates stay HOT (no index covers the changing
-- columns), and dead versions are vacuumed early.
CREATE TABLE share_partitions (
	group_name   text NOT NULL,
	topic_id     uuid NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
	partition    integer NOT NULL,
	state_epoch  integer NOT NULL,
	start_offset bigint NOT NULL,
	version      bigint NOT NULL,
	state        bytea NOT NULL,
	PRIMARY KEY (group_name, topic_id, partition)
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000);
-- The cascade from topics finds rows by topic_id.
CREATE INDEX share_partitions_topic ON share_partitions (topic_id);
