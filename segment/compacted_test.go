package segment_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/siltdata/silt/segment"
	"github.com/siltdata/silt/segment/segmenttest"
)

// withOffset returns a copy of batch carrying base offset base.
func withOffset(batch []byte, base int64) []byte {
	b := append([]byte(nil), batch...)
	segment.PatchBaseOffset(b, base)
	return b
}

// compactedPayload concatenates batches of the given record counts from
// offset base on, leaving gap offsets between consecutive batches.
func compactedPayload(base int64, gap int64, compressed bool, seed uint64, counts ...int) ([]byte, int64) {
	var out []byte
	off := base
	last := base - 1
	for i, n := range counts {
		b := segmenttest.New(segmenttest.Options{Records: n, ValueSize: 90, Compressed: compressed, Seed: seed + uint64(i),
			FirstTimestamp: segmenttest.BaseTimestamp + int64(i)*10})
		out = append(out, withOffset(b, off)...)
		last = off + int64(n) - 1
		off = last + 1 + gap
	}
	return out, last
}

func TestWriteCompactedRoundTrip(t *testing.T) {
	p0a, last0a := compactedPayload(100, 0, false, 1, 3, 5, 1)
	p0b, last0b := compactedPayload(last0a+1, 7, true, 10, 2, 2) // gaps, client-compressed
	p3, last3 := compactedPayload(0, 0, false, 20, 4)
	in := []segment.CompactedChunk{
		{TopicID: topicA, Partition: 0, Payload: p0a},
		{TopicID: topicA, Partition: 0, Payload: p0b},
		{TopicID: topicA, Partition: 3, Payload: p3},
	}
	obj, chunks, err := segment.WriteCompacted(in)
	if err != nil {
		t.Fatal(err)
	}
	wantOffsets := [][2]int64{{100, last0a}, {last0a + 1, last0b}, {0, last3}}
	wantCodec := []segment.Codec{segment.CodecZstd, segment.CodecNone, segment.CodecZstd}
	parsed, err := segment.Parse(obj)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	opened, err := segment.Open(t.Context(), newBucketWith(t, "c", obj), "c", int64(len(obj)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if len(chunks) != 3 || len(parsed) != 3 || len(opened) != 3 {
		t.Fatalf("chunks: written %d, parsed %d, opened %d; want 3", len(chunks), len(parsed), len(opened))
	}
	for i, c := range chunks {
		if got := [2]int64{c.BaseOffset, c.LastOffset}; got != wantOffsets[i] {
			t.Errorf("chunk %d offsets %v, want %v", i, got, wantOffsets[i])
		}
		if c.Codec != wantCodec[i] {
			t.Errorf("chunk %d codec %d, want %d", i, c.Codec, wantCodec[i])
		}
		p, o := parsed[i], opened[i]
		if p.BaseOffset != c.BaseOffset || p.LastOffset != c.LastOffset || p.Offset != c.Offset || p.Length != c.Length ||
			p.BatchCount != c.BatchCount || p.MaxTimestamp != c.MaxTimestamp || p.MinTimestamp != c.MinTimestamp {
			t.Errorf("chunk %d: Parse %+v, WriteCompacted %+v", i, p, c)
		}
		if o.BaseOffset != c.BaseOffset || o.LastOffset != c.LastOffset || o.Offset != c.Offset || o.Length != c.Length {
			t.Errorf("chunk %d: Open %+v, WriteCompacted %+v", i, o, c)
		}
		payload, err := segment.ReadChunk(t.Context(), newBucketWith(t, "c", obj), "c", c.Offset, c.Length)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(payload, in[i].Payload) {
			t.Errorf("chunk %d: payload differs from what was written", i)
		}
	}
}

func TestWriteCompactedRejects(t *testing.T) {
	p, last := compactedPayload(10, 0, false, 1, 2, 2)
	later, _ := compactedPayload(last+1, 0, false, 5, 1)
	overlapping := append(append([]byte(nil), p...), withOffset(segmenttest.New(segmenttest.Options{Records: 1}), last)...)
	cases := map[string][]segment.CompactedChunk{
		"batches overlap":            {{TopicID: topicA, Payload: overlapping}},
		"chunks out of offset order": {{TopicID: topicA, Payload: later}, {TopicID: topicA, Payload: p}},
		"partitions out of order":    {{TopicID: topicA, Partition: 2, Payload: p}, {TopicID: topicA, Partition: 1, Payload: later}},
		"topics out of order":        {{TopicID: topicB, Payload: p}, {TopicID: topicA, Payload: later}},
		"empty payload":              {{TopicID: topicA}},
		"truncated batch":            {{TopicID: topicA, Payload: p[:len(p)-1]}},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, err := segment.WriteCompacted(in); err == nil {
				t.Fatal("WriteCompacted accepted it")
			}
		})
	}
	if obj, chunks, err := segment.WriteCompacted(nil); err != nil || len(chunks) != 0 {
		t.Fatalf("empty object: %v, %d chunks", err, len(chunks))
	} else if _, err := segment.Parse(obj); err != nil {
		t.Fatalf("Parse(empty compacted object): %v", err)
	}
}

// TestParseCompactedChecksOffsets doctors a compacted object's footer (CRCs
// fixed up) so it disagrees with its batches: Parse must refuse it.
func TestParseCompactedChecksOffsets(t *testing.T) {
	p, _ := compactedPayload(50, 0, false, 1, 2, 3)
	obj, chunks, err := segment.WriteCompacted([]segment.CompactedChunk{{TopicID: topicA, Payload: p}})
	if err != nil {
		t.Fatal(err)
	}
	footerOff := chunks[0].Offset + chunks[0].Length
	entryBase := footerOff + 4 + 61 // first entry's base offset field
	for name, field := range map[string]int64{"base offset": entryBase, "last offset": entryBase + 8} {
		bad := append([]byte(nil), obj...)
		bad[field+7]++
		bad = fixObjectCRCs(bad)
		if _, err := segment.Parse(bad); !errors.Is(err, segment.ErrCorrupt) {
			t.Errorf("%s changed: Parse error %v, want ErrCorrupt", name, err)
		}
	}
}
