package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/siltdata/silt/metastore"
)

// CreateTopic implements metastore.Store.
func (s *Store) CreateTopic(ctx context.Context, spec metastore.TopicSpec) (metastore.Topic, error) {
	if err := metastore.ValidateTopicName(spec.Name); err != nil {
		return metastore.Topic{}, err
	}
	if spec.Partitions < 1 {
		return metastore.Topic{}, fmt.Errorf("create topic %s: %w: %d", spec.Name, metastore.ErrInvalidPartitions, spec.Partitions)
	}
	id := spec.ID
	if id.IsZero() {
		id = metastore.NewTopicID()
	}
	configs := spec.Configs
	if configs == nil {
		configs = map[string]string{}
	}
	cj, err := json.Marshal(configs)
	if err != nil {
		return metastore.Topic{}, err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		var exists int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM topics WHERE name = ? OR id = ?`, spec.Name, id[:]).Scan(&exists)
		if err == nil {
			return fmt.Errorf("create topic %s: %w", spec.Name, metastore.ErrTopicExists)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO topics (id, name, configs) VALUES (?, ?, ?)`, id[:], spec.Name, string(cj)); err != nil {
			return err
		}
		return addPartitions(ctx, tx, id, 0, spec.Partitions)
	})
	if err != nil {
		return metastore.Topic{}, err
	}
	return metastore.Topic{Name: spec.Name, ID: id, Partitions: spec.Partitions, Configs: cloneConfigs(configs)}, nil
}

func addPartitions(ctx context.Context, tx *sql.Tx, id metastore.TopicID, from, to int32) error {
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO partitions (topic_id, partition) VALUES (?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for p := from; p < to; p++ {
		if _, err := stmt.ExecContext(ctx, id[:], p); err != nil {
			return err
		}
	}
	return nil
}

func cloneConfigs(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// DeleteTopic implements metastore.Store: the topic row stays, renamed to a
// name no Kafka topic can have, until the janitor has reclaimed its
// partitions (Lifecycle.Retain, DropPartition).
func (s *Store) DeleteTopic(ctx context.Context, name string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var id []byte
		err := tx.QueryRowContext(ctx, `UPDATE topics SET name = '/deleted/' || lower(hex(id)), deleted_at = ?
			WHERE name = ? AND deleted_at IS NULL RETURNING id`, s.now().UnixMicro(), name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("delete topic %s: %w", name, metastore.ErrUnknownTopic)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE partitions SET deleted = 1 WHERE topic_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM offsets WHERE topic_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM share_partitions WHERE topic_id = ?`, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM producer_state WHERE partition_id IN (SELECT id FROM partitions WHERE topic_id = ?)`, id)
		return err
	})
}

// topicSelect selects live topics; callers add "AND ..." conditions.
const topicSelect = `SELECT t.id, t.name, t.configs,
	(SELECT count(*) FROM partitions p WHERE p.topic_id = t.id) FROM topics t WHERE t.deleted_at IS NULL `

func scanTopic(row interface{ Scan(...any) error }) (metastore.Topic, error) {
	var (
		t   metastore.Topic
		id  []byte
		cfg string
	)
	if err := row.Scan(&id, &t.Name, &cfg, &t.Partitions); err != nil {
		return t, err
	}
	copy(t.ID[:], id)
	t.Configs = map[string]string{}
	if err := json.Unmarshal([]byte(cfg), &t.Configs); err != nil {
		return t, fmt.Errorf("topic %s: configs: %w", t.Name, err)
	}
	return t, nil
}

// Topic implements metastore.Store.
func (s *Store) Topic(ctx context.Context, name string) (metastore.Topic, error) {
	t, err := scanTopic(s.r.QueryRowContext(ctx, topicSelect+`AND t.name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("topic %s: %w", name, metastore.ErrUnknownTopic)
	}
	return t, err
}

// TopicByID implements metastore.Store.
func (s *Store) TopicByID(ctx context.Context, id metastore.TopicID) (metastore.Topic, error) {
	t, err := scanTopic(s.r.QueryRowContext(ctx, topicSelect+`AND t.id = ?`, id[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("topic id %s: %w", id, metastore.ErrUnknownTopic)
	}
	return t, err
}

// Topics implements metastore.Store.
func (s *Store) Topics(ctx context.Context) ([]metastore.Topic, error) {
	rows, err := s.r.QueryContext(ctx, topicSelect+`ORDER BY t.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []metastore.Topic
	for rows.Next() {
		t, err := scanTopic(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// CreatePartitions implements metastore.Store.
func (s *Store) CreatePartitions(ctx context.Context, name string, count int32) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var (
			id  []byte
			cur int32
		)
		err := tx.QueryRowContext(ctx, `SELECT t.id, (SELECT count(*) FROM partitions p WHERE p.topic_id = t.id)
			FROM topics t WHERE t.name = ?`, name).Scan(&id, &cur)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("create partitions %s: %w", name, metastore.ErrUnknownTopic)
		}
		if err != nil {
			return err
		}
		if count <= cur {
			return fmt.Errorf("create partitions %s: %w: %d, the topic has %d", name, metastore.ErrInvalidPartitions, count, cur)
		}
		return addPartitions(ctx, tx, metastore.TopicID(id), cur, count)
	})
}

// AlterTopicConfigs implements metastore.Store.
func (s *Store) AlterTopicConfigs(ctx context.Context, name string, changes map[string]*string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var cfg string
		err := tx.QueryRowContext(ctx, `SELECT configs FROM topics WHERE name = ?`, name).Scan(&cfg)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("alter topic configs %s: %w", name, metastore.ErrUnknownTopic)
		}
		if err != nil {
			return err
		}
		m := map[string]string{}
		if err := json.NewDecoder(strings.NewReader(cfg)).Decode(&m); err != nil {
			return err
		}
		for k, v := range changes {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = *v
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE topics SET configs = ? WHERE name = ?`, string(b), name)
		return err
	})
}
