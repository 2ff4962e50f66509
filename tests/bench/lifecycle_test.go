package bench

// The storage lifecycle's figures (make bench): log compaction by key on 1
// million updates of 10 thousand keys; replaying a 256-partition topic
// after compaction into per-partition objects; a 10,000-partition topic
// beside a 16-partition one. Each part runs silt agent (Postgres + MinIO)
// on a metastore database and bucket of its own; every read is cold (a
// fresh agent process and cache directory). Values are distinct random
// bytes. The figures and the targets the issues set go to
// results/lifecycle.md.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/tests/bench/loadgen"
	"github.com/siltdata/silt/tests/bench/siltproc"
	"github.com/siltdata/silt/tests/harness"
)

// lifecycleReport collects the report's lines.
type lifecycleReport struct {
	mu    sync.Mutex
	lines []string
	// missed lists the targets not met, for the test log.
	missed []string
}

func (r *lifecycleReport) section(title, intro string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, "", "## "+title, "", intro, "", "| figure | value | target |", "|---|---|---|")
}

// row adds a figure; target is "" when there is none, and met says
// whether it was met.
func (r *lifecycleReport) row(figure, value, target string, met bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if target != "" {
		if met {
			target += " ✓"
		} else {
			target += " ✗ (not met)"
			r.missed = append(r.missed, figure+": "+value+", target "+target)
		}
	}
	r.lines = append(r.lines, fmt.Sprintf("| %s | %s | %s |", figure, value, target))
}

// TestLifecycleReport measures the storage lifecycle (make bench).
func TestLifecycleReport(t *testing.T) {
	if !*reportFlag && os.Getenv("SILT_BENCH_REPORT") != "1" {
		t.Skip("the benchmark report runs only with -report or SILT_BENCH_REPORT=1 (make bench)")
	}
	full := *fullFlag || os.Getenv("SILT_BENCH_FULL") == "1"
	phase, replayBytes := 8*time.Second, int64(512<<20)
	if full {
		phase, replayBytes = 30*time.Second, 2*gib
	}
	if *phaseFlag > 0 {
		phase = *phaseFlag
	}
	ctx := t.Context()
	bin := *binFlag
	if bin == "" {
		var err error
		if bin, err = siltproc.Build(ctx, t.TempDir(), false); err != nil {
			t.Fatal(err)
		}
	}
	pool := randomPool(t)
	load, _ := loadAverage()
	rep := &lifecycleReport{lines: []string{"# Storage lifecycle benchmarks", "",
		fmt.Sprintf("`make bench` (TestLifecycleReport), %s, %d cores, load average at the start %s. "+
			"silt agent on Postgres + MinIO, values of distinct random bytes; every read is cold "+
			"(a fresh agent process and cache). Ratios compare figures of this one run.",
			time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtimeCPUs(), load)}}

	t.Run("log-compaction", func(t *testing.T) { benchLogCompaction(t, newLifecycleAgent(t, bin), pool, rep) })
	t.Run("replay-after-compaction", func(t *testing.T) {
		benchReplayAfterCompaction(t, newLifecycleAgent(t, bin), pool, rep, replayBytes)
	})
	t.Run("wide-topic", func(t *testing.T) { benchWideTopic(t, newLifecycleAgent(t, bin), pool, rep, phase) })

	out := filepath.Join("results", "lifecycle.md")
	if err := os.WriteFile(out, []byte(strings.Join(rep.lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("report written to tests/bench/%s:\n%s", out, strings.Join(rep.lines, "\n"))
	for _, m := range rep.missed {
		t.Logf("target not met: %s", m)
	}
}

// lifecycleAgent is one silt agent deployment (a database and a bucket)
// whose process the benchmark restarts with other flags and a cold cache.
type lifecycleAgent struct {
	t    *testing.T
	bin  string
	pg   string
	s3   harness.S3Config
	log  io.Writer
	proc *siltproc.Proc
}

func newLifecycleAgent(t *testing.T, bin string) *lifecycleAgent {
	logf, err := os.Create(filepath.Join(t.TempDir(), "silt.log"))
	if err != nil {
		t.Fatal(err)
	}
	a := &lifecycleAgent{t: t, bin: bin, pg: harness.Postgres(t), s3: harness.S3(t), log: logf}
	t.Cleanup(func() {
		a.stop()
		_ = logf.Close()
	})
	return a
}

// start (re)starts the agent with a fresh cache directory and flags added.
func (a *lifecycleAgent) start(flags ...string) {
	a.t.Helper()
	a.stop()
	args := append([]string{"agent", "--metastore", a.pg, "--bucket", a.s3.URL(), "--listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0", "--cache-dir", a.t.TempDir(), "--agent-id", "bench-lifecycle",
		"--log-level", "warn", "--janitor-interval", "1s", "--reclaim-grace", "0s"}, flags...)
	p, err := siltproc.Start(a.t.Context(), siltproc.Spec{Bin: a.bin, Args: args, Env: a.s3.Env(), Log: a.log})
	if err != nil {
		a.t.Fatal(err)
	}
	a.proc = p
}

func (a *lifecycleAgent) stop() {
	if a.proc == nil {
		return
	}
	if err := a.proc.Stop(time.Minute); err != nil {
		a.t.Logf("stop silt: %v", err)
	}
	a.proc = nil
}

func (a *lifecycleAgent) metrics() loadgen.Metrics {
	a.t.Helper()
	m, err := loadgen.Scrape(a.t.Context(), a.proc.MetricsURL())
	if err != nil {
		a.t.Fatal(err)
	}
	return m
}

// waitJanitor waits until the janitor has made two passes in which cond
// held at their end (cond reads the metrics the janitor sets), for at
// most timeout.
func (a *lifecycleAgent) waitJanitor(what string, timeout time.Duration, cond func(m loadgen.Metrics) bool) {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	var since float64 = -1
	for {
		m := a.metrics()
		passes := m.Sum("silt_janitor_passes_total")
		switch {
		case !cond(m):
			since = -1
		case since < 0:
			since = passes
		case passes >= since+2:
			return
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("waiting for %s: not within %s", what, timeout)
		}
		time.Sleep(250 * time.Millisecond) // the janitor's gauges have no event to wait on
	}
}

func (a *lifecycleAgent) client(opts ...kgo.Opt) *kgo.Client {
	a.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(a.proc.Kafka)}, opts...)...)
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(cl.Close)
	return cl
}

