package segment

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Layout constants; FORMAT.md is the specification.
const (
	// Magic opens the header and closes the trailer: ASCII "SILT".
	Magic uint32 = 0x53494C54
	// Version is the format version Writer writes: segments of many
	// partitions whose batches keep base offset 0.
	Version uint8 = 1
	// VersionCompacted is the format version WriteCompacted writes:
	// compacted objects whose batches carry their real offsets.
	VersionCompacted uint8 = 2

	// MaxChunkRawLength bounds a chunk's decoded payload. The writer fails
	// rather than exceed it and the reader rejects larger lengths before
	// allocating, so a corrupt length cannot make a reader allocate
	// gigabytes. It is far above any sane flush size (default 8 MiB).
	MaxChunkRawLength = 256 << 20

	headerLen      = 8
	chunkHeaderLen = 9 // codec, raw length, payload length
	chunkCRCLen    = 4
	chunkOverhead  = chunkHeaderLen + chunkCRCLen
	entryLen       = 61 // a version 1 footer entry
	entryLenV2     = 77 // a version 2 footer entry: version 1's and the chunk's offsets
	footerFixedLen = 8  // chunk count + CRC
	trailerLen     = 20

	// minObjectLen is an empty segment: header, empty footer, trailer.
	minObjectLen = headerLen + footerFixedLen + trailerLen

	// openTailLen is how many bytes Open reads from the end of an object
	// in its first range GET: enough for the trailer and the footer of
	// objects with up to ~260 chunks, so most opens take one request.
	openTailLen = 16 << 10

	// Kafka record batch v2 header fields used here.
	batchHeaderLen      = 61
	batchLengthOffset   = 8
	batchMagicOffset    = 16
	batchCRCOffset      = 17
	batchAttrOffset     = 21
	batchLastDeltaOff   = 23
	batchFirstTSOffset  = 27
	batchMaxTSOffset    = 35
	batchCompressionMsk = 0x07
)

// Sentinel errors. Decoding errors wrap one of them with context (where in
// the object, what was expected); test with errors.Is.
var (
	// ErrCorrupt means the bytes do not follow FORMAT.md: bad magic,
	// impossible lengths, overlapping ranges, trailing junk, a payload that
	// is not a sequence of v2 record batches. Checksum mismatches are
	// ErrCorrupt too (and also ErrChecksum).
	ErrCorrupt = errors.New("corrupt segment")

	// ErrChecksum means a chunk's or the footer's CRC-32C does not match:
	// the bytes were damaged after they were written.
	ErrChecksum = errors.New("segment checksum mismatch")

	// ErrVersion means the object was written in a format version this
	// reader does not know.
	ErrVersion = errors.New("unknown segment format version")

	// ErrInvalidBatch is returned by Writer.Finish when an appended batch
	// was not a Kafka v2 record batch whose length field matches its size.
	ErrInvalidBatch = errors.New("invalid record batch")

	// ErrTooLarge is returned by Writer.Finish when one partition's chunk
	// would exceed MaxChunkRawLength.
	ErrTooLarge = errors.New("chunk too large")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var be = binary.BigEndian

// decbuf reads big-endian fields from a byte slice with a sticky error: the
// first short read sets err and every later read returns zero values, so a
// decoder reads all fields and checks err once. Modelled on Prometheus'
// tsdb/encoding.Decbuf.
type decbuf struct {
	b   []byte
	err error
}

func (d *decbuf) fail() {
	if d.err == nil {
		d.err = ErrCorrupt
	}
	d.b = nil
}

func (d *decbuf) u8() uint8 {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decbuf) be32() uint32 {
	if len(d.b) < 4 {
		d.fail()
		return 0
	}
	v := be.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decbuf) be64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := be.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decbuf) bytes(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decbuf) len() int { return len(d.b) }

// PatchBaseOffset writes base into a record batch's base offset field
// (bytes 0-7, outside the batch CRC). It panics if batch is shorter than 8
// bytes, like any out-of-range slice access: batches come from Batches or
// the metastore's positions, which are always whole batches.
func PatchBaseOffset(batch []byte, base int64) {
	be.PutUint64(batch[:8], uint64(base))
}
