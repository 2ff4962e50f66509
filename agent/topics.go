package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/siltdata/silt/metastore"
)

// createTopic validates and creates a topic and refreshes the cache.
func (a *Agent) createTopic(ctx context.Context, spec metastore.TopicSpec) (metastore.Topic, error) {
	if err := metastore.ValidateTopicName(spec.Name); err != nil {
		return metastore.Topic{}, err
	}
	if err := validateTopicConfigs(spec.Configs); err != nil {
		return metastore.Topic{}, err
	}
	a.topics.invalidate(spec.Name)
	t, err := a.store.CreateTopic(ctx, spec)
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("create topic %q: %w", spec.Name, err)
	}
	a.topics.put(t)
	a.logger.Info("topic created", "topic", t.Name, "partitions", t.Partitions)
	return t, nil
}

// autoCreateTopic creates a topic on first use (Metadata, Produce) with
// the default partition count, as auto.create.topics.enable does. When
// another agent or request created it first, the existing topic is
// returned. Callers check cfg.AutoCreateTopics (and the request's own
// permission) first.
func (a *Agent) autoCreateTopic(ctx context.Context, name string) (metastore.Topic, error) {
	t, err := a.createTopic(ctx, metastore.TopicSpec{Name: name, Partitions: a.cfg.DefaultPartitions})
	if errors.Is(err, metastore.ErrTopicExists) {
		return a.topicByName(ctx, name)
	}
	return t, err
}
