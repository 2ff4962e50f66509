// Package soak holds long runs that check silt stays within bounds over
// time: `make soak` runs them (they skip without -soak, so `go test ./...`
// stays fast).
//
// TestRetentionSoak runs a silt agent on Postgres and MinIO under
// continuous production to a topic with retention of one minute, with the
// storage janitor compacting and reclaiming, and samples the bucket's
// bytes and objects and the metastore's batch-index rows. Once the first
// retention period and grace have passed, both must stay flat: what is
// stored follows the retention, not the total written. The curve is
// written to tests/soak/results/latest.md.
package soak

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore/postgres"
	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/tests/bench/siltproc"
	"github.com/siltdata/silt/tests/harness"
)

var (
	soak     = flag.Bool("soak", false, "run the soak tests")
	duration = flag.Duration("soak-duration", 10*time.Minute, "how long the soak produces")
	rate     = flag.Int("soak-rate", 4<<20, "bytes per second produced")
)

func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }

// sample is one observation of what is stored.
type sample struct {
	at       time.Duration
	produced int64 // bytes acknowledged so far
	objects  int
	bytes    int64 // bucket bytes
	rows     int64 // batch-index rows of the topic
	logBytes int64 // the topic's log bytes per the metastore
}

func TestRetentionSoak(t *testing.T) {
	if !*soak {
		t.Skip("soak test: run with -soak (make soak)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), *duration+10*time.Minute)
	defer cancel()
	pg, s3 := harness.Postgres(t), harness.S3(t)
	bin, err := siltproc.Build(ctx, t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "silt.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	proc, err := siltproc.Start(ctx, siltproc.Spec{Bin: bin, Env: s3.Env(), Log: logf, Args: []string{"agent",
		"--metastore", pg, "--bucket", s3.URL(), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--janitor-interval", "5s", "--reclaim-grace", "30s", "--orphan-age", "2m", "--compaction-age", "20s"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = proc.Stop(30 * time.Second) }()

	store, err := postgres.Open(ctx, pg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	bucket, err := objstore.NewS3(ctx, objstore.S3Config{Bucket: s3.Bucket, Endpoint: s3.Endpoint, Region: s3.Region,
		AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, RequestTimeout: 30 * time.Second, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()

	const topic, partitions = "soak", 16
	cl, err := kgo.NewClient(kgo.SeedBrokers(proc.Kafka), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if r, err := adm.CreateTopic(ctx, partitions, 1, map[string]*string{"retention.ms": kmsg.StringPtr("60000")}, topic); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}

	// Produce distinct random 1 KiB values at the rate, until the end.
	var (
		produced, failed atomic.Int64
		firstErr         atomic.Value
	)
	pctx, stopProduce := context.WithTimeout(ctx, *duration)
	defer stopProduce()
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		const size = 1024
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		perTick := max(*rate/100/size, 1)
		for pctx.Err() == nil {
			select {
			case <-pctx.Done():
				return
			case <-tick.C:
			}
			for range perTick {
				v := make([]byte, size)
				_, _ = rand.Read(v)
				// ctx, not pctx: records in flight when production stops
				// must still be delivered.
				cl.Produce(ctx, &kgo.Record{Value: v}, func(r *kgo.Record, err error) {
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
						return
					}
					produced.Add(int64(len(r.Value)))
				})
			}
		}
	}()

	observe := func(start time.Time) sample {
		s := sample{at: time.Since(start).Round(time.Second), produced: produced.Load()}
		if err := bucket.List(ctx, "", func(a objstore.Attrs) error {
			s.objects++
			s.bytes += a.Size
			return nil
		}); err != nil {
			t.Fatalf("list bucket: %v", err)
		}
		st, err := store.StorageStats(ctx)
		if err != nil {
			t.Fatalf("storage stats: %v", err)
		}
		s.rows, s.logBytes = st.Topics[topic].Rows, st.Topics[topic].Bytes
		return s
	}
	start := time.Now()
	var samples []sample
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		samples = append(samples, observe(start))
		last := samples[len(samples)-1]
		t.Logf("%v: produced %d MiB, bucket %d objects %.1f MiB, %d index rows, log %.1f MiB",
			last.at, last.produced>>20, last.objects, float64(last.bytes)/(1<<20), last.rows, float64(last.logBytes)/(1<<20))
		select {
		case <-prodDone:
		case <-tick.C:
			continue
		}
		break
	}
	cl.Flush(ctx)
	if f := failed.Load(); f > 0 {
		t.Errorf("%d records failed to produce, the first with: %v", f, firstErr.Load())
	}

	// Flat: after the warm-up (retention + grace + a compaction round),
	// the second half's mean is within 25% of the first half's, for both
	// the bucket's bytes and the index rows.
	var steady []sample
	for _, s := range samples {
		if s.at >= 3*time.Minute {
			steady = append(steady, s)
		}
	}
	report := writeReport(t, samples)
	if len(steady) < 8 {
		t.Fatalf("only %d samples after the warm-up: run longer (-soak-duration)", len(steady))
	}
	half := len(steady) / 2
	mean := func(ss []sample, f func(sample) float64) float64 {
		var sum float64
		for _, s := range ss {
			sum += f(s)
		}
		return sum / float64(len(ss))
	}
	for _, m := range []struct {
		name string
		f    func(sample) float64
	}{
		{"bucket bytes", func(s sample) float64 { return float64(s.bytes) }},
		{"index rows", func(s sample) float64 { return float64(s.rows) }},
	} {
		a, b := mean(steady[:half], m.f), mean(steady[half:], m.f)
		growth := b/a - 1
		t.Logf("%s: %.0f then %.0f (%+.1f%%)", m.name, a, b, 100*growth)
		if math.Abs(growth) > 0.25 {
			t.Errorf("%s not flat: %.0f in the first half of the steady state, %.0f in the second (%+.0f%%)\n%s", m.name, a, b, 100*growth, report)
		}
	}
	total := samples[len(samples)-1].produced
	if stored := samples[len(samples)-1].bytes; float64(stored) > 0.5*float64(total) {
		t.Errorf("the bucket holds %d MiB of %d MiB produced: retention is not deleting", stored>>20, total>>20)
	}
}

// writeReport writes the curve as a markdown table to
// tests/soak/results/latest.md and returns it.
func writeReport(t *testing.T, samples []sample) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Retention soak (%s)\n\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "`make soak`: one `silt agent` on Postgres + MinIO, %d KiB/s of distinct random 1 KiB records to a 16-partition topic with `retention.ms=60000`; janitor every 5 s, grace 30 s, compaction after 20 s.\n\n", *rate>>10)
	fmt.Fprintln(&b, "| time | produced (MiB) | bucket objects | bucket (MiB) | index rows | log (MiB) |")
	fmt.Fprintln(&b, "| ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, s := range samples {
		fmt.Fprintf(&b, "| %v | %d | %d | %.1f | %d | %.1f |\n", s.at, s.produced>>20, s.objects, float64(s.bytes)/(1<<20), s.rows, float64(s.logBytes)/(1<<20))
	}
	if err := os.MkdirAll("results", 0o755); err == nil {
		if err := os.WriteFile(filepath.Join("results", "latest.md"), []byte(b.String()), 0o644); err != nil {
			t.Logf("write report: %v", err)
		}
	}
	return b.String()
}
