package group

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

func TestSimpleCommitAndFetch(t *testing.T) { testSimpleCommitAndFetch(t, newEnv(t)) }

func testSimpleCommitAndFetch(t *testing.T, e *env) {
	c := e.coordinator(testConfig())
	ctx := ctxT(t)

	// Unknown group: -1, no error.
	got := fetchOffsets(ctx, c, "g", 0, 1)
	if got[0] != -1 || got[1] != -1 {
		t.Fatalf("unknown group offsets %v, want -1", got)
	}

	resp := c.OffsetCommit(ctx, commitReq("g", "", -1, "t", map[int32]int64{0: 10, 1: 20, 9: 1}))
	codes := commitCodes(resp)
	wantCode(t, "p0", codes[0], 0)
	wantCode(t, "p1", codes[1], 0)
	wantCode(t, "p9 (no such partition)", codes[9], kerr.UnknownTopicOrPartition.Code)
	codes = commitCodes(c.OffsetCommit(ctx, commitReq("g", "", -1, "nope", map[int32]int64{0: 1})))
	wantCode(t, "unknown topic", codes[0], kerr.UnknownTopicOrPartition.Code)

	got = fetchOffsets(ctx, c, "g", 0, 1, 2)
	if got[0] != 10 || got[1] != 20 || got[2] != -1 {
		t.Fatalf("offsets %v", got)
	}

	// Null topics: every committed partition (v2+), and v8 batches.
	all := kmsg.NewPtrOffsetFetchRequest()
	all.Version = 8
	for _, g := range []string{"g", "unknown"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g
		all.Groups = append(all.Groups, rg)
	}
	fr := c.OffsetFetch(ctx, all)
	if len(fr.Groups) != 2 || len(fr.Groups[0].Topics) != 1 || len(fr.Groups[0].Topics[0].Partitions) != 2 || len(fr.Groups[1].Topics) != 0 {
		t.Fatalf("v8 fetch: %+v", fr.Groups)
	}
	if p := fr.Groups[0].Topics[0].Partitions[1]; p.Partition != 1 || p.Offset != 20 || *p.Metadata != "m" {
		t.Fatalf("v8 partition %+v", p)
	}

	// The simple group exists now: Empty, no protocol type.
	d := c.DescribeGroup(ctx, "g", 5)
	if d.State != "Empty" || d.ProtocolType != "" {
		t.Fatalf("describe %+v", d)
	}
	// A member commit to a group that does not exist: ILLEGAL_GENERATION.
	codes = commitCodes(c.OffsetCommit(ctx, commitReq("fresh", "m", 3, "t", map[int32]int64{0: 1})))
	wantCode(t, "member commit to unknown group", codes[0], kerr.IllegalGeneration.Code)

	// Metadata too large.
	big := commitReq("g", "", -1, "t", map[int32]int64{0: 1})
	big.Topics[0].Partitions[0].Metadata = kmsg.StringPtr(strings.Repeat("x", 5000))
	wantCode(t, "big metadata", commitCodes(c.OffsetCommit(ctx, big))[0], kerr.OffsetMetadataTooLarge.Code)
}

func TestCommitFencing(t *testing.T) { testCommitFencing(t, newEnv(t)) }

func testCommitFencing(t *testing.T, e *env) {
	c := e.coordinator(testConfig())
	ctx := ctxT(t)
	leader, follower := split(stable(t, c, "g", joinOpts{}, joinOpts{}))
	gen := leader.Generation

	wantCode(t, "member commit", commitCodes(c.OffsetCommit(ctx, commitReq("g", follower.MemberID, gen, "t", map[int32]int64{0: 1})))[0], 0)
	wantCode(t, "simple commit to active group", commitCodes(c.OffsetCommit(ctx, commitReq("g", "", -1, "t", map[int32]int64{0: 1})))[0], kerr.UnknownMemberID.Code)
	wantCode(t, "stale generation", commitCodes(c.OffsetCommit(ctx, commitReq("g", follower.MemberID, gen-1, "t", map[int32]int64{0: 1})))[0], kerr.IllegalGeneration.Code)
	wantCode(t, "unknown member", commitCodes(c.OffsetCommit(ctx, commitReq("g", "ghost", gen, "t", map[int32]int64{0: 1})))[0], kerr.UnknownMemberID.Code)
	if got := fetchOffsets(ctx, c, "g", 0); got[0] != 1 {
		t.Fatalf("offset %d after fenced commits, want 1", got[0])
	}
}

