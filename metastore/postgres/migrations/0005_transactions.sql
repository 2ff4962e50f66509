-- Transactions (metastore.Transactions, agent/txn): the design is in
-- agent/txn's package doc. Independent of migrations 0003 and 0004.

-- The first offset of the oldest transaction open on the partition (-1:
-- none), and one past the newest abort marker of a transaction that wrote
-- to it (0: none). Kept by the writes that change them, so a read finds
-- the last stable offset, and whether it needs the aborted list, in the
-- row it reads anyway. Fast defaults: no table rewrite, and the columns
-- carry no index, so commits' updates of the row stay HOT.
ALTER TABLE partitions
	ADD COLUMN txn_first_offset bigint NOT NULL DEFAULT -1,
	ADD COLUMN aborted_end bigint NOT NULL DEFAULT 0;

-- The first offset of the producer's open transaction on the partition,
-- -1 when none (Kafka's currentTxnFirstOffset). The partial index finds a
-- partition's open transactions when one ends (the new smallest first
-- offset); rows of producers without an open transaction are not in it,
-- so their updates do not touch it.
ALTER TABLE producer_state ADD COLUMN txn_first_offset bigint NOT NULL DEFAULT -1;
CREATE INDEX producer_state_open_txns ON producer_state (partition_id, txn_first_offset)
	WHERE txn_first_offset >= 0;

-- Each transactional id's coordinator epoch: ClaimTransaction increments
-- it; every coordinator write checks it under a share lock of this row,
-- so a claim waits for writes in flight and later writes see it. It
-- outlives the transactions row, so an epoch is never handed out twice.
CREATE TABLE txn_owners (
	id    text PRIMARY KEY,
	epoch bigint NOT NULL
);

