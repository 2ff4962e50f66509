package janitor

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/agent/ingest"
	"github.com/siltdata/silt/fetch"
	"github.com/siltdata/silt/metastore"
)

// rec is one record to produce: a nil value is a tombstone.
type rec struct {
	key, value string
	tombstone  bool
	ts         int64
}

// makeBatch encodes records as one batch (base offset 0) with the given
// codec attribute, as a producer sends it.
func makeBatch(t *testing.T, recs []rec, codec int16, pid int64, seq int32) []byte {
	t.Helper()
	var raw []byte
	first := recs[0].ts
	maxTS := first
	for i, r := range recs {
		kr := kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: r.ts - first, Key: []byte(r.key)}
		if !r.tombstone {
			kr.Value = []byte(r.value)
		}
		body := kr.AppendTo(nil)
		// kmsg's Record encoding starts with its length: compute it.
		kr.Length = int32(len(body) - varintLen(int64(kr.Length)))
		raw = kr.AppendTo(raw)
		maxTS = max(maxTS, r.ts)
	}
	records := raw
	if codec != 0 {
		var err error
		if records, err = compress(raw, codec); err != nil {
			t.Fatal(err)
		}
	}
	rb := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Attributes: codec, LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp: first, MaxTimestamp: maxTS, ProducerID: pid, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(recs)), Records: records}
	if pid >= 0 {
		rb.ProducerEpoch, rb.FirstSequence = 0, seq
	}
	return encodeBatch(&rb)
}

func varintLen(v int64) int {
	n := 1
	u := uint64((v << 1) ^ (v >> 63))
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// produceBatches writes each batch to partition 0 of top in its own
// segment and returns the base offset each got.
func (e *env) produceBatches(t *testing.T, top metastore.Topic, batches [][]byte, pid int64) []int64 {
	t.Helper()
	var bases []int64
	for _, b := range batches {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			t.Fatal(err)
		}
		it := ingest.Item{TopicPartition: metastore.TopicPartition{Topic: top.ID}, Batch: b, Records: rb.LastOffsetDelta + 1,
			MaxTimestamp: rb.MaxTimestamp, ProducerID: pid, ProducerEpoch: rb.ProducerEpoch, BaseSequence: rb.FirstSequence}
		if pid < 0 {
			it.ProducerEpoch, it.BaseSequence = -1, -1
		}
		pend, err := e.pipe.Append(t.Context(), []ingest.Item{it})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		res, err := pend.Wait(ctx)
		cancel()
		if err != nil || res[0].Err != nil {
			t.Fatalf("produce: %v %v", err, res)
		}
		bases = append(bases, res[0].BaseOffset)
	}
	return bases
}

