package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/tests/bench/siltproc"
	"github.com/siltdata/silt/tests/harness"
)

// Config is one run of the suite.
type Config struct {
	Agents     int
	Partitions int32
	Producers  int
	Rate       int // records per second per producer
	Members    int
	// Faults names the nemeses to apply (empty: all of them).
	Faults []string
	// Cycles applies each fault this many times (0: once each, or as
	// many rounds as Duration allows).
	Cycles int
	// Duration, when set, repeats rounds of the faults (each once per
	// round, in random order) until this much time has passed.
	Duration time.Duration
	// Seed makes the choices of faults, targets and durations
	// reproducible (0: a random seed, reported).
	Seed uint64
	// RecoveryDeadline bounds the wait for the cluster to serve again
	// after a fault is healed; past it the fault is unrecovered.
	RecoveryDeadline time.Duration
	// LogDir receives the agents' and clients' logs.
	LogDir string
	// Race builds the agents with the race detector.
	Race bool
	// Bin, when set, is a silt binary to run instead of building one
	// (to run the suite against another version).
	Bin string
	// Transactions runs the transactional pipeline when the agents
	// support it ("auto") or never ("off").
	Transactions string
	// Logf reports progress.
	Logf func(format string, args ...any)
}

// DefaultConfig is the short run: every fault once.
func DefaultConfig() Config {
	return Config{
		Agents: 3, Partitions: 8, Producers: 3, Rate: 100, Members: 3,
		RecoveryDeadline: 2 * time.Minute, Transactions: "auto",
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Agents < 2 {
		errs = append(errs, fmt.Errorf("agents %d: at least 2", c.Agents))
	}
	if c.Partitions < 1 || c.Producers < 1 || c.Members < 1 || c.Rate < 1 {
		errs = append(errs, errors.New("partitions, producers, members and rate must be positive"))
	}
	for _, f := range c.Faults {
		if _, ok := NemesisByName(f); !ok {
			errs = append(errs, fmt.Errorf("unknown fault %q", f))
		}
	}
	if c.Transactions != "auto" && c.Transactions != "off" {
		errs = append(errs, fmt.Errorf("transactions %q: auto or off", c.Transactions))
	}
	return errors.Join(errs...)
}

// Names of the workload's topics and groups.
const (
	topicName    = "faults"
	outputTopic  = "faults-out"
	groupName    = "faults-group"
	pipelineName = "faults-pipeline-group"
)

// Suite is one run in progress.
type Suite struct {
	cfg    Config
	c      *Cluster
	h      *History
	w      *Workload
	pipe   *Pipeline
	rng    *rand.Rand
	logf   func(format string, args ...any)
	admin  *kadm.Client
	acl    *kgo.Client            // admin's client
	direct map[*Agent]*kgo.Client // seeded with that agent alone
	ctrs   *counters
	txnOff string // why the pipeline did not run ("" when it did)
}

// Summary is what a run did and found.
type Summary struct {
	Seed           uint64
	Started, Ended time.Time
	FaultTime      time.Duration
	Sent           int64
	Cancelled      int64
	Acked          int
	ProduceErrors  int
	Polls          int
	Commits        int
	Samples        int
	Txns           map[TxnOutcome]int
	TxnSkipped     string
	Faults         []Fault
	Lifecycle      map[string]float64
	Result         *Result
	Race           bool
}

// Run starts the cluster and the workload, applies the faults, heals,
// settles, reads everything back and checks it. Every process it starts
// is stopped when t ends, whatever happens.
func Run(ctx context.Context, t testing.TB, cfg Config) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	logf := cfg.Logf
	if logf == nil {
		logf = t.Logf
	}
	s := &Suite{cfg: cfg, h: &History{}, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)), logf: logf, direct: map[*Agent]*kgo.Client{}}
	sum := &Summary{Seed: cfg.Seed, Started: time.Now(), Race: cfg.Race}
	logf("seed %d; logs in %s", cfg.Seed, cfg.LogDir)

	bin := cfg.Bin
	if bin == "" {
		var err error
		if bin, err = siltproc.Build(ctx, cfg.LogDir, cfg.Race); err != nil {
			return nil, err
		}
	}
	pg := harness.StartPostgresServer(t)
	minio := harness.StartMinioServer(t)
	pgURL, err := pg.CreateDatabase(ctx, "silt_faults")
	if err != nil {
		return nil, err
	}
	s3, err := minio.CreateBucket(t)
	if err != nil {
		return nil, err
	}
	s.c = &Cluster{PG: pg, Minio: minio, PGURL: pgURL, S3: s3}
	t.Cleanup(s.c.Close)
	for i := range cfg.Agents {
		a, err := NewAgent(string(rune('a'+i)), bin, pgURL, s3, pg.Addr(), minio.Addr(), cfg.LogDir)
		if err != nil {
			return nil, err
		}
		s.c.Agents = append(s.c.Agents, a)
		if err := a.Start(ctx); err != nil {
			return nil, err
		}
	}
	clientLog, err := os.Create(filepath.Join(cfg.LogDir, "clients.log"))
	if err != nil {
		return nil, err
	}
	defer clientLog.Close()
	acl, err := kgo.NewClient(kgo.SeedBrokers(s.c.Seeds()...), kgo.RetryTimeout(10*time.Second), kgo.MetadataMinAge(500*time.Millisecond))
	if err != nil {
		return nil, err
	}
	s.acl, s.admin = acl, kadm.NewClient(acl)
	defer s.admin.Close()
	for _, a := range s.c.Agents {
		cl, err := kgo.NewClient(kgo.SeedBrokers(a.Kafka), kgo.RequestRetries(0))
		if err != nil {
			return nil, err
		}
		s.direct[a] = cl
		defer cl.Close()
	}
	if err := s.waitWhole(ctx, 2*time.Minute); err != nil {
		return nil, err
	}
	for _, topic := range []string{topicName, outputTopic} {
		resp, err := s.admin.CreateTopic(ctx, cfg.Partitions, 1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return nil, fmt.Errorf("create topic %s: %w", topic, err)
		}
	}

	s.ctrs = newCounters(s.c.Agents)
	ctrCtx, stopCtrs := context.WithCancel(ctx)
	var ctrDone sync.WaitGroup
	ctrDone.Go(func() { s.ctrs.run(ctrCtx) })
	defer func() { stopCtrs(); ctrDone.Wait() }()

	wcfg := WorkloadConfig{
		Seeds: s.c.Seeds(), Topic: topicName, Partitions: cfg.Partitions, Group: groupName,
		Producers: cfg.Producers, Rate: cfg.Rate, Keys: 64, Members: cfg.Members, ClientLog: clientLog,
	}
	s.w, err = StartWorkload(ctx, wcfg, s.h)
	if err != nil {
		return nil, err
	}
	defer s.w.Close()
	if err := s.startPipeline(ctx, wcfg); err != nil {
		return nil, err
	}
	if s.pipe != nil {
		defer s.pipe.Stop()
	}
	if err := s.warmUp(ctx); err != nil {
		return nil, err
	}

	pr := &probe{s: s, pgURL: pgURL, topic: topicName, agents: s.c.Agents}
	prCtx, stopProbe := context.WithCancel(ctx)
	var probing sync.WaitGroup
	probing.Go(func() { pr.run(prCtx) })
	faultStart := time.Now()
	s.runFaults(ctx)
	sum.FaultTime = time.Since(faultStart)
	stopProbe()
	probing.Wait()

	if err := s.settle(ctx); err != nil {
		return nil, err
	}
	obs := s.observe(ctx)
	s.collectCrashes()
	sum.Lifecycle = s.ctrs.totals()
	sum.Result = Check(s.h, obs)
	sum.Ended = time.Now()
	sum.Sent, sum.Cancelled = s.w.Sent(), s.w.Cancelled()
	sum.Acked, sum.ProduceErrors = len(s.h.Acks), len(s.h.ProduceErrors)
	sum.Polls, sum.Commits, sum.Samples = len(s.h.Polls), len(s.h.Commits), len(s.h.Samples)
	sum.Faults = s.h.Faults
	sum.TxnSkipped = s.txnOff
	sum.Txns = map[TxnOutcome]int{}
	for _, tx := range s.h.Txns {
		sum.Txns[tx.Outcome]++
	}
	return sum, nil
}

