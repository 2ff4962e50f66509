package e2e

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// staticMembers maps each member's group.instance.id to its member id and
// assigned partitions of topic, from DescribeGroups.
func staticMembers(t testing.TB, g kadm.DescribedGroup, topic string) map[string][2]string {
	t.Helper()
	out := map[string][2]string{}
	for _, m := range g.Members {
		if m.InstanceID == nil {
			t.Fatalf("member %s of %s has no instance id", m.MemberID, g.Group)
		}
		var ps []int32
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range c.Topics {
				if tp.Topic == topic {
					ps = append(ps, tp.Partitions...)
				}
			}
		}
		slices.Sort(ps)
		out[*m.InstanceID] = [2]string{m.MemberID, partitionSet(ps)}
	}
	return out
}

// TestGroupStaticMembership (KIP-345) with librdkafka: two static members
// (group.instance.id) share a 4-partition topic; static-a joins first and
// leads. Each in turn, the follower and then the leader, closes (a static
// member sends no LeaveGroup) and a new process with the same instance id
// rejoins within the session timeout. As with Apache Kafka, it gets the
// same partitions under a new member id, the group stays Stable, and the
// other member sees no rebalance (no revoke, no new assignment). librdkafka
// 2.0 joins with JoinGroup v5, so a rejoining leader cannot be told to skip
// the assignment (KIP-814, v9): Kafka then answers with the old leader id so
// that the new incarnation does not act as leader.
func TestGroupStaticMembership(t *testing.T) {
	needConfluentKafka(t)
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		s := newSilt(t).Start()
		ctx := testContext(t, 100*time.Second)
		const topic, group = "group-static", "group-static"
		createTopic(t, ctx, s.Kafka(), topic, 4)
		produceKeyed(t, ctx, s.Kafka(), topic, "static", 40, 8)

		procs := map[string]*pyProc{}
		procs["static-a"] = startPyStatic(t, ctx, s.Kafka(), topic, group, "static-a")
		procs["static-a"].waitEvent(ctx, "assignment of every partition", func(ev pyEvent) bool {
			return ev.Type == "assigned" && len(ev.Partitions) == 4
		})
		procs["static-b"] = startPyStatic(t, ctx, s.Kafka(), topic, group, "static-b")
		// Both hold their share of one generation once their latest
		// assignments are disjoint and cover the topic.
		latest := map[string][]int32{}
		covered := func() bool {
			seen := map[int32]bool{}
			for _, ps := range latest {
				for _, p := range ps {
					if seen[p] {
						return false
					}
					seen[p] = true
				}
			}
			return len(latest) == 2 && len(seen) == 4
		}
		for !covered() {
			p, ev := nextOfTwo(ctx, procs["static-a"], procs["static-b"], "assignment covering the topic")
			switch ev.Type {
			case "assigned":
				latest[p.name] = ev.Partitions
			case "revoked":
				delete(latest, p.name)
			}
		}

		role := map[string]string{"static-a": "the group leader", "static-b": "a follower"}
		restart := func(ctx context.Context, victim, other string) {
			d := describeGroup(t, ctx, s.Kafka(), group)
			before := staticMembers(t, d, topic)
			if d.State != "Stable" || len(before) != 2 {
				t.Fatalf("group with two assigned static members: state %s members %v", d.State, before)
			}
			for name, ps := range latest {
				if before[name][1] != partitionSet(ps) {
					t.Fatalf("%s holds %v, DescribeGroups says %v", name, ps, before)
				}
			}
			procs[other].sync(ctx)
			otherAssigned, otherRevoked := procs[other].assignments()

			procs[victim].stop(ctx)
			d = describeGroup(t, ctx, s.Kafka(), group)
			if got := staticMembers(t, d, topic); d.State != "Stable" || !maps.Equal(got, before) {
				t.Fatalf("after %s closed (static members do not leave): state %s members %v, want Stable %v", victim, d.State, got, before)
			}

			procs[victim] = startPyStatic(t, ctx, s.Kafka(), topic, group, victim)
			ev := procs[victim].waitEvent(ctx, "assignment", func(ev pyEvent) bool { return ev.Type == "assigned" })
			procs[other].sync(ctx)
			if as, rs := procs[other].assignments(); as != otherAssigned || rs != otherRevoked {
				// Apache Kafka keeps a Stable group as it is when a static
				// member rejoins with an unchanged subscription, leader or
				// not (GroupCoordinator.updateStaticMemberAndRebalance).
				t.Errorf("%s saw a rebalance when %s (static, %s) rejoined: assigned %d->%d, revoked %d->%d",
					other, victim, role[victim], otherAssigned, as, otherRevoked, rs)
			}
			if partitionSet(ev.Partitions) != partitionSet(latest[victim]) {
				t.Errorf("%s rejoined with %v, held %v before", victim, ev.Partitions, latest[victim])
			}
			d = describeGroup(t, ctx, s.Kafka(), group)
			after := staticMembers(t, d, topic)
			if d.State != "Stable" || len(after) != 2 {
				t.Fatalf("after %s rejoined: state %s members %v", victim, d.State, after)
			}
			if after[other] != before[other] {
				t.Errorf("%s changed from %v to %v when %s rejoined", other, before[other], after[other], victim)
			}
			if after[victim][1] != before[victim][1] {
				t.Errorf("%s's assignment changed from %v to %v", victim, before[victim][1], after[victim][1])
			}
			if after[victim][0] == before[victim][0] {
				// Kafka gives the rejoining instance a new member id and
				// fences the old one.
				t.Errorf("%s kept member id %s across the restart, want a new one", victim, after[victim][0])
			}
			// Whatever happened, continue from the current assignments.
			for _, name := range []string{victim, other} {
				latest[name] = nil
				for _, e := range procs[name].events {
					if e.Type == "assigned" {
						latest[name] = e.Partitions
					}
				}
			}
		}
		// Not subtests: the processes outlive each step.
		restart(ctx, "static-b", "static-a") // the follower
		restart(ctx, "static-a", "static-b") // the leader
		procs["static-a"].stop(ctx)
		procs["static-b"].stop(ctx)
	})
}