// readRecords reads partition 0 of top from offset 0 and returns every
// record by offset, and the batches' record counts by base offset.
func (e *env) readRecords(t *testing.T, top metastore.Topic) (map[int64]rec, map[int64]int32) {
	t.Helper()
	data, _, err := e.read(t, metastore.TopicPartition{Topic: top.ID}, 0)
	if err != nil {
		t.Fatal(err)
	}
	out, counts := map[int64]rec{}, map[int64]int32{}
	for len(data) > 0 {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(data); err != nil {
			t.Fatal(err)
		}
		data = data[batchLen(data):]
		counts[rb.FirstOffset] = rb.NumRecords
		if err := eachRecord(&rb, func(off int64, r *kmsg.Record, _ []byte) bool {
			out[off] = rec{key: string(r.Key), value: string(r.Value), tombstone: r.Value == nil, ts: rb.FirstTimestamp + r.TimestampDelta64}
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out, counts
}

// latestPerKey is what log compaction must leave of written records
// (offset -> record): the last record of each key, tombstones older than
// oldTombstones dropped.
func latestPerKey(written map[int64]rec, oldTombstones int64) map[int64]rec {
	last := map[string]int64{}
	for off, r := range written {
		if o, ok := last[r.key]; !ok || off > o {
			last[r.key] = off
		}
	}
	want := map[int64]rec{}
	for _, off := range last {
		if r := written[off]; !r.tombstone || r.ts >= oldTombstones {
			want[off] = r
		}
	}
	return want
}

func sameLog(t *testing.T, got, want map[int64]rec) {
	t.Helper()
	for off, w := range want {
		if g, ok := got[off]; !ok || g != w {
			t.Errorf("offset %d: read %+v (present %v), want %+v", off, g, ok, w)
		}
	}
	for off, g := range got {
		if _, ok := want[off]; !ok {
			t.Errorf("offset %d: %+v still there, compaction should have removed it", off, g)
		}
	}
}

// writeUpdates produces n batches of updates over keys k0..k(keys-1),
// with every codec, a few tombstones old and new, and returns what was
// written by offset.
func (e *env) writeUpdates(t *testing.T, top metastore.Topic, n, keys int) map[int64]rec {
	t.Helper()
	now := time.Now().UnixMilli()
	written := map[int64]rec{}
	for i := range n {
		var recs []rec
		for j := range 3 {
			k := (i*3 + j) % keys
			r := rec{key: fmt.Sprint("k", k), value: fmt.Sprintf("v%d-%d", i, j), ts: now - int64(n-i)*1000}
			switch {
			case i%11 == 5 && j == 0: // an old tombstone: goes
				r = rec{key: r.key, tombstone: true, ts: now - 48*3600*1000}
			case i == n-1 && j == 2: // a recent one: stays
				r = rec{key: r.key, tombstone: true, ts: now}
			}
			recs = append(recs, r)
		}
		base := e.produceBatches(t, top, [][]byte{makeBatch(t, recs, int16(i%5), -1, 0)}, -1)[0]
		for j, r := range recs {
			written[base+int64(j)] = r
		}
	}
	return written
}

func compactedTopic(t *testing.T, e *env, name string, extra map[string]string) metastore.Topic {
	configs := map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"}
	for k, v := range extra {
		configs[k] = v
	}
	return e.topic(t, name, 1, configs)
}

// TestLogCompaction: after compaction, reading from offset 0 yields the
// latest value of every key (and tombstones within delete.retention.ms)
// at their original offsets; the rest is gone, from the log and the bucket.
func TestLogCompaction(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		top := compactedTopic(t, e, "kv", nil)
		written := e.writeUpdates(t, top, 40, 12)
		before, _ := e.readRecords(t, top)
		if len(before) != len(written) {
			t.Fatalf("read %d records before compaction, wrote %d", len(before), len(written))
		}
		j := e.janitor(t, testConfig("j"))
		if err := j.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		got, _ := e.readRecords(t, top)
		sameLog(t, got, latestPerKey(written, time.Now().UnixMilli()-24*3600*1000))
		sp := e.stored(t, metastore.TopicPartition{Topic: top.ID})
		if sp.CleanedOffset != sp.HighWatermark || sp.HighWatermark != 120 || sp.LogStartOffset != 0 {
			t.Fatalf("partition after cleaning %+v", sp)
		}
		if v := counterValue(j.m.cleanerRemovedBytes); v <= 0 {
			t.Fatal("no bytes counted as removed")
		}
		// Another pass finds nothing dirty: nothing changes.
		objs := e.objects(t)
		e.runOnce(t, testConfig("j"))
		got2, _ := e.readRecords(t, top)
		sameLog(t, got2, latestPerKey(written, time.Now().UnixMilli()-24*3600*1000))
		if after := e.objects(t); len(after) != len(objs) {
			t.Fatalf("an idle pass rewrote objects: %d, then %d", len(objs), len(after))
		}
		// New updates: the next cleaning covers them and the old part.
		more := e.writeUpdates(t, top, 10, 12)
		for off, r := range more {
			written[off] = r
		}
		e.runOnce(t, testConfig("j"))
		got3, _ := e.readRecords(t, top)
		sameLog(t, got3, latestPerKey(written, time.Now().UnixMilli()-24*3600*1000))
	})
}

// TestLogCompactionSeveralPasses: a dirty part with more keys than the
// offset map holds is cleaned over several passes, correctly.
func TestLogCompactionSeveralPasses(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		top := compactedTopic(t, e, "kv", nil)
		written := e.writeUpdates(t, top, 30, 25)
		cfg := testConfig("j")
		cfg.CleanerKeys = 6
		passes := 0
		for {
			e.runOnce(t, cfg)
			passes++
			if sp := e.stored(t, metastore.TopicPartition{Topic: top.ID}); sp.CleanedOffset == sp.HighWatermark {
				break
			}
			if passes > 40 {
				t.Fatal("cleaning never reached the end")
			}
		}
		if passes < 4 {
			t.Fatalf("cleaned in %d passes with a map of 6 keys for 25 keys", passes)
		}
		got, _ := e.readRecords(t, top)
		// Keys mapped in an early pass and updated later are only
		// superseded in the pass that maps the later value; after the
		// last pass the log is fully compacted but for the part before
		// that pass's start, which the last pass rewrote too.
		sameLog(t, got, latestPerKey(written, time.Now().UnixMilli()-24*3600*1000))
		t.Logf("%d passes", passes)
	})
}

