package group

import (
	"bytes"
	"cmp"
	"maps"
	"slices"

	"github.com/siltdata/silt/metastore"
)

// assignment is a set of partitions by topic id; partition lists are
// sorted and free of duplicates, and no topic maps to an empty list.
type assignment map[metastore.TopicID][]int32

// clone returns a deep copy.
func (a assignment) clone() assignment {
	out := make(assignment, len(a))
	for t, ps := range a {
		out[t] = slices.Clone(ps)
	}
	return out
}

// has reports whether a holds partition p of topic t.
func (a assignment) has(t metastore.TopicID, p int32) bool {
	_, ok := slices.BinarySearch(a[t], p)
	return ok
}

// add puts partition p of topic t into a.
func (a assignment) add(t metastore.TopicID, p int32) {
	ps := a[t]
	i, ok := slices.BinarySearch(ps, p)
	if !ok {
		a[t] = slices.Insert(ps, i, p)
	}
}

// count is the number of partitions in a.
func (a assignment) count() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

// equal reports whether a and b hold the same partitions.
func (a assignment) equal(b assignment) bool {
	if len(a) != len(b) {
		return false
	}
	for t, ps := range a {
		if !slices.Equal(ps, b[t]) {
			return false
		}
	}
	return true
}

// minus returns the partitions of a that are not in b.
func (a assignment) minus(b assignment) assignment {
	out := assignment{}
	for t, ps := range a {
		for _, p := range ps {
			if !b.has(t, p) {
				out[t] = append(out[t], p)
			}
		}
	}
	return out
}

// intersect returns the partitions in both a and b.
func (a assignment) intersect(b assignment) assignment {
	out := assignment{}
	for t, ps := range a {
		for _, p := range ps {
			if b.has(t, p) {
				out[t] = append(out[t], p)
			}
		}
	}
	return out
}

// topics returns a's topic ids in byte order, for deterministic output.
func (a assignment) topics() []metastore.TopicID {
	ts := slices.Collect(maps.Keys(a))
	slices.SortFunc(ts, func(x, y metastore.TopicID) int { return bytes.Compare(x[:], y[:]) })
	return ts
}

// assignSpec is what a server-side assignor computes a target assignment
// from: the members with their subscriptions, the partition counts of the
// subscribed topics, and the previous target assignment (for stickiness).
type assignSpec struct {
	members []assignMember // sorted by id
	// partitions is the partition count of every topic some member
	// subscribes to and that exists.
	partitions map[metastore.TopicID]int32
}

// assignMember is one member as an assignor sees it.
type assignMember struct {
	id         string
	instanceID string // "" for a dynamic member
	topics     []metastore.TopicID
	// previous is the member's previous target assignment.
	previous assignment
}

// subscribes reports whether m subscribes to topic t.
func (m *assignMember) subscribes(t metastore.TopicID) bool {
	return slices.Contains(m.topics, t)
}

// serverAssignor is a KIP-848 server-side assignor (Kafka's
// ConsumerGroupPartitionAssignor), named as clients name it in
// ConsumerGroupHeartbeat's ServerAssignor and as
// group.consumer.assignors lists them.
type serverAssignor interface {
	name() string
	// assign returns every member's target assignment, by member id;
	// every member of spec has an entry, possibly empty.
	assign(spec assignSpec) map[string]assignment
}

// assignors are the server-side assignors silt implements, by name.
var assignors = map[string]serverAssignor{
	"uniform": uniformAssignor{},
	"range":   rangeAssignor{},
}

// sortedTopics returns the spec's topics in byte order.
func (s assignSpec) sortedTopics() []metastore.TopicID {
	ts := slices.Collect(maps.Keys(s.partitions))
	slices.SortFunc(ts, func(x, y metastore.TopicID) int { return bytes.Compare(x[:], y[:]) })
	return ts
}

// uniformAssignor spreads partitions so that every member has as many as
// any other member subscribed to the same topics, give or take one, and
// moves as few partitions as it can from the previous target assignment
// (Kafka's "uniform", the default). Its algorithm is silt's own:
//
//  1. every partition a member held in its previous target and still
//     subscribes to stays with it, unless another member already keeps it;
//  2. the remaining partitions go, in topic and partition order, to the
//     subscribed member holding the fewest (ties: the lowest member id);
//  3. while some partition's holder has at least two more partitions
//     than another member subscribed to its topic, the partition moves to
//     that member (largest holders first), until no move narrows the gap.
//
// With identical subscriptions this is balanced to within one partition;
// with different ones it is balanced within each set of members sharing a
// topic, as far as the subscriptions allow.
type uniformAssignor struct{}

