package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/siltdata/silt/metastore"
)

// txnBatch is a transactional BatchAppend.
func txnBatch(tp metastore.TopicPartition, pid int64, epoch int16, seq, n int32) metastore.BatchAppend {
	b := idem(tp, pid, epoch, seq, n)
	b.Transactional = true
	return b
}

// txnSetup claims and initializes a transactional id.
func txnSetup(t *testing.T, s metastore.Backend, id string, timeoutMs int32) (claim int64, tp metastore.TxnProducer) {
	t.Helper()
	claim, err := s.ClaimTransaction(ctx(t), id)
	must(t, "ClaimTransaction "+id, err)
	res, err := s.InitProducer(ctx(t), metastore.InitProducerRequest{ID: id, Claim: claim, TimeoutMs: timeoutMs, ProducerID: -1, Epoch: -1})
	must(t, "InitProducer "+id, err)
	if res.ProducerID < 0 || res.Epoch != 0 || len(res.Written) != 0 {
		t.Fatalf("InitProducer %s of a new id: %+v", id, res)
	}
	return claim, metastore.TxnProducer{ID: id, ProducerID: res.ProducerID, Epoch: res.Epoch}
}

func addPartitions(t *testing.T, s metastore.Backend, claim int64, p metastore.TxnProducer, tps ...metastore.TopicPartition) {
	t.Helper()
	_, err := s.AddToTransaction(ctx(t), metastore.AddToTxnRequest{TxnProducer: p, Claim: claim, Partitions: tps, MaxPartitions: 100})
	must(t, "AddToTransaction", err)
}

func endTxn(t *testing.T, s metastore.Backend, claim int64, p metastore.TxnProducer, commit, bump bool) metastore.EndTxnResult {
	t.Helper()
	res, err := s.EndTransaction(ctx(t), metastore.EndTxnRequest{TxnProducer: p, Claim: claim, Commit: commit, Bump: bump})
	must(t, "EndTransaction", err)
	return res
}

func offsets(t *testing.T, s metastore.Backend, tp metastore.TopicPartition) metastore.PartitionOffsets {
	t.Helper()
	o, err := s.Offsets(ctx(t), tp)
	must(t, "Offsets", err)
	return o
}

// markerAt checks that tp's index row at offset is a marker of p.
func markerAt(t *testing.T, s metastore.Backend, tp metastore.TopicPartition, offset int64, pid int64, epoch int16, commit bool) {
	t.Helper()
	bs, _, err := s.Batches(ctx(t), tp, offset, 1)
	must(t, "Batches", err)
	if len(bs) == 0 || bs[0].BaseOffset != offset || bs[0].LastOffset != offset || !bs[0].IsMarker() || bs[0].Len != metastore.MarkerBatchLen {
		t.Fatalf("row at %d of %v: %+v, want a marker", offset, tp, bs)
	}
	m := bs[0].Marker()
	if m.ProducerID != pid || m.ProducerEpoch != epoch || m.Commit != commit || m.CoordinatorEpoch < 1 {
		t.Fatalf("marker at %d of %v: %+v, want producer %d epoch %d commit %v", offset, tp, m, pid, epoch, commit)
	}
}