// startPipeline starts the transactional pipeline when the agents
// support transactions.
func (s *Suite) startPipeline(ctx context.Context, wcfg WorkloadConfig) error {
	if s.cfg.Transactions == "off" {
		s.txnOff = "switched off (-faults.txn=off)"
		return nil
	}
	ok, err := TransactionsSupported(ctx, s.c.Agents[0].Kafka)
	if err != nil {
		return err
	}
	if !ok {
		s.txnOff = "the agents do not implement transactions (no AddPartitionsToTxn/EndTxn in ApiVersions)"
		s.logf("transactional pipeline skipped: %s", s.txnOff)
		return nil
	}
	s.pipe = StartPipeline(ctx, wcfg, outputTopic, pipelineName, s.h)
	return nil
}

// warmUp waits until every producer is acknowledged and the group
// commits on every partition.
func (s *Suite) warmUp(ctx context.Context) error {
	return s.waitFor(ctx, 2*time.Minute, "the workload to warm up", func() bool {
		if s.h.AckCount() < 200 {
			return false
		}
		smp, ok := s.h.LatestSample()
		return ok && len(smp.Offsets) >= len(s.h.AckedPartitions())
	})
}

// schedule is the faults to apply, in order.
func (s *Suite) schedule() []Nemesis {
	names := s.cfg.Faults
	if len(names) == 0 {
		for _, n := range Nemeses {
			names = append(names, n.Name)
		}
	}
	round := func() []Nemesis {
		var r []Nemesis
		for _, name := range names {
			n, _ := NemesisByName(name)
			r = append(r, n)
		}
		s.rng.Shuffle(len(r), func(i, j int) { r[i], r[j] = r[j], r[i] })
		return r
	}
	var out []Nemesis
	for range max(1, s.cfg.Cycles) {
		out = append(out, round()...)
	}
	return out
}

