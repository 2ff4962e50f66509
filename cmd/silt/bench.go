package main

// silt bench: the benchmark load generator pointed at any Kafka-compatible
// cluster. It prints the rows of `make bench`'s table that can be measured
// from outside: produce throughput at saturation, latency at half of it,
// end-to-end latency, tail and replay consumer throughput; with --pid and
// --metrics-url (an agent on this machine) also CPU per GB, RSS, object
// requests and commits per segment; with --bucket the raw PUT/GET limit
// of that bucket, at silt's segment and chunk sizes. --tls and
// --sasl-mechanism point every client at a secured listener (SSL,
// SASL_PLAINTEXT or SASL_SSL).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/siltdata/silt/agent/ingest"
	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/tests/bench/loadgen"
)

// benchOptions are `silt bench`'s flags.
type benchOptions struct {
	load          loadgen.Config
	rateMB        float64
	flushInterval time.Duration
	replay        string
	pid           int
	metricsURL    string
	bucket        string
	out           string
}

// benchPasswordEnv holds the SASL password when --sasl-password-file is
// not given.
const benchPasswordEnv = "SILT_BENCH_SASL_PASSWORD"

func parseBenchOptions(args []string, out io.Writer, stdin io.Reader) (benchOptions, error) {
	o := benchOptions{load: loadgen.DefaultConfig()}
	fs := flag.NewFlagSet("silt bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	brokers := fs.String("brokers", strings.Join(o.load.Brokers, ","), "comma-separated seed `host:port` list")
	fs.StringVar(&o.load.Topic, "topic", "silt-bench", "topic `prefix`: <prefix>-sat for saturation, <prefix>-half for the latency run (created if missing)")
	fs.IntVar(&o.load.Partitions, "partitions", o.load.Partitions, "partition `count` of created topics")
	fs.IntVar(&o.load.Producers, "producers", o.load.Producers, "producer client `count`")
	fs.IntVar(&o.load.RecordSize, "record-size", o.load.RecordSize, "record value size in `bytes` (at least 8)")
	fs.DurationVar(&o.load.Duration, "duration", o.load.Duration, "length of each produce `phase`")
	fs.Float64Var(&o.rateMB, "rate", 0, "produce rate in `MB/s` for the latency run; 0 measures saturation first and uses half of it")
	fs.StringVar(&o.load.Compression, "compression", o.load.Compression, "producer `codec`: none, gzip, snappy, lz4, zstd")
	fs.StringVar(&o.load.Payload, "payload", o.load.Payload, "record values: `random` (incompressible, distinct per record: storage figures measure storage) or json (JSON-like events, realistic compressibility)")
	fs.IntVar(&o.load.MaxInflight, "max-inflight", 0, "produce requests in `count` in flight per broker with idempotence disabled; 0 keeps the idempotent default (at most 5)")
	fs.DurationVar(&o.flushInterval, "flush-interval", ingest.DefaultConfig().FlushInterval, "the cluster's flush `interval`, for the latency target")
	fs.StringVar(&o.replay, "replay-bytes", "0", "replay this `size` of the saturation topic from its start (e.g. 1GiB; 0 skips); caches are whatever the cluster has")
	fs.IntVar(&o.pid, "pid", 0, "`PID` of an agent on this machine, for CPU seconds per GB and RSS")
	fs.StringVar(&o.metricsURL, "metrics-url", "", "agent Prometheus `url` (http://host:9644/metrics), for object requests and commits per segment")
	fs.StringVar(&o.bucket, "bucket", "", "also measure this bucket's raw PUT/GET (`url` as silt agent --bucket; S3 credentials from the AWS environment). Writes objects under bench-raw/")
	fs.StringVar(&o.out, "out", "", "also write the table to this `file`")
	useTLS := fs.Bool("tls", false, "connect over TLS (SSL and SASL_SSL listeners), trusting the system's CAs or --tls-ca-file")
	caFile := fs.String("tls-ca-file", "", "PEM `file` of the CAs to trust (implies --tls)")
	mech := fs.String("sasl-mechanism", "", "authenticate with SASL `mechanism` PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_PLAINTEXT and SASL_SSL listeners)")
	user := fs.String("sasl-user", "", "SASL `user`")
	passFile := fs.String("sasl-password-file", "", "`file` holding the SASL password (- for standard input); default "+benchPasswordEnv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(out, "Usage: silt bench [flags]\n\nFlags:")
			fs.SetOutput(out)
			fs.PrintDefaults()
			return o, errHelp
		}
		return o, fmt.Errorf("%w (see 'silt bench -h')", err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (see 'silt bench -h')", fs.Arg(0))
	}
	o.load.Brokers = nil
	for b := range strings.SplitSeq(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			o.load.Brokers = append(o.load.Brokers, b)
		}
	}
	var errs []error
	if err := o.load.Validate(); err != nil {
		errs = append(errs, err)
	}
	var password string
	if *mech != "" {
		p, err := readPassword(*passFile, "sasl-password-file", benchPasswordEnv, stdin)
		if err != nil {
			errs = append(errs, fmt.Errorf("--sasl-mechanism: %w", err))
		}
		password = p
	} else if *user != "" || *passFile != "" {
		errs = append(errs, errors.New("--sasl-user and --sasl-password-file need --sasl-mechanism"))
	}
	if *mech == "" || password != "" {
		client, err := loadgen.NewClientOpts(*useTLS, *caFile, *mech, *user, password)
		if err != nil {
			errs = append(errs, err)
		}
		o.load.Client = client
	}
	if o.rateMB < 0 {
		errs = append(errs, fmt.Errorf("--rate %g: must not be negative", o.rateMB))
	}
	if _, err := loadgen.ParseBytes(o.replay); err != nil {
		errs = append(errs, fmt.Errorf("--replay-bytes: %w", err))
	}
	return o, errors.Join(errs...)
}

