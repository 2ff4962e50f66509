package agent

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/sqlite"
)

// stallingStore is a real store whose lease renewals can be held back, as
// for an agent whose renewals stop getting through.
type stallingStore struct {
	metastore.Backend
	stalled atomic.Bool
}

func (s *stallingStore) RenewAgent(ctx context.Context, agentID string, ttl time.Duration) error {
	if s.stalled.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.Backend.RenewAgent(ctx, agentID, ttl)
}

// waitLease waits until the agent's lease is held (or not) under a term
// that satisfies termOK.
func waitLease(t *testing.T, a *testAgent, held bool, termOK func(uint64) bool) uint64 {
	t.Helper()
	ctx := ctxTimeout(t)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		term, h := a.members.lease()
		if h == held && termOK(term) {
			return term
		}
		select {
		case <-ctx.Done():
			t.Fatalf("lease held=%v term=%d, waiting for held=%v", h, term, held)
		case <-tick.C:
		}
	}
}

// TestGroupCoordinationNeedsLease: once the agent's lease renewal is
// overdue it answers group requests NOT_COORDINATOR, and after it has
// registered anew it coordinates again (from what the metastore holds).
func TestGroupCoordinationNeedsLease(t *testing.T) {
	dir := t.TempDir()
	inner, err := sqlite.Open(t.Context(), filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	store := &stallingStore{Backend: inner}
	a := startAgentOn(t, store, dir, func(c *Config) { c.LeaseTTL = time.Second })
	if _, err := a.createTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, a.Addr())
	commit := func(offset int64) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.SetVersion(8)
		req.Group, req.Generation = "g", -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Offset = offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return c.roundTrip(req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	if code := commit(1); code != 0 {
		t.Fatalf("commit with the lease held: %s", codeName(code))
	}
	first := waitLease(t, a, true, func(uint64) bool { return true })

	store.stalled.Store(true)
	waitLease(t, a, false, func(uint64) bool { return true })
	if code := commit(2); code != kerr.NotCoordinator.Code {
		t.Fatalf("commit with the lease renewal overdue: %s, want NOT_COORDINATOR", codeName(code))
	}

	store.stalled.Store(false)
	waitLease(t, a, true, func(term uint64) bool { return term > first })
	if code := commit(3); code != 0 {
		t.Fatalf("commit after registering anew: %s", codeName(code))
	}
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.SetVersion(7)
	fetch.Group = "g"
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = "t", []int32{0}
	fetch.Topics = append(fetch.Topics, ft)
	if got := c.roundTrip(fetch).(*kmsg.OffsetFetchResponse).Topics[0].Partitions[0].Offset; got != 3 {
		t.Fatalf("committed offset %d, want 3", got)
	}
}

// blindStore is a real store whose list of live agents can be made to
// fail, as for an agent that cannot reach the metastore (a cut link).
type blindStore struct {
	metastore.Backend
	blind atomic.Bool
}

func (s *blindStore) LiveAgents(ctx context.Context) ([]metastore.Agent, error) {
	if s.blind.Load() {
		return nil, errors.New("metastore unreachable")
	}
	return s.Backend.LiveAgents(ctx)
}

// TestNoAgentNamedPastItsLease: an agent names another as broker, leader
// or coordinator only while it can vouch for that agent's lease, however
// stale its list. Agent a can no longer read the live agents; agent b's
// renewals stop (b is as good as dead). Once b's lease has expired in the
// metastore, a must not send clients to b, although its cached list still
// has it. And once a's own renewals stop too, a names no agent at all:
// leaders -1 with LEADER_NOT_AVAILABLE, COORDINATOR_NOT_AVAILABLE, both
// retriable. (Before, a kept naming b until a list read succeeded, and
// named itself while it could no longer vouch for its own lease.)
func TestNoAgentNamedPastItsLease(t *testing.T) {
	dir := t.TempDir()
	inner, err := sqlite.Open(t.Context(), filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	aStore := &blindStore{Backend: &stallingStore{Backend: inner}}
	bStore := &stallingStore{Backend: inner}
	short := func(c *Config) { c.LeaseTTL = time.Second }
	a := startAgentOn(t, aStore, filepath.Join(dir, "a"), short)
	b := startAgentOn(t, bStore, filepath.Join(dir, "b"), short)
	waitCluster(t, 2, a, b)
	if _, err := a.createTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 8}); err != nil {
		t.Fatal(err)
	}

	c := dialRaw(t, a.Addr())
	ask := func() (brokers []int32, leaders map[int32]int16, coordinator int32, coordErr int16) {
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(12)
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("t")
		md.Topics = append(md.Topics, rt)
		resp := c.roundTrip(md).(*kmsg.MetadataResponse)
		for _, br := range resp.Brokers {
			brokers = append(brokers, br.NodeID)
		}
		leaders = map[int32]int16{}
		for _, p := range resp.Topics[0].Partitions {
			if p.ErrorCode != 0 {
				leaders[-1] = p.ErrorCode
				continue
			}
			leaders[p.Leader] = 0
		}
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.SetVersion(3)
		fc.CoordinatorKey = "g"
		fr := c.roundTrip(fc).(*kmsg.FindCoordinatorResponse)
		return brokers, leaders, fr.NodeID, fr.ErrorCode
	}
	if brokers, leaders, _, _ := ask(); len(brokers) != 2 || len(leaders) != 2 {
		t.Fatalf("healthy: brokers %v, leaders %v", brokers, leaders)
	}

	aStore.blind.Store(true)
	bStore.stalled.Store(true)
	waitFor(t, "b's lease to expire in the metastore", func() bool {
		live, err := inner.LiveAgents(t.Context())
		return err == nil && len(live) == 1 && live[0].NodeID == a.NodeID()
	})
	brokers, leaders, coord, code := ask()
	if len(brokers) != 1 || brokers[0] != a.NodeID() || len(leaders) != 1 || leaders[a.NodeID()] != 0 || code != 0 || coord != a.NodeID() {
		t.Fatalf("b's lease expired, a cannot list the live agents: a answers brokers %v, leaders %v, coordinator %d (%s); want only a", brokers, leaders, coord, codeName(code))
	}

	aStore.Backend.(*stallingStore).stalled.Store(true)
	waitLease(t, a, false, func(uint64) bool { return true })
	brokers, leaders, _, code = ask()
	if len(brokers) != 1 || brokers[0] != a.NodeID() || len(leaders) != 1 || leaders[-1] != kerr.LeaderNotAvailable.Code || code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("a cannot vouch for any lease: brokers %v, leaders %v, coordinator error %s; want only a listed, no leader, COORDINATOR_NOT_AVAILABLE", brokers, leaders, codeName(code))
	}

	aStore.blind.Store(false)
	aStore.Backend.(*stallingStore).stalled.Store(false)
	waitLease(t, a, true, func(uint64) bool { return true })
	waitFor(t, "a naming itself again", func() bool {
		_, leaders, coord, code := ask()
		return len(leaders) == 1 && leaders[a.NodeID()] == 0 && code == 0 && coord == a.NodeID()
	})
}