// runFaults applies the schedule, and with a Duration, more rounds until
// it has passed.
func (s *Suite) runFaults(ctx context.Context) {
	start := time.Now()
	for round := 0; ; round++ {
		for _, n := range s.schedule() {
			if ctx.Err() != nil {
				return
			}
			if round > 0 && time.Since(start) >= s.cfg.Duration {
				return
			}
			s.apply(ctx, n)
		}
		if s.cfg.Duration == 0 || time.Since(start) >= s.cfg.Duration {
			return
		}
	}
}

// apply runs one nemesis, then waits for the cluster to recover and a
// short quiet period.
func (s *Suite) apply(ctx context.Context, n Nemesis) {
	f := Fault{Name: n.Name, Start: time.Now()}
	s.logf("%s: %s", f.Start.Format(time.TimeOnly), n.Name)
	target, note, err := n.Run(ctx, s)
	f.Target, f.Note, f.Healed = target, note, time.Now()
	if err != nil {
		f.Note += "; " + err.Error()
		s.logf("%s: %s on %s: %v", f.Healed.Format(time.TimeOnly), n.Name, target, err)
	}
	s.healAll(ctx)
	base, _ := s.h.LatestSample()
	err = s.waitFor(ctx, s.cfg.RecoveryDeadline, "recovery after "+n.Name, func() bool { return s.recovered(ctx, f.Healed, base.Offsets) })
	f.Recovered = err == nil
	f.Recovery = time.Since(f.Healed)
	f.ProduceStall, f.CommitStall = s.h.Stalls(f.Start, time.Now())
	if err != nil {
		f.Note += "; " + s.describeUnrecovered(ctx, f.Healed, base.Offsets)
	}
	s.h.AddFault(f)
	s.logf("%s: %s on %s (%s) healed; recovered %v after %v; longest stall: produce %v, commits %v", time.Now().Format(time.TimeOnly), n.Name, f.Target, f.Note, f.Recovered,
		f.Recovery.Round(time.Millisecond), f.ProduceStall.Round(time.Millisecond), f.CommitStall.Round(time.Millisecond))
	s.collectCrashes()
	hold(ctx, between(s.rng, 2*time.Second, 5*time.Second))
}

