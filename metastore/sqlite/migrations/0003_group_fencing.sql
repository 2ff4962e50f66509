-- Fencing of group coordinators (metastore.GroupOwnership); the Postgres
-- migration of the same number says why. Independent of migration 0002.

ALTER TABLE groups ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;

CREATE TABLE group_owners (
	name  TEXT PRIMARY KEY,
	epoch INTEGER NOT NULL
) WITHOUT ROWID;
