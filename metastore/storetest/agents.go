package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/siltdata/silt/metastore"
)

func register(t *testing.T, s metastore.Store, id string, ttl time.Duration) int32 {
	t.Helper()
	n, err := s.RegisterAgent(ctx(t), metastore.Agent{ID: id, Host: "h-" + id, Port: 9092, Zone: "z1"}, ttl)
	must(t, "RegisterAgent "+id, err)
	return n
}

func liveIDs(t *testing.T, s metastore.Store) []string {
	t.Helper()
	as, err := s.LiveAgents(ctx(t))
	must(t, "LiveAgents", err)
	var ids []string
	for _, a := range as {
		ids = append(ids, a.ID)
	}
	return ids
}

func testAgents(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	const ttl = time.Hour
	if n := register(t, s, "a", ttl); n != 0 {
		t.Fatalf("first node id %d", n)
	}
	if n := register(t, s, "b", ttl); n != 1 {
		t.Fatalf("second node id %d", n)
	}
	if n := register(t, s, "c", ttl); n != 2 {
		t.Fatalf("third node id %d", n)
	}
	// Registering again keeps the node id and updates the address.
	// Listeners round-trip in order.
	listeners := []metastore.Endpoint{{Name: "INTERNAL", Host: "new", Port: 1234}, {Name: "EXTERNAL", Host: "b.example.com", Port: 9093}}
	n, err := s.RegisterAgent(c, metastore.Agent{ID: "b", Host: "new", Port: 1234, Zone: "z2", Listeners: listeners}, ttl)
	must(t, "RegisterAgent b again", err)
	if n != 1 {
		t.Fatalf("re-registered b got node %d, want 1", n)
	}
	as, err := s.LiveAgents(c)
	must(t, "LiveAgents", err)
	for i := range as {
		// Each lease runs for at most its TTL from now, and (for a
		// test of seconds) still most of it.
		if as[i].LeaseLeft <= ttl/2 || as[i].LeaseLeft > ttl {
			t.Fatalf("LiveAgents: %s has %v of its %v lease left", as[i].ID, as[i].LeaseLeft, ttl)
		}
		as[i].LeaseLeft = 0
	}
	if len(as) != 3 || !reflect.DeepEqual(as[1], metastore.Agent{ID: "b", NodeID: 1, Host: "new", Port: 1234, Zone: "z2", Listeners: listeners}) ||
		as[0].ID != "a" || as[0].Host != "h-a" || as[0].Port != 9092 || as[0].Zone != "z1" || as[2].NodeID != 2 {
		t.Fatalf("LiveAgents = %+v", as)
	}
	must(t, "RenewAgent", s.RenewAgent(c, "a", ttl))
	wantErr(t, "RenewAgent unknown", s.RenewAgent(c, "nope", ttl), metastore.ErrLeaseExpired)
	must(t, "DeregisterAgent b", s.DeregisterAgent(c, "b"))
	must(t, "DeregisterAgent unknown", s.DeregisterAgent(c, "nope"))
	wantErr(t, "RenewAgent deregistered", s.RenewAgent(c, "b", ttl), metastore.ErrLeaseExpired)
	// The lowest free node id is reused.
	if n := register(t, s, "d", ttl); n != 1 {
		t.Fatalf("d got node %d, want the freed 1", n)
	}
	if n := register(t, s, "e", ttl); n != 3 {
		t.Fatalf("e got node %d, want 3", n)
	}
	if ids := liveIDs(t, s); len(ids) != 4 || ids[0] != "a" || ids[1] != "d" || ids[2] != "c" || ids[3] != "e" {
		t.Fatalf("live agents by node id = %v", ids)
	}
}

// eventually waits until cond holds, checking it every few milliseconds,
// or fails the test at the deadline.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("%s: not true after %v", what, within)
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		}
	}
}

func testLeaseExpiry(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	const short = 300 * time.Millisecond
	start := time.Now()
	if n := register(t, s, "short", short); n != 0 {
		t.Fatalf("node %d", n)
	}
	if n := register(t, s, "long", time.Hour); n != 1 {
		t.Fatalf("node %d", n)
	}
	eventually(t, 10*time.Second, "short lease expires", func() bool {
		ids := liveIDs(t, s)
		return len(ids) == 1 && ids[0] == "long"
	})
	if time.Since(start) < short/2 {
		t.Fatal("lease expired long before its TTL")
	}
	err := s.RenewAgent(c, "short", time.Hour)
	if !errors.Is(err, metastore.ErrLeaseExpired) {
		t.Fatalf("RenewAgent after expiry: %v, want ErrLeaseExpired", err)
	}
	// Registering again gets the same node id back.
	if n := register(t, s, "short", time.Hour); n != 0 {
		t.Fatalf("re-registered expired agent got node %d, want 0", n)
	}
	if ids := liveIDs(t, s); len(ids) != 2 {
		t.Fatalf("live = %v", ids)
	}
	// An expired agent's node id goes to a new agent once it lapsed.
	register(t, s, "gone", short)
	eventually(t, 10*time.Second, "second short lease expires", func() bool { return len(liveIDs(t, s)) == 2 })
	if n := register(t, s, "newcomer", time.Hour); n != 2 {
		t.Fatalf("newcomer got node %d, want the lapsed 2", n)
	}
	// What is left of a lease is never more than its TTL.
	register(t, s, "left", 2*time.Second)
	as, err := s.LiveAgents(c)
	must(t, "LiveAgents", err)
	for _, a := range as {
		if a.ID == "left" && (a.LeaseLeft <= 0 || a.LeaseLeft > 2*time.Second) {
			t.Fatalf("a 2s lease has %v left", a.LeaseLeft)
		}
	}
}
