package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/siltdata/silt/agent"
	"github.com/siltdata/silt/agent/admin"
	"github.com/siltdata/silt/auth/tlsconf"
	"github.com/siltdata/silt/janitor"
	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/postgres"
	"github.com/siltdata/silt/metastore/sqlite"
	"github.com/siltdata/silt/segment/objstore"
)

// Time limits of the process's life cycle.
const (
	// advertisedFileWait is how long --advertised-addr-file may take to
	// appear: container platforms write it shortly after start.
	advertisedFileWait = 60 * time.Second
	// startTimeout bounds opening the metastore and bucket and starting
	// the listeners, so a wrong address fails instead of hanging.
	startTimeout = 60 * time.Second
	// shutdownTimeout bounds the graceful shutdown: long enough to flush
	// and commit a full buffer, short enough for a container's grace period.
	shutdownTimeout = 25 * time.Second
)

// errShuttingDown makes /readyz fail while the agent drains.
var errShuttingDown = errors.New("shutting down")

// serve runs one agent until ctx is done (SIGINT/SIGTERM), then shuts it down
// gracefully. stop releases the signal handler so a second signal kills.
func serve(ctx context.Context, stop func(), o options, stdout, stderr io.Writer) int {
	level, _ := parseLevel(o.logLevel) // validated
	logger := newLogger(stderr, o.logFormat, level)

	if o.advertisedAddrFile != "" {
		logger.Info("waiting for the advertised address file", "file", o.advertisedAddrFile, "limit", advertisedFileWait)
	}
	cfg, err := agentConfig(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "silt %s: %v\n", o.mode, err)
		return exitUsage
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
	)

	// startCtx bounds only the start: once serving, the agent runs until
	// Shutdown, which keeps flushing and answering after the signal.
	startCtx, cancelStart := context.WithTimeout(ctx, startTimeout)
	defer cancelStart()

	store, bucket, err := openStorage(startCtx, o, logger)
	if err != nil {
		logger.Error("open storage", "err", err)
		return exitFailed
	}
	defer func() {
		if err := store.Close(); err != nil {
			logger.Warn("close metastore", "err", err)
		}
		if err := bucket.Close(); err != nil {
			logger.Warn("close bucket", "err", err)
		}
	}()
	bucket = objstore.WithMetrics(bucket, reg)

	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.MemoryBudget())
		logger.Debug("memory limit", "bytes", cfg.MemoryBudget())
	}
	ag, err := agent.New(cfg, store, bucket, logger, reg)
	if err != nil {
		logger.Error("create agent", "err", err)
		return exitFailed
	}
	if err := ag.Start(startCtx); err != nil {
		logger.Error("start agent", "err", err)
		shutdownAgent(ag, logger) // stops what New started
		return exitFailed
	}

	var draining atomic.Bool
	ready := func(ctx context.Context) error {
		if draining.Load() {
			return errShuttingDown
		}
		return ag.Ready(ctx)
	}
	var adm *admin.Server
	adminAddr := "off"
	if o.adminListen != "" {
		acfg := admin.Config{Addr: o.adminListen}
		if o.sec.adminTLS {
			files, err := tlsconf.Load(tlsconf.Config{CertFile: o.sec.tlsCert, KeyFile: o.sec.tlsKey}, logger)
			if err != nil {
				logger.Error("admin tls", "err", err)
				shutdownAgent(ag, logger)
				return exitFailed
			}
			acfg.TLS = files.ServerConfig()
		}
		adm = admin.New(acfg, reg, ready, logger)
		if err := adm.Start(startCtx); err != nil {
			logger.Error("start admin server", "err", err)
			shutdownAgent(ag, logger)
			return exitFailed
		}
		adminAddr = reachable(adm.Addr())
	}

	// The storage lifecycle: this agent takes part in electing the one
	// janitor of the cluster; it stops (and gives up the lease) before the
	// agent shuts down.
	jctx, stopJanitor := context.WithCancel(context.Background())
	janitorDone := make(chan struct{})
	if o.janitor {
		j, err := janitor.New(janitorConfig(o, ag.ID(), cfg.Ingest.KeyPrefix, cfg.LeaseTTL), store, bucket, logger, reg)
		if err != nil {
			logger.Error("create janitor", "err", err)
			stopJanitor()
			shutdownAgent(ag, logger)
			return exitFailed
		}
		go func() {
			defer close(janitorDone)
			_ = j.Run(jctx)
		}()
	} else {
		close(janitorDone)
	}
	defer func() {
		stopJanitor()
		<-janitorDone
	}()

	kafkaAddr := reachable(ag.Addr())
	logger.Info("silt started", "mode", o.mode, "version", version(), "kafka", ag.Addr(), "admin", adminAddr)
	if o.mode == "dev" {
		printDevHints(stdout, o, kafkaAddr, adminAddr)
	}
	// Exactly one line, the last thing printed before serving: tests and
	// container health checks wait for it.
	fmt.Fprintf(stdout, "silt ready: kafka=%s admin=%s\n", kafkaAddr, adminAddr)

	<-ctx.Done()
	stop()
	draining.Store(true)
	logger.Info("shutting down: flushing buffered records")
	stopJanitor()
	<-janitorDone
	status := exitOK
	if !shutdownAgent(ag, logger) {
		status = exitFailed
	}
	if adm != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := adm.Shutdown(sctx); err != nil {
			logger.Warn("admin shutdown", "err", err)
		}
		cancel()
	}
	logger.Info("stopped")
	return status
}

