package objstoretest_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/segment/objstore/objstoretest"
)

func newFaulty(t *testing.T) *objstoretest.Faulty {
	fs, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return objstoretest.NewFaulty(fs)
}

// A healed Faulty is a correct Bucket.
func TestFaultyPassesAcceptance(t *testing.T) {
	objstoretest.AcceptanceTest(t, func(t *testing.T) objstore.Bucket { return newFaulty(t) })
}

func TestFaultyFailures(t *testing.T) {
	ctx := t.Context()
	f := newFaulty(t)
	boom := errors.New("boom")

	f.FailPuts(boom)
	if err := f.Put(ctx, "k", []byte("v")); !errors.Is(err, boom) {
		t.Fatalf("Put: %v, want boom", err)
	}
	if _, err := f.GetRange(ctx, "k", 0, -1); !f.IsNotFound(err) {
		t.Fatalf("a failed Put stored the object: %v", err)
	}

	f.Heal()
	f.FailPutsAfterUpload(nil)
	if err := f.Put(ctx, "k", []byte("v")); !errors.Is(err, objstoretest.ErrInjected) {
		t.Fatalf("Put: %v, want ErrInjected", err)
	}
	if got, err := f.GetRange(ctx, "k", 0, -1); err != nil || string(got) != "v" {
		t.Fatalf("Put with a lost acknowledgement did not store: %q, %v", got, err)
	}

	f.Heal()
	f.FailGets(nil)
	f.FailDeletes(nil)
	f.FailLists(nil)
	if _, err := f.GetRange(ctx, "k", 0, -1); !errors.Is(err, objstoretest.ErrInjected) {
		t.Fatalf("GetRange: %v", err)
	}
	if err := f.Delete(ctx, "k"); !errors.Is(err, objstoretest.ErrInjected) {
		t.Fatalf("Delete: %v", err)
	}
	if err := f.List(ctx, "", func(objstore.Attrs) error { return nil }); !errors.Is(err, objstoretest.ErrInjected) {
		t.Fatalf("List: %v", err)
	}
	if f.IsNotFound(objstoretest.ErrInjected) {
		t.Fatal("an injected failure reads as not-found")
	}

	f.Heal()
	if _, err := f.GetRange(ctx, "k", 0, -1); err != nil {
		t.Fatalf("after Heal: %v", err)
	}
	puts, gets, deletes, lists := f.Counts()
	if puts != 2 || gets != 4 || deletes != 1 || lists != 1 || f.FailedPuts() != 2 {
		t.Fatalf("counts = %d %d %d %d failed puts %d", puts, gets, deletes, lists, f.FailedPuts())
	}
}

// TestFaultyHookHoldsUpload uses the hook to hold a Put in flight, the way
// a test would freeze an upload while it checks nothing was acknowledged.
func TestFaultyHookHoldsUpload(t *testing.T) {
	ctx := t.Context()
	f := newFaulty(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	f.SetHook(func(ctx context.Context, op objstoretest.Op, key string) error {
		if op != objstoretest.OpPut || key != "held" {
			return nil
		}
		close(entered)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	var wg sync.WaitGroup
	var putErr error
	wg.Go(func() { putErr = f.Put(ctx, "held", []byte("v")) })
	<-entered
	// Other operations go on while the Put is held.
	if err := f.Put(ctx, "other", []byte("o")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.GetRange(ctx, "held", 0, -1); !f.IsNotFound(err) {
		t.Fatalf("held Put is visible early: %v", err)
	}
	close(release)
	wg.Wait()
	if putErr != nil {
		t.Fatal(putErr)
	}
	if got, err := f.GetRange(ctx, "held", 0, -1); err != nil || string(got) != "v" {
		t.Fatalf("after release: %q, %v", got, err)
	}
}
