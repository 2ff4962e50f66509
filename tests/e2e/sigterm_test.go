package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGracefulShutdown sends SIGTERM while a produce request sits in the
// agent's segment buffer (a flush interval of an hour: only the shutdown
// can flush it). The agent must flush, commit and answer it, exit 0, and
// the records must be readable after a restart.
func TestGracefulShutdown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		ctx := testContext(t, 2*time.Minute)
		const topic, n = "sigterm", 100
		s := newSilt(t, "--flush-interval", "1h", "--flush-bytes", "64MiB").Start()

		// Manual flushing holds every record in the client until Flush, so
		// all n go in one batch of one request.
		cl := newClient(t, s.Kafka(), kgo.ManualFlushing(), kgo.MaxBufferedRecords(2*n), kgo.DefaultProduceTopic(topic))
		var (
			mu   sync.Mutex
			acks []acked
			errs []error
			wg   sync.WaitGroup
		)
		for i := range n {
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Key: []byte("k"), Value: fmt.Appendf(nil, "before-sigterm-%d", i)}, func(r *kgo.Record, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				acks = append(acks, acked{r.Partition, r.Offset, string(r.Key), string(r.Value)})
			})
		}
		flushed := make(chan error, 1)
		go func() { flushed <- cl.Flush(ctx) }()

		waitMetric(t, ctx, s.Admin(), "silt_ingest_buffered_bytes", func(v float64) bool { return v > 0 })
		s.Stop() // requires exit status 0
		if err := <-flushed; err != nil {
			t.Fatalf("flush: %v", err)
		}
		wg.Wait()
		if len(errs) > 0 || len(acks) != n {
			t.Fatalf("%d records acknowledged, %d failed (first: %v); want all %d acknowledged by the shutdown flush", len(acks), len(errs), first(errs), n)
		}

		s.Restart()
		checkAcked(t, acks, readAll(t, ctx, s.Kafka(), topic))
	})
}

func first(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}

// waitMetric polls the admin /metrics endpoint until the metric name
// (summed over its labels) satisfies ok. Polling is bounded by ctx; the metric is the only
// outside view of the agent's buffer.
func waitMetric(t testing.TB, ctx context.Context, admin, name string, ok func(float64) bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := "not exported"
	for {
		if v, found, err := scrape(ctx, admin, name); err != nil {
			last = err.Error()
		} else if found {
			if ok(v) {
				return
			}
			last = strconv.FormatFloat(v, 'g', -1, 64)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("metric %s never reached the condition (last: %s)", name, last)
		case <-tick.C:
		}
	}
}

// metricsClient keeps no idle connections, so no goroutine outlives a scrape.
var metricsClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func scrape(ctx context.Context, admin, name string) (float64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := metricsClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	// Samples of name, with or without labels, are summed.
	var (
		sum   float64
		found bool
	)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndexAny(rest, "} ")+1:])
		if rest[0] == ' ' {
			fields = strings.Fields(rest)
		}
		if len(fields) == 0 {
			continue
		}
		f, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum, found = sum+f, true
	}
	return sum, found, sc.Err()
}
