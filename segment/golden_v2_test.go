package segment_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"testing"

	"github.com/siltdata/silt/segment"
	"github.com/siltdata/silt/segment/segmenttest"
)

const goldenV2 = "testdata/v2.seg"

// writeGoldenV2 builds the version 2 golden object: two partitions of one
// topic and one of another, a partition with two chunks and an offset gap
// between them, both codecs.
func writeGoldenV2(t *testing.T) {
	ts := segmenttest.BaseTimestamp
	batch := func(base int64, o segmenttest.Options) []byte {
		o.FirstTimestamp += ts
		return withOffset(segmenttest.New(o), base)
	}
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	obj, _, err := segment.WriteCompacted([]segment.CompactedChunk{
		{TopicID: topicA, Partition: 0, Payload: cat(
			batch(1000, segmenttest.Options{Records: 10, ValueSize: 100, Seed: 1}),
			batch(1010, segmenttest.Options{Records: 5, ValueSize: 100, FirstTimestamp: 40, Seed: 2}))},
		{TopicID: topicA, Partition: 0, Payload: cat(
			batch(1020, segmenttest.Options{Records: 3, ValueSize: 60, Compressed: true, FirstTimestamp: 90, Seed: 3}))},
		{TopicID: topicA, Partition: 4, Payload: cat(
			batch(7, segmenttest.Options{Records: 2, ValueSize: 500, Random: true, FirstTimestamp: 5, Seed: 4}))},
		{TopicID: topicB, Partition: 1, Payload: cat(
			batch(0, segmenttest.Options{Records: 4, ValueSize: 70, Compressed: true, Seed: 5}),
			batch(4, segmenttest.Options{Records: 4, ValueSize: 70, Compressed: true, FirstTimestamp: 1, Seed: 6}))},
	})
	if err != nil {
		t.Fatal(err)
	}
	writeGolden(t, goldenV2, obj)
}

// TestGoldenV2 reads the committed version 2 object: the footer's offsets
// and every chunk's payload must stay exactly as first written.
func TestGoldenV2(t *testing.T) {
	if *update {
		writeGoldenV2(t)
	}
	obj, err := os.ReadFile(goldenV2)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := segment.Parse(obj)
	if err != nil {
		t.Fatalf("Parse(%s): %v", goldenV2, err)
	}
	var got []string
	for _, c := range chunks {
		payload, err := segment.DecodeChunk(obj[c.Offset : c.Offset+c.Length])
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(payload)
		got = append(got, fmt.Sprintf("%x/%d [%d,%d] at %d+%d codec %d raw %d ts [%d,%d] batches %d %s",
			c.TopicID[0], c.Partition, c.BaseOffset, c.LastOffset, c.Offset, c.Length, c.Codec, c.RawLength,
			c.MinTimestamp, c.MaxTimestamp, c.BatchCount, hex.EncodeToString(sum[:8])))
	}
	if *update {
		for _, g := range got {
			t.Logf("%q,", g)
		}
		t.Logf("object: %d bytes", len(obj))
	}
	if len(obj) != goldenV2Size {
		t.Errorf("%s is %d bytes, want %d", goldenV2, len(obj), goldenV2Size)
	}
	if fmt.Sprint(got) != fmt.Sprint(goldenV2Chunks) {
		t.Errorf("chunks of %s:\n got %q\nwant %q", goldenV2, got, goldenV2Chunks)
	}
}

// goldenV2Size and goldenV2Chunks describe testdata/v2.seg exactly. They
// were written down once when the file was created (from the log of
// `go test -run TestGoldenV2 -update -v`) and must never be edited.
const goldenV2Size = 2305

var goldenV2Chunks = []string{
	"a0/0 [1000,1014] at 8+293 codec 1 raw 1922 ts [1700000000000,1700000000044] batches 2 58480c99877eb814",
	"a0/0 [1020,1022] at 301+180 codec 0 raw 167 ts [1700000000090,1700000000092] batches 1 987f6b8498e10482",
	"a0/4 [7,8] at 481+1114 codec 0 raw 1101 ts [1700000000005,1700000000006] batches 1 a79088982f72f0fd",
	"b0/1 [0,7] at 1595+374 codec 0 raw 361 ts [1700000000000,1700000000004] batches 2 47176b6d43c11c99",
}