// healAll undoes whatever a nemesis may have left: cut or slow links,
// paused or stopped processes.
func (s *Suite) healAll(ctx context.Context) {
	for _, a := range s.c.Agents {
		a.Heal()
		if a.Running() {
			_ = a.Resume()
		} else if err := a.Start(context.WithoutCancel(ctx)); err != nil {
			s.logf("heal: start agent %s: %v", a.ID, err)
		}
	}
	_ = s.c.Minio.Resume()
	if crashed, _ := s.c.Minio.Crashed(); crashed {
		s.logf("heal: minio is down")
	}
}

// recovered reports whether, since healed, every partition that ever
// got a record was acknowledged again, the group committed past base on
// every partition, and every agent lists every agent.
func (s *Suite) recovered(ctx context.Context, healed time.Time, base map[int32]int64) bool {
	since := s.h.AckedPartitionsSince(healed)
	for p := range s.h.AckedPartitions() {
		if !since[p] {
			return false
		}
	}
	if !s.committedPast(healed, base) {
		return false
	}
	return s.whole(ctx) == nil
}

// describeUnrecovered says which part of recovery is missing.
func (s *Suite) describeUnrecovered(ctx context.Context, healed time.Time, base map[int32]int64) string {
	var parts []string
	since := s.h.AckedPartitionsSince(healed)
	var stalled []int32
	for p := range s.h.AckedPartitions() {
		if !since[p] {
			stalled = append(stalled, p)
		}
	}
	if len(stalled) > 0 {
		slices.Sort(stalled)
		parts = append(parts, fmt.Sprintf("no acknowledgement on partitions %v", stalled))
	}
	if !s.committedPast(healed, base) {
		smp, _ := s.h.LatestSample()
		parts = append(parts, fmt.Sprintf("committed offsets %v not past %v (sampled %s)", smp.Offsets, base, smp.Start.Format(time.TimeOnly)))
	}
	if err := s.whole(ctx); err != nil {
		parts = append(parts, err.Error())
	}
	return "not recovered: " + strings.Join(parts, "; ")
}

// committedPast reports whether a sample asked after since shows every
// partition of base committed beyond its offset there.
func (s *Suite) committedPast(since time.Time, base map[int32]int64) bool {
	smp, ok := s.h.LatestSample()
	if !ok || smp.Start.Before(since) {
		return false
	}
	for p, o := range base {
		if smp.Offsets[p] <= o {
			return false
		}
	}
	return true
}

// whole checks that every agent answers Metadata listing every agent.
func (s *Suite) whole(ctx context.Context) error {
	want := slices.Sorted(slices.Values(s.c.Seeds()))
	for _, a := range s.c.Agents {
		got, err := s.brokersOf(ctx, a)
		if err != nil {
			return fmt.Errorf("agent %s: metadata: %w", a.ID, err)
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("agent %s lists brokers %v, want %v", a.ID, got, want)
		}
	}
	return nil
}

// brokersOf asks a itself for the brokers it lists.
func (s *Suite) brokersOf(ctx context.Context, a *Agent) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	resp, err := s.direct[a].SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, err
	}
	var got []string
	for _, b := range resp.(*kmsg.MetadataResponse).Brokers {
		got = append(got, b.Host+":"+strconv.Itoa(int(b.Port)))
	}
	slices.Sort(got)
	return got, nil
}

