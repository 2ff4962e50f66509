package group

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/postgres"
	"github.com/siltdata/silt/metastore/sqlite"
	"github.com/siltdata/silt/tests/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.RunCheckingLeaks(m)) }

// testConfig has short timeouts so expiry tests run quickly.
func testConfig() Config {
	c := DefaultConfig()
	c.MinSessionTimeout = 10 * time.Millisecond
	// Members started together land in one generation.
	c.InitialRebalanceDelay = 300 * time.Millisecond
	return c
}

type env struct {
	t     *testing.T
	store Store
	topic metastore.Topic
}

// newEnv is a SQLite metastore with topic "t" (4 partitions).
func newEnv(t *testing.T) *env {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return setupEnv(t, s)
}

// newPostgresEnv is newEnv on a fresh Postgres database from the harness.
func newPostgresEnv(t *testing.T) *env {
	t.Helper()
	s, err := postgres.Open(t.Context(), harness.Postgres(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return setupEnv(t, s)
}

func setupEnv(t *testing.T, s Store) *env {
	t.Helper()
	t.Cleanup(func() { s.Close() })
	topic, err := s.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: s, topic: topic}
}

func (e *env) coordinator(cfg Config) *Coordinator { return e.coordinatorOwnedBy(cfg, nil) }

// coordinatorOwnedBy is a coordinator that asks owner before it acts.
func (e *env) coordinatorOwnedBy(cfg Config, owner Ownership) *Coordinator {
	t := e.t
	e.t.Helper()
	c, err := New(cfg, e.store, owner, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// consumerMeta is consumer-protocol metadata subscribing to topics.
func consumerMeta(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

type joinOpts struct {
	version   int16
	member    string
	instance  *string
	session   time.Duration
	rebalance time.Duration
	protocols []kmsg.JoinGroupRequestProtocol
	protoType string
}

func joinReq(group string, o joinOpts) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = o.version
	if r.Version == 0 && o.version == 0 {
		r.Version = 9
	}
	r.Group = group
	r.MemberID = o.member
	r.InstanceID = o.instance
	r.SessionTimeoutMillis = int32(orDefault(o.session, 10*time.Second).Milliseconds())
	r.RebalanceTimeoutMillis = int32(orDefault(o.rebalance, 5*time.Second).Milliseconds())
	r.ProtocolType = o.protoType
	if r.ProtocolType == "" {
		r.ProtocolType = "consumer"
	}
	r.Protocols = o.protocols
	if r.Protocols == nil {
		r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta("t")}}
	}
	return r
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// join runs the full join handshake (MEMBER_ID_REQUIRED when asked) and
// returns the final response.
func join(ctx context.Context, t *testing.T, c *Coordinator, group string, o joinOpts) *kmsg.JoinGroupResponse {
	t.Helper()
	resp := c.JoinGroup(ctx, Client{ID: "cl", Host: "/127.0.0.1"}, joinReq(group, o))
	if resp.ErrorCode == kerr.MemberIDRequired.Code {
		o.member = resp.MemberID
		resp = c.JoinGroup(ctx, Client{ID: "cl", Host: "/127.0.0.1"}, joinReq(group, o))
	}
	return resp
}

// joinAll joins n members concurrently (one generation) and returns their
// responses.
func joinAll(ctx context.Context, t *testing.T, c *Coordinator, group string, opts []joinOpts) []*kmsg.JoinGroupResponse {
	t.Helper()
	out := make([]*kmsg.JoinGroupResponse, len(opts))
	var wg sync.WaitGroup
	for i := range opts {
		wg.Go(func() { out[i] = join(ctx, t, c, group, opts[i]) })
	}
	wg.Wait()
	return out
}

func syncReq(group, member string, gen int32, assign map[string][]byte) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = 5
	r.Group, r.MemberID, r.Generation = group, member, gen
	r.ProtocolType = kmsg.StringPtr("consumer")
	for id, a := range assign {
		r.GroupAssignment = append(r.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: a})
	}
	return r
}

func heartbeat(ctx context.Context, c *Coordinator, group, member string, gen int32, instance *string) int16 {
	r := heartbeatReq(group, member, gen)
	r.InstanceID = instance
	return c.Heartbeat(ctx, r).ErrorCode
}

func heartbeatReq(group, member string, gen int32) *kmsg.HeartbeatRequest {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = 4
	r.Group, r.MemberID, r.Generation = group, member, gen
	return r
}

func commitReq(group, member string, gen int32, topic string, offsets map[int32]int64) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = 9
	r.Group, r.MemberID, r.Generation = group, member, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, o
		rp.Metadata = kmsg.StringPtr("m")
		rt.Partitions = append(rt.Partitions, rp)
	}
	r.Topics = append(r.Topics, rt)
	return r
}

// commitCodes returns the per-partition codes of a commit.
func commitCodes(resp *kmsg.OffsetCommitResponse) map[int32]int16 {
	out := map[int32]int16{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[p.Partition] = p.ErrorCode
		}
	}
	return out
}

func fetchOffsets(ctx context.Context, c *Coordinator, group string, parts ...int32) map[int32]int64 {
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 7
	r.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = "t"
	rt.Partitions = parts
	r.Topics = append(r.Topics, rt)
	out := map[int32]int64{}
	for _, t := range c.OffsetFetch(ctx, r).Topics {
		for _, p := range t.Partitions {
			out[p.Partition] = p.Offset
		}
	}
	return out
}

func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(code).Error()
}

func wantCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: error %s, want %s", what, codeName(got), codeName(want))
	}
}

// states records every state change of the coordinator's groups, so
// tests wait for a transition instead of polling.
type states struct {
	mu   sync.Mutex
	seen []string // "group:State"
	ch   chan struct{}
}

func watchStates(c *Coordinator) *states {
	s := &states{ch: make(chan struct{}, 1)}
	c.stateHook = func(group, st string) {
		s.mu.Lock()
		s.seen = append(s.seen, group+":"+st)
		s.mu.Unlock()
		select {
		case s.ch <- struct{}{}:
		default:
		}
	}
	return s
}

// wait blocks until group has entered st at least n times in total.
func (s *states) wait(t *testing.T, group, st string, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		k := 0
		for _, x := range s.seen {
			if x == group+":"+st {
				k++
			}
		}
		s.mu.Unlock()
		if k >= n {
			return
		}
		select {
		case <-s.ch:
		case <-timeout:
			t.Fatalf("timed out waiting for %s to enter %s (%d times)", group, st, n)
		}
	}
}
