package group

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// stable brings members into one Stable generation and returns their join
// responses, in opts order.
func stable(t *testing.T, c *Coordinator, group string, opts ...joinOpts) []*kmsg.JoinGroupResponse {
	t.Helper()
	ctx := ctxT(t)
	resps := joinAll(ctx, t, c, group, opts)
	var leader *kmsg.JoinGroupResponse
	for _, r := range resps {
		wantCode(t, "join", r.ErrorCode, 0)
		if r.MemberID == r.LeaderID {
			leader = r
		}
	}
	if leader == nil {
		t.Fatal("no member was told it leads")
	}
	assign := map[string][]byte{}
	for _, m := range leader.Members {
		assign[m.MemberID] = []byte("assignment-of-" + m.MemberID)
	}
	done := make(chan *kmsg.SyncGroupResponse, len(resps))
	for _, r := range resps {
		if r != leader {
			go func() { done <- c.SyncGroup(ctx, syncReq(group, r.MemberID, r.Generation, nil)) }()
		}
	}
	lr := c.SyncGroup(ctx, syncReq(group, leader.MemberID, leader.Generation, assign))
	wantCode(t, "leader sync", lr.ErrorCode, 0)
	for range len(resps) - 1 {
		r := <-done
		wantCode(t, "follower sync", r.ErrorCode, 0)
		if !bytes.HasPrefix(r.MemberAssignment, []byte("assignment-of-")) {
			t.Fatalf("follower assignment %q", r.MemberAssignment)
		}
	}
	return resps
}

// split returns the leader's and a follower's join responses.
func split(rs []*kmsg.JoinGroupResponse) (leader, follower *kmsg.JoinGroupResponse) {
	for _, r := range rs {
		if r.MemberID == r.LeaderID {
			leader = r
		} else {
			follower = r
		}
	}
	return leader, follower
}

func TestJoinSyncGeneration(t *testing.T) {
	e := newEnv(t)
	c := e.coordinator(testConfig())
	ctx := ctxT(t)
	leader, follower := split(stable(t, c, "g", joinOpts{}, joinOpts{}))
	if leader.Generation != 1 || follower.Generation != 1 {
		t.Fatalf("generations %d %d, want 1", leader.Generation, follower.Generation)
	}
	if len(leader.Members) != 2 || len(follower.Members) != 0 {
		t.Fatalf("leader got %d members, follower %d; want 2 and 0", len(leader.Members), len(follower.Members))
	}
	if *leader.Protocol != "range" || *leader.ProtocolType != "consumer" {
		t.Fatalf("protocol %q type %q", *leader.Protocol, *leader.ProtocolType)
	}
	d := c.DescribeGroup(ctx, "g", 5)
	if d.State != "Stable" || d.Protocol != "range" || len(d.Members) != 2 {
		t.Fatalf("describe: %+v", d)
	}
	for _, m := range d.Members {
		if string(m.MemberAssignment) != "assignment-of-"+m.MemberID {
			t.Fatalf("member %s assignment %q", m.MemberID, m.MemberAssignment)
		}
	}
	wantCode(t, "heartbeat", heartbeat(ctx, c, "g", follower.MemberID, 1, nil), 0)
	wantCode(t, "heartbeat old generation", heartbeat(ctx, c, "g", follower.MemberID, 0, nil), kerr.IllegalGeneration.Code)
	wantCode(t, "heartbeat unknown member", heartbeat(ctx, c, "g", "nobody", 1, nil), kerr.UnknownMemberID.Code)
	wantCode(t, "heartbeat unknown group", heartbeat(ctx, c, "other", "nobody", 1, nil), kerr.UnknownMemberID.Code)

	// A follower rejoining with the same metadata in Stable gets the
	// current generation back without a rebalance.
	again := join(ctx, t, c, "g", joinOpts{member: follower.MemberID})
	wantCode(t, "rejoin", again.ErrorCode, 0)
	if again.Generation != 1 {
		t.Fatalf("rejoin generation %d, want 1", again.Generation)
	}
}

