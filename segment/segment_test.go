package segment_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"go.uber.org/goleak"

	"github.com/siltdata/silt/segment"
	"github.com/siltdata/silt/segment/segmenttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	topicA = segment.TopicID{0xa0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	topicB = segment.TopicID{0xb0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
)

type appended struct {
	topic     segment.TopicID
	partition int32
	batch     []byte
}

// checkObject verifies obj against what was appended: Parse agrees with
// Finish's chunks, every chunk decodes alone from its byte range, and the
// batches come back in append order, byte for byte.
func checkObject(t *testing.T, obj []byte, chunks []segment.ChunkInfo, in []appended) {
	t.Helper()
	want := map[[2]any][][]byte{}
	for _, a := range in {
		k := [2]any{a.topic, a.partition}
		want[k] = append(want[k], a.batch)
	}
	if len(chunks) != len(want) {
		t.Fatalf("Finish returned %d chunks, want %d", len(chunks), len(want))
	}
	parsed, err := segment.Parse(obj)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(parsed) != len(chunks) {
		t.Fatalf("Parse returned %d chunks, Finish %d", len(parsed), len(chunks))
	}
	for i, c := range chunks {
		p := parsed[i]
		if fmt.Sprint(p) != fmt.Sprint(c) {
			t.Errorf("chunk %d: Parse %+v, Finish %+v", i, p, c)
		}
		payload, err := segment.DecodeChunk(obj[c.Offset : c.Offset+c.Length])
		if err != nil {
			t.Fatalf("chunk %d: DecodeChunk: %v", i, err)
		}
		if int64(len(payload)) != c.RawLength {
			t.Errorf("chunk %d: payload %d bytes, RawLength %d", i, len(payload), c.RawLength)
		}
		batches := want[[2]any{c.TopicID, c.Partition}]
		if len(c.Batches) != len(batches) || c.BatchCount != len(batches) {
			t.Fatalf("chunk %d: %d batches (count %d), want %d", i, len(c.Batches), c.BatchCount, len(batches))
		}
		minTS, maxTS := int64(1<<63-1), int64(-1<<63)
		for j, b := range c.Batches {
			got := payload[b.Pos : b.Pos+b.Len]
			if !bytes.Equal(got, batches[j]) {
				t.Fatalf("chunk %d batch %d differs from the appended batch", i, j)
			}
			minTS = min(minTS, firstTS(got))
			maxTS = max(maxTS, maxTSOf(got))
		}
		if c.MinTimestamp != minTS || c.MaxTimestamp != maxTS {
			t.Errorf("chunk %d: timestamps [%d, %d], want [%d, %d]", i, c.MinTimestamp, c.MaxTimestamp, minTS, maxTS)
		}
		split, err := segment.Batches(payload)
		if err != nil || fmt.Sprint(split) != fmt.Sprint(c.Batches) {
			t.Errorf("chunk %d: Batches = %v, %v; want %v", i, split, err, c.Batches)
		}
		if i > 0 && c.Offset != chunks[i-1].Offset+chunks[i-1].Length {
			t.Errorf("chunk %d at %d does not follow chunk %d", i, c.Offset, i-1)
		}
	}
}

func firstTS(b []byte) int64 {
	return int64(uint64(b[27])<<56 | uint64(b[28])<<48 | uint64(b[29])<<40 | uint64(b[30])<<32 | uint64(b[31])<<24 | uint64(b[32])<<16 | uint64(b[33])<<8 | uint64(b[34]))
}
func maxTSOf(b []byte) int64 { return firstTS(b[8:]) }

