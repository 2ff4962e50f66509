-- Storage lifecycle (janitor/), SQLite. Same shape as the Postgres
-- migration 0002; see the comments there for the reasons.

ALTER TABLE topics ADD COLUMN deleted_at INTEGER;
ALTER TABLE partitions ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;

ALTER TABLE partitions ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE partitions ADD COLUMN rows INTEGER NOT NULL DEFAULT 0;
ALTER TABLE partitions ADD COLUMN compacted_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE partitions ADD COLUMN compacted_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE partitions ADD COLUMN cleaned_offset INTEGER NOT NULL DEFAULT 0;
UPDATE partitions SET
	bytes = coalesce((SELECT sum(len) FROM batches b WHERE b.partition_id = partitions.id), 0),
	rows = (SELECT count(*) FROM batches b WHERE b.partition_id = partitions.id);

-- The state CHECK gains 'dead': SQLite alters constraints by rebuilding
-- the table (nothing references segments by foreign key).
CREATE TABLE segments_new (
	id         INTEGER PRIMARY KEY,
	key        TEXT NOT NULL UNIQUE,
	size       INTEGER NOT NULL DEFAULT 0,
	state      TEXT NOT NULL CHECK (state IN ('pending', 'committed', 'dead')),
	created_at INTEGER NOT NULL,
	refs       INTEGER NOT NULL DEFAULT 0,
	compacted  INTEGER NOT NULL DEFAULT 0,
	dead_at    INTEGER
);
INSERT INTO segments_new (id, key, size, state, created_at, refs)
SELECT s.id, s.key, s.size, s.state, s.created_at, coalesce(c.n, 0)
FROM segments s
LEFT JOIN (SELECT segment_id, count(*) AS n FROM batches GROUP BY segment_id) c ON c.segment_id = s.id;
DROP TABLE segments;
ALTER TABLE segments_new RENAME TO segments;
UPDATE segments SET state = 'dead', dead_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000000
WHERE state = 'committed' AND refs = 0;
CREATE INDEX segments_dead ON segments (dead_at) WHERE state = 'dead';
CREATE INDEX segments_pending ON segments (created_at) WHERE state = 'pending';

ALTER TABLE producer_state ADD COLUMN last_write INTEGER NOT NULL DEFAULT 0;
-- Existing producers count as having written now (unix microseconds).
UPDATE producer_state SET last_write = CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER);

CREATE TABLE leases (
	name       TEXT PRIMARY KEY,
	holder     TEXT NOT NULL,
	epoch      INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