func TestMemberIDRequired(t *testing.T) {
	e := newEnv(t)
	c := e.coordinator(testConfig())
	ctx := ctxT(t)
	r := c.JoinGroup(ctx, Client{ID: "cl"}, joinReq("g", joinOpts{version: 4}))
	wantCode(t, "v4 join without id", r.ErrorCode, kerr.MemberIDRequired.Code)
	if r.MemberID == "" {
		t.Fatal("no member id handed out")
	}
	r2 := c.JoinGroup(ctx, Client{ID: "cl"}, joinReq("g", joinOpts{version: 4, member: r.MemberID}))
	wantCode(t, "v4 join with id", r2.ErrorCode, 0)
	if r2.MemberID != r.MemberID || r2.LeaderID != r.MemberID {
		t.Fatalf("member %q leader %q, want %q", r2.MemberID, r2.LeaderID, r.MemberID)
	}

	// v3 joins directly.
	r3 := c.JoinGroup(ctx, Client{ID: "cl"}, joinReq("g3", joinOpts{version: 3}))
	wantCode(t, "v3 join", r3.ErrorCode, 0)

	// Unknown member id, invalid session timeout, empty group.
	wantCode(t, "unknown member", c.JoinGroup(ctx, Client{}, joinReq("g4", joinOpts{member: "x"})).ErrorCode, kerr.UnknownMemberID.Code)
	wantCode(t, "session timeout", c.JoinGroup(ctx, Client{}, joinReq("g4", joinOpts{session: time.Millisecond})).ErrorCode, kerr.InvalidSessionTimeout.Code)
	wantCode(t, "empty group", c.JoinGroup(ctx, Client{}, joinReq("", joinOpts{})).ErrorCode, kerr.InvalidGroupID.Code)
}

func TestInconsistentProtocolAndSelection(t *testing.T) {
	e := newEnv(t)
	c := e.coordinator(testConfig())
	ctx := ctxT(t)
	p := func(names ...string) []kmsg.JoinGroupRequestProtocol {
		var out []kmsg.JoinGroupRequestProtocol
		for _, n := range names {
			out = append(out, kmsg.JoinGroupRequestProtocol{Name: n, Metadata: consumerMeta("t")})
		}
		return out
	}
	// Three members, all support range and roundrobin; two prefer
	// roundrobin: it wins by votes. sticky is not common to all.
	rs := joinAll(ctx, t, c, "g", []joinOpts{
		{protocols: p("sticky", "roundrobin", "range")},
		{protocols: p("roundrobin", "range")},
		{protocols: p("range", "roundrobin")},
	})
	for _, r := range rs {
		wantCode(t, "join", r.ErrorCode, 0)
		if *r.Protocol != "roundrobin" {
			t.Fatalf("protocol %q, want roundrobin", *r.Protocol)
		}
	}
	bad := join(ctx, t, c, "g", joinOpts{protocols: p("cooperative-sticky")})
	wantCode(t, "no common protocol", bad.ErrorCode, kerr.InconsistentGroupProtocol.Code)
	bad = join(ctx, t, c, "g", joinOpts{protoType: "connect"})
	wantCode(t, "other protocol type", bad.ErrorCode, kerr.InconsistentGroupProtocol.Code)
}

func TestSessionExpiryRebalances(t *testing.T) {
	e := newEnv(t)
	c := e.coordinator(testConfig())
	ctx := ctxT(t)
	// The follower's session is short; the rebalance timeout is long, so
	// the join below can only complete early through the session expiry.
	rs := stable(t, c, "g", joinOpts{session: 10 * time.Second, rebalance: 30 * time.Second},
		joinOpts{session: 500 * time.Millisecond, rebalance: 30 * time.Second})
	long, short := rs[0], rs[1]
	// The long-lived member rejoins with a new subscription (starting a
	// rebalance whether it leads or not); the short one never rejoins nor heartbeats:
	// its session expiry completes the join well before the 30s
	// rebalance timeout.
	start := time.Now()
	changed := []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta("t", "u")}}
	r := join(ctx, t, c, "g", joinOpts{member: long.MemberID, session: 10 * time.Second, rebalance: 30 * time.Second, protocols: changed})
	wantCode(t, "rejoin", r.ErrorCode, 0)
	if r.Generation != 2 || len(r.Members) != 1 || r.Members[0].MemberID != long.MemberID || r.LeaderID != long.MemberID {
		t.Fatalf("generation %d leader %s members %v", r.Generation, r.LeaderID, r.Members)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatal("join waited for the rebalance timeout, not the session expiry")
	}
	wantCode(t, "expired member heartbeat", heartbeat(ctx, c, "g", short.MemberID, 1, nil), kerr.UnknownMemberID.Code)
}

