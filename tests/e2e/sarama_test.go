package e2e

// IBM/sarama against silt: the idempotent SyncProducer with every codec,
// a two-member ConsumerGroup that marks and commits, and the ClusterAdmin
// topic round trip.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/rcrowley/go-metrics"
)

func init() {
	// sarama records its metrics in go-metrics meters, whose first use
	// starts a ticker goroutine that never ends (a leak by goleak's
	// check in TestMain). sarama documents this switch to disable them.
	metrics.UseNilMetrics = true
}

// saramaCodecs are the compression codecs sarama supports, with Kafka's
// attribute code of each.
var saramaCodecs = []struct {
	name  string
	codec sarama.CompressionCodec
	id    uint8
}{
	{"none", sarama.CompressionNone, 0},
	{"gzip", sarama.CompressionGZIP, 1},
	{"snappy", sarama.CompressionSnappy, 2},
	{"lz4", sarama.CompressionLZ4, 3},
	{"zstd", sarama.CompressionZSTD, 4},
}

// saramaConfig is the configuration every sarama client of the tests
// starts from: a recent protocol version and bounded timeouts.
func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "silt-e2e-sarama"
	cfg.Version = sarama.V3_6_0_0
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Consumer.MaxWaitTime = 500 * time.Millisecond
	return cfg
}

// TestSarama runs sarama's producer, consumer group and cluster admin
// against both backends.
func TestSarama(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		s := newSilt(t).Start()
		ctx := testContext(t, 60*time.Second)
		const topic, perCodec, keys = "sarama", 40, 6
		createTopic(t, ctx, s.Kafka(), topic, 3)

		var acks []acked
		for _, c := range saramaCodecs {
			acks = append(acks, saramaProduce(t, s.Kafka(), topic, c.name, c.codec, perCodec, keys)...)
		}
		recs := consumeN(t, ctx, s.Kafka(), topic, len(acks))
		checkAcked(t, acks, recs)
		codecID := map[string]uint8{}
		for _, c := range saramaCodecs {
			codecID[c.name] = c.id
		}
		keyPartition := map[string]int32{}
		for _, r := range recs {
			if len(r.Headers) != 2 || r.Headers[0].Key != "codec" || r.Headers[1].Key != "index" {
				t.Fatalf("record %q: headers %+v", r.Value, r.Headers)
			}
			if want, got := codecID[string(r.Headers[0].Value)], r.Attrs.CompressionType(); got != want {
				t.Errorf("record %q was sent with %s but its batch has compression type %d", r.Value, r.Headers[0].Value, got)
			}
			// sarama's hash partitioner keeps one key on one partition.
			if p, ok := keyPartition[string(r.Key)]; ok && p != r.Partition {
				t.Errorf("key %s on partitions %d and %d", r.Key, p, r.Partition)
			}
			keyPartition[string(r.Key)] = r.Partition
		}

		t.Run("consumer-group", func(t *testing.T) { saramaGroup(t, s.Kafka(), topic, acks) })
		t.Run("cluster-admin", func(t *testing.T) { saramaAdmin(t, s.Kafka()) })
	})
}

// saramaProduce sends n keyed records with headers through an idempotent
// acks=all SyncProducer compressing with codec, and returns them as
// sarama acknowledged them.
func saramaProduce(t *testing.T, addr, topic, name string, codec sarama.CompressionCodec, n, keys int) []acked {
	t.Helper()
	cfg := saramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Compression = codec
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama %s producer: %v", name, err)
	}
	defer prod.Close()
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("k%d", i%keys)),
			Value: sarama.StringEncoder(fmt.Sprintf("sarama %s message %d", name, i)),
			Headers: []sarama.RecordHeader{
				{Key: []byte("codec"), Value: []byte(name)},
				{Key: []byte("index"), Value: []byte(strconv.Itoa(i))},
			},
		}
	}
	if err := prod.SendMessages(msgs); err != nil {
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) && len(perrs) > 0 {
			t.Fatalf("sarama %s produce: %d failed, first: %v", name, len(perrs), perrs[0].Err)
		}
		t.Fatalf("sarama %s produce: %v", name, err)
	}
	out := make([]acked, n)
	for i, m := range msgs {
		out[i] = acked{m.Partition, m.Offset, fmt.Sprintf("k%d", i%keys), fmt.Sprintf("sarama %s message %d", name, i)}
	}
	return out
}

// groupCollector is a sarama ConsumerGroupHandler that marks and commits
// every message before reporting it, so once every record is reported
// every offset is committed.
type groupCollector struct {
	member string
	out    chan<- groupRecord
}

func (groupCollector) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (groupCollector) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h groupCollector) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	// A commit waits behind the fetch long-poll on the shared connection
	// (a Kafka connection answers in order), so commit once per drained
	// batch rather than per message.
	var pending []groupRecord
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			sess.MarkMessage(m, "")
			pending = append(pending, groupRecord{h.member, m.Partition, m.Offset, string(m.Key), string(m.Value)})
			if len(claim.Messages()) > 0 {
				continue
			}
			sess.Commit()
			for _, r := range pending {
				select {
				case h.out <- r:
				case <-sess.Context().Done():
					return nil
				}
			}
			pending = pending[:0]
		case <-sess.Context().Done():
			return nil
		}
	}
}

