package metastore

import (
	"errors"
	"testing"
	"time"
)

func txnAt(state TxnState, pid int64, epoch int16) *Txn {
	return &Txn{ID: "t", ProducerID: pid, PrevProducerID: -1, Epoch: epoch, LastEpoch: -1, State: state, TimeoutMs: 60000}
}

func endReq(pid int64, epoch int16, commit, bump bool) EndTxnRequest {
	return EndTxnRequest{TxnProducer: TxnProducer{ID: "t", ProducerID: pid, Epoch: epoch}, Commit: commit, Bump: bump}
}

// TestPlanEndV2Table checks Kafka's table for transaction version 2
// (TransactionCoordinator.endTransaction): Retry is the epoch one below
// the row's, Current the row's.
func TestPlanEndV2Table(t *testing.T) {
	const pid, e = 7, 5
	type want struct {
		err    error
		write  bool
		answer int16 // epoch answered when err is nil
	}
	none := want{answer: e} // success, nothing written
	bump := want{write: true, answer: e + 1}
	for _, tc := range []struct {
		state         TxnState
		commit, retry bool
		want          want
	}{
		{TxnEmpty, false, true, want{err: ErrProducerFenced}},
		{TxnEmpty, false, false, bump},
		{TxnEmpty, true, true, want{err: ErrProducerFenced}},
		{TxnEmpty, true, false, want{err: ErrInvalidTxnState}},
		{TxnCompleteAbort, false, true, none},
		{TxnCompleteAbort, false, false, bump},
		{TxnCompleteAbort, true, true, want{err: ErrInvalidTxnState}},
		{TxnCompleteAbort, true, false, want{err: ErrInvalidTxnState}},
		{TxnCompleteCommit, false, true, want{err: ErrInvalidTxnState}},
		{TxnCompleteCommit, false, false, bump},
		{TxnCompleteCommit, true, true, none},
		{TxnCompleteCommit, true, false, want{err: ErrInvalidTxnState}},
		{TxnOngoing, true, false, bump},
		{TxnOngoing, false, false, bump},
		{TxnOngoing, true, true, want{err: ErrProducerFenced}},
	} {
		reqEpoch := int16(e)
		if tc.retry {
			reqEpoch = e - 1
		}
		p := PlanEnd(txnAt(tc.state, pid, e), endReq(pid, reqEpoch, tc.commit, true), time.Now())
		name := string(tc.state)
		if !errors.Is(p.Err, tc.want.err) || p.Write != tc.want.write {
			t.Errorf("%s commit=%v retry=%v: err %v write %v, want %v %v", name, tc.commit, tc.retry, p.Err, p.Write, tc.want.err, tc.want.write)
			continue
		}
		if p.Err == nil && p.Epoch != tc.want.answer {
			t.Errorf("%s commit=%v retry=%v: answers epoch %d, want %d", name, tc.commit, tc.retry, p.Epoch, tc.want.answer)
		}
		if p.Write {
			wantState := TxnCompleteAbort
			if tc.commit {
				wantState = TxnCompleteCommit
			}
			if p.Next.State != wantState || p.MarkerEpoch != e+1 || p.Next.Epoch != e+1 || p.Commit != tc.commit {
				t.Errorf("%s commit=%v: next %+v marker epoch %d", name, tc.commit, p.Next, p.MarkerEpoch)
			}
		}
	}
}

