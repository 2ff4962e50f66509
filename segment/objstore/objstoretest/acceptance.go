// Package objstoretest holds what tests need around object storage: the
// acceptance suite every objstore.Bucket implementation passes, and Faulty,
// a decorator that injects failures for other packages' failure tests.
package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/siltdata/silt/segment/objstore"
)

// AcceptanceTest runs the Bucket contract against buckets from newBucket,
// one fresh empty bucket per subtest.
func AcceptanceTest(t *testing.T, newBucket func(t *testing.T) objstore.Bucket) {
	tests := []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, b objstore.Bucket)
	}{
		{"PutGetWhole", testPutGetWhole},
		{"Ranges", testRanges},
		{"Overwrite", testOverwrite},
		{"NotFound", testNotFound},
		{"DeleteIdempotent", testDelete},
		{"ListOrderAndPrefix", testList},
		{"ListStopsOnCallbackError", testListStop},
		{"EmptyObject", testEmptyObject},
		{"ConcurrentPuts", testConcurrentPuts},
		{"KeysWithSlashes", testSlashes},
		{"LargeObject", testLarge},
		{"InvalidArguments", testInvalid},
		{"CanceledContext", testCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			b := newBucket(t)
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, ctx, b)
		})
	}
}

func put(t *testing.T, ctx context.Context, b objstore.Bucket, key string, body []byte) {
	t.Helper()
	if err := b.Put(ctx, key, body); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func get(t *testing.T, ctx context.Context, b objstore.Bucket, key string, off, n int64) []byte {
	t.Helper()
	got, err := b.GetRange(ctx, key, off, n)
	if err != nil {
		t.Fatalf("GetRange(%q, %d, %d): %v", key, off, n, err)
	}
	return got
}

func list(t *testing.T, ctx context.Context, b objstore.Bucket, prefix string) []objstore.Attrs {
	t.Helper()
	var out []objstore.Attrs
	if err := b.List(ctx, prefix, func(a objstore.Attrs) error {
		out = append(out, a)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return out
}

func keys(as []objstore.Attrs) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.Key)
	}
	return out
}

func testPutGetWhole(t *testing.T, ctx context.Context, b objstore.Bucket) {
	body := []byte("the quick brown fox jumps over the lazy dog")
	before := time.Now().Add(-time.Minute)
	put(t, ctx, b, "obj", body)
	if got := get(t, ctx, b, "obj", 0, -1); !bytes.Equal(got, body) {
		t.Fatalf("whole object = %q, want %q", got, body)
	}
	if got := get(t, ctx, b, "obj", 0, int64(len(body))); !bytes.Equal(got, body) {
		t.Fatalf("exact-length range = %q, want %q", got, body)
	}
	as := list(t, ctx, b, "")
	if len(as) != 1 || as[0].Key != "obj" || as[0].Size != int64(len(body)) {
		t.Fatalf("List = %+v, want one object obj of %d bytes", as, len(body))
	}
	if as[0].LastModified.Before(before) || as[0].LastModified.After(time.Now().Add(time.Minute)) {
		t.Fatalf("LastModified %v is not about now", as[0].LastModified)
	}
}

func testRanges(t *testing.T, ctx context.Context, b objstore.Bucket) {
	body := []byte("0123456789")
	put(t, ctx, b, "r", body)
	cases := []struct {
		off, n int64
		want   string
	}{
		{0, 1, "0"},
		{3, 4, "3456"},
		{9, 1, "9"},
		{5, -1, "56789"},
		{9, -1, "9"},
		{7, 100, "789"}, // past the end: the bytes that exist
		{0, 10, "0123456789"},
		{0, 11, "0123456789"},
		{4, 0, ""},
	}
	for _, c := range cases {
		got := get(t, ctx, b, "r", c.off, c.n)
		if string(got) != c.want {
			t.Errorf("GetRange(%d, %d) = %q, want %q", c.off, c.n, got, c.want)
		}
	}
	for _, off := range []int64{10, 11, 1000} {
		for _, n := range []int64{-1, 1, 5} {
			_, err := b.GetRange(ctx, "r", off, n)
			if !errors.Is(err, objstore.ErrRangeNotSatisfiable) {
				t.Errorf("GetRange(%d, %d) past the end: err %v, want ErrRangeNotSatisfiable", off, n, err)
			}
			if b.IsNotFound(err) {
				t.Errorf("GetRange(%d, %d) past the end: IsNotFound is true", off, n)
			}
		}
	}
}

func testOverwrite(t *testing.T, ctx context.Context, b objstore.Bucket) {
	put(t, ctx, b, "k", []byte("first version, longer"))
	put(t, ctx, b, "k", []byte("second"))
	if got := get(t, ctx, b, "k", 0, -1); string(got) != "second" {
		t.Fatalf("after overwrite = %q, want second", got)
	}
	as := list(t, ctx, b, "")
	if len(as) != 1 || as[0].Size != 6 {
		t.Fatalf("List after overwrite = %+v, want one object of 6 bytes", as)
	}
}

