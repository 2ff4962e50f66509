package agent

import (
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/sqlite"
)

// TestConsumerOffsetsTopic: a group's FindCoordinator creates the
// __consumer_offsets topic, which Metadata then lists flagged internal
// (with Kafka's default 50 partitions), and plain producers may not
// write to it.
func TestConsumerOffsetsTopic(t *testing.T) {
	a := startAgent(t)
	cl, _ := a.client(t)
	ctx := t.Context()

	listed := func() *kmsg.MetadataResponseTopic {
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		for i, tp := range resp.Topics {
			if *tp.Topic == metastore.ConsumerOffsetsTopic {
				return &resp.Topics[i]
			}
		}
		return nil
	}
	if tp := listed(); tp != nil {
		t.Fatalf("%s listed before any group asked for a coordinator", metastore.ConsumerOffsetsTopic)
	}

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g"
	fc.CoordinatorKeys = []string{"g"}
	if _, err := fc.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	tp := listed()
	switch {
	case tp == nil:
		t.Fatalf("%s not listed after FindCoordinator", metastore.ConsumerOffsetsTopic)
	case !tp.IsInternal:
		t.Fatalf("%s not flagged internal", metastore.ConsumerOffsetsTopic)
	case len(tp.Partitions) != offsetsTopicPartitions:
		t.Fatalf("%s has %d partitions, want %d", metastore.ConsumerOffsetsTopic, len(tp.Partitions), offsetsTopicPartitions)
	}

	p := kmsg.NewPtrProduceRequest()
	p.Acks, p.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = metastore.ConsumerOffsetsTopic // v12 and older
	pt.TopicID = tp.TopicID                   // v13+
	pp := kmsg.NewProduceRequestTopicPartition()
	pt.Partitions = append(pt.Partitions, pp)
	p.Topics = append(p.Topics, pt)
	resp, err := cl.Request(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidTopicException.Code {
		t.Fatalf("produce to %s: %v, want INVALID_TOPIC_EXCEPTION", metastore.ConsumerOffsetsTopic, kerr.ErrorForCode(code))
	}
}

// TestMetadataFreshPartitions: partitions one agent adds are in the next
// Metadata answer of another agent that has the topic cached with fewer.
// A client keeps that answer for minutes, so a stale count would leave the
// new partitions unassigned in consumer groups until then.
func TestMetadataFreshPartitions(t *testing.T) {
	dir := t.TempDir()
	store, err := sqlite.Open(t.Context(), filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	a1 := startAgentOn(t, store, dir)
	a2 := startAgentOn(t, store, dir)
	ctx := ctxTimeout(t)
	_, adm1 := a1.client(t)
	cl2, _ := a2.client(t)
	if _, err := adm1.CreateTopic(ctx, 1, 1, nil, "grow"); err != nil {
		t.Fatal(err)
	}
	if _, err := a2.topicByName(ctx, "grow"); err != nil { // cached with 1 partition
		t.Fatal(err)
	}
	if _, err := adm1.CreatePartitions(ctx, 2, "grow"); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = metadataRequestTopics("grow")
	resp, err := req.RequestWith(ctx, cl2)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.Topics[0].Partitions); n != 3 {
		t.Fatalf("the other agent's Metadata lists %d partitions, want 3", n)
	}
}

func metadataRequestTopics(names ...string) []kmsg.MetadataRequestTopic {
	var ts []kmsg.MetadataRequestTopic
	for _, n := range names {
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(n)
		ts = append(ts, t)
	}
	return ts
}

// TestOffsetsPartitionFor: Kafka's partition of __consumer_offsets for a
// group (Java's String.hashCode over UTF-16, Utils.abs, modulo 50); the
// values are Java's.
func TestOffsetsPartitionFor(t *testing.T) {
	for group, want := range map[string]int32{
		"":                   0,
		"test":               48, // hashCode 3556498
		"group":              47, // 98629247
		"consumer-1":         6,  // -166239206
		"polygenelubricants": 0,  // Integer.MIN_VALUE: Utils.abs gives 0
		"my-group-😀":         6,  // a surrogate pair: 174510706
	} {
		if got := offsetsPartitionFor(group); got != want {
			t.Errorf("offsetsPartitionFor(%q) = %d, want %d", group, got, want)
		}
	}
}
