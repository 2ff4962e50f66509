package e2e

// segmentio/kafka-go against silt: the Writer with every codec, group
// Readers that commit, a partition Reader, and the Conn / Client calls
// kafka-go users make (ReadPartitions, CreateTopics, OffsetFetch).

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// kafkaGoCodecs are the codecs of kafka-go's Writer, with Kafka's
// attribute code of each.
var kafkaGoCodecs = []struct {
	name  string
	codec kafka.Compression
	id    uint8
}{
	{"gzip", kafka.Gzip, 1},
	{"snappy", kafka.Snappy, 2},
	{"lz4", kafka.Lz4, 3},
	{"zstd", kafka.Zstd, 4},
}

// TestKafkaGo runs kafka-go's writer, readers and client calls against
// both backends.
func TestKafkaGo(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		s := newSilt(t).Start()
		ctx := testContext(t, 60*time.Second)
		const topic, perCodec, keys = "kafkago", 40, 6
		// The transport's connection pools end with CloseIdleConnections.
		tr := &kafka.Transport{ClientID: "silt-e2e-kafka-go"}
		t.Cleanup(tr.CloseIdleConnections)
		cl := &kafka.Client{Addr: kafka.TCP(s.Kafka()), Transport: tr, Timeout: 10 * time.Second}

		// CreateTopics through kafka.Client.
		created, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{
			Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 3, ReplicationFactor: 1}},
		})
		if err != nil {
			t.Fatalf("create topics: %v", err)
		}
		if err := created.Errors[topic]; err != nil {
			t.Fatalf("create topic %s: %v", topic, err)
		}
		created, err = cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{
			Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 3, ReplicationFactor: 1}},
		})
		if err != nil || !errors.Is(created.Errors[topic], kafka.TopicAlreadyExists) {
			t.Errorf("create topic %s again: %v / %v, want %v", topic, err, created.Errors[topic], kafka.TopicAlreadyExists)
		}

		// ReadPartitions (metadata) through kafka.Conn.
		conn, err := kafka.DialContext(ctx, "tcp", s.Kafka())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		parts, err := conn.ReadPartitions(topic)
		conn.Close()
		if err != nil {
			t.Fatalf("read partitions: %v", err)
		}
		var ids []int
		for _, p := range parts {
			if p.Topic != topic || p.Leader.Host == "" || len(p.Replicas) != 1 || len(p.Isr) != 1 {
				t.Errorf("read partitions: %+v", p)
			}
			ids = append(ids, p.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []int{0, 1, 2}) {
			t.Fatalf("read partitions of %s: ids %v, want [0 1 2]", topic, ids)
		}

		var acks []acked
		for _, c := range kafkaGoCodecs {
			acks = append(acks, kafkaGoWrite(t, tr, s.Kafka(), topic, c.name, c.codec, perCodec, keys)...)
		}
		recs := consumeN(t, ctx, s.Kafka(), topic, len(acks))
		checkAcked(t, acks, recs)
		codecID := map[string]uint8{}
		for _, c := range kafkaGoCodecs {
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
			if p, ok := keyPartition[string(r.Key)]; ok && p != r.Partition {
				t.Errorf("key %s on partitions %d and %d (kafka.Hash balancer)", r.Key, p, r.Partition)
			}
			keyPartition[string(r.Key)] = r.Partition
		}

		t.Run("group-reader", func(t *testing.T) { kafkaGoGroup(t, cl, tr, s.Kafka(), topic, acks) })
		t.Run("partition-reader", func(t *testing.T) { kafkaGoPartition(t, s.Kafka(), topic, acks) })
	})
}

// kafkaGoWrite writes n keyed messages with headers through a kafka.Writer
// (acks=all, hash balancer, codec) and returns them as the Writer's
// completion callback saw them acknowledged.
func kafkaGoWrite(t *testing.T, tr *kafka.Transport, addr, topic, name string, codec kafka.Compression, n, keys int) []acked {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	var mu sync.Mutex // mu guards out, appended to by the Writer's goroutines
	var out []acked
	w := &kafka.Writer{
		Addr:         kafka.TCP(addr),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		Compression:  codec,
		Transport:    tr,
		BatchTimeout: 5 * time.Millisecond,
		Completion: func(msgs []kafka.Message, err error) {
			if err != nil {
				return // WriteMessages reports it
			}
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				out = append(out, acked{int32(m.Partition), m.Offset, string(m.Key), string(m.Value)})
			}
		},
	}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{
			Key:   fmt.Appendf(nil, "k%d", i%keys),
			Value: fmt.Appendf(nil, "kafka-go %s message %d", name, i),
			Headers: []kafka.Header{
				{Key: "codec", Value: []byte(name)},
				{Key: "index", Value: []byte(strconv.Itoa(i))},
			},
		}
	}
	err := w.WriteMessages(ctx, msgs...)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("kafka-go %s write: %v", name, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(out) != n {
		t.Fatalf("kafka-go %s write: %d messages acknowledged, want %d", name, len(out), n)
	}
	return out
}

