package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/siltdata/silt/tests/bench/loadgen"
	"github.com/siltdata/silt/tests/bench/siltproc"
	"github.com/siltdata/silt/tests/harness"
)

// phaseResult is what one phase measured: a produce phase (load, with or
// without a consumer alongside) or a replay.
type phaseResult struct {
	name   string
	load   *loadgen.LoadResult
	replay *loadgen.ReplayResult
}

// agent is the agent's figures of the phase (unknown for kfake, or when
// r is nil: a phase that did not run).
func (r *phaseResult) agent() loadgen.AgentFigures {
	switch {
	case r == nil:
		return loadgen.UnknownFigures()
	case r.load != nil:
		return r.load.Agent
	case r.replay != nil:
		return r.replay.Agent
	}
	return loadgen.UnknownFigures()
}

// system is one Kafka implementation under one payload: one column of
// the report.
type system struct {
	name    string // column title
	payload string // loadgen.PayloadRandom or PayloadJSON
	silt    bool   // an agent whose /metrics and /proc the report reads
	// raw is the physical limit this system's targets compare with (raw
	// FS for silt dev, raw S3 for silt agent); nil: no targets.
	raw     *rawStore
	rawName string
	phases  []phaseResult // in the order they ran
}

// phase returns the named phase, or nil when the system did not run it.
func (s *system) phase(name string) *phaseResult {
	for i := range s.phases {
		if s.phases[i].name == name {
			return &s.phases[i]
		}
	}
	return nil
}

// load returns the named produce phase, or nil.
func (s *system) load(name string) *loadgen.LoadResult {
	if p := s.phase(name); p != nil {
		return p.load
	}
	return nil
}

// phaseEnv is what one phase runs against.
type phaseEnv struct {
	t     *testing.T
	p     params
	cfg   loadgen.Config // the load, with this phase's brokers
	probe loadgen.Probe
	sys   *system // with the phases run before this one
}

// phase is one step of a system's run. A silt phase runs in a fresh
// process started with flags added, on the deployment's metastore and
// bucket, so caches start empty and peak RSS is the phase's own; kfake
// runs every phase on one in-memory cluster (flags do not apply).
//
// Adding a phase is adding one to the list a system runs (siltPhases,
// kfakePhases) and, when it has figures of its own, rows in buildTable;
// the bytes table lists every phase by itself.
type phase struct {
	name  string
	flags []string
	// client is how the load generator connects in this phase
	// (plaintext when zero).
	client loadgen.ClientOpts
	run    func(e *phaseEnv) phaseResult
}

// Phase names the table refers to.
const (
	phaseSat    = "sat"
	phaseHalf   = "half"
	phaseHalf25 = "half25"
	phaseReplay = "replay"
	// phaseSatSecure is the saturation load through a SASL_SSL listener
	// with SCRAM-SHA-512: the cost of TLS + SCRAM beside plaintext.
	phaseSatSecure = "sat, TLS + SCRAM-SHA-512"
)

// singlePhase names the single-producer phase of a client, at rate
// bytes per second (0: as fast as it goes).
func singlePhase(client string, rate float64) string {
	if rate > 0 {
		return fmt.Sprintf("single %s, %s MB/s", client, loadgen.MBps(rate))
	}
	return "single " + client
}

// singleRate is the paced single-producer phases' rate: below what one
// idempotent librdkafka producer reaches without the early cut, so both
// settings carry it and their latencies compare.
const singleRate = 10e6

// noEarlyCut names a phase's variant run with the early cut off, and
// earlyCutOff is its flag.
func noEarlyCut(phase string) string { return phase + ", early cut off" }

var earlyCutOff = []string{"--early-cut=false"}

// satPhase produces as fast as the system accepts, with a tail consumer;
// the saturation phase (phaseSat) then tops its topic up (unmeasured) to
// the replay size.
func satPhase(name string, flags ...string) phase {
	return phase{name: name, flags: flags, run: func(e *phaseEnv) phaseResult {
		r := load(e.t, e.cfg, name, 0, e.probe)
		if name == phaseSat {
			topUp(e.t, e.cfg, e.p)
		}
		return phaseResult{load: &r}
	}}
}

