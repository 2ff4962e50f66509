package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/tests/harness"
)

// lifecycleFlags make the storage janitor act within a test's patience.
var lifecycleFlags = []string{"--janitor-interval", "200ms", "--reclaim-grace", "0s", "--flush-interval", "20ms"}

// bucket opens the silt process's bucket, for a test to look into.
func (s *silt) bucket(t testing.TB) objstore.Bucket {
	t.Helper()
	var (
		b   objstore.Bucket
		err error
	)
	if s.s3 != nil {
		b, err = objstore.NewS3(t.Context(), objstore.S3Config{Bucket: s.s3.Bucket, Endpoint: s.s3.Endpoint, Region: s.s3.Region,
			AccessKey: s.s3.AccessKey, SecretKey: s.s3.SecretKey, RequestTimeout: 10 * time.Second, MaxAttempts: 2})
	} else {
		b, err = objstore.NewFS(s.bucketDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// objectKeys lists the bucket's object keys.
func objectKeys(t testing.TB, b objstore.Bucket) []string {
	t.Helper()
	var keys []string
	if err := b.List(t.Context(), "", func(a objstore.Attrs) error {
		keys = append(keys, a.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// metric reads one summed metric from the process's admin port.
func (s *silt) metric(t testing.TB, ctx context.Context, name string, kv ...string) float64 {
	t.Helper()
	v, _ := scrapeFamilies(t, ctx, s.Admin()).sum(name, kv...)
	return v
}

// startOffsets lists the earliest offsets of topic's partitions.
func startOffsets(t testing.TB, ctx context.Context, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	l, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	l.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("list start offsets %s[%d]: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

// produceAt produces n records to partition p of topic with the given
// timestamp, one ProduceSync call, and returns their acknowledgements.
func produceAt(t testing.TB, ctx context.Context, cl *kgo.Client, topic string, p int32, ts time.Time, n int, prefix string) []acked {
	t.Helper()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Timestamp: ts,
			Key: fmt.Appendf(nil, "k%d", i%5), Value: fmt.Appendf(nil, "%s-%d", prefix, i)})
	}
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce %s: %v", topic, err)
	}
	var acks []acked
	for _, r := range res {
		acks = append(acks, acked{r.Record.Partition, r.Record.Offset, string(r.Record.Key), string(r.Record.Value)})
	}
	return acks
}

// manualClient produces to the partition each record names. It has no
// record delivery timeout: franz-go measures that from the record's
// timestamp, and these tests produce records dated in the past.
func manualClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	return newClient(t, addr, append([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(0)}, opts...)...)
}

// kcatRead reads topic from the beginning with kcat (librdkafka) until the
// end of every partition, and returns partition, offset and value of each
// message.
func kcatRead(t testing.TB, ctx context.Context, addr, topic string) []acked {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		missingTool(t, "kcat not installed (tests/install-deps.sh installs it)")
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, kcat, "-b", addr, "-t", topic, "-C", "-o", "beginning", "-e", "-J", "-q")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat -C %s: %v\n%s", topic, err, stderr.String())
	}
	var out []acked
	for line := range strings.Lines(stdout.String()) {
		var m kcatMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("kcat -J line %q: %v", line, err)
		}
		a := acked{Partition: m.Partition, Offset: m.Offset}
		if m.Key != nil {
			a.Key = *m.Key
		}
		if m.Payload != nil {
			a.Value = *m.Payload
		}
		out = append(out, a)
	}
	return out
}

// sameRecords compares read records with the acknowledged ones by
// partition and offset.
func sameRecords(t testing.TB, who string, want, got []acked) {
	t.Helper()
	key := func(a acked) string { return fmt.Sprintf("%d@%08d", a.Partition, a.Offset) }
	w, g := map[string]acked{}, map[string]acked{}
	for _, a := range want {
		w[key(a)] = a
	}
	for _, a := range got {
		if _, dup := g[key(a)]; dup {
			t.Errorf("%s read %v twice", who, a)
		}
		g[key(a)] = a
	}
	bad := 0
	for k, a := range w {
		if b, ok := g[k]; !ok || b != a {
			t.Errorf("%s: acknowledged %v, read %v (present %v)", who, a, b, ok)
			bad++
		}
		if bad > 10 {
			t.FailNow()
		}
	}
	if len(g) != len(w) {
		t.Fatalf("%s read %d records, want %d", who, len(g), len(w))
	}
}

// TestRetention: time and size retention move the log start offset; a
// consumer group whose committed offset fell below it resets to the start
// (franz-go), kcat reads from the new start, and the retained data's
// objects leave the bucket.
func TestRetention(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		s := newSilt(t, append([]string{"--default-retention", "1h", "--compaction=false"}, lifecycleFlags...)...).Start()
		ctx := testContext(t, 120*time.Second)
		cl := manualClient(t, s.Kafka())
		adm := kadm.NewClient(cl)
		mustCreate := func(topic string, partitions int32, configs map[string]*string) {
			t.Helper()
			if r, err := adm.CreateTopic(ctx, partitions, 1, configs, topic); err != nil || r.Err != nil {
				t.Fatalf("create %s: %v %v", topic, err, r.Err)
			}
		}
		mustCreate("by-time", 2, map[string]*string{"retention.ms": kmsg.StringPtr("60000")})
		mustCreate("by-size", 1, map[string]*string{"retention.bytes": kmsg.StringPtr("1")})
		mustCreate("defaulted", 1, nil)

		// A group commits offset 3 of by-time/0 before retention.
		old := time.Now().Add(-2 * time.Hour)
		produceAt(t, ctx, cl, "by-time", 0, old, 10, "old0")
		produceAt(t, ctx, cl, "by-time", 1, old, 4, "old1")
		fresh := produceAt(t, ctx, cl, "by-time", 0, time.Now(), 5, "new0")
		if err := adm.CommitAllOffsets(ctx, "lagging", kadm.Offsets{"by-time": {0: {At: 3}}}); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			produceAt(t, ctx, cl, "by-size", 0, time.Now(), 3, fmt.Sprint("s", i))
		}
		produceAt(t, ctx, cl, "defaulted", 0, old, 3, "d")
		produceAt(t, ctx, cl, "defaulted", 0, time.Now(), 2, "d2")

		waitFor(t, ctx, "retention to move the start offsets", func() bool {
			bt, bs, d := startOffsets(t, ctx, adm, "by-time"), startOffsets(t, ctx, adm, "by-size"), startOffsets(t, ctx, adm, "defaulted")
			return bt[0] == 10 && bt[1] == 4 && bs[0] == 9 && d[0] == 3
		})

		// The lagging group resumes from the start (auto.offset.reset
		// earliest), not from its committed 3.
		g := newClient(t, s.Kafka(), kgo.ConsumerGroup("lagging"), kgo.ConsumeTopics("by-time"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		var got []acked
		for len(got) < len(fresh) {
			fs := g.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("lagging group read %d of %d: %v", len(got), len(fresh), err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				got = append(got, acked{r.Partition, r.Offset, string(r.Key), string(r.Value)})
			})
		}
		sameRecords(t, "franz-go group", fresh, got)

		// kcat (librdkafka) from the beginning starts at the new start.
		sameRecords(t, "kcat", fresh, kcatRead(t, ctx, s.Kafka(), "by-time"))

		// What is in force is described: the topic's own values, and the
		// flag's default for the rest.
		rc, err := adm.DescribeTopicConfigs(ctx, "defaulted", "by-time")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rc {
			for _, kv := range c.Configs {
				if kv.Key != "retention.ms" {
					continue
				}
				want, src := "3600000", kmsg.ConfigSourceStaticBrokerConfig
				if c.Name == "by-time" {
					want, src = "60000", kmsg.ConfigSourceDynamicTopicConfig
				}
				if kv.Value == nil || *kv.Value != want || kv.Source != src {
					t.Errorf("%s retention.ms = %v from %v, want %s from %v", c.Name, kv.MaybeValue(), kv.Source, want, src)
				}
			}
		}

		// Bad retention values are refused, and change nothing.
		for _, v := range []string{"soon", "-5", "99999999999999999999"} {
			r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr(v)}}, "by-time")
			if err != nil || len(r) != 1 || !errors.Is(r[0].Err, kerr.InvalidConfig) {
				t.Errorf("retention.ms=%s: %v %+v, want INVALID_CONFIG", v, err, r)
			}
		}
		if d := startOffsets(t, ctx, adm, "by-time"); d[0] != 10 {
			t.Fatalf("start after refused configs %v", d)
		}

		// The objects retention emptied leave the bucket (grace 0): only
		// the segments still holding live batches remain.
		b := s.bucket(t)
		waitFor(t, ctx, "retained objects deleted: the bucket holds the live segments only", func() bool {
			return s.metric(t, ctx, "silt_reclaimed_objects_total") > 0 && s.metric(t, ctx, "silt_storage_objects", "state", "dead") == 0 &&
				int(s.metric(t, ctx, "silt_storage_objects", "state", "committed")) == len(objectKeys(t, b))
		})
	})
}

