package storetest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/siltdata/silt/metastore"
)

// janitorLease takes the janitor lease for the tests' writes.
func janitorLease(t *testing.T, s metastore.Backend) metastore.Lease {
	t.Helper()
	l, ok, err := s.AcquireLease(ctx(t), "janitor", "test", time.Hour)
	must(t, "AcquireLease", err)
	if !ok {
		t.Fatal("AcquireLease: lease held by another")
	}
	return l
}

// storedPartition returns the lifecycle's view of tp.
func storedPartition(t *testing.T, s metastore.Backend, tp metastore.TopicPartition) metastore.StoredPartition {
	t.Helper()
	all, err := s.StoredPartitions(ctx(t), 0, 1000)
	must(t, "StoredPartitions", err)
	for _, p := range all {
		if p.TopicPartition == tp {
			return p
		}
	}
	t.Fatalf("partition %v not in StoredPartitions", tp)
	return metastore.StoredPartition{}
}

func retain(t *testing.T, s metastore.Backend, l metastore.Lease, req metastore.RetainRequest) metastore.RetainResult {
	t.Helper()
	if req.MaxRows == 0 {
		req.MaxRows = 1000
	}
	res, err := s.Retain(ctx(t), l, req)
	must(t, "Retain", err)
	return res
}

func dead(t *testing.T, s metastore.Backend) []string {
	t.Helper()
	segs, err := s.DeadSegments(ctx(t), 0, 1000)
	must(t, "DeadSegments", err)
	var keys []string
	for _, sg := range segs {
		keys = append(keys, sg.Key)
	}
	slices.Sort(keys)
	return keys
}

func testLeases(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	a, ok, err := s.AcquireLease(c, "janitor", "a", time.Hour)
	must(t, "AcquireLease a", err)
	if !ok || a.Epoch < 1 || a.Holder != "a" || a.Name != "janitor" {
		t.Fatalf("first acquire = %+v, %v", a, ok)
	}
	again, ok, err := s.AcquireLease(c, "janitor", "a", time.Hour)
	must(t, "AcquireLease a again", err)
	if !ok || again != a {
		t.Fatalf("holder acquiring again = %+v, %v; want renewal of %+v", again, ok, a)
	}
	if _, ok, err := s.AcquireLease(c, "janitor", "b", time.Hour); err != nil || ok {
		t.Fatalf("another holder acquired a held lease: %v, %v", ok, err)
	}
	// Other names are independent.
	if o, ok, err := s.AcquireLease(c, "other", "b", time.Hour); err != nil || !ok || o.Holder != "b" {
		t.Fatalf("lease of another name: %+v, %v, %v", o, ok, err)
	}
	must(t, "RenewLease", s.RenewLease(c, a, time.Hour))
	must(t, "ReleaseLease", s.ReleaseLease(c, a))
	b, ok, err := s.AcquireLease(c, "janitor", "b", time.Hour)
	must(t, "AcquireLease b", err)
	if !ok || b.Epoch <= a.Epoch {
		t.Fatalf("after release, b = %+v, %v; want a newer epoch than %d", b, ok, a.Epoch)
	}
	wantErr(t, "RenewLease of a released lease", s.RenewLease(c, a, time.Hour), metastore.ErrLeaseLost)
	must(t, "ReleaseLease of a lost lease", s.ReleaseLease(c, a))
	if _, ok, _ := s.AcquireLease(c, "janitor", "c", time.Hour); ok {
		t.Fatal("releasing a lost lease freed the current holder's")
	}

	// Expiry: a short lease lapses and goes to the next holder, with a
	// new epoch; the old holder cannot renew it.
	must(t, "RenewLease short", s.RenewLease(c, b, 300*time.Millisecond))
	var cl metastore.Lease
	eventually(t, 10*time.Second, "expired lease acquired by another holder", func() bool {
		l, ok, err := s.AcquireLease(c, "janitor", "c", time.Hour)
		must(t, "AcquireLease c", err)
		cl = l
		return ok
	})
	if cl.Epoch <= b.Epoch {
		t.Fatalf("epoch after expiry %d, want above %d", cl.Epoch, b.Epoch)
	}
	wantErr(t, "RenewLease after expiry", s.RenewLease(c, b, time.Hour), metastore.ErrLeaseLost)
	// A holder taking its own lease again after it expired starts a new
	// epoch too: writes it had in flight under the old one are fenced.
	// (Acquiring with a tiny TTL renews it to expire at once.)
	eventually(t, 10*time.Second, "expired lease re-acquired by its holder with a new epoch", func() bool {
		l, ok, err := s.AcquireLease(c, "janitor", "c", time.Millisecond)
		must(t, "AcquireLease c again", err)
		return ok && l.Epoch > cl.Epoch
	})
	again2, ok, err := s.AcquireLease(c, "janitor", "c", time.Hour)
	must(t, "AcquireLease c for an hour", err)
	if !ok || again2.Epoch <= cl.Epoch {
		t.Fatalf("lease after re-acquiring = %+v, %v", again2, ok)
	}
	wantErr(t, "RenewLease of the older term", s.RenewLease(c, cl, time.Hour), metastore.ErrLeaseLost)
	must(t, "RenewLease of the new term", s.RenewLease(c, again2, time.Hour))
}

