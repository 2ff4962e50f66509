package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultMaxDecompressedBytes bounds what one batch may decompress to
// when ValidateOptions leaves it unset: the agent's default request
// frame bound (socket.request.max.bytes).
const DefaultMaxDecompressedBytes = 100 << 20

// errDecompressedTooLarge is a batch whose records decompress past the
// bound.
var errDecompressedTooLarge = errors.New("records decompress past the bound")

// decompress returns the records of a batch compressed with codec,
// refusing to make more than limit bytes of them. Validation decompresses
// only to check the records (the batch is stored as sent), so what
// bounds it is the memory a request may cost: kgo's default decompressor
// bounds a batch at 2 GiB and, for gzip and lz4, grows its buffer to
// whatever the stream yields — a 0.9 MB gzip batch of zeros, within the
// default max.message.bytes, cost 2.9 GiB before validation failed, and a
// few bytes of snappy could claim 2 GiB. Here gzip, lz4 and zstd stream
// through a limited reader, and snappy's declared lengths are checked
// before kgo decodes it (its decoder allocates what they declare).
func decompress(src []byte, codec kgo.CompressionCodecType, limit int) ([]byte, error) {
	switch codec {
	case kgo.CodecNone:
		return src, nil
	case kgo.CodecGzip:
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		defer gzipReaders.Put(zr)
		if err := zr.Reset(bytes.NewReader(src)); err != nil {
			return nil, err
		}
		return readBounded(zr, len(src), limit)
	case kgo.CodecLz4:
		lr, _ := lz4Readers.Get().(*lz4.Reader)
		if lr == nil {
			lr = lz4.NewReader(nil)
		}
		defer lz4Readers.Put(lr)
		lr.Reset(bytes.NewReader(src))
		return readBounded(lr, len(src), limit)
	case kgo.CodecZstd:
		zd, err := zstdDecoder(limit)
		if err != nil {
			return nil, err
		}
		out, err := zd.DecodeAll(src, nil)
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			return nil, errDecompressedTooLarge
		}
		return out, err
	case kgo.CodecSnappy:
		n, err := snappyDecodedLen(src)
		if err != nil {
			return nil, err
		}
		if n > int64(limit) {
			return nil, errDecompressedTooLarge
		}
		return decompressor().Decompress(src, codec)
	}
	return nil, errors.New("unknown compression codec")
}

// readBounded reads r to its end, failing once it yields more than
// limit bytes. The buffer doubles from a guess of four times the input
// but never past limit+1 bytes, so refusing costs about twice the limit.
func readBounded(r io.Reader, guess, limit int) ([]byte, error) {
	buf := make([]byte, 0, min(max(4*guess, 512), limit+1))
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return nil, errDecompressedTooLarge
			}
			buf = slices.Grow(buf, min(cap(buf), limit+1-len(buf)))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case len(buf) > limit:
			return nil, errDecompressedTooLarge
		case errors.Is(err, io.EOF):
			return buf, nil
		case err != nil:
			return nil, err
		}
	}
}

var (
	gzipReaders sync.Pool // *gzip.Reader
	lz4Readers  sync.Pool // *lz4.Reader
	// zstdDecoders holds one decoder per bound (in an agent, one): a
	// zstd.Decoder's DecodeAll is safe for concurrent use, and its bounds
	// are options fixed when it is made.
	zstdDecoders sync.Map // int -> *zstd.Decoder
)

// zstdDecoder returns the decoder bounding both a frame's output and
// the window it may ask for at limit.
func zstdDecoder(limit int) (*zstd.Decoder, error) {
	if d, ok := zstdDecoders.Load(limit); ok {
		return d.(*zstd.Decoder), nil
	}
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(uint64(limit)),
		zstd.WithDecoderMaxWindow(uint64(min(max(limit, zstd.MinWindowSize), zstd.MaxWindowSize))),
	)
	if err != nil {
		return nil, err
	}
	if prev, loaded := zstdDecoders.LoadOrStore(limit, d); loaded {
		d.Close()
		return prev.(*zstd.Decoder), nil
	}
	return d, nil
}

// xerialMagic starts snappy in the xerial framing the Java client writes:
// the magic, two versions, then chunks each prefixed by its length.
var xerialMagic = []byte{130, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// snappyDecodedLen sums the decoded lengths snappy data declares, raw or
// in xerial chunks, without decoding it.
func snappyDecodedLen(src []byte) (int64, error) {
	if len(src) <= 16 || !bytes.HasPrefix(src, xerialMagic) {
		n, err := s2.DecodedLen(src)
		return int64(n), err
	}
	var total int64
	for rest := src[16:]; len(rest) > 0; {
		if len(rest) < 4 {
			return 0, errors.New("malformed xerial framing")
		}
		size := int64(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if size > int64(len(rest)) {
			return 0, errors.New("malformed xerial framing")
		}
		n, err := s2.DecodedLen(rest[:size])
		if err != nil {
			return 0, err
		}
		total += int64(n)
		rest = rest[size:]
	}
	return total, nil
}
