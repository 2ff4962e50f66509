package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/siltdata/silt/metastore"
)

// groupUpsert is the upsert of a group row from $1 (name) and $3-$7; it
// does not replace a group of the other kind (share against classic or
// consumer). %s is the FROM clause of its input ("" or "FROM owner").
const groupUpsert = `INSERT INTO groups (name, state, protocol_type, group_type, generation, data)
		SELECT $1, $3, $4, $5, $6, $7 %s
		ON CONFLICT (name) DO UPDATE SET state = excluded.state, protocol_type = excluded.protocol_type,
			group_type = excluded.group_type, generation = excluded.generation, data = excluded.data
		WHERE (groups.group_type = 'share') = (excluded.group_type = 'share')
		RETURNING 1`

// SaveGroup implements metastore.Store.
func (s *Store) SaveGroup(ctx context.Context, g metastore.Group) error {
	var saved bool
	err := s.pool.QueryRow(ctx, `WITH up AS (`+fmt.Sprintf(groupUpsert, "FROM (SELECT $2::bigint) AS owner")+`) SELECT EXISTS (SELECT 1 FROM up)`,
		g.Name, nil, g.State, g.ProtocolType, groupType(g.Type), g.Generation, g.Data).Scan(&saved)
	if err != nil {
		return fmt.Errorf("save group %s: %w", g.Name, err)
	}
	if !saved {
		return fmt.Errorf("save group %s as %s: %w", g.Name, groupType(g.Type), metastore.ErrGroupTypeConflict)
	}
	return nil
}

// groupType is t, or classic for "".
func groupType(t string) string {
	if t == "" {
		return metastore.GroupTypeClassic
	}
	return t
}

// LoadGroup implements metastore.Store.
func (s *Store) LoadGroup(ctx context.Context, name string) (metastore.Group, bool, error) {
	return loadGroup(ctx, s.pool, name)
}

// loadGroup reads one group through q (the pool, or a transaction).
func loadGroup(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, name string) (metastore.Group, bool, error) {
	g := metastore.Group{Name: name}
	err := q.QueryRow(ctx, `SELECT state, protocol_type, group_type, generation, data FROM groups WHERE name = $1`, name).
		Scan(&g.State, &g.ProtocolType, &g.Type, &g.Generation, &g.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		return metastore.Group{}, false, nil
	}
	if err != nil {
		return metastore.Group{}, false, err
	}
	return g, true, nil
}

