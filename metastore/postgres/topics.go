package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

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
	configs := maps.Clone(spec.Configs)
	if configs == nil {
		configs = map[string]string{}
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO topics (id, name, configs) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			uuidOf(id), spec.Name, configs)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("create topic %s: %w", spec.Name, metastore.ErrTopicExists)
		}
		_, err = tx.Exec(ctx, `INSERT INTO partitions (topic_id, partition) SELECT $1, generate_series(0, $2 - 1)`,
			uuidOf(id), spec.Partitions)
		return err
	})
	if err != nil {
		return metastore.Topic{}, err
	}
	return metastore.Topic{Name: spec.Name, ID: id, Partitions: spec.Partitions, Configs: maps.Clone(configs)}, nil
}

// DeleteTopic implements metastore.Store: the topic row stays, renamed to a
// name no Kafka topic can have, and its partitions are marked deleted (no
// lookup or commit finds them from then on) until the janitor has
// reclaimed their index rows (Lifecycle.Retain, DropPartition).
func (s *Store) DeleteTopic(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		var id pgtype.UUID
		err := tx.QueryRow(ctx, `UPDATE topics SET name = '/deleted/' || id::text, deleted_at = now()
			WHERE name = $1 AND deleted_at IS NULL RETURNING id`, name).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("delete topic %s: %w", name, metastore.ErrUnknownTopic)
		}
		if err != nil {
			return err
		}
		// In the order commits lock partition rows: a commit in flight
		// finishes first, or finds the partitions deleted.
		if _, err := tx.Exec(ctx, `UPDATE partitions SET deleted = true WHERE id IN (
			SELECT id FROM partitions WHERE topic_id = $1 ORDER BY id FOR UPDATE)`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM producer_state WHERE partition_id IN (SELECT id FROM partitions WHERE topic_id = $1)`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM share_partitions WHERE topic_id = $1`, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM offsets WHERE topic_id = $1`, id)
		return err
	})
}

// topicSelect selects live topics; callers add "AND ..." conditions.
const topicSelect = `SELECT t.id, t.name, t.configs,
	(SELECT count(*)::integer FROM partitions p WHERE p.topic_id = t.id) FROM topics t WHERE t.deleted_at IS NULL `

func scanTopic(row pgx.Row) (metastore.Topic, error) {
	var (
		t  metastore.Topic
		id pgtype.UUID
	)
	if err := row.Scan(&id, &t.Name, &t.Configs, &t.Partitions); err != nil {
		return t, err
	}
	t.ID = id.Bytes
	if t.Configs == nil {
		t.Configs = map[string]string{}
	}
	return t, nil
}

// Topic implements metastore.Store.
func (s *Store) Topic(ctx context.Context, name string) (metastore.Topic, error) {
	t, err := scanTopic(s.pool.QueryRow(ctx, topicSelect+`AND t.name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, fmt.Errorf("topic %s: %w", name, metastore.ErrUnknownTopic)
	}
	return t, err
}

// TopicByID implements metastore.Store.
func (s *Store) TopicByID(ctx context.Context, id metastore.TopicID) (metastore.Topic, error) {
	t, err := scanTopic(s.pool.QueryRow(ctx, topicSelect+`AND t.id = $1`, uuidOf(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, fmt.Errorf("topic id %s: %w", id, metastore.ErrUnknownTopic)
	}
	return t, err
}

// Topics implements metastore.Store.
func (s *Store) Topics(ctx context.Context) ([]metastore.Topic, error) {
	rows, err := s.pool.Query(ctx, topicSelect+`ORDER BY t.name`)
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
	return s.tx(ctx, func(tx pgx.Tx) error {
		var (
			id  pgtype.UUID
			cur int32
		)
		// The topic row lock serializes concurrent CreatePartitions calls.
		err := tx.QueryRow(ctx, `SELECT id FROM topics WHERE name = $1 FOR UPDATE`, name).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("create partitions %s: %w", name, metastore.ErrUnknownTopic)
		}
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*)::integer FROM partitions WHERE topic_id = $1`, id).Scan(&cur); err != nil {
			return err
		}
		if count <= cur {
			return fmt.Errorf("create partitions %s: %w: %d, the topic has %d", name, metastore.ErrInvalidPartitions, count, cur)
		}
		_, err = tx.Exec(ctx, `INSERT INTO partitions (topic_id, partition) SELECT $1, generate_series($2::integer, $3 - 1)`, id, cur, count)
		return err
	})
}

// AlterTopicConfigs implements metastore.Store.
func (s *Store) AlterTopicConfigs(ctx context.Context, name string, changes map[string]*string) error {
	set := map[string]string{}
	var del []string
	for k, v := range changes {
		if v == nil {
			del = append(del, k)
		} else {
			set[k] = *v
		}
	}
	if del == nil {
		del = []string{}
	}
	tag, err := s.pool.Exec(ctx, `UPDATE topics SET configs = (configs - $2::text[]) || $3::jsonb WHERE name = $1`, name, del, set)
	if err != nil {
		return fmt.Errorf("alter topic configs %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("alter topic configs %s: %w", name, metastore.ErrUnknownTopic)
	}
	return nil
}