// kafkaGoGroup reads everything with a group Reader that commits, checks
// the committed offsets, then checks that a second Reader of the group
// starts at the committed offsets (its first message is one written after
// the commits), and that OffsetFetch of an unknown group answers -1.
func kafkaGoGroup(t *testing.T, cl *kafka.Client, tr *kafka.Transport, addr, topic string, acks []acked) {
	const group = "kafka-go-group"
	ctx := testContext(t, 45*time.Second)
	cfg := kafka.ReaderConfig{
		Brokers:        []string{addr},
		GroupID:        group,
		Topic:          topic,
		StartOffset:    kafka.FirstOffset,
		MaxWait:        500 * time.Millisecond,
		CommitInterval: 0, // synchronous commits
	}

	r := kafka.NewReader(cfg)
	var got []groupRecord
	for len(got) < len(acks) {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			r.Close()
			t.Fatalf("group reader: have %d of %d messages: %v", len(got), len(acks), err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			r.Close()
			t.Fatalf("group reader: commit %d@%d: %v", m.Partition, m.Offset, err)
		}
		got = append(got, groupRecord{"reader-1", int32(m.Partition), m.Offset, string(m.Key), string(m.Value)})
	}
	if err := r.Close(); err != nil {
		t.Errorf("close group reader: %v", err)
	}
	checkExactly(t, "kafka-go group reader", acks, got)
	want := nextOffsets(acks)
	if got := committedOffsets(t, ctx, addr, group, topic); !sameOffsets(got, want) {
		t.Fatalf("committed offsets of %s: %v, want %v", group, got, want)
	}

	// The committed offsets are the end offsets, so whatever the second
	// Reader reads first was written after them.
	fresh := kafkaGoWrite(t, tr, addr, topic, "fresh", kafka.Gzip, 1, 1)[0]
	r2 := kafka.NewReader(cfg)
	m, err := r2.FetchMessage(ctx)
	if err == nil {
		err = r2.CommitMessages(ctx, m)
	}
	if cerr := r2.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("second group reader: %v", err)
	}
	if int32(m.Partition) != fresh.Partition || m.Offset != fresh.Offset || string(m.Value) != fresh.Value {
		t.Errorf("second group reader read p%d@%d %q first, want the message written after the commits, %v", m.Partition, m.Offset, m.Value, fresh)
	}
	if fresh.Offset != want[fresh.Partition] {
		t.Errorf("message written after the commits at %v, want offset %d", fresh, want[fresh.Partition])
	}

	// kafka-go treats -1 as "no committed offset": an unknown group must
	// answer -1 for every partition, without error.
	resp, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "kafka-go-no-such-group", Topics: map[string][]int{topic: {0, 1, 2}}})
	if err != nil || resp.Error != nil {
		t.Fatalf("offset fetch of an unknown group: %v / %v", err, resp.Error)
	}
	if len(resp.Topics[topic]) != 3 {
		t.Fatalf("offset fetch of an unknown group: %+v", resp.Topics)
	}
	for _, p := range resp.Topics[topic] {
		if p.CommittedOffset != -1 || p.Error != nil {
			t.Errorf("offset fetch of an unknown group: partition %d at %d (error %v), want -1 without error", p.Partition, p.CommittedOffset, p.Error)
		}
	}
}

// kafkaGoPartition reads one partition from FirstOffset with a Reader
// without a group and checks it against what was acknowledged there.
func kafkaGoPartition(t *testing.T, addr, topic string, acks []acked) {
	ctx := testContext(t, 30*time.Second)
	const partition = 1
	var want []acked
	for _, a := range acks {
		if a.Partition == partition {
			want = append(want, a)
		}
	}
	slices.SortFunc(want, func(a, b acked) int { return int(a.Offset - b.Offset) })
	if len(want) == 0 {
		t.Fatalf("nothing was acknowledged on partition %d", partition)
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   []string{addr},
		Topic:     topic,
		Partition: partition,
		MaxWait:   500 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		t.Fatalf("set offset: %v", err)
	}
	for i, a := range want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("partition reader: message %d of %d: %v", i, len(want), err)
		}
		if int32(m.Partition) != a.Partition || m.Offset != a.Offset || string(m.Key) != a.Key || string(m.Value) != a.Value {
			t.Fatalf("partition reader: message %d is p%d@%d key=%q value=%q, want %v", i, m.Partition, m.Offset, m.Key, m.Value, a)
		}
		if len(m.Headers) != 2 || m.Headers[0].Key != "codec" || m.Headers[1].Key != "index" {
			t.Fatalf("partition reader: message %v headers %+v", a, m.Headers)
		}
	}
}
