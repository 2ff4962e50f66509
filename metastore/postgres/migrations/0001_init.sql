-- silt metastore schema, Postgres. The SQLite schema has the same shape.

CREATE TABLE topics (
	id      uuid PRIMARY KEY,
	name    text NOT NULL UNIQUE,
	configs jsonb NOT NULL DEFAULT '{}'
);

-- One row per partition, updated by every commit that touches it. It is
-- kept small and carries no index on the columns a commit changes, so
-- those updates are HOT (heap-only: no index maintenance, dead versions
-- pruned within the page); fillfactor leaves room on each page for them.
-- max_timestamp is the largest batch max timestamp so far, used to fill
-- batches.running_max_timestamp.
CREATE TABLE partitions (
	id               bigserial PRIMARY KEY,
	topic_id         uuid NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
	partition        integer NOT NULL,
	high_watermark   bigint NOT NULL DEFAULT 0,
	log_start_offset bigint NOT NULL DEFAULT 0,
	max_timestamp    bigint NOT NULL DEFAULT -1,
	UNIQUE (topic_id, partition)
) WITH (fillfactor = 50);

CREATE TABLE segments (
	id         bigserial PRIMARY KEY,
	key        text NOT NULL UNIQUE,
	size       bigint NOT NULL DEFAULT 0,
	state      text NOT NULL CHECK (state IN ('pending', 'committed')),
	created_at timestamptz NOT NULL DEFAULT now()
);

-- The batch index. Fetch walks the primary key (partition_id, last_offset).
--
-- running_max_timestamp is max(max_timestamp) over this batch and all
-- earlier ones of the partition. It never decreases with the offset, so
-- the first index entry (partition_id, running_max_timestamp >= ts) is the
-- first batch by offset whose own max timestamp is >= ts: ListOffsets by
-- time is one index probe, not a scan.
--
-- No foreign keys: partition_id's cascade is done by DeleteTopic itself
-- (under the partition row locks) to keep a per-row trigger off the
-- commit path; segment_id must not make segment garbage collection scan
-- this table.
--
-- Autovacuum: this table only grows by inserts and shrinks by retention
-- deletes, and it gets large (hundreds of millions of rows). The default
-- scale factors (20% dead / 20% inserted) would let vacuum fall far
-- behind on such a table: dead index entries pile up after retention and
-- the visibility map goes stale, so the index-only probes fetch go back to
-- the heap. Fixed thresholds make vacuum run after a bounded amount of
-- change however large the table is, and frequent analyze keeps the
-- planner's picture of the ever-growing offset ranges current.
CREATE TABLE batches (
	partition_id          bigint NOT NULL,
	base_offset           bigint NOT NULL,
	last_offset           bigint NOT NULL,
	max_timestamp         bigint NOT NULL,
	running_max_timestamp bigint NOT NULL,
	segment_id            bigint NOT NULL,
	chunk_offset          bigint NOT NULL,
	chunk_length          bigint NOT NULL,
	pos                   integer NOT NULL,
	len                   integer NOT NULL,
	PRIMARY KEY (partition_id, last_offset)
) WITH (
	autovacuum_vacuum_scale_factor = 0,
	autovacuum_vacuum_threshold = 50000,
	autovacuum_vacuum_insert_scale_factor = 0,
	autovacuum_vacuum_insert_threshold = 200000,
	autovacuum_analyze_scale_factor = 0,
	autovacuum_analyze_threshold = 200000
);
CREATE INDEX batches_running_max ON batches (partition_id, running_max_timestamp, last_offset);

-- Idempotent producer state per (partition, producer), as Kafka's
-- ProducerStateManager keeps it: the epoch and the last 5 batches
-- (parallel arrays, oldest first). Only changed under the partition's row
-- lock.
CREATE TABLE producer_state (
	partition_id bigint NOT NULL REFERENCES partitions (id) ON DELETE CASCADE,
	producer_id  bigint NOT NULL,
	epoch        smallint NOT NULL,
	first_seqs   integer[] NOT NULL,
	last_seqs    integer[] NOT NULL,
	base_offsets bigint[] NOT NULL,
	PRIMARY KEY (partition_id, producer_id)
);

CREATE SEQUENCE producer_ids;

CREATE TABLE groups (
	name          text PRIMARY KEY,
	state         text NOT NULL,
	protocol_type text NOT NULL,
	data          bytea
);

CREATE TABLE offsets (
	group_name       text NOT NULL,
	topic_id         uuid NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
	partition        integer NOT NULL,
	committed_offset bigint NOT NULL,
	leader_epoch     integer NOT NULL,
	metadata         text NOT NULL,
	commit_time      timestamptz NOT NULL,
	PRIMARY KEY (group_name, topic_id, partition)
);
-- The cascade from topics finds offsets by topic_id.
CREATE INDEX offsets_topic ON offsets (topic_id);

