package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/siltdata/silt/metastore"
)

// SaveGroup implements metastore.Store.
func (s *Store) SaveGroup(ctx context.Context, g metastore.Group) error {
	return s.write(ctx, func(tx *sql.Tx) error { return saveGroup(ctx, tx, g) })
}

// saveGroup upserts g, unless the name holds a group of the other kind
// (share against classic or consumer): ErrGroupTypeConflict.
func saveGroup(ctx context.Context, tx *sql.Tx, g metastore.Group) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO groups (name, state, protocol_type, group_type, generation, data) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET state = excluded.state, protocol_type = excluded.protocol_type,
			group_type = excluded.group_type, generation = excluded.generation, data = excluded.data
		WHERE (groups.group_type = 'share') = (excluded.group_type = 'share')`,
		g.Name, g.State, g.ProtocolType, groupType(g.Type), g.Generation, g.Data)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(err, fmt.Errorf("save group %s as %s: %w", g.Name, groupType(g.Type), metastore.ErrGroupTypeConflict))
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
	return loadGroup(ctx, s.r.QueryRowContext, name)
}

// loadGroup reads one group with queryRow (of the reader pool, or of a
// transaction).
func loadGroup(ctx context.Context, queryRow func(context.Context, string, ...any) *sql.Row, name string) (metastore.Group, bool, error) {
	g := metastore.Group{Name: name}
	err := queryRow(ctx, `SELECT state, protocol_type, group_type, generation, data FROM groups WHERE name = ?`, name).
		Scan(&g.State, &g.ProtocolType, &g.Type, &g.Generation, &g.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return metastore.Group{}, false, nil
	}
	if err != nil {
		return metastore.Group{}, false, err
	}
	return g, true, nil
}

// Groups implements metastore.Store.
func (s *Store) Groups(ctx context.Context) ([]metastore.Group, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, state, protocol_type, group_type, generation, data FROM groups ORDER BY name`)
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
	return s.write(ctx, func(tx *sql.Tx) error { return deleteGroup(ctx, tx, name) })
}

// deleteGroup deletes a classic or consumer group and its offsets; a share
// group of that name is left alone (DeleteOwnedShareGroup deletes those).
func deleteGroup(ctx context.Context, tx *sql.Tx, name string) error {
	var isShare bool
	err := tx.QueryRowContext(ctx, `SELECT group_type = 'share' FROM groups WHERE name = ?`, name).Scan(&isShare)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return err
	case isShare:
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM offsets WHERE group_name = ?`, name); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM groups WHERE name = ?`, name)
	return err
}

// CommitOffsets implements metastore.Store.
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets []metastore.CommittedOffset) error {
	return s.write(ctx, func(tx *sql.Tx) error { return s.commitOffsets(ctx, tx, group, offsets) })
}

func (s *Store) commitOffsets(ctx context.Context, tx *sql.Tx, group string, offsets []metastore.CommittedOffset) error {
	for _, o := range offsets {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM partitions WHERE topic_id = ? AND partition = ? AND deleted = 0`, o.Topic[:], o.Partition).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("commit offsets %s: %s/%d: %w", group, o.Topic, o.Partition, metastore.ErrUnknownTopicOrPartition)
		}
		if err != nil {
			return err
		}
		ct := o.CommitTime
		if ct.IsZero() {
			ct = s.now()
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO offsets (group_name, topic_id, partition, committed_offset, leader_epoch, metadata, commit_time)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (group_name, topic_id, partition) DO UPDATE SET
			committed_offset = excluded.committed_offset, leader_epoch = excluded.leader_epoch,
			metadata = excluded.metadata, commit_time = excluded.commit_time`,
			group, o.Topic[:], o.Partition, o.Offset, o.LeaderEpoch, o.Metadata, ct.UnixMicro()); err != nil {
			return err
		}
	}
	return nil
}

