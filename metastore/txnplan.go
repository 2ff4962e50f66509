package metastore

import "time"

// The decisions of the Transactions calls, shared by every backend: a
// backend reads the transactional id's row (locked), asks one of these
// what to do, and does it in the same transaction. They follow Kafka's
// TransactionCoordinator and TransactionMetadata (4.x): the epoch rules
// for retries of both transaction versions, KIP-360's producer id checks
// and the rotation of exhausted epochs.

// CheckProducer is the check every write to a transactional id makes:
// the id is known and held by producerID (ErrInvalidProducerIDMapping) at
// epoch (ErrProducerFenced).
func CheckProducer(cur *Txn, producerID int64, epoch int16) error {
	switch {
	case cur == nil, cur.ProducerID != producerID:
		return ErrInvalidProducerIDMapping
	case cur.Epoch != epoch:
		return ErrProducerFenced
	}
	return nil
}

// EndPlan is what EndTransaction does, decided by PlanEnd.
type EndPlan struct {
	// Err is the answer when nothing is written.
	Err error
	// Write is set when the transaction ends: markers carrying
	// MarkerEpoch go into its partitions (an abort with no partitions
	// writes none), and the row becomes Next.
	Write       bool
	Commit      bool
	MarkerEpoch int16
	// Rotate means Next needs a fresh producer id (the epoch is
	// exhausted): the backend allocates it and sets Next.ProducerID.
	Rotate bool
	Next   Txn
	// ProducerID and Epoch are what the producer uses next (EndTxn v5),
	// when Err is nil; with Rotate, the backend sets ProducerID.
	ProducerID int64
	Epoch      int16
}

// PlanEnd decides an EndTransaction against the id's row (nil: unknown).
func PlanEnd(cur *Txn, req EndTxnRequest, now time.Time) EndPlan {
	if cur == nil {
		return EndPlan{Err: ErrInvalidProducerIDMapping}
	}
	if req.Fence {
		return planFence(cur, req, now)
	}
	if !req.Bump {
		return planEndV1(cur, req, now)
	}
	return planEndV2(cur, req, now)
}

// planEndV1 is Kafka's endTransactionWithTV1: the epoch is never bumped,
// and a retry is recognized by the state alone.
func planEndV1(cur *Txn, req EndTxnRequest, now time.Time) EndPlan {
	if err := CheckProducer(cur, req.ProducerID, req.Epoch); err != nil {
		return EndPlan{Err: err}
	}
	retry := EndPlan{ProducerID: cur.ProducerID, Epoch: cur.Epoch}
	switch cur.State {
	case TxnOngoing:
		return ending(cur, req.Commit, cur.Epoch, cur.Epoch, false, now)
	case TxnCompleteCommit:
		if req.Commit {
			return retry
		}
	case TxnCompleteAbort:
		if !req.Commit {
			return retry
		}
	}
	return EndPlan{Err: ErrInvalidTxnState}
}

// planEndV2 is Kafka's endTransaction for transaction version 2 (KIP-890):
// every end bumps the epoch, and a retry is recognized by the epoch being
// one below the row's (or, across a rotation, by the previous producer id
// at the last epoch).
//
//	              Abort            Commit
//	              retry  current   retry  current
//	Empty         fenced bump      fenced invalid
//	CompleteAbort none   bump      invalid invalid
//	CompleteCommit invalid bump    none   invalid
func planEndV2(cur *Txn, req EndTxnRequest, now time.Time) EndPlan {
	retryOverflow := cur.PrevProducerID == req.ProducerID && req.Epoch == MaxEpoch-1 && cur.Epoch == 0
	retryBump := int32(cur.Epoch) == int32(req.Epoch)+1
	if cur.ProducerID != req.ProducerID && !retryOverflow {
		return EndPlan{Err: ErrInvalidProducerIDMapping}
	}
	valid := req.Epoch == cur.Epoch
	if cur.State == TxnCompleteCommit || cur.State == TxnCompleteAbort {
		valid = valid || retryBump || retryOverflow
	}
	if !valid {
		return EndPlan{Err: ErrProducerFenced}
	}
	isRetry := retryBump || retryOverflow
	retry := EndPlan{ProducerID: cur.ProducerID, Epoch: cur.Epoch}
	bump := func(commit bool) EndPlan {
		return ending(cur, commit, cur.Epoch+1, cur.Epoch+1, epochExhausted(cur.Epoch), now)
	}
	switch cur.State {
	case TxnOngoing:
		return bump(req.Commit)
	case TxnCompleteCommit:
		switch {
		case req.Commit && isRetry:
			return retry
		case !req.Commit && !isRetry:
			return bump(false)
		}
	case TxnCompleteAbort:
		switch {
		case !req.Commit && isRetry:
			return retry
		case !req.Commit:
			return bump(false)
		}
	case TxnEmpty:
		if !req.Commit {
			return bump(false)
		}
	}
	return EndPlan{Err: ErrInvalidTxnState}
}

