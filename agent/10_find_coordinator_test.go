package agent

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltdata/silt/metastore/sqlite"
)

// waitCluster waits until every agent sees n live agents. Membership is
// refreshed on a timer (liveRefresh), so there is no event to wait on.
func waitCluster(t *testing.T, n int, agents ...*testAgent) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(15 * time.Second)
	for {
		ok := true
		for _, a := range agents {
			ok = ok && len(a.liveAgents()) == n
		}
		if ok {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("agents did not converge on %d live agents", n)
		}
	}
}

// TestGroupCoordinatorTakeover: the agent coordinating a group stops; the
// other agent takes the group over from the metastore, and the consumer
// carries on with its committed offsets and without losing records.
func TestGroupCoordinatorTakeover(t *testing.T) {
	dir := t.TempDir()
	store, err := sqlite.Open(t.Context(), filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	a1 := startAgentOn(t, store, dir, groupTestConfig)
	a2 := startAgentOn(t, store, dir, groupTestConfig)
	waitCluster(t, 2, a1, a2)

	group := ""
	for i := 0; group == ""; i++ {
		if name := "takeover-" + strconv.Itoa(i); named(t)(a1.coordinatorFor(name)).NodeID == a1.NodeID() {
			group = name
		}
	}
	for _, a := range []*testAgent{a1, a2} {
		if got := named(t)(a.coordinatorFor(group)).NodeID; got != a1.NodeID() {
			t.Fatalf("agents disagree on the coordinator: %d vs %d", got, a1.NodeID())
		}
	}

	makeTopic(t, a2, "moving", 2)
	first := produceN(t, a2, "moving", 2, "first", 20)
	w := newGroupWatch()
	c := startConsumer(t, a2, w, "c", group, "moving",
		kgo.SeedBrokers(a1.Addr(), a2.Addr()), kgo.SessionTimeout(5*time.Second))
	w.waitSeen(t, first)
	if err := c.cl.CommitUncommittedOffsets(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}

	if err := a1.Shutdown(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	waitCluster(t, 1, a2)
	second := produceN(t, a2, "moving", 2, "second", 20)
	w.waitSeen(t, second)
	if err := c.cl.CommitUncommittedOffsets(ctxTimeout(t)); err != nil {
		t.Fatalf("commit through the new coordinator: %v", err)
	}
	_, adm := a2.client(t)
	offs, err := adm.FetchOffsets(ctxTimeout(t), group)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		if o, _ := offs.Lookup("moving", p); o.At != 20 {
			t.Fatalf("partition %d committed %d, want 20", p, o.At)
		}
	}
	dg, err := adm.DescribeGroups(ctxTimeout(t), group)
	if err != nil {
		t.Fatal(err)
	}
	if g := dg[group]; g.State != "Stable" || len(g.Members) != 1 {
		t.Fatalf("group on the new coordinator: %s with %d members", g.State, len(g.Members))
	}
}
