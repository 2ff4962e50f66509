package agent

import (
	"context"
	"path/filepath"
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