func (s *Suite) waitWhole(ctx context.Context, d time.Duration) error {
	var last error
	err := s.waitFor(ctx, d, "every agent to list every agent", func() bool { last = s.whole(ctx); return last == nil })
	if err != nil {
		return fmt.Errorf("%w: %w", err, last)
	}
	return nil
}

// waitFor polls cond every 250 ms until it holds or d passes. Polling
// is how an outside observer waits on a cluster: it offers no event.
func (s *Suite) waitFor(ctx context.Context, d time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: not within %v", what, d)
		}
		if !sleepCtx(ctx, 250*time.Millisecond) {
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
	return nil
}

// Coordinator is the agent that coordinates the workload's group, as
// the cluster answers FindCoordinator.
func (s *Suite) Coordinator(ctx context.Context) (*Agent, error) {
	return s.coordinatorFrom(ctx, s.acl)
}

// CoordinatorVia asks the agents other than not for the group's
// coordinator.
func (s *Suite) CoordinatorVia(ctx context.Context, not *Agent) (*Agent, error) {
	for _, a := range s.c.Agents {
		if a != not {
			return s.coordinatorFrom(ctx, s.direct[a])
		}
	}
	return nil, errors.New("no other agent")
}

func (s *Suite) coordinatorFrom(ctx context.Context, cl *kgo.Client) (*Agent, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = groupName
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	addr := resp.Host + ":" + strconv.Itoa(int(resp.Port))
	if a := s.c.AgentByAddr(addr); a != nil {
		return a, nil
	}
	return nil, fmt.Errorf("coordinator %s is no agent", addr)
}

// randomAgent picks a running agent other than not.
func (s *Suite) randomAgent(not *Agent) *Agent {
	var cands []*Agent
	for _, a := range s.c.Agents {
		if a != not && a.Running() {
			cands = append(cands, a)
		}
	}
	if len(cands) == 0 {
		return s.c.Agents[0]
	}
	return cands[s.rng.IntN(len(cands))]
}

// collectCrashes moves processes that exited unasked into the history.
func (s *Suite) collectCrashes() {
	for _, a := range s.c.Agents {
		for _, c := range a.Crashes() {
			if !slices.Contains(s.h.Crashes, c) {
				s.h.AddCrash(c)
			}
		}
	}
	for _, srv := range []interface{ Crashed() (bool, string) }{s.c.PG, s.c.Minio} {
		if crashed, msg := srv.Crashed(); crashed && !slices.Contains(s.h.Crashes, msg) {
			s.h.AddCrash(msg)
		}
	}
}

// settle heals everything, stops the producers once everything they
// sent is answered, and lets the group consume to the end.
func (s *Suite) settle(ctx context.Context) error {
	s.healAll(ctx)
	if err := s.waitWhole(ctx, 2*time.Minute); err != nil {
		s.h.AddFault(Fault{Name: "settle", Target: "cluster", Healed: time.Now(), Note: err.Error()})
	}
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err := s.w.StopProducing(fctx)
	cancel()
	if err != nil {
		s.h.AddAppError(AppError{Client: "producers", Err: "flush after healing: " + err.Error(), At: time.Now()})
	}
	return nil
}