// TestLogCompactionRatioAndLag: a partition whose dirty part is below
// min.cleanable.dirty.ratio, or younger than min.compaction.lag.ms, is
// left alone; max.compaction.lag.ms forces it.
func TestLogCompactionRatioAndLag(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		lazy := e.topic(t, "lazy", 1, map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.5"})
		young := e.topic(t, "young", 1, map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01",
			"min.compaction.lag.ms": "86400000"})
		forced := e.topic(t, "forced", 1, map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "1",
			"max.compaction.lag.ms": "1000"})
		e.writeUpdates(t, lazy, 30, 90) // every key once: cleaning removes nothing
		e.writeUpdates(t, young, 8, 3)
		e.writeUpdates(t, forced, 8, 3)
		// A first cleaning of lazy and forced happens (everything is
		// dirty: ratio 1); then new data is a small part of lazy's log
		// (below its ratio of 0.5), and forced's new data is older than
		// its max.compaction.lag.ms.
		e.runOnce(t, testConfig("j"))
		e.writeUpdates(t, lazy, 1, 90)
		e.writeUpdates(t, forced, 2, 3)
		e.runOnce(t, testConfig("j"))
		if sp := e.stored(t, metastore.TopicPartition{Topic: lazy.ID}); sp.CleanedOffset == sp.HighWatermark {
			t.Fatalf("lazy (dirty ratio below 1) was cleaned: %+v", sp)
		}
		if sp := e.stored(t, metastore.TopicPartition{Topic: young.ID}); sp.CleanedOffset != 0 {
			t.Fatalf("young (min.compaction.lag.ms of a day) was cleaned: %+v", sp)
		}
		if sp := e.stored(t, metastore.TopicPartition{Topic: forced.ID}); sp.CleanedOffset != sp.HighWatermark {
			t.Fatalf("forced (max.compaction.lag.ms 1s) was not cleaned: %+v", sp)
		}
	})
}

// TestLogCompactionKeepsProducerTail: a producer's last batch stays,
// emptied, when all its records are superseded; other emptied batches go.
func TestLogCompactionKeepsProducerTail(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		top := compactedTopic(t, e, "kv", nil)
		now := time.Now().UnixMilli()
		b1 := makeBatch(t, []rec{{key: "a", value: "1", ts: now}, {key: "b", value: "1", ts: now}}, 0, 42, 0)
		b2 := makeBatch(t, []rec{{key: "a", value: "2", ts: now}}, 4, 42, 2)
		e.produceBatches(t, top, [][]byte{b1, b2}, 42)
		// A plain producer supersedes both.
		e.produceBatches(t, top, [][]byte{makeBatch(t, []rec{{key: "a", value: "3", ts: now}, {key: "b", value: "3", ts: now}}, 0, -1, 0)}, -1)
		e.runOnce(t, testConfig("j"))
		got, counts := e.readRecords(t, top)
		if len(got) != 2 || got[3].value != "3" || got[4].value != "3" {
			t.Fatalf("records after cleaning %+v", got)
		}
		// b1 [0,1] went; b2 [2] (producer 42's last) stays, empty.
		if _, ok := counts[0]; ok {
			t.Fatal("the superseded first batch of producer 42 is still there")
		}
		if n, ok := counts[2]; !ok || n != 0 {
			t.Fatalf("producer 42's last batch: present %v with %d records, want an empty batch", ok, n)
		}
	})
}

// TestTailingDuringCompaction: readers going through the log while it is
// compacted miss no record that compaction keeps.
func TestTailingDuringCompaction(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		top := compactedTopic(t, e, "kv", nil)
		written := e.writeUpdates(t, top, 60, 15)
		kept := latestPerKey(written, time.Now().UnixMilli()-24*3600*1000)
		cfg := testConfig("j")
		cfg.ObjectBytes = 8 << 10 // several swaps per cleaning
		cfg.CleanerKeys = 8       // several cleanings
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		j := e.janitor(t, cfg)
		wg.Go(func() { _ = j.Run(ctx) })
		tp := metastore.TopicPartition{Topic: top.ID}
		rounds := 0
		deadline := time.Now().Add(60 * time.Second)
		for ; ; rounds++ {
			if time.Now().After(deadline) {
				t.Fatalf("compaction did not finish: %+v", e.stored(t, tp))
			}
			seen := map[int64]bool{}
			r, err := fetch.New(fetch.DefaultConfig(), e.store, e.bucket, nil, prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			for off := int64(0); off < 180; {
				data, _, err := r.Read(t.Context(), tp, off, 300) // a batch or two at a time
				if err != nil {
					t.Fatal(err)
				}
				if len(data) == 0 {
					break
				}
				for len(data) > 0 {
					var rb kmsg.RecordBatch
					if err := rb.ReadFrom(data); err != nil {
						t.Fatal(err)
					}
					data = data[batchLen(data):]
					_ = eachRecord(&rb, func(o int64, _ *kmsg.Record, _ []byte) bool { seen[o] = true; return true })
					off = rb.FirstOffset + int64(rb.LastOffsetDelta) + 1
				}
			}
			r.Close()
			for off := range kept {
				if !seen[off] {
					t.Fatalf("round %d: a reader missed the kept record at %d", rounds, off)
				}
			}
			if sp := e.stored(t, tp); sp.CleanedOffset == sp.HighWatermark && rounds > 3 {
				break
			}
		}
		cancel()
		wg.Wait()
		t.Logf("%d reading rounds during compaction", rounds)
		got, _ := e.readRecords(t, top)
		sameLog(t, got, kept)
	})
}