// TestDeleteRecordsAndTopics: DeleteRecords through kadm moves the start;
// deleting a topic frees its objects and rows.
func TestDeleteRecordsAndTopics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		s := newSilt(t, append([]string{"--compaction=false"}, lifecycleFlags...)...).Start()
		ctx := testContext(t, 120*time.Second)
		cl := manualClient(t, s.Kafka())
		adm := kadm.NewClient(cl)
		for _, topic := range []string{"keep", "drop"} {
			if r, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil || r.Err != nil {
				t.Fatal(err, r.Err)
			}
		}
		var keep []acked
		for i := range 6 {
			keep = append(keep, produceAt(t, ctx, cl, "keep", int32(i%2), time.Now(), 4, fmt.Sprint("k", i))...)
			produceAt(t, ctx, cl, "drop", int32(i%2), time.Now(), 4, fmt.Sprint("d", i))
		}
		res, err := adm.DeleteRecords(ctx, kadm.Offsets{"keep": {0: {At: 6}}})
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := res.Lookup("keep", 0); r.Err != nil || r.LowWatermark != 6 {
			t.Fatalf("DeleteRecords = %+v", r)
		}
		if _, err := adm.DeleteTopics(ctx, "drop"); err != nil {
			t.Fatal(err)
		}
		b := s.bucket(t)
		waitFor(t, ctx, "the deleted topic's data reclaimed", func() bool {
			return s.metric(t, ctx, "silt_retention_removed_rows_total", "reason", "topic_deleted") == 6 &&
				s.metric(t, ctx, "silt_retention_removed_rows_total", "reason", "delete_records") == 1
		})
		waitFor(t, ctx, "dead objects deleted", func() bool {
			return s.metric(t, ctx, "silt_storage_objects", "state", "dead") == 0 &&
				int(s.metric(t, ctx, "silt_storage_objects", "state", "committed")) == len(objectKeys(t, b))
		})
		if _, ok := scrapeFamilies(t, ctx, s.Admin()).sum("silt_storage_topic_bytes", "topic", "drop"); ok {
			t.Fatal("the deleted topic still has stored bytes")
		}
		// The same name is a new, empty topic at once.
		if r, err := adm.CreateTopic(ctx, 1, 1, nil, "drop"); err != nil || r.Err != nil {
			t.Fatal(err, r.Err)
		}
		// (A fresh client: this one's metadata may still list the old
		// topic's two partitions.)
		fresh := kadm.NewClient(newClient(t, s.Kafka()))
		if ends, err := fresh.ListEndOffsets(ctx, "drop"); err != nil || ends["drop"][0].Offset != 0 || len(ends["drop"]) != 1 {
			t.Fatalf("recreated topic's end %v, %v", ends, err)
		}
		// What remains of keep reads back from the start offsets on (the
		// batch holding 6 comes whole; librdkafka skips what lies below).
		got := kcatRead(t, ctx, s.Kafka(), "keep")
		var fromStart []acked
		for _, a := range keep {
			if a.Partition == 1 || a.Offset >= 6 {
				fromStart = append(fromStart, a)
			}
		}
		sameRecords(t, "kcat after DeleteRecords", fromStart, got)
	})
}