// Groups implements metastore.Store.
func (s *Store) Groups(ctx context.Context) ([]metastore.Group, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, state, protocol_type, group_type, generation, data FROM groups ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []metastore.Group
	for rows.Next() {
		var g metastore.Group
		if err := rows.Scan(&g.Name, &g.State, &g.ProtocolType, &g.Type, &g.Generation, &g.Data); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// DeleteGroup implements metastore.Store.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx pgx.Tx) error { return deleteGroup(ctx, tx, name) })
}

// deleteGroup deletes a classic or consumer group and its offsets; a share
// group of that name is left alone (DeleteOwnedShareGroup deletes those).
func deleteGroup(ctx context.Context, tx pgx.Tx, name string) error {
	var isShare bool
	err := tx.QueryRow(ctx, `SELECT group_type = 'share' FROM groups WHERE name = $1`, name).Scan(&isShare)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return err
	case isShare:
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM offsets WHERE group_name = $1`, name); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `DELETE FROM groups WHERE name = $1`, name)
	return err
}

func tpArrays(tps []metastore.TopicPartition) ([]pgtype.UUID, []int32) {
	ids := make([]pgtype.UUID, len(tps))
	parts := make([]int32, len(tps))
	for i, tp := range tps {
		ids[i], parts[i] = uuidOf(tp.Topic), tp.Partition
	}
	return ids, parts
}

// offsetRows are committed offsets as the parallel arrays ($2-$7) of the
// commit statements. The last commit of a partition in a request wins:
// one INSERT cannot upsert the same key twice.
type offsetRows struct {
	ids     []pgtype.UUID
	parts   []int32
	offs    []int64
	epochs  []int32
	metas   []string
	commits []time.Time
}

func newOffsetRows(offsets []metastore.CommittedOffset) offsetRows {
	last := map[metastore.TopicPartition]int{}
	for i, o := range offsets {
		last[o.TopicPartition] = i
	}
	now := time.Now()
	var r offsetRows
	for i, o := range offsets {
		if last[o.TopicPartition] != i {
			continue
		}
		ct := o.CommitTime
		if ct.IsZero() {
			ct = now
		}
		r.ids, r.parts = append(r.ids, uuidOf(o.Topic)), append(r.parts, o.Partition)
		r.offs, r.epochs = append(r.offs, o.Offset), append(r.epochs, o.LeaderEpoch)
		r.metas, r.commits = append(r.metas, o.Metadata), append(r.commits, ct)
	}
	return r
}

// args are the statement arguments $1-$7, then extra.
func (r offsetRows) args(group string, extra ...any) []any {
	return append([]any{group, r.ids, r.parts, r.offs, r.epochs, r.metas, r.commits}, extra...)
}

// The commit statements share these parts: the input rows, those of
// existing partitions, how many are missing (when any is, nothing is
// committed), and the upsert, which runs only when cond holds as well.
const (
	offsetInput = `input AS (
			SELECT * FROM unnest($2::uuid[], $3::integer[], $4::bigint[], $5::integer[], $6::text[], $7::timestamptz[])
				AS u(topic_id, partition, committed_offset, leader_epoch, metadata, commit_time)
		), known AS (
			SELECT i.* FROM input i JOIN partitions p ON p.topic_id = i.topic_id AND p.partition = i.partition AND NOT p.deleted
		), missing AS (
			SELECT (SELECT count(*) FROM input) - (SELECT count(*) FROM known) AS n
		)`
	offsetUpsert = `ins AS (
			INSERT INTO offsets (group_name, topic_id, partition, committed_offset, leader_epoch, metadata, commit_time)
			SELECT $1, k.topic_id, k.partition, k.committed_offset, k.leader_epoch, k.metadata, k.commit_time
			FROM known k WHERE (SELECT n FROM missing) = 0 AND %s
			ON CONFLICT (group_name, topic_id, partition) DO UPDATE SET
				committed_offset = excluded.committed_offset, leader_epoch = excluded.leader_epoch,
				metadata = excluded.metadata, commit_time = excluded.commit_time
		)`
)

// CommitOffsets implements metastore.Store: one statement checks every
// partition exists and upserts the offsets, so an unknown partition
// commits nothing.
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets []metastore.CommittedOffset) error {
	r := newOffsetRows(offsets)
	if len(r.ids) == 0 {
		return nil
	}
	var missing int
	err := s.pool.QueryRow(ctx, `WITH `+offsetInput+`, `+fmt.Sprintf(offsetUpsert, "true")+`
		SELECT n::integer FROM missing`, r.args(group)...).Scan(&missing)
	if err != nil {
		return fmt.Errorf("commit offsets %s: %w", group, err)
	}
	if missing > 0 {
		return fmt.Errorf("commit offsets %s: %d partitions: %w", group, missing, metastore.ErrUnknownTopicOrPartition)
	}
	return nil
}

// FetchOffsets implements metastore.Store.
func (s *Store) FetchOffsets(ctx context.Context, group string, tps []metastore.TopicPartition) ([]metastore.CommittedOffset, error) {
	const cols = `SELECT o.topic_id, o.partition, o.committed_offset, o.leader_epoch, o.metadata, o.commit_time FROM offsets o `
	var (
		rows pgx.Rows
		err  error
	)
	if tps == nil {
		rows, err = s.pool.Query(ctx, cols+`WHERE o.group_name = $1 ORDER BY o.topic_id, o.partition`, group)
	} else {
		ids, parts := tpArrays(tps)
		rows, err = s.pool.Query(ctx, cols+`JOIN unnest($2::uuid[], $3::integer[]) AS u(topic_id, partition)
			ON u.topic_id = o.topic_id AND u.partition = o.partition
			WHERE o.group_name = $1`, group, ids, parts)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []metastore.CommittedOffset
	for rows.Next() {
		var (
			o  metastore.CommittedOffset
			id pgtype.UUID
		)
		if err := rows.Scan(&id, &o.Partition, &o.Offset, &o.LeaderEpoch, &o.Metadata, &o.CommitTime); err != nil {
			return nil, err
		}
		o.Topic = id.Bytes
		out = append(out, o)
	}
	return out, rows.Err()
}

// DeleteOffsets implements metastore.Store.
func (s *Store) DeleteOffsets(ctx context.Context, group string, tps []metastore.TopicPartition) error {
	ids, parts := tpArrays(tps)
	_, err := s.pool.Exec(ctx, `DELETE FROM offsets o USING unnest($2::uuid[], $3::integer[]) AS u(topic_id, partition)
		WHERE o.group_name = $1 AND o.topic_id = u.topic_id AND o.partition = u.partition`, group, ids, parts)
	return err
}

// RegisterAgent implements metastore.Store. Lease times use the
// database's clock, so agents with skewed clocks agree on who is live. An
// agent that registered before keeps its node id, even after its lease
// lapsed; a new agent gets the lowest node id not held by a live agent
// (expired agents' rows are reclaimed then).
func (s *Store) RegisterAgent(ctx context.Context, a metastore.Agent, ttl time.Duration) (int32, error) {
	var node int32
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, agentLock); err != nil {
			return err
		}
		listeners := metastore.FormatEndpoints(a.Listeners)
		err := tx.QueryRow(ctx, `UPDATE agents SET host = $2, port = $3, zone = $4,
			expires_at = now() + $5 * interval '1 microsecond', listeners = $6 WHERE agent_id = $1 RETURNING node_id`,
			a.ID, a.Host, a.Port, a.Zone, ttl.Microseconds(), listeners).Scan(&node)
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM agents WHERE expires_at <= now()`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO agents (agent_id, node_id, host, port, zone, expires_at, listeners)
			SELECT $1, (SELECT min(n) FROM generate_series(0, (SELECT count(*)::integer FROM agents)) AS n
				WHERE NOT EXISTS (SELECT 1 FROM agents WHERE node_id = n)),
				$2, $3, $4, now() + $5 * interval '1 microsecond', $6
			RETURNING node_id`, a.ID, a.Host, a.Port, a.Zone, ttl.Microseconds(), listeners).Scan(&node)
	})
	if err != nil {
		return 0, fmt.Errorf("register agent %s: %w", a.ID, err)
	}
	return node, nil
}

// RenewAgent implements metastore.Store.
func (s *Store) RenewAgent(ctx context.Context, agentID string, ttl time.Duration) error {
	tag, err := s.pool.Exec(ctx, `UPDATE agents SET expires_at = now() + $2 * interval '1 microsecond'
		WHERE agent_id = $1 AND expires_at > now()`, agentID, ttl.Microseconds())
	if err != nil {
		return fmt.Errorf("renew agent %s: %w", agentID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("renew agent %s: %w", agentID, metastore.ErrLeaseExpired)
	}
	return nil
}

// DeregisterAgent implements metastore.Store.
func (s *Store) DeregisterAgent(ctx context.Context, agentID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM agents WHERE agent_id = $1`, agentID)
	return err
}

// LiveAgents implements metastore.Store.
func (s *Store) LiveAgents(ctx context.Context) ([]metastore.Agent, error) {
	rows, err := s.pool.Query(ctx, `SELECT agent_id, node_id, host, port, zone, listeners,
		(extract(epoch FROM expires_at - now()) * 1000000)::bigint
		FROM agents WHERE expires_at > now() ORDER BY node_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []metastore.Agent
	for rows.Next() {
		var (
			a         metastore.Agent
			listeners string
			left      int64
		)
		if err := rows.Scan(&a.ID, &a.NodeID, &a.Host, &a.Port, &a.Zone, &listeners, &left); err != nil {
			return nil, err
		}
		if a.Listeners, err = metastore.ParseEndpoints(listeners); err != nil {
			return nil, fmt.Errorf("agent %s: %w", a.ID, err)
		}
		a.LeaseLeft = time.Duration(left) * time.Microsecond
		out = append(out, a)
	}
	return out, rows.Err()
}
