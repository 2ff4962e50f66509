package segment

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/klauspost/compress/zstd"

	"github.com/siltdata/silt/segment/objstore"
)

// DecodeChunk takes a chunk exactly as read by one range GET of
// [ChunkInfo.Offset, Offset+Length), verifies its checksum and returns the
// decoded payload: the concatenated record batches. The result is newly
// allocated (never aliases chunk), so callers may patch offsets into it.
// Every corrupt input returns an error; DecodeChunk never panics.
func DecodeChunk(chunk []byte) ([]byte, error) {
	return AppendChunk(nil, chunk)
}

// DecodeChunkShared is DecodeChunk for callers that only read the payload
// (a read cache): a chunk stored without compression is returned as a
// subslice of chunk instead of a copy, so chunk must not be modified while
// the result is in use. A zstd chunk is decoded into a new buffer.
func DecodeChunkShared(chunk []byte) ([]byte, error) {
	out, _, err := decodeChunk(nil, chunk, true)
	return out, err
}

// AppendChunk is DecodeChunk appending the payload to dst, for callers that
// reuse buffers. On error it returns dst unchanged in length.
func AppendChunk(dst, chunk []byte) ([]byte, error) {
	out, _, err := decodeChunk(dst, chunk, false)
	return out, err
}

// chunkHeader is a chunk's decoded header.
type chunkHeader struct {
	codec  Codec
	rawLen int
}

// decodeChunk verifies chunk and appends its payload to dst. When alias is
// true and the chunk is stored raw, it returns a subslice of chunk instead
// of copying (Parse only reads the payload).
func decodeChunk(dst, chunk []byte, alias bool) ([]byte, chunkHeader, error) {
	d := decbuf{b: chunk}
	h := chunkHeader{codec: Codec(d.u8())}
	raw := d.be32()
	plen := d.be32()
	if d.err != nil {
		return dst, h, fmt.Errorf("chunk of %d bytes: %w: shorter than a chunk header", len(chunk), ErrCorrupt)
	}
	if uint64(plen)+chunkCRCLen != uint64(d.len()) {
		return dst, h, fmt.Errorf("chunk of %d bytes: %w: payload length %d does not match", len(chunk), ErrCorrupt, plen)
	}
	payload := d.bytes(int(plen))
	sum := d.be32()
	if got := crc32.Checksum(chunk[:len(chunk)-chunkCRCLen], castagnoli); got != sum {
		return dst, h, fmt.Errorf("chunk of %d bytes: %w: crc32c %08x, stored %08x (%w)", len(chunk), ErrChecksum, got, sum, ErrCorrupt)
	}
	if raw > MaxChunkRawLength {
		return dst, h, fmt.Errorf("chunk: %w: raw length %d over limit %d", ErrCorrupt, raw, MaxChunkRawLength)
	}
	h.rawLen = int(raw)

	var out []byte
	switch h.codec {
	case CodecNone:
		if plen != raw {
			return dst, h, fmt.Errorf("chunk: %w: uncompressed payload of %d bytes, raw length %d", ErrCorrupt, plen, raw)
		}
		if alias {
			out = payload
		} else {
			out = append(dst, payload...)
		}
	case CodecZstd:
		res, err := decodeZstd(dst, payload, h.rawLen)
		if err != nil {
			return dst, h, fmt.Errorf("chunk: %w", err)
		}
		out = res
	default:
		return dst, h, fmt.Errorf("chunk: %w: unknown codec %d", ErrCorrupt, h.codec)
	}
	start := len(out) - h.rawLen
	if _, _, _, err := walkBatches(out[start:], nil); err != nil {
		return out[:start], h, fmt.Errorf("chunk: %w", err)
	}
	return out, h, nil
}

// zstdTrustedRatio is the decoded/stored ratio up to which decodeZstd
// allocates the claimed raw length at once, and zstdTrustedLength the raw
// length it allocates at once whatever the ratio (a chunk of a segment of
// the default flush size). Beyond both, the output buffer grows by
// doubling, each step decoding again, so that a lying raw length costs a
// bounded allocation rather than a huge one.
const (
	zstdTrustedRatio  = 16
	zstdTrustedLength = 8 << 20
)