func testDeleteRecords(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "t", 1)
	tp := metastore.TopicPartition{Topic: top.ID}
	commit(t, s, "s1", batch(tp, 5, 1, 10), batch(tp, 5, 2, 10), batch(tp, 5, 3, 10))
	for _, tc := range []struct {
		offset, want int64
	}{{7, 7}, {3, 7}, {7, 7}, {-1, 15}, {15, 15}} {
		o, err := s.DeleteRecords(c, tp, tc.offset)
		must(t, fmt.Sprintf("DeleteRecords(%d)", tc.offset), err)
		if o.LogStartOffset != tc.want || o.HighWatermark != 15 {
			t.Fatalf("DeleteRecords(%d) = %+v, want log start %d, high watermark 15", tc.offset, o, tc.want)
		}
		got, err := s.Offsets(c, tp)
		must(t, "Offsets", err)
		if got != o {
			t.Fatalf("Offsets %+v after DeleteRecords answered %+v", got, o)
		}
	}
	for _, off := range []int64{16, -2, -100} {
		_, err := s.DeleteRecords(c, tp, off)
		wantErr(t, fmt.Sprintf("DeleteRecords(%d)", off), err, metastore.ErrOffsetOutOfRange)
	}
	_, err := s.DeleteRecords(c, metastore.TopicPartition{Topic: top.ID, Partition: 1}, 0)
	wantErr(t, "DeleteRecords unknown partition", err, metastore.ErrUnknownTopicOrPartition)
	_, err = s.DeleteRecords(c, metastore.TopicPartition{Topic: metastore.NewTopicID()}, 0)
	wantErr(t, "DeleteRecords unknown topic", err, metastore.ErrUnknownTopicOrPartition)

	// Moving the start into a row keeps the row; Retain reclaims the
	// rows wholly below the start and nothing else.
	top2 := createTopic(t, s, "u", 1)
	tp2 := metastore.TopicPartition{Topic: top2.ID}
	commit(t, s, "s2", batch(tp2, 5, 1, 10), batch(tp2, 5, 2, 10), batch(tp2, 5, 3, 10))
	if _, err := s.DeleteRecords(c, tp2, 7); err != nil {
		t.Fatal(err)
	}
	bs, o, err := s.Batches(c, tp2, 7, 1<<20)
	must(t, "Batches", err)
	if len(bs) != 2 || bs[0].BaseOffset != 5 || o.LogStartOffset != 7 {
		t.Fatalf("Batches from the new start = %+v, %+v; want the batch at 5 first", bs, o)
	}
	l := janitorLease(t, s)
	p := storedPartition(t, s, tp2)
	res := retain(t, s, l, metastore.RetainRequest{PartitionID: p.ID, RetainBytes: -1})
	if res.Removed[metastore.RetainBelowStart] != (metastore.Removed{Rows: 1, Bytes: 10}) || res.LogStartOffset != 7 || res.Moved != 0 || res.More {
		t.Fatalf("Retain after DeleteRecords = %+v; want one row below the start removed, start still 7", res)
	}
	if p := storedPartition(t, s, tp2); p.Rows != 2 || p.Bytes != 20 {
		t.Fatalf("after Retain: %d rows, %d bytes; want 2, 20", p.Rows, p.Bytes)
	}
}

