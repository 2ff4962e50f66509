package share

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

var testLimits = Limits{LockMs: 1000, DeliveryLimit: 3, MaxLocks: 100}

func acq(first, last int64, count int32) Acquired {
	return Acquired{First: first, Last: last, Count: count}
}

func wantAcquired(t *testing.T, what string, got []Acquired, want ...Acquired) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: acquired %v, want %v", what, got, want)
	}
}

// roundTrip encodes and decodes p, checking nothing is lost.
func roundTrip(t *testing.T, p *partState) *partState {
	t.Helper()
	q, err := decode(p.start, p.encode())
	if err != nil {
		t.Fatalf("decode(encode(%+v)): %v", p, err)
	}
	if fmt.Sprint(q) != fmt.Sprint(p) {
		t.Fatalf("round trip: %+v, want %+v", q, p)
	}
	return q
}

// TestStateLifecycle walks records through acquisition, every kind of
// acknowledgement, lock expiry and the delivery limit.
func TestStateLifecycle(t *testing.T) {
	p := &partState{start: 10}
	now := int64(1_000_000)
	// a acquires 10-14 of the batches 10-19 it read, limited to 5.
	wantAcquired(t, "a takes five", p.acquire("a", 10, 19, 5, now, testLimits), acq(10, 14, 1))
	// b takes the rest of what was read.
	wantAcquired(t, "b takes the rest", p.acquire("b", 10, 19, 100, now, testLimits), acq(15, 19, 1))
	if p.end() != 20 {
		t.Fatalf("window ends at %d, want 20", p.end())
	}
	p = roundTrip(t, p)

	// a's acknowledgement of b's records fails and changes nothing.
	before := fmt.Sprint(p)
	if _, err := p.acknowledge("a", []AckBatch{{First: 14, Last: 15, Types: []int8{AckAccept}}}, now, testLimits); !errors.Is(err, ErrRecordState) {
		t.Fatalf("acknowledging another member's record: %v", err)
	}
	if fmt.Sprint(p) != before {
		t.Fatalf("a failed acknowledgement changed the state: %v -> %v", before, p)
	}
	// a accepts 10-11, rejects 12, releases 13, renews 14.
	released, err := p.acknowledge("a", []AckBatch{
		{First: 10, Last: 11, Types: []int8{AckAccept}},
		{First: 12, Last: 14, Types: []int8{AckReject, AckRelease, AckRenew}},
	}, now+500, testLimits)
	if err != nil || !released {
		t.Fatalf("acknowledge: released %v, %v", released, err)
	}
	if p.start != 13 {
		t.Fatalf("start %d after 10-12 were done, want 13", p.start)
	}
	// Below the start is done: acknowledging it again is ignored.
	if _, err := p.acknowledge("a", []AckBatch{{First: 10, Last: 10, Types: []int8{AckAccept}}}, now+500, testLimits); err != nil {
		t.Fatalf("acknowledging below the start: %v", err)
	}
	p = roundTrip(t, p)

	// 13 was released: c gets it at delivery 2; nothing else is free.
	wantAcquired(t, "c takes the released record", p.acquire("c", 13, 19, 100, now+600, testLimits), acq(13, 13, 2))
	// b's locks (deadline now+1000) expire; 14's was renewed at now+500.
	wantAcquired(t, "d after b's locks expired", p.acquire("d", 13, 19, 100, now+1001, testLimits), acq(15, 19, 2))
	if _, err := p.acknowledge("b", []AckBatch{{First: 15, Last: 15, Types: []int8{AckAccept}}}, now+1001, testLimits); !errors.Is(err, ErrRecordState) {
		t.Fatalf("b acknowledged a record after its lock expired: %v", err)
	}
	// Past the delivery limit (3), records are archived, not delivered.
	p.releaseMember("d", now+1002, testLimits)
	wantAcquired(t, "third delivery", p.acquire("e", 15, 19, 100, now+1003, testLimits), acq(15, 19, 3))
	p.releaseMember("e", now+1004, testLimits)
	if off, ok := p.nextFetch(now+1005, testLimits); !ok || off != 20 {
		t.Fatalf("next fetch %d %v: 15-19 are archived past the limit", off, ok)
	}
	wantAcquired(t, "nothing old is delivered again", p.acquire("e", 15, 19, 100, now+1005, testLimits))
	// c and a still hold 13 and 14; accepting them moves the start to 20.
	if _, err := p.acknowledge("c", []AckBatch{{First: 13, Last: 13, Types: []int8{AckAccept}}}, now+1005, testLimits); err != nil {
		t.Fatal(err)
	}
	if _, err := p.acknowledge("a", []AckBatch{{First: 14, Last: 14, Types: []int8{AckAccept}}}, now+1005, testLimits); err != nil {
		t.Fatalf("a's renewed lock: %v", err)
	}
	if p.start != 20 || len(p.spans) != 0 || len(p.encode()) != 0 {
		t.Fatalf("after everything was done: %+v", p)
	}
}