func TestPersistenceAcrossCoordinators(t *testing.T) { testPersistenceAcrossCoordinators(t, newEnv(t)) }

func testPersistenceAcrossCoordinators(t *testing.T, e *env) {
	c1 := e.coordinator(testConfig())
	ctx := ctxT(t)
	inst := "static-1"
	rs := stable(t, c1, "g", joinOpts{}, joinOpts{instance: &inst})
	leader, follower := split(rs)
	wantCode(t, "commit", commitCodes(c1.OffsetCommit(ctx, commitReq("g", leader.MemberID, leader.Generation, "t", map[int32]int64{2: 42})))[0], 0)
	before := c1.DescribeGroup(ctx, "g", 5)
	c1.Close()

	// Another coordinator (another agent) on the same store takes over.
	c2 := e.coordinator(testConfig())
	after := c2.DescribeGroup(ctx, "g", 5)
	if after.State != "Stable" || len(after.Members) != 2 || after.Protocol != before.Protocol {
		t.Fatalf("reloaded %+v", after)
	}
	for i := range before.Members {
		b, a := before.Members[i], after.Members[i]
		if a.MemberID != b.MemberID || string(a.MemberAssignment) != string(b.MemberAssignment) || (b.InstanceID == nil) != (a.InstanceID == nil) {
			t.Fatalf("member %d: before %+v after %+v", i, b, a)
		}
	}
	wantCode(t, "heartbeat on new coordinator", heartbeat(ctx, c2, "g", follower.MemberID, follower.Generation, nil), 0)
	if got := fetchOffsets(ctx, c2, "g", 2); got[2] != 42 {
		t.Fatalf("offset %d, want 42", got[2])
	}
	// The static member restarting against the new coordinator keeps its
	// assignment without a rebalance.
	r := join(ctx, t, c2, "g", joinOpts{instance: &inst})
	wantCode(t, "static rejoin", r.ErrorCode, 0)
	if r.Generation != leader.Generation {
		t.Fatalf("generation %d, want %d", r.Generation, leader.Generation)
	}
}

func TestStaleCoordinatorFenced(t *testing.T) { testStaleCoordinatorFenced(t, newEnv(t)) }

func testStaleCoordinatorFenced(t *testing.T, e *env) {
	c1 := e.coordinator(testConfig())
	c2 := e.coordinator(testConfig())
	ctx := ctxT(t)
	fast := joinOpts{rebalance: 300 * time.Millisecond}
	leader, _ := split(stable(t, c1, "g", fast, fast))
	// c2 takes over and changes the group (the leader rejoins with new
	// metadata and the group completes a generation there).
	r := join(ctx, t, c2, "g", joinOpts{member: leader.MemberID, rebalance: 300 * time.Millisecond,
		protocols: []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta("t", "u")}}})
	wantCode(t, "join on c2", r.ErrorCode, 0)
	// c1's copy is stale: its next save is refused and it drops the group.
	r1 := join(ctx, t, c1, "g", joinOpts{member: leader.MemberID, rebalance: 300 * time.Millisecond,
		protocols: []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta("x")}}})
	wantCode(t, "join on stale c1", r1.ErrorCode, kerr.NotCoordinator.Code)
}

func TestDeleteListAndOffsetDelete(t *testing.T) { testDeleteListAndOffsetDelete(t, newEnv(t)) }