func testRetention(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	l := janitorLease(t, s)
	top := createTopic(t, s, "t", 3)
	tp := metastore.TopicPartition{Topic: top.ID}
	commit(t, s, "s1", batch(tp, 2, 100, 10), batch(tp, 2, 200, 10))
	commit(t, s, "s2", batch(tp, 2, 300, 10), batch(tp, 2, 400, 10))
	p := storedPartition(t, s, tp)
	if p.Rows != 4 || p.Bytes != 40 || p.HighWatermark != 8 {
		t.Fatalf("stored %+v, want 4 rows of 40 bytes, high watermark 8", p)
	}
	if !p.FrontOK || p.Front.BaseOffset != 0 || p.Front.LastOffset != 1 || p.Front.MaxTimestamp != 100 || p.Front.Len != 10 {
		t.Fatalf("front row %+v (%v), want [0, 1] ts 100 len 10", p.Front, p.FrontOK)
	}
	if empty := storedPartition(t, s, metastore.TopicPartition{Topic: top.ID, Partition: 2}); empty.FrontOK {
		t.Fatalf("empty partition has a front row %+v", empty.Front)
	}

	// Time: the rows older than 250 go, from the front.
	res := retain(t, s, l, metastore.RetainRequest{PartitionID: p.ID, TimestampBelow: 250, RetainBytes: -1})
	if res.Removed[metastore.RetainTime] != (metastore.Removed{Rows: 2, Bytes: 20}) || res.LogStartOffset != 4 || res.Moved != 4 {
		t.Fatalf("time retention = %+v", res)
	}
	o, err := s.Offsets(c, tp)
	must(t, "Offsets", err)
	if o.LogStartOffset != 4 || o.HighWatermark != 8 {
		t.Fatalf("offsets after time retention %+v", o)
	}
	// Size: keep at least 10 bytes.
	res = retain(t, s, l, metastore.RetainRequest{PartitionID: p.ID, RetainBytes: 10})
	if res.Removed[metastore.RetainSize] != (metastore.Removed{Rows: 1, Bytes: 10}) || res.LogStartOffset != 6 {
		t.Fatalf("size retention = %+v", res)
	}
	if p := storedPartition(t, s, tp); p.Rows != 1 || p.Bytes != 10 || p.LogStartOffset != 6 {
		t.Fatalf("after size retention %+v", p)
	}
	// Nothing to do: nothing changes.
	res = retain(t, s, l, metastore.RetainRequest{PartitionID: p.ID, TimestampBelow: 250, RetainBytes: 10})
	if res.Moved != 0 || res.LogStartOffset != 6 || res.More {
		t.Fatalf("idle retention = %+v", res)
	}
	// Everything expired: the log is empty, start at the high watermark.
	res = retain(t, s, l, metastore.RetainRequest{PartitionID: p.ID, TimestampBelow: 1000, RetainBytes: -1})
	if res.LogStartOffset != 8 {
		t.Fatalf("full expiry = %+v, want start at the high watermark 8", res)
	}
	bs, o, err := s.Batches(c, tp, 8, 1<<20)
	must(t, "Batches", err)
	if len(bs) != 0 || o.LogStartOffset != 8 || o.HighWatermark != 8 {
		t.Fatalf("empty log: %d batches, %+v", len(bs), o)
	}
	// New data after full expiry continues at the high watermark.
	if r := commit(t, s, "s3", batch(tp, 1, 500, 10)); r[0].BaseOffset != 8 || r[0].LogStartOffset != 8 {
		t.Fatalf("commit after expiry = %+v", r[0])
	}

	// Bounded steps: MaxRows rows per call, More until done.
	tp1 := metastore.TopicPartition{Topic: top.ID, Partition: 1}
	var bsl []metastore.BatchAppend
	for i := range 10 {
		bsl = append(bsl, batch(tp1, 1, int64(i), 10))
	}
	commit(t, s, "s4", bsl...)
	p1 := storedPartition(t, s, tp1)
	steps := 0
	for {
		res := retain(t, s, l, metastore.RetainRequest{PartitionID: p1.ID, TimestampBelow: 1000, RetainBytes: -1, MaxRows: 3})
		steps++
		if n := res.Removed[metastore.RetainTime].Rows; n > 3 {
			t.Fatalf("step removed %d rows, over MaxRows 3", n)
		}
		if !res.More {
			break
		}
		if steps > 10 {
			t.Fatal("Retain never finished")
		}
	}
	if steps != 4 {
		t.Fatalf("10 rows took %d steps of 3, want 4", steps)
	}
	if p := storedPartition(t, s, tp1); p.Rows != 0 || p.Bytes != 0 || p.LogStartOffset != 10 {
		t.Fatalf("after bounded retention %+v", p)
	}
	_, err = s.Retain(c, l, metastore.RetainRequest{PartitionID: -5, MaxRows: 1})
	wantErr(t, "Retain of an unknown partition", err, metastore.ErrUnknownTopicOrPartition)
}

func testSegmentReferences(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	l := janitorLease(t, s)
	top := createTopic(t, s, "t", 2)
	p0 := metastore.TopicPartition{Topic: top.ID}
	p1 := metastore.TopicPartition{Topic: top.ID, Partition: 1}
	commit(t, s, "a", batch(p0, 1, 100, 10), batch(p0, 1, 100, 10), batch(p1, 1, 100, 10))
	commit(t, s, "b", batch(p0, 1, 900, 10))
	sp0, sp1 := storedPartition(t, s, p0), storedPartition(t, s, p1)

	retain(t, s, l, metastore.RetainRequest{PartitionID: sp0.ID, TimestampBelow: 500, RetainBytes: -1})
	if d := dead(t, s); len(d) != 0 {
		t.Fatalf("dead %v while partition 1 still points into a", d)
	}
	retain(t, s, l, metastore.RetainRequest{PartitionID: sp1.ID, TimestampBelow: 500, RetainBytes: -1})
	if d := dead(t, s); !slices.Equal(d, []string{"a"}) {
		t.Fatalf("dead %v, want [a]", d)
	}
	if segs, err := s.DeadSegments(c, time.Hour, 10); err != nil || len(segs) != 0 {
		t.Fatalf("DeadSegments(older than 1h) = %v, %v; want none yet", segs, err)
	}
	segs, err := s.DeadSegments(c, 0, 10)
	must(t, "DeadSegments", err)
	if len(segs) != 1 || segs[0].Size != 4096 {
		t.Fatalf("dead segment sizes %+v", segs)
	}
	known, err := s.KnownSegments(c, []string{"a", "b", "nope"})
	must(t, "KnownSegments", err)
	if !known["a"] || !known["b"] || known["nope"] {
		t.Fatalf("KnownSegments = %v", known)
	}
	// Forgetting leaves live segments alone.
	must(t, "ForgetSegments", s.ForgetSegments(c, l, []string{"a", "b"}))
	known, err = s.KnownSegments(c, []string{"a", "b"})
	must(t, "KnownSegments", err)
	if known["a"] || !known["b"] {
		t.Fatalf("after ForgetSegments(a, b): %v; want only b (still live)", known)
	}
	if bs, _, err := s.Batches(c, p0, 0, 1<<20); err != nil || len(bs) != 1 || bs[0].SegmentKey != "b" {
		t.Fatalf("live rows after forgetting a: %+v, %v", bs, err)
	}

	// A segment holding only duplicates is dead at once.
	commit(t, s, "i1", idem(p1, 5, 0, 0, 1))
	r := commit(t, s, "i2", idem(p1, 5, 0, 0, 1))
	expect(t, "duplicate", r[0], 1, metastore.ErrDuplicateSequence)
	if d := dead(t, s); !slices.Contains(d, "i2") || slices.Contains(d, "i1") {
		t.Fatalf("dead %v; want i2 (duplicates only) and not i1", d)
	}

	st, err := s.StorageStats(c)
	must(t, "StorageStats", err)
	if ts := st.Topics["t"]; ts.Rows != 2 || ts.Bytes != 110 || ts.Uncompacted != 110 {
		t.Fatalf("topic storage %+v, want 2 rows of 110 bytes, none compacted", ts)
	}
	if st.Segments["committed"].Objects != 2 || st.Segments["dead"].Objects != 1 {
		t.Fatalf("segment counts %+v", st.Segments)
	}
}

