package e2e

// KIP-848 consumer groups end to end: franz-go consumers with the
// server-side assignors growing from one member to four and back with a
// member killed on the way, a group surviving its coordinator's SIGKILL on
// a three-agent cluster, the Java consumer with group.protocol=consumer
// and KafkaShareConsumer, and the time from joining to the first record
// against the classic protocol (MEASURE lines).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltdata/silt/tests/harness"
)

// killDialer lets a test cut a client off the network without it leaving
// its group or sending anything more: to the brokers, the process died.
type killDialer struct {
	mu     sync.Mutex // guards conns and killed
	conns  []net.Conn
	killed bool
}

func (d *killDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.killed {
		c.Close()
		return nil, errors.New("killed")
	}
	d.conns = append(d.conns, c)
	return c, nil
}

func (d *killDialer) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.killed = true
	for _, c := range d.conns {
		c.Close()
	}
}

// groupLog is what a test's group consumers read: who read each record
// (by partition and offset), and when each consumer read its first.
type groupLog struct {
	mu      sync.Mutex // guards the fields below
	readers map[[2]int64][]string
	values  map[[2]int64]string
	first   map[string]time.Time
	errs    []string // failed commits
}

func (l *groupLog) commitFailed(name string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, fmt.Sprintf("%s %s: %v", time.Now().Format("15:04:05.000"), name, err))
}

func newGroupLog() *groupLog {
	return &groupLog{readers: map[[2]int64][]string{}, values: map[[2]int64]string{}, first: map[string]time.Time{}}
}

func (l *groupLog) add(name string, r *kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]int64{int64(r.Partition), r.Offset}
	l.readers[k] = append(l.readers[k], name)
	l.values[k] = string(r.Value)
	if _, ok := l.first[name]; !ok {
		l.first[name] = time.Now()
	}
}

// hasAll reports whether every record of acks was read.
func (l *groupLog) hasAll(acks []acked) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range acks {
		if len(l.readers[[2]int64{int64(a.Partition), a.Offset}]) == 0 {
			return false
		}
	}
	return true
}

// firstAt is when name read its first record (zero: not yet).
func (l *groupLog) firstAt(name string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first[name]
}

// groupMember is one franz-go group consumer polling in its own
// goroutine, committing after every poll.
type groupMember struct {
	name   string
	cl     *kgo.Client
	dialer *killDialer
	cancel context.CancelFunc
	done   chan struct{}
	start  time.Time
	once   sync.Once
}

// startGroupMember starts a consumer of topic in group that records what
// it reads in log. It polls with the rebalance blocked, commits what it
// polled and only then lets the group take partitions away: handing
// partitions over loses and repeats nothing.
func startGroupMember(t testing.TB, seeds []string, name, group, topic string, log *groupLog, opts ...kgo.Opt) *groupMember {
	t.Helper()
	m := &groupMember{name: name, dialer: &killDialer{}, done: make(chan struct{}), start: time.Now()}
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID(name),
		kgo.Dialer(m.dialer.dial),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.MetadataMinAge(500 * time.Millisecond),
		// A killed member's leave on Close fails fast.
		kgo.RetryTimeout(10 * time.Second),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil || fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) { log.add(name, r) })
			if fs.NumRecords() > 0 {
				// Not under ctx: a stop must not cut off the commit of
				// records already logged as read, or the next owner
				// reads them again. Only a killed member loses it.
				commitCtx, cancelCommit := context.WithTimeout(context.Background(), 30*time.Second)
				if err := cl.CommitUncommittedOffsets(commitCtx); err != nil {
					log.commitFailed(name, err)
				}
				cancelCommit()
			}
			cl.AllowRebalance()
			if len(fs.Errors()) > 0 {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop ends the poll loop and closes the client, which leaves the group.
// The loop may have returned between a poll and its AllowRebalance, so
// the close allows rebalances: a plain Close would wait forever for the
// revocation that leaving starts.
func (m *groupMember) stop() {
	m.once.Do(func() {
		m.cancel()
		<-m.done
		m.cl.CloseAllowingRebalance()
	})
}

// waitCommittedEnd waits for group's commits to reach the end of every
// partition of topic that has records (an empty one has nothing to
// commit); on a timeout it says where they stopped and which commits
// failed.
func waitCommittedEnd(t testing.TB, ctx context.Context, addr, group, topic string, log *groupLog) {
	t.Helper()
	ends := endOffsets(t, ctx, addr, topic)
	maps.DeleteFunc(ends, func(_ int32, end int64) bool { return end == 0 })
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		got := committedOffsets(t, ctx, addr, group, topic)
		if sameOffsets(got, ends) {
			return
		}
		select {
		case <-ctx.Done():
			log.mu.Lock()
			defer log.mu.Unlock()
			t.Fatalf("group %s committed %v of %s, ends %v; failed commits: %v", group, got, topic, ends, log.errs)
		case <-tick.C:
		}
	}
}

