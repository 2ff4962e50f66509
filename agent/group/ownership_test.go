package group

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// agentLease is the agent's answer to Ownership, set by the test.
type agentLease struct {
	mu   sync.Mutex // mu guards term and held
	term uint64
	held bool
}

func (l *agentLease) Owns(string) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.term, l.held
}

func (l *agentLease) set(term uint64, held bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.term, l.held = term, held
}

// waitUnloaded waits until c holds no group in memory.
func waitUnloaded(t *testing.T, c *Coordinator) {
	t.Helper()
	ctx := ctxT(t)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for len(c.running()) > 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the group was not dropped")
		case <-tick.C:
		}
	}
}

// TestLapsedLeaseFreezesGroup: once the agent cannot vouch for its lease,
// or has registered anew since the group was loaded, the group's session
// timers drop its state instead of expiring members, nothing is written,
// requests answer NOT_COORDINATOR, and the next request under a good lease
// reloads the group from the metastore.
func TestLapsedLeaseFreezesGroup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lapse func(l *agentLease) // from term 1, held
	}{
		{"lease overdue", func(l *agentLease) { l.set(1, false) }},
		{"registered anew", func(l *agentLease) { l.set(2, true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			lease := &agentLease{term: 1, held: true}
			c := e.coordinatorOwnedBy(testConfig(), lease)
			ctx := ctxT(t)
			short := joinOpts{session: time.Second}
			leader, follower := split(stable(t, c, "g", short, short))
			wantCode(t, "commit", commitCodes(c.OffsetCommit(ctx, commitReq("g", follower.MemberID, 1, "t", map[int32]int64{0: 5})))[0], 0)
			before, _, err := e.store.LoadGroup(ctx, "g")
			if err != nil {
				t.Fatal(err)
			}

			// Nobody heartbeats: both sessions run out while the lease is
			// not vouched for. The timers drop the group, unchanged.
			tc.lapse(lease)
			waitUnloaded(t, c)
			after, _, err := e.store.LoadGroup(ctx, "g")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after.Data, before.Data) || after.State != "Stable" {
				t.Fatalf("the group was written while the lease was lapsed: %s %s, was %s", after.State, after.Data, before.Data)
			}
			if _, held := lease.Owns("g"); !held {
				wantCode(t, "heartbeat without a lease", heartbeat(ctx, c, "g", follower.MemberID, 1, nil), kerr.NotCoordinator.Code)
				wantCode(t, "commit without a lease", commitCodes(c.OffsetCommit(ctx, commitReq("g", leader.MemberID, 1, "t", map[int32]int64{0: 9})))[0], kerr.NotCoordinator.Code)
				if got := fetchOffsets(ctx, c, "g", 0); got[0] != 5 {
					t.Fatalf("offset %d after a commit without a lease, want 5", got[0])
				}
				lease.set(2, true)
			}

			// Under the new lease the group comes back from the metastore
			// with both members, on fresh session timers.
			wantCode(t, "heartbeat after reload", heartbeat(ctx, c, "g", follower.MemberID, 1, nil), 0)
			wantCode(t, "commit after reload", commitCodes(c.OffsetCommit(ctx, commitReq("g", leader.MemberID, 1, "t", map[int32]int64{0: 6})))[0], 0)
			if d := c.DescribeGroup(ctx, "g", 5); d.State != "Stable" || len(d.Members) != 2 {
				t.Fatalf("reloaded group %+v", d)
			}
		})
	}
}

// TestCommitFencedAfterTakeover: a coordinator whose group another one
// has claimed since gets its commit refused by the metastore, answers
// NOT_COORDINATOR, and drops the group; nothing it sent is stored.
func TestCommitFencedAfterTakeover(t *testing.T) {
	e := newEnv(t)
	c1 := e.coordinator(testConfig())
	c2 := e.coordinator(testConfig())
	ctx := ctxT(t)
	_, follower := split(stable(t, c1, "g", joinOpts{}, joinOpts{}))
	wantCode(t, "commit on c1", commitCodes(c1.OffsetCommit(ctx, commitReq("g", follower.MemberID, 1, "t", map[int32]int64{0: 10})))[0], 0)

	// c2 loads (claims) the group and takes a commit.
	wantCode(t, "commit on c2", commitCodes(c2.OffsetCommit(ctx, commitReq("g", follower.MemberID, 1, "t", map[int32]int64{0: 20})))[0], 0)
	// c1 still believes it coordinates the group: the metastore refuses.
	wantCode(t, "stale commit on c1", commitCodes(c1.OffsetCommit(ctx, commitReq("g", follower.MemberID, 1, "t", map[int32]int64{0: 11})))[0], kerr.NotCoordinator.Code)
	waitUnloaded(t, c1)
	if got := fetchOffsets(ctx, c2, "g", 0); got[0] != 20 {
		t.Fatalf("offset %d, want 20 (c2's commit; c1's was fenced)", got[0])
	}
}

