package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/siltdata/silt/agent/ingest"
	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/tests/bench/loadgen"
	"github.com/siltdata/silt/tests/bench/siltproc"
	"github.com/siltdata/silt/tests/harness"
)

var (
	reportFlag  = flag.Bool("report", false, "run the benchmark report (also SILT_BENCH_REPORT=1)")
	fullFlag    = flag.Bool("full", false, "full run: longer phases and a 2 GiB cold replay (also SILT_BENCH_FULL=1)")
	phaseFlag   = flag.Duration("phase", 0, "length of each load phase (default 8s quick, 30s full)")
	replayFlag  = flag.String("replay-bytes", "", "bytes to replay cold (default 2GiB; shorter replays mostly measure the start-up)")
	outFlag     = flag.String("out", "results/latest.md", "file the table is written to (relative to tests/bench)")
	partsFlag   = flag.Int("partitions", 12, "partitions of every benchmark topic")
	prodFlag    = flag.Int("producers", 4, "producer clients")
	recSizeFlag = flag.Int("record-size", 1024, "record value size in bytes")
	profileFlag = flag.String("profile", "", "write a CPU profile of every silt phase (from the agent's /debug/pprof) into this `directory`")
	binFlag     = flag.String("silt-bin", "", "run this silt `binary` instead of building cmd/silt (before/after comparisons of another commit's build)")
	phasesFlag  = flag.String("phases", "", "run only the phases whose name matches this `regexp` (for experiments; the tables show what ran)")
	systemsFlag = flag.String("systems", "kfake,kafka,dev,agent,agent-json", "comma-separated systems to measure (kfake, kafka, dev, agent, agent-json); the raw stores are measured with dev (FS) and agent (S3)")
)

const gib = 1 << 30

// noCompaction keeps the janitor from compacting the benchmark's topics
// during the run: with the default 5 minutes, a run on a loaded machine
// had its first topics rewritten during later phases, whose upload and
// GET figures then counted the janitor's work (upload ratios up to 5×,
// 1.9× the replayed bytes read), and a cold replay that overlapped the
// compaction of its topic stalled (1678 of 2048 MiB in 10 minutes).
// Replay of compacted data would be a phase of its own.
var noCompaction = []string{"--compaction-age", "24h"}

// params are one report run's sizes.
type params struct {
	full        bool
	phase       time.Duration // each produce phase
	rawPhase    time.Duration // each raw object-store phase at saturation
	lowPhase    time.Duration // each raw low-load PUT phase
	replayBytes int64
}

func reportParams(t *testing.T) params {
	p := params{phase: 8 * time.Second, rawPhase: 4 * time.Second, lowPhase: 3 * time.Second, replayBytes: 2 * gib}
	if *fullFlag || os.Getenv("SILT_BENCH_FULL") == "1" {
		p = params{full: true, phase: 30 * time.Second, rawPhase: 10 * time.Second, lowPhase: 5 * time.Second, replayBytes: 2 * gib}
	}
	if *phaseFlag > 0 {
		p.phase = *phaseFlag
	}
	if *replayFlag != "" {
		n, err := loadgen.ParseBytes(*replayFlag)
		if err != nil {
			t.Fatal(err)
		}
		p.replayBytes = n
	}
	return p
}

// rawStore is the physical limit measured on one bucket.
type rawStore struct {
	put, get      loadgen.RawResult
	low, low25    loadgen.RawResult // one PUT at a time, at silt's segment size at half load
	lowSize       int
	low25Size     int
	chunkSize     int
	measured      bool
	objectSize    int
	concurrencyPG [2]int // PUT, GET concurrency
}