// swapSetup commits rows [0,1] ts 100, [2,4] ts 300, [5] ts 200 in
// three segments, after a row [0,0] ts 50 of another partition.
func swapSetup(t *testing.T, s metastore.Backend) (metastore.TopicPartition, metastore.StoredPartition, []metastore.IndexRow) {
	t.Helper()
	top := createTopic(t, s, "t", 2)
	tp := metastore.TopicPartition{Topic: top.ID}
	commit(t, s, "s1", batch(tp, 2, 100, 10), batch(metastore.TopicPartition{Topic: top.ID, Partition: 1}, 1, 50, 10))
	commit(t, s, "s2", batch(tp, 3, 300, 20))
	commit(t, s, "s3", batch(tp, 1, 200, 30))
	p := storedPartition(t, s, tp)
	rows, err := s.IndexRows(ctx(t), p.ID, 0, 10)
	must(t, "IndexRows", err)
	if len(rows) != 3 || rows[0].SegmentKey != "s1" || rows[2].LastOffset != 5 || rows[1].Compacted || rows[0].SegmentSize != 4096 {
		t.Fatalf("IndexRows = %+v", rows)
	}
	if rows[0].SegmentAge < 0 || rows[0].SegmentAge > time.Hour {
		t.Fatalf("segment age %v", rows[0].SegmentAge)
	}
	return tp, p, rows
}

func testSwapRows(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	l := janitorLease(t, s)
	tp, p, rows := swapSetup(t, s)
	from3, err := s.IndexRows(c, p.ID, 3, 10)
	must(t, "IndexRows from 3", err)
	if len(from3) != 2 || from3[0].BaseOffset != 2 {
		t.Fatalf("IndexRows from 3 = %+v; want the row holding 3 first", from3)
	}

	must(t, "AddPendingSegment", s.AddPendingSegment(c, "compacted-1"))
	must(t, "SwapRows", s.SwapRows(c, l, metastore.Swap{
		PartitionID: p.ID, Old: rows, Key: "compacted-1", Size: 777,
		New: []metastore.Batch{
			{BaseOffset: 0, LastOffset: 4, MaxTimestamp: 300, ChunkOffset: 8, ChunkLength: 100, Pos: 0, Len: 30},
			{BaseOffset: 5, LastOffset: 5, MaxTimestamp: 200, ChunkOffset: 108, ChunkLength: 50, Pos: 0, Len: 30},
		},
	}))
	bs, o, err := s.Batches(c, tp, 3, 1<<20)
	must(t, "Batches", err)
	if len(bs) != 2 || bs[0].BaseOffset != 0 || bs[0].LastOffset != 4 || bs[0].SegmentKey != "compacted-1" ||
		bs[1].BaseOffset != 5 || bs[1].ChunkOffset != 108 || o.HighWatermark != 6 {
		t.Fatalf("Batches after swap = %+v, %+v", bs, o)
	}
	after := storedPartition(t, s, tp)
	if after.Rows != 2 || after.Bytes != 60 || after.CompactedOffset != 6 || after.CompactedBytes != 60 {
		t.Fatalf("partition after swap %+v; want 2 rows, 60 bytes, all compacted up to 6", after)
	}
	// Only s1 still has a row (partition 1's).
	if d := dead(t, s); !slices.Equal(d, []string{"s2", "s3"}) {
		t.Fatalf("dead after swap %v, want [s2 s3]", d)
	}
	// Timestamp lookups stay exact at the row level.
	for _, tc := range []struct{ ts, off, got int64 }{{50, 0, 300}, {250, 0, 300}, {300, 0, 300}} {
		off, ts, found, err := offsetForTimestamp(c, s, tp, tc.ts, 0)
		if err != nil || !found || off != tc.off || ts != tc.got {
			t.Fatalf("OffsetForTimestamp(%d) = %d, %d, %v, %v; want %d, %d", tc.ts, off, ts, found, err, tc.off, tc.got)
		}
	}
	if off, ts, found, err := maxTimestamp(c, s, tp); err != nil || !found || off != 0 || ts != 300 {
		t.Fatalf("MaxTimestamp = %d, %d, %v, %v", off, ts, found, err)
	}
	rows, err = s.IndexRows(c, p.ID, 0, 10)
	must(t, "IndexRows", err)
	if len(rows) != 2 || !rows[0].Compacted || rows[0].SegmentSize != 777 {
		t.Fatalf("IndexRows after swap %+v", rows)
	}
	before, err := s.IndexRowsBefore(c, p.ID, 5, 10)
	must(t, "IndexRowsBefore", err)
	if len(before) != 1 || before[0].LastOffset != 4 {
		t.Fatalf("IndexRowsBefore(5) = %+v", before)
	}
	before, err = s.IndexRowsBefore(c, p.ID, 6, 10)
	must(t, "IndexRowsBefore", err)
	if len(before) != 2 || before[0].LastOffset != 5 || before[1].LastOffset != 4 {
		t.Fatalf("IndexRowsBefore(6) = %+v, want nearest first", before)
	}

	// A swap after a kept row takes its running max into account: new
	// data [6,7] ts 100 after max 300 is not where ts 250 is found.
	commit(t, s, "s4", batch(tp, 1, 100, 5), batch(tp, 1, 100, 5))
	more, err := s.IndexRows(c, p.ID, 6, 10)
	must(t, "IndexRows", err)
	must(t, "AddPendingSegment", s.AddPendingSegment(c, "compacted-2"))
	must(t, "SwapRows after a kept row", s.SwapRows(c, l, metastore.Swap{
		PartitionID: p.ID, Old: more, Key: "compacted-2", Size: 100,
		New: []metastore.Batch{{BaseOffset: 6, LastOffset: 7, MaxTimestamp: 100, Len: 10}},
	}))
	if off, _, found, err := offsetForTimestamp(c, s, tp, 250, 0); err != nil || !found || off != 0 {
		t.Fatalf("OffsetForTimestamp(250) = %d, %v, %v; want 0", off, found, err)
	}
	if off, _, found, err := offsetForTimestamp(c, s, tp, 50, 6); err != nil || !found || off != 6 {
		t.Fatalf("OffsetForTimestamp(50 from 6) = %d, %v, %v; want 6", off, found, err)
	}
	if p := storedPartition(t, s, tp); p.CompactedOffset != 8 || p.Rows != 3 || p.Bytes != 70 || p.CompactedBytes != 70 {
		t.Fatalf("after second swap %+v", p)
	}
	// Retention of compacted rows keeps the compacted byte count right.
	res := retain(t, s, l, metastore.RetainRequest{PartitionID: p.ID, TimestampBelow: 301, RetainBytes: -1})
	if res.LogStartOffset != 8 {
		t.Fatalf("retention over compacted rows = %+v", res)
	}
	if p := storedPartition(t, s, tp); p.Rows != 0 || p.Bytes != 0 || p.CompactedBytes != 0 {
		t.Fatalf("after retention %+v", p)
	}
	st, err := s.StorageStats(c)
	must(t, "StorageStats", err)
	if st.CompactedSegments.Objects != 0 || st.Segments["dead"].Objects < 4 {
		t.Fatalf("segments after everything expired: %+v, compacted %+v", st.Segments, st.CompactedSegments)
	}
}