func TestRoundTripInterleaved(t *testing.T) {
	w := segment.NewWriter()
	rng := rand.New(rand.NewPCG(1, 2))
	var in []appended
	size := 0
	for i := range 500 {
		topic := topicA
		if rng.IntN(2) == 0 {
			topic = topicB
		}
		a := appended{topic: topic, partition: int32(rng.IntN(20)), batch: segmenttest.New(segmenttest.Options{
			Records:        1 + rng.IntN(10),
			ValueSize:      rng.IntN(300),
			Compressed:     rng.IntN(3) == 0,
			Random:         rng.IntN(4) == 0,
			FirstTimestamp: segmenttest.BaseTimestamp + int64(rng.IntN(10000)),
			Seed:           uint64(i),
		})}
		in = append(in, a)
		w.Append(a.topic, a.partition, a.batch)
		size += len(a.batch)
	}
	if w.Size() != size {
		t.Errorf("Size = %d, want %d", w.Size(), size)
	}
	obj, chunks, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	checkObject(t, obj, chunks, in)
	// Payloads are what decoding each chunk of the object gives.
	payloads := w.Payloads()
	if len(payloads) != len(chunks) {
		t.Fatalf("%d payloads for %d chunks", len(payloads), len(chunks))
	}
	for i, c := range chunks {
		dec, err := segment.DecodeChunk(obj[c.Offset : c.Offset+c.Length])
		if err != nil || !bytes.Equal(dec, payloads[i]) {
			t.Fatalf("chunk %d: payload differs from the decoded chunk (%v)", i, err)
		}
	}
	// Chunks are sorted by (topic, partition).
	for i := 1; i < len(chunks); i++ {
		a, b := chunks[i-1], chunks[i]
		if bytes.Compare(a.TopicID[:], b.TopicID[:]) > 0 || a.TopicID == b.TopicID && a.Partition >= b.Partition {
			t.Errorf("chunk %d (%x/%d) not after chunk %d (%x/%d)", i, b.TopicID[:1], b.Partition, i-1, a.TopicID[:1], a.Partition)
		}
	}
}

func TestEmptyWriter(t *testing.T) {
	w := segment.NewWriter()
	obj, chunks, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 0 || len(obj) != 36 {
		t.Fatalf("empty writer: %d chunks, %d bytes; want 0 chunks, 36 bytes", len(chunks), len(obj))
	}
	parsed, err := segment.Parse(obj)
	if err != nil || len(parsed) != 0 {
		t.Fatalf("Parse(empty) = %v, %v", parsed, err)
	}
}

func TestHugeBatch(t *testing.T) {
	// One 2 MiB batch of random (incompressible) values: stored raw.
	b := segmenttest.New(segmenttest.Options{Records: 2, ValueSize: 1 << 20, Random: true})
	w := segment.NewWriter()
	w.Append(topicA, 7, b)
	obj, chunks, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	checkObject(t, obj, chunks, []appended{{topicA, 7, b}})
	if chunks[0].Codec != segment.CodecNone {
		t.Errorf("incompressible chunk codec = %d, want none", chunks[0].Codec)
	}
}

// TestCodecProbe: a large chunk is judged by its first 64 KiB. Random
// values are stored raw without a full zstd pass; JSON-like ones are
// compressed; a chunk whose start is incompressible is stored raw even if
// the rest would compress (the price of not compressing everything).
func TestCodecProbe(t *testing.T) {
	random := segmenttest.New(segmenttest.Options{Records: 200, ValueSize: 1024, Random: true, Seed: 1})
	json := segmenttest.New(segmenttest.Options{Records: 200, ValueSize: 1024, JSON: true, Seed: 2})
	w := segment.NewWriter()
	in := []appended{{topicA, 0, random}, {topicA, 1, json}, {topicA, 2, random}, {topicA, 2, json}}
	for _, a := range in {
		w.Append(a.topic, a.partition, a.batch)
	}
	obj, chunks, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	checkObject(t, obj, chunks, in)
	for i, want := range []segment.Codec{segment.CodecNone, segment.CodecZstd, segment.CodecNone} {
		if chunks[i].RawLength <= 128<<10 {
			t.Fatalf("partition %d: %d raw bytes, too small to be probed", chunks[i].Partition, chunks[i].RawLength)
		}
		if chunks[i].Codec != want {
			t.Errorf("partition %d: codec %d, want %d", chunks[i].Partition, chunks[i].Codec, want)
		}
	}
}