func testNotFound(t *testing.T, ctx context.Context, b objstore.Bucket) {
	put(t, ctx, b, "present", []byte("x"))
	for _, key := range []string{"missing", "dir/missing", "presen", "present/child"} {
		for _, r := range [][2]int64{{0, -1}, {0, 1}, {5, 3}} {
			_, err := b.GetRange(ctx, key, r[0], r[1])
			if err == nil {
				t.Fatalf("GetRange(%q, %d, %d) of a missing object: no error", key, r[0], r[1])
			}
			if !b.IsNotFound(err) {
				t.Fatalf("GetRange(%q) of a missing object: IsNotFound(%v) is false", key, err)
			}
			if !b.IsNotFound(fmt.Errorf("wrapped: %w", err)) {
				t.Fatalf("IsNotFound is false for a wrapped not-found error")
			}
		}
	}
	if b.IsNotFound(nil) {
		t.Fatal("IsNotFound(nil) is true")
	}
	if b.IsNotFound(errors.New("some other error")) {
		t.Fatal("IsNotFound(other error) is true")
	}
}

func testDelete(t *testing.T, ctx context.Context, b objstore.Bucket) {
	put(t, ctx, b, "a", []byte("1"))
	put(t, ctx, b, "b", []byte("2"))
	if err := b.Delete(ctx, "a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := b.GetRange(ctx, "a", 0, -1); !b.IsNotFound(err) {
		t.Fatalf("GetRange after Delete: err %v, want not found", err)
	}
	if err := b.Delete(ctx, "a"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if err := b.Delete(ctx, "never-existed"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	if got := keys(list(t, ctx, b, "")); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("List after Delete = %v, want [b]", got)
	}
	if got := get(t, ctx, b, "b", 0, -1); string(got) != "2" {
		t.Fatalf("other object = %q after Delete", got)
	}
}

func testList(t *testing.T, ctx context.Context, b objstore.Bucket) {
	// Put in shuffled order; the names test that order is by whole key
	// ("a-c" < "a/b" < "a0" since '-' < '/' < '0'), not by walking.
	all := []string{"a-c", "a/b", "a/c", "a/d/e", "a0", "b", "ba", "seg/0001", "seg/0002", "seg/0010", "segments/x"}
	shuffled := slices.Clone(all)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for i, k := range shuffled {
		put(t, ctx, b, k, bytes.Repeat([]byte{'x'}, i))
	}
	if got := keys(list(t, ctx, b, "")); !slices.Equal(got, all) {
		t.Fatalf("List(\"\") = %v\nwant %v", got, all)
	}
	for _, c := range []struct {
		prefix string
		want   []string
	}{
		{"a", []string{"a-c", "a/b", "a/c", "a/d/e", "a0"}},
		{"a/", []string{"a/b", "a/c", "a/d/e"}},
		{"a/d", []string{"a/d/e"}},
		{"a/d/", []string{"a/d/e"}},
		{"b", []string{"b", "ba"}},
		{"seg", []string{"seg/0001", "seg/0002", "seg/0010", "segments/x"}},
		{"seg/", []string{"seg/0001", "seg/0002", "seg/0010"}},
		{"seg/000", []string{"seg/0001", "seg/0002"}},
		{"zzz", nil},
		{"nope/", nil},
	} {
		if got := keys(list(t, ctx, b, c.prefix)); !slices.Equal(got, c.want) {
			t.Errorf("List(%q) = %v, want %v", c.prefix, got, c.want)
		}
	}
	sizes := map[string]int64{}
	for i, k := range shuffled {
		sizes[k] = int64(i)
	}
	for _, a := range list(t, ctx, b, "") {
		if a.Size != sizes[a.Key] {
			t.Errorf("List size of %q = %d, want %d", a.Key, a.Size, sizes[a.Key])
		}
	}
}

func testListStop(t *testing.T, ctx context.Context, b objstore.Bucket) {
	for _, k := range []string{"k1", "k2", "k3"} {
		put(t, ctx, b, k, []byte(k))
	}
	stop := errors.New("stop here")
	var seen []string
	err := b.List(ctx, "", func(a objstore.Attrs) error {
		seen = append(seen, a.Key)
		if a.Key == "k2" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("List returned %v, want the callback's error", err)
	}
	if !slices.Equal(seen, []string{"k1", "k2"}) {
		t.Fatalf("List called back for %v after the error, want [k1 k2]", seen)
	}
}

func testEmptyObject(t *testing.T, ctx context.Context, b objstore.Bucket) {
	put(t, ctx, b, "empty", nil)
	for _, n := range []int64{-1, 0, 10} {
		got, err := b.GetRange(ctx, "empty", 0, n)
		if err != nil || len(got) != 0 {
			t.Fatalf("GetRange(empty, 0, %d) = %q, %v; want no bytes, no error", n, got, err)
		}
	}
	if _, err := b.GetRange(ctx, "empty", 1, -1); !errors.Is(err, objstore.ErrRangeNotSatisfiable) {
		t.Fatalf("GetRange(empty, 1, -1): err %v, want ErrRangeNotSatisfiable", err)
	}
	as := list(t, ctx, b, "")
	if len(as) != 1 || as[0].Key != "empty" || as[0].Size != 0 {
		t.Fatalf("List = %+v, want one empty object", as)
	}
}

func testConcurrentPuts(t *testing.T, ctx context.Context, b objstore.Bucket) {
	const writers, perWriter = 8, 8
	bodyOf := func(w, i int) []byte { return bytes.Repeat([]byte{byte('a' + w)}, 1000+i) }
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter*2)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				key := fmt.Sprintf("c/%d/%d", w, i)
				if err := b.Put(ctx, key, bodyOf(w, i)); err != nil {
					errs <- fmt.Errorf("Put(%s): %w", key, err)
				}
				// Everyone also writes one shared key: the last write wins
				// whole, never a mix of two.
				if err := b.Put(ctx, "c/shared", bodyOf(w, 0)); err != nil {
					errs <- fmt.Errorf("Put(c/shared): %w", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	for w := range writers {
		for i := range perWriter {
			key := fmt.Sprintf("c/%d/%d", w, i)
			if got := get(t, ctx, b, key, 0, -1); !bytes.Equal(got, bodyOf(w, i)) {
				t.Fatalf("%s holds %d bytes that differ from the %d written", key, len(got), 1000+i)
			}
		}
	}
	shared := get(t, ctx, b, "c/shared", 0, -1)
	if len(shared) != 1000 || !bytes.Equal(shared, bytes.Repeat(shared[:1], 1000)) {
		t.Fatalf("shared key holds a torn object (%d bytes)", len(shared))
	}
	if n := len(list(t, ctx, b, "c/")); n != writers*perWriter+1 {
		t.Fatalf("List(c/) found %d objects, want %d", n, writers*perWriter+1)
	}
}

func testSlashes(t *testing.T, ctx context.Context, b objstore.Bucket) {
	key := "segments/2026/11/22/agent-1/000000000042.seg"
	put(t, ctx, b, key, []byte("deep"))
	if got := get(t, ctx, b, key, 1, 2); string(got) != "ee" {
		t.Fatalf("GetRange of deep key = %q, want ee", got)
	}
	if got := keys(list(t, ctx, b, "segments/2026/")); !slices.Equal(got, []string{key}) {
		t.Fatalf("List = %v, want [%s]", got, key)
	}
	if err := b.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got := list(t, ctx, b, ""); len(got) != 0 {
		t.Fatalf("List after deleting the only object = %v", keys(got))
	}
}

func testLarge(t *testing.T, ctx context.Context, b objstore.Bucket) {
	body := make([]byte, 3<<20+123)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range body {
		body[i] = byte(r.Uint32())
	}
	put(t, ctx, b, "large", body)
	if got := get(t, ctx, b, "large", 0, -1); !bytes.Equal(got, body) {
		t.Fatal("whole large object differs")
	}
	off, n := int64(1<<20+17), int64(1<<20)
	if got := get(t, ctx, b, "large", off, n); !bytes.Equal(got, body[off:off+n]) {
		t.Fatal("range of large object differs")
	}
	if got := get(t, ctx, b, "large", int64(len(body))-5, -1); !bytes.Equal(got, body[len(body)-5:]) {
		t.Fatal("tail of large object differs")
	}
}

func testInvalid(t *testing.T, ctx context.Context, b objstore.Bucket) {
	put(t, ctx, b, "k", []byte("abc"))
	if err := b.Put(ctx, "", []byte("x")); err == nil {
		t.Error("Put with an empty key: no error")
	}
	for _, r := range [][2]int64{{-1, 1}, {0, -2}} {
		_, err := b.GetRange(ctx, "k", r[0], r[1])
		if err == nil || b.IsNotFound(err) {
			t.Errorf("GetRange(k, %d, %d): err %v, want an error that is not not-found", r[0], r[1], err)
		}
	}
}

func testCanceled(t *testing.T, ctx context.Context, b objstore.Bucket) {
	put(t, ctx, b, "k", []byte("abc"))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Put(cctx, "k2", []byte("x")); err == nil {
		t.Error("Put with a canceled context: no error")
	}
	if _, err := b.GetRange(cctx, "k", 0, -1); err == nil || b.IsNotFound(err) {
		t.Errorf("GetRange with a canceled context: err %v", err)
	}
	if got := get(t, ctx, b, "k", 0, -1); string(got) != "abc" {
		t.Fatalf("after canceled calls k = %q", got)
	}
}
