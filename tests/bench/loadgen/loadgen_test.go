package loadgen

import (
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"

	"github.com/siltdata/silt/auth/tlsconf/tlstest"
	"github.com/siltdata/silt/segment/objstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSamplesQuantile(t *testing.T) {
	var s Samples
	if got := s.Quantile(0.99); got != 0 {
		t.Fatalf("empty quantile = %v, want 0", got)
	}
	for i := 1000; i >= 1; i-- {
		s.Add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.999, 999 * time.Millisecond}, {1, time.Second}} {
		if got := s.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1000": 1000, "8MiB": 8 << 20, "2GiB": 2 << 30, "1.5KB": 1500, "3 MB": 3e6} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1XB"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q): no error", bad)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(`# HELP x
# TYPE silt_objstore_requests_total counter
silt_objstore_requests_total{op="put"} 12
silt_objstore_requests_total{op="get"} 3
silt_ingest_segments_total{reason="bytes"} 4
silt_ingest_segments_total{reason="time"} 6
silt_ingest_commit_duration_seconds_count 10
odd{label="a b"} 1.5e+00
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"silt_objstore_requests_total", []string{`op="put"`}, 12},
		{"silt_objstore_requests_total", nil, 15},
		{"silt_ingest_segments_total", nil, 10},
		{"silt_ingest_commit_duration_seconds_count", nil, 10},
		{"odd", nil, 1.5},
		{"missing", nil, 0},
	} {
		if got := m.Sum(c.name, c.labels...); got != c.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestProcStats(t *testing.T) {
	pid := os.Getpid()
	if _, err := CPUSeconds(pid); err != nil {
		t.Fatal(err)
	}
	rss, err := MemoryBytes(pid, "VmRSS")
	if err != nil || rss <= 0 {
		t.Fatalf("VmRSS = %d, %v", rss, err)
	}
	withChildren, err := CPUWithChildren(pid)
	if own, _ := CPUSeconds(pid); err != nil || withChildren < own {
		t.Fatalf("CPUWithChildren = %v, %v; own %v", withChildren, err, own)
	}
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	tree, err := DescendantsCPU(pid)
	_ = child.Process.Kill()
	_ = child.Wait()
	if _, ok := tree["sleep"]; err != nil || !ok {
		t.Fatalf("DescendantsCPU = %v, %v; want a sleep entry", tree, err)
	}
	busy, total, err := MachineCPU()
	if err != nil || busy <= 0 || total < busy {
		t.Fatalf("MachineCPU = %v busy of %v, %v", busy, total, err)
	}
	w := WatchRSS(t.Context(), pid, time.Millisecond)
	if peak := w.Stop(); peak <= 0 {
		t.Fatalf("peak RSS %d", peak)
	}
}

// TestRunLoadKfake drives the whole load path against franz-go's kfake:
// every acknowledged record reaches the tail consumer and the replay, and
// the latency samples cover every record.
func TestRunLoadKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := DefaultConfig()
	cfg.Brokers, cfg.Topic, cfg.Partitions, cfg.Producers = c.ListenAddrs(), "t", 3, 2
	cfg.Duration, cfg.MaxBytes, cfg.Rate = 5*time.Second, 2<<20, 4<<20
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	r, err := RunLoad(ctx, cfg, Probe{PID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if r.Produce.Errors != 0 || r.Produce.Records == 0 {
		t.Fatalf("produce: %d records, %d errors (%v)", r.Produce.Records, r.Produce.Errors, r.Produce.FirstErr)
	}
	if r.Produce.Bytes != r.Produce.Records*int64(cfg.RecordSize) || r.Produce.Bytes > cfg.MaxBytes {
		t.Fatalf("produce: %d bytes for %d records (max %d)", r.Produce.Bytes, r.Produce.Records, cfg.MaxBytes)
	}
	if n := r.Produce.Latency.Len(); int64(n) != r.Produce.Records {
		t.Fatalf("%d latency samples for %d records", n, r.Produce.Records)
	}
	if r.Consume.Records != r.Produce.Records || r.Consume.EndToEnd.Len() != int(r.Consume.Records) {
		t.Fatalf("tail consumer got %d records (%d e2e samples), produced %d", r.Consume.Records, r.Consume.EndToEnd.Len(), r.Produce.Records)
	}
	if r.Agent.CPUSeconds < 0 || r.Agent.PeakRSS <= 0 || r.Agent.Puts != -1 {
		t.Fatalf("figures with a PID and no metrics URL: %+v", r.Agent)
	}
	// The topic also holds the warmup's records, so a replay of exactly
	// the phase's bytes ends inside the topic.
	rep, err := Replay(ctx, cfg, r.Produce.Bytes, time.Minute, Probe{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Consume.Bytes < r.Produce.Bytes {
		t.Fatalf("replay read %d of %d bytes", rep.Consume.Bytes, r.Produce.Bytes)
	}
}

func TestRawStoreFS(t *testing.T) {
	b, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := RawConfig{ObjectSize: 64 << 10, PutConcurrency: 2, ChunkSize: 16 << 10, GetConcurrency: 2, Duration: 100 * time.Millisecond, Prefix: "raw"}
	put, keys, err := RawPut(t.Context(), b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if put.Ops == 0 || int64(len(keys)) != put.Ops || put.Latency.Len() != int(put.Ops) || put.Bytes != put.Ops*int64(cfg.ObjectSize) || put.MachineCPU < 0 {
		t.Fatalf("put: %+v, %d keys", put, len(keys))
	}
	get, err := RawGet(t.Context(), b, keys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if get.Ops == 0 || get.Bytes != get.Ops*int64(cfg.ChunkSize) || get.Errors != 0 {
		t.Fatalf("get: %+v", get)
	}
}

func TestTablePrint(t *testing.T) {
	tbl := &Table{Title: "x", Notes: []string{"n"}}
	tbl.Add("throughput", "MB/s", "1.0", "", "2.0")
	tbl.Check("silt", "≥ 1×", Ratio(2), true, true)
	tbl.Check("silt", "≤ 1×", Ratio(2), false, true)
	tbl.Check("silt", "p99", "?", true, false)
	var sb strings.Builder
	tbl.Print(&sb, []string{"a", "b", "c"})
	out := sb.String()
	for _, want := range []string{"## x", "| throughput | MB/s | 1.0 |", "| met ", "| not met |", "| n/a "} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestRunLoadSecureKfake runs the load through a TLS + SCRAM-SHA-512
// listener (kfake's): every client of the load generator (topic
// creation, producers, the tail consumer) uses cfg.Client, and a wrong
// password is refused, so the options are really in use.
func TestRunLoadSecureKfake(t *testing.T) {
	ca := tlstest.NewCA(t, "loadgen")
	srv := ca.Server(t, "kfake")
	cert, err := tls.LoadX509KeyPair(srv.CertFile, srv.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser(MechSCRAMSHA512, "bench", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := DefaultConfig()
	cfg.Brokers, cfg.Topic, cfg.Partitions, cfg.Producers = c.ListenAddrs(), "t", 2, 1
	cfg.Duration, cfg.MaxBytes, cfg.Rate = 5*time.Second, 1<<20, 4<<20
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	if cfg.Client, err = NewClientOpts(true, ca.File, MechSCRAMSHA512, "bench", "wrong"); err != nil {
		t.Fatal(err)
	}
	if err := CreateTopic(ctx, cfg); err == nil {
		t.Fatal("topic created with a wrong password")
	}
	if cfg.Client, err = NewClientOpts(true, ca.File, MechSCRAMSHA512, "bench", "pw"); err != nil {
		t.Fatal(err)
	}
	if got := cfg.Client.String(); got != "TLS + SCRAM-SHA-512" {
		t.Fatalf("String() = %q", got)
	}
	r, err := RunLoad(ctx, cfg, Probe{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Produce.Errors != 0 || r.Produce.Records == 0 || r.Consume.Records != r.Produce.Records {
		t.Fatalf("produced %d records (%d errors, %v), tail consumer got %d", r.Produce.Records, r.Produce.Errors, r.Produce.FirstErr, r.Consume.Records)
	}
	// External clients cannot be given the options: refused, not run in
	// plaintext.
	if _, err := (External{Label: "x", Argv: []string{"true"}}).Produce(ctx, cfg); err == nil {
		t.Fatal("an external client ran with TLS + SASL options it cannot apply")
	}
}

func TestNewClientOpts(t *testing.T) {
	if o, err := NewClientOpts(false, "", "", "", ""); err != nil || !o.Plaintext() || o.String() != "plaintext" {
		t.Fatalf("zero settings: %v, %v", o, err)
	}
	for _, bad := range []struct{ mech, user, pass, ca string }{
		{"GSSAPI", "u", "p", ""}, {MechPlain, "", "p", ""}, {MechPlain, "u", "", ""}, {"", "u", "p", ""}, {"", "", "", "/nonexistent"},
	} {
		if _, err := NewClientOpts(false, bad.ca, bad.mech, bad.user, bad.pass); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestTransactionsKfake: the transaction phase commits every transaction
// (a read_committed consumer reads all its records back) and measures
// each EndTxn; a counter that counts 1 per read gives 0 writes per EndTxn.
func TestTransactionsKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var reads float64
	counter := func(context.Context) (map[string]float64, error) {
		reads++
		return map[string]float64{"pg_xids": reads}, nil
	}
	cfg := DefaultConfig()
	cfg.Brokers, cfg.Topic, cfg.Partitions, cfg.RecordSize = c.ListenAddrs(), "txn", 2, 100
	r, err := Transactions(ctx, cfg, 5, counter)
	if err != nil {
		t.Fatal(err)
	}
	if r.Transactions != 5 || r.EndTxn.Len() != 5 || r.WriteTxPerEnd != 0 {
		t.Fatalf("transactions: %d, %d samples, %v writes per EndTxn", r.Transactions, r.EndTxn.Len(), r.WriteTxPerEnd)
	}
	got, err := Consume(ctx, ConsumeConfig{Brokers: c.ListenAddrs(), Topic: "txn", StopAfterBytes: 500, ReadCommitted: true})
	if err != nil || got.Records != 5 {
		t.Fatalf("read_committed read %d records: %v", got.Records, err)
	}
}
