-- Storage lifecycle (janitor/): retention, reclamation of index rows and
-- segment objects, compaction into compacted objects, leases.

-- A deleted topic keeps its row (deleted_at set, its name replaced by one
-- no Kafka topic can have, so the name is free at once) and its partition
-- rows (deleted set: no lookup or commit finds them) until the janitor has
-- reclaimed their index rows in bounded steps.
ALTER TABLE topics ADD COLUMN deleted_at timestamptz;
ALTER TABLE partitions ADD COLUMN deleted boolean NOT NULL DEFAULT false;

-- What a partition's index rows hold (batch bytes as producers sent them,
-- and the row count), kept by every commit, retention step and swap in the
-- same row update: size retention and storage metrics never scan the
-- index. compacted_offset: rows below it point into compacted objects,
-- which hold compacted_bytes of the partition's bytes. cleaned_offset:
-- log compaction by key has made the log below it hold one record per key
-- (the cleaner's checkpoint: where the dirty part begins).
ALTER TABLE partitions
	ADD COLUMN bytes bigint NOT NULL DEFAULT 0,
	ADD COLUMN rows bigint NOT NULL DEFAULT 0,
	ADD COLUMN compacted_offset bigint NOT NULL DEFAULT 0,
	ADD COLUMN compacted_bytes bigint NOT NULL DEFAULT 0,
	ADD COLUMN cleaned_offset bigint NOT NULL DEFAULT 0;
UPDATE partitions p SET bytes = c.b, rows = c.n
FROM (SELECT partition_id, sum(len)::bigint AS b, count(*) AS n FROM batches GROUP BY partition_id) c
WHERE p.id = c.partition_id;

-- A segment is pending (recorded before its upload), committed (refs
-- index rows point into it) or dead (no row does, since dead_at; or an
-- orphan claimed by garbage collection): a dead segment's object is
-- deleted after a grace period, then its row. compacted: a compacted
-- object written by the janitor (format version 2).
ALTER TABLE segments
	ADD COLUMN refs integer NOT NULL DEFAULT 0,
	ADD COLUMN compacted boolean NOT NULL DEFAULT false,
	ADD COLUMN dead_at timestamptz,
	DROP CONSTRAINT segments_state_check,
	ADD CONSTRAINT segments_state_check CHECK (state IN ('pending', 'committed', 'dead'));
UPDATE segments s SET refs = c.n
FROM (SELECT segment_id, count(*)::integer AS n FROM batches GROUP BY segment_id) c
WHERE s.id = c.segment_id;
UPDATE segments SET state = 'dead', dead_at = now() WHERE state = 'committed' AND refs = 0;
CREATE INDEX segments_dead ON segments (dead_at) WHERE state = 'dead';
CREATE INDEX segments_pending ON segments (created_at) WHERE state = 'pending';

-- When the producer last wrote to the partition: state of producers idle
-- for producer.id.expiration.ms is removed by the janitor's sweep (which
-- walks the primary key: an index on last_write would make every
-- producer-state update a non-HOT one).
ALTER TABLE producer_state ADD COLUMN last_write timestamptz NOT NULL DEFAULT now();
-- Every idempotent batch rewrites its producer's row: room on each page
-- keeps those updates HOT (no index maintenance), as for partitions.
ALTER TABLE producer_state SET (fillfactor = 50);

-- Leases elect singletons (the janitor). epoch grows whenever the lease
-- changes hands or is taken again after expiring; every write made under
-- a lease checks it in its own transaction.
CREATE TABLE leases (
	name       text PRIMARY KEY,
	holder     text NOT NULL,
	epoch      bigint NOT NULL,
	expires_at timestamptz NOT NULL
);

