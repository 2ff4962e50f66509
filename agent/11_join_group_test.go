package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltdata/silt/metastore"
)

// groupTestConfig makes groups react fast enough for tests.
func groupTestConfig(c *Config) {
	c.Ingest.FlushInterval = 5 * time.Millisecond
	c.Group.MinSessionTimeout = 100 * time.Millisecond
}

func makeTopic(t *testing.T, a *testAgent, name string, partitions int32) {
	t.Helper()
	if _, err := a.store.CreateTopic(t.Context(), metastore.TopicSpec{Name: name, Partitions: partitions}); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
}

// produceN writes n records spread evenly over partitions, values
// "<prefix>-<i>", and returns the values.
func produceN(t *testing.T, a *testAgent, topic string, partitions int32, prefix string, n int) []string {
	t.Helper()
	cl, _ := a.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	var vals []string
	for i := range n {
		v := fmt.Sprintf("%s-%d", prefix, i)
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: []byte(v)})
		vals = append(vals, v)
	}
	if err := cl.ProduceSync(ctxTimeout(t), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return vals
}

// groupWatch collects what a set of test consumers saw and owned. Tests
// wait on its notifications (every record and every assignment change)
// instead of polling.
type groupWatch struct {
	mu      sync.Mutex
	seen    map[string]int            // record value -> times consumed
	owned   map[string]map[int32]bool // consumer name -> partitions it owns
	revokes map[string]int            // consumer name -> OnPartitionsRevoked calls
	changed chan struct{}
}

func newGroupWatch() *groupWatch {
	return &groupWatch{seen: map[string]int{}, owned: map[string]map[int32]bool{}, revokes: map[string]int{}, changed: make(chan struct{}, 1)}
}

func (w *groupWatch) notify() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// waitFor blocks until cond (called under w.mu) holds.
func (w *groupWatch) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		w.mu.Lock()
		ok := cond()
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-w.changed:
		case <-timeout:
			w.mu.Lock()
			defer w.mu.Unlock()
			t.Fatalf("timed out waiting for %s; owned %v, %d values seen", what, w.owned, len(w.seen))
		}
	}
}

// waitSeen waits until every value was consumed at least once.
func (w *groupWatch) waitSeen(t *testing.T, vals []string) {
	t.Helper()
	w.waitFor(t, fmt.Sprintf("%d records", len(vals)), func() bool {
		for _, v := range vals {
			if w.seen[v] == 0 {
				return false
			}
		}
		return true
	})
}

// waitSplit waits until exactly the named consumers own all partitions
// 0..n-1 between them, each at least one, none twice.
func (w *groupWatch) waitSplit(t *testing.T, n int32, names ...string) {
	t.Helper()
	w.waitFor(t, fmt.Sprintf("%v to share %d partitions", names, n), func() bool {
		count := map[int32]int{}
		for _, name := range names {
			if len(w.owned[name]) == 0 {
				return false
			}
			for p := range w.owned[name] {
				count[p]++
			}
		}
		for p := range n {
			if count[p] != 1 {
				return false
			}
		}
		return len(count) == int(n)
	})
}

func (w *groupWatch) ownedBy(name string) []int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int32
	for p := range w.owned[name] {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// killDialer lets a test cut a client off the network without it leaving
// its group: the process "dies".
type killDialer struct {
	mu     sync.Mutex // guards conns and killed
	conns  []net.Conn
	killed bool
}

func (d *killDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.killed {
		return nil, errors.New("killed")
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, host)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *killDialer) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.killed = true
	for _, c := range d.conns {
		c.Close()
	}
}

// testConsumer is one group consumer polling in its own goroutine (owned
// by the test: stop closes the client and waits for the goroutine).
type testConsumer struct {
	name   string
	cl     *kgo.Client
	dialer *killDialer
	done   chan struct{}
	once   sync.Once
}

func (c *testConsumer) stop() {
	c.once.Do(func() {
		c.cl.Close()
		<-c.done
	})
}

func startConsumer(t *testing.T, a *testAgent, w *groupWatch, name, group, topic string, opts ...kgo.Opt) *testConsumer {
	t.Helper()
	tc := &testConsumer{name: name, dialer: &killDialer{}, done: make(chan struct{})}
	owned := func(_ context.Context, _ *kgo.Client, m map[string][]int32, add bool) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.owned[name] == nil {
			w.owned[name] = map[int32]bool{}
		}
		for _, p := range m[topic] {
			if add {
				w.owned[name][p] = true
			} else {
				delete(w.owned[name], p)
			}
		}
		w.notify()
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(a.Addr()),
		kgo.Dialer(tc.dialer.dial),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(time.Second),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.RebalanceTimeout(5 * time.Second),
		kgo.OnPartitionsAssigned(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) { owned(ctx, cl, m, true) }),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			w.mu.Lock()
			w.revokes[name]++
			w.mu.Unlock()
			owned(ctx, cl, m, false)
			_ = cl.CommitMarkedOffsets(ctx) // as kgo does by default without this hook
		}),
		kgo.OnPartitionsLost(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) { owned(ctx, cl, m, false) }),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	tc.cl = cl
	go func() {
		defer close(tc.done)
		for {
			fs := cl.PollFetches(context.Background())
			if fs.IsClientClosed() {
				return
			}
			w.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) { w.seen[string(r.Value)]++ })
			w.mu.Unlock()
			w.notify()
		}
	}()
	t.Cleanup(tc.stop)
	return tc
}