func testSwapConflicts(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	l := janitorLease(t, s)
	tp, p, rows := swapSetup(t, s)
	newRows := []metastore.Batch{{BaseOffset: 0, LastOffset: 5, MaxTimestamp: 300, Len: 60}}
	swap := func(key string, old []metastore.IndexRow, nw []metastore.Batch) error {
		return s.SwapRows(c, l, metastore.Swap{PartitionID: p.ID, Old: old, Key: key, Size: 1, New: nw})
	}
	// Not pending: refused.
	wantErr(t, "swap to an unrecorded key", swap("nowhere", rows, newRows), metastore.ErrSegmentGone)
	must(t, "AddPendingSegment", s.AddPendingSegment(c, "k1"))
	// Inconsistent swaps are refused before touching the store.
	wantErr(t, "new rows beyond the old", swap("k1", rows, []metastore.Batch{{BaseOffset: 0, LastOffset: 9, Len: 1}}), metastore.ErrInvalidSwap)
	wantErr(t, "new rows overlapping", swap("k1", rows, []metastore.Batch{{BaseOffset: 0, LastOffset: 3, Len: 1}, {BaseOffset: 3, LastOffset: 5, Len: 1}}), metastore.ErrInvalidSwap)
	wantErr(t, "no rows", swap("k1", nil, newRows), metastore.ErrInvalidSwap)
	// Rows that are not the stored ones: a conflict.
	wrong := slices.Clone(rows)
	wrong[1].SegmentID = -1
	wantErr(t, "swap of rows in other segments", swap("k1", wrong, newRows), metastore.ErrSwapConflict)
	must(t, "swap of some consecutive rows", swap("k1", rows[1:], []metastore.Batch{{BaseOffset: 2, LastOffset: 5, Len: 1}}))
	// Swapping them again: they are not there any more.
	must(t, "AddPendingSegment", s.AddPendingSegment(c, "k1b"))
	wantErr(t, "second swap of the same rows", swap("k1b", rows[1:], []metastore.Batch{{BaseOffset: 2, LastOffset: 5, Len: 1}}), metastore.ErrSwapConflict)
	if bs, _, err := s.Batches(c, tp, 0, 1<<20); err != nil || len(bs) != 2 || bs[1].SegmentKey != "k1" {
		t.Fatalf("rows after swaps %+v, %v", bs, err)
	}

	// Retention removed a row meanwhile: the swap must not bring it back.
	must(t, "AddPendingSegment", s.AddPendingSegment(c, "k2"))
	_, p2, rows2 := swapSetupOther(t, s)
	retain(t, s, l, metastore.RetainRequest{PartitionID: p2.ID, TimestampBelow: 150, RetainBytes: -1})
	err := s.SwapRows(c, l, metastore.Swap{PartitionID: p2.ID, Old: rows2, Key: "k2", Size: 1, New: newRows})
	wantErr(t, "swap after retention", err, metastore.ErrSwapConflict)
	o, err := s.Offsets(c, p2.TopicPartition)
	must(t, "Offsets", err)
	if o.LogStartOffset != 2 {
		t.Fatalf("log start after a refused swap %d, want 2", o.LogStartOffset)
	}
	// The refused swap left its object pending, for the janitor to
	// claim as an orphan; the index is as retention left it.
	if bs, _, err := s.Batches(c, p2.TopicPartition, 0, 1<<20); err != nil || len(bs) != 2 || bs[0].BaseOffset != 2 {
		t.Fatalf("rows after refused swap %+v, %v", bs, err)
	}
	if n, err := s.ClaimOrphans(c, l, 0, 10); err != nil || n != 2 {
		t.Fatalf("ClaimOrphans = %d, %v; want k1b and k2", n, err)
	}
}

