-- Security: SCRAM credentials, ACLs, and each agent's advertised
-- listeners. Same shape as the Postgres migration; see the comments there.

CREATE TABLE scram_credentials (
	user_name  TEXT NOT NULL,
	mechanism  TEXT NOT NULL CHECK (mechanism IN ('SCRAM-SHA-256', 'SCRAM-SHA-512')),
	iterations INTEGER NOT NULL,
	salt       BLOB NOT NULL,
	stored_key BLOB NOT NULL,
	server_key BLOB NOT NULL,
	PRIMARY KEY (user_name, mechanism)
) WITHOUT ROWID;

CREATE TABLE acls (
	resource_type INTEGER NOT NULL,
	name          TEXT NOT NULL,
	pattern_type  INTEGER NOT NULL,
	principal     TEXT NOT NULL,
	host          TEXT NOT NULL,
	operation     INTEGER NOT NULL,
	permission    INTEGER NOT NULL,
	PRIMARY KEY (resource_type, name, pattern_type, principal, host, operation, permission)
) WITHOUT ROWID;

ALTER TABLE agents ADD COLUMN listeners TEXT NOT NULL DEFAULT '';
