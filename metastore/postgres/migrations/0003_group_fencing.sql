-- Fencing of group coordinators (metastore.GroupOwnership). Independent
-- of migration 0002: it only adds to the groups table of 0001.

-- The stored generation, which fenced offset commits of members check.
-- Rows saved before this migration read 0 until their coordinator saves
-- them again (it does when it loads one whose data says otherwise).
ALTER TABLE groups ADD COLUMN generation integer NOT NULL DEFAULT 0;

-- A group's ownership epoch: ClaimGroup increments it, every group write
-- checks it under a share lock on this row (so a claim waits for writes
-- in flight, and writes after a claim see its epoch). One small row per
-- group name a coordinator has loaded; it outlives the group, so that an
-- epoch is never handed out twice for one name.
CREATE TABLE group_owners (
	name  text PRIMARY KEY,
	epoch bigint NOT NULL
);