func (uniformAssignor) name() string { return "uniform" }

func (uniformAssignor) assign(spec assignSpec) map[string]assignment {
	out := make(map[string]assignment, len(spec.members))
	load := make(map[string]int, len(spec.members))
	for i := range spec.members {
		out[spec.members[i].id] = assignment{}
	}
	type tp struct {
		t metastore.TopicID
		p int32
	}
	owner := map[tp]string{}
	// 1. Keep what each member still may have.
	for i := range spec.members {
		m := &spec.members[i]
		for _, t := range m.previous.topics() {
			n, ok := spec.partitions[t]
			if !ok || !m.subscribes(t) {
				continue
			}
			for _, p := range m.previous[t] {
				k := tp{t, p}
				if p >= n || owner[k] != "" {
					continue
				}
				owner[k] = m.id
				out[m.id].add(t, p)
				load[m.id]++
			}
		}
	}
	// 2. Hand out the rest.
	topics := spec.sortedTopics()
	subscribers := map[metastore.TopicID][]*assignMember{}
	for _, t := range topics {
		for i := range spec.members {
			if spec.members[i].subscribes(t) {
				subscribers[t] = append(subscribers[t], &spec.members[i])
			}
		}
	}
	least := func(ms []*assignMember) *assignMember {
		var best *assignMember
		for _, m := range ms {
			if best == nil || load[m.id] < load[best.id] || load[m.id] == load[best.id] && m.id < best.id {
				best = m
			}
		}
		return best
	}
	for _, t := range topics {
		ms := subscribers[t]
		if len(ms) == 0 {
			continue
		}
		for p := range spec.partitions[t] {
			k := tp{t, p}
			if owner[k] != "" {
				continue
			}
			m := least(ms)
			owner[k] = m.id
			out[m.id].add(t, p)
			load[m.id]++
		}
	}
	// 3. Even out, one partition at a time from the most loaded member
	// that can give one to a fellow subscriber with two or more fewer, so
	// that every member keeps as much of its previous target as balance
	// allows. Every move lowers the sum of squared loads, so this ends.
	holders := slices.Collect(maps.Keys(out))
	for moved := true; moved; {
		moved = false
		slices.SortFunc(holders, func(a, b string) int {
			return cmp.Or(cmp.Compare(load[b], load[a]), cmp.Compare(a, b))
		})
	holder:
		for _, h := range holders {
			for _, t := range out[h].topics() {
				to := least(subscribers[t])
				if to == nil || load[h]-load[to.id] < 2 {
					continue
				}
				// The highest partition moves: the lower ones are the
				// likelier to have been kept in step 1.
				ps := out[h][t]
				p := ps[len(ps)-1]
				if len(ps) == 1 {
					delete(out[h], t)
				} else {
					out[h][t] = ps[:len(ps)-1]
				}
				owner[tp{t, p}] = to.id
				out[to.id].add(t, p)
				load[h]--
				load[to.id]++
				moved = true
				break holder
			}
		}
	}
	return out
}

// rangeAssignor gives each member contiguous ranges of every topic it
// subscribes to, so that members with the same subscription get the same
// partition numbers of co-partitioned topics (Kafka's "range"). Members
// are ordered static ones first, by instance id, then by member id, so a
// static member keeps its ranges across restarts.
type rangeAssignor struct{}

func (rangeAssignor) name() string { return "range" }

func (rangeAssignor) assign(spec assignSpec) map[string]assignment {
	members := make([]*assignMember, len(spec.members))
	for i := range spec.members {
		members[i] = &spec.members[i]
	}
	slices.SortFunc(members, func(a, b *assignMember) int {
		switch {
		case a.instanceID != "" && b.instanceID != "":
			return cmp.Or(cmp.Compare(a.instanceID, b.instanceID), cmp.Compare(a.id, b.id))
		case a.instanceID != "":
			return -1
		case b.instanceID != "":
			return 1
		}
		return cmp.Compare(a.id, b.id)
	})
	out := make(map[string]assignment, len(members))
	for _, m := range members {
		out[m.id] = assignment{}
	}
	for _, t := range spec.sortedTopics() {
		var subs []*assignMember
		for _, m := range members {
			if m.subscribes(t) {
				subs = append(subs, m)
			}
		}
		if len(subs) == 0 {
			continue
		}
		n := int(spec.partitions[t])
		quota, extra := n/len(subs), n%len(subs)
		next := 0
		for _, m := range subs {
			size := quota
			if extra > 0 {
				size++
				extra--
			}
			for p := next; p < next+size; p++ {
				out[m.id].add(t, int32(p))
			}
			next += size
		}
	}
	return out
}