// saramaGroup consumes topic with a two-member sarama consumer group
// (round-robin assignment) and checks that every acknowledged record is
// consumed and that the committed offsets reach the end offsets.
func saramaGroup(t *testing.T, addr, topic string, acks []acked) {
	const group = "sarama-group"
	ctx := testContext(t, 60*time.Second)
	cfg := saramaConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}
	cfg.Consumer.Return.Errors = true

	// The members' goroutines end with runCtx; a failing test waits for
	// them too (defers run stop, then Wait).
	var wg sync.WaitGroup
	defer wg.Wait()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	out := make(chan groupRecord)
	for i := range 2 {
		member := fmt.Sprintf("member-%d", i)
		cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
		if err != nil {
			t.Fatalf("sarama consumer group %s: %v", member, err)
		}
		// Errors are reported for the log; the assertions below decide.
		wg.Go(func() {
			for err := range cg.Errors() {
				t.Logf("sarama %s: %v", member, err)
			}
		})
		wg.Go(func() {
			defer cg.Close()
			h := groupCollector{member, out}
			// Consume returns at every rebalance; the loop rejoins.
			for runCtx.Err() == nil {
				if err := cg.Consume(runCtx, []string{topic}, h); err != nil && runCtx.Err() == nil {
					t.Errorf("sarama %s consume: %v", member, err)
					return
				}
			}
		})
	}

	// A rebalance may hand a partition over between a member's read and
	// its commit, so a record may be seen twice (at least once, as with
	// Kafka); it must be the same record both times.
	seen := map[[2]int64]groupRecord{}
	members := map[string]int{}
	for len(seen) < len(acks) {
		select {
		case r := <-out:
			k := [2]int64{int64(r.Partition), r.Offset}
			if prev, dup := seen[k]; dup {
				t.Logf("p%d@%d consumed again by %s (first by %s)", r.Partition, r.Offset, r.Consumer, prev.Consumer)
				if prev.Key != r.Key || prev.Value != r.Value {
					t.Errorf("p%d@%d consumed as %q/%q and %q/%q", r.Partition, r.Offset, prev.Key, prev.Value, r.Key, r.Value)
				}
			}
			seen[k] = r
			members[r.Consumer]++
		case <-ctx.Done():
			t.Fatalf("sarama group consumed %d of %d records", len(seen), len(acks))
		}
	}
	stop()
	wg.Wait()
	t.Logf("records consumed per member: %v", members)
	got := make([]groupRecord, 0, len(seen))
	for _, r := range seen {
		got = append(got, r)
	}
	checkExactly(t, "sarama group", acks, got)

	want := nextOffsets(acks)
	if ends := endOffsets(t, ctx, addr, topic); !sameOffsets(ends, want) {
		t.Fatalf("end offsets %v, want %v", ends, want)
	}
	if got := committedOffsets(t, ctx, addr, group, topic); !sameOffsets(got, want) {
		t.Errorf("committed offsets of %s: %v, want the end offsets %v", group, got, want)
	}
}

// saramaAdmin creates, lists, describes and deletes a topic with sarama's
// ClusterAdmin.
func saramaAdmin(t *testing.T, addr string) {
	const topic = "sarama-admin"
	ctx := testContext(t, 30*time.Second)
	adm, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig())
	if err != nil {
		t.Fatalf("sarama cluster admin: %v", err)
	}
	defer adm.Close()

	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 4, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	err = adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 4, ReplicationFactor: 1}, false)
	if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Errorf("create topic again: %v, want %v", err, sarama.ErrTopicAlreadyExists)
	}

	topics, err := adm.ListTopics()
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	if d, ok := topics[topic]; !ok || d.NumPartitions != 4 {
		t.Errorf("list topics: %s is %+v (listed: %t), want 4 partitions", topic, d, ok)
	}

	metas, err := adm.DescribeTopics([]string{topic})
	if err != nil {
		t.Fatalf("describe topics: %v", err)
	}
	if len(metas) != 1 || metas[0].Name != topic || !errors.Is(metas[0].Err, sarama.ErrNoError) || len(metas[0].Partitions) != 4 {
		t.Fatalf("describe topics: %+v", metas)
	}
	ids := make([]int32, 0, 4)
	for _, p := range metas[0].Partitions {
		if !errors.Is(p.Err, sarama.ErrNoError) || p.Leader < 0 || len(p.Replicas) != 1 || len(p.Isr) != 1 {
			t.Errorf("describe topics: partition %+v", p)
		}
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []int32{0, 1, 2, 3}) {
		t.Errorf("describe topics: partitions %v", ids)
	}

	if err := adm.DeleteTopic(topic); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	// Kafka completes a deletion asynchronously; wait for the listing to
	// drop the topic, bounded by ctx.
	for {
		topics, err := adm.ListTopics()
		if err != nil {
			t.Fatalf("list topics after delete: %v", err)
		}
		if _, ok := topics[topic]; !ok {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s still listed after DeleteTopic", topic)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := adm.DeleteTopic(topic); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Errorf("delete topic again: %v, want %v", err, sarama.ErrUnknownTopicOrPartition)
	}
}
