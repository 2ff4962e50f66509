package segment

// THIS FILE IS A PLACEHOLDER holding the agreed signatures. The segment
// helper replaces it with writer.go / reader.go and deletes it.

import (
	"context"
	"errors"

	"github.com/siltdata/silt/segment/objstore"
)

var errUnimplemented = errors.New("segment: unimplemented")

// Writer accumulates record batches of many partitions into one segment
// object. It is not safe for concurrent use.
type Writer struct{}

// NewWriter returns an empty Writer.
func NewWriter() *Writer { return &Writer{} }

// Append adds one raw Kafka record batch (already validated by the caller)
// of the given partition. Batches of one partition keep their append order;
// partitions may interleave. The batch bytes are copied.
func (w *Writer) Append(topic TopicID, partition int32, batch []byte) { panic(errUnimplemented) }

// Size is the number of raw batch bytes appended since the last Reset.
func (w *Writer) Size() int { panic(errUnimplemented) }

// Finish encodes the object. chunks lists every chunk with its byte range in
// obj and its batches' positions inside the decoded chunk, in the order the
// chunks sit in the object.
func (w *Writer) Finish() (obj []byte, chunks []ChunkInfo, err error) { panic(errUnimplemented) }

// Reset empties the writer for reuse.
func (w *Writer) Reset() { panic(errUnimplemented) }

// DecodeChunk takes a chunk exactly as read by one range GET of
// [ChunkInfo.Offset, Offset+Length), verifies its checksum and returns the
// decoded payload: the concatenated record batches.
func DecodeChunk(chunk []byte) ([]byte, error) { panic(errUnimplemented) }

// Parse decodes a whole segment object held in memory and returns its
// chunks as the footer lists them (Batches filled by walking the decoded
// payloads). Every corrupt input returns an error; Parse never panics.
func Parse(obj []byte) ([]ChunkInfo, error) { panic(errUnimplemented) }

// Open reads a segment object's footer from a bucket with range GETs
// (size is the object's size, which the metastore records).
func Open(ctx context.Context, b objstore.Bucket, key string, size int64) ([]ChunkInfo, error) {
	panic(errUnimplemented)
}

// PatchBaseOffset writes base into a record batch's base offset field
// (bytes 0-7, outside the batch CRC).
func PatchBaseOffset(batch []byte, base int64) { panic(errUnimplemented) }