CREATE TABLE agents (
	agent_id   text PRIMARY KEY,
	node_id    integer NOT NULL UNIQUE,
	host       text NOT NULL,
	port       integer NOT NULL,
	zone       text NOT NULL,
	expires_at timestamptz NOT NULL
);

-- silt_commit_segment commits one segment in one statement, so a commit is
-- one round trip from the agent: the batches come as parallel arrays (one
-- element per batch, in the segment's order), the result is one row per
-- batch in the same order: the base offset, the log start offset and a
-- code (0 accepted, 1 duplicate with its original base offset, 2 out of
-- order sequence, 3 fenced epoch, 4 unknown topic or partition).
--
-- It runs in the caller's READ COMMITTED transaction:
--   1. records the segment as committed (SQLSTATE SL001 if it already is);
--   2. locks the affected partition rows in id order, so concurrent
--      commits over overlapping partition sets queue instead of
--      deadlocking;
--   3. walks the batches by (partition, segment order), checking each
--      idempotent batch against producer_state and giving accepted ones
--      the running high watermark;
--   4. writes the new watermarks and all batch rows with one statement each.
CREATE FUNCTION silt_commit_segment(
	p_key text, p_size bigint,
	p_topic uuid[], p_part integer[], p_records integer[], p_max_ts bigint[],
	p_pid bigint[], p_epoch smallint[], p_seq integer[],
	p_chunk_off bigint[], p_chunk_len bigint[], p_pos integer[], p_len integer[])
RETURNS TABLE (out_base_offset bigint, out_log_start_offset bigint, out_code integer)
LANGUAGE plpgsql AS $fn$
DECLARE
	n        integer := coalesce(cardinality(p_topic), 0);
	seg_id   bigint;
	r        record;
	i        integer;
	k        integer;
	res_off  bigint[] := array_fill(-1::bigint, ARRAY[n]);
	res_lso  bigint[] := array_fill(-1::bigint, ARRAY[n]);
	res_code integer[] := array_fill(4, ARRAY[n]);
	cur      bigint := NULL;
	dirty    boolean := false;
	hw       bigint;
	lso      bigint;
	maxts    bigint;
	nrec     bigint;
	lastseq  bigint;
	wantseq  bigint;
	dup      boolean;
	st_found boolean;
	st_epoch smallint;
	st_first integer[];
	st_last  integer[];
	st_off   bigint[];
	payload  text;
	nu       integer := 0;
	nb       integer := 0;
	upd_id   bigint[] := '{}';
	upd_hw   bigint[] := '{}';
	upd_mts  bigint[] := '{}';
	b_idx    integer[] := '{}';
	b_part   bigint[] := '{}';
	b_base   bigint[] := '{}';
	b_last   bigint[] := '{}';
	b_mts    bigint[] := '{}';
	b_rmts   bigint[] := '{}';
BEGIN
	INSERT INTO segments AS s (key, size, state) VALUES (p_key, p_size, 'committed')
	ON CONFLICT (key) DO UPDATE SET state = 'committed', size = excluded.size WHERE s.state = 'pending'
	RETURNING s.id INTO seg_id;
	IF seg_id IS NULL THEN
		RAISE EXCEPTION 'segment % already committed', p_key USING ERRCODE = 'SL001';
	END IF;

	PERFORM 1 FROM partitions p
	WHERE (p.topic_id, p.partition) IN (SELECT u.t, u.pa FROM unnest(p_topic, p_part) AS u(t, pa))
	ORDER BY p.id
	FOR UPDATE;

	FOR r IN
		SELECT u.ord::integer AS idx, p.id, p.high_watermark, p.log_start_offset, p.max_timestamp
		FROM unnest(p_topic, p_part) WITH ORDINALITY AS u(t, pa, ord)
		JOIN partitions p ON p.topic_id = u.t AND p.partition = u.pa
		ORDER BY p.id, u.ord
	LOOP
		IF cur IS DISTINCT FROM r.id THEN
			IF dirty THEN
				nu := nu + 1;
				upd_id[nu] := cur;
				upd_hw[nu] := hw;
				upd_mts[nu] := maxts;
			END IF;
			cur := r.id;
			hw := r.high_watermark;
			lso := r.log_start_offset;
			maxts := r.max_timestamp;
			dirty := false;
		END IF;
		i := r.idx;
		res_lso[i] := lso;
		res_code[i] := 0;
		nrec := greatest(p_records[i], 1);
		lastseq := p_seq[i]::bigint + nrec - 1;
		IF lastseq > 2147483647 THEN
			lastseq := lastseq - 2147483648; -- sequences wrap to 0
		END IF;

		IF p_pid[i] >= 0 THEN
			SELECT ps.epoch, ps.first_seqs, ps.last_seqs, ps.base_offsets
			INTO st_epoch, st_first, st_last, st_off
			FROM producer_state ps WHERE ps.partition_id = cur AND ps.producer_id = p_pid[i];
			st_found := FOUND;
			-- No state: any sequence is accepted (KIP-360).
			IF st_found THEN
				IF p_epoch[i] < st_epoch THEN
					res_code[i] := 3;
					CONTINUE;
				ELSIF p_epoch[i] > st_epoch THEN
					IF p_seq[i] <> 0 THEN
						res_code[i] := 2;
						CONTINUE;
					END IF;
				ELSE
					dup := false;
					FOR k IN 1 .. cardinality(st_first) LOOP
						IF st_first[k] = p_seq[i] AND st_last[k] = lastseq THEN
							res_code[i] := 1;
							res_off[i] := st_off[k];
							dup := true;
							EXIT;
						END IF;
					END LOOP;
					IF dup THEN
						CONTINUE;
					END IF;
					wantseq := st_last[cardinality(st_last)]::bigint + 1;
					IF wantseq > 2147483647 THEN
						wantseq := 0;
					END IF;
					IF p_seq[i] <> wantseq THEN
						res_code[i] := 2;
						CONTINUE;
					END IF;
				END IF;
			END IF;
		END IF;

		res_off[i] := hw;
		maxts := greatest(maxts, p_max_ts[i]);
		-- Subscript assignment extends the arrays in place (plpgsql keeps
		-- them expanded); "a := a || x" would copy each time.
		nb := nb + 1;
		b_idx[nb] := i;
		b_part[nb] := cur;
		b_base[nb] := hw;
		b_last[nb] := hw + nrec - 1;
		b_mts[nb] := p_max_ts[i];
		b_rmts[nb] := maxts;
		hw := hw + nrec;
		dirty := true;

		IF p_pid[i] >= 0 THEN
			IF NOT st_found OR p_epoch[i] <> st_epoch THEN
				st_first := ARRAY[p_seq[i]];
				st_last := ARRAY[lastseq::integer];
				st_off := ARRAY[res_off[i]];
			ELSE
				st_first := st_first || p_seq[i];
				st_last := st_last || lastseq::integer;
				st_off := st_off || res_off[i];
				k := cardinality(st_first);
				IF k > 5 THEN -- Kafka remembers the last 5 batches
					st_first := st_first[k - 4 : k];
					st_last := st_last[k - 4 : k];
					st_off := st_off[k - 4 : k];
				END IF;
			END IF;
			INSERT INTO producer_state (partition_id, producer_id, epoch, first_seqs, last_seqs, base_offsets)
			VALUES (cur, p_pid[i], p_epoch[i], st_first, st_last, st_off)
			ON CONFLICT (partition_id, producer_id) DO UPDATE SET
				epoch = excluded.epoch, first_seqs = excluded.first_seqs,
				last_seqs = excluded.last_seqs, base_offsets = excluded.base_offsets;
		END IF;
	END LOOP;
	IF dirty THEN
		nu := nu + 1;
		upd_id[nu] := cur;
		upd_hw[nu] := hw;
		upd_mts[nu] := maxts;
	END IF;

	UPDATE partitions p SET high_watermark = u.hw, max_timestamp = u.mts
	FROM unnest(upd_id, upd_hw, upd_mts) AS u(id, hw, mts)
	WHERE p.id = u.id;

	-- b_idx holds each accepted batch's index in the input arrays, where
	-- its location in the object is.
	INSERT INTO batches (partition_id, base_offset, last_offset, max_timestamp, running_max_timestamp,
		segment_id, chunk_offset, chunk_length, pos, len)
	SELECT a.part, a.base, a.last, a.mts, a.rmts, seg_id,
		p_chunk_off[a.idx], p_chunk_len[a.idx], p_pos[a.idx], p_len[a.idx]
	FROM unnest(b_idx, b_part, b_base, b_last, b_mts, b_rmts) AS a(idx, part, base, last, mts, rmts);

	-- Wake other agents' waiting fetches (delivered at commit). The payload
	-- names the partitions as "<topic id hex>:<p>,<p>;..."; NOTIFY payloads
	-- are limited to 8000 bytes, so a larger list becomes "*" (anything may
	-- have changed). Notifying transactions serialize briefly at commit on
	-- the notification queue lock: one notify per segment keeps that cheap.
	IF nu > 0 THEN
		SELECT string_agg(replace(x.t::text, '-', '') || ':' || x.parts, ';') INTO payload
		FROM (SELECT p.topic_id AS t, string_agg(p.partition::text, ',' ORDER BY p.partition) AS parts
			FROM partitions p WHERE p.id = ANY (upd_id) GROUP BY p.topic_id) x;
		IF octet_length(payload) > 7900 THEN
			payload := '*';
		END IF;
		PERFORM pg_notify('silt_commits', payload);
	END IF;

	RETURN QUERY SELECT o.off, o.lso, o.code
	FROM unnest(res_off, res_lso, res_code) WITH ORDINALITY AS o(off, lso, code, ord)
	ORDER BY o.ord;
END;
$fn$;
