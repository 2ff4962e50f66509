package segment

import (
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// MarkerBatch returns the control batch of a transaction marker (commit
// or abort), byte for byte as Kafka's broker writes one
// (MemoryRecords.withEndTransactionMarker): base offset 0 (readers patch
// in the marker's offset, as for produced batches), transactional and
// control attributes, the producer's id and epoch, sequence -1, first and
// max timestamp the marker's, and one record whose key is the control
// type (version 0; 0 abort, 1 commit) and whose value is the end
// transaction marker (version 0, the coordinator epoch).
//
// No object holds a marker: its batch-index row carries these fields
// (metastore.MarkerRow), and every reader makes the same bytes from them,
// until the storage janitor writes them into a compacted object like any
// other batch.
func MarkerBatch(producerID int64, producerEpoch int16, commit bool, coordinatorEpoch int32, timestamp int64) []byte {
	typ := kmsg.ControlRecordKeyType(0)
	if commit {
		typ = 1
	}
	key := (&kmsg.ControlRecordKey{Version: 0, Type: typ}).AppendTo(nil)
	value := (&kmsg.EndTxnMarker{Version: 0, CoordinatorEpoch: coordinatorEpoch}).AppendTo(nil)
	rec := kmsg.Record{Key: key, Value: value}
	body := rec.AppendTo(nil)[1:] // without the one-byte length of 0
	rec.Length = int32(len(body))
	records := rec.AppendTo(nil)

	rb := kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: 0,
		Magic:                2,
		Attributes:           attrTransactional | attrControl,
		LastOffsetDelta:      0,
		FirstTimestamp:       timestamp,
		MaxTimestamp:         timestamp,
		ProducerID:           producerID,
		ProducerEpoch:        producerEpoch,
		FirstSequence:        -1,
		NumRecords:           1,
		Records:              records,
	}
	rb.Length = int32(batchHeaderLen - 12 + len(records))
	out := rb.AppendTo(nil)
	be.PutUint32(out[batchCRCOffset:], crc32.Checksum(out[batchAttrOffset:], castagnoli))
	return out
}

// Record batch attributes of a transaction marker.
const (
	attrTransactional = 0x10
	attrControl       = 0x20
)
