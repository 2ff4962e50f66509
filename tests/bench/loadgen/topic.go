package loadgen

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// CreateTopic creates cfg.Topic with cfg.Partitions partitions and the
// cluster's default replication factor. An existing topic is not an
// error: `silt bench` may be pointed at a topic made earlier.
func CreateTopic(ctx context.Context, cfg Config) error {
	cl, err := kgo.NewClient(cfg.Client.kgoOpts(cfg.Brokers)...)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", cfg.Topic, err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(cfg.Partitions), -1, nil, cfg.Topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", cfg.Topic, err)
	}
	return nil
}

// EndOffsets returns cfg.Topic's high watermark per partition.
func EndOffsets(ctx context.Context, cfg Config) (map[int32]int64, error) {
	topic := cfg.Topic
	cl, err := kgo.NewClient(cfg.Client.kgoOpts(cfg.Brokers)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	if err := offs.Error(); err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}