func TestCodecChoice(t *testing.T) {
	compressed := segmenttest.New(segmenttest.Options{Records: 50, ValueSize: 200, Compressed: true})
	plain := segmenttest.New(segmenttest.Options{Records: 50, ValueSize: 200})
	random := segmenttest.New(segmenttest.Options{Records: 10, ValueSize: 2000, Random: true})
	w := segment.NewWriter()
	in := []appended{
		{topicA, 0, compressed}, {topicA, 0, compressed}, // all client-compressed
		{topicA, 1, plain}, {topicA, 1, compressed}, // mixed and compressible
		{topicA, 2, random}, // incompressible
	}
	for _, a := range in {
		w.Append(a.topic, a.partition, a.batch)
	}
	obj, chunks, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	checkObject(t, obj, chunks, in)
	want := []segment.Codec{segment.CodecNone, segment.CodecZstd, segment.CodecNone}
	for i, c := range chunks {
		if c.Codec != want[i] {
			t.Errorf("partition %d: codec %d, want %d", c.Partition, c.Codec, want[i])
		}
	}
	if chunks[1].Length >= chunks[1].RawLength {
		t.Errorf("zstd chunk is %d bytes for %d raw bytes", chunks[1].Length, chunks[1].RawLength)
	}
}

func TestResetReuse(t *testing.T) {
	w := segment.NewWriter()
	var objs [][]byte
	var infos [][]segment.ChunkInfo
	var ins [][]appended
	for round := range 3 {
		w.Reset()
		var in []appended
		for i := range 30 {
			a := appended{topicA, int32((i + round) % 4), segmenttest.New(segmenttest.Options{Records: 3, Seed: uint64(round*100 + i)})}
			in = append(in, a)
			w.Append(a.topic, a.partition, a.batch)
		}
		obj, chunks, err := w.Finish()
		if err != nil {
			t.Fatal(err)
		}
		objs, infos, ins = append(objs, obj), append(infos, chunks), append(ins, in)
	}
	// Earlier results must survive later Reset/Append/Finish rounds.
	for i := range objs {
		checkObject(t, objs[i], infos[i], ins[i])
	}
	w.Reset()
	if w.Size() != 0 {
		t.Errorf("Size after Reset = %d", w.Size())
	}
	if obj, chunks, err := w.Finish(); err != nil || len(chunks) != 0 || len(obj) != 36 {
		t.Errorf("Finish after Reset: %d bytes, %d chunks, %v", len(obj), len(chunks), err)
	}
}

func TestAppendInvalidBatch(t *testing.T) {
	good := segmenttest.Batch(2, false)
	badMagic := bytes.Clone(good)
	badMagic[16] = 1
	for name, b := range map[string][]byte{
		"short":     good[:40],
		"truncated": good[:len(good)-1],
		"magic":     badMagic,
		"trailing":  append(bytes.Clone(good), 0),
	} {
		w := segment.NewWriter()
		w.Append(topicA, 0, good)
		w.Append(topicA, 1, b)
		if _, _, err := w.Finish(); !errors.Is(err, segment.ErrInvalidBatch) {
			t.Errorf("%s: Finish error %v, want ErrInvalidBatch", name, err)
		}
		w.Reset()
		w.Append(topicA, 0, good)
		if _, _, err := w.Finish(); err != nil {
			t.Errorf("%s: Finish after Reset: %v", name, err)
		}
	}
}

func TestPatchBaseOffset(t *testing.T) {
	b := segmenttest.Batch(3, false)
	orig := bytes.Clone(b)
	segment.PatchBaseOffset(b, 0x0102030405060708)
	if !bytes.Equal(b[:8], []byte{1, 2, 3, 4, 5, 6, 7, 8}) || !bytes.Equal(b[8:], orig[8:]) {
		t.Fatalf("patched batch header % x", b[:12])
	}
}

