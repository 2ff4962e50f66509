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