func TestPlanEndV1(t *testing.T) {
	const pid, e = 7, 5
	for _, tc := range []struct {
		state  TxnState
		commit bool
		epoch  int16
		err    error
		write  bool
	}{
		{TxnOngoing, true, e, nil, true},
		{TxnOngoing, false, e, nil, true},
		{TxnOngoing, true, e - 1, ErrProducerFenced, false},
		{TxnOngoing, true, e + 1, ErrProducerFenced, false},
		{TxnEmpty, true, e, ErrInvalidTxnState, false},
		{TxnEmpty, false, e, ErrInvalidTxnState, false},
		{TxnCompleteCommit, true, e, nil, false},
		{TxnCompleteCommit, false, e, ErrInvalidTxnState, false},
		{TxnCompleteAbort, false, e, nil, false},
		{TxnCompleteAbort, true, e, ErrInvalidTxnState, false},
	} {
		p := PlanEnd(txnAt(tc.state, pid, e), endReq(pid, tc.epoch, tc.commit, false), time.Now())
		if !errors.Is(p.Err, tc.err) || p.Write != tc.write {
			t.Errorf("%s commit=%v epoch %d: err %v write %v, want %v %v", tc.state, tc.commit, tc.epoch, p.Err, p.Write, tc.err, tc.write)
		}
		if p.Write && (p.MarkerEpoch != e || p.Next.Epoch != e) {
			t.Errorf("%s: version 1 changed the epoch: marker %d next %d", tc.state, p.MarkerEpoch, p.Next.Epoch)
		}
	}
	if p := PlanEnd(txnAt(TxnOngoing, 7, 5), endReq(8, 5, true, false), time.Now()); !errors.Is(p.Err, ErrInvalidProducerIDMapping) {
		t.Errorf("another producer id: %v", p.Err)
	}
	if p := PlanEnd(nil, endReq(8, 5, true, false), time.Now()); !errors.Is(p.Err, ErrInvalidProducerIDMapping) {
		t.Errorf("unknown transactional id: %v", p.Err)
	}
}

func TestPlanEndV2Rotation(t *testing.T) {
	cur := txnAt(TxnOngoing, 7, MaxEpoch-1)
	p := PlanEnd(cur, endReq(7, MaxEpoch-1, true, true), time.Now())
	if !p.Write || !p.Rotate || p.MarkerEpoch != MaxEpoch || p.Next.Epoch != 0 || p.Next.PrevProducerID != 7 {
		t.Fatalf("exhausted epoch: %+v", p)
	}
	// The retry of that EndTxn comes with the old producer id at the old
	// epoch and finds the new id at epoch 0.
	rotated := p.Next
	rotated.ProducerID = 8
	r := PlanEnd(&rotated, endReq(7, MaxEpoch-1, true, true), time.Now())
	if r.Err != nil || r.Write || r.ProducerID != 8 || r.Epoch != 0 {
		t.Fatalf("retry across the rotation: %+v", r)
	}
}

func TestPlanFence(t *testing.T) {
	cur := txnAt(TxnOngoing, 7, 5)
	p := PlanEnd(cur, EndTxnRequest{TxnProducer: TxnProducer{ID: "t", ProducerID: 7, Epoch: 5}, Fence: true}, time.Now())
	if !p.Write || p.Commit || p.MarkerEpoch != 6 || p.Next.Epoch != 6 || p.Next.State != TxnCompleteAbort {
		t.Fatalf("fence: %+v", p)
	}
	// Found expired at epoch 5, but the producer moved on meanwhile.
	cur.Epoch = 6
	if p := PlanEnd(cur, EndTxnRequest{TxnProducer: TxnProducer{ID: "t", ProducerID: 7, Epoch: 5}, Fence: true}, time.Now()); !errors.Is(p.Err, ErrProducerFenced) || p.Write {
		t.Fatalf("fence of a changed transaction: %+v", p)
	}
	cur.Epoch, cur.State = 5, TxnCompleteCommit
	if p := PlanEnd(cur, EndTxnRequest{TxnProducer: TxnProducer{ID: "t", ProducerID: 7, Epoch: 5}, Fence: true}, time.Now()); p.Write {
		t.Fatalf("fence of an ended transaction wrote: %+v", p)
	}
}

