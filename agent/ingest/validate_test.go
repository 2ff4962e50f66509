package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/segment/segmenttest"
)

func opts() ValidateOptions {
	return ValidateOptions{MaxMessageBytes: 1 << 20, Now: 1_800_000_000_000, AllowZstd: true}
}

func fixCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crc32c))
	return b
}

func crcOK(b []byte) bool {
	return binary.BigEndian.Uint32(b[offCRC:]) == crc32.Checksum(b[offAttributes:], crc32c)
}

func TestValidateRejects(t *testing.T) {
	good := func() []byte { return segmenttest.New(segmenttest.Options{Records: 3}) }
	edit := func(f func(b []byte) []byte) []byte { return f(good()) }
	cases := []struct {
		name string
		recs []byte
		o    func(*ValidateOptions)
		want *kerr.Error
	}{
		{"empty", nil, nil, kerr.InvalidRecord},
		{"short", []byte{1, 2, 3}, nil, kerr.InvalidRecord},
		{"bad crc", edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), nil, kerr.CorruptMessage},
		{"magic 1", edit(func(b []byte) []byte { b[offMagic] = 1; return b }), nil, kerr.InvalidRecord},
		{"magic 3", edit(func(b []byte) []byte { b[offMagic] = 3; return b }), nil, kerr.CorruptMessage},
		{"truncated", edit(func(b []byte) []byte { return b[:len(b)-1] }), nil, kerr.InvalidRecord},
		{"truncated second batch", append(good(), good()[:30]...), nil, kerr.CorruptMessage},
		{"trailing bytes", append(good(), 0, 0, 0), nil, kerr.CorruptMessage},
		{"too large", good(), func(o *ValidateOptions) { o.MaxMessageBytes = 50 }, kerr.MessageTooLarge},
		{"base offset", edit(func(b []byte) []byte { binary.BigEndian.PutUint64(b, 7); return b }), nil, kerr.InvalidRecord},
		{"delta", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[23:], 9); return fixCRC(b) }), nil, kerr.InvalidRecord},
		{"zero records", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[23:], 0xffffffff)
			binary.BigEndian.PutUint32(b[57:], 0)
			return fixCRC(b)
		}), nil, kerr.InvalidRecord},
		{"record count", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[23:], 3)
			binary.BigEndian.PutUint32(b[57:], 4)
			return fixCRC(b)
		}), nil, kerr.CorruptMessage},
		{"garbage records", edit(func(b []byte) []byte { b[62] = 0x7f; return fixCRC(b) }), nil, kerr.CorruptMessage},
		{"control", edit(func(b []byte) []byte { b[offAttributes+1] |= attrControl; return fixCRC(b) }), nil, kerr.InvalidRecord},
		{"transactional without a producer id", edit(func(b []byte) []byte { b[offAttributes+1] |= attrTransactional; return fixCRC(b) }), nil, kerr.InvalidRecord},
		{"codec 7", edit(func(b []byte) []byte { b[offAttributes+1] |= 7; return fixCRC(b) }), nil, kerr.CorruptMessage},
		{"zstd before v7", segmenttest.New(segmenttest.Options{Records: 2, Compressed: true}), func(o *ValidateOptions) { o.AllowZstd = false }, kerr.UnsupportedCompressionType},
		{"idempotent without sequence", segmenttest.New(segmenttest.Options{Records: 2, Idempotent: true, ProducerID: 5, BaseSequence: -1}), nil, kerr.InvalidRecord},
		{"compacted without key", func() []byte {
			r := kmsg.Record{Value: []byte("v")}
			r.Length = int32(len(r.AppendTo(nil)) - 1)
			rb := kmsg.RecordBatch{Magic: 2, PartitionLeaderEpoch: -1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: r.AppendTo(nil)}
			rb.Length = int32(49 + len(rb.Records))
			return fixCRC(rb.AppendTo(nil))
		}(), func(o *ValidateOptions) { o.KeysRequired = true }, kerr.InvalidRecord},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := opts()
			if c.o != nil {
				c.o(&o)
			}
			_, err := Validate(c.recs, o)
			var ke *kerr.Error
			if !errors.As(err, &ke) || ke != c.want || !IsValidation(err) {
				t.Fatalf("got %v, want %s", err, c.want.Message)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	a := segmenttest.New(segmenttest.Options{Records: 3, Seed: 1})
	b := segmenttest.New(segmenttest.Options{Records: 2, Seed: 2, Compressed: true})
	c := segmenttest.New(segmenttest.Options{Records: 1, Idempotent: true, ProducerID: 9, ProducerEpoch: 1, BaseSequence: 4})
	items, err := Validate(append(append(append([]byte(nil), a...), b...), c...), opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 || items[0].Records != 3 || items[1].Records != 2 {
		t.Fatalf("items %+v", items)
	}
	if string(items[0].Batch) != string(a) || string(items[1].Batch) != string(b) {
		t.Fatal("valid batches were modified")
	}
	if it := items[2]; it.ProducerID != 9 || it.ProducerEpoch != 1 || it.BaseSequence != 4 {
		t.Fatalf("producer state %+v", it)
	}
	if items[0].MaxTimestamp != segmenttest.BaseTimestamp+2 {
		t.Fatalf("max timestamp %d", items[0].MaxTimestamp)
	}
}

func TestValidateRewritesTimestamps(t *testing.T) {
	o := opts()
	o.LogAppendTime = true
	items, err := Validate(segmenttest.New(segmenttest.Options{Records: 3}), o)
	if err != nil {
		t.Fatal(err)
	}
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(items[0].Batch); err != nil {
		t.Fatal(err)
	}
	if rb.Attributes&attrLogAppendTime == 0 || rb.FirstTimestamp != o.Now || rb.MaxTimestamp != o.Now || items[0].MaxTimestamp != o.Now || !crcOK(items[0].Batch) {
		t.Fatalf("LogAppendTime batch: attrs %x first %d max %d crc ok %v", rb.Attributes, rb.FirstTimestamp, rb.MaxTimestamp, crcOK(items[0].Batch))
	}

	// CreateTime topic: a wrong max timestamp and a LogAppendTime bit from
	// the client are corrected, as Kafka does.
	b := segmenttest.New(segmenttest.Options{Records: 3})
	binary.BigEndian.PutUint64(b[offMaxTS:], 1)
	b[offAttributes+1] |= attrLogAppendTime
	fixCRC(b)
	items, err = Validate(b, opts())
	if err != nil {
		t.Fatal(err)
	}
	if err := rb.ReadFrom(items[0].Batch); err != nil {
		t.Fatal(err)
	}
	if rb.Attributes&attrLogAppendTime != 0 || rb.MaxTimestamp != segmenttest.BaseTimestamp+2 || !crcOK(items[0].Batch) {
		t.Fatalf("CreateTime batch: attrs %x max %d", rb.Attributes, rb.MaxTimestamp)
	}
}

// FuzzValidate: whatever a producer sends, Validate answers with a Kafka
// error code or with batches that tile the input and carry a good CRC,
// and it allocates within its bounds (a few times the decompression
// bound, an lz4 reader's block buffers, plus what kmsg's record decoding
// costs per input byte).
func FuzzValidate(f *testing.F) {
	good := segmenttest.New(segmenttest.Options{Records: 2})
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2})
	f.Add(good)
	f.Add(append(append([]byte(nil), good...), 1, 2, 3))
	f.Add(append(append([]byte(nil), good...), good...))
	f.Add(segmenttest.New(segmenttest.Options{Records: 2, Compressed: true}))
	f.Add(segmenttest.New(segmenttest.Options{Records: 1, Idempotent: true, ProducerID: 3, BaseSequence: 7}))
	plain := segmenttest.New(segmenttest.Options{Records: 5, Seed: 9})
	zeros := make([]byte, 2*fuzzDecompressLimit)
	for _, c := range codecs {
		f.Add(withRecords(plain, c.codec, c.enc(plain[batchHeaderLen:])))
		f.Add(withRecords(plain, c.codec, c.enc(zeros)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Random bytes rarely pass the CRC, which would keep the fuzzer
		// at that check: also validate a copy with its CRC recomputed.
		checkValidate(t, bytes.Clone(b))
		if len(b) >= batchHeaderLen {
			checkValidate(t, fixCRC(bytes.Clone(b)))
		}
	})
}