// swapSetupOther is swapSetup on a second topic.
func swapSetupOther(t *testing.T, s metastore.Backend) (metastore.TopicPartition, metastore.StoredPartition, []metastore.IndexRow) {
	t.Helper()
	top := createTopic(t, s, "other", 1)
	tp := metastore.TopicPartition{Topic: top.ID}
	commit(t, s, "o1", batch(tp, 2, 100, 10))
	commit(t, s, "o2", batch(tp, 3, 300, 20))
	commit(t, s, "o3", batch(tp, 1, 200, 30))
	p := storedPartition(t, s, tp)
	rows, err := s.IndexRows(ctx(t), p.ID, 0, 10)
	must(t, "IndexRows", err)
	return tp, p, rows
}

func testCleaning(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	l := janitorLease(t, s)
	top := createTopic(t, s, "t", 1)
	tp := metastore.TopicPartition{Topic: top.ID}
	commit(t, s, "a", idem(tp, 7, 0, 0, 3), batch(tp, 2, 100, 10))
	commit(t, s, "b", idem(tp, 8, 0, math.MaxInt32-1, 4), idem(tp, 7, 0, 3, 2))
	// Offsets: 7 [0,2], plain [3,4], 8 [5,8] (sequences wrap), 7 [9,10].
	p := storedPartition(t, s, tp)
	tails, err := s.ProducerTails(c, p.ID)
	must(t, "ProducerTails", err)
	if len(tails) != 2 || tails[7] != 10 || tails[8] != 8 {
		t.Fatalf("ProducerTails = %v, want 7:10 8:8", tails)
	}
	if p.CleanedOffset != 0 {
		t.Fatalf("cleaned offset %d before any cleaning", p.CleanedOffset)
	}
	must(t, "MarkCleaned", s.MarkCleaned(c, l, p.ID, 5))
	must(t, "MarkCleaned lower", s.MarkCleaned(c, l, p.ID, 2))
	if p := storedPartition(t, s, tp); p.CleanedOffset != 5 {
		t.Fatalf("cleaned offset %d, want 5 (it never moves back)", p.CleanedOffset)
	}
	wantErr(t, "MarkCleaned unknown", s.MarkCleaned(c, l, -3, 1), metastore.ErrUnknownTopicOrPartition)

	// A swap without new rows removes rows whose records all went.
	rows, err := s.IndexRows(c, p.ID, 0, 10)
	must(t, "IndexRows", err)
	must(t, "SwapRows to nothing", s.SwapRows(c, l, metastore.Swap{PartitionID: p.ID, Old: rows[1:2]}))
	bs, o, err := s.Batches(c, tp, 3, 1<<20)
	must(t, "Batches", err)
	if len(bs) != 2 || bs[0].BaseOffset != 5 || o.LogStartOffset != 0 || o.HighWatermark != 11 {
		t.Fatalf("after removing [3,4]: %+v, %+v; want the next row, offsets unchanged", bs, o)
	}
	if p := storedPartition(t, s, tp); p.Rows != 3 || p.Bytes != 300 || p.CompactedOffset != 0 {
		t.Fatalf("partition after removing a row %+v; want 3 rows, 300 bytes, nothing compacted", p)
	}
	wantErr(t, "swap to nothing with a key", s.SwapRows(c, l, metastore.Swap{PartitionID: p.ID, Old: rows[:1], Key: "k"}), metastore.ErrInvalidSwap)
}

func testOrphans(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	l := janitorLease(t, s)
	top := createTopic(t, s, "t", 1)
	tp := metastore.TopicPartition{Topic: top.ID}
	commit(t, s, "committed", batch(tp, 1, 1, 10))
	must(t, "AddPendingSegment", s.AddPendingSegment(c, "orphan"))
	if n, err := s.ClaimOrphans(c, l, time.Hour, 10); err != nil || n != 0 {
		t.Fatalf("ClaimOrphans(older than 1h) = %d, %v; want 0", n, err)
	}
	if n, err := s.ClaimOrphans(c, l, 0, 10); err != nil || n != 1 {
		t.Fatalf("ClaimOrphans = %d, %v; want 1", n, err)
	}
	// Its commit, had the agent only been slow, now fails: the object
	// may be deleted any time.
	_, err := s.CommitSegment(c, metastore.Segment{Key: "orphan", Batches: []metastore.BatchAppend{batch(tp, 1, 1, 10)}})
	wantErr(t, "commit of a claimed orphan", err, metastore.ErrSegmentGone)
	if o, _ := s.Offsets(c, tp); o.HighWatermark != 1 {
		t.Fatalf("high watermark %d after refused commit", o.HighWatermark)
	}
	// Recording it pending again does not revive it.
	must(t, "AddPendingSegment again", s.AddPendingSegment(c, "orphan"))
	_, err = s.CommitSegment(c, metastore.Segment{Key: "orphan", Batches: []metastore.BatchAppend{batch(tp, 1, 1, 10)}})
	wantErr(t, "commit of a claimed orphan recorded again", err, metastore.ErrSegmentGone)
	if d := dead(t, s); !slices.Equal(d, []string{"orphan"}) {
		t.Fatalf("dead = %v, want [orphan] (never the committed one)", d)
	}
	must(t, "ForgetSegments", s.ForgetSegments(c, l, []string{"orphan"}))
	known, err := s.KnownSegments(c, []string{"orphan", "committed"})
	must(t, "KnownSegments", err)
	if known["orphan"] || !known["committed"] {
		t.Fatalf("KnownSegments = %v", known)
	}
	// Limit bounds a claim.
	for i := range 5 {
		must(t, "AddPendingSegment", s.AddPendingSegment(c, fmt.Sprintf("p%d", i)))
	}
	if n, err := s.ClaimOrphans(c, l, 0, 2); err != nil || n != 2 {
		t.Fatalf("ClaimOrphans(limit 2) = %d, %v", n, err)
	}
}

