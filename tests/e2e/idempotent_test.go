package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestIdempotentRetry loses the response to the first Produce after the
// agent committed it: the idempotent franz-go producer retries the same
// batch, and silt must answer the duplicate with its original offset, so
// the log has every record exactly once at contiguous offsets.
func TestIdempotentRetry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		ctx := testContext(t, 90*time.Second)
		proxy := newDropProxy(t)
		s := newSilt(t, "--advertised-addr", proxy.Addr()).Start()
		proxy.SetTarget(s.Kafka())

		const topic, n = "idempotent", 200
		prod := newClient(t, proxy.Addr(), kgo.ProducerLinger(10*time.Millisecond), kgo.MaxBufferedRecords(n))
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("k"), Value: fmt.Appendf(nil, "value-%03d", i)})
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		select {
		case <-proxy.Dropped():
		default:
			t.Fatal("the proxy never dropped a produce response")
		}

		var acks []acked
		for i, r := range recs {
			if r.Offset != int64(i) {
				t.Errorf("record %d acknowledged at offset %d, want %d", i, r.Offset, i)
			}
			acks = append(acks, acked{r.Partition, r.Offset, "k", string(r.Value)})
		}
		got := consumeN(t, ctx, proxy.Addr(), topic, n)
		checkAcked(t, acks, got)

		adm := kadm.NewClient(newClient(t, proxy.Addr()))
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				t.Errorf("end offset of %s[%d]: %v", o.Topic, o.Partition, o.Err)
			} else if o.Offset != n {
				t.Errorf("high watermark of %s[%d] is %d, want %d: the retry was written twice", o.Topic, o.Partition, o.Offset, n)
			}
		})
	})
}
