package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMetrics is the operator's view of a produce-and-consume run: after
// keyed records are produced (small ones cut by time, one larger than
// --flush-bytes cut by size), consumed and committed by a franz-go group,
// read again from the start (cache hits) and followed by a few more
// records (lag), /metrics must hold every family the README lists, with
// the expected labels and non-zero values wherever traffic flowed.
// Failure counters must be exported at zero rather than missing.
func TestMetrics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newSilt func(t testing.TB, extra ...string) *silt) {
		ctx := testContext(t, 3*time.Minute)
		s := newSilt(t, "--flush-bytes", "64KiB").Start()
		const (
			topic    = "metrics"
			fill     = "metrics-fill"
			group    = "metrics-group"
			parts    = 3
			keys     = 10
			bigValue = 100 << 10 // larger than --flush-bytes: its segment is cut by size
		)
		createTopic(t, ctx, s.Kafka(), topic, parts)

		acks := produceKeyed(t, ctx, s.Kafka(), topic, "small", 60, keys)
		// A restart empties the caches: the process measured below reads
		// the records produced before it from the bucket (GETs, cache
		// misses), while what it produces itself it caches at upload.
		s.Stop()
		s.Restart()
		createTopic(t, ctx, s.Kafka(), fill, 1)
		big := newClient(t, s.Kafka())
		value := make([]byte, bigValue)
		rand.Read(value) // incompressible: the client's compression keeps its size
		if err := big.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k0"), Value: value}).FirstErr(); err != nil {
			t.Fatalf("produce a %d-byte record: %v", bigValue, err)
		}
		big.Close()
		consumed := len(acks) + 1

		groupConsume(t, ctx, s.Kafka(), group, topic, consumed)
		// The group's reads filled the chunk cache; this second pass
		// from the start is served from it.
		consumeN(t, ctx, s.Kafka(), topic, consumed)
		// Records after the group's commit are its lag.
		const late = 7
		produceKeyed(t, ctx, s.Kafka(), topic, "late", late, keys)

		// The produce buffer holds data only between an append and its
		// commit: watch it fill under a steady producer of another topic.
		waitBufferFill(t, ctx, s, fill)
		waitMetric(t, ctx, s.Admin(), "silt_ingest_buffered_bytes", func(v float64) bool { return v == 0 })
		waitMetric(t, ctx, s.Admin(), "silt_agents_live", func(v float64) bool { return v == 1 })

		m := scrapeFamilies(t, ctx, s.Admin())

		// Requests: a count and a latency histogram per API key used.
		for _, api := range []string{"ApiVersions", "Metadata", "CreateTopics", "Produce", "Fetch", "ListOffsets",
			"FindCoordinator", "JoinGroup", "SyncGroup", "OffsetCommit", "OffsetFetch", "LeaveGroup"} {
			m.wantPositive(t, "silt_requests_total", dto.MetricType_COUNTER, "api", api)
			m.wantPositive(t, "silt_request_duration_seconds", dto.MetricType_HISTOGRAM, "api", api)
		}
		m.wantExists(t, "silt_connections", dto.MetricType_GAUGE)
		m.wantValue(t, "silt_build_info", dto.MetricType_GAUGE, 1)

		// Per-topic traffic. Every record produced to the topic since the
		// restart was acknowledged once (the producer is idempotent), so
		// records in is exact; both readers read every consumed record at
		// least once.
		inBytes := m.wantPositive(t, "silt_topic_bytes_in_total", dto.MetricType_COUNTER, "topic", topic)
		if inBytes < bigValue {
			t.Errorf("silt_topic_bytes_in_total{topic=%q} = %v, less than one %d-byte record", topic, inBytes, bigValue)
		}
		m.wantValue(t, "silt_topic_records_in_total", dto.MetricType_COUNTER, float64(1+late), "topic", topic)
		m.wantPositive(t, "silt_topic_records_in_total", dto.MetricType_COUNTER, "topic", fill)
		outBytes := m.wantPositive(t, "silt_topic_bytes_out_total", dto.MetricType_COUNTER, "topic", topic)
		if outBytes < 2*bigValue {
			t.Errorf("silt_topic_bytes_out_total{topic=%q} = %v, less than the big record read twice", topic, outBytes)
		}
		if out := m.wantPositive(t, "silt_topic_records_out_total", dto.MetricType_COUNTER, "topic", topic); out < float64(2*consumed) {
			t.Errorf("silt_topic_records_out_total{topic=%q} = %v, want at least %d (two readers of %d records)", topic, out, 2*consumed, consumed)
		}

		// Produce path: segment cuts by reason and size, buffer, timings.
		m.wantPositive(t, "silt_ingest_segments_total", dto.MetricType_COUNTER, "reason", "bytes")
		m.wantPositive(t, "silt_ingest_segments_total", dto.MetricType_COUNTER, "reason", "time")
		m.wantPositive(t, "silt_ingest_segment_bytes", dto.MetricType_HISTOGRAM)
		segBytes, _ := m.histogramSum("silt_ingest_segment_bytes")
		allIn, _ := m.sum("silt_topic_bytes_in_total")
		if segBytes < allIn {
			t.Errorf("silt_ingest_segment_bytes sums to %v, less than the %v bytes written to topics", segBytes, allIn)
		}
		m.wantValue(t, "silt_ingest_buffered_bytes", dto.MetricType_GAUGE, 0)
		m.wantPositive(t, "silt_produce_latency_seconds", dto.MetricType_HISTOGRAM)
		m.wantPositive(t, "silt_ingest_upload_duration_seconds", dto.MetricType_HISTOGRAM)
		// Metastore commits: latency, and failures exported per stage.
		m.wantPositive(t, "silt_ingest_commit_duration_seconds", dto.MetricType_HISTOGRAM)
		for _, stage := range []string{"encode", "pending", "upload", "commit"} {
			m.wantExists(t, "silt_ingest_failures_total", dto.MetricType_COUNTER, "stage", stage)
		}

		// Object store, per operation. Segments are put; the first read
		// of each chunk written before the restart is a ranged get.
		for _, op := range []string{"put", "get"} {
			m.wantPositive(t, "silt_objstore_requests_total", dto.MetricType_COUNTER, "op", op)
			m.wantPositive(t, "silt_objstore_request_duration_seconds", dto.MetricType_HISTOGRAM, "op", op)
			m.wantPositive(t, "silt_objstore_bytes_total", dto.MetricType_COUNTER, "op", op)
		}
		for _, op := range []string{"put", "get", "delete", "list"} {
			m.wantExists(t, "silt_objstore_request_failures_total", dto.MetricType_COUNTER, "op", op)
			m.wantExists(t, "silt_objstore_request_duration_seconds", dto.MetricType_HISTOGRAM, "op", op)
		}
		if puts, _ := m.sum("silt_objstore_bytes_total", "op", "put"); puts < bigValue {
			t.Errorf("silt_objstore_bytes_total{op=\"put\"} = %v, less than one %d-byte record", puts, bigValue)
		}

		// Read path: misses went to the object store, the second pass hit
		// the memory tier, which now holds bytes.
		m.wantPositive(t, "silt_fetch_cache_misses_total", dto.MetricType_COUNTER)
		m.wantPositive(t, "silt_fetch_cache_hits_total", dto.MetricType_COUNTER, "tier", "memory")
		m.wantExists(t, "silt_fetch_cache_hits_total", dto.MetricType_COUNTER, "tier", "disk")
		m.wantPositive(t, "silt_fetch_cache_bytes", dto.MetricType_GAUGE, "tier", "memory")
		m.wantPositive(t, "silt_fetch_bytes_total", dto.MetricType_COUNTER)
		m.wantPositive(t, "silt_fetch_wait_duration_seconds", dto.MetricType_HISTOGRAM)
		m.wantPositive(t, "silt_fetch_index_lookups_total", dto.MetricType_COUNTER)
		m.wantPositive(t, "silt_fetch_seeded_bytes_total", dto.MetricType_COUNTER)

		// Groups: the committed group's lag is exactly the late records,
		// per partition the distance from its commit to the end.
		m.wantPositive(t, "silt_offset_commits_total", dto.MetricType_COUNTER)
		m.wantPositive(t, "silt_group_rebalances_total", dto.MetricType_COUNTER)
		m.wantValue(t, "silt_groups", dto.MetricType_GAUGE, 1)
		m.wantValue(t, "silt_group_lag", dto.MetricType_GAUGE, late, "group", group, "topic", topic)
		ends := endOffsets(t, ctx, s.Kafka(), topic)
		for p, committed := range committedOffsets(t, ctx, s.Kafka(), group, topic) {
			m.wantValue(t, "silt_group_lag", dto.MetricType_GAUGE, float64(ends[p]-committed),
				"group", group, "topic", topic, "partition", strconv.Itoa(int(p)))
		}

		// Cluster: this agent is the one live agent.
		m.wantValue(t, "silt_agents_live", dto.MetricType_GAUGE, 1)
	})
}