func testDeletedTopicReclaim(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	l := janitorLease(t, s)
	a := createTopic(t, s, "a", 2)
	keep := createTopic(t, s, "keep", 1)
	a0 := metastore.TopicPartition{Topic: a.ID}
	a1 := metastore.TopicPartition{Topic: a.ID, Partition: 1}
	k0 := metastore.TopicPartition{Topic: keep.ID}
	commit(t, s, "s1", batch(a0, 1, 1, 10), batch(a0, 1, 1, 10), batch(a1, 1, 1, 10), batch(k0, 1, 1, 10))
	commit(t, s, "s2", batch(a0, 1, 1, 10))
	pa0, pa1 := storedPartition(t, s, a0), storedPartition(t, s, a1)

	// Only a deleted topic's partitions may be dropped.
	_, err := s.DropPartition(c, l, storedPartition(t, s, k0).ID)
	wantErr(t, "DropPartition of a live topic", err, metastore.ErrUnknownTopicOrPartition)

	must(t, "DeleteTopic", s.DeleteTopic(c, "a"))
	// The name is free at once.
	a2 := createTopic(t, s, "a", 1)
	if a2.ID == a.ID {
		t.Fatal("new topic a reuses the deleted id")
	}
	for _, p := range []metastore.StoredPartition{pa0, pa1} {
		sp := storedPartition(t, s, p.TopicPartition)
		if !sp.Deleted || sp.Rows == 0 {
			t.Fatalf("deleted topic's partition %+v; want Deleted with its rows", sp)
		}
	}
	if sp := storedPartition(t, s, metastore.TopicPartition{Topic: a2.ID}); sp.Deleted {
		t.Fatal("the new topic's partition is marked deleted")
	}
	if dropped, err := s.DropPartition(c, l, pa0.ID); err != nil || dropped {
		t.Fatalf("DropPartition with rows left = %v, %v; want false", dropped, err)
	}
	for _, p := range []metastore.StoredPartition{pa0, pa1} {
		for i := 0; ; i++ {
			res := retain(t, s, l, metastore.RetainRequest{PartitionID: p.ID, All: true, MaxRows: 1})
			if res.Removed[metastore.RetainDeleted].Rows > 1 {
				t.Fatalf("Retain All removed %d rows, over MaxRows", res.Removed[metastore.RetainDeleted].Rows)
			}
			if !res.More {
				break
			}
			if i > 5 {
				t.Fatal("Retain All never finished")
			}
		}
		dropped, err := s.DropPartition(c, l, p.ID)
		must(t, "DropPartition", err)
		if !dropped {
			t.Fatalf("partition %d not dropped once empty", p.Partition)
		}
	}
	all, err := s.StoredPartitions(c, 0, 1000)
	must(t, "StoredPartitions", err)
	for _, p := range all {
		if p.Topic == a.ID {
			t.Fatalf("deleted topic's partition %+v still stored", p)
		}
	}
	// s2 held only the deleted topic's rows; s1 still holds keep's.
	if d := dead(t, s); !slices.Equal(d, []string{"s2"}) {
		t.Fatalf("dead %v, want [s2]", d)
	}
	st, err := s.StorageStats(c)
	must(t, "StorageStats", err)
	if _, ok := st.Topics["a"]; !ok || len(st.Topics) != 2 || st.Topics["a"].Rows != 0 || st.Topics["keep"].Rows != 1 {
		t.Fatalf("topics after reclaim %+v", st.Topics)
	}
	// Dropping twice is harmless.
	if dropped, err := s.DropPartition(c, l, pa0.ID); err != nil || !dropped {
		t.Fatalf("DropPartition again = %v, %v", dropped, err)
	}
}