func TestHeartbeatDuringRebalance(t *testing.T) {
	e := newEnv(t)
	c := e.coordinator(testConfig())
	st := watchStates(c)
	ctx := ctxT(t)
	leader, follower := split(stable(t, c, "g", joinOpts{}, joinOpts{}))

	// A third member joins: the group prepares a rebalance and waits for
	// the two known members.
	third := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { third <- join(ctx, t, c, "g", joinOpts{}) }()
	st.wait(t, "g", "PreparingRebalance", 2)
	wantCode(t, "heartbeat during rebalance", heartbeat(ctx, c, "g", follower.MemberID, 1, nil), kerr.RebalanceInProgress.Code)
	wantCode(t, "sync during rebalance", c.SyncGroup(ctx, syncReq("g", follower.MemberID, 1, nil)).ErrorCode, kerr.RebalanceInProgress.Code)
	// Commits by members of the current generation are still accepted
	// while preparing (Kafka does too).
	codes := commitCodes(c.OffsetCommit(ctx, commitReq("g", follower.MemberID, 1, "t", map[int32]int64{0: 5})))
	wantCode(t, "commit while preparing", codes[0], 0)

	rs2 := joinAll(ctx, t, c, "g", []joinOpts{{member: leader.MemberID}, {member: follower.MemberID}})
	r3 := <-third
	for _, r := range append(rs2, r3) {
		wantCode(t, "join", r.ErrorCode, 0)
		if r.Generation != 2 {
			t.Fatalf("generation %d, want 2", r.Generation)
		}
	}
	// CompletingRebalance: commits get REBALANCE_IN_PROGRESS, heartbeats
	// are fine.
	codes = commitCodes(c.OffsetCommit(ctx, commitReq("g", follower.MemberID, 2, "t", map[int32]int64{0: 6})))
	wantCode(t, "commit while completing", codes[0], kerr.RebalanceInProgress.Code)
	wantCode(t, "heartbeat while completing", heartbeat(ctx, c, "g", follower.MemberID, 2, nil), 0)
}

func TestStaticMemberRejoinKeepsAssignment(t *testing.T) {
	e := newEnv(t)
	c := e.coordinator(testConfig())
	ctx := ctxT(t)
	a, b := "instance-a", "instance-b"
	rs := stable(t, c, "g", joinOpts{instance: &a}, joinOpts{instance: &b})
	var followerResp *kmsg.JoinGroupResponse
	var followerInst *string
	for _, r := range rs {
		if r.MemberID != r.LeaderID {
			followerResp = r
		}
	}
	d := c.DescribeGroup(ctx, "g", 5)
	var before []byte
	for _, m := range d.Members {
		if m.MemberID == followerResp.MemberID {
			followerInst = m.InstanceID
			before = m.MemberAssignment
		}
	}
	if followerInst == nil {
		t.Fatal("follower has no instance id")
	}

	// The follower restarts: same instance id, no member id.
	r := join(ctx, t, c, "g", joinOpts{instance: followerInst})
	wantCode(t, "static rejoin", r.ErrorCode, 0)
	if r.MemberID == followerResp.MemberID || r.Generation != followerResp.Generation {
		t.Fatalf("rejoin member %q gen %d; old %q gen %d", r.MemberID, r.Generation, followerResp.MemberID, followerResp.Generation)
	}
	s := c.SyncGroup(ctx, syncReq("g", r.MemberID, r.Generation, nil))
	wantCode(t, "sync", s.ErrorCode, 0)
	if !bytes.Equal(s.MemberAssignment, before) {
		t.Fatalf("assignment after static rejoin %q, want %q", s.MemberAssignment, before)
	}
	if d := c.DescribeGroup(ctx, "g", 5); d.State != "Stable" {
		t.Fatalf("state %s, want Stable (no rebalance)", d.State)
	}
	// The old incarnation is fenced.
	wantCode(t, "old incarnation", heartbeat(ctx, c, "g", followerResp.MemberID, r.Generation, followerInst), kerr.FencedInstanceID.Code)

	// A static rejoin with changed metadata rebalances.
	go join(ctx, t, c, "g", joinOpts{instance: followerInst, protocols: []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta("t", "u")}}})
	l, _ := split(rs)
	leaderInst := &a
	if *followerInst == a {
		leaderInst = &b
	}
	r2 := join(ctx, t, c, "g", joinOpts{member: l.MemberID, instance: leaderInst})
	wantCode(t, "leader rejoin", r2.ErrorCode, 0)
	if r2.Generation != r.Generation+1 {
		t.Fatalf("generation %d after metadata change, want %d", r2.Generation, r.Generation+1)
	}
}