// TestCompactionReadBack: many small segments of a 3-partition topic are
// compacted into per-partition objects; every record reads back the same
// at its offset through franz-go, kcat and kafkajs, timestamp lookups stay
// exact, and the produce segments leave the bucket.
func TestCompactionReadBack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		s := newSilt(t, append([]string{"--compaction-age", "1s", "--compaction-chunk-bytes", "8KiB",
			"--compaction-object-bytes", "32KiB"}, lifecycleFlags...)...).Start()
		ctx := testContext(t, 180*time.Second)
		cl := manualClient(t, s.Kafka(), kgo.ProducerBatchCompression(kgo.ZstdCompression(), kgo.NoCompression()))
		lz := manualClient(t, s.Kafka(), kgo.ProducerBatchCompression(kgo.Lz4Compression()))
		adm := kadm.NewClient(cl)
		const topic = "compacted"
		if r, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil || r.Err != nil {
			t.Fatal(err, r.Err)
		}
		var (
			acks []acked
			tss  = map[int64]int64{} // partition 0: offset -> timestamp
		)
		base := time.Now().Add(-time.Hour).Truncate(time.Second)
		for i := range 30 {
			c := cl
			if i%3 == 1 {
				c = lz
			}
			for p := range int32(3) {
				ts := base.Add(time.Duration(i) * time.Second)
				a := produceAt(t, ctx, c, topic, p, ts, 1+i%4, fmt.Sprintf("p%d-r%d", p, i))
				acks = append(acks, a...)
				if p == 0 {
					for _, x := range a {
						tss[x.Offset] = ts.UnixMilli()
					}
				}
			}
		}
		b := s.bucket(t)
		segments := len(objectKeys(t, b))
		waitFor(t, ctx, "compaction of every partition and the produce segments gone", func() bool {
			keys := objectKeys(t, b)
			for _, k := range keys {
				if !strings.HasPrefix(k, "compacted/") {
					return false
				}
			}
			return len(keys) > 0 && s.metric(t, ctx, "silt_compaction_backlog_bytes") == 0
		})
		t.Logf("%d produce segments compacted into %d objects", segments, len(objectKeys(t, b)))

		recs := consumeN(t, ctx, s.Kafka(), topic, len(acks))
		checkAcked(t, acks, recs)
		var got []acked
		for _, r := range recs {
			got = append(got, acked{r.Partition, r.Offset, string(r.Key), string(r.Value)})
			if r.Partition == 0 && r.Timestamp.UnixMilli() != tss[r.Offset] {
				t.Fatalf("record at %d has timestamp %v, produced with %v", r.Offset, r.Timestamp.UnixMilli(), tss[r.Offset])
			}
		}
		sameRecords(t, "franz-go", acks, got)
		sameRecords(t, "kcat", acks, kcatRead(t, ctx, s.Kafka(), topic))

		sameRecords(t, "kafkajs", acks, kafkajsRead(t, s.Kafka(), topic, "kafkajs-compacted", len(acks)))

		// ListOffsets by timestamp: the first record at or after it,
		// exactly, although an index row now holds many batches.
		for i := range 30 {
			target := base.Add(time.Duration(i) * time.Second).UnixMilli()
			want := int64(-1)
			for off, ts := range tss {
				if ts >= target && (want < 0 || off < want) {
					want = off
				}
			}
			l, err := adm.ListOffsetsAfterMilli(ctx, target, topic)
			if err != nil {
				t.Fatal(err)
			}
			if o, _ := l.Lookup(topic, 0); o.Err != nil || o.Offset != want {
				t.Fatalf("offset for timestamp %d: %+v, want %d", target, o, want)
			}
		}
	})
}