func testExpireProducers(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	l := janitorLease(t, s)
	top := createTopic(t, s, "t", 3)
	for p := range int32(3) {
		tp := metastore.TopicPartition{Topic: top.ID, Partition: p}
		commit(t, s, fmt.Sprintf("s%d", p), idem(tp, 1, 0, 0, 1), idem(tp, 2, 0, 0, 1))
	}
	scan := func(olderThan time.Duration, limit int) int {
		total, calls := 0, 0
		var cur metastore.ProducerCursor
		for {
			next, n, done, err := s.ExpireProducers(c, l, olderThan, cur, limit)
			must(t, "ExpireProducers", err)
			total += n
			calls++
			if n > limit {
				t.Fatalf("removed %d in one call of limit %d", n, limit)
			}
			if done {
				return total
			}
			if calls > 20 {
				t.Fatal("ExpireProducers never finished its scan")
			}
			cur = next
		}
	}
	if n := scan(time.Hour, 2); n != 0 {
		t.Fatalf("expired %d producers active within the hour", n)
	}
	// A producer that writes again keeps its state: sequence 1 follows.
	tp0 := metastore.TopicPartition{Topic: top.ID}
	r := commit(t, s, "again", idem(tp0, 1, 0, 1, 1))
	expect(t, "next sequence", r[0], 2, nil)
	r = commit(t, s, "gap", idem(tp0, 1, 0, 5, 1))
	expect(t, "gap before expiry", r[0], -1, metastore.ErrOutOfOrderSequence)
	if n := scan(0, 2); n != 6 {
		t.Fatalf("expired %d producer states, want 6", n)
	}
	// An expired producer is unknown: any sequence is accepted, as
	// Kafka does for a producer without state (KIP-360).
	r = commit(t, s, "after", idem(tp0, 1, 0, 5, 1))
	expect(t, "after expiry", r[0], 3, nil)
}

func testLostLeaseFences(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	old := janitorLease(t, s)
	must(t, "ReleaseLease", s.ReleaseLease(c, old))
	if _, ok, err := s.AcquireLease(c, "janitor", "successor", time.Hour); err != nil || !ok {
		t.Fatalf("successor could not take the lease: %v, %v", ok, err)
	}
	tp, p, rows := swapSetup(t, s)
	must(t, "AddPendingSegment", s.AddPendingSegment(c, "zombie"))
	checks := map[string]error{}
	_, checks["Retain"] = s.Retain(c, old, metastore.RetainRequest{PartitionID: p.ID, All: true, MaxRows: 10})
	checks["SwapRows"] = s.SwapRows(c, old, metastore.Swap{PartitionID: p.ID, Old: rows, Key: "zombie", Size: 1,
		New: []metastore.Batch{{BaseOffset: 0, LastOffset: 5, Len: 1}}})
	_, checks["ClaimOrphans"] = s.ClaimOrphans(c, old, 0, 10)
	checks["ForgetSegments"] = s.ForgetSegments(c, old, []string{"zombie"})
	_, checks["DropPartition"] = s.DropPartition(c, old, p.ID)
	_, _, _, checks["ExpireProducers"] = s.ExpireProducers(c, old, 0, metastore.ProducerCursor{}, 10)
	for name, err := range checks {
		if !errors.Is(err, metastore.ErrLeaseLost) {
			t.Errorf("%s under a lost lease: %v, want ErrLeaseLost", name, err)
		}
	}
	// Nothing changed.
	bs, o, err := s.Batches(c, tp, 0, 1<<20)
	must(t, "Batches", err)
	if len(bs) != 3 || o.LogStartOffset != 0 || bs[0].SegmentKey != "s1" {
		t.Fatalf("index after fenced writes: %+v, %+v", bs, o)
	}
	if d := dead(t, s); len(d) != 0 {
		t.Fatalf("dead segments after fenced writes: %v", d)
	}
}

// UpgradeSeed is the data a backend's upgrade test writes with the schema
// of migration 0001 (before the storage lifecycle), for CheckUpgrade: topic
// "t" (UpgradeTopic) with two partitions; segments "a" and "b" committed,
// "empty" committed without rows, "pend" pending; partition 0 rows [0,0]
// in a (10 bytes, ts 100) and [1,2] in b (20 bytes, ts 200), partition 1
// row [0,0] in a (30 bytes, ts 300); producer 7 has state on partition 0.
var UpgradeTopic = metastore.TopicID{0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

// CheckUpgrade checks a store opened on UpgradeSeed's data, migrated since:
// the counts the lifecycle keeps were filled in from the existing rows.
func CheckUpgrade(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	p0 := storedPartition(t, s, metastore.TopicPartition{Topic: UpgradeTopic})
	p1 := storedPartition(t, s, metastore.TopicPartition{Topic: UpgradeTopic, Partition: 1})
	if p0.Rows != 2 || p0.Bytes != 30 || p1.Rows != 1 || p1.Bytes != 30 || p0.Deleted || p0.HighWatermark != 3 {
		t.Fatalf("after upgrade: partition 0 %+v, partition 1 %+v", p0, p1)
	}
	if d := dead(t, s); !slices.Equal(d, []string{"empty"}) {
		t.Fatalf("dead after upgrade %v, want [empty] (committed without rows)", d)
	}
	l := janitorLease(t, s)
	retain(t, s, l, metastore.RetainRequest{PartitionID: p0.ID, TimestampBelow: 1000, RetainBytes: -1})
	if d := dead(t, s); !slices.Equal(d, []string{"b", "empty"}) {
		t.Fatalf("dead after retention %v, want [b empty] (a is still used by partition 1)", d)
	}
	_, n, _, err := s.ExpireProducers(c, l, time.Hour, metastore.ProducerCursor{}, 100)
	must(t, "ExpireProducers", err)
	if n != 0 {
		t.Fatalf("expired %d producers that existed at the upgrade, want 0", n)
	}
	if n, err := s.ClaimOrphans(c, l, 0, 10); err != nil || n != 1 {
		t.Fatalf("ClaimOrphans = %d, %v; want the pending one", n, err)
	}
	top, err := s.Topic(c, "t")
	must(t, "Topic", err)
	if top.Partitions != 2 {
		t.Fatalf("topic after upgrade %+v", top)
	}
}