// TestCommitCheckedAgainstStoredGeneration: a member commit is checked
// against the generation in the metastore, not only against the
// coordinator's memory; a group saved before the metastore kept the
// generation gets it stored when loaded.
func TestCommitCheckedAgainstStoredGeneration(t *testing.T) {
	e := newEnv(t)
	c1 := e.coordinator(testConfig())
	ctx := ctxT(t)
	_, follower := split(stable(t, c1, "g", joinOpts{}, joinOpts{}))
	saved, _, err := e.store.LoadGroup(ctx, "g")
	if err != nil || saved.Generation != 1 {
		t.Fatalf("saved group %+v, %v: want generation 1", saved, err)
	}

	// The stored generation moves on behind c1's back (an unfenced
	// write; coordinators never make one): c1's memory still says 1.
	moved := saved
	moved.Generation = 2
	if err := e.store.SaveGroup(ctx, moved); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "commit of a generation the metastore does not have", commitCodes(c1.OffsetCommit(ctx, commitReq("g", follower.MemberID, 1, "t", map[int32]int64{0: 3})))[0], kerr.IllegalGeneration.Code)
	if got := fetchOffsets(ctx, c1, "g", 0); got[0] != -1 {
		t.Fatalf("offset %d stored despite the generation mismatch", got[0])
	}
	c1.Close()

	// A row from before the metastore kept the generation (0) is fixed
	// by the coordinator that loads it.
	legacy := saved
	legacy.Generation = 0
	if err := e.store.SaveGroup(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	c2 := e.coordinator(testConfig())
	wantCode(t, "commit after loading a legacy row", commitCodes(c2.OffsetCommit(ctx, commitReq("g", follower.MemberID, 1, "t", map[int32]int64{0: 4})))[0], 0)
	if g, _, err := e.store.LoadGroup(ctx, "g"); err != nil || g.Generation != 1 {
		t.Fatalf("group after load %+v, %v: want generation 1 stored", g, err)
	}
}

// TestRequestFromBeforeLapseRefused: a request read while the agent's
// lease was not held, or under an earlier lease term, is answered
// NOT_COORDINATOR even when the agent owns the group by the time it runs,
// and changes nothing.
func TestRequestFromBeforeLapseRefused(t *testing.T) {
	e := newEnv(t)
	lease := &agentLease{term: 1, held: true}
	c := e.coordinatorOwnedBy(testConfig(), lease)
	ctx := ctxT(t)
	_, follower := split(stable(t, c, "g", joinOpts{}, joinOpts{}))
	commit := func(reqTerm uint64, held bool, offset int64) int16 {
		rctx := WithRequestLease(ctx, reqTerm, held)
		return commitCodes(c.OffsetCommit(rctx, commitReq("g", follower.MemberID, 1, "t", map[int32]int64{0: offset})))[0]
	}
	wantCode(t, "commit read under the lease", commit(1, true, 5), 0)

	// The agent registered anew (term 2); the group is reloaded by the
	// first request of the new term.
	lease.set(2, true)
	wantCode(t, "commit read under the old term", commit(1, true, 3), kerr.NotCoordinator.Code)
	wantCode(t, "commit read while the lease was lapsed", commit(2, false, 3), kerr.NotCoordinator.Code)
	wantCode(t, "commit read under the new term", commit(2, true, 6), 0)
	wantCode(t, "commit read under the old term, group loaded", commit(1, true, 3), kerr.NotCoordinator.Code)
	if got := fetchOffsets(ctx, c, "g", 0); got[0] != 6 {
		t.Fatalf("offset %d, want 6: a stale request changed it", got[0])
	}
	hb := heartbeatReq("g", follower.MemberID, 1)
	if code := c.Heartbeat(WithRequestLease(ctx, 1, true), hb).ErrorCode; code != kerr.NotCoordinator.Code {
		t.Fatalf("stale heartbeat: %s", codeName(code))
	}
	if d := c.DescribeGroup(ctx, "g", 5); d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("group after stale requests %+v", d)
	}
}