func testTransactions(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "t", 3)
	tp0, tp1, tp2 := metastore.TopicPartition{Topic: top.ID}, metastore.TopicPartition{Topic: top.ID, Partition: 1}, metastore.TopicPartition{Topic: top.ID, Partition: 2}
	claim, p := txnSetup(t, s, "tx", 60000)

	// Data before the transaction, then the transaction's.
	commit(t, s, "s0", batch(tp0, 2, 1000, 100))
	// Not added yet: refused.
	r := commit(t, s, "s1", txnBatch(tp0, p.ProducerID, p.Epoch, 0, 3))
	expect(t, "batch before AddToTransaction", r[0], 0, metastore.ErrPartitionNotInTxn)
	addPartitions(t, s, claim, p, tp0, tp1)
	tx, found, err := s.Transaction(c, "tx")
	must(t, "Transaction", err)
	if !found || tx.State != metastore.TxnOngoing || len(tx.Partitions) != 2 || tx.Started.IsZero() || tx.ProducerID != p.ProducerID {
		t.Fatalf("after AddToTransaction: %+v", tx)
	}
	r = commit(t, s, "s2", txnBatch(tp0, p.ProducerID, p.Epoch, 0, 3), batch(tp0, 1, 1000, 100),
		txnBatch(tp1, p.ProducerID, p.Epoch, 0, 1), txnBatch(tp2, p.ProducerID, p.Epoch, 0, 1),
		txnBatch(tp0, p.ProducerID, p.Epoch, 3, 2))
	expect(t, "transactional batch", r[0], 2, nil)
	expect(t, "other producer's batch", r[1], 5, nil)
	expect(t, "transactional batch on p1", r[2], 0, nil)
	expect(t, "partition not added", r[3], 0, metastore.ErrPartitionNotInTxn)
	expect(t, "second batch of the transaction", r[4], 6, nil)
	// A non-transactional batch of the producer while its transaction is
	// open; a transactional one of a producer id no transactional id has.
	r = commit(t, s, "s3", idem(tp0, p.ProducerID, p.Epoch, 6, 1), txnBatch(tp1, p.ProducerID+1000, 0, 0, 1), idem(tp0, p.ProducerID, p.Epoch, 5, 1))
	expect(t, "non-transactional batch of a transactional producer out of sequence", r[0], 0, metastore.ErrOutOfOrderSequence)
	expect(t, "non-transactional batch of a transactional producer", r[2], 0, metastore.ErrInvalidTxnState)
	expect(t, "unknown producer id", r[1], 0, metastore.ErrInvalidProducerIDMapping)

	// The last stable offset stops at the transaction's first batch.
	if o := offsets(t, s, tp0); o.HighWatermark != 8 || o.LastStableOffset != 2 || o.AbortedEnd != 0 {
		t.Fatalf("p0 with an open transaction: %+v", o)
	}
	if om, err := s.OffsetsMany(c, []metastore.TopicPartition{tp0}); err != nil || om[0].Offsets.LastStableOffset != 2 {
		t.Fatalf("OffsetsMany with an open transaction: %+v %v", om, err)
	}
	if o := offsets(t, s, tp2); o.LastStableOffset != o.HighWatermark {
		t.Fatalf("p2 outside the transaction: %+v", o)
	}
	if _, o, err := s.Batches(c, tp0, 0, 1<<20); err != nil || o.LastStableOffset != 2 {
		t.Fatalf("Batches' offsets: %+v %v", o, err)
	}
	ps, err := s.Producers(c, tp0)
	must(t, "Producers", err)
	i := slices.IndexFunc(ps, func(pi metastore.ProducerInfo) bool { return pi.ProducerID == p.ProducerID })
	if i < 0 || ps[i].TxnFirstOffset != 2 || ps[i].LastSequence != 4 || ps[i].Epoch != p.Epoch {
		t.Fatalf("Producers: %+v", ps)
	}

	// Staged offsets are invisible until the commit.
	g := "g"
	err = s.StageTxnOffsets(c, metastore.TxnOffsetsRequest{TxnProducer: p, Group: g, Offsets: []metastore.CommittedOffset{{TopicPartition: tp2, Offset: 42, LeaderEpoch: -1, CommitTime: time.Now()}}})
	wantErr(t, "StageTxnOffsets before the group was added", err, metastore.ErrPartitionNotInTxn)
	_, err = s.AddToTransaction(c, metastore.AddToTxnRequest{TxnProducer: p, Claim: claim, Groups: []string{g}, MaxPartitions: 100})
	must(t, "AddToTransaction group", err)
	must(t, "StageTxnOffsets", s.StageTxnOffsets(c, metastore.TxnOffsetsRequest{TxnProducer: p, Group: g,
		Offsets: []metastore.CommittedOffset{{TopicPartition: tp2, Offset: 42, LeaderEpoch: -1, Metadata: "m", CommitTime: time.Now()}}}))
	if got, err := s.FetchOffsets(c, g, nil); err != nil || len(got) != 0 {
		t.Fatalf("staged offsets visible before the commit: %+v %v", got, err)
	}
	pend, err := s.PendingTxnOffsets(c, g, []metastore.TopicPartition{tp1, tp2})
	must(t, "PendingTxnOffsets", err)
	if len(pend) != 1 || pend[0] != tp2 {
		t.Fatalf("PendingTxnOffsets: %v", pend)
	}

	// Commit: a marker in each partition of the transaction, the LSO
	// released, the offsets visible.
	res := endTxn(t, s, claim, p, true, false)
	slices.SortFunc(res.Written, func(a, b metastore.TopicPartition) int { return int(a.Partition - b.Partition) })
	if !slices.Equal(res.Written, []metastore.TopicPartition{tp0, tp1}) || res.ProducerID != p.ProducerID || res.Epoch != p.Epoch {
		t.Fatalf("EndTransaction commit: %+v", res)
	}
	markerAt(t, s, tp0, 8, p.ProducerID, p.Epoch, true)
	markerAt(t, s, tp1, 1, p.ProducerID, p.Epoch, true)
	bm, err := s.BatchesMany(c, []metastore.BatchesQuery{{TopicPartition: tp0, Offset: 7, MaxBytes: 1 << 20}})
	must(t, "BatchesMany", err)
	if r := bm[0]; r.Err != nil || len(r.Batches) != 2 || !r.Batches[1].IsMarker() || r.Offsets.LastStableOffset != 9 {
		t.Fatalf("BatchesMany over the marker: %+v", r)
	}
	if o := offsets(t, s, tp0); o.HighWatermark != 9 || o.LastStableOffset != 9 || o.AbortedEnd != 0 {
		t.Fatalf("p0 after the commit: %+v", o)
	}
	got, err := s.FetchOffsets(c, g, nil)
	must(t, "FetchOffsets", err)
	if len(got) != 1 || got[0].Offset != 42 || got[0].Metadata != "m" {
		t.Fatalf("committed offsets after the commit: %+v", got)
	}
	if pend, _ := s.PendingTxnOffsets(c, g, nil); len(pend) != 0 {
		t.Fatalf("offsets still pending after the commit: %v", pend)
	}
	if tx, _, _ := s.Transaction(c, "tx"); tx.State != metastore.TxnCompleteCommit || len(tx.Partitions) != 0 || len(tx.Groups) != 0 {
		t.Fatalf("after the commit: %+v", tx)
	}
	// A retried EndTxn of the same result succeeds without writing; the
	// other result is the wrong state; without a transaction, too.
	if res := endTxn(t, s, claim, p, true, false); len(res.Written) != 0 {
		t.Fatalf("retried commit wrote: %+v", res)
	}
	_, err = s.EndTransaction(c, metastore.EndTxnRequest{TxnProducer: p, Claim: claim, Commit: false})
	wantErr(t, "abort after commit", err, metastore.ErrInvalidTxnState)
	// After the marker, the producer's next transaction on tp0 continues
	// its sequence (same epoch: transaction version 1).
	addPartitions(t, s, claim, p, tp0)
	r = commit(t, s, "s4", txnBatch(tp0, p.ProducerID, p.Epoch, 5, 2))
	expect(t, "next transaction", r[0], 9, nil)

	// Abort: the aborted list names the transaction where it wrote.
	res = endTxn(t, s, claim, p, false, false)
	if len(res.Written) != 1 {
		t.Fatalf("EndTransaction abort: %+v", res)
	}
	markerAt(t, s, tp0, 11, p.ProducerID, p.Epoch, false)
	o := offsets(t, s, tp0)
	if o.LastStableOffset != 12 || o.AbortedEnd != 12 {
		t.Fatalf("p0 after the abort: %+v", o)
	}
	ab, err := s.AbortedTransactions(c, tp0, 0, o.LastStableOffset)
	must(t, "AbortedTransactions", err)
	if len(ab) != 1 || ab[0] != (metastore.AbortedTxn{ProducerID: p.ProducerID, FirstOffset: 9, LastOffset: 11}) {
		t.Fatalf("AbortedTransactions: %+v", ab)
	}
	if ab, _ := s.AbortedTransactions(c, tp0, 12, 20); len(ab) != 0 {
		t.Fatalf("aborted transactions after the last abort: %+v", ab)
	}
	if ab, _ := s.AbortedTransactions(c, tp0, 0, 9); len(ab) != 0 {
		t.Fatalf("aborted transactions beginning after the read: %+v", ab)
	}

	// EndTxn without a transaction; unknown ids; another producer id.
	_, err = s.EndTransaction(c, metastore.EndTxnRequest{TxnProducer: p, Claim: claim, Commit: true})
	wantErr(t, "commit after abort", err, metastore.ErrInvalidTxnState)
	_, err = s.EndTransaction(c, metastore.EndTxnRequest{TxnProducer: metastore.TxnProducer{ID: "nope", ProducerID: 1}, Commit: true})
	wantErr(t, "unknown transactional id", err, metastore.ErrInvalidProducerIDMapping)
	_, err = s.AddToTransaction(c, metastore.AddToTxnRequest{TxnProducer: metastore.TxnProducer{ID: "tx", ProducerID: p.ProducerID + 1}, Claim: claim, Partitions: []metastore.TopicPartition{tp0}})
	wantErr(t, "another producer id", err, metastore.ErrInvalidProducerIDMapping)
	_, err = s.AddToTransaction(c, metastore.AddToTxnRequest{TxnProducer: p, Claim: claim, Partitions: []metastore.TopicPartition{{Topic: top.ID, Partition: 9}}})
	wantErr(t, "unknown partition", err, metastore.ErrUnknownTopicOrPartition)

	// The group coordinator's fence: a stage under a replaced group
	// claim, or for another generation, is refused.
	gc, err := s.ClaimGroup(c, g)
	must(t, "ClaimGroup", err)
	must(t, "SaveOwnedGroup", s.SaveOwnedGroup(c, gc.Epoch, metastore.Group{Name: g, State: "Stable", ProtocolType: "consumer", Generation: 3}))
	addPartitions(t, s, claim, p, tp2)
	_, err = s.AddToTransaction(c, metastore.AddToTxnRequest{TxnProducer: p, Claim: claim, Groups: []string{g}})
	must(t, "AddToTransaction group", err)
	stage := func(epoch int64, gen int32) error {
		return s.StageTxnOffsets(c, metastore.TxnOffsetsRequest{TxnProducer: p, Group: g, GroupEpoch: epoch, Generation: gen,
			Offsets: []metastore.CommittedOffset{{TopicPartition: tp2, Offset: 50, LeaderEpoch: -1, CommitTime: time.Now()}}})
	}
	wantErr(t, "StageTxnOffsets of another generation", stage(gc.Epoch, 2), metastore.ErrIllegalGeneration)
	must(t, "StageTxnOffsets fenced by the group", stage(gc.Epoch, 3))
	gc2, err := s.ClaimGroup(c, g)
	must(t, "ClaimGroup again", err)
	wantErr(t, "StageTxnOffsets under a replaced group claim", stage(gc.Epoch, 3), metastore.ErrGroupFenced)
	must(t, "StageTxnOffsets under the new group claim", stage(gc2.Epoch, -1))
	endTxn(t, s, claim, p, false, false)
	if got, _ := s.FetchOffsets(c, g, nil); len(got) != 1 || got[0].Offset != 42 {
		t.Fatalf("an aborted transaction's offsets were committed: %+v", got)
	}
	r = commit(t, s, "s3b", txnBatch(tp2, p.ProducerID, p.Epoch, 0, 1))
	expect(t, "batch after the abort", r[0], 0, metastore.ErrPartitionNotInTxn)
}