// TestStateWindowBound: new records are acquired only while the window is
// below MaxLocks; records inside it can still be acquired again.
func TestStateWindowBound(t *testing.T) {
	lim := Limits{LockMs: 1000, DeliveryLimit: 5, MaxLocks: 10}
	p := &partState{}
	wantAcquired(t, "up to the bound", p.acquire("a", 0, 99, 100, 0, lim), acq(0, 9, 1))
	if _, ok := p.nextFetch(0, lim); ok {
		t.Fatal("a full window offers more")
	}
	if _, err := p.acknowledge("a", []AckBatch{{First: 3, Last: 3, Types: []int8{AckRelease}}}, 0, lim); err != nil {
		t.Fatal(err)
	}
	if off, ok := p.nextFetch(0, lim); !ok || off != 3 {
		t.Fatalf("next fetch %d %v, want the released 3", off, ok)
	}
	wantAcquired(t, "the released record", p.acquire("b", 3, 99, 100, 0, lim), acq(3, 3, 2))
	if _, err := p.acknowledge("a", []AckBatch{{First: 0, Last: 1, Types: []int8{AckAccept}}}, 0, lim); err != nil {
		t.Fatal(err)
	}
	wantAcquired(t, "two more fit", p.acquire("b", 10, 99, 100, 0, lim), acq(10, 11, 1))
}

func TestValidateAcks(t *testing.T) {
	for _, c := range []struct {
		batches []AckBatch
		ok      bool
	}{
		{[]AckBatch{{0, 3, []int8{1}}, {5, 6, []int8{2, 3}}}, true},
		{[]AckBatch{{3, 2, []int8{1}}}, false},
		{[]AckBatch{{0, 3, []int8{1}}, {3, 4, []int8{1}}}, false},
		{[]AckBatch{{0, 3, []int8{1, 2}}}, false},
		{[]AckBatch{{0, 0, []int8{5}}}, false},
		{[]AckBatch{{0, 0, nil}}, false},
	} {
		if err := ValidateAcks(c.batches, AckRenew); (err == nil) != c.ok {
			t.Errorf("%v: %v, want ok=%v", c.batches, err, c.ok)
		}
	}
}

// TestStateRandom drives random operations and checks the invariants
// after each: spans cover the window, nothing finished at the front, no
// record acknowledged twice, and the encoding round-trips.
func TestStateRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	lim := Limits{LockMs: 50, DeliveryLimit: 4, MaxLocks: 40}
	p := &partState{start: 5}
	accepted := map[int64]int{}
	now := int64(0)
	members := []string{"a", "b", "c"}
	for range 5000 {
		now += int64(r.IntN(20))
		m := members[r.IntN(len(members))]
		switch r.IntN(4) {
		case 0, 1:
			from := p.start + int64(r.IntN(30))
			p.acquire(m, from, from+int64(r.IntN(30)), int64(1+r.IntN(20)), now, lim)
		case 2:
			// Acknowledge what m holds, with random types.
			at := p.start
			var bs []AckBatch
			for _, s := range p.spans {
				if s.state == stateAcquired && s.member == m && s.deadline > now {
					types := make([]int8, s.n)
					for i := range types {
						types[i] = int8(r.IntN(4))
					}
					bs = append(bs, AckBatch{First: at, Last: at + s.n - 1, Types: types})
				}
				at += s.n
			}
			if _, err := p.acknowledge(m, bs, now, lim); err != nil {
				t.Fatalf("acknowledging held records: %v", err)
			}
			for _, b := range bs {
				for off := b.First; off <= b.Last; off++ {
					if b.Types[off-b.First] == AckAccept {
						accepted[off]++
						if accepted[off] > 1 {
							t.Fatalf("offset %d accepted twice", off)
						}
					}
				}
			}
		case 3:
			p.releaseMember(m, now, lim)
		}
		if len(p.spans) > 0 && p.spans[0].state.done() {
			t.Fatalf("finished records at the front: %+v", p)
		}
		if p.end()-p.start > lim.MaxLocks {
			t.Fatalf("window %d past the bound", p.end()-p.start)
		}
		p = roundTrip(t, p)
	}
}

func FuzzDecodeState(f *testing.F) {
	p := &partState{start: 3}
	p.acquire("member-1", 3, 20, 10, 100, testLimits)
	p.acknowledge("member-1", []AckBatch{{First: 4, Last: 4, Types: []int8{AckRelease}}}, 100, testLimits)
	good := p.encode()
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(good)
	f.Add(append(good, 1, 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := decode(0, b)
		if err != nil {
			return
		}
		// Whatever decodes encodes to something that decodes the same.
		r, err := decode(0, q.encode())
		if err != nil || fmt.Sprint(r) != fmt.Sprint(q) {
			t.Fatalf("re-decoding %x: %+v %v, want %+v", b, r, err, q)
		}
	})
}
