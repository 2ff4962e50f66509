package segment

import (
	"bytes"
	"cmp"
	"fmt"
	"hash/crc32"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// partKey identifies one partition's chunk.
type partKey struct {
	topic     TopicID
	partition int32
}

func (k partKey) compare(o partKey) int {
	if c := bytes.Compare(k.topic[:], o.topic[:]); c != 0 {
		return c
	}
	return cmp.Compare(k.partition, o.partition)
}

// partBuf accumulates one partition's batches. Its slices are kept across
// Reset so a reused Writer stops allocating once it has seen its working set.
type partBuf struct {
	key     partKey
	raw     []byte
	batches []BatchInfo
	minTS   int64
	maxTS   int64
	// compressed stays true while every batch appended is compressed by
	// the client; such a chunk is stored as-is without trying zstd.
	compressed bool
	// zstd is raw compressed by Finish, when tried; empty otherwise.
	zstd []byte
}

// codec is how Finish stores the chunk: zstd only when it was tried and
// shrank the payload by at least 1/32 (decoding costs every reader CPU
// time; a smaller saving is not worth it).
func (p *partBuf) codec() Codec {
	if len(p.zstd) > 0 && len(p.zstd) < len(p.raw)-len(p.raw)/32 {
		return CodecZstd
	}
	return CodecNone
}

// probeLen is the sample compress tries on a larger chunk before the
// whole: a chunk whose first probeLen bytes zstd does not shrink by 1/32
// is stored as is. Incompressible payloads (random or encrypted values,
// media) otherwise cost a full zstd pass and an output buffer of their
// size for nothing, about a tenth of the agent's CPU at saturation. A
// chunk that starts incompressible and compresses later is stored
// uncompressed: a cost in storage, not in correctness.
const probeLen = 64 << 10

// encode sets p.zstd to p.raw compressed, or leaves it empty when a
// sample shows compressing would not pay (see probeLen).
func (p *partBuf) encode(enc *zstd.Encoder) {
	if len(p.raw) > 2*probeLen {
		p.zstd = enc.EncodeAll(p.raw[:probeLen], p.zstd[:0])
		if len(p.zstd) >= probeLen-probeLen/32 {
			p.zstd = p.zstd[:0]
			return
		}
	}
	p.zstd = enc.EncodeAll(p.raw, p.zstd[:0])
}

// stored is the chunk payload as Finish writes it.
func (p *partBuf) stored() []byte {
	if p.codec() == CodecZstd {
		return p.zstd
	}
	return p.raw
}

// Writer accumulates record batches of many partitions into one segment
// object. It is not safe for concurrent use. A Writer is meant to be reused
// with Reset: it keeps its buffers, and Finish's results never alias them.
type Writer struct {
	index map[partKey]int // partKey -> position in parts
	parts []partBuf       // parts[:n] are in use; the rest are kept buffers
	n     int
	order []int // scratch for Finish: indexes of parts sorted by key
	todo  []int // scratch for compress: indexes of parts to try zstd on
	size  int
	err   error // first invalid Append, reported by Finish
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	return &Writer{index: make(map[partKey]int)}
}

// Append adds one raw Kafka record batch (already validated by the caller)
// of the given partition. Batches of one partition keep their append order;
// partitions may interleave. The batch bytes are copied.
//
// A batch that is not a v2 record batch whose length field matches
// len(batch), or that would grow its chunk past MaxChunkRawLength, is
// dropped and makes Finish fail.
func (w *Writer) Append(topic TopicID, partition int32, batch []byte) {
	if w.err != nil {
		return
	}
	if err := checkBatch(batch); err != nil {
		w.err = fmt.Errorf("append to topic %s partition %d: %w", topic, partition, err)
		return
	}
	if w.index == nil {
		w.index = make(map[partKey]int)
	}
	key := partKey{topic, partition}
	i, ok := w.index[key]
	if !ok {
		i = w.n
		if i == len(w.parts) {
			w.parts = append(w.parts, partBuf{})
		}
		p := &w.parts[i]
		p.key = key
		p.raw = p.raw[:0]
		p.batches = p.batches[:0]
		p.zstd = p.zstd[:0]
		p.compressed = true
		w.index[key] = i
		w.n++
	}
	p := &w.parts[i]
	if len(p.raw)+len(batch) > MaxChunkRawLength {
		w.err = fmt.Errorf("append to topic %s partition %d: %w: over %d bytes", topic, partition, ErrTooLarge, MaxChunkRawLength)
		return
	}
	first := int64(be.Uint64(batch[batchFirstTSOffset:]))
	maxTS := int64(be.Uint64(batch[batchMaxTSOffset:]))
	if len(p.batches) == 0 {
		p.minTS, p.maxTS = first, maxTS
	} else {
		p.minTS, p.maxTS = min(p.minTS, first), max(p.maxTS, maxTS)
	}
	if be.Uint16(batch[batchAttrOffset:])&batchCompressionMsk == 0 {
		p.compressed = false
	}
	p.batches = append(p.batches, BatchInfo{Pos: int32(len(p.raw)), Len: int32(len(batch))})
	p.raw = append(p.raw, batch...)
	w.size += len(batch)
}

// Payloads returns each chunk's payload, the concatenated record batches
// as DecodeChunk would return them, in the order of the chunks Finish
// returned. They stay valid until the next Append or Reset, and must not
// be modified while the Writer is in use. Their capacity is that of the
// Writer's buffers: a caller keeping one long may want a copy without the
// spare room.
func (w *Writer) Payloads() [][]byte {
	out := make([][]byte, len(w.order))
	for i, j := range w.order {
		out[i] = w.parts[j].raw
	}
	return out
}

// Size is the number of raw batch bytes appended since the last Reset.
func (w *Writer) Size() int { return w.size }

// Reset empties the writer for reuse.
func (w *Writer) Reset() {
	clear(w.index)
	w.n = 0
	w.size = 0
	w.err = nil
}

// Finish encodes the object. chunks lists every chunk with its byte range in
// obj and its batches' positions inside the decoded chunk, in the order the
// chunks sit in the object: ascending (topic id, partition). obj and chunks
// are newly allocated and stay valid after Reset. Finish does not reset the
// Writer.
func (w *Writer) Finish() (obj []byte, chunks []ChunkInfo, err error) {
	if w.err != nil {
		return nil, nil, w.err
	}
	w.compress()

	w.order = w.order[:0]
	size := minObjectLen + w.n*entryLen
	nbatches := 0
	for i := range w.n {
		w.order = append(w.order, i)
		p := &w.parts[i]
		size += chunkOverhead + len(p.stored())
		nbatches += len(p.batches)
	}
	slices.SortFunc(w.order, func(a, b int) int { return w.parts[a].key.compare(w.parts[b].key) })

	obj = make([]byte, 0, size)
	obj = appendHeader(obj, Version)

	chunks = make([]ChunkInfo, 0, w.n)
	infos := make([]BatchInfo, 0, nbatches) // one backing array for every chunk's Batches
	for _, i := range w.order {
		p := &w.parts[i]
		start := len(obj)
		codec := p.codec()
		obj = appendChunk(obj, codec, len(p.raw), p.stored())

		infos = append(infos, p.batches...)
		chunks = append(chunks, ChunkInfo{
			TopicID:      p.key.topic,
			Partition:    p.key.partition,
			Offset:       int64(start),
			Length:       int64(len(obj) - start),
			Codec:        codec,
			RawLength:    int64(len(p.raw)),
			MinTimestamp: p.minTS,
			MaxTimestamp: p.maxTS,
			BatchCount:   len(p.batches),
			Batches:      infos[len(infos)-len(p.batches) : len(infos) : len(infos)],
		})
	}

	return appendFooter(obj, chunks, Version), chunks, nil
}

// appendHeader appends an object header of the given format version.
func appendHeader(obj []byte, version uint8) []byte {
	obj = be.AppendUint32(obj, Magic)
	return append(obj, version, 0, 0, 0)
}

// appendChunk appends one chunk: its header, the stored payload (raw
// length rawLen once decoded) and the CRC over both.
func appendChunk(obj []byte, codec Codec, rawLen int, stored []byte) []byte {
	start := len(obj)
	obj = append(obj, byte(codec))
	obj = be.AppendUint32(obj, uint32(rawLen))
	obj = be.AppendUint32(obj, uint32(len(stored)))
	obj = append(obj, stored...)
	return be.AppendUint32(obj, crc32.Checksum(obj[start:], castagnoli))
}

// appendFooter appends the footer listing chunks (in the format of the
// given version) and the trailer, ending the object.
func appendFooter(obj []byte, chunks []ChunkInfo, version uint8) []byte {
	footerOff := len(obj)
	obj = be.AppendUint32(obj, uint32(len(chunks)))
	for i := range chunks {
		obj = appendEntry(obj, &chunks[i])
		if version == VersionCompacted {
			obj = be.AppendUint64(obj, uint64(chunks[i].BaseOffset))
			obj = be.AppendUint64(obj, uint64(chunks[i].LastOffset))
		}
	}
	obj = be.AppendUint32(obj, crc32.Checksum(obj[footerOff:], castagnoli))

	footerLen := len(obj) - footerOff
	obj = be.AppendUint64(obj, uint64(footerOff))
	obj = be.AppendUint32(obj, uint32(footerLen))
	obj = append(obj, version, 0, 0, 0)
	return be.AppendUint32(obj, Magic)
}

// parallelMin is the raw size below which Finish compresses on its own
// goroutine: for small objects starting workers costs more than it saves.
const parallelMin = 512 << 10

// compress zstd-encodes every chunk that is not all client-compressed into
// its part's zstd buffer. Chunks are independent, so they are encoded in
// parallel on up to GOMAXPROCS goroutines, owned by compress and finished
// before it returns: Finish's latency is what holds up produce acks.
func (w *Writer) compress() {
	enc, _ := codecs()
	todo := w.todo[:0]
	total := 0
	for i := range w.n {
		p := &w.parts[i]
		p.zstd = p.zstd[:0]
		if !p.compressed {
			todo = append(todo, i)
			total += len(p.raw)
		}
	}
	w.todo = todo
	workers := min(runtime.GOMAXPROCS(0), len(todo))
	if total < parallelMin || workers < 2 {
		for _, i := range todo {
			w.parts[i].encode(enc)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				j := int(next.Add(1)) - 1
				if j >= len(todo) {
					return
				}
				w.parts[todo[j]].encode(enc)
			}
		})
	}
	wg.Wait()
}

