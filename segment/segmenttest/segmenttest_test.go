package segmenttest_test

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/segment/segmenttest"
)

func TestBatchDecodes(t *testing.T) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, compressed := range []bool{false, true} {
		raw := segmenttest.New(segmenttest.Options{Records: 7, ValueSize: 100, Compressed: compressed, Seed: 3})
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw); err != nil {
			t.Fatalf("compressed=%v: ReadFrom: %v", compressed, err)
		}
		if int(b.Length)+12 != len(raw) || b.Magic != 2 || b.NumRecords != 7 || b.LastOffsetDelta != 6 {
			t.Fatalf("compressed=%v: header %+v", compressed, b)
		}
		if crc := crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)); int32(crc) != b.CRC {
			t.Fatalf("compressed=%v: CRC %08x, computed %08x", compressed, uint32(b.CRC), crc)
		}
		if b.MaxTimestamp != b.FirstTimestamp+6 || b.FirstTimestamp != segmenttest.BaseTimestamp {
			t.Errorf("compressed=%v: timestamps %d..%d", compressed, b.FirstTimestamp, b.MaxTimestamp)
		}
		records := b.Records
		if compressed {
			if b.Attributes&7 != 4 {
				t.Fatalf("attributes %d, want zstd", b.Attributes)
			}
			if records, err = dec.DecodeAll(records, nil); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 7 {
			var r kmsg.Record
			if err := r.ReadFrom(records); err != nil {
				t.Fatalf("compressed=%v record %d: %v", compressed, i, err)
			}
			n, used := binary.Varint(records)
			records = records[used+int(n):]
			if r.OffsetDelta != int32(i) || len(r.Value) != 100 || r.TimestampDelta64 != int64(i) {
				t.Errorf("record %d: %+v", i, r)
			}
		}
		if len(records) != 0 {
			t.Errorf("compressed=%v: %d bytes after the last record", compressed, len(records))
		}
	}
}

func TestDeterministic(t *testing.T) {
	a := segmenttest.New(segmenttest.Options{Records: 5, Random: true, Seed: 9})
	b := segmenttest.New(segmenttest.Options{Records: 5, Random: true, Seed: 9})
	if string(a) != string(b) {
		t.Fatal("same options gave different batches")
	}
}
