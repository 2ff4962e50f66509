package bench

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/siltdata/silt/tests/bench/loadgen"
)

// TestProducerClients runs every single-producer client of the report
// briefly against kfake: each speaks its protocol (loadgen.External for
// the ones that are not Go) and reports every acknowledged record with a
// latency.
func TestProducerClients(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, client := range producerClients(t) {
		t.Run(client.Name(), func(t *testing.T) {
			cfg := loadgen.DefaultConfig()
			cfg.Brokers, cfg.Topic, cfg.Partitions, cfg.Duration = c.ListenAddrs(), "single-"+client.Name(), 3, time.Second
			r, err := loadgen.RunProducer(t.Context(), client, cfg, loadgen.Probe{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Produce.Records == 0 || r.Produce.Errors != 0 {
				t.Fatalf("%d records acknowledged, %d failed (%v)", r.Produce.Records, r.Produce.Errors, r.Produce.FirstErr)
			}
			if r.Produce.Bytes != r.Produce.Records*int64(cfg.RecordSize) || int64(r.Produce.Latency.Len()) != r.Produce.Records {
				t.Fatalf("%d bytes, %d latencies for %d records", r.Produce.Bytes, r.Produce.Latency.Len(), r.Produce.Records)
			}
			if r.Produce.Elapsed <= 0 || r.Produce.Elapsed > time.Minute {
				t.Fatalf("elapsed %s", r.Produce.Elapsed)
			}
			ends, err := loadgen.EndOffsets(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			for _, o := range ends {
				n += o
			}
			// The topic also holds the warmup's records.
			if n < r.Produce.Records {
				t.Fatalf("topic holds %d records, %d acknowledged", n, r.Produce.Records)
			}
			t.Logf("%s: %d records, %s MB/s, p99 %s", client.Name(), r.Produce.Records, loadgen.MBps(r.Produce.Throughput()), r.Produce.Latency.Quantile(0.99))

			// Paced, the client keeps to the rate.
			cfg.Topic, cfg.Rate = cfg.Topic+"-paced", 2e6
			r, err = loadgen.RunProducer(t.Context(), client, cfg, loadgen.Probe{})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Produce.Throughput(); got < 0.5*cfg.Rate || got > 1.5*cfg.Rate || r.Produce.Errors != 0 {
				t.Fatalf("paced at %s MB/s: %s MB/s, %d failed", loadgen.MBps(cfg.Rate), loadgen.MBps(got), r.Produce.Errors)
			}
		})
	}
}