func (a *lifecycleAgent) createTopic(topic string, partitions int32, configs map[string]*string) {
	a.t.Helper()
	adm := kadm.NewClient(a.client())
	r, err := adm.CreateTopic(a.t.Context(), partitions, 1, configs, topic)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		a.t.Fatalf("create %s: %v", topic, err)
	}
}

// randomPool is the bytes values are cut from: random, so nothing
// compresses; each value also gets a counter of its own (distinct).
func randomPool(t *testing.T) []byte {
	pool := make([]byte, 64<<20)
	if _, err := rand.Read(pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

// produceSpec is one produce run.
type produceSpec struct {
	topic     string
	valueSize int
	keys      int // > 0: keys key-00000 ... cycling, in order
	records   int64
	bytes     int64         // stop after this many value bytes (0: no bound)
	duration  time.Duration // stop after this long (0: no bound)
	producers int
	// spread sends keyless records to every partition in turn (as keyed
	// records spread): the batches are as small as the partition count
	// makes them. Otherwise franz-go's default partitioner (sticky for
	// keyless records, by hash for keyed ones).
	spread bool
}

type produceResult struct {
	records, bytes int64
	elapsed        time.Duration
}

func (r produceResult) mbps() float64 { return float64(r.bytes) / r.elapsed.Seconds() / 1e6 }

// produce writes with idempotent acks=all franz-go producers (their
// default partitioner) until the spec's bound, and counts what was
// acknowledged.
func produce(t *testing.T, a *lifecycleAgent, pool []byte, s produceSpec) produceResult {
	t.Helper()
	ctx := t.Context()
	var next, acked, ackedBytes, failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for p := 0; p < max(1, s.producers); p++ {
		opts := []kgo.Opt{kgo.DefaultProduceTopic(s.topic), kgo.ProducerLinger(5 * time.Millisecond),
			kgo.ProducerBatchMaxBytes(1 << 20), kgo.MaxBufferedBytes(64 << 20)}
		if s.spread {
			opts = append(opts, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		}
		cl := a.client(opts...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seed [8]byte
			_, _ = rand.Read(seed[:])
			off := int(binary.LittleEndian.Uint64(seed[:]) % uint64(len(pool)-s.valueSize))
			for {
				i := next.Add(1) - 1
				switch {
				case s.records > 0 && i >= s.records,
					s.bytes > 0 && i*int64(s.valueSize) >= s.bytes,
					s.duration > 0 && time.Since(start) >= s.duration,
					ctx.Err() != nil:
					_ = cl.Flush(ctx)
					return
				}
				v := make([]byte, s.valueSize)
				if off+s.valueSize > len(pool) {
					off = 0
				}
				copy(v, pool[off:off+s.valueSize])
				off += s.valueSize
				binary.LittleEndian.PutUint64(v, binary.LittleEndian.Uint64(v)^uint64(i))
				r := &kgo.Record{Value: v}
				if s.keys > 0 {
					r.Key = fmt.Appendf(nil, "key-%05d", i%int64(s.keys))
				}
				cl.Produce(ctx, r, func(r *kgo.Record, err error) {
					if err != nil {
						if failed.Add(1) == 1 {
							firstErr.Store(err)
						}
						return
					}
					acked.Add(1)
					ackedBytes.Add(int64(len(r.Value)))
				})
			}
		}()
	}
	wg.Wait()
	res := produceResult{records: acked.Load(), bytes: ackedBytes.Load(), elapsed: time.Since(start)}
	if n := failed.Load(); n > 0 {
		t.Errorf("produce to %s: %d records failed, first: %v", s.topic, n, firstErr.Load())
	}
	if res.records == 0 {
		t.Fatalf("produce to %s: nothing acknowledged", s.topic)
	}
	return res
}

// readResult is what a replay read.
type readResult struct {
	records, bytes int64
	elapsed        time.Duration
	partial        bool              // stopped by a time limit
	latest         map[string][]byte // the last value per key (when asked)
}

func (r readResult) mbps() float64 { return float64(r.bytes) / r.elapsed.Seconds() / 1e6 }

// readAll reads partitions of topic from their start to their end
// offsets (all partitions when none are named) with one franz-go
// consumer. With keepLatest (a compacted topic, whose last offsets may be
// in batches the cleaner emptied) it reads until 10 s pass without a
// record instead, and the elapsed time means nothing.
func readAll(t *testing.T, a *lifecycleAgent, topic string, keepLatest bool, partitions ...int32) readResult {
	return readFor(t, a, topic, keepLatest, 0, partitions...)
}

// readFor is readAll that stops after limit (0: none) with what it read:
// a replay too slow to finish in a benchmark's time still gives its rate.
func readFor(t *testing.T, a *lifecycleAgent, topic string, keepLatest bool, limit time.Duration, partitions ...int32) readResult {
	t.Helper()
	ctx := t.Context()
	adm := kadm.NewClient(a.client())
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, o.Partition, o.Err)
		}
		if (len(partitions) == 0 || slices.Contains(partitions, o.Partition)) && o.Offset > 0 {
			want[o.Partition] = o.Offset
			offsets[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	res := readResult{}
	if keepLatest {
		res.latest = map[string][]byte{}
	}
	start := time.Now()
	cl := a.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(8<<20))
	left := len(want)
	for left > 0 && (limit == 0 || time.Since(start) < limit) {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if keepLatest {
			pollCtx, cancel = context.WithTimeout(ctx, 10*time.Second)
		}
		fs := cl.PollFetches(pollCtx)
		idle := pollCtx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			t.Fatalf("read %s: %v", topic, ctx.Err())
		}
		if idle {
			break // keepLatest: 10 s without a record
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("read %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			res.records++
			res.bytes += int64(len(r.Key) + len(r.Value))
			if keepLatest {
				res.latest[string(r.Key)] = r.Value
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
				left--
			}
		})
	}
	res.elapsed = time.Since(start)
	res.partial = left > 0 && !keepLatest
	return res
}

// benchLogCompaction: 1 million updates of 10 thousand keys (100-byte
// values, 4 partitions) written to a topic with cleanup.policy=delete and
// rewritten into per-partition objects; then the topic becomes compacted
// and the janitor cleans it. Reported: the cleaner's throughput (bytes it
// read and filtered per second of cleaning) and the storage saved; the
// log read back holds exactly the latest value of every key.
func benchLogCompaction(t *testing.T, a *lifecycleAgent, pool []byte, rep *lifecycleReport) {
	const (
		topic   = "compaction-1m"
		updates = 1_000_000
		keys    = 10_000
	)
	a.start("--compaction-age", "0s")
	a.createTopic(topic, 4, map[string]*string{"cleanup.policy": kmsg.StringPtr("delete")})
	pr := produce(t, a, pool, produceSpec{topic: topic, valueSize: 100, keys: keys, records: updates, producers: 4})
	a.waitJanitor("the topic rewritten into per-partition objects", 10*time.Minute, func(m loadgen.Metrics) bool {
		return m.Sum("silt_compaction_backlog_bytes") == 0 && m.Sum("silt_storage_topic_bytes", `topic="`+topic+`"`) > 0
	})
	before := a.metrics()
	stored := before.Sum("silt_storage_topic_bytes", `topic="`+topic+`"`)

	adm := kadm.NewClient(a.client())
	if _, err := adm.AlterTopicConfigs(t.Context(), []kadm.AlterConfig{
		{Name: "cleanup.policy", Value: kmsg.StringPtr("compact")},
		{Name: "min.cleanable.dirty.ratio", Value: kmsg.StringPtr("0.01")},
	}, topic); err != nil {
		t.Fatalf("make %s compacted: %v", topic, err)
	}
	began := time.Now()
	a.waitJanitor("every partition cleaned", 10*time.Minute, func(m loadgen.Metrics) bool {
		return loadgen.Delta(before, m, "silt_cleaner_runs_total") >= 4 && m.Sum("silt_cleaner_cleanable_bytes") == 0
	})
	wall := time.Since(began)
	after := a.metrics()
	cleaned := loadgen.Delta(before, after, "silt_cleaner_bytes_total")
	cleaning := loadgen.Delta(before, after, "silt_cleaner_duration_seconds_sum")
	removed := loadgen.Delta(before, after, "silt_cleaner_removed_bytes_total")
	left := after.Sum("silt_storage_topic_bytes", `topic="`+topic+`"`)

	a.start() // cold
	got := readAll(t, a, topic, true)
	if len(got.latest) != keys || got.records != keys {
		t.Errorf("after cleaning %s read %d records of %d keys, want one record of each of %d keys", topic, got.records, len(got.latest), keys)
	}

	rep.section("Log compaction by key (cleanup.policy=compact)",
		fmt.Sprintf("%d updates of %d keys (100-byte random values, 4 partitions, %.0f MB acknowledged at %.1f MB/s), rewritten into "+
			"per-partition objects, then made compacted (min.cleanable.dirty.ratio=0.01) and cleaned by the janitor; read back cold.",
			updates, keys, float64(pr.bytes)/1e6, pr.mbps()))
	rep.row("cleaner throughput (batch bytes read and filtered per second of cleaning)", fmt.Sprintf("%.1f MB/s", cleaned/cleaning/1e6), "", false)
	rep.row("time from the config change to every partition clean (janitor interval 1 s)", fmt.Sprintf("%.1f s", wall.Seconds()), "", false)
	rep.row("log before → after cleaning", fmt.Sprintf("%.1f MB → %.2f MB (%.1f%% saved; cleaner removed %.1f MB)",
		stored/1e6, left/1e6, 100*(1-left/stored), removed/1e6), "", false)
	rep.row("records read back from offset 0", fmt.Sprintf("%d (keys %d)", got.records, len(got.latest)), fmt.Sprintf("%d, one per key", keys),
		got.records == keys && len(got.latest) == keys)
}

// benchReplayAfterCompaction: a 256-partition topic filled at
// saturation, rewritten into per-partition objects; then one partition
// replayed cold (range GETs per MiB), and the whole topic replayed cold
// beside a raw GET of the same objects.
func benchReplayAfterCompaction(t *testing.T, a *lifecycleAgent, pool []byte, rep *lifecycleReport, size int64) {
	const topic = "replay-256"
	a.start()
	a.createTopic(topic, 256, nil)
	pr := produce(t, a, pool, produceSpec{topic: topic, valueSize: 1024, bytes: size, producers: 4, spread: true})
	// onePartition replays partition 0 cold and counts its range GETs.
	onePartition := func() (readResult, float64) {
		a.start()
		b0 := a.metrics()
		r := readAll(t, a, topic, false, 0)
		return r, loadgen.Delta(b0, a.metrics(), "silt_objstore_requests_total", `op="get"`)
	}
	m := a.metrics()
	rowsBefore := m.Sum("silt_storage_topic_index_rows", `topic="`+topic+`"`)
	bytesBefore := m.Sum("silt_storage_topic_bytes", `topic="`+topic+`"`)
	oneBefore, getsBefore := onePartition()

	a.start("--compaction-age", "0s")
	a.waitJanitor("the topic rewritten into per-partition objects", 20*time.Minute, func(m loadgen.Metrics) bool {
		return m.Sum("silt_compaction_backlog_bytes") == 0 && m.Sum("silt_storage_topic_bytes", `topic="`+topic+`"`) > 0
	})
	m = a.metrics()
	topicBytes := m.Sum("silt_storage_topic_bytes", `topic="`+topic+`"`)
	rows := m.Sum("silt_storage_topic_index_rows", `topic="`+topic+`"`)
	one, gets := onePartition()
	mib := func(r readResult) float64 { return float64(r.bytes) / (1 << 20) }
	getsPerMiB := gets / mib(one)

	a.start() // cold: every partition
	all := readAll(t, a, topic, false)
	a.stop()
	raw := rawGetCompacted(t, a.s3, 16)

	rep.section("Replay after compaction into per-partition objects (256 partitions)",
		fmt.Sprintf("%.0f MB of 1 KiB random values produced at %.1f MB/s to 256 partitions, rewritten into per-partition objects "+
			"(--compaction-age 0s), then replayed cold by one franz-go consumer.", float64(pr.bytes)/1e6, pr.mbps()))
	rep.row("batch-index rows per GiB stored, before compaction", fmt.Sprintf("%.0f (%.0f rows, %.0f MB)", perGiBf(rowsBefore, bytesBefore), rowsBefore, bytesBefore/1e6), "", false)
	rep.row("batch-index rows per GiB stored, after", fmt.Sprintf("%.0f (%.0f rows, %.0f MB; at least one per partition)", perGiBf(rows, topicBytes), rows, topicBytes/1e6),
		"≤ 500", perGiBf(rows, topicBytes) <= 500)
	rep.row("one partition replayed cold, before compaction", fmt.Sprintf("%.2f GETs per MiB (%.0f GETs, %.1f MiB), %.1f MB/s",
		getsBefore/mib(oneBefore), getsBefore, mib(oneBefore), oneBefore.mbps()), "", false)
	rep.row("one partition replayed cold, after: GETs per MiB", fmt.Sprintf("%.2f (%.0f GETs, %.1f MiB)", getsPerMiB, gets, mib(one)),
		"≤ 0.5", getsPerMiB <= 0.5)
	rep.row("one partition replayed cold, after: MB/s / raw GET", fmt.Sprintf("%.1f MB/s, %.2f× (a partition of %.1f MiB: mostly start-up in the quick run)", one.mbps(), one.mbps()/raw.mbps(), mib(one)),
		"≥ 0.7×", one.mbps() >= 0.7*raw.mbps())
	rep.row("replay of the whole topic, cold", fmt.Sprintf("%.1f MB/s (%.0f MB in %.1f s)", all.mbps(), float64(all.bytes)/1e6, all.elapsed.Seconds()), "", false)
	rep.row("raw GET of the same objects (16 at a time, whole objects)", fmt.Sprintf("%.1f MB/s (%d objects, %.0f MB)", raw.mbps(), raw.objects, float64(raw.bytes)/1e6), "", false)
	rep.row("replay / raw GET", fmt.Sprintf("%.2f×", all.mbps()/raw.mbps()), "≥ 0.7×", all.mbps() >= 0.7*raw.mbps())
}

type rawGetResult struct {
	objects int
	bytes   int64
	elapsed time.Duration
}

func (r rawGetResult) mbps() float64 { return float64(r.bytes) / r.elapsed.Seconds() / 1e6 }

// rawGetCompacted GETs every compacted object of the bucket whole,
// concurrency at a time: what the object store gives with no silt between.
func rawGetCompacted(t *testing.T, s3 harness.S3Config, concurrency int) rawGetResult {
	t.Helper()
	ctx := t.Context()
	b, err := objstore.NewS3(ctx, objstore.S3Config{Bucket: s3.Bucket, Endpoint: s3.Endpoint, Region: s3.Region,
		AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, RequestTimeout: time.Minute, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var objs []objstore.Attrs
	if err := b.List(ctx, "compacted/", func(a objstore.Attrs) error {
		objs = append(objs, a)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatal("no compacted objects in the bucket")
	}
	var n atomic.Int64
	work := make(chan objstore.Attrs)
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				body, err := b.GetRange(ctx, o.Key, 0, o.Size)
				if err != nil {
					t.Errorf("GET %s: %v", o.Key, err)
					continue
				}
				n.Add(int64(len(body)))
			}
		}()
	}
	for _, o := range objs {
		work <- o
	}
	close(work)
	wg.Wait()
	return rawGetResult{objects: len(objs), bytes: n.Load(), elapsed: time.Since(start)}
}

// benchWideTopic: the same saturation load to a 16- and a 10,000-partition
// topic; ListOffsets of every partition; a cold Fetch of every partition
// in one request; both topics replayed cold before and after compaction
// into per-partition objects.
func benchWideTopic(t *testing.T, a *lifecycleAgent, pool []byte, rep *lifecycleReport, phase time.Duration) {
	const narrow, wide = "narrow-16", "wide-10000"
	a.start()
	a.createTopic(narrow, 16, nil)
	a.createTopic(wide, 10_000, nil)
	pn := produce(t, a, pool, produceSpec{topic: narrow, valueSize: 1024, duration: phase, producers: 4, spread: true})
	pw := produce(t, a, pool, produceSpec{topic: wide, valueSize: 1024, duration: phase, producers: 4, spread: true})

	lo := listOffsetsMillis(t, a, wide, 5)

	a.start() // cold
	timedOut, errs, withData := coldFetchAll(t, a, wide, 10_000)
	var other []string
	for code, n := range errs {
		other = append(other, fmt.Sprintf("%d %s", n, kerr.ErrorForCode(code)))
	}
	slices.Sort(other)
	rn := readAll(t, a, narrow, false)
	a.start()
	rw := readFor(t, a, wide, false, 2*time.Minute)
	m := a.metrics()
	wideRowsBefore := m.Sum("silt_storage_topic_index_rows", `topic="`+wide+`"`)

	a.start("--compaction-age", "0s")
	a.waitJanitor("both topics rewritten into per-partition objects", 20*time.Minute, func(m loadgen.Metrics) bool {
		return m.Sum("silt_compaction_backlog_bytes") == 0 && m.Sum("silt_storage_topic_bytes", `topic="`+wide+`"`) > 0
	})
	m = a.metrics()
	wideRows := m.Sum("silt_storage_topic_index_rows", `topic="`+wide+`"`)
	wideBytes := m.Sum("silt_storage_topic_bytes", `topic="`+wide+`"`)
	a.start()
	cn := readAll(t, a, narrow, false)
	a.start()
	cw := readAll(t, a, wide, false)

	rep.section("A 10,000-partition topic beside a 16-partition one",
		fmt.Sprintf("The same saturation load (4 idempotent franz-go producers, 1 KiB random values to every partition in turn, %s each) to a 16- and a "+
			"10,000-partition topic; reads are cold, by one franz-go consumer, before and after compaction into per-partition objects.", phase))
	rep.row("produce, 16 partitions", fmt.Sprintf("%.1f MB/s", pn.mbps()), "", false)
	rep.row("produce, 10,000 partitions", fmt.Sprintf("%.1f MB/s (%.2f× the 16)", pw.mbps(), pw.mbps()/pn.mbps()), "≥ 0.7×", pw.mbps() >= 0.7*pn.mbps())
	rep.row("ListOffsets of 10,000 partitions (median of 5)", fmt.Sprintf("%.0f ms", lo), "≤ 100 ms", lo <= 100)
	rep.row("one cold Fetch of all 10,000 partitions", fmt.Sprintf("%d REQUEST_TIMED_OUT, other errors: %v, %d partitions with records", timedOut, other, withData),
		"no REQUEST_TIMED_OUT", timedOut == 0)
	partial := ""
	if rw.partial {
		partial = fmt.Sprintf(", the 10,000 stopped after %.0f s with %.0f MB read", rw.elapsed.Seconds(), float64(rw.bytes)/1e6)
	}
	rep.row("replay cold before compaction: 16 / 10,000 partitions", fmt.Sprintf("%.1f / %.1f MB/s (%.2f×%s); wide topic %.0f index rows",
		rn.mbps(), rw.mbps(), rw.mbps()/rn.mbps(), partial, wideRowsBefore), "", false)
	rep.row("replay cold after compaction: 16 / 10,000 partitions", fmt.Sprintf("%.1f / %.1f MB/s (%.2f× the 16)",
		cn.mbps(), cw.mbps(), cw.mbps()/cn.mbps()), "≥ 0.5×", cw.mbps() >= 0.5*cn.mbps())
	rep.row("batch-index rows per GiB, 10,000 partitions after compaction", fmt.Sprintf("%.0f (%.0f rows, %.0f MB)",
		perGiBf(wideRows, wideBytes), wideRows, wideBytes/1e6), "", false)
}

// listOffsetsMillis is the median time of n ListOffsets (latest) for
// every partition of topic, in one request.
func listOffsetsMillis(t *testing.T, a *lifecycleAgent, topic string, n int) float64 {
	t.Helper()
	adm := kadm.NewClient(a.client())
	if _, err := adm.ListEndOffsets(t.Context(), topic); err != nil { // metadata cached
		t.Fatal(err)
	}
	var ms []float64
	for range n {
		start := time.Now()
		offs, err := adm.ListEndOffsets(t.Context(), topic)
		ms = append(ms, float64(time.Since(start).Microseconds())/1000)
		if err != nil || offs.Error() != nil {
			t.Fatalf("ListOffsets %s: %v %v", topic, err, offs.Error())
		}
	}
	slices.Sort(ms)
	return ms[len(ms)/2]
}

// coldFetchAll sends one Fetch for every partition of topic from offset 0
// and counts the partitions answered REQUEST_TIMED_OUT, other errors, and
// records.
func coldFetchAll(t *testing.T, a *lifecycleAgent, topic string, partitions int32) (timedOut int, errs map[int16]int, withData int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cl := a.client()
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.MaxWaitMillis = 500
	req.MinBytes = 1
	req.MaxBytes = 256 << 20
	md, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil || md[topic].Err != nil {
		t.Fatalf("metadata of %s: %v %v", topic, err, md[topic].Err)
	}
	ft := kmsg.NewFetchRequestTopic()
	// Both: the client sends the highest version the agent supports
	// (names up to v12, ids from v13).
	ft.Topic, ft.TopicID = topic, md[topic].ID
	for p := range partitions {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition = p
		fp.PartitionMaxBytes = 64 << 10
		fp.LogStartOffset = -1
		ft.Partitions = append(ft.Partitions, fp)
	}
	req.Topics = append(req.Topics, ft)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("cold fetch of %s: %v", topic, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("cold fetch of %s: %v", topic, err)
	}
	errs = map[int16]int{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			switch {
			case rp.ErrorCode == kerr.RequestTimedOut.Code:
				timedOut++
			case rp.ErrorCode != 0:
				errs[rp.ErrorCode]++
			case len(rp.RecordBatches) > 0:
				withData++
			}
		}
	}
	return timedOut, errs, withData
}

func perGiBf(n, bytes float64) float64 {
	if bytes <= 0 {
		return 0
	}
	return n / (bytes / gib)
}

func runtimeCPUs() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}
