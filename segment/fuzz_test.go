package segment_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"testing"

	"github.com/siltdata/silt/segment"
	"github.com/siltdata/silt/segment/segmenttest"
)

// fuzzObjects are valid objects the fuzz targets start from.
func fuzzObjects(f *testing.F) [][]byte {
	var objs [][]byte
	w := segment.NewWriter()
	for _, parts := range []int{0, 1, 3} {
		w.Reset()
		for p := range parts {
			w.Append(topicA, int32(p), segmenttest.New(segmenttest.Options{Records: 3, ValueSize: 40, Compressed: p == 1, Seed: uint64(p)}))
			w.Append(topicA, int32(p), segmenttest.New(segmenttest.Options{Records: 2, ValueSize: 40, Seed: uint64(p + 10)}))
		}
		obj, _, err := w.Finish()
		if err != nil {
			f.Fatal(err)
		}
		objs = append(objs, obj)
	}
	for _, parts := range []int{1, 2} {
		var in []segment.CompactedChunk
		for p := range parts {
			payload, last := compactedPayload(int64(100*p), 0, p == 1, uint64(p), 3, 2)
			more, _ := compactedPayload(last+1, 4, false, uint64(p+10), 1, 2)
			in = append(in, segment.CompactedChunk{TopicID: topicA, Partition: int32(p), Payload: payload},
				segment.CompactedChunk{TopicID: topicA, Partition: int32(p), Payload: more})
		}
		obj, _, err := segment.WriteCompacted(in)
		if err != nil {
			f.Fatal(err)
		}
		objs = append(objs, obj)
	}
	for _, g := range []string{goldenV1, goldenV2} {
		if golden, err := os.ReadFile(g); err == nil {
			objs = append(objs, golden)
		}
	}
	return objs
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{})
	for _, obj := range fuzzObjects(f) {
		f.Add(obj)
		f.Add(obj[:len(obj)/2])
		f.Add(obj[:len(obj)-1])
		f.Add(append(bytes.Clone(obj), 0xde, 0xad, 0xbe, 0xef))
		f.Add(append([]byte{0}, obj...))
		// Footer length, then footer offset, set to 0 and 0xFFFFFFFF.
		for _, v := range []uint32{0, 0xFFFFFFFF} {
			b := bytes.Clone(obj)
			binary.BigEndian.PutUint32(b[len(b)-12:], v)
			f.Add(b)
			b = bytes.Clone(obj)
			binary.BigEndian.PutUint32(b[len(b)-20:], v)
			binary.BigEndian.PutUint32(b[len(b)-16:], v)
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, obj []byte) {
		// Random bytes rarely pass a CRC, which would keep the fuzzer at
		// the first check: also parse a copy with its CRCs recomputed.
		checkParse(t, obj)
		checkParse(t, fixObjectCRCs(obj))
	})
}

// fixObjectCRCs returns a copy of obj with the footer CRC and every chunk
// CRC the footer locates recomputed, as far as the trailer and footer make
// sense.
func fixObjectCRCs(obj []byte) []byte {
	obj = bytes.Clone(obj)
	if len(obj) < 36 {
		return obj
	}
	be := binary.BigEndian
	off, n := be.Uint64(obj[len(obj)-20:]), uint64(be.Uint32(obj[len(obj)-12:]))
	if off > uint64(len(obj)) || n < 8 || n > uint64(len(obj))-off {
		return obj
	}
	footer := obj[off : off+n]
	stride := 61
	if obj[len(obj)-8] == segment.VersionCompacted {
		stride = 77
	}
	for e := footer[4 : len(footer)-4]; len(e) >= stride; e = e[stride:] {
		co, cl := be.Uint64(e[20:]), be.Uint64(e[28:])
		if cl >= 4 && co <= uint64(len(obj)) && cl <= uint64(len(obj))-co {
			fixChunkCRC(obj[co : co+cl])
		}
	}
	be.PutUint32(footer[len(footer)-4:], crc32.Checksum(footer[:len(footer)-4], crc32.MakeTable(crc32.Castagnoli)))
	return obj
}

func fixChunkCRC(chunk []byte) {
	if len(chunk) >= 4 {
		binary.BigEndian.PutUint32(chunk[len(chunk)-4:], crc32.Checksum(chunk[:len(chunk)-4], crc32.MakeTable(crc32.Castagnoli)))
	}
}

func checkParse(t *testing.T, obj []byte) {
	chunks, err := segment.Parse(obj)
	if err != nil {
		if !errors.Is(err, segment.ErrCorrupt) && !errors.Is(err, segment.ErrVersion) {
			t.Fatalf("Parse error %v is neither ErrCorrupt nor ErrVersion", err)
		}
		return
	}
	// A valid object: every chunk re-decodes alone and agrees with
	// the footer.
	for i, c := range chunks {
		payload, err := segment.DecodeChunk(obj[c.Offset : c.Offset+c.Length])
		if err != nil {
			t.Fatalf("chunk %d: Parse accepted it, DecodeChunk: %v", i, err)
		}
		if int64(len(payload)) != c.RawLength || len(c.Batches) != c.BatchCount {
			t.Fatalf("chunk %d: %d bytes, %d batches; footer %d, %d", i, len(payload), len(c.Batches), c.RawLength, c.BatchCount)
		}
		for _, b := range c.Batches {
			if b.Pos < 0 || b.Len < 61 || int64(b.Pos)+int64(b.Len) > int64(len(payload)) {
				t.Fatalf("chunk %d: batch %+v outside payload of %d bytes", i, b, len(payload))
			}
		}
	}
}

func FuzzDecodeChunk(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 13))
	for _, obj := range fuzzObjects(f) {
		chunks, err := segment.Parse(obj)
		if err != nil {
			f.Fatal(err)
		}
		for _, c := range chunks {
			chunk := obj[c.Offset : c.Offset+c.Length]
			f.Add(chunk)
			f.Add(chunk[:len(chunk)-1])
			f.Add(append(bytes.Clone(chunk), 0))
			for _, v := range []uint32{0, 0xFFFFFFFF} {
				for _, at := range []int{1, 5} { // raw length, payload length
					b := bytes.Clone(chunk)
					binary.BigEndian.PutUint32(b[at:], v)
					f.Add(b)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, chunk []byte) {
		checkDecodeChunk(t, chunk)
		fixed := bytes.Clone(chunk)
		fixChunkCRC(fixed)
		checkDecodeChunk(t, fixed)
	})
}

func checkDecodeChunk(t *testing.T, chunk []byte) {
	payload, err := segment.DecodeChunk(chunk)
	shared, serr := segment.DecodeChunkShared(chunk)
	if (err == nil) != (serr == nil) || !bytes.Equal(payload, shared) {
		t.Fatalf("DecodeChunkShared disagrees with DecodeChunk: %v, %v", serr, err)
	}
	if err != nil {
		if !errors.Is(err, segment.ErrCorrupt) {
			t.Fatalf("DecodeChunk error %v is not ErrCorrupt", err)
		}
		return
	}
	batches, err := segment.Batches(payload)
	if err != nil || len(batches) == 0 {
		t.Fatalf("DecodeChunk accepted a payload Batches rejects: %d batches, %v", len(batches), err)
	}
	again, err := segment.AppendChunk([]byte("prefix"), chunk)
	if err != nil || !bytes.Equal(again[6:], payload) || string(again[:6]) != "prefix" {
		t.Fatalf("AppendChunk disagrees with DecodeChunk: %v", err)
	}
}