func testTransactionFencing(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "t", 2)
	tp0, tp1 := metastore.TopicPartition{Topic: top.ID}, metastore.TopicPartition{Topic: top.ID, Partition: 1}
	claim, p := txnSetup(t, s, "tx", 60000)
	addPartitions(t, s, claim, p, tp0, tp1)
	commit(t, s, "s1", txnBatch(tp0, p.ProducerID, p.Epoch, 0, 2))

	// A new instance initializes: the open transaction is aborted (and
	// its producer fenced), the epoch bumped.
	res, err := s.InitProducer(c, metastore.InitProducerRequest{ID: "tx", Claim: claim, TimeoutMs: 60000, ProducerID: -1, Epoch: -1})
	must(t, "InitProducer of the new instance", err)
	if res.ProducerID != p.ProducerID || res.Epoch <= p.Epoch+1 || len(res.Written) != 2 {
		t.Fatalf("InitProducer with an open transaction: %+v", res)
	}
	if o := offsets(t, s, tp0); o.LastStableOffset != o.HighWatermark || o.HighWatermark != 3 {
		t.Fatalf("p0 after the fence: %+v", o)
	}
	if ab, _ := s.AbortedTransactions(c, tp0, 0, 3); len(ab) != 1 || ab[0].FirstOffset != 0 || ab[0].LastOffset != 2 {
		t.Fatalf("the fenced transaction is not aborted: %+v", ab)
	}
	zombie := p
	p = metastore.TxnProducer{ID: "tx", ProducerID: res.ProducerID, Epoch: res.Epoch}

	// The zombie's writes all fail on its epoch.
	r := commit(t, s, "s2", txnBatch(tp0, zombie.ProducerID, zombie.Epoch, 2, 1))
	expect(t, "zombie batch", r[0], 0, metastore.ErrInvalidProducerEpoch)
	_, err = s.AddToTransaction(c, metastore.AddToTxnRequest{TxnProducer: zombie, Claim: claim, Partitions: []metastore.TopicPartition{tp0}})
	wantErr(t, "zombie AddToTransaction", err, metastore.ErrProducerFenced)
	_, err = s.EndTransaction(c, metastore.EndTxnRequest{TxnProducer: zombie, Claim: claim, Commit: true})
	wantErr(t, "zombie EndTransaction", err, metastore.ErrProducerFenced)
	err = s.StageTxnOffsets(c, metastore.TxnOffsetsRequest{TxnProducer: zombie, Group: "g", AddGroup: true,
		Offsets: []metastore.CommittedOffset{{TopicPartition: tp0, Offset: 1, CommitTime: time.Now()}}})
	wantErr(t, "zombie StageTxnOffsets", err, metastore.ErrProducerFenced)
	_, err = s.InitProducer(c, metastore.InitProducerRequest{ID: "tx", Claim: claim, TimeoutMs: 60000, ProducerID: zombie.ProducerID, Epoch: zombie.Epoch})
	wantErr(t, "zombie KIP-360 InitProducer", err, metastore.ErrProducerFenced)

	// The new instance writes from sequence 0 at its epoch.
	addPartitions(t, s, claim, p, tp0)
	r = commit(t, s, "s3", txnBatch(tp0, p.ProducerID, p.Epoch, 0, 1))
	expect(t, "new instance", r[0], 3, nil)

	// Another agent claims the id: the old claim's writes fail, whatever
	// they are; the new claim's succeed.
	claim2, err := s.ClaimTransaction(c, "tx")
	must(t, "ClaimTransaction", err)
	if claim2 <= claim {
		t.Fatalf("claim %d after %d", claim2, claim)
	}
	_, err = s.EndTransaction(c, metastore.EndTxnRequest{TxnProducer: p, Claim: claim, Commit: true})
	wantErr(t, "EndTransaction under a replaced claim", err, metastore.ErrTxnCoordinatorFenced)
	_, err = s.AddToTransaction(c, metastore.AddToTxnRequest{TxnProducer: p, Claim: claim, Partitions: []metastore.TopicPartition{tp1}})
	wantErr(t, "AddToTransaction under a replaced claim", err, metastore.ErrTxnCoordinatorFenced)
	_, err = s.InitProducer(c, metastore.InitProducerRequest{ID: "tx", Claim: claim, TimeoutMs: 60000, ProducerID: -1, Epoch: -1})
	wantErr(t, "InitProducer under a replaced claim", err, metastore.ErrTxnCoordinatorFenced)
	if o := offsets(t, s, tp0); o.LastStableOffset != 3 {
		t.Fatalf("a fenced coordinator's EndTransaction changed the log: %+v", o)
	}
	end := endTxn(t, s, claim2, p, true, false)
	if len(end.Written) != 1 {
		t.Fatalf("EndTransaction under the new claim: %+v", end)
	}
	markerAt(t, s, tp0, 4, p.ProducerID, p.Epoch, true)
}