func testDeleteListAndOffsetDelete(t *testing.T, e *env) {
	reg := prometheus.NewRegistry()
	c, err := New(testConfig(), e.store, nil, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := ctxT(t)

	stable(t, c, "active", joinOpts{}, joinOpts{})
	wantCode(t, "simple commit", commitCodes(c.OffsetCommit(ctx, commitReq("simple", "", -1, "t", map[int32]int64{0: 1, 1: 2})))[0], 0)
	if _, err := e.store.CreateTopic(ctx, metastore.TopicSpec{Name: "other", Partitions: 1}); err != nil {
		t.Fatal(err)
	}

	all, err := c.ListGroups(ctx, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Name != "active" || all[0].State != "Stable" || all[0].ProtocolType != "consumer" || all[1].Name != "simple" || all[1].State != "Empty" {
		t.Fatalf("list %+v", all)
	}
	empty, _ := c.ListGroups(ctx, []string{"empty"}, nil, nil)
	if len(empty) != 1 || empty[0].Name != "simple" {
		t.Fatalf("list Empty %+v", empty)
	}
	none, _ := c.ListGroups(ctx, nil, nil, func(string) bool { return false })
	if len(none) != 0 {
		t.Fatalf("list with owns=false: %+v", none)
	}

	wantCode(t, "delete active", deleteCode(c.DeleteGroup(ctx, "active")), kerr.NonEmptyGroup.Code)
	wantCode(t, "delete unknown", deleteCode(c.DeleteGroup(ctx, "nope")), kerr.GroupIDNotFound.Code)

	// OffsetDelete: subscribed topic refused for the active group.
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "active"
	for _, name := range []string{"t", "other", "missing"} {
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = name
		rt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
		od.Topics = append(od.Topics, rt)
	}
	odr := c.OffsetDelete(ctx, od)
	wantCode(t, "offset delete top", odr.ErrorCode, 0)
	wantCode(t, "subscribed", odr.Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic.Code)
	wantCode(t, "not subscribed", odr.Topics[1].Partitions[0].ErrorCode, 0)
	wantCode(t, "missing topic", odr.Topics[2].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition.Code)
	od.Group = "simple"
	odr = c.OffsetDelete(ctx, od)
	wantCode(t, "simple group delete", odr.Topics[0].Partitions[0].ErrorCode, 0)
	if got := fetchOffsets(ctx, c, "simple", 0, 1); got[0] != -1 || got[1] != 2 {
		t.Fatalf("after offset delete %v", got)
	}
	od.Group = "nope"
	wantCode(t, "offset delete unknown group", c.OffsetDelete(ctx, od).ErrorCode, kerr.GroupIDNotFound.Code)

	// Lag: the simple group committed 2 on partition 1 of an empty topic
	// (high watermark 0): lag 0.
	if n := testutil.CollectAndCount(reg, "silt_group_lag"); n != 1 {
		t.Fatalf("lag series %d, want 1", n)
	}
	if n, err := testutil.GatherAndCount(reg, "silt_groups"); err != nil || n != 7 {
		t.Fatalf("silt_groups series %d (%v), want one per state of both group types", n, err)
	}

	wantCode(t, "delete simple", deleteCode(c.DeleteGroup(ctx, "simple")), 0)
	if got := fetchOffsets(ctx, c, "simple", 1); got[1] != -1 {
		t.Fatalf("offsets survived group deletion: %v", got)
	}
	if d := c.DescribeGroup(ctx, "simple", 5); d.State != "Dead" {
		t.Fatalf("deleted group state %s", d.State)
	}
	if testutil.ToFloat64(c.metrics.commits) != 2 {
		t.Fatalf("commits counter %v", testutil.ToFloat64(c.metrics.commits))
	}
}

// TestPostgres runs the tests that depend on what the metastore keeps
// against the Postgres backend too.
func TestPostgres(t *testing.T) {
	for name, f := range map[string]func(*testing.T, *env){
		"SimpleCommitAndFetch":          testSimpleCommitAndFetch,
		"CommitFencing":                 testCommitFencing,
		"PersistenceAcrossCoordinators": testPersistenceAcrossCoordinators,
		"StaleCoordinatorFenced":        testStaleCoordinatorFenced,
		"DeleteListAndOffsetDelete":     testDeleteListAndOffsetDelete,
	} {
		t.Run(name, func(t *testing.T) { f(t, newPostgresEnv(t)) })
	}
}

// deleteCode drops DeleteGroup's isShare, false for these groups.
func deleteCode(code int16, _ bool) int16 { return code }