-- One row per transactional id. producer_id is unique: the segment commit
-- finds a transactional batch's transaction by it. expires_at is set while
-- the state is Ongoing (started_at + the timeout), for the coordinators'
-- search for expired transactions.
CREATE TABLE transactions (
	transactional_id text PRIMARY KEY,
	producer_id      bigint NOT NULL UNIQUE,
	prev_producer_id bigint NOT NULL DEFAULT -1,
	epoch            smallint NOT NULL,
	last_epoch       smallint NOT NULL DEFAULT -1,
	state            text NOT NULL CHECK (state IN ('Empty', 'Ongoing', 'CompleteCommit', 'CompleteAbort')),
	timeout_ms       integer NOT NULL,
	started_at       timestamptz,
	expires_at       timestamptz,
	updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transactions_expiry ON transactions (expires_at) WHERE state = 'Ongoing';
CREATE INDEX transactions_idle ON transactions (updated_at) WHERE state <> 'Ongoing';

-- The ongoing transaction's partitions, groups and staged offsets; they
-- are emptied when it ends. No foreign keys to partitions or topics: a
-- foreign key check would lock the partition rows every commit updates;
-- DropPartition removes a dropped partition's rows itself.
CREATE TABLE txn_partitions (
	transactional_id text NOT NULL REFERENCES transactions ON DELETE CASCADE,
	partition_id     bigint NOT NULL,
	PRIMARY KEY (transactional_id, partition_id)
);
CREATE INDEX txn_partitions_partition ON txn_partitions (partition_id);

CREATE TABLE txn_groups (
	transactional_id text NOT NULL REFERENCES transactions ON DELETE CASCADE,
	group_name       text NOT NULL,
	PRIMARY KEY (transactional_id, group_name)
);

CREATE TABLE txn_offsets (
	transactional_id text NOT NULL REFERENCES transactions ON DELETE CASCADE,
	group_name       text NOT NULL,
	topic_id         uuid NOT NULL,
	partition        integer NOT NULL,
	committed_offset bigint NOT NULL,
	leader_epoch     integer NOT NULL,
	metadata         text NOT NULL,
	commit_time      timestamptz NOT NULL,
	PRIMARY KEY (transactional_id, group_name, topic_id, partition)
);
-- OffsetFetch's require_stable looks a group's staged offsets up.
CREATE INDEX txn_offsets_group ON txn_offsets (group_name, topic_id, partition);

-- Kafka's transaction index: each aborted transaction that wrote to the
-- partition, by its marker's offset, with the last stable offset right
-- after the marker. A read_committed fetch walks it from its fetch offset
-- and stops at the first entry whose last_stable_offset reaches the end
-- of what it returns. Retention removes the entries of the rows it
-- removes.
CREATE TABLE aborted_txns (
	partition_id       bigint NOT NULL,
	last_offset        bigint NOT NULL,
	producer_id        bigint NOT NULL,
	first_offset       bigint NOT NULL,
	last_stable_offset bigint NOT NULL,
	PRIMARY KEY (partition_id, last_offset)
);

-- silt_commit_segment with transactional batches: 0002's function with
-- one more array, p_txn (the batch's transactional bit), and the checks
-- Kafka's partition leader makes. 0002's function (without p_txn) stays
-- for agents of the previous version during a rolling upgrade: they
-- refuse transactional batches before committing. Result codes as
-- 0002's, and: 5 invalid transaction state (a non-transactional batch of
-- a producer whose transaction is open on the partition), 6 partition
-- not in the transaction (the transaction is not ongoing, or did not add
-- the partition), 7 no transactional id holds the producer id.
--
-- A transactional batch is accepted only while its producer's
-- transaction is Ongoing at the batch's epoch and holds the partition:
-- read here under the partition row lock that EndTransaction's markers
-- also take, so a batch never lands after its transaction's marker. The
-- producer's first batch on the partition starts the transaction there
-- (producer_state.txn_first_offset, and the partition's smallest); later
-- ones find that and need no read of the transaction.
CREATE FUNCTION silt_commit_segment(
	p_key text, p_size bigint,
	p_topic uuid[], p_part integer[], p_records integer[], p_max_ts bigint[],
	p_pid bigint[], p_epoch smallint[], p_seq integer[],
	p_chunk_off bigint[], p_chunk_len bigint[], p_pos integer[], p_len integer[], p_txn boolean[])
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
	ptxn     bigint;
	nrec     bigint;
	lastseq  bigint;
	wantseq  bigint;
	dup      boolean;
	st_found boolean;
	st_epoch smallint;
	st_first integer[];
	st_last  integer[];
	st_off   bigint[];
	st_txn   bigint;
	tx_epoch smallint;
	tx_ok    boolean;
	started  boolean;
	payload  text;
	nu       integer := 0;
	nb       integer := 0;
	upd_id   bigint[] := '{}';
	upd_hw   bigint[] := '{}';
	upd_mts  bigint[] := '{}';
	upd_b    bigint[] := '{}';
	upd_n    bigint[] := '{}';
	upd_txn  bigint[] := '{}';
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
		SELECT u.ord::integer AS idx, p.id, p.high_watermark, p.log_start_offset, p.max_timestamp, p.txn_first_offset
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
				upd_txn[nu] := ptxn;
			END IF;
			cur := r.id;
			pbytes := 0;
			prows := 0;
			hw := r.high_watermark;
			lso := r.log_start_offset;
			maxts := r.max_timestamp;
			ptxn := r.txn_first_offset;
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

		st_found := false;
		st_txn := -1;
		started := false;
		IF p_pid[i] >= 0 THEN
			SELECT ps.epoch, ps.first_seqs, ps.last_seqs, ps.base_offsets, ps.txn_first_offset
			INTO st_epoch, st_first, st_last, st_off, st_txn
			FROM producer_state ps WHERE ps.partition_id = cur AND ps.producer_id = p_pid[i];
			st_found := FOUND;
			IF NOT st_found THEN
				st_txn := -1;
			END IF;
		END IF;

		IF p_txn[i] THEN
			IF p_pid[i] < 0 THEN
				res_code[i] := 5;
				CONTINUE;
			END IF;
			-- The producer's transaction is open here at this epoch: it is
			-- ongoing and holds the partition (its end would have reset
			-- txn_first_offset under this lock). Otherwise ask it.
			IF NOT (st_found AND st_txn >= 0 AND st_epoch = p_epoch[i]) THEN
				SELECT t.epoch, t.state = 'Ongoing' AND EXISTS (
					SELECT 1 FROM txn_partitions x WHERE x.transactional_id = t.transactional_id AND x.partition_id = cur)
				INTO tx_epoch, tx_ok
				FROM transactions t WHERE t.producer_id = p_pid[i];
				IF NOT FOUND THEN
					res_code[i] := 7;
					CONTINUE;
				END IF;
				IF p_epoch[i] <> tx_epoch THEN
					res_code[i] := 3;
					CONTINUE;
				END IF;
				IF NOT tx_ok THEN
					res_code[i] := 6;
					CONTINUE;
				END IF;
				started := NOT (st_found AND st_txn >= 0);
			END IF;
		END IF;

		IF p_pid[i] >= 0 THEN
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
		IF NOT p_txn[i] AND st_found AND st_txn >= 0 THEN
			-- Kafka, after the sequence checks: a non-transactional write
			-- while the producer's transaction is open here.
			res_code[i] := 5;
			CONTINUE;
		END IF;

		res_off[i] := hw;
		maxts := greatest(maxts, p_max_ts[i]);
		IF started THEN
			st_txn := hw;
			IF ptxn < 0 THEN
				ptxn := hw;
			END IF;
		END IF;
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
			INSERT INTO producer_state (partition_id, producer_id, epoch, first_seqs, last_seqs, base_offsets, last_write, txn_first_offset)
			VALUES (cur, p_pid[i], p_epoch[i], st_first, st_last, st_off, now(), st_txn)
			ON CONFLICT (partition_id, producer_id) DO UPDATE SET
				epoch = excluded.epoch, first_seqs = excluded.first_seqs,
				last_seqs = excluded.last_seqs, base_offsets = excluded.base_offsets,
				last_write = excluded.last_write, txn_first_offset = excluded.txn_first_offset;
		END IF;
	END LOOP;
	IF dirty THEN
		nu := nu + 1;
		upd_id[nu] := cur;
		upd_hw[nu] := hw;
		upd_mts[nu] := maxts;
		upd_b[nu] := pbytes;
		upd_n[nu] := prows;
		upd_txn[nu] := ptxn;
	END IF;

	UPDATE partitions p SET high_watermark = u.hw, max_timestamp = u.mts, bytes = p.bytes + u.b, rows = p.rows + u.n,
		txn_first_offset = u.txn
	FROM unnest(upd_id, upd_hw, upd_mts, upd_b, upd_n, upd_txn) AS u(id, hw, mts, b, n, txn)
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

	-- Wake other agents' waiting fetches (delivered at commit); see 0001.
	IF nu > 0 THEN
		PERFORM silt_notify_partitions(upd_id);
	END IF;

	RETURN QUERY SELECT o.off, o.lso, o.code
	FROM unnest(res_off, res_lso, res_code) WITH ORDINALITY AS o(off, lso, code, ord)
	ORDER BY o.ord;
END;
$fn$;

-- silt_notify_partitions tells the other agents that the partitions
-- (ids) changed, as 0001's commit function does inline: the payload names
-- them as "<topic id hex>:<p>,<p>;...", "*" when that exceeds NOTIFY's
-- 8000 bytes.
CREATE FUNCTION silt_notify_partitions(p_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	payload text;
BEGIN
	SELECT string_agg(replace(x.t::text, '-', '') || ':' || x.parts, ';') INTO payload
	FROM (SELECT p.topic_id AS t, string_agg(p.partition::text, ',' ORDER BY p.partition) AS parts
		FROM partitions p WHERE p.id = ANY (p_ids) GROUP BY p.topic_id) x;
	IF payload IS NULL THEN
		RETURN;
	END IF;
	IF octet_length(payload) > 7900 THEN
		payload := '*';
	END IF;
	PERFORM pg_notify('silt_commits', payload);
END;
$fn$;

-- silt_end_txn writes the end of a transaction that the caller (Go,
-- metastore.PlanEnd, in the same transaction, holding the transaction's
-- row lock) decided: for each of its partitions, in id order under the
-- partition row lock, a marker row at the high watermark (segment id 0;
-- chunk_offset the producer id, chunk_length the epoch plus the
-- coordinator epoch times 65536, pos 1 commit / 0 abort, len the control
-- batch's 78 bytes); the producer's open transaction there ends (its epoch
-- raised to the marker's, which resets its sequences: the next batch must
-- start at 0); for an abort, the aborted transaction is recorded where it
-- wrote. The staged offsets are copied (commit) and dropped, the
-- partitions and groups dropped, and the row moves to its next state. It
-- returns the partitions written and notifies the other agents of them.
CREATE FUNCTION silt_end_txn(
	p_id text, p_coord integer, p_pid bigint, p_marker_epoch smallint, p_commit boolean,
	p_next_pid bigint, p_next_prev bigint, p_next_epoch smallint, p_next_last smallint, p_next_state text)
RETURNS TABLE (out_topic uuid, out_partition integer)
LANGUAGE plpgsql AS $fn$
DECLARE
	ts      bigint := (extract(epoch FROM now()) * 1000)::bigint;
	r       record;
	off     bigint;
	first   bigint;
	st_ep   smallint;
	opened  bigint;
	stable  bigint;
	ids     bigint[] := '{}';
	nids    integer := 0;
BEGIN
	FOR r IN
		SELECT p.id, p.topic_id, p.partition, p.high_watermark, p.log_start_offset, p.max_timestamp
		FROM partitions p
		WHERE p.id IN (SELECT x.partition_id FROM txn_partitions x WHERE x.transactional_id = p_id) AND NOT p.deleted
		ORDER BY p.id
		FOR UPDATE
	LOOP
		off := r.high_watermark;
		INSERT INTO batches (partition_id, base_offset, last_offset, max_timestamp, running_max_timestamp,
			segment_id, chunk_offset, chunk_length, pos, len)
		VALUES (r.id, off, off, ts, greatest(r.max_timestamp, ts),
			0, p_pid, (p_marker_epoch::integer & 65535)::bigint + p_coord::bigint * 65536,
			CASE WHEN p_commit THEN 1 ELSE 0 END, 78);

		first := -1;
		SELECT ps.txn_first_offset, ps.epoch INTO first, st_ep
		FROM producer_state ps WHERE ps.partition_id = r.id AND ps.producer_id = p_pid;
		IF FOUND THEN
			UPDATE producer_state SET txn_first_offset = -1, last_write = now(),
				epoch = greatest(epoch, p_marker_epoch),
				first_seqs = CASE WHEN p_marker_epoch > epoch THEN ARRAY[-1] ELSE first_seqs END,
				last_seqs = CASE WHEN p_marker_epoch > epoch THEN ARRAY[-1] ELSE last_seqs END,
				base_offsets = CASE WHEN p_marker_epoch > epoch THEN ARRAY[off] ELSE base_offsets END
			WHERE partition_id = r.id AND producer_id = p_pid;
		ELSE
			first := -1;
		END IF;

		SELECT min(ps.txn_first_offset) INTO opened
		FROM producer_state ps WHERE ps.partition_id = r.id AND ps.txn_first_offset >= 0;
		opened := coalesce(opened, -1);
		stable := CASE WHEN opened >= 0 THEN greatest(opened, r.log_start_offset) ELSE off + 1 END;
		IF first >= 0 AND NOT p_commit THEN
			INSERT INTO aborted_txns (partition_id, last_offset, producer_id, first_offset, last_stable_offset)
			VALUES (r.id, off, p_pid, first, stable);
		END IF;

		UPDATE partitions SET high_watermark = off + 1, max_timestamp = greatest(max_timestamp, ts),
			bytes = bytes + 78, rows = rows + 1, txn_first_offset = opened,
			aborted_end = CASE WHEN first >= 0 AND NOT p_commit THEN off + 1 ELSE aborted_end END
		WHERE id = r.id;

		nids := nids + 1;
		ids[nids] := r.id;
		out_topic := r.topic_id;
		out_partition := r.partition;
		RETURN NEXT;
	END LOOP;

	IF p_commit THEN
		INSERT INTO offsets AS o (group_name, topic_id, partition, committed_offset, leader_epoch, metadata, commit_time)
		SELECT s.group_name, s.topic_id, s.partition, s.committed_offset, s.leader_epoch, s.metadata, s.commit_time
		FROM txn_offsets s JOIN topics t ON t.id = s.topic_id AND t.deleted_at IS NULL
		WHERE s.transactional_id = p_id
		ON CONFLICT (group_name, topic_id, partition) DO UPDATE SET
			committed_offset = excluded.committed_offset, leader_epoch = excluded.leader_epoch,
			metadata = excluded.metadata, commit_time = excluded.commit_time;
	END IF;
	DELETE FROM txn_offsets WHERE transactional_id = p_id;
	DELETE FROM txn_partitions WHERE transactional_id = p_id;
	DELETE FROM txn_groups WHERE transactional_id = p_id;

	UPDATE transactions SET producer_id = p_next_pid, prev_producer_id = p_next_prev,
		epoch = p_next_epoch, last_epoch = p_next_last, state = p_next_state,
		started_at = NULL, expires_at = NULL, updated_at = now()
	WHERE transactional_id = p_id;

	IF nids > 0 THEN
		PERFORM silt_notify_partitions(ids);
	END IF;
END;
$fn$;