// testTransactionVersion2 checks KIP-890's epoch bump at every end, its
// retries, the sequence reset and the implicit add.
func testTransactionVersion2(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "t", 1)
	tp := metastore.TopicPartition{Topic: top.ID}
	claim, p := txnSetup(t, s, "tx", 60000)
	// The implicit add of a produce (claim 0).
	_, err := s.AddToTransaction(c, metastore.AddToTxnRequest{TxnProducer: p, Partitions: []metastore.TopicPartition{tp}, MaxPartitions: 10})
	must(t, "implicit AddToTransaction", err)
	r := commit(t, s, "s1", txnBatch(tp, p.ProducerID, p.Epoch, 0, 3))
	expect(t, "first transaction", r[0], 0, nil)
	res := endTxn(t, s, claim, p, true, true)
	if res.Epoch != p.Epoch+1 || res.ProducerID != p.ProducerID || len(res.Written) != 1 {
		t.Fatalf("EndTransaction v5: %+v", res)
	}
	markerAt(t, s, tp, 3, p.ProducerID, p.Epoch+1, true)
	// The retry (the old epoch) gets the same answer, and writes nothing.
	if again := endTxn(t, s, claim, p, true, true); again.Epoch != res.Epoch || len(again.Written) != 0 {
		t.Fatalf("retried EndTransaction v5: %+v", again)
	}
	// A delayed batch of the ended transaction is fenced by the epoch.
	r = commit(t, s, "s2", txnBatch(tp, p.ProducerID, p.Epoch, 3, 1))
	expect(t, "delayed batch", r[0], 0, metastore.ErrInvalidProducerEpoch)
	p.Epoch = res.Epoch
	_, err = s.AddToTransaction(c, metastore.AddToTxnRequest{TxnProducer: p, Partitions: []metastore.TopicPartition{tp}, MaxPartitions: 10})
	must(t, "implicit AddToTransaction", err)
	// The new epoch starts its sequences at 0.
	r = commit(t, s, "s3", txnBatch(tp, p.ProducerID, p.Epoch, 3, 1), txnBatch(tp, p.ProducerID, p.Epoch, 0, 1))
	expect(t, "new epoch not at 0", r[0], 0, metastore.ErrOutOfOrderSequence)
	expect(t, "new epoch at 0", r[1], 4, nil)
	res = endTxn(t, s, claim, p, false, true)
	if res.Epoch != p.Epoch+1 {
		t.Fatalf("abort v5: %+v", res)
	}
	if ab, _ := s.AbortedTransactions(c, tp, 0, 10); len(ab) != 1 || ab[0].FirstOffset != 4 || ab[0].LastOffset != 5 {
		t.Fatalf("aborted list: %+v", ab)
	}
	p.Epoch = res.Epoch
	// An abort with nothing open bumps the epoch too; a commit is invalid.
	_, err = s.EndTransaction(c, metastore.EndTxnRequest{TxnProducer: p, Claim: claim, Commit: true, Bump: true})
	wantErr(t, "commit without a transaction", err, metastore.ErrInvalidTxnState)
	if res := endTxn(t, s, claim, p, false, true); res.Epoch != p.Epoch+1 || len(res.Written) != 0 {
		t.Fatalf("empty abort v5: %+v", res)
	}
	// Staged offsets add the group implicitly (TxnOffsetCommit v5).
	p.Epoch++
	must(t, "StageTxnOffsets with AddGroup", s.StageTxnOffsets(c, metastore.TxnOffsetsRequest{TxnProducer: p, Group: "g", AddGroup: true,
		Offsets: []metastore.CommittedOffset{{TopicPartition: tp, Offset: 7, LeaderEpoch: -1, CommitTime: time.Now()}}}))
	if tx, _, _ := s.Transaction(c, "tx"); tx.State != metastore.TxnOngoing || !slices.Equal(tx.Groups, []string{"g"}) {
		t.Fatalf("after an implicit group add: %+v", tx)
	}
	endTxn(t, s, claim, p, true, true)
	if got, _ := s.FetchOffsets(c, "g", nil); len(got) != 1 || got[0].Offset != 7 {
		t.Fatalf("implicitly added group's offsets: %+v", got)
	}
}