func TestLeaveGroup(t *testing.T) {
	e := newEnv(t)
	c := e.coordinator(testConfig())
	ctx := ctxT(t)
	inst := "i1"
	rs := stable(t, c, "g", joinOpts{}, joinOpts{instance: &inst})

	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 5
	req.Group = "g"
	wrong := kmsg.NewLeaveGroupRequestMember()
	wrong.MemberID, wrong.InstanceID = "not-its-id", &inst
	unknown := kmsg.NewLeaveGroupRequestMember()
	unknown.MemberID = "nobody"
	req.Members = []kmsg.LeaveGroupRequestMember{wrong, unknown}
	resp := c.LeaveGroup(ctx, req)
	wantCode(t, "leave top level", resp.ErrorCode, 0)
	wantCode(t, "fenced leave", resp.Members[0].ErrorCode, kerr.FencedInstanceID.Code)
	wantCode(t, "unknown leave", resp.Members[1].ErrorCode, kerr.UnknownMemberID.Code)

	// Both leave (the static one by instance id only): the group empties.
	byInst := kmsg.NewLeaveGroupRequestMember()
	byInst.InstanceID = &inst
	dynamic := rs[0].MemberID
	dyn := kmsg.NewLeaveGroupRequestMember()
	dyn.MemberID = dynamic
	req.Members = []kmsg.LeaveGroupRequestMember{byInst, dyn}
	resp = c.LeaveGroup(ctx, req)
	wantCode(t, "leave static", resp.Members[0].ErrorCode, 0)
	wantCode(t, "leave dynamic", resp.Members[1].ErrorCode, 0)
	d := c.DescribeGroup(ctx, "g", 5)
	if d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("after leaving: %s with %d members", d.State, len(d.Members))
	}

	// v0 reports the member's error at the top level.
	v0 := kmsg.NewPtrLeaveGroupRequest()
	v0.Version = 0
	v0.Group, v0.MemberID = "g", "nobody"
	wantCode(t, "v0 leave", c.LeaveGroup(ctx, v0).ErrorCode, kerr.UnknownMemberID.Code)
}

// TestPendingJoinEndsWithNotCoordinator: a join waiting in a rebalance
// whose request ends (the agent shutting down cancels it) is answered
// NOT_COORDINATOR, as Kafka answers pending joins of a group it unloads,
// so clients move to the new coordinator instead of surfacing an error.
func TestPendingJoinEndsWithNotCoordinator(t *testing.T) {
	e := newEnv(t)
	c := e.coordinator(testConfig())
	st := watchStates(c)
	ctx := ctxT(t)
	stable(t, c, "g", joinOpts{}, joinOpts{})

	// A third member joins: the group waits for the two known members, so
	// this join stays pending until its request context ends.
	reqCtx, cancel := context.WithCancel(ctx)
	third := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { third <- join(reqCtx, t, c, "g", joinOpts{}) }()
	st.wait(t, "g", "PreparingRebalance", 2)
	cancel()
	select {
	case r := <-third:
		wantCode(t, "pending join whose request ended", r.ErrorCode, kerr.NotCoordinator.Code)
	case <-ctx.Done():
		t.Fatal("the pending join was not answered after its request ended")
	}
}