// halfPhase produces at half the saturation rate with an end-to-end
// consumer; flags set the flush interval.
func halfPhase(name string, flags ...string) phase {
	return phase{name: name, flags: flags, run: func(e *phaseEnv) phaseResult {
		sat := e.sys.load(phaseSat)
		if sat == nil {
			e.t.Fatalf("%s: phase %s needs the saturation phase first", e.sys.name, name)
		}
		r := load(e.t, e.cfg, name, sat.Produce.Throughput()/2, e.probe)
		return phaseResult{load: &r}
	}}
}

// singleProducerPhase runs one client as a single producer with its
// default settings (no consumer), at rate bytes per second or, when it is
// 0, as fast as the client goes.
func singleProducerPhase(client loadgen.ProducerClient, name string, rate float64, flags ...string) phase {
	return phase{name: name, flags: flags, run: func(e *phaseEnv) phaseResult {
		cfg := e.cfg
		cfg.Topic, cfg.Rate = topicName(name), rate
		r, err := loadgen.RunProducer(e.t.Context(), client, cfg, e.probe)
		if err != nil {
			e.t.Fatalf("%s %s: %v", e.sys.name, name, err)
		}
		if r.Produce.Errors > 0 {
			e.t.Logf("%s %s: %d records failed, first: %v", e.sys.name, name, r.Produce.Errors, r.Produce.FirstErr)
		}
		if r.Produce.Bytes == 0 {
			e.t.Fatalf("%s %s: nothing acknowledged", e.sys.name, name)
		}
		return phaseResult{load: &r}
	}}
}

// replayPhase reads the saturation topic from its start; for silt in a
// fresh process, so with empty caches.
func replayPhase() phase {
	return phase{name: phaseReplay, run: func(e *phaseEnv) phaseResult {
		cfg := e.cfg
		cfg.Topic = phaseSat
		r := replay(e.t, cfg, e.p, e.probe)
		return phaseResult{replay: &r}
	}}
}

// topicName turns a phase name into a topic name.
func topicName(phase string) string {
	b := []byte(phase)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '-'
		}
	}
	return string(b)
}

// selected filters phases by -phases.
func selected(t *testing.T, phases []phase) []phase {
	if *phasesFlag == "" {
		return phases
	}
	re, err := regexp.Compile(*phasesFlag)
	if err != nil {
		t.Fatalf("-phases: %v", err)
	}
	var out []phase
	for _, ph := range phases {
		if re.MatchString(ph.name) {
			out = append(out, ph)
		}
	}
	return out
}

// runKafka measures a real Apache Kafka broker (one node in KRaft mode,
// from the Maven Central jars, its log on the local disk) under the same
// load and phases as kfake: the system silt stands in for. Its CPU is the
// broker JVM's.
func runKafka(t *testing.T, p params, base loadgen.Config, phases []phase) *system {
	b := harness.StartKafka(t)
	cfg := base
	cfg.Brokers = []string{b.Addr}
	s := &system{name: "Apache Kafka " + b.Version, payload: base.Payload}
	probe := loadgen.Probe{PID: b.Pid}
	for _, ph := range selected(t, phases) {
		t.Logf("%s: phase %s", s.name, ph.name)
		r := ph.run(&phaseEnv{t: t, p: p, cfg: cfg, probe: probe, sys: s})
		r.name = ph.name
		s.phases = append(s.phases, r)
	}
	return s
}

// runKfake measures franz-go's in-memory kfake under the same load: the
// CPU-bound reference (no storage at all).
func runKfake(t *testing.T, p params, base loadgen.Config, phases []phase) *system {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := base
	cfg.Brokers = c.ListenAddrs()
	s := &system{name: "kfake", payload: base.Payload}
	for _, ph := range selected(t, phases) {
		t.Logf("kfake: phase %s", ph.name)
		r := ph.run(&phaseEnv{t: t, p: p, cfg: cfg, sys: s})
		r.name = ph.name
		s.phases = append(s.phases, r)
	}
	return s
}