func testTransactionTimeouts(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "t", 1)
	tp := metastore.TopicPartition{Topic: top.ID}
	claim, p := txnSetup(t, s, "slow", 1)
	_, fast := txnSetup(t, s, "fast", 600000)
	addPartitions(t, s, claim, p, tp)
	fclaim, err := s.ClaimTransaction(c, "fast")
	must(t, "ClaimTransaction", err)
	addPartitions(t, s, fclaim, fast, tp)
	commit(t, s, "s1", txnBatch(tp, p.ProducerID, p.Epoch, 0, 1), txnBatch(tp, fast.ProducerID, fast.Epoch, 0, 1))
	if o := offsets(t, s, tp); o.LastStableOffset != 0 {
		t.Fatalf("LSO with two open transactions: %+v", o)
	}
	// A 1 ms timeout: the store's clock passes it at once.
	var expired []metastore.Txn
	deadline := time.Now().Add(10 * time.Second)
	for len(expired) == 0 && time.Now().Before(deadline) {
		expired, err = s.ExpiredTransactions(c, 10)
		must(t, "ExpiredTransactions", err)
	}
	if len(expired) != 1 || expired[0].ID != "slow" || expired[0].Epoch != p.Epoch {
		t.Fatalf("ExpiredTransactions: %+v", expired)
	}
	res, err := s.EndTransaction(c, metastore.EndTxnRequest{TxnProducer: p, Claim: claim, Fence: true})
	must(t, "EndTransaction fence", err)
	if len(res.Written) != 1 || res.Epoch <= p.Epoch {
		t.Fatalf("timeout abort: %+v", res)
	}
	// The other transaction is still open: the LSO moves to its start.
	if o := offsets(t, s, tp); o.LastStableOffset != 1 || o.HighWatermark != 3 {
		t.Fatalf("LSO after one of two ends: %+v", o)
	}
	_, err = s.EndTransaction(c, metastore.EndTxnRequest{TxnProducer: p, Claim: claim, Commit: true})
	wantErr(t, "commit of the timed-out transaction", err, metastore.ErrProducerFenced)
	// A second fence with the old epoch does nothing.
	_, err = s.EndTransaction(c, metastore.EndTxnRequest{TxnProducer: p, Claim: claim, Fence: true})
	wantErr(t, "second fence", err, metastore.ErrProducerFenced)
	if ex, _ := s.ExpiredTransactions(c, 10); len(ex) != 0 {
		t.Fatalf("still expired: %+v", ex)
	}
	// The open transaction's producer keeps its state through expiry.
	l := janitorLease(t, s)
	_, removed, _, err := s.ExpireProducers(c, l, 0, metastore.ProducerCursor{}, 100)
	must(t, "ExpireProducers", err)
	if removed != 1 {
		t.Fatalf("ExpireProducers removed %d, want 1 (the ended transaction's producer)", removed)
	}
	if ps, _ := s.Producers(c, tp); len(ps) != 1 || ps[0].ProducerID != fast.ProducerID {
		t.Fatalf("producers after expiry: %+v", ps)
	}
	// Idle transactional ids are forgotten.
	n, err := s.ExpireTransactionalIDs(c, 0, 10)
	must(t, "ExpireTransactionalIDs", err)
	if n != 1 {
		t.Fatalf("ExpireTransactionalIDs forgot %d, want 1 (the ongoing one stays)", n)
	}
	if _, found, _ := s.Transaction(c, "slow"); found {
		t.Fatal("an expired transactional id is still there")
	}
	if all, _ := s.ListTransactions(c); len(all) != 1 || all[0].ID != "fast" {
		t.Fatalf("ListTransactions: %+v", all)
	}
}

