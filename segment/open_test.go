package segment_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/siltdata/silt/segment"
	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/segment/segmenttest"
)

// countingBucket counts the range GETs made through it, so the tests can
// check Open's request pattern against a real backend.
type countingBucket struct {
	objstore.Bucket
	gets atomic.Int64
}

func (b *countingBucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	b.gets.Add(1)
	return b.Bucket.GetRange(ctx, key, offset, length)
}

func newBucket(t *testing.T) *countingBucket {
	fs, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fs.Close() })
	return &countingBucket{Bucket: fs}
}

// newBucketWith returns a bucket holding obj under key.
func newBucketWith(t *testing.T, key string, obj []byte) *countingBucket {
	t.Helper()
	b := newBucket(t)
	if err := b.Put(t.Context(), key, obj); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpen(t *testing.T) {
	for _, parts := range []int{0, 1, 12, 1000} { // 1000 chunks: footer larger than the first tail read
		t.Run(fmt.Sprint(parts), func(t *testing.T) {
			ctx := t.Context()
			w := segment.NewWriter()
			for p := range parts {
				w.Append(topicA, int32(p), segmenttest.New(segmenttest.Options{Records: 2, Seed: uint64(p), Compressed: p%2 == 0}))
			}
			obj, chunks, err := w.Finish()
			if err != nil {
				t.Fatal(err)
			}
			b := newBucket(t)
			if err := b.Put(ctx, "seg", obj); err != nil {
				t.Fatal(err)
			}
			got, err := segment.Open(ctx, b, "seg", int64(len(obj)))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			wantGets := 1
			if parts == 1000 {
				wantGets = 2
			}
			if b.gets.Load() != int64(wantGets) {
				t.Errorf("Open made %d range GETs, want %d", b.gets.Load(), wantGets)
			}
			if len(got) != len(chunks) {
				t.Fatalf("Open: %d chunks, want %d", len(got), len(chunks))
			}
			for i, c := range chunks {
				g := got[i]
				if g.Batches != nil {
					t.Errorf("chunk %d: Open filled Batches", i)
				}
				c.Batches = nil
				if fmt.Sprint(g) != fmt.Sprint(c) {
					t.Fatalf("chunk %d: Open %+v, Finish %+v", i, g, c)
				}
				// Each chunk decodes alone from one range GET.
				gets := b.gets.Load()
				payload, err := segment.ReadChunk(ctx, b, "seg", g.Offset, g.Length)
				if b.gets.Load() != gets+1 {
					t.Errorf("chunk %d: ReadChunk made %d range GETs, want 1", i, b.gets.Load()-gets)
				}
				if err != nil {
					t.Fatalf("chunk %d: %v", i, err)
				}
				batches, err := segment.Batches(payload)
				if err != nil || len(batches) != g.BatchCount {
					t.Fatalf("chunk %d: %d batches, %v; want %d", i, len(batches), err, g.BatchCount)
				}
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := t.Context()
	w := segment.NewWriter()
	w.Append(topicA, 0, segmenttest.Batch(3, false))
	obj, _, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	b := newBucket(t)
	if err := b.Put(ctx, "seg", obj); err != nil {
		t.Fatal(err)
	}
	if _, err := segment.Open(ctx, b, "missing", int64(len(obj))); !b.IsNotFound(err) {
		t.Errorf("missing object: err %v, want not found", err)
	}
	if _, err := segment.ReadChunk(ctx, b, "seg", int64(len(obj))-30, 40); !errors.Is(err, segment.ErrCorrupt) {
		t.Errorf("ReadChunk past the end: err %v, want ErrCorrupt", err)
	}
	for _, size := range []int64{0, 35, int64(len(obj)) - 1, int64(len(obj)) + 1} {
		if _, err := segment.Open(ctx, b, "seg", size); err == nil {
			t.Errorf("size %d (object is %d bytes): Open succeeded", size, len(obj))
		}
	}
}
