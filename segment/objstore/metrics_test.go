package objstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/segment/objstore/objstoretest"
)

func TestMetrics(t *testing.T) {
	ctx := t.Context()
	fs, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	faulty := objstoretest.NewFaulty(fs)
	reg := prometheus.NewPedanticRegistry()
	b := objstore.WithMetrics(faulty, reg)

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.Put(ctx, "a", []byte("hello")))
	must(b.Put(ctx, "b", []byte("world!")))
	if _, err := b.GetRange(ctx, "a", 1, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetRange(ctx, "missing", 0, -1); !b.IsNotFound(err) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := b.GetRange(ctx, "a", 99, -1); !errors.Is(err, objstore.ErrRangeNotSatisfiable) {
		t.Fatalf("past end: %v", err)
	}
	faulty.FailPuts(nil)
	if err := b.Put(ctx, "c", []byte("x")); !errors.Is(err, objstoretest.ErrInjected) {
		t.Fatalf("failed put: %v", err)
	}
	faulty.FailGets(nil)
	if _, err := b.GetRange(ctx, "a", 0, -1); err == nil {
		t.Fatal("failed get: no error")
	}
	faulty.Heal()
	must(b.Delete(ctx, "b"))
	stop := errors.New("stop")
	if err := b.List(ctx, "", func(objstore.Attrs) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("list: %v", err)
	}

	want := `
# HELP silt_objstore_bytes_total Object bytes transferred by put and get.
# TYPE silt_objstore_bytes_total counter
silt_objstore_bytes_total{op="get"} 3
silt_objstore_bytes_total{op="put"} 11
# HELP silt_objstore_request_failures_total Object store operations that failed, by operation (not-found reads excluded).
# TYPE silt_objstore_request_failures_total counter
silt_objstore_request_failures_total{op="delete"} 0
silt_objstore_request_failures_total{op="get"} 1
silt_objstore_request_failures_total{op="list"} 0
silt_objstore_request_failures_total{op="put"} 1
# HELP silt_objstore_requests_total Object store operations started, by operation.
# TYPE silt_objstore_requests_total counter
silt_objstore_requests_total{op="delete"} 1
silt_objstore_requests_total{op="get"} 4
silt_objstore_requests_total{op="list"} 1
silt_objstore_requests_total{op="put"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"silt_objstore_bytes_total", "silt_objstore_request_failures_total", "silt_objstore_requests_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "silt_objstore_request_duration_seconds"); n != 4 {
		t.Fatalf("duration histogram has %d series, want 4", n)
	}

	// A second bucket on the same registry shares the collectors.
	b2 := objstore.WithMetrics(fs, reg)
	must(b2.Put(ctx, "d", []byte("1")))
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP silt_objstore_requests_total Object store operations started, by operation.
# TYPE silt_objstore_requests_total counter
silt_objstore_requests_total{op="delete"} 1
silt_objstore_requests_total{op="get"} 4
silt_objstore_requests_total{op="list"} 1
silt_objstore_requests_total{op="put"} 4
`), "silt_objstore_requests_total"); err != nil {
		t.Fatal(err)
	}
}
