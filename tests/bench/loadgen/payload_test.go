package loadgen

import (
	"bytes"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// chunkOf fills n values of size bytes with one filler, concatenated as
// one partition's chunk of a segment would hold them (without the
// batch framing).
func chunkOf(t *testing.T, payload string, n, size int) (chunk []byte, values [][]byte) {
	t.Helper()
	f := newValueFiller(payload)
	for range n {
		v := make([]byte, size)
		f.fill(v)
		values = append(values, v)
		chunk = append(chunk, v...)
	}
	return chunk, values
}

// zstdRatio is compressed / raw at the segment writer's setting.
func zstdRatio(t *testing.T, b []byte) float64 {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return float64(len(enc.EncodeAll(b, nil))) / float64(len(b))
}

// TestRandomPayloadIncompressible is what the report's upload check
// relies on: an 8 MiB chunk of one partition (the worst case: every
// record of a full segment in one chunk, as with one partition) does
// not compress, and no two values are alike.
func TestRandomPayloadIncompressible(t *testing.T) {
	chunk, values := chunkOf(t, PayloadRandom, 8192, 1024)
	if r := zstdRatio(t, chunk); r < 0.99 {
		t.Fatalf("zstd stores an 8 MiB chunk of random values at %.3f of its size, want ≥ 0.99", r)
	}
	// Several producers (fillers) whose walks of the pool overlap: the
	// worst case, all starting at the same offset.
	var mixed []byte
	fillers := []*valueFiller{newValueFiller(PayloadRandom), newValueFiller(PayloadRandom), newValueFiller(PayloadRandom)}
	for i := range 8192 {
		f := fillers[i%len(fillers)]
		if i < len(fillers) {
			f.pos = 0
		}
		v := make([]byte, 1024)
		f.fill(v)
		mixed = append(mixed, v...)
	}
	if r := zstdRatio(t, mixed); r < 0.99 {
		t.Fatalf("zstd stores values of producers walking the same pool stretch at %.3f of their size, want ≥ 0.99", r)
	}
	seen := map[string]bool{}
	for _, v := range values {
		if seen[string(v[8:])] {
			t.Fatal("two values alike")
		}
		seen[string(v[8:])] = true
	}
	// Values shorter than a word, and empty bodies, are filled too.
	f := newValueFiller(PayloadRandom)
	for _, n := range []int{8, 9, 13, 16, 17} {
		a, b := make([]byte, n), make([]byte, n)
		f.fill(a)
		f.fill(b)
		if n > 9 && bytes.Equal(a, b) {
			t.Errorf("%d-byte values alike: %x", n, a)
		}
		if !bytes.Equal(a[:min(8, n)], make([]byte, min(8, n))) {
			t.Errorf("%d-byte value: fill wrote the timestamp's 8 bytes: %x", n, a)
		}
	}
}

// TestJSONPayloadCompressible checks the realistic mode compresses as
// application events do (between 2× and 10×), is distinct per record,
// and fills values exactly.
func TestJSONPayloadCompressible(t *testing.T) {
	chunk, values := chunkOf(t, PayloadJSON, 8192, 1024)
	r := zstdRatio(t, chunk)
	if r < 0.1 || r > 0.5 {
		t.Fatalf("zstd stores JSON-like values at %.3f of their size, want 0.1-0.5", r)
	}
	t.Logf("JSON payload: zstd (fastest) stores it at %.3f of its size (%.1f:1)", r, 1/r)
	seen := map[string]bool{}
	for _, v := range values {
		if !bytes.HasPrefix(v[8:], []byte(`{"event_id":"`)) || bytes.IndexByte(v[8:], 0) >= 0 {
			t.Fatalf("value not filled with events: %q", v[:64])
		}
		if seen[string(v[8:])] {
			t.Fatal("two values alike")
		}
		seen[string(v[8:])] = true
	}
}

func TestPayloadValidate(t *testing.T) {
	cfg := DefaultConfig()
	if cfg.Payload != PayloadRandom {
		t.Fatalf("default payload %q, want %q", cfg.Payload, PayloadRandom)
	}
	for _, p := range []string{"", PayloadRandom, PayloadJSON} {
		cfg.Payload = p
		if err := cfg.Validate(); err != nil {
			t.Errorf("payload %q: %v", p, err)
		}
	}
	cfg.Payload = "zeros"
	if err := cfg.Validate(); err == nil {
		t.Error("payload zeros: no error")
	}
}

func BenchmarkFill(b *testing.B) {
	for _, p := range Payloads {
		b.Run(p, func(b *testing.B) {
			f := newValueFiller(p)
			v := make([]byte, 1024)
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				f.fill(v)
			}
		})
	}
}
