package agent

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDeleteRecords(t *testing.T) {
	a := startAgent(t)
	cl, adm := a.client(t, kgo.DefaultProduceTopic("dr"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := ctxTimeout(t)
	if r, err := adm.CreateTopic(ctx, 2, 1, nil, "dr"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	if r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("compact")}, "kv"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	// One batch of 10 records on partition 0, one record on partition 1.
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Value: []byte{byte('a' + i)}})
	}
	recs = append(recs, &kgo.Record{Partition: 1, Value: []byte("p1")})
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	res, err := adm.DeleteRecords(ctx, kadm.Offsets{"dr": {0: {At: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := res.Lookup("dr", 0); !ok || r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("DeleteRecords(dr/0, 4) = %+v", r)
	}
	starts, err := adm.ListStartOffsets(ctx, "dr")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("dr", 0); o.Offset != 4 {
		t.Fatalf("earliest after DeleteRecords = %d, want 4", o.Offset)
	}
	if o, _ := starts.Lookup("dr", 1); o.Offset != 0 {
		t.Fatalf("other partition's earliest = %d, want 0", o.Offset)
	}

	// A consumer at 0 is out of range and resets to the start; the batch
	// holding offset 4 comes whole, the client skips what lies below.
	c, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"dr": {0: kgo.NewOffset().At(0)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []string
	for len(got) < 6 {
		fs := c.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != 6 || got[0] != "e" {
		t.Fatalf("consumer after the reset read %v, want e..j", got)
	}

	// Lower than the start: nothing changes, the start is answered.
	res, err = adm.DeleteRecords(ctx, kadm.Offsets{"dr": {0: {At: 2}}})
	if r, _ := res.Lookup("dr", 0); err != nil || r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("DeleteRecords below the start = %+v, %v", r, err)
	}
	// -1: everything, up to the high watermark.
	res, err = adm.DeleteRecords(ctx, kadm.Offsets{"dr": {1: {At: -1}}})
	if r, _ := res.Lookup("dr", 1); err != nil || r.Err != nil || r.LowWatermark != 1 {
		t.Fatalf("DeleteRecords(-1) = %+v, %v", r, err)
	}

	// Errors, per partition, through the raw request.
	req := kmsg.NewPtrDeleteRecordsRequest()
	for _, tc := range []struct {
		topic     string
		partition int32
		offset    int64
	}{{"dr", 0, 11}, {"dr", 0, -2}, {"dr", 7, 0}, {"nope", 0, 0}, {"kv", 0, 0}} {
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = tc.topic
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = tc.partition, tc.offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	// Straight to the broker: the client would otherwise answer for
	// the unknown topic itself.
	kresp, err := cl.Broker(int(a.NodeID())).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.DeleteRecordsResponse)
	want := []error{kerr.OffsetOutOfRange, kerr.OffsetOutOfRange, kerr.UnknownTopicOrPartition, kerr.UnknownTopicOrPartition, kerr.PolicyViolation}
	if len(resp.Topics) != len(want) {
		t.Fatalf("%d topics answered, want %d", len(resp.Topics), len(want))
	}
	for i, w := range want {
		p := resp.Topics[i].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); !errors.Is(err, w) || p.LowWatermark != -1 {
			t.Errorf("%s/%d: %v, low watermark %d; want %v, -1", resp.Topics[i].Topic, p.Partition, err, p.LowWatermark, w)
		}
	}
	// None of that moved anything.
	starts, err = adm.ListStartOffsets(ctx, "dr", "kv")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("dr", 0); o.Offset != 4 {
		t.Fatalf("dr/0 start %d after refused requests", o.Offset)
	}
}
