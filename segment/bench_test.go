package segment_test

import (
	"testing"

	"github.com/siltdata/silt/segment"
	"github.com/siltdata/silt/segment/segmenttest"
)

// benchBatches returns what one agent flush looks like: ~8 MiB of 1 KiB records
// in batches of 16, spread over 12 partitions. clientCompressed makes every
// batch producer-compressed (chunks stored as-is); random makes the values
// incompressible (chunks stored as-is after a probe); otherwise the records
// are JSON-like and the chunks get zstd.
func benchBatches(b *testing.B, clientCompressed, random bool) (batches [][]byte, parts []int32) {
	b.Helper()
	raw := 0 // record bytes, so both cases carry the same data
	for i := 0; raw < 8<<20; i++ {
		batch := segmenttest.New(segmenttest.Options{
			Records: 16, ValueSize: 1024, JSON: !random, Random: random, Compressed: clientCompressed, Seed: uint64(i),
		})
		batches = append(batches, batch)
		parts = append(parts, int32(i%12))
		raw += 16 * 1024
	}
	return batches, parts
}

func benchCases() []struct {
	name       string
	compressed bool
	random     bool
} {
	return []struct {
		name       string
		compressed bool
		random     bool
	}{{"zstd", false, false}, {"none", true, false}, {"random", false, true}}
}

// BenchmarkWriter measures Append of one object's batches plus Finish.
// MB/s counts the batch bytes appended.
func BenchmarkWriter(b *testing.B) {
	for _, bc := range benchCases() {
		b.Run(bc.name, func(b *testing.B) {
			batches, parts := benchBatches(b, bc.compressed, bc.random)
			w := segment.NewWriter()
			for i, batch := range batches {
				w.Append(topicA, parts[i], batch)
			}
			b.SetBytes(int64(w.Size()))
			obj, chunks, err := w.Finish()
			if err != nil {
				b.Fatal(err)
			}
			ratio := float64(w.Size()) / float64(len(obj))
			if want := map[bool]segment.Codec{false: segment.CodecZstd, true: segment.CodecNone}[bc.compressed || bc.random]; chunks[0].Codec != want {
				b.Fatalf("codec %d, want %d", chunks[0].Codec, want)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w.Reset()
				for i, batch := range batches {
					w.Append(topicA, parts[i], batch)
				}
				if _, _, err := w.Finish(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(ratio, "ratio")
		})
	}
}

// BenchmarkDecode measures decoding every chunk of one object, each on its
// own as a reader with one range GET would. MB/s counts decoded bytes.
func BenchmarkDecode(b *testing.B) {
	for _, bc := range benchCases() {
		b.Run(bc.name, func(b *testing.B) {
			batches, parts := benchBatches(b, bc.compressed, bc.random)
			w := segment.NewWriter()
			for i, batch := range batches {
				w.Append(topicA, parts[i], batch)
			}
			obj, chunks, err := w.Finish()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(w.Size()))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for _, c := range chunks {
					if _, err := segment.DecodeChunk(obj[c.Offset : c.Offset+c.Length]); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkParse measures Parse of a whole object (footer, every chunk's
// checksum and decoding, batch walk). MB/s counts decoded bytes.
func BenchmarkParse(b *testing.B) {
	for _, bc := range benchCases() {
		b.Run(bc.name, func(b *testing.B) {
			batches, parts := benchBatches(b, bc.compressed, bc.random)
			w := segment.NewWriter()
			for i, batch := range batches {
				w.Append(topicA, parts[i], batch)
			}
			obj, _, err := w.Finish()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(w.Size()))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := segment.Parse(obj); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
