package e2e

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/tests/harness"
)

// TestTwoAgents runs two agents on one Postgres metastore and one bucket:
// Metadata lists both, a producer spreads partitions over both (each
// partition's "leader" is one of them), and a consumer bootstrapped from
// either reads every record: what one agent commits the other serves.
func TestTwoAgents(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	pg, s3 := harness.Postgres(t), harness.S3(t)
	a := newAgentOn(t, pg, s3, "--agent-id", "a", "--default-partitions", "8").Start()
	b := newAgentOn(t, pg, s3, "--agent-id", "b", "--default-partitions", "8").Start()

	// Agents learn of each other through their leases in the metastore,
	// asynchronously: wait until each lists both.
	want := []string{a.Kafka(), b.Kafka()}
	sort.Strings(want)
	for _, s := range []*silt{a, b} {
		waitBrokers(t, ctx, s.Kafka(), want)
	}

	const topic, n = "two-agents", 400
	prod := newClient(t, a.Kafka())
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "key-%d", i%40), Value: fmt.Appendf(nil, "value-%d", i)})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	var acks []acked
	partitions := map[int32]bool{}
	for _, r := range recs {
		acks = append(acks, acked{r.Partition, r.Offset, string(r.Key), string(r.Value)})
		partitions[r.Partition] = true
	}
	if len(partitions) < 2 {
		t.Fatalf("40 keys landed on %d partition(s) of 8", len(partitions))
	}
	// Both agents took produce requests: each cut segments.
	for _, s := range []*silt{a, b} {
		v, found, err := scrape(ctx, s.Admin(), "silt_ingest_segments_total")
		if err != nil || !found || v == 0 {
			t.Errorf("agent %s: silt_ingest_segments_total = %v (found %v, err %v), want > 0", s.Kafka(), v, found, err)
		}
	}
	checkAcked(t, acks, consumeN(t, ctx, b.Kafka(), topic, n))
	checkAcked(t, acks, consumeN(t, ctx, a.Kafka(), topic, n))
}

// waitBrokers polls Metadata on addr until its broker list is want.
func waitBrokers(t testing.TB, ctx context.Context, addr string, want []string) {
	t.Helper()
	c := dialRaw(t, addr)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 9
		resp := c.roundTrip(req).(*kmsg.MetadataResponse)
		var addrs []string
		for _, br := range resp.Brokers {
			addrs = append(addrs, fmt.Sprintf("%s:%d", br.Host, br.Port))
		}
		sort.Strings(addrs)
		if fmt.Sprint(addrs) == fmt.Sprint(want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Metadata from %s lists brokers %v, want %v", addr, addrs, want)
		case <-tick.C:
		}
	}
}

// clusterFlags speed the cluster tests up: a short flush interval makes
// acknowledgements (and so recovery) visible sooner.
var clusterFlags = []string{"--flush-interval", "50ms"}

// clusterClient is a franz-go client seeded with several agents. The
// metadata minimum age is lowered from franz-go's 5s so that the recovery
// times measured are the cluster's, not the client's refresh throttle.
func clusterClient(t testing.TB, seeds []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.MetadataMinAge(500 * time.Millisecond),
		kgo.RetryTimeout(60 * time.Second),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// chaosLog collects what the test's producers and consumers observed.
type chaosLog struct {
	mu        sync.Mutex // mu guards the fields below
	acks      []acked
	ackAt     []time.Time // ackAt[i] is when acks[i] was acknowledged
	prodErrs  []error
	consumed  map[[2]int64]string // (partition, offset) -> value, by the group
	consErrs  []string
	consErrAt []time.Time
}

func (l *chaosLog) ackCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}

// firstAckAfter returns, per partition, the first acknowledgement at or
// after since.
func (l *chaosLog) firstAckAfter(since time.Time) map[int32]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int32]time.Time{}
	for i, a := range l.acks {
		at := l.ackAt[i]
		if at.Before(since) {
			continue
		}
		if prev, ok := out[a.Partition]; !ok || at.Before(prev) {
			out[a.Partition] = at
		}
	}
	return out
}