// FetchOffsets implements metastore.Store.
func (s *Store) FetchOffsets(ctx context.Context, group string, tps []metastore.TopicPartition) ([]metastore.CommittedOffset, error) {
	const cols = `SELECT topic_id, partition, committed_offset, leader_epoch, metadata, commit_time FROM offsets WHERE group_name = ?`
	scan := func(rows *sql.Rows, out []metastore.CommittedOffset) ([]metastore.CommittedOffset, error) {
		defer rows.Close()
		for rows.Next() {
			var (
				o  metastore.CommittedOffset
				id []byte
				ct int64
			)
			if err := rows.Scan(&id, &o.Partition, &o.Offset, &o.LeaderEpoch, &o.Metadata, &ct); err != nil {
				return nil, err
			}
			copy(o.Topic[:], id)
			o.CommitTime = time.UnixMicro(ct)
			out = append(out, o)
		}
		return out, rows.Err()
	}
	if tps == nil {
		rows, err := s.r.QueryContext(ctx, cols+` ORDER BY topic_id, partition`, group)
		if err != nil {
			return nil, err
		}
		return scan(rows, nil)
	}
	var out []metastore.CommittedOffset
	err := s.read(ctx, func(tx *sql.Tx) error {
		for _, tp := range tps {
			rows, err := tx.QueryContext(ctx, cols+` AND topic_id = ? AND partition = ?`, group, tp.Topic[:], tp.Partition)
			if err != nil {
				return err
			}
			if out, err = scan(rows, out); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// DeleteOffsets implements metastore.Store.
func (s *Store) DeleteOffsets(ctx context.Context, group string, tps []metastore.TopicPartition) error {
	return s.write(ctx, func(tx *sql.Tx) error { return deleteOffsets(ctx, tx, group, tps) })
}

func deleteOffsets(ctx context.Context, tx *sql.Tx, group string, tps []metastore.TopicPartition) error {
	for _, tp := range tps {
		if _, err := tx.ExecContext(ctx, `DELETE FROM offsets WHERE group_name = ? AND topic_id = ? AND partition = ?`,
			group, tp.Topic[:], tp.Partition); err != nil {
			return err
		}
	}
	return nil
}

// RegisterAgent implements metastore.Store. An agent that registered
// before keeps its node id, even after its lease lapsed; a new agent gets
// the lowest node id not held by a live agent (expired agents' rows are
// reclaimed at that moment).
func (s *Store) RegisterAgent(ctx context.Context, a metastore.Agent, ttl time.Duration) (int32, error) {
	var node int32
	err := s.write(ctx, func(tx *sql.Tx) error {
		now := s.now()
		exp := now.Add(ttl).UnixMicro()
		listeners := metastore.FormatEndpoints(a.Listeners)
		err := tx.QueryRowContext(ctx, `UPDATE agents SET host = ?, port = ?, zone = ?, expires_at = ?, listeners = ? WHERE agent_id = ? RETURNING node_id`,
			a.Host, a.Port, a.Zone, exp, listeners, a.ID).Scan(&node)
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM agents WHERE expires_at <= ?`, now.UnixMicro()); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT node_id FROM agents ORDER BY node_id`)
		if err != nil {
			return err
		}
		node = 0
		for rows.Next() {
			var n int32
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			if n == node {
				node++
			} else if n > node {
				break
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO agents (agent_id, node_id, host, port, zone, expires_at, listeners) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			a.ID, node, a.Host, a.Port, a.Zone, exp, listeners)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("register agent %s: %w", a.ID, err)
	}
	return node, nil
}

// RenewAgent implements metastore.Store.
func (s *Store) RenewAgent(ctx context.Context, agentID string, ttl time.Duration) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		now := s.now()
		res, err := tx.ExecContext(ctx, `UPDATE agents SET expires_at = ? WHERE agent_id = ? AND expires_at > ?`,
			now.Add(ttl).UnixMicro(), agentID, now.UnixMicro())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("renew agent %s: %w", agentID, metastore.ErrLeaseExpired)
		}
		return nil
	})
}

// DeregisterAgent implements metastore.Store.
func (s *Store) DeregisterAgent(ctx context.Context, agentID string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM agents WHERE agent_id = ?`, agentID)
		return err
	})
}

// LiveAgents implements metastore.Store.
func (s *Store) LiveAgents(ctx context.Context) ([]metastore.Agent, error) {
	now := s.now().UnixMicro()
	rows, err := s.r.QueryContext(ctx, `SELECT agent_id, node_id, host, port, zone, listeners, expires_at FROM agents WHERE expires_at > ? ORDER BY node_id`, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []metastore.Agent
	for rows.Next() {
		var (
			a         metastore.Agent
			listeners string
			exp       int64
		)
		if err := rows.Scan(&a.ID, &a.NodeID, &a.Host, &a.Port, &a.Zone, &listeners, &exp); err != nil {
			return nil, err
		}
		if a.Listeners, err = metastore.ParseEndpoints(listeners); err != nil {
			return nil, fmt.Errorf("agent %s: %w", a.ID, err)
		}
		a.LeaseLeft = time.Duration(exp-now) * time.Microsecond
		out = append(out, a)
	}
	return out, rows.Err()
}