// describeConsumerGroup describes a KIP-848 group (ConsumerGroupDescribe).
func describeConsumerGroup(ctx context.Context, adm *kadm.Client, group string) (kadm.DescribedConsumerGroup, error) {
	gs, err := adm.DescribeConsumerGroups(ctx, group)
	if err != nil {
		return kadm.DescribedConsumerGroup{}, err
	}
	g, ok := gs[group]
	if !ok {
		return g, fmt.Errorf("group %s missing from %v", group, gs)
	}
	return g, g.Err
}

// assignmentOf maps each member (by client id) to its assigned partitions
// of topic, sorted.
func assignmentOf(g kadm.DescribedConsumerGroup, topic string) map[string][]int32 {
	out := map[string][]int32{}
	for _, m := range g.Members {
		out[m.ClientID] = partitionsOf(m.Assignment, topic)
	}
	return out
}

// coordinatorAddr asks adm for group's coordinator (its address).
func coordinatorAddr(ctx context.Context, adm *kadm.Client, group string) (string, bool) {
	r, ok := adm.FindGroupCoordinators(ctx, group)[group]
	if !ok || r.Err != nil {
		return "", false
	}
	return fmt.Sprintf("%s:%d", r.Host, r.Port), true
}

// partitionsOf returns s's partitions of topic, sorted.
func partitionsOf(s kadm.TopicsSet, topic string) []int32 {
	return slices.Sorted(maps.Keys(s[topic]))
}

// settled says why g is not yet a stable split of partitions [0, parts)
// of topic among exactly the members named (client ids), every one
// reconciled to the target (member epochs = group epoch = assignment
// epoch, assignments = targets, disjoint, balanced); "" when it is.
func settled(g kadm.DescribedConsumerGroup, topic string, parts int, names ...string) string {
	if g.State != "Stable" || g.Epoch != g.AssignmentEpoch {
		return fmt.Sprintf("state %s, group epoch %d, assignment epoch %d", g.State, g.Epoch, g.AssignmentEpoch)
	}
	var got []string
	owner := map[int32]string{}
	for _, m := range g.Members {
		got = append(got, m.ClientID)
		if m.MemberEpoch != g.Epoch {
			return fmt.Sprintf("member %s at epoch %d of %d", m.ClientID, m.MemberEpoch, g.Epoch)
		}
		have, want := partitionsOf(m.Assignment, topic), partitionsOf(m.TargetAssignment, topic)
		if !slices.Equal(have, want) {
			return fmt.Sprintf("member %s owns %v, target %v", m.ClientID, have, want)
		}
		if n := len(have); n < parts/len(names) || n > (parts+len(names)-1)/len(names) {
			return fmt.Sprintf("member %s owns %v: unbalanced", m.ClientID, have)
		}
		for _, p := range have {
			if o, dup := owner[p]; dup {
				return fmt.Sprintf("partition %d owned by %s and %s", p, o, m.ClientID)
			}
			owner[p] = m.ClientID
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		return fmt.Sprintf("members %v, want %v", got, want)
	}
	if len(owner) != parts {
		return fmt.Sprintf("%d of %d partitions assigned", len(owner), parts)
	}
	return ""
}

// waitSettled waits for settled to hold and returns the group.
func waitSettled(t testing.TB, ctx context.Context, adm *kadm.Client, group, topic string, parts int, names ...string) kadm.DescribedConsumerGroup {
	t.Helper()
	var g kadm.DescribedConsumerGroup
	var why string
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var err error
		if g, err = describeConsumerGroup(ctx, adm, group); err != nil {
			why = err.Error()
		} else if why = settled(g, topic, parts, names...); why == "" {
			return g
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s never split %d partitions among %v: %s", group, parts, names, why)
		case <-tick.C:
		}
	}
}

