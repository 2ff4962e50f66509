package e2e

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltdata/silt/tests/harness"
)

// acked is one record as its producer saw it acknowledged.
type acked struct {
	Partition int32
	Offset    int64
	Key       string
	Value     string
}

func (a acked) String() string {
	return fmt.Sprintf("p%d@%d key=%q value=%q", a.Partition, a.Offset, a.Key, a.Value)
}

// newClient returns a franz-go client closed when the test ends.
func newClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ClientID("silt-e2e"),
		// As against Kafka, topics are created on use only when asked.
		kgo.AllowAutoTopicCreation(),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.RetryTimeout(30 * time.Second),
		// A record that cannot be delivered fails the test instead of
		// being retried forever (franz-go's default has no limit).
		kgo.RecordDeliveryTimeout(60 * time.Second),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// consumeN reads topic from the start of every partition (no group) until
// it holds n records, and fails the test at ctx's deadline.
func consumeN(t testing.TB, ctx context.Context, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	recs := consume(t, ctx, addr, topic, n, nil)
	if len(recs) > n {
		t.Fatalf("consume %s: %d records, want %d", topic, len(recs), n)
	}
	return recs
}

// consume reads topic from the start of every partition (no group),
// keeping the records keep accepts (all when nil), until it holds n, and
// fails the test at ctx's deadline.
func consume(t testing.TB, ctx context.Context, addr, topic string, n int, keep func(*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	cl := newClient(t, addr,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	defer cl.Close()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume %s: have %d of %d records: %v", topic, len(recs), n, err)
		}
		for _, e := range fs.Errors() {
			// Retriable fetch errors are retried by the client; report
			// them so a failure explains itself.
			t.Logf("fetch %s[%d]: %v", e.Topic, e.Partition, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if keep == nil || keep(r) {
				recs = append(recs, r)
			}
		})
	}
	return recs
}

// byPartition groups records by partition, in offset order.
func byPartition(recs []*kgo.Record) map[int32][]*kgo.Record {
	m := map[int32][]*kgo.Record{}
	for _, r := range recs {
		m[r.Partition] = append(m[r.Partition], r)
	}
	for _, rs := range m {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
	}
	return m
}

// checkAcked verifies that every acknowledged record is in recs at its
// acknowledged partition and offset with its key and value.
func checkAcked(t testing.TB, acks []acked, recs []*kgo.Record) {
	t.Helper()
	type po struct {
		p int32
		o int64
	}
	at := map[po]*kgo.Record{}
	for _, r := range recs {
		if prev, dup := at[po{r.Partition, r.Offset}]; dup {
			t.Errorf("offset %d of partition %d read twice: %q and %q", r.Offset, r.Partition, prev.Value, r.Value)
		}
		at[po{r.Partition, r.Offset}] = r
	}
	bad := 0
	for _, a := range acks {
		r, ok := at[po{a.Partition, a.Offset}]
		switch {
		case !ok:
			t.Errorf("acknowledged record %v not read back", a)
		case string(r.Key) != a.Key || string(r.Value) != a.Value:
			t.Errorf("acknowledged record %v read back as key=%q value=%q", a, r.Key, r.Value)
		default:
			continue
		}
		if bad++; bad > 20 {
			t.Fatalf("too many errors")
		}
	}
}

// missingTool skips a test whose client tool is not installed, except when
// harness.Strict (CI, make test), where tests/install-deps.sh must have
// installed it and a skip would hide an interop test that never ran.
func missingTool(t testing.TB, format string, args ...any) {
	t.Helper()
	if harness.Strict() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