func TestDecodeChunkErrors(t *testing.T) {
	w := segment.NewWriter()
	w.Append(topicA, 0, segmenttest.New(segmenttest.Options{Records: 20, ValueSize: 100}))
	obj, chunks, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	c := chunks[0]
	if c.Codec != segment.CodecZstd {
		t.Fatalf("codec %d, want zstd", c.Codec)
	}
	chunk := obj[c.Offset : c.Offset+c.Length]
	for i := range chunk {
		bad := bytes.Clone(chunk)
		bad[i] ^= 0x40
		if _, err := segment.DecodeChunk(bad); !errors.Is(err, segment.ErrCorrupt) {
			t.Fatalf("flipped byte %d: err %v, want ErrCorrupt", i, err)
		}
	}
	bad := bytes.Clone(chunk)
	bad[len(bad)-1] ^= 1
	if _, err := segment.DecodeChunk(bad); !errors.Is(err, segment.ErrChecksum) {
		t.Errorf("bad CRC: err %v, want ErrChecksum", err)
	}
	for n := range len(chunk) {
		if _, err := segment.DecodeChunk(chunk[:n]); !errors.Is(err, segment.ErrCorrupt) {
			t.Fatalf("truncated to %d: err %v, want ErrCorrupt", n, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	w := segment.NewWriter()
	w.Append(topicA, 0, segmenttest.Batch(5, false))
	w.Append(topicB, 3, segmenttest.Batch(5, true))
	obj, _, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	for i := range obj {
		bad := bytes.Clone(obj)
		bad[i] ^= 0x01
		if _, err := segment.Parse(bad); err == nil {
			t.Fatalf("flipped bit in byte %d of %d: Parse succeeded", i, len(obj))
		}
	}
	for n := range len(obj) {
		if _, err := segment.Parse(obj[:n]); !errors.Is(err, segment.ErrCorrupt) {
			t.Fatalf("truncated to %d: err %v, want ErrCorrupt", n, err)
		}
	}
	v3 := bytes.Clone(obj)
	v3[4] = 3
	v3[len(v3)-8] = 3
	if _, err := segment.Parse(v3); !errors.Is(err, segment.ErrVersion) {
		t.Errorf("version 3: err %v, want ErrVersion", err)
	}
	// A version 1 object relabelled 2 has footer entries of the wrong
	// size, and header and trailer must agree on the version.
	for _, at := range [][]int{{4, len(obj) - 8}, {4}, {len(obj) - 8}} {
		bad := bytes.Clone(obj)
		for _, i := range at {
			bad[i] = 2
		}
		if _, err := segment.Parse(bad); !errors.Is(err, segment.ErrCorrupt) {
			t.Errorf("version byte(s) %v set to 2: err %v, want ErrCorrupt", at, err)
		}
	}
}

func TestHighlyCompressible(t *testing.T) {
	// Repetitive values compress far beyond the ratio the decoder
	// allocates for up front, and decode to more than it allocates
	// whatever the ratio, so decoding takes its growing path.
	b := segmenttest.New(segmenttest.Options{Records: 40, ValueSize: 128 << 10})
	w := segment.NewWriter()
	w.Append(topicB, 1, b)
	w.Append(topicB, 1, b)
	obj, chunks, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if c := chunks[0]; c.Codec != segment.CodecZstd || c.RawLength < 100*c.Length {
		t.Fatalf("codec %d, %d bytes for %d raw: want zstd at over 100:1", c.Codec, c.Length, c.RawLength)
	}
	checkObject(t, obj, chunks, []appended{{topicB, 1, b}, {topicB, 1, b}})
}

func TestLargeObjectManyPartitions(t *testing.T) {
	// Over 512 KiB of compressible data in several partitions: Finish
	// compresses chunks concurrently. Two rounds check buffer reuse.
	w := segment.NewWriter()
	for round := range 2 {
		w.Reset()
		var in []appended
		for i := range 48 {
			a := appended{topicB, int32(i % 6), segmenttest.New(segmenttest.Options{
				Records: 16, ValueSize: 1024, JSON: true, Compressed: i%6 == 5, Seed: uint64(round*1000 + i),
			})}
			in = append(in, a)
			w.Append(a.topic, a.partition, a.batch)
		}
		obj, chunks, err := w.Finish()
		if err != nil {
			t.Fatal(err)
		}
		checkObject(t, obj, chunks, in)
		for _, c := range chunks {
			want := segment.CodecZstd
			if c.Partition == 5 {
				want = segment.CodecNone
			}
			if c.Codec != want {
				t.Errorf("round %d partition %d: codec %d, want %d", round, c.Partition, c.Codec, want)
			}
		}
	}
}