-- silt_commit_segment (replacing 0001's) commits one segment in one statement, so a commit is
-- one round trip from the agent: the batches come as parallel arrays (one
-- element per batch, in the segment's order), the result is one row per
-- batch in the same order: the base offset, the log start offset and a
-- code (0 accepted, 1 duplicate with its original base offset, 2 out of
-- order sequence, 3 fenced epoch, 4 unknown topic or partition).
--
-- It runs in the caller's READ COMMITTED transaction:
--   1. locks the segment's row, which must be pending (SQLSTATE SL001 if it
--      is committed already, SL002 if it is missing or garbage collection
--      claimed it: its object may be gone);
--   2. locks the affected partition rows in id order, so concurrent
--      commits over overlapping partition sets queue instead of
--      deadlocking;
--   3. walks the batches by (partition, segment order), checking each
--      idempotent batch against producer_state and giving accepted ones
--      the running high watermark;
--   4. writes the new watermarks (and the partitions' byte and row counts)
--      and all batch rows with one statement each, and marks the segment
--      committed with its reference count (the rows pointing into it; a
--      segment of duplicates only is dead at once).
CREATE OR REPLACE FUNCTION silt_commit_segment(
	p_key text, p_size bigint,
	p_topic uuid[], p_part integer[], p_records integer[], p_max_ts bigint[],
	p_pid bigint[], p_epoch smallint[], p_seq integer[],
	p_chunk_off bigint[], p_chunk_len bigint[], p_pos integer[], p_len integer[])
RETURNS TABLE (out_base_offset bigint, out_log_start_offset bigint, out_code integer)
LANGUAGE plpgsql AS $fn$
DECLARE
	n        integer := coalesce(cardinality(p_topic), 0);
	seg_id   bigint;
	seg_st   text;
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
	upd_b    bigint[] := '{}';
	upd_n    bigint[] := '{}';
	pbytes   bigint;
	prows    bigint;
	b_idx    integer[] := '{}';
	b_part   bigint[] := '{}';
	b_base   bigint[] := '{}';
	b_last   bigint[] := '{}';
	b_mts    bigint[] := '{}';
	b_rmts   bigint[] := '{}';
BEGIN
	SELECT s.id, s.state INTO seg_id, seg_st FROM segments s WHERE s.key = p_key FOR UPDATE;
	IF seg_st = 'committed' THEN
		RAISE EXCEPTION 'segment % already committed', p_key USING ERRCODE = 'SL001';
	ELSIF seg_st IS DISTINCT FROM 'pending' THEN
		RAISE EXCEPTION 'segment % not pending', p_key USING ERRCODE = 'SL002';
	END IF;

	PERFORM 1 FROM partitions p
	WHERE (p.topic_id, p.partition) IN (SELECT u.t, u.pa FROM unnest(p_topic, p_part) AS u(t, pa))
	ORDER BY p.id
	FOR UPDATE;

	FOR r IN
		SELECT u.ord::integer AS idx, p.id, p.high_watermark, p.log_start_offset, p.max_timestamp
		FROM unnest(p_topic, p_part) WITH ORDINALITY AS u(t, pa, ord)
		JOIN partitions p ON p.topic_id = u.t AND p.partition = u.pa AND NOT p.deleted
		ORDER BY p.id, u.ord
	LOOP
		IF cur IS DISTINCT FROM r.id THEN
			IF dirty THEN
				nu := nu + 1;
				upd_id[nu] := cur;
				upd_hw[nu] := hw;
				upd_mts[nu] := maxts;
				upd_b[nu] := pbytes;
				upd_n[nu] := prows;
			END IF;
			cur := r.id;
			pbytes := 0;
			prows := 0;
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
		pbytes := pbytes + p_len[i];
		prows := prows + 1;
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
			INSERT INTO producer_state (partition_id, producer_id, epoch, first_seqs, last_seqs, base_offsets, last_write)
			VALUES (cur, p_pid[i], p_epoch[i], st_first, st_last, st_off, now())
			ON CONFLICT (partition_id, producer_id) DO UPDATE SET
				epoch = excluded.epoch, first_seqs = excluded.first_seqs,
				last_seqs = excluded.last_seqs, base_offsets = excluded.base_offsets,
				last_write = excluded.last_write;
		END IF;
	END LOOP;
	IF dirty THEN
		nu := nu + 1;
		upd_id[nu] := cur;
		upd_hw[nu] := hw;
		upd_mts[nu] := maxts;
		upd_b[nu] := pbytes;
		upd_n[nu] := prows;
	END IF;

	UPDATE partitions p SET high_watermark = u.hw, max_timestamp = u.mts, bytes = p.bytes + u.b, rows = p.rows + u.n
	FROM unnest(upd_id, upd_hw, upd_mts, upd_b, upd_n) AS u(id, hw, mts, b, n)
	WHERE p.id = u.id;

	UPDATE segments SET state = CASE WHEN nb > 0 THEN 'committed' ELSE 'dead' END,
		size = p_size, refs = nb, dead_at = CASE WHEN nb > 0 THEN NULL ELSE now() END
	WHERE id = seg_id;

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
	IF nu > 1500 THEN
		PERFORM pg_notify('silt_commits', '*');
	ELSIF nu > 0 THEN
		SELECT string_agg(replace(x.t::text, '-', '') || ':' || x.parts, ';') INTO payload
		FROM (SELECT p.topic_id AS t, string_agg(p.partition::text, ',' ORDER BY p.partition) AS parts
			FROM unnest(upd_id) AS u(id) JOIN partitions p ON p.id = u.id GROUP BY p.topic_id) x;
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