// longestPause returns, per partition, the longest time in [from, to]
// without an acknowledgement (counted from from, and up to to after the
// last one).
func (l *chaosLog) longestPause(from, to time.Time) (pauses map[int32]time.Duration, starts map[int32]time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	times := map[int32][]time.Time{}
	for i, a := range l.acks {
		if at := l.ackAt[i]; !at.Before(from) && !at.After(to) {
			times[a.Partition] = append(times[a.Partition], at)
		}
	}
	pauses, starts = map[int32]time.Duration{}, map[int32]time.Duration{}
	for p, ts := range times {
		slices.SortFunc(ts, time.Time.Compare)
		prev := from
		for _, at := range append(ts, to) {
			if at.Sub(prev) > pauses[p] {
				pauses[p], starts[p] = at.Sub(prev), prev.Sub(from)
			}
			prev = at
		}
	}
	return pauses, starts
}

// coordinatorOf asks addr for group's coordinator and returns the agent
// of agents it names.
func coordinatorOf(t testing.TB, addr, group string, agents []*silt) *silt {
	t.Helper()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version = 3
	req.CoordinatorKey = group
	resp := dialRaw(t, addr).roundTrip(req).(*kmsg.FindCoordinatorResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("FindCoordinator %s at %s: %v", group, addr, err)
	}
	at := fmt.Sprintf("%s:%d", resp.Host, resp.Port)
	for _, s := range agents {
		if s.Kafka() == at {
			return s
		}
	}
	t.Fatalf("group %s coordinator %s is none of the live agents", group, at)
	return nil
}

// waitAllBrokers waits until every agent lists exactly agents as brokers.
func waitAllBrokers(t testing.TB, ctx context.Context, agents []*silt) {
	t.Helper()
	var want []string
	for _, s := range agents {
		want = append(want, s.Kafka())
	}
	slices.Sort(want)
	for _, s := range agents {
		waitBrokers(t, ctx, s.Kafka(), want)
	}
}

// leadersOf returns the partitions of topic that Metadata (asked at addr)
// says the agent advertised as leader leads.
func leadersOf(t testing.TB, ctx context.Context, addr, topic, leader string) []int32 {
	t.Helper()
	md, err := kadm.NewClient(newClient(t, addr)).Metadata(ctx, topic)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	node := int32(-1)
	for _, br := range md.Brokers {
		if fmt.Sprintf("%s:%d", br.Host, br.Port) == leader {
			node = br.NodeID
		}
	}
	var out []int32
	for _, p := range md.Topics[topic].Partitions {
		if p.Leader == node {
			out = append(out, p.Partition)
		}
	}
	slices.Sort(out)
	return out
}

