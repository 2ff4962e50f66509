package janitor

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/agent/ingest"
	"github.com/siltdata/silt/fetch"
	"github.com/siltdata/silt/metastore"
)

// txnProducer drives one transactional id through the store, as the
// transaction coordinator does.
type txnProducer struct {
	e     *env
	claim int64
	p     metastore.TxnProducer
	seq   map[metastore.TopicPartition]int32
}

func (e *env) txnProducer(t *testing.T, id string) *txnProducer {
	t.Helper()
	claim, err := e.store.ClaimTransaction(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.store.InitProducer(t.Context(), metastore.InitProducerRequest{ID: id, Claim: claim, TimeoutMs: 600000, ProducerID: -1, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &txnProducer{e: e, claim: claim, p: metastore.TxnProducer{ID: id, ProducerID: res.ProducerID, Epoch: res.Epoch},
		seq: map[metastore.TopicPartition]int32{}}
}

// produce adds tp to the transaction and writes recs to it as one
// transactional batch; it returns the batch's base offset.
func (x *txnProducer) produce(t *testing.T, tp metastore.TopicPartition, recs []rec) int64 {
	t.Helper()
	if _, err := x.e.store.AddToTransaction(t.Context(), metastore.AddToTxnRequest{TxnProducer: x.p, Claim: x.claim,
		Partitions: []metastore.TopicPartition{tp}}); err != nil {
		t.Fatal(err)
	}
	seq := x.seq[tp]
	x.seq[tp] += int32(len(recs))
	var rb kmsg.RecordBatch
	b := makeBatch(t, recs, 0, x.p.ProducerID, seq)
	if err := rb.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	rb.Attributes |= attrTransactional
	rb.ProducerEpoch = x.p.Epoch
	b = encodeBatch(&rb)
	pend, err := x.e.pipe.Append(t.Context(), []ingest.Item{{TopicPartition: tp, Batch: b, Records: int32(len(recs)),
		MaxTimestamp: rb.MaxTimestamp, ProducerID: x.p.ProducerID, ProducerEpoch: x.p.Epoch, BaseSequence: seq, Transactional: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := pend.Wait(ctx)
	if err != nil || res[0].Err != nil {
		t.Fatalf("transactional produce: %v %+v", err, res)
	}
	return res[0].BaseOffset
}

func (x *txnProducer) end(t *testing.T, commit bool) {
	t.Helper()
	if _, err := x.e.store.EndTransaction(t.Context(), metastore.EndTxnRequest{TxnProducer: x.p, Claim: x.claim, Commit: commit}); err != nil {
		t.Fatal(err)
	}
}

// readCommitted reads tp from offset through a fresh reader as a
// read_committed consumer does, and returns the bytes, the offsets, and
// the aborted transactions answered.
func (e *env) readCommitted(t *testing.T, tp metastore.TopicPartition, offset int64) ([]byte, metastore.PartitionOffsets, []metastore.AbortedTxn) {
	t.Helper()
	r, err := fetch.New(fetch.DefaultConfig(), e.store, e.bucket, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, offs, aborted, err := r.ReadCommitted(t.Context(), tp, offset, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return data, offs, aborted
}

// batchesOf lists the batches in data.
func batchesOf(t *testing.T, data []byte) []kmsg.RecordBatch {
	t.Helper()
	var out []kmsg.RecordBatch
	for len(data) > 0 {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(data[:batchLen(data)]); err != nil {
			t.Fatal(err)
		}
		out = append(out, rb)
		data = data[batchLen(data):]
	}
	return out
}

// TestTransactionalDataCompactedAndRetained: transaction markers (index
// rows without an object) are read, compacted into objects byte for byte,
// and retained like any other row, and the aborted list and last stable
// offset stay right through both.
func TestTransactionalDataCompactedAndRetained(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		now := time.Now().UnixMilli()
		top := e.topic(t, "t", 2, nil)
		tp0, tp1 := metastore.TopicPartition{Topic: top.ID}, metastore.TopicPartition{Topic: top.ID, Partition: 1}
		x := e.txnProducer(t, "tx")
		// Batches over 1 KiB: compacted one per chunk (and row) below.
		r := func(i int) []rec {
			return []rec{{key: fmt.Sprint("k", i), value: strings.Repeat(fmt.Sprint(i), 1100), ts: now}}
		}
		// A committed transaction over both partitions, plain data in
		// between, an aborted one, and one left open.
		e.produce(t, top, now, 6, 0, 1)
		x.produce(t, tp0, r(1))
		e.produce(t, top, now, 6, 0)
		x.produce(t, tp1, r(2))
		x.end(t, true)
		first := x.produce(t, tp0, r(3))
		x.produce(t, tp0, r(4))
		x.end(t, false)
		e.produce(t, top, now, 6, 0)
		open := x.produce(t, tp0, r(5))
		e.produce(t, top, now, 6, 0)

		all, offs, err := e.read(t, tp0, 0)
		if err != nil {
			t.Fatal(err)
		}
		// 0-5 plain, 6 txn, 7-12 plain, 13 commit marker, 14-15 aborted
		// txn, 16 abort marker, 17-22 plain, 23 open txn, 24-29 plain.
		if offs.HighWatermark != 30 || offs.LastStableOffset != open || open != 23 || offs.AbortedEnd != 17 || first != 14 {
			t.Fatalf("offsets %+v, open transaction at %d, aborted at %d", offs, open, first)
		}
		bs := batchesOf(t, all)
		var markers []int64
		for _, b := range bs {
			if b.Attributes&attrControl != 0 {
				markers = append(markers, b.FirstOffset)
				if b.ProducerID != x.p.ProducerID || b.Attributes&attrTransactional == 0 {
					t.Fatalf("marker at %d: %+v", b.FirstOffset, b)
				}
			}
		}
		if fmt.Sprint(markers) != "[13 16]" {
			t.Fatalf("markers at %v, want [13 16]", markers)
		}
		committed, coffs, aborted := e.readCommitted(t, tp0, 0)
		if !bytes.Equal(committed, all[:len(committed)]) || len(batchesOf(t, committed)) != 8 || coffs.LastStableOffset != 23 {
			t.Fatalf("read_committed: %d batches up to %+v", len(batchesOf(t, committed)), coffs)
		}
		if len(aborted) != 1 || aborted[0] != (metastore.AbortedTxn{ProducerID: x.p.ProducerID, FirstOffset: 14, LastOffset: 16}) {
			t.Fatalf("aborted list %+v", aborted)
		}
		before1, _, err := e.read(t, tp1, 0)
		if err != nil {
			t.Fatal(err)
		}

		// Compaction writes the markers into objects: the log reads the
		// same, and no marker row is left.
		cfg := testConfig("j")
		cfg.BatchRows = 100
		cfg.ChunkBytes = 1 << 10 // a chunk (and a row) per batch: retention below goes batch by batch
		e.runOnce(t, cfg)
		for _, c := range []struct {
			tp     metastore.TopicPartition
			before []byte
		}{{tp0, all}, {tp1, before1}} {
			after, _, err := e.read(t, c.tp, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, c.before) {
				t.Fatalf("partition %d: %d bytes after compaction differ from the %d before", c.tp.Partition, len(after), len(c.before))
			}
			rows, err := e.store.IndexRows(t.Context(), e.stored(t, c.tp).ID, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, row := range rows {
				if row.IsMarker() || !row.Compacted {
					t.Fatalf("partition %d row [%d, %d] after compaction: marker %v, compacted %v", c.tp.Partition, row.BaseOffset, row.LastOffset, row.IsMarker(), row.Compacted)
				}
			}
		}
		committed2, coffs2, aborted2 := e.readCommitted(t, tp0, 0)
		if !bytes.Equal(committed2, committed) || coffs2 != coffs || len(aborted2) != 1 || aborted2[0] != aborted[0] {
			t.Fatalf("read_committed after compaction: %+v %+v", coffs2, aborted2)
		}
		// Reading from the aborted transaction's middle still lists it.
		if _, _, ab := e.readCommitted(t, tp0, 15); len(ab) != 1 {
			t.Fatalf("read_committed from 15: aborted %+v", ab)
		}

		// Retention past the abort marker removes the rows and the
		// aborted list with them; the open transaction still holds the
		// last stable offset.
		if _, err := e.store.DeleteRecords(t.Context(), tp0, 17); err != nil {
			t.Fatal(err)
		}
		e.runOnce(t, cfg)
		if _, _, ab := e.readCommitted(t, tp0, 17); len(ab) != 0 {
			t.Fatalf("aborted list after retention %+v", ab)
		}
		sp := e.stored(t, tp0)
		if sp.LogStartOffset != 17 || sp.LastStableOffset != 23 {
			t.Fatalf("after retention %+v", sp)
		}
		// The entry went with the row that held its marker.
		if ab, err := e.store.AbortedTransactions(t.Context(), tp0, 0, 100); err != nil || len(ab) != 0 {
			t.Fatalf("aborted list entries left below the log start: %+v %v", ab, err)
		}
		x.end(t, true)
		if _, o, _ := e.readCommitted(t, tp0, 17); o.LastStableOffset != o.HighWatermark || o.HighWatermark != 31 {
			t.Fatalf("after the last commit %+v", o)
		}
	})
}

// TestLogCompactionAbortedTransactions: log compaction by key removes
// aborted transactions' records (which supersede nothing) and cleans
// nothing at or after the last stable offset.
func TestLogCompactionAbortedTransactions(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		top := compactedTopic(t, e, "kv", nil)
		tp := metastore.TopicPartition{Topic: top.ID}
		now := time.Now().UnixMilli()
		x := e.txnProducer(t, "tx")
		plain := func(k, v string) {
			e.produceBatches(t, top, [][]byte{makeBatch(t, []rec{{key: k, value: v, ts: now}}, 0, -1, 0)}, -1)
		}
		plain("a", "1")                                                   // 0
		x.produce(t, tp, []rec{{key: "b", value: "1", ts: now}})          // 1
		x.end(t, true)                                                    // 2
		x.produce(t, tp, []rec{{key: "a", value: "aborted", ts: now}})    // 3
		x.produce(t, tp, []rec{{key: "b", value: "aborted", ts: now}})    // 4
		x.end(t, false)                                                   // 5
		plain("c", "1")                                                   // 6
		x.produce(t, tp, []rec{{key: "c", value: "still open", ts: now}}) // 7
		plain("c", "2")                                                   // 8
		e.runOnce(t, testConfig("j"))
		got, _ := e.readRecords(t, top)
		want := map[int64]string{0: "a=1", 1: "b=1", 6: "c=1", 7: "c=still open", 8: "c=2"}
		for off, w := range want {
			if r, ok := got[off]; !ok || r.key+"="+r.value != w {
				t.Errorf("offset %d: %+v (present %v), want %s", off, r, ok, w)
			}
		}
		for off, r := range got {
			if off == 2 || off == 5 {
				continue // the markers' control records, checked below
			}
			if _, ok := want[off]; !ok {
				t.Errorf("offset %d: %+v should be gone", off, r)
			}
		}
		// The markers stay: control batches at 2 and 5.
		data, _, err := e.read(t, tp, 0)
		if err != nil {
			t.Fatal(err)
		}
		var markers []int64
		for _, b := range batchesOf(t, data) {
			if b.Attributes&attrControl != 0 {
				markers = append(markers, b.FirstOffset)
			}
		}
		if fmt.Sprint(markers) != "[2 5]" {
			t.Fatalf("markers at %v after cleaning", markers)
		}
		if sp := e.stored(t, tp); sp.CleanedOffset > 7 || sp.LastStableOffset != 7 {
			t.Fatalf("cleaned past the last stable offset: %+v", sp)
		}
	})
}