func appendEntry(dst []byte, c *ChunkInfo) []byte {
	dst = append(dst, c.TopicID[:]...)
	dst = be.AppendUint32(dst, uint32(c.Partition))
	dst = be.AppendUint64(dst, uint64(c.Offset))
	dst = be.AppendUint64(dst, uint64(c.Length))
	dst = append(dst, byte(c.Codec))
	dst = be.AppendUint32(dst, uint32(c.RawLength))
	dst = be.AppendUint32(dst, uint32(c.BatchCount))
	dst = be.AppendUint64(dst, uint64(c.MinTimestamp))
	dst = be.AppendUint64(dst, uint64(c.MaxTimestamp))
	return dst
}

// checkBatch checks what the format relies on: a v2 batch header whose
// length field covers exactly the given bytes.
func checkBatch(b []byte) error {
	if len(b) < batchHeaderLen {
		return fmt.Errorf("%w: %d bytes, shorter than a v2 batch header", ErrInvalidBatch, len(b))
	}
	if b[batchMagicOffset] != 2 {
		return fmt.Errorf("%w: magic %d, want 2", ErrInvalidBatch, b[batchMagicOffset])
	}
	if n := int64(int32(be.Uint32(b[batchLengthOffset:]))) + 12; n != int64(len(b)) {
		return fmt.Errorf("%w: length field says %d bytes, got %d", ErrInvalidBatch, n, len(b))
	}
	return nil
}
