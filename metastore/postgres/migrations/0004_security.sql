-- Security: SCRAM credentials, ACLs, and each agent's advertised
-- listeners. (0002 and 0003 are other changes' numbers.)

-- One row per user and mechanism. Only what a SCRAM server needs (RFC
-- 5802): never the password nor the salted password.
CREATE TABLE scram_credentials (
	user_name  text NOT NULL,
	mechanism  text NOT NULL CHECK (mechanism IN ('SCRAM-SHA-256', 'SCRAM-SHA-512')),
	iterations integer NOT NULL,
	salt       bytea NOT NULL,
	stored_key bytea NOT NULL,
	server_key bytea NOT NULL,
	PRIMARY KEY (user_name, mechanism)
);

-- Access control entries, with Kafka's wire codes. Every agent caches the
-- whole table; the whole row is the key (Kafka's ACL bindings are a set).
CREATE TABLE acls (
	resource_type smallint NOT NULL,
	name          text NOT NULL,
	pattern_type  smallint NOT NULL,
	principal     text NOT NULL,
	host          text NOT NULL,
	operation     smallint NOT NULL,
	permission    smallint NOT NULL,
	PRIMARY KEY (resource_type, name, pattern_type, principal, host, operation, permission)
);

-- Any change to the ACLs tells every agent (LISTEN silt_acls) to reload
-- its cache; one notification per statement, delivered at commit.
CREATE FUNCTION silt_acls_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
	PERFORM pg_notify('silt_acls', '');
	RETURN NULL;
END;
$fn$;
CREATE TRIGGER acls_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON acls
	FOR EACH STATEMENT EXECUTE FUNCTION silt_acls_changed();

-- Advertised listeners, "NAME://host:port,..." (metastore.FormatEndpoints).
ALTER TABLE agents ADD COLUMN listeners text NOT NULL DEFAULT '';
