package fetch

import (
	"bytes"
	"context"
	"testing"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/segment"
)

// compactPartition rewrites every index entry of partition p into one
// compacted object holding chunks of at most chunkBatches batches, and
// swaps the index to it, as the storage janitor does. It returns the old
// entries' segment keys.
func compactPartition(t *testing.T, e *env, p int32, chunkBatches int) []string {
	t.Helper()
	ctx := t.Context()
	lc := e.store
	l, ok, err := lc.AcquireLease(ctx, "janitor", "test", 3600e9)
	if err != nil || !ok {
		t.Fatalf("lease: %v, %v", ok, err)
	}
	var sp metastore.StoredPartition
	all, err := lc.StoredPartitions(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.TopicPartition == e.tp(p) {
			sp = s
		}
	}
	rows, err := lc.IndexRows(ctx, sp.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// Every batch, with its real offset, as a reader returns them.
	r := newReader(t, e, DefaultConfig())
	data, _, err := r.Read(ctx, e.tp(p), 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	batches, raw := parse(t, data)
	var in []segment.CompactedChunk
	for i := 0; i < len(raw); i += chunkBatches {
		in = append(in, segment.CompactedChunk{TopicID: segment.TopicID(e.topic.ID), Partition: p, Payload: bytes.Join(raw[i:min(i+chunkBatches, len(raw))], nil)})
	}
	obj, chunks, err := segment.WriteCompacted(in)
	if err != nil {
		t.Fatal(err)
	}
	key := "compacted/test"
	if err := lc.AddPendingSegment(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := e.bucket.Put(ctx, key, obj); err != nil {
		t.Fatal(err)
	}
	var newRows []metastore.Batch
	for i, c := range chunks {
		var maxTS int64
		for j := i * chunkBatches; j < min((i+1)*chunkBatches, len(batches)); j++ {
			maxTS = max(maxTS, batches[j].MaxTimestamp)
		}
		newRows = append(newRows, metastore.Batch{BaseOffset: c.BaseOffset, LastOffset: c.LastOffset, MaxTimestamp: maxTS,
			ChunkOffset: c.Offset, ChunkLength: c.Length, Pos: 0, Len: int32(c.RawLength)})
	}
	if err := lc.SwapRows(ctx, l, metastore.Swap{PartitionID: sp.ID, Old: rows, Key: key, Size: int64(len(obj)), New: newRows}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, row := range rows {
		keys = append(keys, row.SegmentKey)
	}
	return keys
}

// TestReadCompactedEntries reads a partition whose index entries each hold
// several batches of a compacted object: from every offset, with limits
// smaller and larger than an entry, the answer is the same batches as
// before compaction, byte for byte.
func TestReadCompactedEntries(t *testing.T) {
	e := newEnv(t)
	e.produce(t, 0, 5, 1)
	e.produce(t, 1, 7)
	e.produce(t, 0, 3)
	e.produce(t, 0, 2, 4)
	e.produce(t, 0, 1, 1, 6)
	before := newReader(t, e, DefaultConfig())
	want, _, err := before.Read(t.Context(), e.tp(0), 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	_, wantRaw := parse(t, want)
	compactPartition(t, e, 0, 3) // entries of 3, 3 and 2 batches

	r := newReader(t, e, DefaultConfig())
	got, offs, err := r.Read(t.Context(), e.tp(0), 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || offs.HighWatermark != 23 {
		t.Fatalf("whole partition after compaction differs (%d bytes, want %d), offsets %+v", len(got), len(want), offs)
	}
	batches, _ := parse(t, want)
	for off := int64(0); off < 23; off++ {
		// The batch holding off comes first, then the rest.
		first := 0
		for first < len(batches) && batches[first].FirstOffset+int64(batches[first].LastOffsetDelta) < off {
			first++
		}
		for _, maxBytes := range []int64{1, int64(len(wantRaw[first])) + 1, 1 << 30} {
			got, _, err := r.Read(t.Context(), e.tp(0), off, maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			end := first + 1
			if maxBytes > int64(len(wantRaw[first])+1) {
				end = len(wantRaw)
			}
			if w := bytes.Join(wantRaw[first:end], nil); !bytes.Equal(got, w) {
				gb, _ := parse(t, got)
				t.Fatalf("Read(%d, max %d): %d batches from %d; want batches %d..%d", off, maxBytes, len(gb), gb[0].FirstOffset, first, end-1)
			}
		}
	}
}

// TestReadAfterObjectsDeleted: a reader whose cached index still names
// objects that the janitor has deleted since (after swapping their rows
// to a compacted object) reads the index again instead of failing.
func TestReadAfterObjectsDeleted(t *testing.T) {
	e := newEnv(t)
	e.produce(t, 0, 2, 3)
	e.produce(t, 0, 4)
	// No chunk cache: every read goes to the bucket, with the index as
	// cached by the first read.
	cfg := DefaultConfig()
	cfg.MemoryBytes, cfg.PrefetchChunks = 0, 0
	r := newReader(t, e, cfg)
	want, _, err := r.Read(t.Context(), e.tp(0), 0, 1<<30) // caches the index
	if err != nil {
		t.Fatal(err)
	}
	old := compactPartition(t, e, 0, 10)
	for _, k := range old {
		if err := e.bucket.Delete(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := r.Read(t.Context(), e.tp(0), 0, 1<<30)
	if err != nil {
		t.Fatalf("read after the old objects were deleted: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("read after the old objects were deleted differs")
	}
}