// decodeZstd appends the decoding of payload, one zstd frame that must
// decode to exactly rawLen bytes, to dst. It never decodes more than rawLen
// bytes.
func decodeZstd(dst, payload []byte, rawLen int) ([]byte, error) {
	var fh zstd.Header
	if err := fh.Decode(payload); err != nil {
		return dst, fmt.Errorf("%w: zstd frame header: %w", ErrCorrupt, err)
	}
	// Encoders may leave the content size out for tiny frames (klauspost
	// does below 256 bytes); when present it must match.
	if fh.Skippable || fh.HasFCS && fh.FrameContentSize != uint64(rawLen) {
		return dst, fmt.Errorf("%w: zstd frame content size %d (known: %v), raw length %d", ErrCorrupt, fh.FrameContentSize, fh.HasFCS, rawLen)
	}
	_, dec := codecs()
	n := len(dst)
	limit := min(rawLen, max(zstdTrustedRatio*len(payload)+64<<10, zstdTrustedLength))
	for {
		dst = slices.Grow(dst[:n], limit)
		// The three-index slice makes DecodeAllCapLimit stop at limit
		// bytes: more output is an error, not an allocation.
		res, err := dec.DecodeAll(payload, dst[:n:n+limit])
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) && limit < rawLen {
			limit = min(rawLen, 2*limit)
			continue
		}
		if err != nil {
			return dst[:n], fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
		}
		if len(res)-n != rawLen {
			return dst[:n], fmt.Errorf("%w: zstd payload decodes to %d bytes, raw length %d", ErrCorrupt, len(res)-n, rawLen)
		}
		return res, nil
	}
}

// Batches splits a decoded chunk payload into its record batches. It
// returns an error if the payload is not a non-empty sequence of v2 record
// batches ending exactly at its end.
func Batches(payload []byte) ([]BatchInfo, error) {
	infos, _, _, err := walkBatches(payload, make([]BatchInfo, 0, 16))
	return infos, err
}

// walkBatches walks payload batch by batch, appending each batch's range to
// infos if it is not nil, and returns the chunk's min first-timestamp and
// max max-timestamp.
func walkBatches(payload []byte, infos []BatchInfo) (_ []BatchInfo, minTS, maxTS int64, _ error) {
	if len(payload) == 0 {
		return infos, 0, 0, fmt.Errorf("%w: empty chunk payload", ErrCorrupt)
	}
	for pos, i := 0, 0; pos < len(payload); i++ {
		rest := payload[pos:]
		if len(rest) < batchHeaderLen {
			return infos, 0, 0, fmt.Errorf("%w: batch %d at %d: %d bytes left, shorter than a batch header", ErrCorrupt, i, pos, len(rest))
		}
		n := int64(int32(be.Uint32(rest[batchLengthOffset:]))) + 12
		if n < batchHeaderLen || n > int64(len(rest)) {
			return infos, 0, 0, fmt.Errorf("%w: batch %d at %d: length %d out of range", ErrCorrupt, i, pos, n)
		}
		if rest[batchMagicOffset] != 2 {
			return infos, 0, 0, fmt.Errorf("%w: batch %d at %d: magic %d", ErrCorrupt, i, pos, rest[batchMagicOffset])
		}
		first := int64(be.Uint64(rest[batchFirstTSOffset:]))
		last := int64(be.Uint64(rest[batchMaxTSOffset:]))
		if i == 0 {
			minTS, maxTS = first, last
		} else {
			minTS, maxTS = min(minTS, first), max(maxTS, last)
		}
		if infos != nil {
			infos = append(infos, BatchInfo{Pos: int32(pos), Len: int32(n)})
		}
		pos += int(n)
	}
	return infos, minTS, maxTS, nil
}

