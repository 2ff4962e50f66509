package agent

import (
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/segment/segmenttest"
)

// BenchmarkTopicByNameHit is the produce/fetch hot path's topic lookup.
func BenchmarkTopicByNameHit(b *testing.B) {
	a := startAgent(b)
	if _, err := a.createTopic(b.Context(), metastore.TopicSpec{Name: "bench", Partitions: 1}); err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.topicByName(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApiVersionsRoundTrip measures the server loop: frame read,
// decode, dispatch, ordered write, on one connection, one request at a
// time.
func BenchmarkApiVersionsRoundTrip(b *testing.B) {
	a := startAgent(b)
	c := dialRaw(b, a.Addr())
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "bench", "1"
	frame := kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)
	b.ReportAllocs()
	for b.Loop() {
		c.write(frame)
		if _, _, err := c.readFrame(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProduceIncompressible measures the agent's produce path on
// incompressible data, end to end in process: frame read, decode,
// validation, the segment buffer, encoding, the upload to a filesystem
// bucket, the SQLite commit and the answer. One connection keeps 5
// requests in flight (as an idempotent producer does), each carrying a
// 256 KiB batch of 1 KiB random values for each of 12 partitions. cpu-s/GB
// is the process's CPU time per GB produced: the figure to compare
// before and after a change, since wall time here includes flush waits.
func BenchmarkProduceIncompressible(b *testing.B) {
	a := startAgent(b, func(c *Config) { c.Ingest.FlushInterval = 25 * time.Millisecond })
	const partitions = 12
	if _, err := a.createTopic(b.Context(), metastore.TopicSpec{Name: "bench", Partitions: partitions}); err != nil {
		b.Fatal(err)
	}
	// Distinct frames, more than a segment's worth, so no segment holds
	// the same batch twice.
	var frames [][]byte
	size := 0
	for i := range 16 {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 8, -1, 30000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "bench"
		for p := range partitions {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = int32(p)
			rp.Records = segmenttest.New(segmenttest.Options{Records: 256, ValueSize: 1024, Random: true, Seed: uint64(i*partitions + p)})
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench")).AppendRequest(nil, req, int32(i))
		frames = append(frames, frame)
		size = len(frame)
	}
	c := dialRaw(b, a.Addr())
	_ = c.nc.SetDeadline(time.Time{})
	const inflight = 5
	var cpu0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu0)
	b.SetBytes(int64(size))
	b.ResetTimer()
	sent, read := 0, 0
	for read < b.N {
		for sent < b.N && sent-read < inflight {
			c.write(frames[sent%len(frames)])
			sent++
		}
		if _, body, err := c.readFrame(); err != nil {
			b.Fatal(err)
		} else if len(body) < 8 {
			b.Fatalf("short produce answer: %d bytes", len(body))
		}
		read++
	}
	b.StopTimer()
	var cpu1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu1)
	secs := func(r syscall.Rusage) float64 {
		return float64(r.Utime.Sec+r.Stime.Sec) + float64(r.Utime.Usec+r.Stime.Usec)/1e6
	}
	b.ReportMetric((secs(cpu1)-secs(cpu0))/(float64(b.N)*float64(size)/1e9), "cpu-s/GB")
}