// TestConsumerGroupScaling (KIP-848, both backends): franz-go consumers
// with the server-side uniform assignor. One member starts alone and gets
// every partition at once; three more join one by one, and each time the
// partitions are split evenly with every member reconciled; one member is
// killed (cut off without leaving), and its partitions move to the others
// once its session (3 s here) expires; two members leave and the last one
// gets everything back. Production goes on between the steps. Every
// acknowledged record is read; a record is read twice only if the killed
// member read it first (it died before it could commit); the committed
// offsets end at the end of every partition.
func TestConsumerGroupScaling(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newSilt func(t testing.TB, extra ...string) *silt) {
		s := newSilt(t, "--flush-interval", "20ms", "--log-level", "info",
			"--group-consumer-session-timeout", "3s", "--group-consumer-heartbeat-interval", "250ms").Start()
		ctx := testContext(t, 4*time.Minute)
		const (
			topic = "scale848"
			group = "scale848"
			parts = 8
		)
		addr := s.Kafka()
		createTopic(t, ctx, addr, topic, parts)
		adm := kadm.NewClient(newClient(t, addr))
		log := newGroupLog()
		var acks []acked
		produce := func(prefix string, n int) {
			acks = append(acks, produceKeyed(t, ctx, addr, topic, prefix, n, 40)...)
		}
		start := func(name string) *groupMember {
			return startGroupMember(t, []string{addr}, name, group, topic, log, kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer())
		}

		produce("before", 400)
		m1 := start("m1")
		g := waitSettled(t, ctx, adm, group, topic, parts, "m1")
		if g.AssignorName != "uniform" {
			t.Errorf("assignor %q, want uniform", g.AssignorName)
		}
		waitFor(t, ctx, "m1 reading", func() bool { return !log.firstAt("m1").IsZero() })
		t.Logf("m1 alone: every partition at epoch %d, first record %v after it started", g.Epoch, log.firstAt("m1").Sub(m1.start).Round(time.Millisecond))

		members := []*groupMember{m1}
		names := []string{"m1"}
		for _, name := range []string{"m2", "m3", "m4"} {
			m := start(name)
			members, names = append(members, m), append(names, name)
			produce("with "+name, 100)
			g := waitSettled(t, ctx, adm, group, topic, parts, names...)
			t.Logf("%d members at epoch %d: %v", len(names), g.Epoch, assignmentOf(g, topic))
		}
		produce("four", 200)
		waitFor(t, ctx, "four members to read everything", func() bool { return log.hasAll(acks) })

		// m4 dies: its connections are cut, it sends nothing more.
		m4 := members[3]
		killedAt := time.Now()
		m4.dialer.kill()
		g = waitSettled(t, ctx, adm, group, topic, parts, "m1", "m2", "m3")
		t.Logf("m4 killed: its partitions moved after %v, at epoch %d: %v", time.Since(killedAt).Round(time.Millisecond), g.Epoch, assignmentOf(g, topic))
		produce("after the kill", 200)

		members[2].stop()
		waitSettled(t, ctx, adm, group, topic, parts, "m1", "m2")
		members[1].stop()
		g = waitSettled(t, ctx, adm, group, topic, parts, "m1")
		produce("m1 again", 200)
		waitFor(t, ctx, "every record read", func() bool { return log.hasAll(acks) })
		waitCommittedEnd(t, ctx, addr, group, topic, log)
		t.Logf("back to m1 alone at epoch %d", g.Epoch)
		m1.stop()
		m4.stop()

		log.mu.Lock()
		defer log.mu.Unlock()
		twice := 0
		for _, a := range acks {
			k := [2]int64{int64(a.Partition), a.Offset}
			if log.values[k] != a.Value {
				t.Errorf("%v read as %q", a, log.values[k])
			}
			rs := log.readers[k]
			if len(rs) > 1 {
				twice++
				if rs[0] != "m4" || slices.Contains(rs[1:], "m4") {
					t.Errorf("%v read by %v: only a record the killed m4 read first may be read again", a, rs)
				}
			}
		}
		if len(log.readers) != len(acks) {
			t.Errorf("read %d distinct records, %d acknowledged", len(log.readers), len(acks))
		}
		t.Logf("%d records, %d read again after m4 died", len(acks), twice)
	})
}

