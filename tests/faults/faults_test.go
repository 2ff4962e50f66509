package faults

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siltdata/silt/tests/harness"
)

// Flags of TestFaults. Without them it is the short run of `go test` and
// `make test`: every fault once. `make faults` passes them (see the
// Makefile): DURATION for a long run, FAULTS and CYCLES for one fault
// repeated, e.g. `make faults FAULTS=coordinator-pause CYCLES=20`.
var (
	duration = flag.Duration("faults.duration", 0, "apply faults for this long (rounds of every selected fault); 0: each once")
	only     = flag.String("faults.only", "", "comma-separated faults to apply (default: all): "+nemesisNames())
	cycles   = flag.Int("faults.cycles", 0, "apply each selected fault this many times")
	seed     = flag.Uint64("faults.seed", 0, "seed of the random choices (0: random, reported)")
	report   = flag.String("faults.report", "", "write the run's summary (markdown) to this file")
	txn      = flag.String("faults.txn", "auto", "the transactional pipeline: auto (when the agents support transactions) or off")
	keepLogs = flag.Bool("faults.keep-logs", false, "keep the agents' and clients' logs even when the run passes")
	bin      = flag.String("faults.bin", "", "run this silt binary instead of building one (another version)")
)

func nemesisNames() string {
	var names []string
	for _, n := range Nemeses {
		names = append(names, n.Name)
	}
	return strings.Join(names, ", ")
}

func TestMain(m *testing.M) { os.Exit(harness.RunCheckingLeaks(m)) }

// TestFaults runs the fault suite (see the package doc) and fails on any
// anomaly, listing each.
func TestFaults(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Duration, cfg.Cycles, cfg.Seed, cfg.Transactions, cfg.Race, cfg.Bin = *duration, *cycles, *seed, *txn, raceEnabled, *bin
	if *only != "" {
		cfg.Faults = strings.Split(*only, ",")
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logDir, err := os.MkdirTemp("", "silt-faults-")
	if err != nil {
		t.Fatal(err)
	}
	cfg.LogDir = logDir
	t.Cleanup(func() {
		if t.Failed() || *keepLogs {
			t.Logf("logs kept in %s", logDir)
			return
		}
		os.RemoveAll(logDir)
	})
	// The bound covers the faults, a recovery deadline for each, and the
	// settle, drain and read phases: it catches a hang, it does not pace.
	n := len(Nemeses)
	if cfg.Faults != nil {
		n = len(cfg.Faults)
	}
	budget := 10*time.Minute + time.Duration(n*max(1, cfg.Cycles))*3*time.Minute + 2*cfg.Duration
	ctx, cancel := context.WithTimeout(t.Context(), budget)
	defer cancel()
	sum, err := Run(ctx, t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	md := sum.Markdown("go test ./tests/faults -run TestFaults -args " + strings.Join(flagArgs(), " "))
	if *report != "" {
		if err := os.MkdirAll(filepath.Dir(*report), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*report, []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("\n%s", md)
	for _, k := range sortedKinds(sum.Result) {
		if n := sum.Result.Counts[k]; n > 0 {
			t.Errorf("%d anomalies of kind %s", n, k)
		}
	}
}

// flagArgs are the faults.* flags set on the command line.
func flagArgs() []string {
	var out []string
	flag.Visit(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "faults.") {
			out = append(out, "-"+f.Name+"="+f.Value.String())
		}
	})
	return out
}
