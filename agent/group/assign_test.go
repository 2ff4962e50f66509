package group

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/siltdata/silt/metastore"
)

func topicID(b byte) metastore.TopicID { return metastore.TopicID{b} }

// checkAssignment fails unless every partition of every subscribed topic
// is assigned exactly once, to a member subscribed to its topic.
func checkAssignment(t *testing.T, spec assignSpec, got map[string]assignment) {
	t.Helper()
	seen := map[string]string{}
	for _, m := range spec.members {
		a, ok := got[m.id]
		if !ok {
			t.Fatalf("member %s has no entry", m.id)
		}
		for tid, ps := range a {
			if !m.subscribes(tid) {
				t.Fatalf("member %s got topic %x it does not subscribe to", m.id, tid[:1])
			}
			for _, p := range ps {
				k := fmt.Sprintf("%x/%d", tid[:1], p)
				if o := seen[k]; o != "" {
					t.Fatalf("partition %s assigned to %s and %s", k, o, m.id)
				}
				seen[k] = m.id
			}
		}
	}
	for tid, n := range spec.partitions {
		subscribed := false
		for _, m := range spec.members {
			subscribed = subscribed || m.subscribes(tid)
		}
		for p := range n {
			if k := fmt.Sprintf("%x/%d", tid[:1], p); subscribed && seen[k] == "" {
				t.Fatalf("partition %s unassigned", k)
			}
		}
	}
}

func spread(got map[string]assignment) (lo, hi int) {
	lo = 1 << 30
	for _, a := range got {
		lo, hi = min(lo, a.count()), max(hi, a.count())
	}
	return lo, hi
}

func TestUniformBalancedAndSticky(t *testing.T) {
	a, b := topicID(1), topicID(2)
	members := func(ids ...string) []assignMember {
		var ms []assignMember
		for _, id := range ids {
			ms = append(ms, assignMember{id: id, topics: []metastore.TopicID{a, b}})
		}
		return ms
	}
	spec := assignSpec{members: members("m1"), partitions: map[metastore.TopicID]int32{a: 7, b: 5}}
	got := uniformAssignor{}.assign(spec)
	checkAssignment(t, spec, got)
	if got["m1"].count() != 12 {
		t.Fatalf("one member got %d of 12", got["m1"].count())
	}
	// Scale 1 -> 4 -> 2 -> 3, each step from the previous target.
	prev := got
	for _, ids := range [][]string{{"m1", "m2", "m3", "m4"}, {"m1", "m3"}, {"m1", "m3", "m5"}} {
		spec.members = members(ids...)
		for i := range spec.members {
			spec.members[i].previous = prev[spec.members[i].id]
		}
		got = uniformAssignor{}.assign(spec)
		checkAssignment(t, spec, got)
		if lo, hi := spread(got); hi-lo > 1 {
			t.Fatalf("%v: loads from %d to %d", ids, lo, hi)
		}
		// Stickiness: a member that stays loses only what it must.
		for _, id := range ids {
			kept := prev[id].intersect(got[id]).count()
			quota := 12 / len(ids)
			if prev[id] != nil && kept < min(prev[id].count(), quota) {
				t.Fatalf("%v: %s kept %d of %d (quota %d)", ids, id, kept, prev[id].count(), quota)
			}
		}
		prev = got
	}
}

func TestUniformHeterogeneous(t *testing.T) {
	a, b := topicID(1), topicID(2)
	spec := assignSpec{
		members: []assignMember{
			{id: "x", topics: []metastore.TopicID{a}},
			{id: "y", topics: []metastore.TopicID{a, b}},
			{id: "z", topics: []metastore.TopicID{b}},
		},
		partitions: map[metastore.TopicID]int32{a: 6, b: 6},
	}
	got := uniformAssignor{}.assign(spec)
	checkAssignment(t, spec, got)
	if lo, hi := spread(got); hi-lo > 1 {
		t.Fatalf("loads from %d to %d: %v", lo, hi, got)
	}
	// Random subscriptions and previous assignments: always valid.
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		spec := assignSpec{partitions: map[metastore.TopicID]int32{}}
		for i := range 4 {
			spec.partitions[topicID(byte(i))] = int32(r.IntN(9))
		}
		for i := range 1 + r.IntN(6) {
			m := assignMember{id: fmt.Sprint("m", i), previous: assignment{}}
			for tid := range spec.partitions {
				if r.IntN(2) == 0 {
					m.topics = append(m.topics, tid)
				}
				if r.IntN(3) == 0 {
					m.previous.add(tid, int32(r.IntN(12)))
				}
			}
			spec.members = append(spec.members, m)
		}
		checkAssignment(t, spec, uniformAssignor{}.assign(spec))
		checkAssignment(t, spec, rangeAssignor{}.assign(spec))
	}
}

func TestRangeCoPartitioned(t *testing.T) {
	a, b := topicID(1), topicID(2)
	spec := assignSpec{
		members: []assignMember{
			{id: "m1", topics: []metastore.TopicID{a, b}},
			{id: "m0", topics: []metastore.TopicID{a, b}},
		},
		partitions: map[metastore.TopicID]int32{a: 3, b: 3},
	}
	got := rangeAssignor{}.assign(spec)
	checkAssignment(t, spec, got)
	want := map[string][]int32{"m0": {0, 1}, "m1": {2}}
	for id, ps := range want {
		if fmt.Sprint(got[id][a]) != fmt.Sprint(ps) || fmt.Sprint(got[id][b]) != fmt.Sprint(ps) {
			t.Fatalf("%s got %v, want %v of both topics", id, got[id], ps)
		}
	}
	// Static members sort first, by instance id.
	spec.members[1].instanceID = "b"
	spec.members[0].instanceID = "a"
	got = rangeAssignor{}.assign(spec)
	if fmt.Sprint(got["m1"][a]) != "[0 1]" {
		t.Fatalf("static member a (m1) got %v, want [0 1]", got["m1"])
	}
}
