package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/siltdata/silt/metastore"
)

func testCommitAndOffsets(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "t", 3)
	p0 := metastore.TopicPartition{Topic: top.ID, Partition: 0}
	p1 := metastore.TopicPartition{Topic: top.ID, Partition: 1}
	bad := metastore.TopicPartition{Topic: top.ID, Partition: 9}
	ghost := metastore.TopicPartition{Topic: metastore.NewTopicID(), Partition: 0}

	res := commit(t, s, "seg-1",
		batch(p0, 3, 10, 100), batch(p1, 1, 10, 100), batch(bad, 2, 10, 100), batch(p0, 5, 10, 100), batch(ghost, 1, 1, 1))
	want := []struct {
		off int64
		err error
	}{{0, nil}, {0, nil}, {-1, metastore.ErrUnknownTopicOrPartition}, {3, nil}, {-1, metastore.ErrUnknownTopicOrPartition}}
	for i, w := range want {
		if !errors.Is(res[i].Err, w.err) || (w.err == nil && res[i].BaseOffset != w.off) {
			t.Fatalf("result %d = %+v, want offset %d err %v", i, res[i], w.off, w.err)
		}
		if w.err == nil && res[i].LogStartOffset != 0 {
			t.Fatalf("result %d log start %d", i, res[i].LogStartOffset)
		}
	}
	res = commit(t, s, "seg-2", batch(p0, 1, 10, 100))
	if res[0].Err != nil || res[0].BaseOffset != 8 {
		t.Fatalf("second commit = %+v, want offset 8", res[0])
	}
	for _, tc := range []struct {
		tp metastore.TopicPartition
		hw int64
	}{{p0, 9}, {p1, 1}, {metastore.TopicPartition{Topic: top.ID, Partition: 2}, 0}} {
		o, err := s.Offsets(c, tc.tp)
		must(t, "Offsets", err)
		if o.HighWatermark != tc.hw || o.LogStartOffset != 0 {
			t.Fatalf("partition %d offsets %+v, want hw %d", tc.tp.Partition, o, tc.hw)
		}
	}
	_, err := s.Offsets(c, bad)
	wantErr(t, "Offsets unknown partition", err, metastore.ErrUnknownTopicOrPartition)
	_, err = s.Offsets(c, ghost)
	wantErr(t, "Offsets unknown topic", err, metastore.ErrUnknownTopicOrPartition)

	// An empty segment commits (nothing to index).
	if res := commit(t, s, "seg-empty"); len(res) != 0 {
		t.Fatalf("empty segment results %v", res)
	}
}

func testSegments(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "t", 1)
	tp := metastore.TopicPartition{Topic: top.ID}
	must(t, "AddPendingSegment", s.AddPendingSegment(c, "pending-1"))
	must(t, "AddPendingSegment again", s.AddPendingSegment(c, "pending-1"))
	res := commit(t, s, "pending-1", batch(tp, 2, 1, 10))
	if res[0].BaseOffset != 0 {
		t.Fatalf("offset %d", res[0].BaseOffset)
	}
	_, err := s.CommitSegment(c, metastore.Segment{Key: "pending-1", Batches: []metastore.BatchAppend{batch(tp, 2, 1, 10)}})
	wantErr(t, "CommitSegment twice", err, metastore.ErrSegmentCommitted)
	// A key never recorded as pending cannot commit: garbage collection
	// may have deleted its object.
	_, err = s.CommitSegment(c, metastore.Segment{Key: "never-pending", Batches: []metastore.BatchAppend{batch(tp, 2, 1, 10)}})
	wantErr(t, "CommitSegment of a key never pending", err, metastore.ErrSegmentGone)
	// The failed commit changed nothing.
	o, err := s.Offsets(c, tp)
	must(t, "Offsets", err)
	if o.HighWatermark != 2 {
		t.Fatalf("high watermark %d after a failed commit, want 2", o.HighWatermark)
	}
	bs, _, err := s.Batches(c, tp, 0, 1<<20)
	must(t, "Batches", err)
	if len(bs) != 1 || bs[0].SegmentKey != "pending-1" {
		t.Fatalf("batches %+v", bs)
	}
}

