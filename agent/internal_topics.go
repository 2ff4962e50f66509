package agent

import (
	"context"
	"errors"
	"unicode/utf16"

	"github.com/siltdata/silt/metastore"
)

// offsetsTopicPartitions is Kafka's default offsets.topic.num.partitions.
// The partitions stay empty in silt (offsets live in the metastore); the
// count is what tools that show the topic expect.
const offsetsTopicPartitions = 50

// ensureOffsetsTopic creates __consumer_offsets when it does not exist,
// as Kafka does when a group first asks for its coordinator. Regex
// consumers (franz-go's TestConsumeRegex), admin tools and UIs expect to
// see it, flagged internal, in Metadata. A failure is logged and left for
// the next FindCoordinator: groups work without the topic. The lookup is
// served from the topic cache, so a FindCoordinator pays a store round
// trip only while the topic is missing (also after someone deleted it:
// Kafka, too, creates it again on the next group's use).
func (a *Agent) ensureOffsetsTopic(ctx context.Context) {
	if _, err := a.topicByName(ctx, metastore.ConsumerOffsetsTopic); err == nil {
		return
	}
	_, err := a.createTopic(ctx, metastore.TopicSpec{
		Name:       metastore.ConsumerOffsetsTopic,
		Partitions: offsetsTopicPartitions,
		Configs:    map[string]string{"cleanup.policy": "compact"},
	})
	if err != nil && !errors.Is(err, metastore.ErrTopicExists) {
		a.logger.Warn("create internal topic", "topic", metastore.ConsumerOffsetsTopic, "err", err)
	}
}

// offsetsPartitionFor is the partition of __consumer_offsets Kafka keeps
// group's offsets in: abs(Java's String.hashCode) modulo the partition
// count, with abs(MinInt32) taken as 0 (Kafka's Utils.abs).
func offsetsPartitionFor(group string) int32 {
	var h int32
	for _, c := range utf16.Encode([]rune(group)) {
		h = 31*h + int32(c)
	}
	if h < 0 {
		h = -h // MinInt32 stays MinInt32: made 0 below
	}
	if h < 0 {
		h = 0
	}
	return h % offsetsTopicPartitions
}
