package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltdata/silt/segment/segmenttest"
)

// codecs are the ways a producer compresses a batch's records: every kgo
// codec, plus raw snappy (kgo writes xerial framing, other clients raw)
// and zstd streamed without a declared content size.
var codecs = []struct {
	name  string
	codec kgo.CompressionCodecType
	enc   func(raw []byte) []byte
}{
	{"gzip", kgo.CodecGzip, kgoCompress(kgo.GzipCompression())},
	{"snappy-xerial", kgo.CodecSnappy, kgoCompress(kgo.SnappyCompression())},
	{"snappy-raw", kgo.CodecSnappy, func(raw []byte) []byte { return s2.EncodeSnappy(nil, raw) }},
	{"lz4", kgo.CodecLz4, kgoCompress(kgo.Lz4Compression())},
	{"zstd", kgo.CodecZstd, kgoCompress(kgo.ZstdCompression())},
	{"zstd-stream", kgo.CodecZstd, func(raw []byte) []byte {
		var buf bytes.Buffer
		zw, _ := zstd.NewWriter(&buf)
		_, _ = zw.Write(raw)
		_ = zw.Close()
		return buf.Bytes()
	}},
}

func kgoCompress(c kgo.CompressionCodec) func([]byte) []byte {
	return func(raw []byte) []byte {
		comp, err := kgo.DefaultCompressor(c)
		if err != nil {
			panic(err)
		}
		out, _ := comp.Compress(new(bytes.Buffer), raw)
		return bytes.Clone(out)
	}
}

// withRecords returns batch (uncompressed) with its records replaced by
// records compressed by enc as codec, length and CRC fixed.
func withRecords(batch []byte, codec kgo.CompressionCodecType, records []byte) []byte {
	b := append(bytes.Clone(batch[:batchHeaderLen]), records...)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-12))
	binary.BigEndian.PutUint16(b[offAttributes:], binary.BigEndian.Uint16(b[offAttributes:])&^attrCompression|uint16(codec))
	return fixCRC(b)
}

func TestValidateEveryCodec(t *testing.T) {
	plain := segmenttest.New(segmenttest.Options{Records: 50, Seed: 3})
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			b := withRecords(plain, c.codec, c.enc(plain[batchHeaderLen:]))
			items, err := Validate(b, opts())
			if err != nil || len(items) != 1 || items[0].Records != 50 {
				t.Fatalf("got %d items, %v", len(items), err)
			}
		})
	}
}

// TestValidateDecompressionBound: records that decompress past
// MaxDecompressedBytes are refused without being held in memory, by
// every codec. Before the bound, a 0.9 MB gzip batch of zeros allocated
// 2.9 GiB during validation.
func TestValidateDecompressionBound(t *testing.T) {
	const limit = 1 << 20
	zeros := make([]byte, 16<<20)
	plain := segmenttest.New(segmenttest.Options{Records: 1})
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			b := withRecords(plain, c.codec, c.enc(zeros))
			o := opts()
			o.MaxDecompressedBytes = limit
			alloc := allocated(func() { _, err := Validate(bytes.Clone(b), o); wantCode(t, err, kerr.MessageTooLarge) })
			t.Logf("%d compressed bytes refused, %d bytes allocated", len(b), alloc)
			if alloc > 4*limit+lz4Buffers {
				t.Errorf("refusing %d compressed bytes allocated %d bytes, bound %d", len(b), alloc, limit)
			}
			// Within a larger bound the same records decompress, and
			// are refused for what they are: zeros, not records.
			o.MaxDecompressedBytes = 32 << 20
			_, err := Validate(bytes.Clone(b), o)
			wantCode(t, err, kerr.CorruptMessage)
		})
	}
	// Snappy declares its decoded length up front and kgo allocates it:
	// five bytes claiming 1 GiB, raw and in xerial framing.
	claim := binary.AppendUvarint(nil, 1<<30)
	xerial := append(append(bytes.Clone(xerialMagic), 0, 0, 0, 1, 0, 0, 0, 1), binary.BigEndian.AppendUint32(nil, uint32(len(claim)+1))...)
	xerial = append(append(xerial, claim...), 0)
	for name, recs := range map[string][]byte{"raw": append(claim, 0), "xerial": xerial} {
		b := withRecords(plain, kgo.CodecSnappy, recs)
		o := opts()
		o.MaxDecompressedBytes = limit
		alloc := allocated(func() { _, err := Validate(b, o); wantCode(t, err, kerr.MessageTooLarge) })
		if alloc > limit {
			t.Errorf("snappy %s claiming 1 GiB: allocated %d bytes", name, alloc)
		}
	}
}

// lz4Buffers is what an lz4 reader may allocate whatever it outputs:
// buffers for the 4 MiB blocks a frame may declare, when its pools are
// empty (under -race sync.Pool drops items at random).
const lz4Buffers = 8 << 20

func wantCode(t *testing.T, err error, want *kerr.Error) {
	t.Helper()
	var ke *kerr.Error
	if !errors.As(err, &ke) || ke != want || !IsValidation(err) {
		t.Fatalf("got %v, want %s", err, want.Message)
	}
}

// allocated is how many bytes f allocated (the heap's cumulative
// count, so the test's other goroutines, if any, count too).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