// Parse decodes a whole segment object held in memory and returns its
// chunks as the footer lists them (Batches filled by walking the decoded
// payloads). Every corrupt input returns an error; Parse never panics.
func Parse(obj []byte) ([]ChunkInfo, error) {
	if len(obj) < minObjectLen {
		return nil, fmt.Errorf("segment of %d bytes: %w: shorter than an empty segment", len(obj), ErrCorrupt)
	}
	d := decbuf{b: obj[:headerLen]}
	magic, version := d.be32(), d.u8()
	reserved := d.bytes(3)
	if magic != Magic {
		return nil, fmt.Errorf("segment header: %w: magic %08x", ErrCorrupt, magic)
	}
	if version != Version && version != VersionCompacted {
		return nil, fmt.Errorf("segment header: %w %d", ErrVersion, version)
	}
	if reserved[0]|reserved[1]|reserved[2] != 0 {
		return nil, fmt.Errorf("segment header: %w: reserved bytes not zero", ErrCorrupt)
	}
	size := int64(len(obj))
	footerOff, footerLen, tversion, err := parseTrailer(obj[len(obj)-trailerLen:], size)
	if err != nil {
		return nil, err
	}
	if tversion != version {
		return nil, fmt.Errorf("segment trailer: %w: version %d, header says %d", ErrCorrupt, tversion, version)
	}
	chunks, err := parseFooter(obj[footerOff:footerOff+footerLen], footerOff, version)
	if err != nil {
		return nil, err
	}

	var scratch []byte // reused for zstd chunks
	infos := make([]BatchInfo, 0, 16*len(chunks))
	for i := range chunks {
		c := &chunks[i]
		payload, h, err := decodeChunk(scratch[:0], obj[c.Offset:c.Offset+c.Length], true)
		if err != nil {
			return nil, fmt.Errorf("chunk %d (partition %d at %d): %w", i, c.Partition, c.Offset, err)
		}
		if h.codec == CodecZstd {
			scratch = payload
		}
		if h.codec != c.Codec || int64(h.rawLen) != c.RawLength {
			return nil, fmt.Errorf("chunk %d (partition %d at %d): %w: header says codec %d raw length %d, footer codec %d raw length %d",
				i, c.Partition, c.Offset, ErrCorrupt, h.codec, h.rawLen, c.Codec, c.RawLength)
		}
		start := len(infos)
		var minTS, maxTS int64
		infos, minTS, maxTS, err = walkBatches(payload, infos)
		if err != nil {
			return nil, fmt.Errorf("chunk %d (partition %d at %d): %w", i, c.Partition, c.Offset, err)
		}
		if got := len(infos) - start; got != c.BatchCount || minTS != c.MinTimestamp || maxTS != c.MaxTimestamp {
			return nil, fmt.Errorf("chunk %d (partition %d at %d): %w: payload has %d batches, timestamps [%d, %d]; footer says %d, [%d, %d]",
				i, c.Partition, c.Offset, ErrCorrupt, got, minTS, maxTS, c.BatchCount, c.MinTimestamp, c.MaxTimestamp)
		}
		c.Batches = infos[start:len(infos):len(infos)]
		if version == VersionCompacted {
			if err := checkOffsets(payload, c); err != nil {
				return nil, fmt.Errorf("chunk %d (partition %d at %d): %w", i, c.Partition, c.Offset, err)
			}
		}
	}
	return chunks, nil
}

// checkOffsets checks a compacted chunk's batches (c.Batches filled): base
// offsets ascending without overlap, the first at c.BaseOffset, the last
// ending at c.LastOffset.
func checkOffsets(payload []byte, c *ChunkInfo) error {
	prev := int64(-1)
	for j, b := range c.Batches {
		base, last := BatchOffsets(payload[b.Pos : b.Pos+b.Len])
		switch {
		case last < base:
			return fmt.Errorf("%w: batch %d: negative last offset delta", ErrCorrupt, j)
		case j == 0 && base != c.BaseOffset:
			return fmt.Errorf("%w: first batch at offset %d, footer says %d", ErrCorrupt, base, c.BaseOffset)
		case j > 0 && base <= prev:
			return fmt.Errorf("%w: batch %d at offset %d does not follow offset %d", ErrCorrupt, j, base, prev)
		}
		prev = last
	}
	if prev != c.LastOffset {
		return fmt.Errorf("%w: last batch ends at offset %d, footer says %d", ErrCorrupt, prev, c.LastOffset)
	}
	return nil
}

// BatchOffsets returns the base offset and last offset (base offset + last
// offset delta) stored in a record batch's header. batch must hold at least
// a batch header, as every batch Batches returns does.
func BatchOffsets(batch []byte) (base, last int64) {
	base = int64(be.Uint64(batch[:8]))
	return base, base + int64(int32(be.Uint32(batch[batchLastDeltaOff:])))
}