// siltPhases are the phases a silt deployment runs, in order, for one
// payload. Single-producer phases (as fast as the client goes, and at
// singleRate for latency), each with the early cut on (the default) and
// off, and a saturation phase with it off, run on silt agent only (the
// production shape; each costs a phase length): the early cut's
// trade-off, measured in every report. With secure (silt agent only),
// the saturation load also runs through a SASL_SSL listener with
// SCRAM-SHA-512, beside plaintext.
func siltPhases(payload string, clients []loadgen.ProducerClient, secure *secureListener) []phase {
	ph := []phase{satPhase(phaseSat), halfPhase(phaseHalf)}
	if payload == loadgen.PayloadRandom {
		ph = append(ph, halfPhase(phaseHalf25, "--flush-interval", "25ms"))
	}
	if len(clients) > 0 {
		ph = append(ph, satPhase(noEarlyCut(phaseSat), earlyCutOff...))
	}
	if secure != nil {
		s := satPhase(phaseSatSecure, secure.flags...)
		s.client = secure.client
		ph = append(ph, s)
	}
	for _, c := range clients {
		for _, rate := range []float64{0, singleRate} {
			name := singlePhase(c.Name(), rate)
			ph = append(ph, singleProducerPhase(c, name, rate), singleProducerPhase(c, noEarlyCut(name), rate, earlyCutOff...))
		}
	}
	return append(ph, replayPhase())
}

// kfakePhases are kfake's: the same loads, on one in-memory cluster.
func kfakePhases(clients []loadgen.ProducerClient) []phase {
	ph := []phase{satPhase(phaseSat), halfPhase(phaseHalf)}
	for _, c := range clients {
		ph = append(ph, singleProducerPhase(c, singlePhase(c.Name(), 0), 0))
	}
	return append(ph, replayPhase())
}

// producerClients are the client libraries measured as one idempotent
// producer with default settings. Another library joins as a
// loadgen.External running a program that speaks its protocol (the Java
// client's, once tests/ has one, is one more entry here).
func producerClients(t *testing.T) []loadgen.ProducerClient {
	clients := []loadgen.ProducerClient{loadgen.FranzGo{}}
	if rd, err := librdkafka(); err == nil {
		clients = append(clients, rd)
	} else if harness.Strict() {
		t.Fatalf("librdkafka single-producer client: %v", err)
	} else {
		t.Logf("librdkafka single-producer client left out: %v", err)
	}
	return clients
}

// systemPython is where Debian's python3-confluent-kafka lives; python3
// on PATH may be another interpreter without it.
const systemPython = "/usr/bin/python3"

// librdkafka is confluent-kafka's producer (tests/bench/clients).
func librdkafka() (loadgen.ProducerClient, error) {
	if err := exec.Command(systemPython, "-c", "import confluent_kafka").Run(); err != nil {
		return nil, fmt.Errorf("%s cannot import confluent_kafka (make test-deps installs python3-confluent-kafka): %w", systemPython, err)
	}
	return loadgen.External{Label: "librdkafka", Argv: []string{systemPython, filepath.Join("clients", "rdkafka_producer.py")}}, nil
}