// testTransactionsRetention checks that retention removes the aborted
// list with the rows that held its markers, and that the limits hold.
func testTransactionsRetention(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "t", 1)
	tp := metastore.TopicPartition{Topic: top.ID}
	claim, p := txnSetup(t, s, "tx", 60000)
	for i := range 3 {
		addPartitions(t, s, claim, p, tp)
		commit(t, s, "s"+string(rune('a'+i)), txnBatch(tp, p.ProducerID, p.Epoch, int32(2*i), 2))
		endTxn(t, s, claim, p, false, false)
	}
	// Offsets 0-1 data, 2 marker, 3-4, 5, 6-7, 8.
	o := offsets(t, s, tp)
	if ab, _ := s.AbortedTransactions(c, tp, 0, o.LastStableOffset); len(ab) != 3 {
		t.Fatalf("three aborts: %+v", ab)
	}
	// Reading [3, 5) needs only the second: the walk stops at the first
	// whose LSO reaches the end.
	if ab, _ := s.AbortedTransactions(c, tp, 3, 5); len(ab) != 1 || ab[0].FirstOffset != 3 {
		t.Fatalf("aborted transactions of [3, 5): %+v", ab)
	}
	_, err := s.DeleteRecords(c, tp, 6)
	must(t, "DeleteRecords", err)
	l := janitorLease(t, s)
	retain(t, s, l, metastore.RetainRequest{PartitionID: storedPartition(t, s, tp).ID, RetainBytes: -1})
	if ab, _ := s.AbortedTransactions(c, tp, 0, 9); len(ab) != 1 || ab[0].FirstOffset != 6 {
		t.Fatalf("aborted list after retention: %+v", ab)
	}
	if sp := storedPartition(t, s, tp); sp.LastStableOffset != 9 || sp.AbortedEnd != 9 || sp.Rows != 2 {
		t.Fatalf("stored partition: %+v", sp)
	}

	// Limits: partitions and groups per transaction, staged offsets.
	top2 := createTopic(t, s, "t2", 4)
	var tps []metastore.TopicPartition
	for i := range int32(4) {
		tps = append(tps, metastore.TopicPartition{Topic: top2.ID, Partition: i})
	}
	_, err = s.AddToTransaction(c, metastore.AddToTxnRequest{TxnProducer: p, Claim: claim, Partitions: tps[:2], Groups: []string{"g"}, MaxPartitions: 3})
	must(t, "AddToTransaction at the limit", err)
	_, err = s.AddToTransaction(c, metastore.AddToTxnRequest{TxnProducer: p, Claim: claim, Partitions: tps[2:], MaxPartitions: 3})
	wantErr(t, "AddToTransaction beyond the limit", err, metastore.ErrTxnTooLarge)
	if tx, _, _ := s.Transaction(c, "tx"); len(tx.Partitions) != 2 {
		t.Fatalf("a refused add added: %+v", tx.Partitions)
	}
	offs := make([]metastore.CommittedOffset, 3)
	for i := range offs {
		offs[i] = metastore.CommittedOffset{TopicPartition: tps[i], Offset: 1, CommitTime: time.Now()}
	}
	err = s.StageTxnOffsets(c, metastore.TxnOffsetsRequest{TxnProducer: p, Group: "g", Offsets: offs, MaxOffsets: 2})
	wantErr(t, "StageTxnOffsets beyond the limit", err, metastore.ErrTxnTooLarge)
	if pend, _ := s.PendingTxnOffsets(c, "g", nil); len(pend) != 0 {
		t.Fatalf("a refused stage staged: %v", pend)
	}
	// Verify-only names what is not in the transaction.
	vr, err := s.AddToTransaction(c, metastore.AddToTxnRequest{TxnProducer: p, Claim: claim, Partitions: tps[1:3], VerifyOnly: true})
	must(t, "AddToTransaction verify only", err)
	if !slices.Equal(vr.NotInTxn, []metastore.TopicPartition{tps[2]}) {
		t.Fatalf("verify only: %+v", vr)
	}
}

