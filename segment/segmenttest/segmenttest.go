// Package segmenttest builds valid Kafka v2 record batches for tests of
// silt's segment format and of anything that stores or serves batches.
// Output is deterministic: the same options give the same bytes.
package segmenttest

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BaseTimestamp is the first record's timestamp (ms) when Options leave
// FirstTimestamp zero.
const BaseTimestamp int64 = 1_700_000_000_000

// Options describe one record batch.
type Options struct {
	// Records is the number of records; at least 1.
	Records int
	// ValueSize is each record value's length; 0 means 64.
	ValueSize int
	// Random fills values with pseudo-random bytes (incompressible)
	// instead of repetitive text (compressible).
	Random bool
	// JSON fills values with JSON-like documents whose field names repeat
	// and whose numbers and ids vary: compressible about as well as
	// typical application records (zstd ~3-5x), unlike the repetitive
	// default text.
	JSON bool
	// Compressed makes the batch client-compressed with zstd (attributes
	// codec 4), as a producer with compression enabled sends it.
	Compressed bool
	// FirstTimestamp is the first record's timestamp; 0 means
	// BaseTimestamp. Record i has FirstTimestamp + i.
	FirstTimestamp int64
	// Seed varies the record contents (keys and values).
	Seed uint64
	// ProducerID and ProducerEpoch and BaseSequence are -1, -1, -1 unless
	// Idempotent is set, then they are taken as given.
	Idempotent    bool
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
}

// Batch returns a valid v2 record batch of n records with 64-byte
// compressible values, client-compressed with zstd when compressed is true.
func Batch(records int, compressed bool) []byte {
	return New(Options{Records: records, Compressed: compressed})
}

var events = []string{"page_view", "click", "add_to_cart", "checkout", "login", "logout", "search"}

// zstdEnc compresses client batches; created once, EncodeAll is safe for
// concurrent use.
var zstdEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))

// New returns a valid v2 record batch (base offset 0, correct length and
// CRC-32C) described by o. It panics on Records < 1.
func New(o Options) []byte {
	if o.Records < 1 {
		panic(fmt.Sprintf("segmenttest: %d records", o.Records))
	}
	if o.ValueSize == 0 {
		o.ValueSize = 64
	}
	if o.FirstTimestamp == 0 {
		o.FirstTimestamp = BaseTimestamp
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))

	var records []byte
	for i := range o.Records {
		value := make([]byte, o.ValueSize)
		switch {
		case o.Random:
			for j := range value {
				value[j] = byte(rng.Uint32())
			}
		case o.JSON:
			value = value[:0]
			for len(value) < o.ValueSize {
				value = fmt.Appendf(value, `{"user_id":%d,"session":"%016x","event":"%s","amount":%d.%02d,"ts":%d},`,
					rng.IntN(1_000_000), rng.Uint64(), events[rng.IntN(len(events))], rng.IntN(10000), rng.IntN(100), o.FirstTimestamp+int64(rng.IntN(100000)))
			}
			value = value[:o.ValueSize]
		default:
			const text = "the quick brown fox jumps over the lazy dog; "
			for j := range value {
				value[j] = text[(j+int(o.Seed))%len(text)]
			}
		}
		r := kmsg.Record{
			TimestampDelta64: int64(i),
			OffsetDelta:      int32(i),
			Key:              fmt.Appendf(nil, "key-%d-%d", o.Seed, i),
			Value:            value,
			Headers:          []kmsg.Header{{Key: "h", Value: []byte{byte(i)}}},
		}
		body := r.AppendTo(nil) // with Length 0, whose varint is one byte
		r.Length = int32(len(body) - 1)
		records = r.AppendTo(records)
	}

	b := kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(o.Records - 1),
		FirstTimestamp:       o.FirstTimestamp,
		MaxTimestamp:         o.FirstTimestamp + int64(o.Records-1),
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(o.Records),
		Records:              records,
	}
	if o.Idempotent {
		b.ProducerID, b.ProducerEpoch, b.FirstSequence = o.ProducerID, o.ProducerEpoch, o.BaseSequence
	}
	if o.Compressed {
		b.Attributes = 4 // zstd
		b.Records = zstdEnc.EncodeAll(records, nil)
	}
	b.Length = int32(49 + len(b.Records))
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}
