package segment_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/siltdata/silt/segment"
	"github.com/siltdata/silt/segment/segmenttest"
)

// -update writes testdata/v1.seg and v2.seg if they do not exist. Run it only when
// introducing a format version's golden object: once committed, the golden
// file must never change, and TestGoldenV1 must keep reading it.
var update = flag.Bool("update", false, "rewrite the golden segment objects in testdata")

const goldenV1 = "testdata/v1.seg"

// writeGoldenV1 builds the version 1 golden object: both codecs, a
// client-compressed chunk, an incompressible one, two topics, mixed
// timestamps.
func writeGoldenV1(t *testing.T) {
	w := segment.NewWriter()
	ts := segmenttest.BaseTimestamp
	w.Append(topicA, 0, segmenttest.New(segmenttest.Options{Records: 10, ValueSize: 100, FirstTimestamp: ts, Seed: 1}))
	w.Append(topicB, 5, segmenttest.New(segmenttest.Options{Records: 2, ValueSize: 50, FirstTimestamp: ts + 500, Seed: 2}))
	w.Append(topicA, 1, segmenttest.New(segmenttest.Options{Records: 5, ValueSize: 80, Compressed: true, FirstTimestamp: ts + 100, Seed: 3}))
	w.Append(topicA, 0, segmenttest.New(segmenttest.Options{Records: 10, ValueSize: 100, FirstTimestamp: ts + 10, Seed: 4}))
	w.Append(topicB, 2, segmenttest.New(segmenttest.Options{Records: 3, ValueSize: 1000, Random: true, FirstTimestamp: ts + 200, Seed: 5}))
	w.Append(topicA, 1, segmenttest.New(segmenttest.Options{Records: 5, ValueSize: 80, Compressed: true, FirstTimestamp: ts + 50, Seed: 6}))
	w.Append(topicB, 5, segmenttest.New(segmenttest.Options{Records: 4, ValueSize: 50, Compressed: true, FirstTimestamp: ts + 300, Seed: 7}))
	w.Append(topicA, 0, segmenttest.New(segmenttest.Options{Records: 10, ValueSize: 100, FirstTimestamp: ts + 20, Seed: 8}))
	obj, _, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	writeGolden(t, goldenV1, obj)
}

// writeGolden writes a golden object to path, which must not exist yet.
func writeGolden(t *testing.T, path string, obj []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	// O_EXCL: a committed golden object is never rewritten by accident.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatalf("%v (a golden object is written once; delete it by hand only when creating it anew)", err)
	}
	if _, err := f.Write(obj); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// goldenChunk is what TestGoldenV1 expects of each chunk, written down
// once from the committed file.
type goldenChunk struct {
	topic     segment.TopicID
	partition int32
	offset    int64
	length    int64
	codec     segment.Codec
	rawLength int64
	minTS     int64
	maxTS     int64
	batches   []segment.BatchInfo
	records   []int32 // record count of each batch
	sha256    string  // of the decoded payload
}

func TestGoldenV1(t *testing.T) {
	if *update {
		writeGoldenV1(t)
	}
	obj, err := os.ReadFile(goldenV1)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := segment.Parse(obj)
	if err != nil {
		t.Fatalf("Parse(%s): %v", goldenV1, err)
	}
	if *update {
		for _, c := range chunks {
			payload, _ := segment.DecodeChunk(obj[c.Offset : c.Offset+c.Length])
			sum := sha256.Sum256(payload)
			var records []int32
			for _, b := range c.Batches {
				records = append(records, int32(binary.BigEndian.Uint32(payload[b.Pos+57:])))
			}
			t.Logf("{topic%s, %d, %d, %d, %d, %d, %d, %d, %#v, %#v, %q},", map[byte]string{0xa0: "A", 0xb0: "B"}[c.TopicID[0]],
				c.Partition, c.Offset, c.Length, c.Codec, c.RawLength, c.MinTimestamp, c.MaxTimestamp, c.Batches, records, hex.EncodeToString(sum[:]))
		}
		t.Logf("object: %d bytes", len(obj))
	}

	want := goldenV1Chunks
	if len(obj) != goldenV1Size {
		t.Errorf("%s is %d bytes, want %d", goldenV1, len(obj), goldenV1Size)
	}
	if len(chunks) != len(want) {
		t.Fatalf("%d chunks, want %d", len(chunks), len(want))
	}
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	for i, w := range want {
		c := chunks[i]
		got := goldenChunk{c.TopicID, c.Partition, c.Offset, c.Length, c.Codec, c.RawLength, c.MinTimestamp, c.MaxTimestamp, c.Batches, nil, ""}
		payload, err := segment.DecodeChunk(obj[c.Offset : c.Offset+c.Length])
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		sum := sha256.Sum256(payload)
		got.sha256 = hex.EncodeToString(sum[:])
		for _, b := range c.Batches {
			batch := payload[b.Pos : b.Pos+b.Len]
			got.records = append(got.records, int32(binary.BigEndian.Uint32(batch[57:])))
			if crc := crc32.Checksum(batch[21:], castagnoli); crc != binary.BigEndian.Uint32(batch[17:]) {
				t.Errorf("chunk %d batch at %d: batch CRC does not match", i, b.Pos)
			}
		}
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", w) {
			t.Errorf("chunk %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
}
