package sqlite

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/siltdata/silt/metastore"
)

// producerWindow is how many recent batches are kept per producer and
// partition for duplicate detection: Kafka keeps 5, matching the most
// requests a producer may have in flight.
const producerWindow = 5

// producerBatch is one remembered batch of a producer on a partition.
type producerBatch struct {
	FirstSeq   int32
	LastSeq    int32
	BaseOffset int64
}

// producerState is a producer's state on one partition, as Kafka's
// ProducerStateManager keeps it: the epoch and the last batches, oldest
// first. It is stored as JSON [[first, last, offset], ...].
type producerState struct {
	Epoch   int16
	Batches []producerBatch
	// TxnFirst is the first offset of the producer's open transaction on
	// the partition, -1 when none (its own column, not in the JSON).
	TxnFirst int64
}

func (b producerBatch) MarshalJSON() ([]byte, error) {
	return json.Marshal([3]int64{int64(b.FirstSeq), int64(b.LastSeq), b.BaseOffset})
}

func (b *producerBatch) UnmarshalJSON(p []byte) error {
	var a [3]int64
	if err := json.Unmarshal(p, &a); err != nil {
		return err
	}
	b.FirstSeq, b.LastSeq, b.BaseOffset = int32(a[0]), int32(a[1]), a[2]
	return nil
}

// lastSequence is the sequence of a batch's last record: sequences wrap
// from MaxInt32 to 0, as in Kafka's DefaultRecordBatch.incrementSequence.
func lastSequence(base, records int32) int32 {
	inc := max(records, 1) - 1
	if base > math.MaxInt32-inc {
		return inc - (math.MaxInt32 - base) - 1
	}
	return base + inc
}

// seqCount is how many records a batch from sequence first to last holds:
// sequences wrap from MaxInt32 to 0.
func seqCount(first, last int32) int32 {
	if last >= first {
		return last - first + 1
	}
	return math.MaxInt32 - first + last + 2
}

// check decides an idempotent batch against st (nil: the partition has no
// state for this producer, and any sequence is accepted, as KIP-360 has
// it). For a duplicate it returns the batch's original base offset.
func (st *producerState) check(b metastore.BatchAppend) (dupOffset int64, err error) {
	if st == nil || len(st.Batches) == 0 {
		return 0, nil
	}
	switch {
	case b.ProducerEpoch < st.Epoch:
		return 0, fmt.Errorf("%w: producer %d epoch %d, current %d", metastore.ErrInvalidProducerEpoch, b.ProducerID, b.ProducerEpoch, st.Epoch)
	case b.ProducerEpoch > st.Epoch:
		if b.BaseSequence != 0 {
			return 0, fmt.Errorf("%w: producer %d new epoch %d starts at sequence %d", metastore.ErrOutOfOrderSequence, b.ProducerID, b.ProducerEpoch, b.BaseSequence)
		}
		return 0, nil
	}
	last := lastSequence(b.BaseSequence, b.Records)
	for _, pb := range st.Batches {
		if pb.FirstSeq == b.BaseSequence && pb.LastSeq == last {
			return pb.BaseOffset, metastore.ErrDuplicateSequence
		}
	}
	prev := st.Batches[len(st.Batches)-1].LastSeq
	want := prev + 1
	if prev == math.MaxInt32 {
		want = 0
	}
	if b.BaseSequence != want {
		return 0, fmt.Errorf("%w: producer %d sequence %d, expected %d", metastore.ErrOutOfOrderSequence, b.ProducerID, b.BaseSequence, want)
	}
	return 0, nil
}

// record remembers an accepted batch; a new epoch forgets the old batches.
func (st *producerState) record(b metastore.BatchAppend, baseOffset int64) {
	if b.ProducerEpoch != st.Epoch {
		st.Epoch = b.ProducerEpoch
		st.Batches = st.Batches[:0]
	}
	st.Batches = append(st.Batches, producerBatch{
		FirstSeq:   b.BaseSequence,
		LastSeq:    lastSequence(b.BaseSequence, b.Records),
		BaseOffset: baseOffset,
	})
	if n := len(st.Batches); n > producerWindow {
		st.Batches = append(st.Batches[:0], st.Batches[n-producerWindow:]...)
	}
}