// waitFor polls cond every 100ms until it holds, failing the test at
// ctx's deadline with what.
func waitFor(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// TestClusterChaos runs three agents on one Postgres and one bucket under
// steady keyed, idempotent production and a consuming group of three,
// then SIGKILLs one agent, starts a fresh one and SIGTERMs another. Every
// acknowledged record must be readable at its offset exactly once, in
// per-key order; the group must consume everything and commit the end of
// every partition; every agent must report the same high watermarks.
// It logs how long production took to recover from the SIGKILL.
func TestClusterChaos(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	pg, s3 := harness.Postgres(t), harness.S3(t)
	agentNamed := func(id string) *silt {
		return newAgentOn(t, pg, s3, append([]string{"--agent-id", id}, clusterFlags...)...)
	}
	a, b, c := agentNamed("a").Start(), agentNamed("b").Start(), agentNamed("c").Start()
	seeds := []string{a.Kafka(), b.Kafka(), c.Kafka()}
	waitAllBrokers(t, ctx, []*silt{a, b, c})
	const (
		topic      = "cluster-chaos"
		partitions = 12
		keys       = 36
		group      = "chaos"
	)
	createTopic(t, ctx, a.Kafka(), topic, partitions)

	log := &chaosLog{consumed: map[[2]int64]string{}}
	start := time.Now()

	// Producers: idempotent and acks=all (franz-go's defaults), keyed,
	// paced; every acknowledgement is recorded. Values carry a per-key
	// sequence number for the order check.
	prodCtx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	var producers sync.WaitGroup
	var prodClients []*kgo.Client
	for pi := range 2 {
		cl := clusterClient(t, seeds, kgo.ClientID(fmt.Sprintf("chaos-producer-%d", pi)), kgo.RequiredAcks(kgo.AllISRAcks()))
		prodClients = append(prodClients, cl)
		producers.Go(func() {
			seq := map[string]int{}
			tick := time.NewTicker(4 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-prodCtx.Done():
					return
				case <-tick.C:
				}
				key := fmt.Sprintf("k%02d", i%keys)
				seq[key]++
				rec := &kgo.Record{Topic: topic, Key: []byte(key), Value: fmt.Appendf(nil, "p%d %s %d", pi, key, seq[key])}
				cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
					now := time.Now()
					log.mu.Lock()
					defer log.mu.Unlock()
					if err != nil {
						log.prodErrs = append(log.prodErrs, fmt.Errorf("%s: %w", r.Value, err))
						return
					}
					log.acks = append(log.acks, acked{r.Partition, r.Offset, string(r.Key), string(r.Value)})
					log.ackAt = append(log.ackAt, now)
				})
			}
		})
	}

	// The consumer group: three members, committing every second.
	consCtx, stopConsuming := context.WithCancel(ctx)
	defer stopConsuming()
	var consumers sync.WaitGroup
	for ci := range 3 {
		cl := clusterClient(t, seeds,
			kgo.ClientID(fmt.Sprintf("chaos-consumer-%d", ci)),
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.AutoCommitInterval(time.Second),
			kgo.FetchMaxWait(500*time.Millisecond),
		)
		consumers.Go(func() {
			for {
				fs := cl.PollFetches(consCtx)
				if consCtx.Err() != nil {
					return
				}
				now := time.Now()
				log.mu.Lock()
				for _, e := range fs.Errors() {
					log.consErrs = append(log.consErrs, fmt.Sprintf("consumer %d: %s[%d]: %v", ci, e.Topic, e.Partition, e.Err))
					log.consErrAt = append(log.consErrAt, now)
				}
				fs.EachRecord(func(r *kgo.Record) {
					log.consumed[[2]int64{int64(r.Partition), r.Offset}] = string(r.Value)
				})
				log.mu.Unlock()
			}
		})
	}
	stopClients := func() {
		stopProducing()
		producers.Wait()
		stopConsuming()
		consumers.Wait()
	}
	defer stopClients()

	// Steady state first: producing, and the group consuming.
	waitFor(t, ctx, "2000 acknowledgements and 1000 records consumed", func() bool {
		log.mu.Lock()
		defer log.mu.Unlock()
		return len(log.acks) >= 2000 && len(log.consumed) >= 1000
	})

	// The keys (hashed as Kafka's default partitioner does) may leave a
	// partition without records: recovery is watched on the others.
	active := len(log.firstAckAfter(start))
	t.Logf("%d of %d partitions receive records", active, partitions)

	// SIGKILL the group's coordinator: its partitions stall until its
	// lease expires, then move; another agent loads the group.
	agents := []*silt{a, b, c}
	victim := coordinatorOf(t, a.Kafka(), group, agents)
	agents = slices.DeleteFunc(agents, func(s *silt) bool { return s == victim })
	victimParts := leadersOf(t, ctx, a.Kafka(), topic, victim.Kafka())
	killAt := time.Now()
	victim.Kill()
	t.Logf("%.1fs: SIGKILLed agent %s, the group coordinator and leader of partitions %v", time.Since(start).Seconds(), victim.Kafka(), victimParts)
	// Once the metastore has let the dead agent's lease expire, no agent
	// may send a client to it: not as a broker, a leader or the group's
	// coordinator (a franz-go member sent there after it rejoined the
	// group reported "unable to dial" to the application).
	waitLeaseGone(t, ctx, pg, victim.Kafka())
	for _, s := range agents {
		if named := namesOf(t, s.Kafka(), topic, group); slices.Contains(named, victim.Kafka()) {
			t.Errorf("after the killed agent's lease expired, agent %s still names it: %v", s.Kafka(), named)
		}
	}
	waitFor(t, ctx, "every partition acknowledging again after the SIGKILL", func() bool {
		return len(log.firstAckAfter(killAt)) == active
	})
	first := log.firstAckAfter(killAt)
	for _, p := range victimParts {
		t.Logf("MEASURE recovery after SIGKILL: partition %d (led by the killed agent): next produce ack %v after the kill", p, first[p].Sub(killAt).Round(time.Millisecond))
	}

	// A fresh agent joins.
	d := agentNamed("d").Start()
	agents = append(agents, d)
	t.Logf("%.1fs: started agent d (%s)", time.Since(start).Seconds(), d.Kafka())
	waitAllBrokers(t, ctx, agents)
	n := log.ackCount()
	waitFor(t, ctx, "1000 more acknowledgements", func() bool { return log.ackCount() >= n+1000 })

	// SIGTERM the group's coordinator now: its clients must move
	// without errors reaching the application.
	victim = coordinatorOf(t, agents[0].Kafka(), group, agents)
	agents = slices.DeleteFunc(agents, func(s *silt) bool { return s == victim })
	victimParts = leadersOf(t, ctx, agents[0].Kafka(), topic, victim.Kafka())
	termAt := time.Now()
	victim.Stop()
	exited := time.Now()
	t.Logf("%.1fs: SIGTERMed agent %s (the group coordinator, leader of partitions %v), exited after %v", time.Since(start).Seconds(), victim.Kafka(), victimParts, exited.Sub(termAt).Round(time.Millisecond))
	waitAllBrokers(t, ctx, agents)
	for _, s := range agents {
		waitFor(t, ctx, "silt_agents_live = 2 on "+s.Kafka(), func() bool {
			v, found, err := scrape(ctx, s.Admin(), "silt_agents_live")
			return err == nil && found && v == 2
		})
	}
	n = log.ackCount()
	waitFor(t, ctx, "1000 more acknowledgements", func() bool { return log.ackCount() >= n+1000 })
	pauses, starts := log.longestPause(termAt, exited.Add(time.Second))
	for _, p := range sortedPartitions(pauses) {
		t.Logf("MEASURE SIGTERM: partition %d (led by the stopped agent: %v): longest pause in acknowledgements %v, starting %v after the signal (the agent exited after %v)",
			p, slices.Contains(victimParts, p), pauses[p].Round(time.Millisecond), starts[p].Round(time.Millisecond), exited.Sub(termAt).Round(time.Millisecond))
	}
	a, d = agents[0], agents[1] // the survivors

	// Stop producing; everything sent is acknowledged or failed.
	stopProducing()
	producers.Wait()
	for _, cl := range prodClients {
		if err := cl.Flush(ctx); err != nil {
			t.Fatalf("flush producer: %v", err)
		}
	}
	log.mu.Lock()
	acks, prodErrs := slices.Clone(log.acks), slices.Clone(log.prodErrs)
	log.mu.Unlock()
	t.Logf("%.1fs: %d records acknowledged, %d failed", time.Since(start).Seconds(), len(acks), len(prodErrs))
	for i, err := range prodErrs {
		if i == 10 {
			break
		}
		t.Errorf("produce failed (an application saw an error): %v", err)
	}

	// Every live agent reports the same high watermarks, to ListOffsets
	// and to Fetch (the read path's cached view).
	ends := endOffsets(t, ctx, a.Kafka(), topic)
	if len(ends) != partitions {
		t.Fatalf("end offsets of %d partitions, want %d", len(ends), partitions)
	}
	var total int64
	for _, o := range ends {
		total += o
	}
	for _, s := range []*silt{a, d} {
		lo, fe := agentWatermarks(t, s.Kafka(), topic, partitions)
		if !sameOffsets(lo, ends) || !sameOffsets(fe, ends) {
			t.Errorf("agent %s reports high watermarks %v (ListOffsets) and %v (Fetch), want %v", s.Kafka(), lo, fe, ends)
		}
	}

	// The group consumes everything and commits the end of every
	// partition.
	waitFor(t, ctx, "the group to consume every record", func() bool {
		log.mu.Lock()
		defer log.mu.Unlock()
		return int64(len(log.consumed)) >= total
	})
	adm := kadm.NewClient(clusterClient(t, []string{a.Kafka(), d.Kafka()}))
	var committed map[int32]int64
	waitFor(t, ctx, "the group's commits to reach the end of every partition", func() bool {
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil || offs.Error() != nil {
			return false
		}
		committed = map[int32]int64{}
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic && o.At >= 0 {
				committed[o.Partition] = o.At
			}
		})
		return sameOffsets(committed, ends)
	})
	stopClients()
	log.mu.Lock()
	consumed, consErrs, consErrAt := log.consumed, log.consErrs, log.consErrAt
	log.mu.Unlock()
	for i, a := range acks {
		if v, ok := consumed[[2]int64{int64(a.Partition), a.Offset}]; !ok || v != a.Value {
			t.Errorf("the group did not consume acknowledged record %v (got %q, %v)", a, v, ok)
			if i > 20 {
				t.FailNow()
			}
		}
	}
	for i, e := range consErrs {
		if consErrAt[i].After(termAt) {
			t.Errorf("consumer saw an error after the SIGTERM: %s", e)
		} else {
			t.Logf("consumer saw an error (before the SIGTERM, around the SIGKILL): %s", e)
		}
	}

	// Read everything back: every acknowledged record at its offset,
	// nothing twice, per-key order kept.
	recs := consumeN(t, ctx, d.Kafka(), topic, int(total))
	checkAcked(t, acks, recs)
	checkUnique(t, recs)
	checkKeyOrder(t, recs)
	t.Logf("%.1fs: %d records in %d partitions verified", time.Since(start).Seconds(), total, partitions)
}