// TestOrphanObjectsDeleted: an object in the bucket that the metastore
// does not know goes once older than --orphan-age; known ones stay.
func TestOrphanObjectsDeleted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, define func(testing.TB, ...string) *silt) {
		s := define(t, "--janitor-interval", "200ms", "--compaction=false").Start()
		ctx := testContext(t, 60*time.Second)
		cl := manualClient(t, s.Kafka())
		produceAt(t, ctx, cl, "orphans", 0, time.Now(), 3, "x")
		b := s.bucket(t)
		committed := objectKeys(t, b)
		if err := b.Put(ctx, "segments/left-by-a-crash", []byte("junk")); err != nil {
			t.Fatal(err)
		}
		// The bucket is listed at a janitor's first pass, and then hourly:
		// restart, now with an orphan age of zero (no producer is left to
		// race with).
		s.Stop()
		s2 := newSilt(t, append(slices.Clone(s.args), "--orphan-age", "0s"), s.env)
		s2.bucketDir, s2.s3 = s.bucketDir, s.s3
		s = s2.Start()
		waitFor(t, ctx, "the unknown object deleted", func() bool {
			return slices.Equal(objectKeys(t, b), committed)
		})
		if n := s.metric(t, ctx, "silt_orphans_deleted_total"); n != 1 {
			t.Fatalf("silt_orphans_deleted_total = %v, want 1", n)
		}
		if got := consumeN(t, ctx, s.Kafka(), "orphans", 3); len(got) != 3 {
			t.Fatalf("read %d records after the orphan scan", len(got))
		}
	})
}

