package agent

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestGroupAdminAPIs drives the group admin APIs through kadm, on the wire:
// FindCoordinator (batched), ListGroups with a state filter,
// DescribeGroups, OffsetFetch of an unknown group, OffsetDelete and
// DeleteGroups with their refusals.
func TestGroupAdminAPIs(t *testing.T) {
	a := startAgent(t, groupTestConfig)
	makeTopic(t, a, "adm", 2)
	makeTopic(t, a, "other", 1)
	ctx := ctxTimeout(t)
	_, adm := a.client(t)

	for _, c := range adm.FindGroupCoordinators(ctx, "x", "y") {
		if c.Err != nil || c.NodeID != a.NodeID() {
			t.Fatalf("coordinator of %s: node %d err %v", c.Name, c.NodeID, c.Err)
		}
	}

	w := newGroupWatch()
	startConsumer(t, a, w, "c", "live", "adm")
	w.waitSplit(t, 2, "c")
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "other", Partition: 0, At: 1, LeaderEpoch: -1})
	if r, err := adm.CommitOffsets(ctx, "live", os); err != nil || !errors.Is(r.Error(), kerr.UnknownMemberID) {
		t.Fatalf("simple commit to a group with members: %v %v, want UNKNOWN_MEMBER_ID", err, r.Error())
	}
	os = kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "adm", Partition: 0, At: 3, LeaderEpoch: -1})
	os.Add(kadm.Offset{Topic: "other", Partition: 0, At: 1, LeaderEpoch: -1})
	if r, err := adm.CommitOffsets(ctx, "simple", os); err != nil || r.Error() != nil {
		t.Fatalf("simple commit: %v %v", err, r.Error())
	}

	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if listed["live"].State != "Stable" || listed["live"].ProtocolType != "consumer" || listed["simple"].State != "Empty" || len(listed) != 2 {
		t.Fatalf("list: %+v", listed)
	}
	empty, err := adm.ListGroups(ctx, "Empty")
	if err != nil || len(empty) != 1 || empty["simple"].Group != "simple" {
		t.Fatalf("list Empty: %+v %v", empty, err)
	}

	dg, err := adm.DescribeGroups(ctx, "live", "simple", "unknown")
	if err != nil {
		t.Fatal(err)
	}
	if g := dg["live"]; g.State != "Stable" || g.Protocol == "" || len(g.Members) != 1 || g.Members[0].ClientHost != "/127.0.0.1" {
		t.Fatalf("describe live: %+v", g)
	}
	// DescribeGroups v6 (KIP-1043) names an unknown group's error.
	if g := dg["unknown"]; g.State != "Dead" || !errors.Is(g.Err, kerr.GroupIDNotFound) {
		t.Fatalf("describe unknown: %+v", g)
	}

	fetched, err := adm.FetchOffsetsForTopics(ctx, "unknown", "adm")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup("adm", 1); !ok || o.At != -1 || o.Err != nil {
		t.Fatalf("unknown group offset: %+v", o)
	}

	del, err := adm.DeleteOffsets(ctx, "live", kadm.TopicsSet{"adm": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := del.Lookup("adm", 0); !errors.Is(e, kerr.GroupSubscribedToTopic) {
		t.Fatalf("delete subscribed offset: %v", e)
	}
	del, err = adm.DeleteOffsets(ctx, "simple", kadm.TopicsSet{"other": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := del.Lookup("other", 0); e != nil {
		t.Fatalf("delete offset: %v", e)
	}

	dr, err := adm.DeleteGroups(ctx, "live", "simple", "unknown")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(dr["live"].Err, kerr.NonEmptyGroup) || dr["simple"].Err != nil || !errors.Is(dr["unknown"].Err, kerr.GroupIDNotFound) {
		t.Fatalf("delete groups: %+v", dr)
	}
}

// TestGroupOlderProtocolVersions runs a group consumer that commits and a
// second one that resumes, with clients capped at older Kafka versions
// (JoinGroup v2 without MEMBER_ID_REQUIRED, v4, v6 ...).
func TestGroupOlderProtocolVersions(t *testing.T) {
	for _, v := range []struct {
		name string
		max  *kversion.Versions
	}{
		{"0.11", kversion.V0_11_0()},
		{"2.2", kversion.V2_2_0()},
		{"2.4", kversion.V2_4_0()},
		{"3.0", kversion.V3_0_0()},
	} {
		t.Run(v.name, func(t *testing.T) {
			a := startAgent(t, groupTestConfig)
			makeTopic(t, a, "old", 2)
			first := produceN(t, a, "old", 2, "first", 10)
			w1 := newGroupWatch()
			c1 := startConsumer(t, a, w1, "c1", "old", "old", kgo.MaxVersions(v.max), kgo.DisableAutoCommit())
			w1.waitSeen(t, first)
			if err := c1.cl.CommitUncommittedOffsets(ctxTimeout(t)); err != nil {
				t.Fatalf("commit: %v", err)
			}
			c1.stop()
			second := produceN(t, a, "old", 2, "second", 10)
			w2 := newGroupWatch()
			startConsumer(t, a, w2, "c2", "old", "old", kgo.MaxVersions(v.max))
			w2.waitSeen(t, second)
			w2.mu.Lock()
			defer w2.mu.Unlock()
			for _, val := range first {
				if w2.seen[val] != 0 {
					t.Fatalf("%s read again after commit", val)
				}
			}
		})
	}
}