// waitLeaseGone waits until the metastore at pg holds no live lease for
// the agent advertising addr.
func waitLeaseGone(t testing.TB, ctx context.Context, pg, addr string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatalf("connect to the metastore: %v", err)
	}
	defer conn.Close(context.Background())
	host, port, _ := net.SplitHostPort(addr)
	waitFor(t, ctx, "the killed agent's lease to expire", func() bool {
		var live bool
		err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM agents WHERE host = $1 AND port = $2 AND expires_at > now())`, host, port).Scan(&live)
		return err == nil && !live
	})
}

// namesOf returns every address the agent at addr sends clients to:
// its brokers, the leaders of topic's partitions and group's coordinator.
func namesOf(t testing.TB, addr, topic, group string) []string {
	t.Helper()
	c := dialRaw(t, addr)
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 9
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	md.Topics = append(md.Topics, rt)
	resp := c.roundTrip(md).(*kmsg.MetadataResponse)
	byNode := map[int32]string{}
	var out []string
	for _, b := range resp.Brokers {
		byNode[b.NodeID] = fmt.Sprintf("%s:%d", b.Host, b.Port)
		out = append(out, byNode[b.NodeID])
	}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if p.Leader >= 0 {
				out = append(out, byNode[p.Leader])
			}
		}
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version = 3
	fc.CoordinatorKey = group
	if fr := c.roundTrip(fc).(*kmsg.FindCoordinatorResponse); fr.ErrorCode == 0 {
		out = append(out, fmt.Sprintf("%s:%d", fr.Host, fr.Port))
	}
	return out
}

// checkKeyOrder requires each producer's records of one key to be in the
// order sent ("p<producer> <key> <seq>" values), with no sequence missing
// below the highest one read.
func checkKeyOrder(t testing.TB, recs []*kgo.Record) {
	t.Helper()
	type stream struct{ producer, key string }
	last := map[stream]int{}
	for p, rs := range byPartition(recs) {
		for _, r := range rs {
			var prod, key string
			var seq int
			if _, err := fmt.Sscanf(string(r.Value), "%s %s %d", &prod, &key, &seq); err != nil {
				t.Fatalf("record %q: %v", r.Value, err)
			}
			s := stream{prod, key}
			if seq != last[s]+1 {
				t.Errorf("partition %d offset %d: %s %s sequence %d follows %d", p, r.Offset, prod, key, seq, last[s])
			}
			last[s] = seq
		}
	}
}

// agentWatermarks asks one agent directly (not a client that routes by
// leader) for every partition's high watermark, by ListOffsets and by a
// Fetch at offset 0 that returns at once.
func agentWatermarks(t testing.TB, addr, topic string, partitions int32) (listed, fetched map[int32]int64) {
	t.Helper()
	c := dialRaw(t, addr)
	listed, fetched = map[int32]int64{}, map[int32]int64{}

	lreq := kmsg.NewPtrListOffsetsRequest()
	lreq.Version = 7
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for p := range partitions {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp = p, -1
		lt.Partitions = append(lt.Partitions, lp)
	}
	lreq.Topics = append(lreq.Topics, lt)
	for _, rt := range c.roundTrip(lreq).(*kmsg.ListOffsetsResponse).Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				t.Fatalf("ListOffsets %s[%d] at %s: %v", topic, rp.Partition, addr, err)
			}
			listed[rp.Partition] = rp.Offset
		}
	}

	freq := kmsg.NewPtrFetchRequest()
	freq.Version = 11
	freq.MaxWaitMillis, freq.MinBytes, freq.MaxBytes = 0, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	for p := range partitions {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = p, 0, 1024
		ft.Partitions = append(ft.Partitions, fp)
	}
	freq.Topics = append(freq.Topics, ft)
	fresp := c.roundTrip(freq).(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(fresp.ErrorCode); err != nil {
		t.Fatalf("Fetch at %s: %v", addr, err)
	}
	for _, rt := range fresp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				t.Fatalf("Fetch %s[%d] at %s: %v", topic, rp.Partition, addr, err)
			}
			fetched[rp.Partition] = rp.HighWatermark
		}
	}
	return listed, fetched
}

// TestClusterLatency measures how fast a record acknowledged by one agent
// reaches a consumer long-polling another: the cross-agent wake-up goes
// through Postgres LISTEN/NOTIFY. Zones pin the clients: agent a is in
// zone za, b in zb, and a client id carrying silt_az=<zone> is given only
// leaders of its zone, so the producer talks to a and the consumer to b.
// The figures are logged, never asserted.
func TestClusterLatency(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	pg, s3 := harness.Postgres(t), harness.S3(t)
	a := newAgentOn(t, pg, s3, append([]string{"--agent-id", "a", "--zone", "za"}, clusterFlags...)...).Start()
	b := newAgentOn(t, pg, s3, append([]string{"--agent-id", "b", "--zone", "zb"}, clusterFlags...)...).Start()
	want := slices.Sorted(slices.Values([]string{a.Kafka(), b.Kafka()}))
	waitBrokers(t, ctx, a.Kafka(), want)
	waitBrokers(t, ctx, b.Kafka(), want)
	const topic, partitions, n = "cluster-latency", 4, 400
	createTopic(t, ctx, a.Kafka(), topic, partitions)

	var (
		mu      sync.Mutex // mu guards ackAt and recvAt
		ackAt   = map[string]time.Time{}
		recvAt  = map[string]time.Time{}
		sentAt  = map[string]time.Time{}
		prodErr error
	)
	// The consumer long-polls (5s max wait) so that only a wake-up, not
	// the wait running out, delivers a record promptly.
	cons := clusterClient(t, []string{b.Kafka()},
		kgo.ClientID("latency-consumer,silt_az=zb"),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(5*time.Second),
	)
	consCtx, stopConsuming := context.WithCancel(ctx)
	defer stopConsuming()
	var consumer sync.WaitGroup
	consumer.Go(func() {
		for {
			fs := cons.PollFetches(consCtx)
			if consCtx.Err() != nil {
				return
			}
			now := time.Now()
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) { recvAt[string(r.Value)] = now })
			mu.Unlock()
		}
	})
	defer func() { stopConsuming(); consumer.Wait() }()
	// Let the consumer reach the tail (its first fetches wait).
	waitFor(t, ctx, "the consumer's first fetch", func() bool {
		v, found, err := scrape(ctx, b.Admin(), "silt_fetch_wait_duration_seconds_count")
		return err == nil && found && v > 0
	})

	prod := clusterClient(t, []string{a.Kafka()}, kgo.ClientID("latency-producer,silt_az=za"))
	tick := time.NewTicker(10 * time.Millisecond)
	for i := range n {
		<-tick.C
		v := fmt.Sprintf("r%d", i)
		mu.Lock()
		sentAt[v] = time.Now()
		mu.Unlock()
		prod.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				prodErr = err
				return
			}
			ackAt[string(r.Value)] = now
		})
	}
	tick.Stop()
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the consumer to receive every record", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(recvAt) == n
	})
	mu.Lock()
	defer mu.Unlock()
	if prodErr != nil {
		t.Fatalf("produce: %v", prodErr)
	}
	var ackToRecv, sendToRecv, sendToAck []time.Duration
	for v, r := range recvAt {
		ackToRecv = append(ackToRecv, r.Sub(ackAt[v]))
		sendToRecv = append(sendToRecv, r.Sub(sentAt[v]))
		sendToAck = append(sendToAck, ackAt[v].Sub(sentAt[v]))
	}
	pct := func(ds []time.Duration, q float64) time.Duration {
		slices.Sort(ds)
		return ds[min(len(ds)-1, int(q*float64(len(ds))))].Round(100 * time.Microsecond)
	}
	t.Logf("MEASURE %d records, flush interval %s: ack on agent a -> received from agent b: p50 %v p99 %v max %v; produce -> ack: p50 %v p99 %v; produce -> received: p50 %v p99 %v",
		n, clusterFlags[1], pct(ackToRecv, 0.5), pct(ackToRecv, 0.99), pct(ackToRecv, 1), pct(sendToAck, 0.5), pct(sendToAck, 0.99), pct(sendToRecv, 0.5), pct(sendToRecv, 0.99))

	// The pinning held: only a took produce requests, only b fetches.
	for _, c := range []struct {
		s      *silt
		metric string
		some   bool
	}{
		{a, "silt_ingest_segments_total", true},
		{b, "silt_ingest_segments_total", false},
		{b, "silt_fetch_bytes_total", true},
		{a, "silt_fetch_bytes_total", false},
	} {
		v, found, err := scrape(ctx, c.s.Admin(), c.metric)
		if err != nil || (found && v > 0) != c.some { // a counter never incremented may be absent
			t.Errorf("agent %s: %s = %v (found %v, err %v), want > 0: %v", c.s.Kafka(), c.metric, v, found, err, c.some)
		}
	}
}