func TestPlanInit(t *testing.T) {
	now := time.Now()
	init := func(pid int64, epoch int16) InitProducerRequest {
		return InitProducerRequest{ID: "t", TimeoutMs: 1000, ProducerID: pid, Epoch: epoch}
	}
	// A new id.
	p := PlanInit(nil, init(-1, -1), now)
	if !p.Create || p.Err != nil || p.Next.Epoch != 0 || p.Next.State != TxnEmpty || p.Next.TimeoutMs != 1000 {
		t.Fatalf("new id: %+v", p)
	}
	// An idle id: the epoch is bumped.
	p = PlanInit(txnAt(TxnCompleteCommit, 7, 3), init(-1, -1), now)
	if p.Err != nil || p.Create || p.Rotate || p.Abort != nil || p.Next.Epoch != 4 || p.Next.State != TxnEmpty {
		t.Fatalf("idle id: %+v", p)
	}
	// An open transaction is aborted with a fence first (markers at the
	// epoch + 1, as Kafka 4.4 writes them), then bumped.
	p = PlanInit(txnAt(TxnOngoing, 7, 3), init(-1, -1), now)
	if p.Err != nil || p.Abort == nil || !p.Abort.Write || p.Abort.Commit || p.Abort.MarkerEpoch != 4 || p.Next.Epoch != 5 {
		t.Fatalf("open transaction: %+v abort %+v", p, p.Abort)
	}
	// KIP-360: the current producer bumps its own epoch...
	p = PlanInit(txnAt(TxnCompleteAbort, 7, 3), init(7, 3), now)
	if p.Err != nil || p.Next.Epoch != 4 || p.Next.LastEpoch != 3 {
		t.Fatalf("KIP-360 bump: %+v", p)
	}
	// ... and its retry gets the same epoch back.
	bumped := p.Next
	p = PlanInit(&bumped, init(7, 3), now)
	if p.Err != nil || p.Next.Epoch != 4 {
		t.Fatalf("KIP-360 retry: %+v", p)
	}
	// Another producer id, or a stale epoch, is fenced.
	if p := PlanInit(txnAt(TxnCompleteAbort, 7, 3), init(8, 3), now); !errors.Is(p.Err, ErrProducerFenced) {
		t.Fatalf("other producer id: %+v", p)
	}
	if p := PlanInit(txnAt(TxnCompleteAbort, 7, 3), init(7, 1), now); !errors.Is(p.Err, ErrProducerFenced) {
		t.Fatalf("stale epoch: %+v", p)
	}
	// An open transaction and a KIP-360 request: aborted, then fenced (a
	// new instance took over), as Kafka answers the retry.
	p = PlanInit(txnAt(TxnOngoing, 7, 3), init(7, 3), now)
	if !errors.Is(p.Err, ErrProducerFenced) || p.Abort == nil || !p.Abort.Write {
		t.Fatalf("KIP-360 with an open transaction: %+v", p)
	}
	// An exhausted epoch rotates the producer id.
	p = PlanInit(txnAt(TxnEmpty, 7, MaxEpoch-1), init(-1, -1), now)
	if p.Err != nil || !p.Rotate || p.Next.Epoch != 0 || p.Next.PrevProducerID != 7 {
		t.Fatalf("exhausted epoch: %+v", p)
	}
}

func TestCheckProducer(t *testing.T) {
	cur := txnAt(TxnOngoing, 7, 3)
	for _, tc := range []struct {
		cur   *Txn
		pid   int64
		epoch int16
		want  error
	}{
		{cur, 7, 3, nil},
		{nil, 7, 3, ErrInvalidProducerIDMapping},
		{cur, 8, 3, ErrInvalidProducerIDMapping},
		{cur, 7, 2, ErrProducerFenced},
		{cur, 7, 4, ErrProducerFenced},
	} {
		if err := CheckProducer(tc.cur, tc.pid, tc.epoch); !errors.Is(err, tc.want) {
			t.Errorf("CheckProducer(%d, %d): %v, want %v", tc.pid, tc.epoch, err, tc.want)
		}
	}
}

func TestMarkerRow(t *testing.T) {
	m := Marker{ProducerID: 1 << 40, ProducerEpoch: MaxEpoch, Commit: true, CoordinatorEpoch: 1<<31 - 1}
	b := MarkerRow(99, m, 1234)
	if got := b.Marker(); got != m || b.BaseOffset != 99 || b.LastOffset != 99 || b.MaxTimestamp != 1234 || b.Len != MarkerBatchLen || !b.IsMarker() {
		t.Fatalf("round trip: %+v -> %+v -> %+v", m, b, got)
	}
	m = Marker{ProducerID: 3, ProducerEpoch: 0}
	if got := MarkerRow(0, m, 0).Marker(); got != m {
		t.Fatalf("abort round trip: %+v", got)
	}
}
