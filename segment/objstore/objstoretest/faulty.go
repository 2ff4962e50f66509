package objstoretest

import (
	"context"
	"errors"
	"sync"

	"github.com/siltdata/silt/segment/objstore"
)

// Op names a Bucket operation for Faulty's hook.
type Op string

// The operations Faulty can fail.
const (
	OpPut    Op = "put"
	OpGet    Op = "get"
	OpDelete Op = "delete"
	OpList   Op = "list"
)

// ErrInjected is the error Faulty returns when a test asks for a failure
// without naming one (Fail… with a nil error).
var ErrInjected = errors.New("objstoretest: injected failure")

// Faulty wraps a Bucket and fails operations on demand, for tests of what
// silt does when object storage breaks. It is safe for concurrent use:
// tests flip failures on and off while agents run.
//
//	f := objstoretest.NewFaulty(bucket)
//	f.FailPuts(nil)  // every Put now fails with ErrInjected
//	...
//	f.Heal()         // back to normal
type Faulty struct {
	objstore.Bucket

	// mu guards every field below.
	mu              sync.Mutex
	failPuts        error
	failPutsAfter   error // Put stores the object, then reports this error
	failGets        error
	failDeletes     error
	failLists       error
	hook            func(ctx context.Context, op Op, key string) error
	puts, gets      int
	deletes, lists  int
	failedPutsCount int
}

// NewFaulty returns b wrapped, with no failures armed.
func NewFaulty(b objstore.Bucket) *Faulty { return &Faulty{Bucket: b} }

func orInjected(err error) error {
	if err == nil {
		return ErrInjected
	}
	return err
}

// FailPuts makes every Put fail with err (ErrInjected when nil) without
// storing anything, until Heal.
func (f *Faulty) FailPuts(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failPuts = orInjected(err)
}

// FailPutsAfterUpload makes every Put store the object and then return err
// (ErrInjected when nil): the "uploaded but the acknowledgement was lost"
// case, which leaves an orphan object behind.
func (f *Faulty) FailPutsAfterUpload(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failPutsAfter = orInjected(err)
}

// FailGets makes every GetRange fail with err (ErrInjected when nil).
func (f *Faulty) FailGets(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failGets = orInjected(err)
}

// FailDeletes makes every Delete fail with err (ErrInjected when nil).
func (f *Faulty) FailDeletes(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failDeletes = orInjected(err)
}

// FailLists makes every List fail with err (ErrInjected when nil).
func (f *Faulty) FailLists(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failLists = orInjected(err)
}

// SetHook installs fn, called before every operation (after the Fail…
// switches pass it). A non-nil result fails the operation with that error
// without reaching the bucket. fn may block, e.g. on a channel, to hold
// an upload in flight; it should honour ctx. nil removes the hook.
func (f *Faulty) SetHook(fn func(ctx context.Context, op Op, key string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = fn
}

// Heal disarms every failure and removes the hook.
func (f *Faulty) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failPuts, f.failPutsAfter, f.failGets, f.failDeletes, f.failLists, f.hook = nil, nil, nil, nil, nil, nil
}

// Counts returns how many operations of each kind were attempted, failed
// or not.
func (f *Faulty) Counts() (puts, gets, deletes, lists int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.puts, f.gets, f.deletes, f.lists
}

// FailedPuts returns how many Puts returned an injected error.
func (f *Faulty) FailedPuts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failedPutsCount
}

// before counts op and returns the injected error for it, if any; after is
// the error to return after a successful Put.
func (f *Faulty) before(ctx context.Context, op Op, key string) (err, after error) {
	f.mu.Lock()
	hook := f.hook
	switch op {
	case OpPut:
		f.puts++
		err, after = f.failPuts, f.failPutsAfter
	case OpGet:
		f.gets++
		err = f.failGets
	case OpDelete:
		f.deletes++
		err = f.failDeletes
	case OpList:
		f.lists++
		err = f.failLists
	}
	f.mu.Unlock()
	if err == nil && hook != nil {
		// Called without the lock so a blocking hook does not stall
		// other operations or the test flipping switches.
		err = hook(ctx, op, key)
	}
	if op == OpPut && (err != nil || after != nil) {
		f.mu.Lock()
		f.failedPutsCount++
		f.mu.Unlock()
	}
	return err, after
}

func (f *Faulty) Put(ctx context.Context, key string, body []byte) error {
	err, after := f.before(ctx, OpPut, key)
	if err != nil {
		return err
	}
	if err := f.Bucket.Put(ctx, key, body); err != nil {
		return err
	}
	return after
}

func (f *Faulty) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	if err, _ := f.before(ctx, OpGet, key); err != nil {
		return nil, err
	}
	return f.Bucket.GetRange(ctx, key, offset, length)
}

func (f *Faulty) Delete(ctx context.Context, key string) error {
	if err, _ := f.before(ctx, OpDelete, key); err != nil {
		return err
	}
	return f.Bucket.Delete(ctx, key)
}

func (f *Faulty) List(ctx context.Context, prefix string, fn func(objstore.Attrs) error) error {
	if err, _ := f.before(ctx, OpList, prefix); err != nil {
		return err
	}
	return f.Bucket.List(ctx, prefix, fn)
}

var _ objstore.Bucket = (*Faulty)(nil)
