package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record batch (magic 2) header layout: the byte offsets validation reads
// and rewrites.
const (
	offLength      = 8
	offMagic       = 16
	offCRC         = 17
	offAttributes  = 21 // the CRC covers from here to the end
	offFirstTS     = 27
	offMaxTS       = 35
	batchHeaderLen = 61

	attrCompression   = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// decompressor is shared: kgo's default decompressor pools its decoders
// and is safe for concurrent use.
var decompressor = sync.OnceValue(func() kgo.Decompressor { return kgo.DefaultDecompressor() })

// ValidateOptions are the topic's rules for the batches of one partition.
type ValidateOptions struct {
	// MaxMessageBytes is the topic's max.message.bytes: the bound on one
	// whole record batch.
	MaxMessageBytes int32
	// LogAppendTime stamps every batch with Now
	// (message.timestamp.type=LogAppendTime).
	LogAppendTime bool
	// Now is the broker time in milliseconds.
	Now int64
	// KeysRequired rejects records without a key (compacted topics).
	KeysRequired bool
	// AllowZstd is false for produce requests older than v7, which Kafka
	// does not let carry zstd batches.
	AllowZstd bool
	// MaxDecompressedBytes bounds what one compressed batch's records may
	// decompress to (0: DefaultMaxDecompressedBytes). The agent passes its
	// request frame bound: records that could not be sent uncompressed in
	// one request are refused (MESSAGE_TOO_LARGE) rather than held in
	// memory — a deliberate difference, Kafka's broker streams them.
	MaxDecompressedBytes int32
}

// ValidationError is a batch rejected with a Kafka error code; errors.As
// finds the *kerr.Error.
type ValidationError struct {
	Code    *kerr.Error
	Message string
}

func (e *ValidationError) Error() string { return e.Code.Message + ": " + e.Message }
func (e *ValidationError) Unwrap() error { return e.Code }

func invalid(code *kerr.Error, format string, args ...any) error {
	return &ValidationError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Validate checks the records of one partition of a produce request, as
// Kafka's broker does, and splits them into one Item per record batch
// (TopicPartition left for the caller). It may rewrite batches in place:
// timestamps and CRC for LogAppendTime topics, or a max timestamp that
// disagrees with the records.
func Validate(records []byte, o ValidateOptions) ([]Item, error) {
	if len(records) == 0 {
		return nil, invalid(kerr.InvalidRecord, "a produce request must hold at least one record batch per partition")
	}
	var items []Item
	for rest := records; len(rest) > 0; {
		// Bytes that cannot hold a whole batch: Kafka's batch iterator stops
		// there, so when no batch came before, the request holds none and
		// Kafka answers INVALID_RECORD ("exactly one record batch"); later
		// ones are corrupt input.
		incomplete := kerr.CorruptMessage
		if len(items) == 0 {
			incomplete = kerr.InvalidRecord
		}
		if len(rest) <= offMagic {
			return nil, invalid(incomplete, "%d bytes are not a whole record batch", len(rest))
		}
		switch magic := rest[offMagic]; {
		case magic < 2:
			return nil, invalid(kerr.InvalidRecord, "record batch magic %d: produce v3+ only carries magic 2", magic)
		case magic > 2:
			return nil, invalid(kerr.CorruptMessage, "invalid record batch magic %d", magic)
		}
		size := int64(int32(binary.BigEndian.Uint32(rest[offLength:]))) + 12
		if size < batchHeaderLen {
			return nil, invalid(kerr.CorruptMessage, "record batch length %d is shorter than a batch header", size)
		}
		if size > int64(len(rest)) {
			return nil, invalid(incomplete, "record batch length %d does not fit the %d bytes sent", size, len(rest))
		}
		batch := rest[:size]
		rest = rest[size:]
		if size > int64(o.MaxMessageBytes) {
			return nil, invalid(kerr.MessageTooLarge, "record batch of %d bytes is larger than max.message.bytes %d", size, o.MaxMessageBytes)
		}
		it, err := validateBatch(batch, o)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, nil
}

func validateBatch(batch []byte, o ValidateOptions) (Item, error) {
	var b kmsg.RecordBatch
	if err := b.ReadFrom(batch); err != nil {
		return Item{}, invalid(kerr.CorruptMessage, "record batch header: %v", err)
	}
	if uint32(b.CRC) != crc32.Checksum(batch[offAttributes:], crc32c) {
		return Item{}, invalid(kerr.CorruptMessage, "record batch CRC mismatch")
	}
	if b.FirstOffset != 0 {
		return Item{}, invalid(kerr.InvalidRecord, "record batch base offset %d, must be 0", b.FirstOffset)
	}
	if b.NumRecords <= 0 {
		return Item{}, invalid(kerr.InvalidRecord, "record batch holds %d records", b.NumRecords)
	}
	if b.LastOffsetDelta != b.NumRecords-1 {
		return Item{}, invalid(kerr.InvalidRecord, "record batch last offset delta %d for %d records", b.LastOffsetDelta, b.NumRecords)
	}
	attrs := uint16(b.Attributes)
	if attrs&attrControl != 0 {
		return Item{}, invalid(kerr.InvalidRecord, "clients may not write control batches")
	}
	transactional := attrs&attrTransactional != 0
	if transactional && b.ProducerID < 0 {
		return Item{}, invalid(kerr.InvalidRecord, "transactional record batch without a producer id")
	}
	codec := kgo.CompressionCodecType(attrs & attrCompression)
	switch {
	case codec > kgo.CodecZstd:
		return Item{}, invalid(kerr.CorruptMessage, "unknown compression codec %d", codec)
	case codec == kgo.CodecZstd && !o.AllowZstd:
		return Item{}, invalid(kerr.UnsupportedCompressionType, "zstd needs produce v7+")
	}
	if b.ProducerID >= 0 && b.FirstSequence < 0 {
		return Item{}, invalid(kerr.InvalidRecord, "idempotent batch with sequence %d", b.FirstSequence)
	}

	raw := b.Records
	if codec != kgo.CodecNone {
		limit := int(o.MaxDecompressedBytes)
		if limit <= 0 {
			limit = DefaultMaxDecompressedBytes
		}
		var err error
		switch raw, err = decompress(b.Records, codec, limit); {
		case errors.Is(err, errDecompressedTooLarge):
			return Item{}, invalid(kerr.MessageTooLarge, "record batch's records decompress to more than %d bytes", limit)
		case err != nil:
			return Item{}, invalid(kerr.CorruptMessage, "decompress records: %v", err)
		}
	}
	maxDelta, err := checkRecords(raw, b.NumRecords, o.KeysRequired)
	if err != nil {
		return Item{}, err
	}

	maxTS := b.FirstTimestamp + maxDelta
	rewrite := false
	switch {
	case o.LogAppendTime:
		maxTS = o.Now
		binary.BigEndian.PutUint16(batch[offAttributes:], attrs|attrLogAppendTime)
		binary.BigEndian.PutUint64(batch[offFirstTS:], uint64(o.Now))
		rewrite = true
	case attrs&attrLogAppendTime != 0:
		// A CreateTime topic keeps the producer's timestamps, as Kafka
		// rewrites the batch's timestamp type.
		binary.BigEndian.PutUint16(batch[offAttributes:], attrs&^attrLogAppendTime)
		rewrite = true
	}
	if maxTS != b.MaxTimestamp {
		rewrite = true
	}
	if rewrite {
		binary.BigEndian.PutUint64(batch[offMaxTS:], uint64(maxTS))
		binary.BigEndian.PutUint32(batch[offCRC:], crc32.Checksum(batch[offAttributes:], crc32c))
	}
	return Item{
		Batch:         batch,
		Records:       b.NumRecords,
		MaxTimestamp:  maxTS,
		ProducerID:    b.ProducerID,
		ProducerEpoch: b.ProducerEpoch,
		BaseSequence:  b.FirstSequence,
		Transactional: transactional,
	}, nil
}

// checkRecords parses exactly n records from raw and returns their largest
// timestamp delta.
func checkRecords(raw []byte, n int32, keysRequired bool) (int64, error) {
	maxDelta := int64(0)
	var rec kmsg.Record
	for i := range n {
		l, w := binary.Varint(raw)
		if w <= 0 || l < 0 || l > int64(len(raw)-w) {
			return 0, invalid(kerr.CorruptMessage, "record %d of %d: bad length", i, n)
		}
		if err := rec.UnsafeReadFrom(raw[:w+int(l)]); err != nil {
			return 0, invalid(kerr.CorruptMessage, "record %d of %d: %v", i, n, err)
		}
		if keysRequired && rec.Key == nil {
			return 0, invalid(kerr.InvalidRecord, "compacted topic cannot accept a record without a key")
		}
		if i == 0 || rec.TimestampDelta64 > maxDelta {
			maxDelta = rec.TimestampDelta64
		}
		raw = raw[w+int(l):]
	}
	if len(raw) != 0 {
		return 0, invalid(kerr.CorruptMessage, "%d bytes after the batch's %d records", len(raw), n)
	}
	return maxDelta, nil
}

// IsValidation reports whether err is a rejected batch (as opposed to a
// failed append).
func IsValidation(err error) bool {
	var ve *ValidationError
	return errors.As(err, &ve)
}
