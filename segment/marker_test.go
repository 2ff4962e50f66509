package segment

import (
	"bytes"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

// TestMarkerBatch checks the control batch of a marker against Kafka's
// layout by decoding it with kmsg, and that its length is the one marker
// rows record.
func TestMarkerBatch(t *testing.T) {
	for _, commit := range []bool{false, true} {
		b := MarkerBatch(1234, 7, commit, 99, 1700000000000)
		if len(b) != metastore.MarkerBatchLen {
			t.Fatalf("marker batch of %d bytes, marker rows say %d", len(b), metastore.MarkerBatchLen)
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			t.Fatal(err)
		}
		if uint32(rb.CRC) != crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)) {
			t.Fatal("bad CRC")
		}
		if rb.Attributes != 0x30 || rb.ProducerID != 1234 || rb.ProducerEpoch != 7 || rb.FirstSequence != -1 ||
			rb.NumRecords != 1 || rb.LastOffsetDelta != 0 || rb.FirstTimestamp != 1700000000000 || rb.MaxTimestamp != 1700000000000 ||
			int(rb.Length)+12 != len(b) || rb.Magic != 2 {
			t.Fatalf("header: %+v", rb)
		}
		var rec kmsg.Record
		if err := rec.ReadFrom(rb.Records); err != nil {
			t.Fatal(err)
		}
		var key kmsg.ControlRecordKey
		if err := key.ReadFrom(rec.Key); err != nil {
			t.Fatal(err)
		}
		wantType := kmsg.ControlRecordKeyType(0)
		if commit {
			wantType = 1
		}
		if key.Version != 0 || key.Type != wantType {
			t.Fatalf("control key %+v", key)
		}
		var m kmsg.EndTxnMarker
		if err := m.ReadFrom(rec.Value); err != nil || m.CoordinatorEpoch != 99 {
			t.Fatalf("marker value %+v %v", m, err)
		}
		if !bytes.Equal(b, MarkerBatch(1234, 7, commit, 99, 1700000000000)) {
			t.Fatal("marker bytes differ between two calls")
		}
	}
}