// outageStore is a real store whose lease renewals fail at once while
// down is set, as against a Postgres that is restarting; it records when
// each renewal was asked and how it went.
type outageStore struct {
	metastore.Backend
	down atomic.Bool

	mu    sync.Mutex // mu guards calls
	calls []renewal
}

type renewal struct {
	at  time.Time
	err error
}

func (s *outageStore) RenewAgent(ctx context.Context, agentID string, ttl time.Duration) error {
	err := errors.New("connection refused")
	if !s.down.Load() {
		err = s.Backend.RenewAgent(ctx, agentID, ttl)
	}
	s.mu.Lock()
	s.calls = append(s.calls, renewal{time.Now(), err})
	s.mu.Unlock()
	return err
}

func (s *outageStore) renewals() []renewal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]renewal(nil), s.calls...)
}

// TestLeaseSurvivesShortMetastoreOutage: renewals that fail are tried
// again soon, not a whole renewal interval later, so a metastore outage
// shorter than the lease (here 2.5 renewal intervals from the last
// renewal) does not end it. Before, two failed renewals in a row left the
// next try at the lease's very end: after a Postgres restart of a few
// seconds every agent's lease lapsed at once, every agent named no broker
// for a renewal interval and every group stalled.
func TestLeaseSurvivesShortMetastoreOutage(t *testing.T) {
	dir := t.TempDir()
	inner, err := sqlite.Open(t.Context(), filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	store := &outageStore{Backend: inner}
	const ttl = 3 * time.Second
	a := startAgentOn(t, store, dir, func(c *Config) { c.LeaseTTL = ttl })
	term := waitLease(t, a, true, func(uint64) bool { return true })

	// The outage starts right after a successful renewal.
	n := len(store.renewals())
	waitFor(t, "a renewal", func() bool { return len(store.renewals()) > n })
	last := store.renewals()[len(store.renewals())-1]
	if last.err != nil {
		t.Fatalf("renewal before the outage: %v", last.err)
	}
	store.down.Store(true)
	hold := time.NewTimer(time.Until(last.at.Add(ttl * 5 / 6))) // the outage itself
	<-hold.C
	store.down.Store(false)
	waitFor(t, "a renewal after the outage", func() bool {
		rs := store.renewals()
		return rs[len(rs)-1].err == nil && rs[len(rs)-1].at.After(last.at)
	})

	var failed []time.Time
	for _, r := range store.renewals() {
		if r.at.After(last.at) && r.err != nil {
			failed = append(failed, r.at)
		}
	}
	if len(failed) < 2 {
		t.Fatalf("%d renewals failed during an outage of 2.5 renewal intervals", len(failed))
	}
	for i := 1; i < len(failed); i++ {
		if gap := failed[i].Sub(failed[i-1]); gap > ttl/6 {
			t.Errorf("a failed renewal was tried again after %v; want well within a renewal interval (%v)", gap, ttl/3)
		}
	}
	if now, held := a.members.lease(); now != term || !held {
		t.Fatalf("after an outage shorter than the lease: term %d (was %d), held %v; the lease must have survived", now, term, held)
	}
}