// shutdownAgent stops taking requests, flushes, commits and answers what
// is buffered, and reports whether that finished in time.
func shutdownAgent(ag *agent.Agent, logger *slog.Logger) bool {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := ag.Shutdown(ctx); err != nil {
		logger.Error("agent shutdown", "err", err)
		return false
	}
	return true
}

// agentConfig maps the options onto agent.Config and validates it.
func agentConfig(ctx context.Context, o options) (agent.Config, error) {
	cfg := agent.DefaultConfig()
	cfg.ListenAddr = o.listen
	cfg.AgentID = o.agentID
	cfg.Zone = o.zone
	cfg.AutoCreateTopics = o.autoCreateTopics
	cfg.DefaultPartitions = int32(o.defaultPartitions)

	adv := o.advertisedAddr
	if o.advertisedAddrFile != "" {
		var err error
		if adv, err = waitAdvertisedFile(ctx, o.advertisedAddrFile, advertisedFileWait); err != nil {
			return cfg, fmt.Errorf("%s: %w", o.name("advertised-addr-file"), err)
		}
		if err := checkHostPort(adv, false); err != nil {
			return cfg, fmt.Errorf("%s: file %s: %w", o.name("advertised-addr-file"), o.advertisedAddrFile, err)
		}
	}
	if adv != "" {
		host, port, _ := net.SplitHostPort(adv) // checked
		p, _ := strconv.Atoi(port)
		cfg.AdvertisedHost, cfg.AdvertisedPort = host, int32(p)
	}

	cacheDir := o.cacheDir
	if cacheDir == "" && o.mode == "dev" {
		cacheDir = filepath.Join(o.dataDir, "cache")
	}
	applyTuning(&cfg, o, cacheDir)
	applyGroups(&cfg, o)
	if err := applySecurity(&cfg, o); err != nil {
		return cfg, err
	}

	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, nil
}

// waitAdvertisedFile waits for file to hold a non-empty address.
func waitAdvertisedFile(ctx context.Context, file string, limit time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		b, err := os.ReadFile(file)
		if err == nil {
			if s := strings.TrimSpace(string(b)); s != "" {
				return s, nil
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no address in %s after %s", file, limit)
		case <-tick.C:
		}
	}
}

// openStorage opens the metastore and the bucket the options name.
func openStorage(ctx context.Context, o options, logger *slog.Logger) (metastore.Backend, objstore.Bucket, error) {
	var (
		store  metastore.Backend
		bucket objstore.Bucket
		err    error
	)
	if o.mode == "dev" {
		if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("data dir: %w", err)
		}
		if store, err = sqlite.Open(ctx, filepath.Join(o.dataDir, "metastore.db"), logger); err != nil {
			return nil, nil, fmt.Errorf("open sqlite metastore in %s: %w", o.dataDir, err)
		}
		if bucket, err = objstore.NewFS(filepath.Join(o.dataDir, "bucket")); err != nil {
			_ = store.Close()
			return nil, nil, fmt.Errorf("open bucket directory in %s: %w", o.dataDir, err)
		}
		return store, bucket, nil
	}
	kind, target, _ := metastoreKind(o.metastore) // validated
	switch kind {
	case "postgres":
		store, err = postgres.Open(ctx, target, logger)
	default:
		store, err = sqlite.Open(ctx, target, logger)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open metastore %s: %w", redactURL(o.metastore), err)
	}
	if bucket, err = objstore.Open(ctx, o.bucket); err != nil {
		_ = store.Close()
		return nil, nil, fmt.Errorf("open bucket %s: %w", o.bucket, err)
	}
	return store, bucket, nil
}

// reachable turns a listener address into one a local client can dial:
// a wildcard host becomes 127.0.0.1.
func reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func printDevHints(w io.Writer, o options, kafka, admin string) {
	fmt.Fprintf(w, `silt dev %s: Kafka on %s, data in %s (delete it to start over)
  produce: printf 'k1:hello\nk2:world\n' | kcat -b %s -t demo -P -K:
  consume: kcat -b %s -t demo -C -o beginning -e -f '%%k: %%s (partition %%p, offset %%o)\n'
`, version(), kafka, o.dataDir, kafka, kafka)
	if admin != "off" {
		fmt.Fprintf(w, "  metrics: curl http://%s/metrics\n", admin)
	}
}

func buildInfo() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "silt_build_info",
		Help: "Always 1; the version label is the running build.",
	}, []string{"version"})
	g.WithLabelValues(version()).Set(1)
	return g
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q: must be debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
