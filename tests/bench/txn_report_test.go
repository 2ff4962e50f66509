package bench

// What transactions cost (make bench): read_committed against
// read_uncommitted on non-transactional data (throughput and the agent's
// CPU per GB), and a run of one-record transactions (EndTxn latency,
// metastore write transactions per EndTxn). silt agent on Postgres +
// MinIO; writes results/transactions.md.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siltdata/silt/tests/bench/loadgen"
	"github.com/siltdata/silt/tests/bench/siltproc"
)

// TestTxnReport measures transactions (make bench).
func TestTxnReport(t *testing.T) {
	if !*reportFlag && os.Getenv("SILT_BENCH_REPORT") != "1" {
		t.Skip("the benchmark report runs only with -report or SILT_BENCH_REPORT=1 (make bench)")
	}
	ctx := t.Context()
	bin := *binFlag
	if bin == "" {
		var err error
		if bin, err = siltproc.Build(ctx, t.TempDir(), false); err != nil {
			t.Fatal(err)
		}
	}
	load, _ := loadAverage()
	rep := &lifecycleReport{lines: []string{"# Transaction benchmarks", "",
		fmt.Sprintf("`make bench` (TestTxnReport), %s, %d cores, load average at the start %s. "+
			"silt agent on Postgres + MinIO; values of distinct random bytes. Ratios compare figures of this one run.",
			time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtimeCPUs(), load)}}
	a := newLifecycleAgent(t, bin)
	a.start()

	// read_committed on data without transactions: the agent only has to
	// find that no abort lies ahead. Reads alternate between the levels
	// after an unmeasured warm-up, so neither gets the colder cache.
	const topic, size = "plain", int64(256 << 20)
	a.createTopic(topic, 12, nil)
	pr := produce(t, a, randomPool(t), produceSpec{topic: topic, valueSize: 1024, bytes: size, producers: 4, spread: true})
	read := func(committed bool) (loadgen.ConsumeResult, float64) {
		before, _ := loadgen.CPUSeconds(a.proc.PID)
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		r, err := loadgen.Consume(rctx, loadgen.ConsumeConfig{Brokers: []string{a.proc.Kafka}, Topic: topic,
			StopAfterBytes: pr.bytes, ReadCommitted: committed})
		if err != nil || r.Bytes < pr.bytes {
			t.Fatalf("read %s (read_committed %v): %d of %d bytes: %v", topic, committed, r.Bytes, pr.bytes, err)
		}
		after, _ := loadgen.CPUSeconds(a.proc.PID)
		return r, (after - before) / (float64(r.Bytes) / 1e9)
	}
	read(false)
	var thr, cpu [2]float64 // [read_uncommitted, read_committed], summed over rounds
	const rounds = 2
	for range rounds {
		for i, committed := range []bool{false, true} {
			r, c := read(committed)
			thr[i] += r.Throughput() / rounds
			cpu[i] += c / rounds
		}
	}
	rep.section("read_committed on non-transactional data",
		fmt.Sprintf("%.0f MB in 12 partitions, read warm from the start by one franz-go consumer at each isolation level, alternately, %d rounds after a warm-up read.",
			float64(pr.bytes)/1e6, rounds))
	rep.row("read_uncommitted / read_committed", fmt.Sprintf("%.1f / %.1f MB/s", thr[0]/1e6, thr[1]/1e6), "", false)
	rep.row("read_committed / read_uncommitted throughput", fmt.Sprintf("%.2f×", thr[1]/thr[0]), "≥ 0.9×", thr[1] >= 0.9*thr[0])
	rep.row("agent CPU per GB read: read_uncommitted / read_committed", fmt.Sprintf("%.2f / %.2f CPU-s", cpu[0], cpu[1]), "", false)

	cfg := loadgen.DefaultConfig()
	cfg.Brokers, cfg.Topic, cfg.Partitions, cfg.RecordSize = []string{a.proc.Kafka}, "txn", 12, 1024
	const n = 200
	tr, err := loadgen.Transactions(ctx, cfg, n, pgXids(a.pg))
	if err != nil {
		t.Fatal(err)
	}
	rep.section("One-record transactions",
		fmt.Sprintf("%d transactions one after another on one franz-go transactional producer, each one 1 KiB record and a commit.", tr.Transactions))
	rep.row("EndTxn latency p50 / p99", fmt.Sprintf("%.1f / %.1f ms", ms(tr.EndTxn.Quantile(0.5)), ms(tr.EndTxn.Quantile(0.99))), "", false)
	rep.row("metastore write transactions per EndTxn", fmt.Sprintf("%.2f", tr.WriteTxPerEnd), "", false)

	out := filepath.Join("results", "transactions.md")
	if err := os.WriteFile(out, []byte(strings.Join(rep.lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("report written to tests/bench/%s:\n%s", out, strings.Join(rep.lines, "\n"))
	for _, m := range rep.missed {
		t.Logf("target not met: %s", m)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