// TestGroupConsumersShareAndFailOver runs real franz-go group consumers
// with every balancer: partitions are shared without overlap, every record
// is consumed, and the partitions of a member that leaves, then of one
// that dies (session timeout), move to the others.
func TestGroupConsumersShareAndFailOver(t *testing.T) {
	for _, b := range []kgo.GroupBalancer{kgo.RangeBalancer(), kgo.RoundRobinBalancer(), kgo.StickyBalancer(), kgo.CooperativeStickyBalancer()} {
		t.Run(b.ProtocolName(), func(t *testing.T) {
			a := startAgent(t, groupTestConfig)
			const parts = 6
			topic := "events"
			makeTopic(t, a, topic, parts)
			w := newGroupWatch()
			var cs []*testConsumer
			for i := range 3 {
				cs = append(cs, startConsumer(t, a, w, "c"+strconv.Itoa(i), "g", topic, kgo.Balancers(b)))
			}
			w.waitSplit(t, parts, "c0", "c1", "c2")
			first := produceN(t, a, topic, parts, "first", 300)
			w.waitSeen(t, first)

			// c0 leaves (LeaveGroup): c1 and c2 take its partitions.
			cs[0].stop()
			w.waitSplit(t, parts, "c1", "c2")

			// c1 dies: no LeaveGroup, no heartbeats. Its session
			// expires and c2 gets everything.
			cs[1].dialer.kill()
			w.waitSplit(t, parts, "c2")
			second := produceN(t, a, topic, parts, "second", 300)
			w.waitSeen(t, second)
			cs[1].stop()

			// The group is Stable with one member that owns all.
			_, adm := a.client(t)
			dg, err := adm.DescribeGroups(ctxTimeout(t), "g")
			if err != nil {
				t.Fatal(err)
			}
			g := dg["g"]
			if g.State != "Stable" || len(g.Members) != 1 || len(g.AssignedPartitions()[topic]) != parts {
				t.Fatalf("describe: state %s, %d members, assigned %v", g.State, len(g.Members), g.AssignedPartitions())
			}
		})
	}
}

// TestGroupResumesAtCommittedOffsets: a second consumer of the group
// starts exactly where the first one committed: nothing skipped, nothing
// read again.
func TestGroupResumesAtCommittedOffsets(t *testing.T) {
	a := startAgent(t, groupTestConfig)
	const parts = 3
	makeTopic(t, a, "orders", parts)
	first := produceN(t, a, "orders", parts, "first", 30)

	w1 := newGroupWatch()
	c1 := startConsumer(t, a, w1, "c1", "resume", "orders", kgo.DisableAutoCommit())
	w1.waitSeen(t, first)
	if err := c1.cl.CommitUncommittedOffsets(ctxTimeout(t)); err != nil {
		t.Fatalf("commit: %v", err)
	}
	c1.stop()

	second := produceN(t, a, "orders", parts, "second", 30)
	// Consumer lag on scrape: 10 new records per partition since the
	// commit.
	want := ""
	for p := range parts {
		want += fmt.Sprintf("silt_group_lag{group=\"resume\",partition=\"%d\",topic=\"orders\"} 10\n", p)
	}
	if err := testutil.GatherAndCompare(a.reg, strings.NewReader(
		"# HELP silt_group_lag Records between a group's committed offset and the partition's high watermark, for groups loaded on this coordinator.\n# TYPE silt_group_lag gauge\n"+want),
		"silt_group_lag"); err != nil {
		t.Fatalf("lag metric: %v", err)
	}
	w2 := newGroupWatch()
	startConsumer(t, a, w2, "c2", "resume", "orders")
	w2.waitSeen(t, second)
	w2.mu.Lock()
	defer w2.mu.Unlock()
	for _, v := range first {
		if w2.seen[v] != 0 {
			t.Fatalf("record %s committed by the first consumer was read again", v)
		}
	}
}

// TestStaticMemberRestartKeepsPartitions: a static member (group.instance.id)
// that restarts within its session gets its partitions back and the other
// member sees no rebalance.
func TestStaticMemberRestartKeepsPartitions(t *testing.T) {
	a := startAgent(t, groupTestConfig)
	const parts = 4
	makeTopic(t, a, "static", parts)
	w := newGroupWatch()
	static := func(name string) *testConsumer {
		return startConsumer(t, a, w, name, "sg", "static",
			kgo.InstanceID(name), kgo.Balancers(kgo.RangeBalancer()), kgo.SessionTimeout(10*time.Second))
	}
	s1 := static("s1")
	static("s2")
	w.waitSplit(t, parts, "s1", "s2")
	before := w.ownedBy("s1")
	w.mu.Lock()
	revokesBefore := w.revokes["s2"]
	w.mu.Unlock()

	s1.stop() // a static member does not leave the group on close
	w.mu.Lock()
	delete(w.owned, "s1")
	w.mu.Unlock()
	static("s1")
	w.waitSplit(t, parts, "s1", "s2")
	if after := w.ownedBy("s1"); !slices.Equal(before, after) {
		t.Fatalf("restarted static member owns %v, before %v", after, before)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := w.revokes["s2"] - revokesBefore; n != 0 {
		t.Fatalf("the other member saw %d revocations during a static restart, want none", n)
	}
}