// runBench is `silt bench`: it returns the exit status.
func runBench(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseBenchOptions(args, stdout, stdin)
	if err != nil {
		if errors.Is(err, errHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "silt bench: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	o.load.Logger = logger
	if err := bench(ctx, o, stdout, logger); err != nil {
		fmt.Fprintf(stderr, "silt bench: %v\n", err)
		return exitFailed
	}
	return exitOK
}

func bench(ctx context.Context, o benchOptions, stdout io.Writer, logger *slog.Logger) error {
	probe := loadgen.Probe{PID: o.pid, MetricsURL: o.metricsURL}
	prefix := o.load.Topic
	tbl := &loadgen.Table{Title: "silt bench against " + strings.Join(o.load.Brokers, ",")}
	idem := "idempotent"
	if o.load.MaxInflight > 0 {
		idem = fmt.Sprintf("not idempotent, %d requests in flight", o.load.MaxInflight)
	}
	tbl.Notes = []string{fmt.Sprintf("load: franz-go, acks=all (%s), %d producers, %d partitions, %d B records, %s payload, compression %s, %s per phase, %s connections",
		idem, o.load.Producers, o.load.Partitions, o.load.RecordSize, o.load.Payload, o.load.Compression, o.load.Duration, o.load.Client)}
	if o.metricsURL != "" {
		tbl.Notes = append(tbl.Notes, `bytes: value bytes acknowledged (replay: received) / object bytes uploaded (replay: read), from the agent's silt_objstore_bytes_total, = ratio`)
	}

	var sat *loadgen.LoadResult
	rate := o.rateMB * 1e6
	if rate == 0 {
		logger.Info("saturation phase", "topic", prefix+"-sat")
		cfg := o.load
		cfg.Topic = prefix + "-sat"
		r, err := loadgen.RunLoad(ctx, cfg, probe)
		if err != nil {
			return err
		}
		sat = &r
		rate = r.Produce.Throughput() / 2
	}
	logger.Info("latency phase", "topic", prefix+"-half", "rate_mb_per_s", loadgen.MBps(rate))
	cfg := o.load
	cfg.Topic, cfg.Rate = prefix+"-half", rate
	half, err := loadgen.RunLoad(ctx, cfg, probe)
	if err != nil {
		return err
	}

	var replay *loadgen.ReplayResult
	if n, _ := loadgen.ParseBytes(o.replay); n > 0 && sat != nil {
		cfg := o.load
		cfg.Topic = prefix + "-sat"
		if err := topUpTopic(ctx, cfg, n); err != nil {
			return err
		}
		logger.Info("replay phase", "topic", cfg.Topic, "bytes", n)
		r, err := loadgen.Replay(ctx, cfg, n, 30*time.Minute, probe)
		if err != nil {
			return err
		}
		replay = &r
	}

	var put, get loadgen.RawResult
	if o.bucket != "" {
		var err error
		if put, get, err = rawBucket(ctx, o, logger); err != nil {
			return err
		}
	}

	cell := func(ok bool, v string) string {
		if !ok {
			return ""
		}
		return v
	}
	hasRaw := o.bucket != ""
	tbl.Add("raw PUT bandwidth / p50 / p99", "MB/s / ms / ms", cell(hasRaw, loadgen.MBps(put.Throughput())+" / "+quant(put.Latency, 0.5)+" / "+quant(put.Latency, 0.99)), "")
	tbl.Add("raw GET bandwidth / p50 / p99", "MB/s / ms / ms", cell(hasRaw, loadgen.MBps(get.Throughput())+" / "+quant(get.Latency, 0.5)+" / "+quant(get.Latency, 0.99)), "")
	if sat != nil {
		tbl.Add("max produce throughput", "MB/s", "", loadgen.MBps(sat.Produce.Throughput()))
		tbl.Add("tail consumer throughput (saturation)", "MB/s", "", loadgen.MBps(sat.Consume.Throughput()))
		if c := sat.Agent.CPUSeconds; c >= 0 {
			tbl.Add("agent CPU per GB produced", "CPU-s/GB", "", loadgen.Num(c/(float64(sat.Produce.Bytes)/1e9), 1))
		}
		if sat.Agent.Puts >= 0 {
			tbl.Add("object PUTs per GiB produced", "PUT/GiB", "", loadgen.Num(sat.Agent.Puts/(float64(sat.Produce.Bytes)/(1<<30)), 1))
		}
		if sat.Agent.Segments > 0 {
			tbl.Add("segment commits per segment", "tx/seg", "", loadgen.Num(sat.Agent.Commits/sat.Agent.Segments, 3))
		}
		if sat.Agent.PeakRSS > 0 && half.Agent.PeakRSS > 0 {
			tbl.Add("peak agent RSS: saturation / half", "MiB", "", fmt.Sprintf("%d / %d", sat.Agent.PeakRSS>>20, half.Agent.PeakRSS>>20))
		}
	}
	tbl.Add("produce rate for latency", "MB/s", "", loadgen.MBps(half.Produce.Throughput()))
	tbl.Add("produce latency p50 / p99 / p999", "ms", "", quant(half.Produce.Latency, 0.5)+" / "+quant(half.Produce.Latency, 0.99)+" / "+quant(half.Produce.Latency, 0.999))
	if v := half.Agent.ServerLatency; v >= 0 {
		tbl.Add("agent-side produce latency mean (append→commit)", "ms", "", loadgen.Num(v*1000, 1))
	}
	tbl.Add("end-to-end latency p50 / p99", "ms", "", quant(half.Consume.EndToEnd, 0.5)+" / "+quant(half.Consume.EndToEnd, 0.99))
	if o.metricsURL != "" {
		if sat != nil {
			tbl.Add("bytes produced / uploaded (saturation)", "MiB", "", bytesRatio(sat.Produce.Bytes, sat.Agent.BytesPut))
		}
		tbl.Add("bytes produced / uploaded (latency run)", "MiB", "", bytesRatio(half.Produce.Bytes, half.Agent.BytesPut))
	}
	if replay != nil {
		tbl.Add("replay throughput (not necessarily cold)", "MB/s", "", loadgen.MBps(replay.Consume.Throughput()))
		if replay.Agent.Gets >= 0 {
			tbl.Add("object GETs per GiB replayed", "GET/GiB", "", loadgen.Num(replay.Agent.Gets/(float64(replay.Consume.Bytes)/(1<<30)), 1))
			tbl.Add("bytes replayed / read from the object store", "MiB", "", bytesRatio(replay.Consume.Bytes, replay.Agent.BytesGet))
		}
	}

	p99 := half.Produce.Latency.Quantile(0.99)
	if sat != nil {
		r := sat.Produce.Throughput() / put.Throughput()
		tbl.Check("cluster", "produce ≥ 0.7× raw PUT bandwidth", loadgen.Ratio(r), r >= 0.7, hasRaw && put.Throughput() > 0)
		puts := sat.Agent.Puts / (float64(sat.Produce.Bytes) / (1 << 30))
		if sat.Agent.Puts >= 0 {
			tbl.Check("cluster", "≤ 140 PUTs/GiB at saturation", loadgen.Num(puts, 1), puts <= 140, true)
		}
		if sat.Agent.Segments > 0 {
			tx := sat.Agent.Commits / sat.Agent.Segments
			tbl.Check("cluster", "1 commit per segment (±5%)", loadgen.Num(tx, 3), tx >= 0.95 && tx <= 1.05, true)
		}
	}
	// Without --bucket the raw PUT p99 is unknown; the check then uses 0,
	// the strictest form, and says so.
	limit := o.flushInterval + put.Latency.Quantile(0.99) + 50*time.Millisecond
	goal := fmt.Sprintf("produce p99 ≤ flush %s + raw PUT p99 + 50ms (= %sms)", o.flushInterval, loadgen.Ms(limit))
	if !hasRaw {
		goal = fmt.Sprintf("produce p99 ≤ flush %s + 50ms (no --bucket: raw PUT p99 taken as 0)", o.flushInterval)
	}
	tbl.Check("cluster", goal, loadgen.Ms(p99)+"ms", p99 <= limit, true)
	e99 := half.Consume.EndToEnd.Quantile(0.99)
	tbl.Check("cluster", "e2e p99 ≤ produce p99 + 50ms", loadgen.Ms(e99)+"ms", e99 <= p99+50*time.Millisecond, half.Consume.EndToEnd.Len() > 0)
	if replay != nil {
		r := replay.Consume.Throughput() / get.Throughput()
		tbl.Check("cluster", "replay ≥ 0.7× raw GET bandwidth", loadgen.Ratio(r), r >= 0.7, hasRaw && get.Throughput() > 0)
	}

	var sb strings.Builder
	tbl.Print(&sb, []string{"raw bucket", "cluster"})
	fmt.Fprint(stdout, sb.String())
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(sb.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// topUpTopic produces, unmeasured, until the topic holds n value bytes.
func topUpTopic(ctx context.Context, cfg loadgen.Config, n int64) error {
	ends, err := loadgen.EndOffsets(ctx, cfg)
	if err != nil {
		return err
	}
	var have int64
	for _, o := range ends {
		have += o * int64(cfg.RecordSize)
	}
	if have >= n {
		return nil
	}
	cfg.Rate, cfg.MaxBytes, cfg.Duration, cfg.Logger = 0, n-have, 30*time.Minute, nil
	_, err = loadgen.Produce(ctx, cfg)
	return err
}

// rawBucket measures the bucket's PUT and GET at silt's defaults: flush
// size objects, upload concurrency in flight; one partition's share of a
// segment per range GET, 8 in flight (the read path's concurrency). The
// objects it wrote are deleted afterwards.
func rawBucket(ctx context.Context, o benchOptions, logger *slog.Logger) (put, get loadgen.RawResult, err error) {
	b, err := objstore.Open(ctx, o.bucket)
	if err != nil {
		return put, get, err
	}
	defer func() { _ = b.Close() }()
	ing := ingest.DefaultConfig()
	cfg := loadgen.RawConfig{ObjectSize: ing.FlushBytes, PutConcurrency: ing.UploadConcurrency,
		ChunkSize: ing.FlushBytes / o.load.Partitions, GetConcurrency: 8, Duration: min(o.load.Duration, 10*time.Second), Prefix: "bench-raw"}
	logger.Info("raw bucket phase", "object_bytes", cfg.ObjectSize, "chunk_bytes", cfg.ChunkSize)
	put, keys, err := loadgen.RawPut(ctx, b, cfg)
	if err == nil {
		get, err = loadgen.RawGet(ctx, b, keys, cfg)
	}
	for _, k := range keys {
		if derr := b.Delete(context.WithoutCancel(ctx), k); derr != nil {
			logger.Warn("delete raw benchmark object", "key", k, "err", derr)
		}
	}
	return put, get, err
}

// bytesRatio formats "logical / stored = ratio" in MiB; stored is -1
// when the agent's metrics were not read.
func bytesRatio(logical int64, stored float64) string {
	if stored < 0 || logical <= 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f / %.0f = %.3f", float64(logical)/(1<<20), stored/(1<<20), stored/float64(logical))
}

func quant(s *loadgen.Samples, q float64) string {
	if s == nil || s.Len() == 0 {
		return "?"
	}
	return loadgen.Ms(s.Quantile(q))
}