// waitBufferFill runs a producer of topic, one record at a time, until
// silt_ingest_buffered_bytes shows data waiting for its segment's commit
// (each record waits there for the flush interval), then stops it.
func waitBufferFill(t testing.TB, ctx context.Context, s *silt, topic string) {
	t.Helper()
	cl := newClient(t, s.Kafka(), kgo.DefaultProduceTopic(topic))
	defer cl.Close()
	prodCtx, stop := context.WithCancel(ctx)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // mu guards prodErr
		prodErr  error
		produced int
	)
	wg.Go(func() {
		for i := 0; prodCtx.Err() == nil; i++ {
			err := cl.ProduceSync(prodCtx, kgo.StringRecord(fmt.Sprintf("fill %d", i))).FirstErr()
			if err != nil && prodCtx.Err() == nil {
				mu.Lock()
				prodErr = err
				mu.Unlock()
				return
			}
			produced = i + 1
		}
	})
	waitMetric(t, ctx, s.Admin(), "silt_ingest_buffered_bytes", func(v float64) bool { return v > 0 })
	stop()
	wg.Wait()
	if prodErr != nil {
		t.Fatalf("fill producer: %v", prodErr)
	}
	if produced == 0 {
		t.Fatalf("fill producer: no record acknowledged")
	}
}