// TestConsumerGroupCoordinatorKilled (KIP-848): three agents on one
// Postgres and one bucket, three franz-go consumers (server-side range
// assignor) under steady production. The group's coordinator is
// SIGKILLed; once its lease is gone another agent coordinates the group
// from the metastore: the same members keep the same partitions at the
// same epochs (no member fenced, no rebalance), and the group goes on
// reading and committing to the end of every partition, every record read
// exactly once.
func TestConsumerGroupCoordinatorKilled(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	pg, s3 := harness.Postgres(t), harness.S3(t)
	const (
		topic = "failover848"
		group = "failover848"
		parts = 6
	)
	var agents []*silt
	for _, id := range []string{"a", "b", "c"} {
		agents = append(agents, newAgentOn(t, pg, s3, append([]string{"--agent-id", id, "--log-level", "info"}, clusterFlags...)...).Start())
	}
	seeds := []string{agents[0].Kafka(), agents[1].Kafka(), agents[2].Kafka()}
	waitAllBrokers(t, ctx, agents)
	createTopic(t, ctx, agents[0].Kafka(), topic, parts)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var prodWG sync.WaitGroup
	var mu sync.Mutex
	var acks []acked
	prod := clusterClient(t, seeds, kgo.ClientID("failover848-producer"))
	prodWG.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; runCtx.Err() == nil; i++ {
			<-tick.C
			rec := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%24), Value: fmt.Appendf(nil, "v%d", i)}
			prod.Produce(runCtx, rec, func(r *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					acks = append(acks, acked{r.Partition, r.Offset, string(r.Key), string(r.Value)})
					mu.Unlock()
				}
			})
		}
	})
	snapshot := func() []acked {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(acks)
	}

	log := newGroupLog()
	names := []string{"c1", "c2", "c3"}
	for _, name := range names {
		startGroupMember(t, seeds, name, group, topic, log, kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer())
	}
	adm := kadm.NewClient(clusterClient(t, seeds))
	before := waitSettled(t, ctx, adm, group, topic, parts, names...)
	waitFor(t, ctx, "the group reading", func() bool { a := snapshot(); return len(a) > 200 && log.hasAll(a[:200]) })

	coord := coordinatorOf(t, agents[0].Kafka(), group, agents)
	var live []*silt
	for _, s := range agents {
		if s != coord {
			live = append(live, s)
		}
	}
	killedAt := time.Now()
	coord.Kill()
	liveAdm := kadm.NewClient(newClient(t, live[0].Kafka()))
	var after kadm.DescribedConsumerGroup
	waitFor(t, ctx, "another agent to coordinate the group", func() bool {
		if at, ok := coordinatorAddr(ctx, liveAdm, group); !ok || at == coord.Kafka() {
			return false
		}
		g, err := describeConsumerGroup(ctx, liveAdm, group)
		after = g
		return err == nil
	})
	t.Logf("group coordinated by another agent %v after the SIGKILL", time.Since(killedAt).Round(time.Millisecond))
	if after.Epoch != before.Epoch || after.AssignmentEpoch != before.AssignmentEpoch {
		t.Errorf("epochs after the failover: group %d, assignment %d; before: %d, %d", after.Epoch, after.AssignmentEpoch, before.Epoch, before.AssignmentEpoch)
	}
	if a, b := assignmentOf(after, topic), assignmentOf(before, topic); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("assignment after the failover %v, before %v", a, b)
	}
	memberIDs := func(g kadm.DescribedConsumerGroup) []string {
		var ids []string
		for _, m := range g.Members {
			ids = append(ids, m.MemberID)
		}
		sort.Strings(ids)
		return ids
	}
	if a, b := memberIDs(after), memberIDs(before); !slices.Equal(a, b) {
		t.Errorf("members after the failover %v, before %v", a, b)
	}

	// The group goes on under the new coordinator: records produced after
	// the failover are read and committed.
	mark := len(snapshot())
	waitFor(t, ctx, "production after the failover", func() bool { return len(snapshot()) > mark+300 })
	stop()
	prodWG.Wait()
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	final := snapshot()
	waitFor(t, ctx, "every record read", func() bool { return log.hasAll(final) })
	waitCommittedEnd(t, ctx, live[0].Kafka(), group, topic, log)
	g, err := describeConsumerGroup(ctx, liveAdm, group)
	if err != nil {
		t.Fatal(err)
	}
	if why := settled(g, topic, parts, names...); why != "" || g.Epoch != before.Epoch {
		t.Errorf("group at the end: %s (epoch %d, before the kill %d)", why, g.Epoch, before.Epoch)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, a := range final {
		if rs := log.readers[[2]int64{int64(a.Partition), a.Offset}]; len(rs) != 1 {
			t.Errorf("%v read by %v", a, rs)
		}
	}
	t.Logf("%d records read once each; group epoch %d throughout", len(final), g.Epoch)
}