// TestJanitorFailover: of three agents one runs the janitor; SIGKILLed,
// another takes over within a lease period, and never two at once.
func TestJanitorFailover(t *testing.T) {
	pg, s3 := harness.Postgres(t), harness.S3(t)
	var agents []*silt
	for i := range 3 {
		agents = append(agents, newAgentOn(t, pg, s3, append([]string{"--agent-id", fmt.Sprint("janitor-", i),
			"--compaction=false"}, lifecycleFlags...)...).Start())
	}
	ctx := testContext(t, 120*time.Second)
	leaders := func(alive []*silt) []*silt {
		var out []*silt
		for _, a := range alive {
			if a.metric(t, ctx, "silt_janitor_leader") == 1 {
				out = append(out, a)
			}
		}
		return out
	}
	// Watch the leader gauges throughout: never two at once.
	var (
		mu      sync.Mutex
		alive   = slices.Clone(agents)
		samples int
		two     []string
	)
	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for watchCtx.Err() == nil {
			mu.Lock()
			cur := slices.Clone(alive)
			mu.Unlock()
			var l []string
			for i, a := range cur {
				if v, err := gaugeValue(watchCtx, a.Admin(), "silt_janitor_leader"); err == nil && v == 1 {
					l = append(l, fmt.Sprint(i))
				}
			}
			mu.Lock()
			samples++
			if len(l) > 1 {
				two = append(two, strings.Join(l, "+"))
			}
			mu.Unlock()
			select {
			case <-watchCtx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	var leader *silt
	waitFor(t, ctx, "a janitor leader", func() bool {
		l := leaders(agents)
		if len(l) == 1 {
			leader = l[0]
		}
		return len(l) == 1
	})
	mu.Lock()
	alive = slices.DeleteFunc(alive, func(a *silt) bool { return a == leader })
	mu.Unlock()
	killed := time.Now()
	leader.Kill()
	mu.Lock()
	rest := slices.Clone(alive)
	mu.Unlock()
	waitFor(t, ctx, "a new janitor leader", func() bool { return len(leaders(rest)) == 1 })
	t.Logf("janitor moved %v after SIGKILL of its agent", time.Since(killed).Round(100*time.Millisecond))

	// The new leader does the work: retention on old data.
	cl := manualClient(t, rest[0].Kafka())
	adm := kadm.NewClient(cl)
	if r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": kmsg.StringPtr("1000")}, "after-failover"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	produceAt(t, ctx, cl, "after-failover", 0, time.Now().Add(-time.Hour), 5, "old")
	waitFor(t, ctx, "retention after failover", func() bool { return startOffsets(t, ctx, adm, "after-failover")[0] == 5 })
	stopWatch()
	wg.Wait()
	if len(two) > 0 {
		t.Fatalf("two janitor leaders at once in %d of %d samples: %v", len(two), samples, two)
	}
}

// gaugeValue reads one unlabelled gauge from admin's /metrics, without
// failing the test (for use off the test's goroutine).
func gaugeValue(ctx context.Context, admin, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := metricsClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, err
	}
	v, ok := metricFamilies(fams).sum(name)
	if !ok {
		return 0, fmt.Errorf("no %s", name)
	}
	return v, nil
}

// TestLogCompactionClients: a compacted topic written with many updates
// per key reads back, through franz-go, kcat and kafkajs, as the latest
// value of every key at its original offset, with tombstones younger than
// delete.retention.ms and without older ones.
func TestLogCompactionClients(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		s := newSilt(t, append([]string{"--compaction-age", "0s"}, lifecycleFlags...)...).Start()
		ctx := testContext(t, 180*time.Second)
		cl := manualClient(t, s.Kafka(), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
		adm := kadm.NewClient(cl)
		const topic = "changelog"
		if r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
			"cleanup.policy":            kmsg.StringPtr("compact"),
			"min.cleanable.dirty.ratio": kmsg.StringPtr("0.01"),
			"delete.retention.ms":       kmsg.StringPtr("3600000"),
		}, topic); err != nil || r.Err != nil {
			t.Fatal(err, r.Err)
		}
		// Odd settings are refused as Kafka refuses them.
		r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("compact"),
			"min.compaction.lag.ms": kmsg.StringPtr("10"), "max.compaction.lag.ms": kmsg.StringPtr("5")}, "odd")
		if !errors.Is(err, kerr.InvalidConfig) || !errors.Is(r.Err, kerr.InvalidConfig) {
			t.Fatalf("min.compaction.lag.ms > max.compaction.lag.ms: %v %v, want INVALID_CONFIG", err, r.Err)
		}

		type kv struct {
			value     string
			tombstone bool
			old       bool // timestamp beyond delete.retention.ms
		}
		written := map[int64]kv{}
		keyOf := map[int64]string{}
		now := time.Now()
		for round := range 20 {
			var recs []*kgo.Record
			for k := range 10 {
				if round == 19 && k < 3 {
					continue // their last word is round 18's tombstone
				}
				r := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "key-%d", k), Value: fmt.Appendf(nil, "value-%d-%d", k, round), Timestamp: now}
				switch {
				case round == 18 && k < 3: // deleted long ago: the tombstones go too
					r.Value, r.Timestamp = nil, now.Add(-2*time.Hour)
				case round == 19 && k >= 8: // deleted just now: the tombstones stay
					r.Value = nil
				}
				recs = append(recs, r)
			}
			res := cl.ProduceSync(ctx, recs...)
			if err := res.FirstErr(); err != nil {
				t.Fatal(err)
			}
			for _, pr := range res {
				written[pr.Record.Offset] = kv{string(pr.Record.Value), pr.Record.Value == nil, pr.Record.Timestamp.Before(now.Add(-time.Hour))}
				keyOf[pr.Record.Offset] = string(pr.Record.Key)
			}
		}
		last := map[string]int64{}
		for off, k := range keyOf {
			if o, ok := last[k]; !ok || off > o {
				last[k] = off
			}
		}
		var want []acked
		for k, off := range last {
			if w := written[off]; !(w.tombstone && w.old) {
				want = append(want, acked{0, off, k, w.value})
			}
		}
		// keys 0-2: deleted long ago (gone), 8-9: deleted now (tombstones),
		// 3-7: their round-19 values.
		if len(want) != 7 {
			t.Fatalf("want %d records: %v", len(want), want)
		}
		waitFor(t, ctx, "the topic cleaned", func() bool {
			return s.metric(t, ctx, "silt_cleaner_runs_total") > 0 && s.metric(t, ctx, "silt_cleaner_cleanable_bytes") == 0
		})

		var got []acked
		for _, r := range consumeN(t, ctx, s.Kafka(), topic, len(want)) {
			got = append(got, acked{r.Partition, r.Offset, string(r.Key), string(r.Value)})
		}
		sameRecords(t, "franz-go", want, got)
		sameRecords(t, "kcat", want, kcatRead(t, ctx, s.Kafka(), topic))
		sameRecords(t, "kafkajs", want, kafkajsRead(t, s.Kafka(), topic, "kafkajs-changelog", len(want)))
		// The end offset never moves back: offsets are kept.
		if ends, err := adm.ListEndOffsets(ctx, topic); err != nil || ends[topic][0].Offset != 197 {
			t.Fatalf("end offset after compaction %v, %v; want 197", ends, err)
		}
	})
}

// kafkajsRead consumes n records of topic with a kafkajs consumer group.
func kafkajsRead(t *testing.T, addr, topic, group string, n int) []acked {
	t.Helper()
	var kj struct {
		Consumed []struct {
			Partition int32   `json:"partition"`
			Offset    int64   `json:"offset"`
			Key       *string `json:"key"`
			Value     *string `json:"value"`
		} `json:"consumed"`
	}
	runNode(t, &kj, "consume", addr, topic, group, fmt.Sprint(n))
	var out []acked
	for _, m := range kj.Consumed {
		a := acked{Partition: m.Partition, Offset: m.Offset}
		if m.Key != nil {
			a.Key = *m.Key
		}
		if m.Value != nil {
			a.Value = *m.Value
		}
		out = append(out, a)
	}
	return out
}