// runSilt measures one silt deployment: every phase in a fresh process
// (spec builds its process spec with the phase's extra flags) on the
// same metastore and bucket.
func runSilt(t *testing.T, p params, base loadgen.Config, s *system, counters func(context.Context) (map[string]float64, error), phases []phase, spec func(extra ...string) siltproc.Spec) *system {
	logPath := filepath.Join(t.TempDir(), topicName(s.name)+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	s.silt = true
	for _, ph := range selected(t, phases) {
		t.Logf("%s: phase %s %v", s.name, ph.name, ph.flags)
		sp := spec(ph.flags...)
		sp.Log = logf
		proc, err := siltproc.Start(t.Context(), sp)
		if err != nil {
			t.Fatalf("%s: %v (log: %s)", s.name, err, logPath)
		}
		t.Cleanup(func() {
			select {
			case <-proc.Done():
			default:
				proc.Kill()
			}
		})
		cfg := base
		cfg.Brokers, cfg.Client = []string{proc.Kafka}, ph.client
		probe := loadgen.Probe{PID: proc.PID, MetricsURL: proc.MetricsURL(), Counters: counters}
		stopProfile := profile(t, proc, s.name+"-"+ph.name)
		r := ph.run(&phaseEnv{t: t, p: p, cfg: cfg, probe: probe, sys: s})
		stopProfile()
		r.name = ph.name
		s.phases = append(s.phases, r)
		if err := proc.Stop(time.Minute); err != nil {
			t.Logf("%s stop: %v (log: %s)", s.name, err, logPath)
		}
	}
	return s
}

// profile records CPU profiles of proc into the -profile directory
// until the returned function is called (nothing without -profile): a
// series of 5 s profiles, name-1.pprof, name-2.pprof, ..., since pprof
// cannot end a profile early; the one running when the phase ends is
// dropped. `go tool pprof` merges the files it is given.
func profile(t *testing.T, proc *siltproc.Proc, name string) (stop func()) {
	if *profileFlag == "" {
		return func() {}
	}
	if err := os.MkdirAll(*profileFlag, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; ctx.Err() == nil; i++ {
			b, err := fetch(ctx, "http://"+proc.Admin+"/debug/pprof/profile?seconds=5")
			if err != nil {
				return
			}
			path := filepath.Join(*profileFlag, fmt.Sprintf("%s-%d.pprof", topicName(name), i))
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Logf("profile %s: %v", name, err)
				return
			}
		}
	}()
	return func() { cancel(); <-done }
}

func fetch(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// load runs one produce phase on topic at rate (0: saturation).
func load(t *testing.T, cfg loadgen.Config, topic string, rate float64, probe loadgen.Probe) loadgen.LoadResult {
	cfg.Topic, cfg.Rate = topicName(topic), rate
	r, err := loadgen.RunLoad(t.Context(), cfg, probe)
	if err != nil {
		t.Fatalf("load %s on %v: %v", topic, cfg.Brokers, err)
	}
	if r.Produce.Errors > 0 {
		t.Logf("load %s on %v: %d records failed, first: %v", topic, cfg.Brokers, r.Produce.Errors, r.Produce.FirstErr)
	}
	if r.Produce.Bytes == 0 {
		t.Fatalf("load %s on %v: nothing acknowledged", topic, cfg.Brokers)
	}
	return r
}

// topUp fills the saturation topic up to the replay size, unmeasured.
func topUp(t *testing.T, cfg loadgen.Config, p params) {
	cfg.Topic = phaseSat
	have := topicBytes(t, cfg)
	if have >= p.replayBytes {
		return
	}
	cfg.Rate, cfg.MaxBytes, cfg.Duration, cfg.Logger = 0, p.replayBytes-have, 10*time.Minute, nil
	if _, err := loadgen.Produce(t.Context(), cfg); err != nil {
		t.Fatalf("top up %s for replay: %v", cfg.Topic, err)
	}
}

// topicBytes is the value bytes a topic holds (every record is
// cfg.RecordSize bytes).
func topicBytes(t *testing.T, cfg loadgen.Config) int64 {
	ends, err := loadgen.EndOffsets(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, o := range ends {
		n += o
	}
	return n * int64(cfg.RecordSize)
}

func replay(t *testing.T, cfg loadgen.Config, p params, probe loadgen.Probe) loadgen.ReplayResult {
	want := min(p.replayBytes, topicBytes(t, cfg))
	r, err := loadgen.Replay(t.Context(), cfg, want, 10*time.Minute, probe)
	if err != nil {
		t.Fatalf("replay on %v: %v", cfg.Brokers, err)
	}
	if r.Consume.Bytes < want {
		t.Errorf("replay on %v read %d of %d bytes", cfg.Brokers, r.Consume.Bytes, want)
	}
	return r
}

// String is the system's column title, for messages.
func (s *system) String() string { return fmt.Sprintf("%s (%s payload)", s.name, s.payload) }
