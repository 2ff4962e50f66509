package storetest

import (
	"errors"
	"math"
	"testing"

	"github.com/siltdata/silt/metastore"
)

// expect checks one BatchResult: err nil or a sentinel; off is checked for
// accepted batches and duplicates.
func expect(t *testing.T, what string, r metastore.BatchResult, off int64, err error) {
	t.Helper()
	if !errors.Is(r.Err, err) {
		t.Fatalf("%s: result %+v, want error %v", what, r, err)
	}
	if (err == nil || errors.Is(err, metastore.ErrDuplicateSequence)) && r.BaseOffset != off {
		t.Fatalf("%s: base offset %d, want %d", what, r.BaseOffset, off)
	}
}

func testIdempotence(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "t", 2)
	tp := metastore.TopicPartition{Topic: top.ID}
	tp1 := metastore.TopicPartition{Topic: top.ID, Partition: 1}
	const pid = 42

	// No state: any first sequence is accepted (KIP-360).
	r := commit(t, s, "s1", idem(tp, pid, 0, 5, 3)) // seq 5-7 -> offsets 0-2
	expect(t, "first batch", r[0], 0, nil)
	r = commit(t, s, "s2", idem(tp, pid, 0, 8, 2), idem(tp, pid, 0, 10, 1)) // in order within one segment
	expect(t, "next batch", r[0], 3, nil)
	expect(t, "next in same segment", r[1], 5, nil)

	// Exact duplicates of any of the last 5 batches get the first offset.
	r = commit(t, s, "s3", idem(tp, pid, 0, 8, 2), idem(tp, pid, 0, 5, 3))
	expect(t, "duplicate", r[0], 3, metastore.ErrDuplicateSequence)
	expect(t, "older duplicate", r[1], 0, metastore.ErrDuplicateSequence)
	o, err := s.Offsets(c, tp)
	must(t, "Offsets", err)
	if o.HighWatermark != 6 {
		t.Fatalf("duplicates were indexed: high watermark %d, want 6", o.HighWatermark)
	}
	// Same base sequence with another length is not a duplicate: a gap.
	r = commit(t, s, "s4", idem(tp, pid, 0, 8, 1))
	expect(t, "overlap, not a duplicate", r[0], 0, metastore.ErrOutOfOrderSequence)
	// A gap.
	r = commit(t, s, "s5", idem(tp, pid, 0, 13, 1))
	expect(t, "gap", r[0], 0, metastore.ErrOutOfOrderSequence)
	// A rejected batch does not advance the sequence; the right one fits
	// after a rejected one in the same segment.
	r = commit(t, s, "s6", idem(tp, pid, 0, 12, 1), idem(tp, pid, 0, 11, 1), idem(tp, pid, 0, 12, 1))
	expect(t, "gap before", r[0], 0, metastore.ErrOutOfOrderSequence)
	expect(t, "in order after gap", r[1], 6, nil)
	expect(t, "now in order", r[2], 7, nil)

	// Only the last 5 batches are remembered: push 5 more, then the batch
	// at seq 11 is no longer known and is out of order.
	for i := int32(0); i < 5; i++ {
		r = commit(t, s, "fill-"+string('a'+i), idem(tp, pid, 0, 13+i, 1))
		expect(t, "fill", r[0], int64(8+i), nil)
	}
	r = commit(t, s, "s7", idem(tp, pid, 0, 11, 1), idem(tp, pid, 0, 13, 1))
	expect(t, "forgotten duplicate", r[0], 0, metastore.ErrOutOfOrderSequence)
	expect(t, "oldest remembered duplicate", r[1], 8, metastore.ErrDuplicateSequence)

	// Producer state is per partition: on tp1 this producer is new.
	r = commit(t, s, "s8", idem(tp1, pid, 0, 100, 1))
	expect(t, "other partition", r[0], 0, nil)

	// A new epoch must start at sequence 0, and fences the old epoch.
	r = commit(t, s, "s9", idem(tp, pid, 1, 18, 1))
	expect(t, "new epoch not at 0", r[0], 0, metastore.ErrOutOfOrderSequence)
	r = commit(t, s, "s10", idem(tp, pid, 1, 0, 2), idem(tp, pid, 0, 18, 1))
	expect(t, "new epoch at 0", r[0], 13, nil)
	expect(t, "old epoch fenced", r[1], 0, metastore.ErrInvalidProducerEpoch)
	// Duplicates of the old epoch's batches are forgotten with it.
	r = commit(t, s, "s11", idem(tp, pid, 1, 0, 2), idem(tp, pid, 1, 2, 1), idem(tp, pid, 0, 17, 1))
	expect(t, "new epoch duplicate", r[0], 13, metastore.ErrDuplicateSequence)
	expect(t, "new epoch next", r[1], 15, nil)
	expect(t, "old epoch duplicate fenced", r[2], 0, metastore.ErrInvalidProducerEpoch)

	// Non-idempotent batches are never checked, and other producers are
	// independent.
	r = commit(t, s, "s12", batch(tp, 1, 0, 1), idem(tp, 43, 0, 0, 1), batch(tp, 1, 0, 1), idem(tp, 43, 0, 1, 1))
	expect(t, "plain", r[0], 16, nil)
	expect(t, "producer 43", r[1], 17, nil)
	expect(t, "plain again", r[2], 18, nil)
	expect(t, "producer 43 next", r[3], 19, nil)

	// A failed commit (segment already committed) leaves producer state
	// untouched: the batch is still accepted afterwards.
	_, err = s.CommitSegment(c, metastore.Segment{Key: "s12", Batches: []metastore.BatchAppend{idem(tp, 43, 0, 2, 1)}})
	wantErr(t, "recommit", err, metastore.ErrSegmentCommitted)
	r = commit(t, s, "s13", idem(tp, 43, 0, 2, 1))
	expect(t, "after failed commit", r[0], 20, nil)

	// Producer state is dropped with its topic.
	must(t, "DeleteTopic", s.DeleteTopic(c, "t"))
	top = createTopic(t, s, "t", 1)
	r = commit(t, s, "s14", idem(metastore.TopicPartition{Topic: top.ID}, pid, 0, 77, 1))
	expect(t, "fresh topic", r[0], 0, nil)
}

func testSequenceWrap(t *testing.T, s metastore.Backend) {
	top := createTopic(t, s, "t", 1)
	tp := metastore.TopicPartition{Topic: top.ID}
	const pid = 7
	// Sequences MaxInt32-2 .. MaxInt32+1 wrap: last sequence is 0.
	r := commit(t, s, "a", idem(tp, pid, 3, math.MaxInt32-2, 4))
	expect(t, "wrapping batch", r[0], 0, nil)
	r = commit(t, s, "b", idem(tp, pid, 3, math.MaxInt32-2, 4), idem(tp, pid, 3, 1, 2))
	expect(t, "wrapping duplicate", r[0], 0, metastore.ErrDuplicateSequence)
	expect(t, "after wrap", r[1], 4, nil)
	r = commit(t, s, "c", idem(tp, pid, 3, math.MaxInt32, 1))
	expect(t, "stale", r[0], 0, metastore.ErrOutOfOrderSequence)
	// Ending exactly at MaxInt32: the next sequence is 0.
	top2 := createTopic(t, s, "u", 1)
	tp2 := metastore.TopicPartition{Topic: top2.ID}
	r = commit(t, s, "d", idem(tp2, pid, 0, math.MaxInt32-1, 2), idem(tp2, pid, 0, 0, 1))
	expect(t, "ends at max", r[0], 0, nil)
	expect(t, "wraps to 0", r[1], 2, nil)
}
