package segment

import (
	"fmt"
)

// CompactedChunk is one chunk of a compacted object, as WriteCompacted takes
// it: one partition's record batches, whole and in ascending offset order,
// each carrying its real base offset.
type CompactedChunk struct {
	TopicID   TopicID
	Partition int32
	// Payload is the concatenated batches, exactly as a reader of the
	// chunk will get them back.
	Payload []byte
}

// WriteCompacted encodes a compacted object (format version 2, see
// FORMAT.md) holding the given chunks, which must be in ascending (topic
// id, partition, offset) order with the batches of one partition not
// overlapping. Each chunk is stored zstd-compressed when that saves at least
// 1/32 and not every batch is already compressed by its client, as the
// segment writer decides. The returned chunks are in object order, with
// Batches, offsets and timestamps filled.
func WriteCompacted(in []CompactedChunk) (obj []byte, chunks []ChunkInfo, err error) {
	enc, _ := codecs()
	size := minObjectLen + len(in)*entryLenV2
	stored := make([][]byte, len(in))
	codecOf := make([]Codec, len(in))
	chunks = make([]ChunkInfo, len(in))
	for i, c := range in {
		ci := &chunks[i]
		ci.TopicID, ci.Partition = c.TopicID, c.Partition
		if len(c.Payload) > MaxChunkRawLength {
			return nil, nil, fmt.Errorf("compacted chunk %d (partition %d): %w: %d bytes over %d", i, c.Partition, ErrTooLarge, len(c.Payload), MaxChunkRawLength)
		}
		var minTS, maxTS int64
		ci.Batches, minTS, maxTS, err = walkBatches(c.Payload, make([]BatchInfo, 0, 16))
		if err != nil {
			return nil, nil, fmt.Errorf("compacted chunk %d (partition %d): %w", i, c.Partition, err)
		}
		ci.MinTimestamp, ci.MaxTimestamp = minTS, maxTS
		ci.BatchCount = len(ci.Batches)
		ci.RawLength = int64(len(c.Payload))
		compressed := true
		for j, b := range ci.Batches {
			batch := c.Payload[b.Pos : b.Pos+b.Len]
			if err := checkBatch(batch); err != nil {
				return nil, nil, fmt.Errorf("compacted chunk %d (partition %d): %w", i, c.Partition, err)
			}
			base, last := BatchOffsets(batch)
			if j == 0 {
				ci.BaseOffset = base
			}
			ci.LastOffset = last
			if be.Uint16(batch[batchAttrOffset:])&batchCompressionMsk == 0 {
				compressed = false
			}
		}
		if err := checkOffsets(c.Payload, ci); err != nil {
			return nil, nil, fmt.Errorf("compacted chunk %d (partition %d): %w", i, c.Partition, err)
		}
		if i > 0 {
			prev := &chunks[i-1]
			order := (partKey{prev.TopicID, prev.Partition}).compare(partKey{ci.TopicID, ci.Partition})
			if order > 0 || order == 0 && ci.BaseOffset <= prev.LastOffset {
				return nil, nil, fmt.Errorf("compacted chunk %d (partition %d at offset %d): %w: chunks not in ascending (topic, partition, offset) order",
					i, c.Partition, ci.BaseOffset, ErrInvalidBatch)
			}
		}
		stored[i], codecOf[i] = c.Payload, CodecNone
		if !compressed {
			z := enc.EncodeAll(c.Payload, nil)
			if len(z) < len(c.Payload)-len(c.Payload)/32 {
				stored[i], codecOf[i] = z, CodecZstd
			}
		}
		size += chunkOverhead + len(stored[i])
	}
	obj = make([]byte, 0, size)
	obj = appendHeader(obj, VersionCompacted)
	for i := range chunks {
		start := len(obj)
		obj = appendChunk(obj, codecOf[i], len(in[i].Payload), stored[i])
		chunks[i].Offset, chunks[i].Length, chunks[i].Codec = int64(start), int64(len(obj)-start), codecOf[i]
	}
	return appendFooter(obj, chunks, VersionCompacted), chunks, nil
}
