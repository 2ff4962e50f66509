package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// codecs are every compression codec of the Kafka protocol.
var codecs = []struct {
	name  string
	codec kgo.CompressionCodec
}{
	{"none", kgo.NoCompression()},
	{"gzip", kgo.GzipCompression()},
	{"snappy", kgo.SnappyCompression()},
	{"lz4", kgo.Lz4Compression()},
	{"zstd", kgo.ZstdCompression()},
}

// TestFranzGoProduceConsume produces keyed records with headers with every
// codec (idempotent, acks=all: franz-go's defaults) and reads them back:
// one key stays on one partition in produce order, headers survive, and
// the offsets acknowledged to the producer are the offsets the consumer sees.
func TestFranzGoProduceConsume(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		s := newSilt(t, "--default-partitions", "3").Start()
		for _, c := range codecs {
			t.Run(c.name, func(t *testing.T) {
				ctx := testContext(t, 60*time.Second)
				topic := "franz-" + c.name
				const keys, perKey = 8, 25
				prod := newClient(t, s.Kafka(), kgo.ProducerBatchCompression(c.codec), kgo.ProducerLinger(5*time.Millisecond))

				var recs []*kgo.Record
				for i := range perKey {
					for k := range keys {
						recs = append(recs, &kgo.Record{
							Topic: topic,
							Key:   fmt.Appendf(nil, "key-%d", k),
							Value: fmt.Appendf(nil, "%s value %d of key-%d %s", c.name, i, k, padding(i)),
							Headers: []kgo.RecordHeader{
								{Key: "seq", Value: []byte(strconv.Itoa(i))},
								{Key: "codec", Value: []byte(c.name)},
								{Key: "empty", Value: nil},
							},
						})
					}
				}
				if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
					t.Fatalf("produce: %v", err)
				}
				var acks []acked
				for _, r := range recs {
					acks = append(acks, acked{r.Partition, r.Offset, string(r.Key), string(r.Value)})
				}

				got := consumeN(t, ctx, s.Kafka(), topic, len(recs))
				checkAcked(t, acks, got)

				keyPartition := map[string]int32{}
				lastSeq := map[string]int{}
				for p, rs := range byPartition(got) {
					for i, r := range rs {
						if r.Offset != int64(i) {
							t.Fatalf("partition %d: record %d has offset %d; offsets must be contiguous from 0", p, i, r.Offset)
						}
						k := string(r.Key)
						if kp, ok := keyPartition[k]; ok && kp != p {
							t.Errorf("key %s on partitions %d and %d", k, kp, p)
						}
						keyPartition[k] = p
						if len(r.Headers) != 3 || r.Headers[0].Key != "seq" || r.Headers[1].Key != "codec" ||
							string(r.Headers[1].Value) != c.name || r.Headers[2].Key != "empty" || len(r.Headers[2].Value) != 0 {
							t.Fatalf("record %s: headers %+v", r.Value, r.Headers)
						}
						seq, _ := strconv.Atoi(string(r.Headers[0].Value))
						if prev, ok := lastSeq[k]; ok && seq != prev+1 {
							t.Errorf("key %s: seq %d after %d: order lost", k, seq, prev)
						}
						lastSeq[k] = seq
					}
				}
				if len(keyPartition) != keys {
					t.Errorf("read %d keys, want %d", len(keyPartition), keys)
				}
			})
		}
	})
}

// padding makes some records compressible and of varied size.
func padding(i int) string {
	b := make([]byte, (i%5)*40)
	for j := range b {
		b[j] = 'a' + byte(j%7)
	}
	return string(b)
}