// Open reads a segment object's footer from a bucket with range GETs
// (size is the object's size, which the metastore records): usually one GET
// of the object's tail, two when the footer is large. The returned chunks
// have Batches nil (batch positions live in the chunks themselves and in
// the metastore); everything else is as Parse returns it.
func Open(ctx context.Context, b objstore.Bucket, key string, size int64) ([]ChunkInfo, error) {
	if size < minObjectLen {
		return nil, fmt.Errorf("open segment %s: size %d: %w: shorter than an empty segment", key, size, ErrCorrupt)
	}
	tailLen := min(size, openTailLen)
	tailOff := size - tailLen
	tail, err := b.GetRange(ctx, key, tailOff, tailLen)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: read tail: %w", key, err)
	}
	if int64(len(tail)) != tailLen {
		return nil, fmt.Errorf("open segment %s: %w: read %d bytes of tail, want %d (object shorter than recorded size %d?)", key, ErrCorrupt, len(tail), tailLen, size)
	}
	footerOff, footerLen, version, err := parseTrailer(tail[len(tail)-trailerLen:], size)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", key, err)
	}
	var footer []byte
	if footerOff >= tailOff {
		footer = tail[footerOff-tailOff : footerOff-tailOff+footerLen]
	} else {
		footer, err = b.GetRange(ctx, key, footerOff, footerLen)
		if err != nil {
			return nil, fmt.Errorf("open segment %s: read footer: %w", key, err)
		}
		if int64(len(footer)) != footerLen {
			return nil, fmt.Errorf("open segment %s: %w: read %d bytes of footer, want %d", key, ErrCorrupt, len(footer), footerLen)
		}
	}
	chunks, err := parseFooter(footer, footerOff, version)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", key, err)
	}
	return chunks, nil
}

// ReadChunk fetches one chunk with a single range GET and decodes it: the
// read path of a reader that knows the chunk's range (from Open or from the
// metastore). The result is newly allocated.
func ReadChunk(ctx context.Context, b objstore.Bucket, key string, offset, length int64) ([]byte, error) {
	chunk, err := b.GetRange(ctx, key, offset, length)
	if err != nil {
		return nil, fmt.Errorf("read segment %s chunk at %d: %w", key, offset, err)
	}
	if int64(len(chunk)) != length {
		return nil, fmt.Errorf("read segment %s chunk at %d: %w: got %d bytes, want %d", key, offset, ErrCorrupt, len(chunk), length)
	}
	payload, err := DecodeChunk(chunk)
	if err != nil {
		return nil, fmt.Errorf("read segment %s chunk at %d: %w", key, offset, err)
	}
	return payload, nil
}

// parseTrailer decodes the trailer of an object of the given size and
// returns the footer's range, checked to sit between header and trailer,
// and the format version.
func parseTrailer(t []byte, size int64) (off, length int64, version uint8, err error) {
	d := decbuf{b: t}
	off64 := d.be64()
	length = int64(d.be32())
	version = d.u8()
	reserved := d.bytes(3)
	magic := d.be32()
	if d.err != nil || d.len() != 0 {
		return 0, 0, 0, fmt.Errorf("segment trailer: %w: %d bytes", ErrCorrupt, len(t))
	}
	if magic != Magic {
		return 0, 0, 0, fmt.Errorf("segment trailer: %w: magic %08x", ErrCorrupt, magic)
	}
	if version != Version && version != VersionCompacted {
		return 0, 0, 0, fmt.Errorf("segment trailer: %w %d", ErrVersion, version)
	}
	if reserved[0]|reserved[1]|reserved[2] != 0 {
		return 0, 0, 0, fmt.Errorf("segment trailer: %w: reserved bytes not zero", ErrCorrupt)
	}
	end := size - trailerLen
	if off64 < headerLen || off64 > uint64(end) || length != end-int64(off64) {
		return 0, 0, 0, fmt.Errorf("segment trailer: %w: footer [%d, +%d) does not end at %d", ErrCorrupt, off64, length, end)
	}
	return int64(off64), length, version, nil
}

