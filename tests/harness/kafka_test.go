package harness

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafka starts the reference Apache Kafka broker and writes and reads
// a record through it.
func TestKafka(t *testing.T) {
	b := Kafka(t)
	if b.Addr == "" || b.Version == "" {
		t.Fatalf("broker %+v lacks an address or version", b)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("harness-kafka"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "harness-kafka", Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	recs := fs.Records()
	if len(recs) != 1 || string(recs[0].Value) != "hello" {
		t.Fatalf("read %d records (%v), want the one written", len(recs), recs)
	}
	if b2 := Kafka(t); b2 != b {
		t.Fatalf("second call returned %+v, want the shared %+v", b2, b)
	}
}