// TestJavaGroupProtocols runs the Java driver's KIP-848 check (the
// consumer with group.protocol=consumer, uniform and range assignors) and
// its share-group check (KafkaShareConsumer with explicit
// acknowledgements) with kafka-clients 4.x against silt dev and agent.
func TestJavaGroupProtocols(t *testing.T) {
	j := harness.Java(t)
	forEachBackend(t, func(t *testing.T, newSilt func(t testing.TB, extra ...string) *silt) {
		s := newSilt(t, "--flush-interval", "20ms", "--log-level", "info").Start()
		runJavaChecks(t, j.Java, j.Clients4CP, s.Kafka(), "consumer-protocol", "share-consumer")
	})
}

// TestRebalanceTime measures, on silt dev, how long a franz-go consumer
// takes from its start to its first record in an empty group, and how
// long a second member takes to its first record once the first holds
// every partition, with the classic protocol (cooperative-sticky, the
// default) and with KIP-848 (server-side uniform), and logs MEASURE
// lines (medians of a few runs). Both protocols run with their default
// timings (franz-go's 3 s heartbeat for classic; the broker's 5 s for
// KIP-848, though a member joining is answered at once).
func TestRebalanceTime(t *testing.T) {
	s := newDev(t, "--flush-interval", "20ms", "--log-level", "info").Start()
	ctx := testContext(t, 4*time.Minute)
	addr := s.Kafka()
	const (
		parts = 4
		runs  = 5
	)
	for _, proto := range []struct {
		name string
		opts []kgo.Opt
	}{
		{"classic", nil},
		{"consumer", []kgo.Opt{kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer()}},
	} {
		var joins, seconds []time.Duration
		for run := range runs {
			topic := fmt.Sprintf("rebalance-%s-%d", proto.name, run)
			createTopic(t, ctx, addr, topic, parts)
			produceKeyed(t, ctx, addr, topic, "r", 400, 40)
			log := newGroupLog()
			m1 := startGroupMember(t, []string{addr}, "m1", topic, topic, log, proto.opts...)
			waitFor(t, ctx, "m1 reading", func() bool { return !log.firstAt("m1").IsZero() })
			joins = append(joins, log.firstAt("m1").Sub(m1.start))
			m2 := startGroupMember(t, []string{addr}, "m2", topic, topic, log, proto.opts...)
			// m2 reads nothing until records arrive in its partitions.
			stopProd := make(chan struct{})
			prodDone := make(chan struct{})
			go func() {
				defer close(prodDone)
				// Records go round the partitions (the default
				// partitioner may stick to m1's for a long time).
				cl := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
				for i := 0; ; i++ {
					select {
					case <-stopProd:
						return
					case <-time.After(5 * time.Millisecond):
					}
					cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(i % parts), Value: []byte("x")}, nil)
				}
			}()
			waitFor(t, ctx, "m2 reading", func() bool { return !log.firstAt("m2").IsZero() })
			close(stopProd)
			<-prodDone
			seconds = append(seconds, log.firstAt("m2").Sub(m2.start))
			m2.stop()
			m1.stop()
		}
		t.Logf("MEASURE rebalance %s protocol (franz-go, silt dev, %d partitions): start -> first record alone: median %v (%v); second member start -> its first record: median %v (%v)",
			proto.name, parts, median(joins), roundAll(joins), median(seconds), roundAll(seconds))
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}

func roundAll(ds []time.Duration) string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Round(time.Millisecond).String())
	}
	return strings.Join(out, " ")
}
