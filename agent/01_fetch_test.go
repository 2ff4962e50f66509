package agent

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/siltdata/silt/segment/segmenttest"
)

func rawFetch(t *testing.T, cl *kgo.Client, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	t.Helper()
	resp, err := req.RequestWith(ctxTimeout(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func fetchReq(topic string, maxBytes int32, parts ...kmsg.FetchRequestTopicPartition) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes = maxBytes
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rt.Partitions = parts
	req.Topics = append(req.Topics, rt)
	return req
}

func fetchPart(p int32, offset int64, maxBytes int32) kmsg.FetchRequestTopicPartition {
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = p, offset, maxBytes
	return fp
}

func batchesIn(t *testing.T, recs []byte) []kmsg.RecordBatch {
	t.Helper()
	var out []kmsg.RecordBatch
	for len(recs) > 0 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(recs); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
		recs = recs[b.Length+12:]
	}
	return out
}

// produceBatches writes one batch per records count to topic/partition.
func produceBatches(t *testing.T, cl *kgo.Client, topic string, p int32, records ...int) {
	t.Helper()
	var recs []byte
	for i, n := range records {
		recs = append(recs, segmenttest.New(segmenttest.Options{Records: n, Seed: uint64(i), ValueSize: 200, Random: true})...)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: p, Records: recs}}}}
	resp := rawProduce(t, cl, req)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(code))
	}
}

func TestFetchLimitsAndErrors(t *testing.T) {
	a := startAgent(t, fastIngest)
	createTopic(t, a, "f", 2, nil)
	cl, _ := a.client(t, kgo.MaxVersions(kversion.V2_8_0())) // topics by name
	produceBatches(t, cl, "f", 0, 5, 5, 5)
	produceBatches(t, cl, "f", 1, 4)

	// An offset inside a batch returns the whole batch; a tiny
	// max_bytes still returns one whole batch for the first partition
	// with data (KIP-74) and nothing for the next.
	resp := rawFetch(t, cl, fetchReq("f", 1, fetchPart(0, 7, 1), fetchPart(1, 0, 1<<20)))
	p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
	if p0.ErrorCode != 0 || p0.HighWatermark != 15 || p0.LastStableOffset != 15 || p0.LogStartOffset != 0 {
		t.Fatalf("partition 0: %s hwm %d lso %d start %d", kerr.ErrorForCode(p0.ErrorCode), p0.HighWatermark, p0.LastStableOffset, p0.LogStartOffset)
	}
	if bs := batchesIn(t, p0.RecordBatches); len(bs) != 1 || bs[0].FirstOffset != 5 || bs[0].PartitionLeaderEpoch != 0 {
		t.Fatalf("partition 0: %d batches, want the one holding offset 7", len(bs))
	}
	if p1.ErrorCode != 0 || len(p1.RecordBatches) != 0 || p1.HighWatermark != 4 {
		t.Fatalf("partition 1 over the response limit: %d bytes, hwm %d", len(p1.RecordBatches), p1.HighWatermark)
	}
	// No records is an empty record set, never null: librdkafka rejects
	// a null one.
	if p1.RecordBatches == nil {
		t.Fatal("partition 1: null record set")
	}

	// Enough room: everything, in order.
	resp = rawFetch(t, cl, fetchReq("f", 1<<20, fetchPart(0, 0, 1<<20), fetchPart(1, 0, 1<<20)))
	if bs := batchesIn(t, resp.Topics[0].Partitions[0].RecordBatches); len(bs) != 3 || bs[2].FirstOffset != 10 {
		t.Fatalf("partition 0: %d batches", len(bs))
	}
	if bs := batchesIn(t, resp.Topics[0].Partitions[1].RecordBatches); len(bs) != 1 {
		t.Fatalf("partition 1: %d batches", len(bs))
	}

	// Out of range, unknown partition, unknown topic.
	resp = rawFetch(t, cl, fetchReq("f", 1<<20, fetchPart(0, 16, 1<<20), fetchPart(7, 0, 1<<20)))
	// Kafka answers a partition error with -1 offsets.
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != -1 || p.LogStartOffset != -1 {
		t.Fatalf("offset 16: %s hwm %d", kerr.ErrorForCode(p.ErrorCode), p.HighWatermark)
	}
	if p := resp.Topics[0].Partitions[1]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("partition 7: %s", kerr.ErrorForCode(p.ErrorCode))
	}
	resp = rawFetch(t, cl, fetchReq("nope", 1<<20, fetchPart(0, 0, 1<<20)))
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %s", kerr.ErrorForCode(p.ErrorCode))
	}

	// A session request gets "no session"; an incremental fetch of an
	// unknown session FETCH_SESSION_ID_NOT_FOUND.
	req := fetchReq("f", 1<<20, fetchPart(0, 15, 1<<20))
	req.SessionEpoch = 0
	if resp := rawFetch(t, cl, req); resp.ErrorCode != 0 || resp.SessionID != 0 {
		t.Fatalf("session request: %s session %d", kerr.ErrorForCode(resp.ErrorCode), resp.SessionID)
	}
	req.SessionID, req.SessionEpoch = 42, 1
	if resp := rawFetch(t, cl, req); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown session: %s", kerr.ErrorForCode(resp.ErrorCode))
	}
}

