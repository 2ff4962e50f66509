package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/siltdata/silt/metastore"
)

// testBulkReads checks BatchesMany and OffsetsMany against Batches and
// Offsets, partition by partition.
func testBulkReads(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "t", 3)
	tp := func(p int32) metastore.TopicPartition { return metastore.TopicPartition{Topic: top.ID, Partition: p} }
	for i := range 50 {
		commit(t, s, fmt.Sprint("s", i), batch(tp(0), 2, int64(i), 100), batch(tp(1), 1, int64(i), 10))
	}
	if _, err := s.DeleteRecords(c, tp(1), 7); err != nil {
		t.Fatal(err)
	}
	ghost := metastore.TopicPartition{Topic: metastore.NewTopicID()}
	queries := []metastore.BatchesQuery{
		{TopicPartition: tp(0), Offset: 0, MaxBytes: 1 << 20}, // more entries than BulkBatches
		{TopicPartition: tp(0), Offset: 33, MaxBytes: 250},    // inside an entry, a byte limit
		{TopicPartition: tp(1), Offset: 7, MaxBytes: 1},       // at least one entry
		{TopicPartition: tp(1), Offset: 50, MaxBytes: 100},    // at the high watermark
		{TopicPartition: tp(2), Offset: 0, MaxBytes: 100},     // empty
		{TopicPartition: tp(9), Offset: 0, MaxBytes: 100},     // unknown partition
		{TopicPartition: ghost, Offset: 0, MaxBytes: 100},     // unknown topic
	}
	res, err := s.BatchesMany(c, queries)
	must(t, "BatchesMany", err)
	if len(res) != len(queries) {
		t.Fatalf("%d results for %d queries", len(res), len(queries))
	}
	for i, q := range queries {
		want, wantOffs, wantErr := s.Batches(c, q.TopicPartition, q.Offset, q.MaxBytes)
		got := res[i]
		if !errors.Is(got.Err, metastore.ErrUnknownTopicOrPartition) != !errors.Is(wantErr, metastore.ErrUnknownTopicOrPartition) {
			t.Fatalf("query %d: error %v, Batches says %v", i, got.Err, wantErr)
		}
		if wantErr != nil {
			continue
		}
		if got.Offsets != wantOffs {
			t.Fatalf("query %d: offsets %+v, want %+v", i, got.Offsets, wantOffs)
		}
		if len(want) > metastore.BulkBatches {
			want = want[:metastore.BulkBatches]
		}
		if fmt.Sprint(got.Batches) != fmt.Sprint(want) {
			t.Fatalf("query %d: entries\n%+v\nwant\n%+v", i, got.Batches, want)
		}
	}
	if len(res[0].Batches) != metastore.BulkBatches || res[1].Batches[0].BaseOffset != 32 || len(res[2].Batches) != 1 {
		t.Fatalf("bulk answers %d, %+v, %d entries", len(res[0].Batches), res[1].Batches, len(res[2].Batches))
	}

	testBulkMixedSizes(t, s)

	tps := []metastore.TopicPartition{tp(2), tp(1), ghost, tp(0), tp(7)}
	offs, err := s.OffsetsMany(c, tps)
	must(t, "OffsetsMany", err)
	for i, p := range tps {
		want, wantErr := s.Offsets(c, p)
		if (wantErr != nil) != (offs[i].Err != nil) || wantErr == nil && offs[i].Offsets != want {
			t.Fatalf("OffsetsMany[%d] = %+v, Offsets says %+v, %v", i, offs[i], want, wantErr)
		}
	}
	if offs[1].Offsets.LogStartOffset != 7 || offs[3].Offsets.HighWatermark != 100 {
		t.Fatalf("OffsetsMany = %+v", offs)
	}
	if r, err := s.OffsetsMany(c, nil); err != nil || len(r) != 0 {
		t.Fatalf("OffsetsMany(nil) = %v, %v", r, err)
	}
}

// testBulkMixedSizes checks BatchesMany on entries of very different
// sizes, as a partition has once the janitor compacted some of it (a
// compacted chunk's entry holds megabytes, a produce segment's one batch):
// an entry that does not fit ends the partition's answer, so the answer is
// contiguous. Were a smaller entry after it taken, the fetch would serve
// the records on both sides of the one left out, and the reader would skip
// its offsets without an error.
func testBulkMixedSizes(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "mixed", 1)
	tp := metastore.TopicPartition{Topic: top.ID}
	for i, length := range []int32{100, 100, 1000, 100, 100, 2000, 100} {
		commit(t, s, fmt.Sprint("mixed", i), batch(tp, 10, int64(i), length))
	}
	for _, q := range []metastore.BatchesQuery{
		{TopicPartition: tp, Offset: 0, MaxBytes: 300},   // ends before the large entry, which the next would fit after
		{TopicPartition: tp, Offset: 30, MaxBytes: 300},  // the same before the largest
		{TopicPartition: tp, Offset: 0, MaxBytes: 1300},  // takes the large entry, ends before the largest
		{TopicPartition: tp, Offset: 25, MaxBytes: 150},  // the large entry alone (at least one)
		{TopicPartition: tp, Offset: 35, MaxBytes: 2150}, // from inside an entry, ends before the largest
	} {
		res, err := s.BatchesMany(c, []metastore.BatchesQuery{q})
		must(t, "BatchesMany", err)
		got := res[0].Batches
		for i := 1; i < len(got); i++ {
			if got[i].BaseOffset != got[i-1].LastOffset+1 {
				t.Fatalf("BatchesMany from %d within %d bytes: entry [%d, %d] after [%d, %d]: offsets skipped",
					q.Offset, q.MaxBytes, got[i].BaseOffset, got[i].LastOffset, got[i-1].BaseOffset, got[i-1].LastOffset)
			}
		}
		want, _, err := s.Batches(c, tp, q.Offset, q.MaxBytes)
		must(t, "Batches", err)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("BatchesMany from %d within %d bytes: entries\n%+v\nwant (Batches)\n%+v", q.Offset, q.MaxBytes, got, want)
		}
	}
}