// fuzzDecompressLimit is FuzzValidate's MaxDecompressedBytes.
const fuzzDecompressLimit = 1 << 20

func checkValidate(t *testing.T, b []byte) {
	o := opts()
	o.MaxDecompressedBytes = fuzzDecompressLimit
	var items []Item
	var err error
	alloc := allocated(func() { items, err = Validate(b, o) })
	if bound := uint64(4*fuzzDecompressLimit + lz4Buffers + 256*len(b)); alloc > bound {
		t.Fatalf("validating %d bytes allocated %d, bound %d", len(b), alloc, bound)
	}
	if err != nil {
		var ke *kerr.Error
		if !IsValidation(err) || !errors.As(err, &ke) {
			t.Fatalf("error without a Kafka code: %v", err)
		}
		return
	}
	at := 0
	for _, it := range items {
		if len(it.Batch) < batchHeaderLen || &it.Batch[0] != &b[at] || !crcOK(it.Batch) || it.Records <= 0 {
			t.Fatalf("accepted batch at %d of %d bytes: %d bytes, %d records, crc ok %v", at, len(b), len(it.Batch), it.Records, crcOK(it.Batch))
		}
		at += len(it.Batch)
	}
	if at != len(b) {
		t.Fatalf("accepted batches cover %d of %d bytes", at, len(b))
	}
}