// metricFamilies is one parsed /metrics scrape, by family name.
type metricFamilies map[string]*dto.MetricFamily

// scrapeFamilies fetches and parses admin's /metrics (text format).
func scrapeFamilies(t testing.TB, ctx context.Context, admin string) metricFamilies {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := metricsClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", admin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", admin, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s/metrics: %v", admin, err)
	}
	return fams
}

// matching returns the series of family name whose labels include every
// pair of kv (label, value, label, value...).
func (m metricFamilies) matching(name string, kv ...string) []*dto.Metric {
	f := m[name]
	if f == nil {
		return nil
	}
	var out []*dto.Metric
	for _, s := range f.GetMetric() {
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			if !slices.ContainsFunc(s.GetLabel(), func(l *dto.LabelPair) bool {
				return l.GetName() == kv[i] && l.GetValue() == kv[i+1]
			}) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}

// sum adds the values of name's matching series: a histogram's sample
// count, a counter's or gauge's value. found is false without a match.
func (m metricFamilies) sum(name string, kv ...string) (v float64, found bool) {
	for _, s := range m.matching(name, kv...) {
		found = true
		switch {
		case s.Histogram != nil:
			v += float64(s.GetHistogram().GetSampleCount())
		case s.Counter != nil:
			v += s.GetCounter().GetValue()
		case s.Gauge != nil:
			v += s.GetGauge().GetValue()
		default:
			v += s.GetUntyped().GetValue()
		}
	}
	return v, found
}

// histogramSum adds the sample sums of name's matching histogram series.
func (m metricFamilies) histogramSum(name string, kv ...string) (v float64, found bool) {
	for _, s := range m.matching(name, kv...) {
		found = true
		v += s.GetHistogram().GetSampleSum()
	}
	return v, found
}

// wantExists fails unless family name has type typ and a series with the
// labels kv, and returns the series' summed value.
func (m metricFamilies) wantExists(t testing.TB, name string, typ dto.MetricType, kv ...string) float64 {
	t.Helper()
	f := m[name]
	if f == nil {
		t.Errorf("metric family %s is not exported", name)
		return 0
	}
	if f.GetType() != typ {
		t.Errorf("metric family %s has type %s, want %s", name, f.GetType(), typ)
	}
	v, found := m.sum(name, kv...)
	if !found {
		t.Errorf("metric %s has no series {%s}; it has %s", name, labelString(kv), m.seriesOf(name))
	}
	return v
}

// wantPositive is wantExists and a value (histograms: sample count) > 0.
func (m metricFamilies) wantPositive(t testing.TB, name string, typ dto.MetricType, kv ...string) float64 {
	t.Helper()
	v := m.wantExists(t, name, typ, kv...)
	if _, found := m.sum(name, kv...); found && v <= 0 {
		t.Errorf("metric %s{%s} = %v, want > 0", name, labelString(kv), v)
	}
	return v
}

// wantValue is wantExists and a summed value equal to want.
func (m metricFamilies) wantValue(t testing.TB, name string, typ dto.MetricType, want float64, kv ...string) {
	t.Helper()
	v := m.wantExists(t, name, typ, kv...)
	if _, found := m.sum(name, kv...); found && v != want {
		t.Errorf("metric %s{%s} = %v, want %v; series: %s", name, labelString(kv), v, want, m.seriesOf(name))
	}
}

// seriesOf lists name's series for failure messages.
func (m metricFamilies) seriesOf(name string) string {
	var out []string
	for _, s := range m.matching(name) {
		var kv []string
		for _, l := range s.GetLabel() {
			kv = append(kv, l.GetName(), l.GetValue())
		}
		v, _ := metricFamilies{name: &dto.MetricFamily{Metric: []*dto.Metric{s}}}.sum(name)
		out = append(out, fmt.Sprintf("{%s}=%v", labelString(kv), v))
	}
	if len(out) == 0 {
		return "no series"
	}
	return strings.Join(out, " ")
}

func labelString(kv []string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, fmt.Sprintf("%s=%q", kv[i], kv[i+1]))
	}
	return strings.Join(parts, ",")
}