// parseFooter decodes a footer of the given format version found at
// footerOff. The chunks it returns have Batches nil.
func parseFooter(f []byte, footerOff int64, version uint8) ([]ChunkInfo, error) {
	elen := uint64(entryLen)
	if version == VersionCompacted {
		elen = entryLenV2
	}
	if len(f) < footerFixedLen {
		return nil, fmt.Errorf("segment footer: %w: %d bytes", ErrCorrupt, len(f))
	}
	body := f[:len(f)-4]
	if got, want := crc32.Checksum(body, castagnoli), be.Uint32(f[len(f)-4:]); got != want {
		return nil, fmt.Errorf("segment footer: %w: crc32c %08x, stored %08x (%w)", ErrChecksum, got, want, ErrCorrupt)
	}
	d := decbuf{b: body}
	n := d.be32()
	if uint64(n)*elen != uint64(d.len()) {
		return nil, fmt.Errorf("segment footer: %w: %d entries in %d bytes", ErrCorrupt, n, d.len())
	}
	chunks := make([]ChunkInfo, n)
	next := int64(headerLen) // where the next chunk must start
	for i := range chunks {
		c := &chunks[i]
		copy(c.TopicID[:], d.bytes(16))
		c.Partition = int32(d.be32())
		off, length := d.be64(), d.be64()
		c.Codec = Codec(d.u8())
		c.RawLength = int64(d.be32())
		count := d.be32()
		c.MinTimestamp = int64(d.be64())
		c.MaxTimestamp = int64(d.be64())
		if version == VersionCompacted {
			c.BaseOffset = int64(d.be64())
			c.LastOffset = int64(d.be64())
		}
		if d.err != nil {
			return nil, fmt.Errorf("segment footer entry %d: %w", i, d.err)
		}
		if c.Partition < 0 {
			return nil, fmt.Errorf("segment footer entry %d: %w: partition %d", i, ErrCorrupt, c.Partition)
		}
		if i > 0 {
			prev := &chunks[i-1]
			order := (partKey{prev.TopicID, prev.Partition}).compare(partKey{c.TopicID, c.Partition})
			switch {
			case version == Version && order >= 0:
				return nil, fmt.Errorf("segment footer entry %d: %w: entries not in ascending (topic, partition) order", i, ErrCorrupt)
			case version == VersionCompacted && (order > 0 || order == 0 && c.BaseOffset <= prev.LastOffset):
				return nil, fmt.Errorf("segment footer entry %d: %w: entries not in ascending (topic, partition, offset) order", i, ErrCorrupt)
			}
		}
		if version == VersionCompacted && (c.BaseOffset < 0 || c.LastOffset < c.BaseOffset) {
			return nil, fmt.Errorf("segment footer entry %d: %w: offsets [%d, %d]", i, ErrCorrupt, c.BaseOffset, c.LastOffset)
		}
		if off != uint64(next) || length < chunkOverhead || length > uint64(footerOff-next) {
			return nil, fmt.Errorf("segment footer entry %d: %w: chunk [%d, +%d) not contiguous within [%d, %d)", i, ErrCorrupt, off, length, next, footerOff)
		}
		if c.Codec != CodecNone && c.Codec != CodecZstd {
			return nil, fmt.Errorf("segment footer entry %d: %w: unknown codec %d", i, ErrCorrupt, c.Codec)
		}
		if c.RawLength == 0 || c.RawLength > MaxChunkRawLength || count == 0 || uint64(count)*batchHeaderLen > uint64(c.RawLength) {
			return nil, fmt.Errorf("segment footer entry %d: %w: %d batches in %d raw bytes", i, ErrCorrupt, count, c.RawLength)
		}
		if c.Codec == CodecNone && uint64(c.RawLength)+chunkOverhead != length {
			return nil, fmt.Errorf("segment footer entry %d: %w: uncompressed chunk of %d bytes holds %d raw bytes", i, ErrCorrupt, length, c.RawLength)
		}
		c.Offset, c.Length = int64(off), int64(length)
		next += c.Length
		c.BatchCount = int(count)
	}
	if next != footerOff {
		return nil, fmt.Errorf("segment footer: %w: chunks end at %d, footer starts at %d", ErrCorrupt, next, footerOff)
	}
	return chunks, nil
}
