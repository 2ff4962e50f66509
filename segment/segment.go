// Package segment defines silt's segment object: one object in the bucket
// holding Kafka record batches of many partitions, grouped into one chunk per
// partition, with a footer index so a reader can fetch a single partition's
// chunk with one range GET. The byte layout is specified in FORMAT.md; this
// package is its only implementation.
//
// Record batches are stored exactly as the producer sent them (base offset 0,
// client compression kept). Offsets are assigned by the metastore at commit
// and patched into the batch header on the way out (see PatchBaseOffset).
//
// Compacted objects (format version 2, WriteCompacted) hold old data that
// the storage janitor rewrote out of many segments: the same batches, in
// offset order, now carrying their real base offsets, in chunks of one
// partition each.
package segment

// TopicID is a Kafka topic id (a UUID).
type TopicID [16]byte

// String formats the id as a UUID (8-4-4-4-12 hex digits).
func (t TopicID) String() string {
	const hex = "0123456789abcdef"
	buf := make([]byte, 0, 36)
	for i, b := range t {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf = append(buf, '-')
		}
		buf = append(buf, hex[b>>4], hex[b&0x0f])
	}
	return string(buf)
}

// Codec is how a chunk's payload is encoded in the object.
type Codec uint8

const (
	// CodecNone stores the concatenated batches as they are: used when the
	// client already compressed them or zstd would not save space.
	CodecNone Codec = 0
	// CodecZstd stores the concatenated batches compressed with zstd.
	CodecZstd Codec = 1
)

// ChunkInfo locates one partition's chunk inside a segment object. It is
// what the footer records per chunk, plus where each batch sits inside the
// decoded chunk (which the writer knows and the metastore stores per batch).
type ChunkInfo struct {
	TopicID   TopicID
	Partition int32

	// Offset and Length are the chunk's byte range in the object (chunk
	// header, payload and checksum): exactly what one range GET must read.
	Offset int64
	Length int64

	Codec Codec
	// RawLength is the length of the decoded payload (the concatenated
	// batches).
	RawLength int64

	// MinTimestamp is the least first-timestamp and MaxTimestamp the
	// greatest max-timestamp of the chunk's batch headers (ms).
	MinTimestamp int64
	MaxTimestamp int64

	// BaseOffset and LastOffset are, in a compacted object (version 2),
	// the base offset of the chunk's first batch and the last offset of
	// its last batch. Zero in version 1, whose batches have no offsets yet.
	BaseOffset int64
	LastOffset int64

	// BatchCount is the number of record batches in the chunk (always
	// set; equal to len(Batches) when Batches is filled).
	BatchCount int

	// Batches lists the chunk's batches in the order they were appended.
	// Writer.Finish and Parse fill it; Open leaves it nil (the footer
	// holds only the count).
	Batches []BatchInfo
}

// BatchInfo locates one record batch inside a decoded chunk.
type BatchInfo struct {
	// Pos and Len are the batch's byte range in the decoded chunk payload.
	Pos int32
	Len int32
}
