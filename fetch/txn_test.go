package fetch

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/agent/ingest"
	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/segment"
	"github.com/siltdata/silt/segment/segmenttest"
)

// produceTxn writes one transactional batch of n records for p to
// partition part, and waits for its commit.
func (e *env) produceTxn(t *testing.T, part int32, p metastore.TxnProducer, seq int32, n int) {
	t.Helper()
	b := segmenttest.New(segmenttest.Options{Records: n, Idempotent: true, ProducerID: p.ProducerID, ProducerEpoch: p.Epoch, BaseSequence: seq})
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	rb.Attributes |= 0x10
	b = rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	pend, err := e.pipe.Append(context.Background(), []ingest.Item{{TopicPartition: e.tp(part), Batch: b, Records: int32(n),
		MaxTimestamp: segmenttest.BaseTimestamp, ProducerID: p.ProducerID, ProducerEpoch: p.Epoch, BaseSequence: seq, Transactional: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := pend.Wait(ctx)
	if err != nil || res[0].Err != nil {
		t.Fatalf("transactional produce: %v %+v", err, res)
	}
}

// TestReadCommittedCache: a reader whose cached index holds a partition
// stops read_committed consumers at a transaction this agent's commit
// began (without serving the transaction from the cache), serves
// read_uncommitted ones past it, and lets read_committed ones through
// once the transaction's end is notified, with the aborted list.
func TestReadCommittedCache(t *testing.T) {
	e := newEnv(t)
	r := newReader(t, e, DefaultConfig())
	ctx := context.Background()
	claim, err := e.store.ClaimTransaction(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	init, err := e.store.InitProducer(ctx, metastore.InitProducerRequest{ID: "tx", Claim: claim, TimeoutMs: 60000, ProducerID: -1, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	p := metastore.TxnProducer{ID: "tx", ProducerID: init.ProducerID, Epoch: init.Epoch}
	tp := e.tp(0)

	e.produce(t, 0, 3) // [0, 2]
	if data, offs, ab, err := r.ReadCommitted(ctx, tp, 0, 1<<20); err != nil || len(data) == 0 || offs.LastStableOffset != 3 || ab != nil {
		t.Fatalf("read_committed without transactions: %d bytes, %+v, %v, %v", len(data), offs, ab, err)
	}
	if _, err := e.store.AddToTransaction(ctx, metastore.AddToTxnRequest{TxnProducer: p, Claim: claim, Partitions: []metastore.TopicPartition{tp}}); err != nil {
		t.Fatal(err)
	}
	e.produceTxn(t, 0, p, 0, 2) // [3, 4], transactional
	e.produce(t, 0, 1)          // [5]
	data, offs, _, err := r.ReadCommitted(ctx, tp, 3, 1<<20)
	if err != nil || len(data) != 0 || offs.LastStableOffset != 3 || offs.HighWatermark != 6 {
		t.Fatalf("read_committed at an open transaction: %d bytes, %+v, %v", len(data), offs, err)
	}
	if data, _, err := r.Read(ctx, tp, 3, 1<<20); err != nil || len(parseOffsets(t, data)) != 2 {
		t.Fatalf("read_uncommitted past the open transaction: %v %v", parseOffsets(t, data), err)
	}
	// From 0, read_committed stops before the transaction.
	data, _, _, err = r.ReadCommitted(ctx, tp, 0, 1<<20)
	if got := parseOffsets(t, data); err != nil || len(got) != 1 || got[0] != 0 {
		t.Fatalf("read_committed from 0: %v %v", got, err)
	}

	// The abort, made elsewhere and notified.
	res, err := e.store.EndTransaction(ctx, metastore.EndTxnRequest{TxnProducer: p, Claim: claim})
	if err != nil {
		t.Fatal(err)
	}
	r.Notify(res.Written)
	data, offs, ab, err := r.ReadCommitted(ctx, tp, 3, 1<<20)
	if err != nil || offs.LastStableOffset != 7 || offs.AbortedEnd != 7 {
		t.Fatalf("read_committed after the abort: %+v %v", offs, err)
	}
	if got := parseOffsets(t, data); len(got) != 3 || got[0] != 3 || got[1] != 5 || got[2] != 6 {
		t.Fatalf("read_committed after the abort reads batches at %v", got)
	}
	if len(ab) != 1 || ab[0] != (metastore.AbortedTxn{ProducerID: p.ProducerID, FirstOffset: 3, LastOffset: 6}) {
		t.Fatalf("aborted list %+v", ab)
	}
	// The marker is served from the index row: a control batch at 6.
	var rb kmsg.RecordBatch
	last := data[len(data)-metastore.MarkerBatchLen:]
	if err := rb.ReadFrom(last); err != nil || rb.FirstOffset != 6 || rb.Attributes&0x30 != 0x30 || rb.ProducerID != p.ProducerID {
		t.Fatalf("marker batch %+v %v", rb, err)
	}
	// A later read at the high watermark needs no aborted list.
	e.produce(t, 0, 1)
	if _, offs, ab, err := r.ReadCommitted(ctx, tp, 7, 1<<20); err != nil || ab != nil || offs.LastStableOffset != 8 {
		t.Fatalf("read_committed after the abort marker: %+v %+v %v", offs, ab, err)
	}
}

// parseOffsets returns the base offsets of the batches in data.
func parseOffsets(t *testing.T, data []byte) []int64 {
	t.Helper()
	var out []int64
	for len(data) > 0 {
		base, _ := segment.BatchOffsets(data)
		out = append(out, base)
		n := int(int32(uint32(data[8])<<24|uint32(data[9])<<16|uint32(data[10])<<8|uint32(data[11]))) + 12
		data = data[n:]
	}
	return out
}