// planFence is the coordinator's abort of a transaction that outlived its
// timeout, and of one a new instance's InitProducerId finds open: Kafka
// fences the producer (epoch + 1) and aborts at that epoch, whatever the
// transaction's version (measured on Kafka 4.4: the markers and the row
// carry the epoch + 1, and the next InitProducerId bumps once more). The
// request names the producer and epoch the transaction was found with;
// if they changed, nothing happens.
func planFence(cur *Txn, req EndTxnRequest, now time.Time) EndPlan {
	if err := CheckProducer(cur, req.ProducerID, req.Epoch); err != nil {
		return EndPlan{Err: err}
	}
	if cur.State != TxnOngoing {
		return EndPlan{Err: ErrInvalidTxnState}
	}
	// Epochs stay below MaxEpoch - 1 between rotations (InitProducerId
	// and transaction version 2 rotate there), so this never exceeds
	// MaxEpoch; it is clamped all the same, and the next InitProducerId
	// rotates an exhausted epoch.
	e := int16(min(int32(cur.Epoch)+1, MaxEpoch))
	return ending(cur, false, e, e, false, now)
}

// ending plans the end of cur's transaction (or of an empty one): markers
// at marker, the row Complete* at epoch next (a fresh producer id at epoch
// 0 with rotate).
func ending(cur *Txn, commit bool, marker, next int16, rotate bool, now time.Time) EndPlan {
	n := *cur
	n.State = TxnCompleteAbort
	if commit {
		n.State = TxnCompleteCommit
	}
	n.Epoch, n.LastEpoch = next, next
	if rotate {
		n.PrevProducerID, n.Epoch = cur.ProducerID, 0
	}
	n.Started, n.Updated = time.Time{}, now
	n.Partitions, n.Groups = nil, nil
	return EndPlan{Write: true, Commit: commit, MarkerEpoch: marker, Rotate: rotate, Next: n, ProducerID: n.ProducerID, Epoch: n.Epoch}
}

// InitPlan is what InitProducer does, decided by PlanInit.
type InitPlan struct {
	// Err is the answer; an Abort is written even then (Kafka has aborted
	// the transaction when its client's retry is refused).
	Err error
	// Abort, when set, ends the transaction an earlier instance left open
	// first (its markers, a fence).
	Abort *EndPlan
	// Create means the id is new: a row is inserted.
	Create bool
	// Rotate (and Create) need a fresh producer id in Next.ProducerID,
	// allocated by the backend.
	Rotate bool
	Next   Txn
}

// PlanInit decides an InitProducer against the id's row (nil: unknown):
// Kafka's prepareInitProducerIdTransit with the abort of an open
// transaction done at once (see agent/txn's deliberate differences).
func PlanInit(cur *Txn, req InitProducerRequest, now time.Time) InitPlan {
	if cur == nil {
		return InitPlan{Create: true, Next: Txn{
			ID: req.ID, ProducerID: -1, PrevProducerID: -1, Epoch: 0, LastEpoch: -1,
			State: TxnEmpty, TimeoutMs: req.TimeoutMs, Updated: now,
		}}
	}
	expected := req.ProducerID >= 0 || req.Epoch >= 0
	if expected && !(cur.Epoch == -1 || req.ProducerID == cur.ProducerID ||
		req.ProducerID == cur.PrevProducerID && epochExhausted(req.Epoch)) {
		return InitPlan{Err: ErrProducerFenced}
	}
	var p InitPlan
	c := *cur
	if c.State == TxnOngoing {
		a := planFence(cur, EndTxnRequest{TxnProducer: TxnProducer{ID: cur.ID, ProducerID: cur.ProducerID, Epoch: cur.Epoch}, Fence: true}, now)
		p.Abort = &a
		c = a.Next
	}
	n := c
	n.State, n.TimeoutMs, n.Started, n.Updated = TxnEmpty, req.TimeoutMs, time.Time{}, now
	n.Partitions, n.Groups = nil, nil
	switch {
	case epochExhausted(c.Epoch) && (!expected || req.Epoch == c.Epoch):
		// Kafka's prepareProducerIdRotation.
		p.Rotate = true
		n.PrevProducerID, n.Epoch, n.LastEpoch = c.ProducerID, 0, -1
		if expected {
			n.LastEpoch = c.Epoch
		}
	case !expected:
		n.Epoch, n.LastEpoch = c.Epoch+1, -1
	case c.Epoch == -1 || req.Epoch == c.Epoch:
		n.Epoch, n.LastEpoch = c.Epoch+1, c.Epoch
	case req.Epoch == c.LastEpoch:
		// A retry of a bump whose answer the producer never got.
	default:
		p.Err = ErrProducerFenced
		return p
	}
	p.Next = n
	return p
}