func TestFetchLongPollWokenByProduce(t *testing.T) {
	a := startAgent(t, fastIngest)
	createTopic(t, a, "lp", 1, nil)
	cl, _ := a.client(t, kgo.MaxVersions(kversion.V2_8_0())) // topics by name
	produceBatches(t, cl, "lp", 0, 2)

	// A fetch at the high watermark with a max wait far beyond the test's
	// deadline: it can only return with records if the commit wakes it.
	req := fetchReq("lp", 1<<20, fetchPart(0, 2, 1<<20))
	req.MinBytes = 1
	req.MaxWaitMillis = 600_000
	got := make(chan *kmsg.FetchResponse, 1)
	fetcher, _ := a.client(t, kgo.MaxVersions(kversion.V2_8_0()))
	go func() {
		resp, err := req.RequestWith(ctxTimeout(t), fetcher)
		if err != nil {
			t.Error(err)
		}
		got <- resp
	}()
	// The produce may land before or after the fetch starts waiting;
	// either way the fetch must return the new batch.
	produceBatches(t, cl, "lp", 0, 3)
	resp := <-got
	if resp == nil {
		t.FailNow()
	}
	p := resp.Topics[0].Partitions[0]
	if bs := batchesIn(t, p.RecordBatches); p.ErrorCode != 0 || len(bs) != 1 || bs[0].FirstOffset != 2 || p.HighWatermark != 5 {
		t.Fatalf("long poll: %s, %d batches, hwm %d", kerr.ErrorForCode(p.ErrorCode), len(bs), p.HighWatermark)
	}
}

// Produce v13 and Fetch v13+ name topics by id.
func TestProduceFetchByTopicID(t *testing.T) {
	a := startAgent(t, fastIngest)
	createTopic(t, a, "ids", 1, nil)
	cl, adm := a.client(t) // newest versions
	td, err := adm.ListTopics(ctxTimeout(t), "ids")
	if err != nil {
		t.Fatal(err)
	}
	id := td["ids"].ID

	preq := kmsg.NewPtrProduceRequest()
	preq.Acks = -1
	preq.TimeoutMillis = 10000
	preq.Topics = []kmsg.ProduceRequestTopic{
		{TopicID: id, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: segmenttest.New(segmenttest.Options{Records: 3})}}},
		{TopicID: [16]byte{1}, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: segmenttest.New(segmenttest.Options{Records: 3})}}},
	}
	presp := rawProduce(t, cl, preq)
	if presp.Version < 13 {
		// The agent advertises Produce v13 and franz-go speaks it: a lower
		// version means ApiVersions lost it.
		t.Fatalf("client negotiated Produce v%d, want 13", presp.Version)
	}
	if p := presp.Topics[0].Partitions[0]; p.ErrorCode != 0 || presp.Topics[0].TopicID != id {
		t.Fatalf("produce by id: %s", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := presp.Topics[1].Partitions[0]; p.ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("produce to unknown id: %s", kerr.ErrorForCode(p.ErrorCode))
	}

	freq := kmsg.NewPtrFetchRequest()
	freq.MaxBytes = 1 << 20
	freq.SessionEpoch = -1
	freq.Topics = []kmsg.FetchRequestTopic{
		{TopicID: id, Partitions: []kmsg.FetchRequestTopicPartition{fetchPart(0, 0, 1<<20)}},
		{TopicID: [16]byte{1}, Partitions: []kmsg.FetchRequestTopicPartition{fetchPart(0, 0, 1<<20)}},
	}
	fresp := rawFetch(t, cl, freq)
	if fresp.Version < 13 {
		t.Fatalf("client negotiated Fetch v%d", fresp.Version)
	}
	if p := fresp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(batchesIn(t, p.RecordBatches)) != 1 || fresp.Topics[0].TopicID != id {
		t.Fatalf("fetch by id: %s", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := fresp.Topics[1].Partitions[0]; p.ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("fetch of unknown id: %s", kerr.ErrorForCode(p.ErrorCode))
	}
}