// testTransactionRace ends transactions while segments with their batches
// commit: every batch either lands before its transaction's marker (and
// is in the transaction) or is refused; none lands after.
func testTransactionRace(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "t", 4)
	var tps []metastore.TopicPartition
	for i := range int32(4) {
		tps = append(tps, metastore.TopicPartition{Topic: top.ID, Partition: i})
	}
	const producers = 3
	type txnState struct {
		claim int64
		p     metastore.TxnProducer
	}
	var txns [producers]txnState
	for i := range txns {
		txns[i].claim, txns[i].p = txnSetup(t, s, "tx"+string(rune('a'+i)), 60000)
		addPartitions(t, s, txns[i].claim, txns[i].p, tps...)
	}
	type accepted struct {
		pid    int64
		tp     metastore.TopicPartition
		offset int64
	}
	results := make(chan []accepted, producers)
	errs := make(chan error, 2*producers)
	ended := make(chan struct{})
	for i := range txns {
		go func() {
			var got []accepted
			defer func() { results <- got }()
			p := txns[i].p
			for seq := int32(0); ; seq++ {
				key := "race-" + string(rune('a'+i)) + "-" + time.Now().Format("150405.000000000")
				if err := s.AddPendingSegment(c, key); err != nil {
					errs <- err
					return
				}
				var bs []metastore.BatchAppend
				for _, tp := range tps {
					bs = append(bs, txnBatch(tp, p.ProducerID, p.Epoch, seq, 1))
				}
				res, err := s.CommitSegment(c, metastore.Segment{Key: key, Size: 1, Batches: bs})
				if err != nil {
					errs <- err
					return
				}
				refused := 0
				for j, r := range res {
					switch {
					case r.Err == nil:
						got = append(got, accepted{p.ProducerID, tps[j], r.BaseOffset})
					case errors.Is(r.Err, metastore.ErrPartitionNotInTxn):
						refused++
					default:
						errs <- r.Err
						return
					}
				}
				if refused == len(tps) {
					return // every partition has its marker
				}
				if refused > 0 {
					// Some partitions got the marker before this commit:
					// their sequence is gone, stop.
					return
				}
				select {
				case <-ended:
					// One more round after the end was seen: refused.
				default:
				}
			}
		}()
	}
	// End each transaction once some batches landed.
	var markers [producers]map[metastore.TopicPartition]int64
	for i := range txns {
		deadline := time.Now().Add(10 * time.Second)
		for offsets(t, s, tps[0]).HighWatermark < int64(3*(i+1)) && time.Now().Before(deadline) {
		}
		res := endTxn(t, s, txns[i].claim, txns[i].p, i%2 == 0, false)
		if len(res.Written) != len(tps) {
			t.Fatalf("EndTransaction %d wrote %v", i, res.Written)
		}
		markers[i] = map[metastore.TopicPartition]int64{}
		for _, tp := range tps {
			bs, _, err := s.Batches(c, tp, 0, 1<<30)
			must(t, "Batches", err)
			for _, b := range bs {
				if b.IsMarker() && b.Marker().ProducerID == txns[i].p.ProducerID {
					markers[i][tp] = b.BaseOffset
				}
			}
		}
	}
	close(ended)
	for range txns {
		got := <-results
		for _, a := range got {
			i := slices.IndexFunc(txns[:], func(x txnState) bool { return x.p.ProducerID == a.pid })
			if m, ok := markers[i][a.tp]; !ok || a.offset >= m {
				t.Fatalf("batch of producer %d at %d of %v, its marker at %d (%v)", a.pid, a.offset, a.tp, m, ok)
			}
		}
	}
	select {
	case err := <-errs:
		t.Fatalf("commit: %v", err)
	default:
	}
	for _, tp := range tps {
		if o := offsets(t, s, tp); o.LastStableOffset != o.HighWatermark {
			t.Fatalf("%v: a transaction is still open: %+v", tp, o)
		}
	}
}
