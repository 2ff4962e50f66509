package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"

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
)

const gib = 1 << 30

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

// system is what the load measured on one Kafka implementation.
type system struct {
	sat     loadgen.LoadResult   // saturation, default flush interval
	half    loadgen.LoadResult   // half the saturation rate, default flush interval
	half25  *loadgen.LoadResult  // half rate, --flush-interval 25ms (silt only)
	replay  loadgen.ReplayResult // replay of the saturation topic
	cold    bool                 // replay started with empty caches
	flushed bool                 // has a flush interval (silt)
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

	bin, err := siltproc.Build(ctx, t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}

	logger.Info("phase: kfake")
	kf := runKfake(t, p, base)

	logger.Info("phase: silt dev")
	devDir := t.TempDir()
	dev := runSilt(t, p, base, "dev", nil, func(extra ...string) siltproc.Spec {
		args := []string{"dev", "--data-dir", devDir, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-level", "warn"}
		return siltproc.Spec{Bin: bin, Args: append(args, extra...)}
	})

	logger.Info("phase: silt agent (Postgres + MinIO)")
	pg := harness.Postgres(t)
	agentS3 := harness.S3(t)
	cacheDir := t.TempDir()
	agent := runSilt(t, p, base, "agent", pgXids(pg), func(extra ...string) siltproc.Spec {
		args := []string{"agent", "--metastore", pg, "--bucket", agentS3.URL(), "--listen", "127.0.0.1:0",
			"--admin-listen", "127.0.0.1:0", "--cache-dir", cacheDir, "--agent-id", "bench", "--log-level", "warn"}
		return siltproc.Spec{Bin: bin, Args: append(args, extra...), Env: agentS3.Env()}
	})

	logger.Info("phase: raw object store (MinIO and a local directory)")
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
	rawS3 := measureRaw(t, s3b, p, base.Partitions, agent)
	fsb, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fsb.Close()
	rawFS := measureRaw(t, fsb, p, base.Partitions, dev)

	var out bytes.Buffer
	mode := "quick"
	if p.full {
		mode = "full"
	}
	fmt.Fprintf(&out, "# silt benchmark report (%s mode)\n\n", mode)
	fmt.Fprintf(&out, "Run %s UTC on %s/%s, %d CPUs, %s; took %s.\n\n", started.UTC().Format("2006-01-02 15:04"),
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), time.Since(started).Round(time.Second))
	tbl := buildTable(p, base, rawS3, rawFS, kf, dev, agent)
	tbl.Print(&out, []string{"raw S3 (MinIO)", "raw FS", "kfake", "silt dev", "silt agent"})
	path := *outFlag
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(os.Stdout, out.String())
	t.Logf("wrote %s", path)
}

// runKfake measures franz-go's in-memory kfake under the same load.
func runKfake(t *testing.T, p params, base loadgen.Config) system {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := base
	cfg.Brokers = c.ListenAddrs()
	var s system
	s.sat = load(t, cfg, "sat", 0, loadgen.Probe{})
	s.half = load(t, cfg, "half", s.sat.Produce.Throughput()/2, loadgen.Probe{})
	cfg.Topic = "sat"
	s.replay = replay(t, cfg, p, s.sat, loadgen.Probe{})
	return s
}

// runSilt measures one silt deployment. spec builds the process spec
// with extra flags; every run reuses the same metastore and bucket:
//
//  1. saturation with a tail consumer (fresh process);
//  2. half that rate with an end-to-end consumer (fresh process, so its
//     peak RSS is not the saturation run's);
//  3. the same with --flush-interval 25ms;
//  4. cold replay of the saturation topic (fresh process: empty caches).
func runSilt(t *testing.T, p params, base loadgen.Config, name string, counters func(context.Context) (map[string]float64, error), spec func(extra ...string) siltproc.Spec) system {
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	start := func(extra ...string) (*siltproc.Proc, loadgen.Config, loadgen.Probe) {
		sp := spec(extra...)
		sp.Log = logf
		proc, err := siltproc.Start(t.Context(), sp)
		if err != nil {
			t.Fatalf("silt %s: %v (log: %s)", name, err, logPath)
		}
		t.Cleanup(func() {
			select {
			case <-proc.Done():
			default:
				proc.Kill()
			}
		})
		cfg := base
		cfg.Brokers = []string{proc.Kafka}
		return proc, cfg, loadgen.Probe{PID: proc.PID, MetricsURL: proc.MetricsURL(), Counters: counters}
	}
	stop := func(proc *siltproc.Proc) {
		if err := proc.Stop(time.Minute); err != nil {
			t.Logf("silt %s stop: %v (log: %s)", name, err, logPath)
		}
	}
	s := system{flushed: true, cold: true}

	proc, cfg, probe := start()
	s.sat = load(t, cfg, "sat", 0, probe)
	topUp(t, cfg, p)
	stop(proc)

	rate := s.sat.Produce.Throughput() / 2
	proc, cfg, probe = start()
	s.half = load(t, cfg, "half", rate, probe)
	stop(proc)

	proc, cfg, probe = start("--flush-interval", "25ms")
	h := load(t, cfg, "half25", rate, probe)
	s.half25 = &h
	stop(proc)

	proc, cfg, probe = start()
	cfg.Topic = "sat"
	s.replay = replay(t, cfg, p, s.sat, probe)
	stop(proc)
	return s
}