func TestReport(t *testing.T) {
	if !*reportFlag && os.Getenv("SILT_BENCH_REPORT") != "1" {
		t.Skip("the benchmark report runs only with -report or SILT_BENCH_REPORT=1 (make bench)")
	}
	p := reportParams(t)
	ctx := t.Context()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	base := loadgen.DefaultConfig()
	base.Partitions, base.Producers, base.RecordSize = *partsFlag, *prodFlag, *recSizeFlag
	base.Duration, base.Logger = p.phase, logger
	started := time.Now()
	load1, _ := loadAverage()

	bin := *binFlag
	if bin == "" {
		var err error
		if bin, err = siltproc.Build(ctx, t.TempDir(), false); err != nil {
			t.Fatal(err)
		}
	}
	clients := producerClients(t)

	want := map[string]bool{}
	for _, n := range strings.Split(*systemsFlag, ",") {
		want[strings.TrimSpace(n)] = true
	}
	var systems []*system
	var dev, agent *system
	if want["kfake"] {
		logger.Info("system: kfake")
		systems = append(systems, runKfake(t, p, base, kfakePhases(clients)))
	}
	if want["kafka"] {
		logger.Info("system: Apache Kafka")
		systems = append(systems, runKafka(t, p, base, kfakePhases(clients)))
	}
	if want["dev"] {
		logger.Info("system: silt dev")
		devDir := t.TempDir()
		dev = runSilt(t, p, base, &system{name: "silt dev", payload: base.Payload}, nil, siltPhases(base.Payload, nil, nil), func(extra ...string) siltproc.Spec {
			args := append([]string{"dev", "--data-dir", devDir, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-level", "warn"}, noCompaction...)
			return siltproc.Spec{Bin: bin, Args: append(args, extra...)}
		})
		systems = append(systems, dev)
	}

	// silt agent runs once per payload, each on a metastore database and
	// bucket of its own.
	agentSpec := func(pg string, s3 harness.S3Config) func(extra ...string) siltproc.Spec {
		cacheDir := t.TempDir()
		return func(extra ...string) siltproc.Spec {
			args := append([]string{"agent", "--metastore", pg, "--bucket", s3.URL(), "--listen", "127.0.0.1:0",
				"--admin-listen", "127.0.0.1:0", "--cache-dir", cacheDir, "--agent-id", "bench", "--log-level", "warn"}, noCompaction...)
			return siltproc.Spec{Bin: bin, Args: append(args, extra...), Env: s3.Env()}
		}
	}
	if want["agent"] {
		logger.Info("system: silt agent (Postgres + MinIO)")
		pg := harness.Postgres(t)
		secure := newSecureListener(t, bin, pg)
		agent = runSilt(t, p, base, &system{name: "silt agent", payload: base.Payload}, pgXids(pg), siltPhases(base.Payload, clients, secure), agentSpec(pg, harness.S3(t)))
		systems = append(systems, agent)
	}
	var rawS3, rawFS rawStore
	// The raw stores are measured at the sizes the full run's phases
	// showed; an experiment on a few phases (-phases) leaves them out.
	if *phasesFlag != "" {
		dev, agent = nil, nil
	}
	if agent != nil {
		logger.Info("raw object store: MinIO")
		rawCfg := harness.S3(t)
		s3cfg, err := objstore.ParseS3URL(rawCfg.URL())
		if err != nil {
			t.Fatal(err)
		}
		s3cfg.AccessKey, s3cfg.SecretKey = rawCfg.AccessKey, rawCfg.SecretKey
		s3b, err := objstore.NewS3(ctx, s3cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s3b.Close()
		rawS3 = measureRaw(t, s3b, p, base.Partitions, agent)
		agent.raw, agent.rawName = &rawS3, "raw S3"
	}
	if dev != nil {
		logger.Info("raw object store: a local directory")
		fsb, err := objstore.NewFS(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer fsb.Close()
		rawFS = measureRaw(t, fsb, p, base.Partitions, dev)
		dev.raw, dev.rawName = &rawFS, "raw FS"
	}

	// The realistic payload runs last, after the raw stores: the raw
	// figures are measured as close as possible to the silt phases they
	// are compared with.
	if want["agent-json"] {
		logger.Info("system: silt agent, realistic payload (JSON-like events)")
		jbase := base
		jbase.Payload = loadgen.PayloadJSON
		pg := harness.Postgres(t)
		systems = append(systems, runSilt(t, p, jbase, &system{name: "silt agent, json", payload: jbase.Payload}, pgXids(pg), siltPhases(jbase.Payload, nil, nil), agentSpec(pg, harness.S3(t))))
	}

	var out bytes.Buffer
	mode := "quick"
	if p.full {
		mode = "full"
	}
	fmt.Fprintf(&out, "# silt benchmark report (%s mode)\n\n", mode)
	fmt.Fprintf(&out, "Run %s UTC on %s/%s, %d CPUs, %s; load average %s at the start; took %s.\n\n", started.UTC().Format("2006-01-02 15:04"),
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), load1, time.Since(started).Round(time.Second))
	columns := []string{"raw S3 (MinIO)", "raw FS"}
	for _, s := range systems {
		columns = append(columns, s.name)
	}
	tbl := buildTable(p, base, rawS3, rawFS, systems)
	if busy := disturbed(rawS3, rawFS, systems); len(busy) > 0 {
		tbl.Notes = append(tbl.Notes, fmt.Sprintf("DISTURBED: other users of the machine took more than %.2f cores during %s; those figures are not clean, rerun on a quiet machine", maxOther, strings.Join(busy, ", ")))
	}
	tbl.Print(&out, columns)
	fmt.Fprintln(&out)
	bytesTable(systems).Print(&out, columns[2:])
	path := *outFlag
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(os.Stdout, out.String())
	t.Logf("wrote %s", path)
	checkIncompressible(t, systems)
}

// loadAverage is the 1-minute load average from /proc/loadavg: the
// report records it, since a busy machine moves every figure.
func loadAverage() (string, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?", err
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?", fmt.Errorf("/proc/loadavg: %q", b)
	}
	return strings.Join(f[:3], " "), nil
}

// measureRaw measures b with silt's sizes and concurrency: FlushBytes
// objects UploadConcurrency at a time; one partition's share of a
// saturation segment per range GET, 8 at a time (the read path's chunk
// read concurrency); and one PUT at a time at the segment sizes s cut
// at half load.
func measureRaw(t *testing.T, b objstore.Bucket, p params, partitions int, s *system) rawStore {
	ctx := t.Context()
	ing := ingest.DefaultConfig()
	chunk := ing.FlushBytes / partitions
	if avg := s.phase(phaseSat).agent().AvgSegmentBytes(); avg > 0 {
		chunk = int(avg) / partitions
	}
	r := rawStore{objectSize: ing.FlushBytes, chunkSize: chunk, concurrencyPG: [2]int{ing.UploadConcurrency, 8}}
	cfg := loadgen.RawConfig{ObjectSize: ing.FlushBytes, PutConcurrency: ing.UploadConcurrency,
		ChunkSize: chunk, GetConcurrency: 8, Duration: p.rawPhase, Prefix: "raw"}
	var keys []string
	var err error
	r.put, keys, err = loadgen.RawPut(ctx, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.get, err = loadgen.RawGet(ctx, b, keys, cfg); err != nil {
		t.Fatal(err)
	}
	lowPut := func(size int) loadgen.RawResult {
		c := loadgen.RawConfig{ObjectSize: size, PutConcurrency: 1, Duration: p.lowPhase, Prefix: "raw-low"}
		res, _, err := loadgen.RawPut(ctx, b, c)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	r.lowSize = segSize(s.phase(phaseHalf).agent(), 1<<20)
	r.low = lowPut(r.lowSize)
	if h := s.phase(phaseHalf25); h != nil {
		r.low25Size = segSize(h.agent(), 128<<10)
		r.low25 = lowPut(r.low25Size)
	}
	r.measured = true
	return r
}

func segSize(f loadgen.AgentFigures, fallback int) int {
	if avg := f.AvgSegmentBytes(); avg > 0 {
		return int(avg)
	}
	return fallback
}

// pgXids counts the metastore's write transactions: every Postgres
// transaction that writes gets a transaction id, so the difference of
// pg_current_xact_id() between two reads is the writes in between, plus
// the one the second read itself takes. (pg_stat_database counts reads
// too, and only after a delay.)
func pgXids(url string) func(context.Context) (map[string]float64, error) {
	return func(ctx context.Context) (map[string]float64, error) {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return nil, err
		}
		defer conn.Close(ctx)
		var xid int64
		if err := conn.QueryRow(ctx, "SELECT pg_current_xact_id()::text::bigint").Scan(&xid); err != nil {
			return nil, err
		}
		return map[string]float64{"pg_xids": float64(xid)}, nil
	}
}

// writeTxPerSegment is the Postgres write transactions per segment cut,
// without the probe's own; -1 when not measured.
func writeTxPerSegment(f loadgen.AgentFigures) float64 {
	x, ok := f.Counters["pg_xids"]
	if !ok || f.Segments <= 0 {
		return -1
	}
	return (x - 1) / f.Segments
}