func testBatches(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "t", 2)
	tp := metastore.TopicPartition{Topic: top.ID}
	other := metastore.TopicPartition{Topic: top.ID, Partition: 1}

	bs, o, err := s.Batches(c, tp, 0, 1<<20)
	must(t, "Batches empty", err)
	if len(bs) != 0 || o != (metastore.PartitionOffsets{}) {
		t.Fatalf("empty partition: %+v %+v", bs, o)
	}
	// 10 batches of 10 records, each 100 bytes, spread over 5 segments
	// with another partition's batches interleaved.
	for i := range 5 {
		a := batch(tp, 10, int64(i), 100)
		a.ChunkOffset, a.ChunkLength, a.Pos = int64(i*1000), 500, int32(i)
		b := a
		b.Pos += 100
		commit(t, s, fmt.Sprintf("seg-%d", i), a, batch(other, 1, 0, 5), b)
	}
	bs, o, err = s.Batches(c, tp, 0, 1<<20)
	must(t, "Batches all", err)
	if o.HighWatermark != 100 || len(bs) != 10 {
		t.Fatalf("got %d batches, offsets %+v", len(bs), o)
	}
	for i, b := range bs {
		seg := i / 2
		want := metastore.Batch{
			BaseOffset: int64(i * 10), LastOffset: int64(i*10 + 9), MaxTimestamp: int64(seg),
			SegmentKey: fmt.Sprintf("seg-%d", seg), ChunkOffset: int64(seg * 1000), ChunkLength: 500,
			Pos: int32(seg + 100*(i%2)), Len: 100,
		}
		if b != want {
			t.Fatalf("batch %d = %+v, want %+v", i, b, want)
		}
	}
	check := func(offset, maxBytes int64, first int64, n int) {
		t.Helper()
		bs, _, err := s.Batches(c, tp, offset, maxBytes)
		must(t, "Batches", err)
		if len(bs) != n || n > 0 && bs[0].BaseOffset != first {
			t.Fatalf("Batches(%d, %d): %d batches from %v, want %d from %d", offset, maxBytes, len(bs), bs, n, first)
		}
		for i := 1; i < len(bs); i++ {
			if bs[i].BaseOffset != bs[i-1].LastOffset+1 {
				t.Fatalf("Batches(%d, %d) not contiguous: %+v", offset, maxBytes, bs)
			}
		}
	}
	check(0, 100, 0, 1)      // exactly one batch fits
	check(0, 1, 0, 1)        // at least one batch, even over maxBytes
	check(0, 250, 0, 2)      // a batch that would exceed maxBytes is left out
	check(0, 300, 0, 3)      // summed length may reach maxBytes
	check(15, 200, 10, 2)    // inside a batch: the containing batch first
	check(19, 1<<20, 10, 9)  // last offset of a batch
	check(20, 1<<20, 20, 8)  // first offset of a batch
	check(99, 1<<20, 90, 1)  // last offset in the log
	check(100, 1<<20, 0, 0)  // at the high watermark
	check(1000, 1<<20, 0, 0) // past the end
	check(-5, 200, 0, 2)     // before the start
	check(0, 1<<40, 0, 10)   // everything
	check(0, 100*9, 0, 9)    // cut at 9

	// Many small batches: more than one index page.
	for i := range 3 {
		var many []metastore.BatchAppend
		for range 300 {
			many = append(many, batch(other, 1, 0, 5))
		}
		commit(t, s, fmt.Sprintf("many-%d", i), many...)
	}
	bs, o, err = s.Batches(c, other, 0, 1<<30)
	must(t, "Batches many", err)
	if len(bs) != 905 || o.HighWatermark != 905 || bs[904].LastOffset != 904 {
		t.Fatalf("many: %d batches, offsets %+v", len(bs), o)
	}
	bs, _, err = s.Batches(c, other, 3, 5*600)
	must(t, "Batches many cut", err)
	if len(bs) != 600 || bs[0].BaseOffset != 3 || bs[599].LastOffset != 602 {
		t.Fatalf("many cut: %d batches", len(bs))
	}

	_, _, err = s.Batches(c, metastore.TopicPartition{Topic: top.ID, Partition: 2}, 0, 100)
	wantErr(t, "Batches unknown partition", err, metastore.ErrUnknownTopicOrPartition)
	_, _, err = s.Batches(c, metastore.TopicPartition{Topic: metastore.NewTopicID()}, 0, 100)
	wantErr(t, "Batches unknown topic", err, metastore.ErrUnknownTopicOrPartition)
}