// load runs one produce phase on topic at rate (0: saturation).
func load(t *testing.T, cfg loadgen.Config, topic string, rate float64, probe loadgen.Probe) loadgen.LoadResult {
	cfg.Topic, cfg.Rate = topic, rate
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
	cfg.Topic = "sat"
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
	ends, err := loadgen.EndOffsets(t.Context(), cfg.Brokers, cfg.Topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, o := range ends {
		n += o
	}
	return n * int64(cfg.RecordSize)
}

func replay(t *testing.T, cfg loadgen.Config, p params, sat loadgen.LoadResult, probe loadgen.Probe) loadgen.ReplayResult {
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

// measureRaw measures b with silt's sizes and concurrency: FlushBytes
// objects UploadConcurrency at a time; one partition's share of a
// saturation segment per range GET, 8 at a time (the read path's chunk
// read concurrency); and one PUT at a time at the segment sizes s cut
// at half load.
func measureRaw(t *testing.T, b objstore.Bucket, p params, partitions int, s system) rawStore {
	ctx := t.Context()
	ing := ingest.DefaultConfig()
	chunk := ing.FlushBytes / partitions
	if avg := s.sat.Agent.AvgSegmentBytes(); avg > 0 {
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
	r.lowSize = segSize(s.half.Agent, 1<<20)
	r.low = lowPut(r.lowSize)
	if s.half25 != nil {
		r.low25Size = segSize(s.half25.Agent, 128<<10)
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

// buildTable turns the measurements into the report's one table.
func buildTable(p params, base loadgen.Config, rawS3, rawFS rawStore, kf, dev, agent system) *loadgen.Table {
	tbl := &loadgen.Table{Title: "silt vs the physical limit"}
	tbl.Notes = []string{
		fmt.Sprintf("load: franz-go, acks=all (idempotent), %d producers, %d partitions, %d B records, no compression, %s per phase", base.Producers, base.Partitions, base.RecordSize, p.phase),
		fmt.Sprintf("raw: PUT %s objects × %d in flight (silt FlushBytes × UploadConcurrency); GET %s ranges × 8 in flight (one partition's chunk of a saturation segment × the read path's concurrency); low load: 1 PUT at a time at the segment size silt cut at half load", kib(rawS3.objectSize), rawS3.concurrencyPG[0], kib(rawS3.chunkSize)),
		"silt dev runs on SQLite + a local directory, so its targets compare with raw FS; silt agent (Postgres + MinIO) with raw S3",
		"each silt phase runs in a fresh process on the same metastore and bucket; cold replay starts with empty caches",
		"kfake keeps its log in memory: it replays only what its saturation phase produced, from memory",
		"figures are from a machine shared with other builds: noisy, compare ratios within one run",
	}
	if n := runtime.NumCPU(); n <= 4 {
		tbl.Notes = append(tbl.Notes, fmt.Sprintf("only %d CPUs are shared by the load generator, kfake or the agent, MinIO and Postgres: saturation figures may measure CPU, not storage (kfake, an in-memory broker, is the CPU-bound reference)", n))
	}
	dash := ""
	produceCol := func(f func(s system) string) []string {
		return []string{dash, dash, f(kf), f(dev), f(agent)}
	}
	siltCol := func(f func(s system) string) []string {
		return []string{dash, dash, dash, f(dev), f(agent)}
	}
	rawCol := func(f func(r rawStore) string) []string {
		return []string{f(rawS3), f(rawFS)}
	}
	tbl.Add("raw PUT bandwidth (saturation)", "MB/s", rawCol(func(r rawStore) string { return loadgen.MBps(r.put.Throughput()) })...)
	tbl.Add("raw PUT latency p50 / p99 (saturation)", "ms", rawCol(func(r rawStore) string { return p5099(r.put.Latency) })...)
	tbl.Add("raw GET bandwidth", "MB/s", rawCol(func(r rawStore) string { return loadgen.MBps(r.get.Throughput()) })...)
	tbl.Add("raw GET latency p50 / p99", "ms", rawCol(func(r rawStore) string { return p5099(r.get.Latency) })...)
	tbl.Add("raw PUT low load: size", "KiB", rawCol(func(r rawStore) string { return kib(r.lowSize) + " / " + kib(r.low25Size) })...)
	tbl.Add("raw PUT low load p50 / p99 (250ms size)", "ms", rawCol(func(r rawStore) string { return p5099(r.low.Latency) })...)
	tbl.Add("raw PUT low load p50 / p99 (25ms size)", "ms", rawCol(func(r rawStore) string { return p5099(r.low25.Latency) })...)

	tbl.Add("max produce throughput", "MB/s", produceCol(func(s system) string { return loadgen.MBps(s.sat.Produce.Throughput()) })...)
	tbl.Add("agent CPU per GB produced (saturation)", "CPU-s/GB", siltCol(func(s system) string {
		return known(s.sat.Agent.CPUSeconds, func(v float64) string { return loadgen.Num(v/(float64(s.sat.Produce.Bytes)/1e9), 1) })
	})...)
	tbl.Add("tail consumer throughput (saturation)", "MB/s", produceCol(func(s system) string { return loadgen.MBps(s.sat.Consume.Throughput()) })...)
	tbl.Add("produce rate for latency (half of max)", "MB/s", produceCol(func(s system) string { return loadgen.MBps(s.half.Produce.Throughput()) })...)
	tbl.Add("produce latency p50 / p99 / p999, flush 250ms", "ms", produceCol(func(s system) string { return p5099999(s.half.Produce.Latency) })...)
	tbl.Add("end-to-end latency p50 / p99, flush 250ms", "ms", produceCol(func(s system) string { return p5099(s.half.Consume.EndToEnd) })...)
	tbl.Add("agent-side produce latency mean (append→commit), flush 250ms / 25ms", "ms", siltCol(func(s system) string {
		return known(s.half.Agent.ServerLatency, func(v float64) string { return loadgen.Num(v*1000, 1) }) + " / " +
			known(s.half25.Agent.ServerLatency, func(v float64) string { return loadgen.Num(v*1000, 1) })
	})...)
	tbl.Add("produce latency p50 / p99 / p999, flush 25ms", "ms", siltCol(func(s system) string { return p5099999(s.half25.Produce.Latency) })...)
	tbl.Add("end-to-end latency p50 / p99, flush 25ms", "ms", siltCol(func(s system) string { return p5099(s.half25.Consume.EndToEnd) })...)
	tbl.Add("replay throughput (silt: cold, empty cache)", "MB/s", produceCol(func(s system) string { return loadgen.MBps(s.replay.Consume.Throughput()) })...)
	tbl.Add("bytes replayed", "MiB", produceCol(func(s system) string { return loadgen.Num(float64(s.replay.Consume.Bytes)/(1<<20), 0) })...)
	tbl.Add("object PUTs per GiB produced (saturation)", "PUT/GiB", siltCol(func(s system) string {
		return known(s.sat.Agent.Puts, func(v float64) string { return loadgen.Num(perGiB(v, s.sat.Produce.Bytes), 1) })
	})...)
	tbl.Add("mean segment size: saturation / half / half 25ms", "KiB", siltCol(func(s system) string {
		return kibf(s.sat.Agent.AvgSegmentBytes()) + " / " + kibf(s.half.Agent.AvgSegmentBytes()) + " / " + kibf(s.half25.Agent.AvgSegmentBytes())
	})...)
	tbl.Add("segment commits per segment (saturation)", "tx/seg", siltCol(func(s system) string {
		return known(s.sat.Agent.Segments, func(v float64) string { return loadgen.Num(s.sat.Agent.Commits/v, 3) })
	})...)
	tbl.Add("Postgres write transactions per segment (saturation; all, incl. pending marker and leases)", "tx/seg", siltCol(func(s system) string {
		return known(writeTxPerSegment(s.sat.Agent), func(v float64) string { return loadgen.Num(v, 2) })
	})...)
	tbl.Add("object GETs per GiB replayed (expected)", "GET/GiB", siltCol(func(s system) string {
		return known(s.replay.Agent.Gets, func(v float64) string {
			return loadgen.Num(perGiB(v, s.replay.Consume.Bytes), 1) + " (" + loadgen.Num(expectedGets(s, base.Partitions), 1) + ")"
		})
	})...)
	tbl.Add("peak agent RSS: saturation / half", "MiB", siltCol(func(s system) string {
		return mib(s.sat.Agent.PeakRSS) + " / " + mib(s.half.Agent.PeakRSS)
	})...)
	tbl.Add("agent VmHWM after saturation / cold replay", "MiB", siltCol(func(s system) string {
		return mib(s.sat.Agent.HWM) + " / " + mib(s.replay.Agent.HWM)
	})...)

	for _, c := range []struct {
		name string
		s    system
		raw  rawStore
		rawN string
	}{{"silt dev", dev, rawFS, "raw FS"}, {"silt agent", agent, rawS3, "raw S3"}} {
		s, raw := c.s, c.raw
		thr := s.sat.Produce.Throughput()
		r := thr / raw.put.Throughput()
		tbl.Check(c.name, "produce ≥ 0.7× "+c.rawN+" PUT bandwidth", loadgen.Ratio(r), r >= 0.7, raw.put.Throughput() > 0)
		r = thr / kf.sat.Produce.Throughput()
		tbl.Check(c.name, "produce ≥ 1.0× kfake", loadgen.Ratio(r), r >= 1.0, kf.sat.Produce.Throughput() > 0)
		for _, l := range []struct {
			flush time.Duration
			res   *loadgen.LoadResult
			raw   loadgen.RawResult
		}{{250 * time.Millisecond, &s.half, raw.low}, {25 * time.Millisecond, s.half25, raw.low25}} {
			if l.res == nil {
				continue
			}
			p99 := l.res.Produce.Latency.Quantile(0.99)
			limit := l.flush + l.raw.Latency.Quantile(0.99) + 50*time.Millisecond
			tbl.Check(c.name, fmt.Sprintf("produce p99 ≤ flush %s + raw PUT p99 + 50ms (= %sms)", l.flush, loadgen.Ms(limit)),
				loadgen.Ms(p99)+"ms", p99 <= limit, l.raw.Ops > 0)
			e99 := l.res.Consume.EndToEnd.Quantile(0.99)
			tbl.Check(c.name, fmt.Sprintf("e2e p99 ≤ produce p99 + 50ms (flush %s)", l.flush),
				loadgen.Ms(e99)+"ms vs "+loadgen.Ms(p99+50*time.Millisecond)+"ms", e99 <= p99+50*time.Millisecond, l.res.Consume.EndToEnd.Len() > 0)
		}
		r = s.replay.Consume.Throughput() / raw.get.Throughput()
		tbl.Check(c.name, "cold replay ≥ 0.7× "+c.rawN+" GET bandwidth", loadgen.Ratio(r), r >= 0.7, raw.get.Throughput() > 0)
		puts := perGiB(s.sat.Agent.Puts, s.sat.Produce.Bytes)
		tbl.Check(c.name, "≤ 140 PUTs/GiB at saturation", loadgen.Num(puts, 1), puts <= 140, s.sat.Agent.Puts >= 0)
		tx := s.sat.Agent.Commits / s.sat.Agent.Segments
		tbl.Check(c.name, "1 metastore commit tx per segment (±5%)", loadgen.Num(tx, 3), tx >= 0.95 && tx <= 1.05, s.sat.Agent.Segments > 0)
		gets, want := perGiB(s.replay.Agent.Gets, s.replay.Consume.Bytes), expectedGets(s, base.Partitions)
		tbl.Check(c.name, "GETs/GiB replayed ≈ GiB / chunk size (0.5×–1.5×)", loadgen.Num(gets, 1)+" vs "+loadgen.Num(want, 1),
			gets >= 0.5*want && gets <= 1.5*want, s.replay.Agent.Gets >= 0 && want > 0)
		rss := float64(s.sat.Agent.PeakRSS) / float64(s.half.Agent.PeakRSS)
		tbl.Check(c.name, "RSS flat when load doubles (saturation ≤ 1.5× half-load peak)", loadgen.Ratio(rss), rss <= 1.5, s.half.Agent.PeakRSS > 0)
	}
	return tbl
}

// expectedGets is GiB divided by the mean chunk size of the replayed
// topic: one GET per partition chunk of each saturation segment.
func expectedGets(s system, partitions int) float64 {
	avg := s.sat.Agent.AvgSegmentBytes()
	if avg <= 0 {
		return -1
	}
	return gib / (avg / float64(partitions))
}

func perGiB(n float64, bytes int64) float64 {
	if bytes <= 0 || n < 0 {
		return -1
	}
	return n / (float64(bytes) / gib)
}

func known(v float64, f func(float64) string) string {
	if v < 0 {
		return "?"
	}
	return f(v)
}

func p5099(s *loadgen.Samples) string {
	if s == nil || s.Len() == 0 {
		return "?"
	}
	return loadgen.Ms(s.Quantile(0.5)) + " / " + loadgen.Ms(s.Quantile(0.99))
}

func p5099999(s *loadgen.Samples) string {
	if s == nil || s.Len() == 0 {
		return "?"
	}
	return strings.Join([]string{loadgen.Ms(s.Quantile(0.5)), loadgen.Ms(s.Quantile(0.99)), loadgen.Ms(s.Quantile(0.999))}, " / ")
}

func kib(n int) string { return fmt.Sprintf("%d", n>>10) }

func kibf(v float64) string {
	if v < 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f", v/1024)
}

func mib(n int64) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f", float64(n)/(1<<20))
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