// observe waits for the group to consume everything, stops the
// consumers and reads every partition through every agent.
func (s *Suite) observe(ctx context.Context) *Observed {
	o := &Observed{Reads: map[string]map[int32]PartitionRead{}}
	var ends map[int32]int64
	if err := s.waitFor(ctx, 2*time.Minute, "the end offsets", func() bool {
		lo, err := s.admin.ListEndOffsets(ctx, topicName)
		if err != nil || lo.Error() != nil {
			return false
		}
		ends = map[int32]int64{}
		lo.Each(func(l kadm.ListedOffset) { ends[l.Partition] = l.Offset })
		return true
	}); err == nil {
		o.GroupDrained = s.waitFor(ctx, 3*time.Minute, "the group to commit the end of every partition", func() bool {
			smp, ok := s.h.LatestSample()
			if !ok {
				return false
			}
			for p, e := range ends {
				if e > 0 && smp.Offsets[p] < e {
					return false
				}
			}
			return true
		}) == nil
	}
	s.w.StopConsuming()
	if s.pipe != nil {
		s.pipe.Stop()
		o.TxnCommitted = map[int32]int64{}
		if offs, err := s.admin.FetchOffsets(ctx, pipelineName); err == nil {
			offs.Each(func(r kadm.OffsetResponse) {
				if r.Topic == topicName && r.At >= 0 {
					o.TxnCommitted[r.Partition] = r.At
				}
			})
		}
		o.TxnOutput = map[string]map[int32]PartitionRead{}
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for _, a := range s.c.Agents {
		o.Reads[a.ID] = ReadThrough(rctx, a.Kafka, topicName, s.cfg.Partitions, false)
		if s.pipe != nil {
			o.TxnOutput[a.ID] = ReadThrough(rctx, a.Kafka, outputTopic, s.cfg.Partitions, true)
		}
	}
	return o
}

// counters sums janitor and ingest counters of every agent over its
// restarts, scraping their metrics every few seconds (increments between
// the last scrape and a kill are not counted: the totals are lower
// bounds).
type counters struct {
	agents []*Agent
	mu     sync.Mutex // mu guards last and sum
	last   map[string]map[string]float64
	sum    map[string]float64
}

// lifecycleMetrics are the counters summed.
var lifecycleMetrics = []string{
	"silt_janitor_passes_total", "silt_compaction_objects_total", "silt_compaction_rows_total",
	"silt_compaction_conflicts_total", "silt_reclaimed_objects_total", "silt_orphans_deleted_total",
	"silt_ingest_failures_total",
}

func newCounters(agents []*Agent) *counters {
	return &counters{agents: agents, last: map[string]map[string]float64{}, sum: map[string]float64{}}
}

func (c *counters) run(ctx context.Context) {
	for {
		c.scrapeAll(ctx)
		if !sleepCtx(ctx, 3*time.Second) {
			return
		}
	}
}

func (c *counters) scrapeAll(ctx context.Context) {
	for _, a := range c.agents {
		if !a.Running() {
			continue
		}
		vals, err := scrape(ctx, a.AdminURL()+"/metrics", lifecycleMetrics)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if c.last[a.ID] == nil {
			c.last[a.ID] = map[string]float64{}
		}
		for name, v := range vals {
			prev := c.last[a.ID][name]
			if v >= prev {
				c.sum[name] += v - prev
			} else {
				c.sum[name] += v // restarted
			}
			c.last[a.ID][name] = v
		}
		c.mu.Unlock()
	}
}

func (c *counters) totals() map[string]float64 {
	c.scrapeAll(context.Background())
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]float64{}
	for k, v := range c.sum {
		out[k] = v
	}
	return out
}

// scrape sums every series of each named metric in a Prometheus text
// exposition.
func scrape(ctx context.Context, url string, names []string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, n := range names {
			if rest, ok := strings.CutPrefix(line, n); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "{")) {
				f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
				if len(f) > 0 {
					if v, err := strconv.ParseFloat(f[0], 64); err == nil {
						out[n] += v
					}
				}
			}
		}
	}
	return out, sc.Err()
}

// sortedKinds lists the kinds with anomalies first, each in Kinds order.
func sortedKinds(r *Result) []Kind {
	ks := slices.Clone(Kinds)
	sort.SliceStable(ks, func(i, j int) bool { return r.Counts[ks[i]] > 0 && r.Counts[ks[j]] == 0 })
	return ks
}