func testTimestamps(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "t", 1)
	tp := metastore.TopicPartition{Topic: top.ID}
	_, _, found, err := offsetForTimestamp(c, s, tp, 0, 0)
	must(t, "OffsetForTimestamp empty", err)
	if found {
		t.Fatal("OffsetForTimestamp on an empty partition found something")
	}
	_, _, found, err = maxTimestamp(c, s, tp)
	must(t, "MaxTimestamp empty", err)
	if found {
		t.Fatal("MaxTimestamp on an empty partition found something")
	}
	// Timestamps are not monotonic: batch offsets 0-1:100, 2-3:300,
	// 4-5:200, 6-7:300, 8-9:250, 10-11:50.
	var bs []metastore.BatchAppend
	for _, ts := range []int64{100, 300, 200, 300, 250, 50} {
		bs = append(bs, batch(tp, 2, ts, 10))
	}
	commit(t, s, "seg-a", bs[:3]...)
	commit(t, s, "seg-b", bs[3:]...)
	for _, tc := range []struct {
		ts, from, off, gotTS int64
		found                bool
	}{
		{-1, 0, 0, 100, true},
		{0, 0, 0, 100, true},
		{100, 0, 0, 100, true},
		{101, 0, 2, 300, true}, // not the 200 batch: it comes later
		{200, 0, 2, 300, true},
		{300, 0, 2, 300, true},
		{301, 0, 0, 0, false},
		// From an offset on: the first entry ending there or later
		// whose running max reaches ts.
		{100, 3, 2, 300, true},
		{100, 4, 4, 200, true},
		{260, 4, 4, 200, true}, // its running max (300) reaches 260
		{0, 12, 0, 0, false},
	} {
		off, ts, found, err := offsetForTimestamp(c, s, tp, tc.ts, tc.from)
		must(t, "OffsetForTimestamp", err)
		if found != tc.found || found && (off != tc.off || ts != tc.gotTS) {
			t.Fatalf("OffsetForTimestamp(%d from %d) = %d, %d, %v; want %d, %d, %v", tc.ts, tc.from, off, ts, found, tc.off, tc.gotTS, tc.found)
		}
	}
	if e, _, _ := s.MaxTimestamp(c, tp); e.LastOffset != 3 {
		t.Fatalf("MaxTimestamp entry %+v, want the batch [2, 3]", e)
	}
	off, ts, found, err := maxTimestamp(c, s, tp)
	must(t, "MaxTimestamp", err)
	if !found || off != 2 || ts != 300 {
		t.Fatalf("MaxTimestamp = %d, %d, %v; want 2, 300 (the first entry with the max)", off, ts, found)
	}
	_, _, _, err = offsetForTimestamp(c, s, metastore.TopicPartition{Topic: top.ID, Partition: 1}, 0, 0)
	wantErr(t, "OffsetForTimestamp unknown", err, metastore.ErrUnknownTopicOrPartition)
	_, _, _, err = maxTimestamp(c, s, metastore.TopicPartition{Topic: metastore.NewTopicID()})
	wantErr(t, "MaxTimestamp unknown", err, metastore.ErrUnknownTopicOrPartition)
}
