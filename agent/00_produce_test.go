package agent

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/siltdata/silt/segment/segmenttest"
)

// fastIngest keeps produce latency low in tests: segments are cut a few
// milliseconds after their first byte.
func fastIngest(c *Config) { c.Ingest.FlushInterval = 5 * time.Millisecond }

func createTopic(t *testing.T, a *testAgent, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	_, adm := a.client(t)
	resp, err := adm.CreateTopic(ctxTimeout(t), partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

func TestProduceConsumeEveryCodec(t *testing.T) {
	a := startAgent(t, fastIngest)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "codec-" + c.name
			createTopic(t, a, topic, 3, nil)
			prod, _ := a.client(t, kgo.ProducerBatchCompression(c.codec), kgo.DefaultProduceTopic(topic))
			ctx := ctxTimeout(t)

			const n = 60
			var sent []*kgo.Record
			for i := range n {
				r := &kgo.Record{
					Key:       fmt.Appendf(nil, "key-%d", i),
					Value:     fmt.Appendf(nil, "value-%d-%s", i, c.name),
					Headers:   []kgo.RecordHeader{{Key: "i", Value: fmt.Appendf(nil, "%d", i)}, {Key: "codec", Value: []byte(c.name)}},
					Partition: int32(i % 3),
				}
				if i%10 == 0 {
					r.Key = nil // null keys survive too
				}
				sent = append(sent, r)
			}
			// Produce a few records one by one and the rest in one go, so
			// batches of several records are written too.
			for _, r := range sent[:6] {
				if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			if err := prod.ProduceSync(ctx, sent[6:]...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			want := map[string]*kgo.Record{}
			for _, r := range sent {
				want[string(r.Value)] = r
			}

			cons, _ := a.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			got := 0
			for got < n {
				fs := cons.PollFetches(ctx)
				if err := ctx.Err(); err != nil {
					t.Fatalf("consumed %d of %d: %v", got, n, err)
				}
				fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", topic, p, err) })
				fs.EachRecord(func(r *kgo.Record) {
					got++
					w := want[string(r.Value)]
					if w == nil {
						t.Fatalf("unexpected record %q", r.Value)
					}
					if r.Partition != w.Partition || r.Offset != w.Offset {
						t.Errorf("record %q at %d/%d, produced at %d/%d", r.Value, r.Partition, r.Offset, w.Partition, w.Offset)
					}
					if string(r.Key) != string(w.Key) || (r.Key == nil) != (w.Key == nil) {
						t.Errorf("record %q key %q, want %q", r.Value, r.Key, w.Key)
					}
					if len(r.Headers) != 2 || r.Headers[0].Key != "i" || string(r.Headers[0].Value) != string(w.Headers[0].Value) || string(r.Headers[1].Value) != c.name {
						t.Errorf("record %q headers %v, want %v", r.Value, r.Headers, w.Headers)
					}
					if !r.Timestamp.Equal(w.Timestamp) {
						t.Errorf("record %q timestamp %v, want %v", r.Value, r.Timestamp, w.Timestamp)
					}
				})
			}
			if got != n {
				t.Fatalf("consumed %d records, want %d", got, n)
			}
		})
	}
}

// rawProduce sends one Produce request and returns its response.
func rawProduce(t *testing.T, cl *kgo.Client, req *kmsg.ProduceRequest) *kmsg.ProduceResponse {
	t.Helper()
	resp, err := req.RequestWith(ctxTimeout(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestProducePerPartitionErrors(t *testing.T) {
	a := startAgent(t, fastIngest)
	maxBytes := "1024"
	createTopic(t, a, "m", 6, map[string]*string{"max.message.bytes": &maxBytes})
	// Kafka 3.9's versions: topics by name (Produce v11).
	cl, _ := a.client(t, kgo.MaxVersions(kversion.V3_9_0()))

	good := segmenttest.New(segmenttest.Options{Records: 3})
	badCRC := segmenttest.New(segmenttest.Options{Records: 2})
	badCRC[len(badCRC)-1] ^= 0xff
	oldMagic := segmenttest.New(segmenttest.Options{Records: 2})
	oldMagic[16] = 1
	tooLarge := segmenttest.New(segmenttest.Options{Records: 20, ValueSize: 100, Random: true})
	truncated := segmenttest.New(segmenttest.Options{Records: 2})
	truncated = truncated[:len(truncated)-5]
	badDelta := segmenttest.New(segmenttest.Options{Records: 2})
	binary.BigEndian.PutUint32(badDelta[23:], 5)
	binary.BigEndian.PutUint32(badDelta[17:], crc32.Checksum(badDelta[21:], crc32.MakeTable(crc32.Castagnoli)))

	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "m"
	for i, recs := range [][]byte{good, badCRC, oldMagic, tooLarge, truncated} {
		rt.Partitions = append(rt.Partitions, kmsg.ProduceRequestTopicPartition{Partition: int32(i), Records: recs})
	}
	rt.Partitions = append(rt.Partitions, kmsg.ProduceRequestTopicPartition{Partition: 99, Records: good})
	// The same topic again, as a separate entry, with partition 5.
	rt2 := kmsg.NewProduceRequestTopic()
	rt2.Topic = "m"
	rt2.Partitions = append(rt2.Partitions, kmsg.ProduceRequestTopicPartition{Partition: 5, Records: badDelta})
	unknown := kmsg.NewProduceRequestTopic()
	unknown.Topic = "no-such-topic"
	unknown.Partitions = append(unknown.Partitions, kmsg.ProduceRequestTopicPartition{Partition: 0, Records: good})
	req.Topics = append(req.Topics, rt, rt2, unknown)

	resp := rawProduce(t, cl, req)
	want := []int16{0, kerr.CorruptMessage.Code, kerr.InvalidRecord.Code, kerr.MessageTooLarge.Code, kerr.InvalidRecord.Code, kerr.UnknownTopicOrPartition.Code}
	if len(resp.Topics) != 3 || len(resp.Topics[0].Partitions) != len(want) {
		t.Fatalf("response shape: %+v", resp.Topics)
	}
	for i, sp := range resp.Topics[0].Partitions {
		if sp.ErrorCode != want[i] {
			t.Errorf("partition %d: error %s, want %s", sp.Partition, kerr.ErrorForCode(sp.ErrorCode), kerr.ErrorForCode(want[i]))
		}
	}
	if sp := resp.Topics[0].Partitions[0]; sp.BaseOffset != 0 || sp.LogAppendTime != -1 {
		t.Errorf("good partition: base offset %d, log append time %d", sp.BaseOffset, sp.LogAppendTime)
	}
	if sp := resp.Topics[1].Partitions[0]; sp.ErrorCode != kerr.InvalidRecord.Code {
		t.Errorf("bad offset delta: %s, want INVALID_RECORD", kerr.ErrorForCode(sp.ErrorCode))
	}
	if sp := resp.Topics[2].Partitions[0]; sp.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown topic: %s", kerr.ErrorForCode(sp.ErrorCode))
	}

	// The good partition was written; the failed ones were not, and the
	// connection still works.
	offs, err := kadmOffsets(t, a, "m")
	if err != nil {
		t.Fatal(err)
	}
	for p, hwm := range offs {
		wantHWM := int64(0)
		if p == 0 {
			wantHWM = 3
		}
		if hwm != wantHWM {
			t.Errorf("partition %d high watermark %d, want %d", p, hwm, wantHWM)
		}
	}
	// Several batches for one partition in one request are split and
	// written in order.
	two := append(append([]byte(nil), good...), segmenttest.New(segmenttest.Options{Records: 4, Seed: 2})...)
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "m", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 1, Records: two}}}}
	resp = rawProduce(t, cl, req)
	if sp := resp.Topics[0].Partitions[0]; sp.ErrorCode != 0 || sp.BaseOffset != 0 {
		t.Fatalf("two batches: %s base %d", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset)
	}
	if offs, _ := kadmOffsets(t, a, "m"); offs[1] != 7 {
		t.Fatalf("partition 1 high watermark %d after two batches, want 7", offs[1])
	}
}

func kadmOffsets(t *testing.T, a *testAgent, topic string) (map[int32]int64, error) {
	t.Helper()
	_, adm := a.client(t)
	lo, err := adm.ListEndOffsets(ctxTimeout(t), topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

func TestProduceLogAppendTime(t *testing.T) {
	a := startAgent(t, fastIngest)
	lat := "LogAppendTime"
	createTopic(t, a, "lat", 1, map[string]*string{"message.timestamp.type": &lat})
	cl, _ := a.client(t, kgo.DefaultProduceTopic("lat"), kgo.ConsumeTopics("lat"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := ctxTimeout(t)
	before := time.Now().Add(-time.Second)
	old := time.UnixMilli(1_000_000)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v"), Timestamp: old}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fs := cl.PollFetches(ctx)
	if errs := fs.Errors(); len(errs) > 0 {
		t.Fatal(errs)
	}
	recs := fs.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if r.Attrs.TimestampType() != 1 || r.Timestamp.Before(before) {
		t.Fatalf("timestamp %v type %d: want the broker's append time", r.Timestamp, r.Attrs.TimestampType())
	}
}
