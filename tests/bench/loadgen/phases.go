package loadgen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Probe is what a benchmark can see of the agent besides the Kafka
// protocol. Zero fields mean "not visible" (a remote cluster): the
// figures that need them are left out.
type Probe struct {
	// PID of the agent process on this machine, for CPU time and RSS.
	PID int
	// MetricsURL is the agent's Prometheus endpoint (http://host:port/metrics).
	MetricsURL string
	// Counters, when not nil, reads further counters (for example the
	// metastore's transaction count) at the start and end of a phase;
	// AgentFigures.Counters holds their deltas.
	Counters func(ctx context.Context) (map[string]float64, error)
}

// snapshot is the agent's counters at one moment.
type snapshot struct {
	at      time.Time
	cpu     float64            // CPU seconds; -1 when unknown
	self    float64            // this process's CPU seconds (the load generator), with exited children's; -1 when unknown
	busy    float64            // the machine's busy CPU seconds; -1 when unknown
	tree    map[string]float64 // CPU seconds of this process's live descendants by name (servers the harness started); nil when unknown
	metrics Metrics            // nil when unknown
	extra   map[string]float64
}

func (p Probe) snapshot(ctx context.Context) snapshot {
	s := snapshot{at: time.Now(), cpu: -1, self: -1, busy: -1}
	if v, err := CPUWithChildren(os.Getpid()); err == nil {
		s.self = v
	}
	if m, err := DescendantsCPU(os.Getpid()); err == nil {
		s.tree = m
	}
	if v, _, err := MachineCPU(); err == nil {
		s.busy = v
	}
	if p.PID > 0 {
		if v, err := CPUSeconds(p.PID); err == nil {
			s.cpu = v
		}
	}
	if p.MetricsURL != "" {
		if m, err := Scrape(ctx, p.MetricsURL); err == nil {
			s.metrics = m
		}
	}
	if p.Counters != nil {
		if m, err := p.Counters(ctx); err == nil {
			s.extra = m
		}
	}
	return s
}

// AgentFigures are the agent-side figures of one phase; a field is -1
// when the probe could not see it.
type AgentFigures struct {
	CPUSeconds float64 // agent CPU time used during the phase
	// LoadgenCPU is the CPU time of this process (the load generator and
	// the client programs it ran; for kfake also the broker) and
	// MachineCPU that of the whole machine (every process, other users'
	// too) during the phase; Seconds is the phase's wall time.
	// MachineCPU/Seconds near the CPU count means the phase was bound by
	// CPU.
	LoadgenCPU, MachineCPU, Seconds float64
	// MinIOCPU and PostgresCPU are the CPU time of the MinIO and Postgres
	// servers this process started (the test harness's), -1 when none
	// ran. What MachineCPU has beyond the agent, the load generator and
	// these is other users of the machine.
	MinIOCPU, PostgresCPU float64
	PeakRSS               int64   // highest VmRSS sampled during the phase, bytes
	HWM                   int64   // VmHWM at the end of the phase (peak since start)
	Puts                  float64 // object PUTs during the phase
	Gets                  float64 // object GETs (range reads) during the phase
	Segments              float64 // segments cut (silt_ingest_segments_total)
	Commits               float64 // segment commits (silt_ingest_commit_duration_seconds_count)
	// SegmentBytes is the batch bytes of the segments cut
	// (silt_ingest_segment_bytes_sum).
	SegmentBytes float64
	// BytesIn is the record batch bytes the agent took in
	// (silt_topic_bytes_in_total); BytesPut and BytesGet the object bytes
	// it uploaded and read (silt_objstore_bytes_total). BytesPut / the
	// bytes produced is what storage holds per byte produced: about 1 for
	// incompressible values, whatever zstd achieves otherwise.
	BytesIn, BytesPut, BytesGet float64
	// ServerLatency is the mean of the agent's own produce latency
	// (silt_produce_latency_seconds: append to commit) over the phase,
	// in seconds; -1 when unknown. The client's latency minus this is
	// time spent in the client and on the wire.
	ServerLatency float64
	// Cuts counts the segments cut during the phase by reason (bytes,
	// time, early, backpressure, close); nil when unknown.
	Cuts map[string]float64
	// Counters are the deltas of Probe.Counters over the phase.
	Counters map[string]float64
}

// CutReasons are the reasons silt_ingest_segments_total counts cuts by.
var CutReasons = []string{"bytes", "time", "early", "backpressure", "close"}

// AvgSegmentBytes is the mean segment size of the phase, or -1.
func (f AgentFigures) AvgSegmentBytes() float64 {
	if f.Segments <= 0 || f.SegmentBytes < 0 {
		return -1
	}
	return f.SegmentBytes / f.Segments
}

// UnknownFigures are figures with nothing measured.
func UnknownFigures() AgentFigures {
	return AgentFigures{CPUSeconds: -1, LoadgenCPU: -1, MachineCPU: -1, Seconds: -1, MinIOCPU: -1, PostgresCPU: -1, PeakRSS: -1, HWM: -1, Puts: -1, Gets: -1, Segments: -1, Commits: -1, SegmentBytes: -1,
		BytesIn: -1, BytesPut: -1, BytesGet: -1, ServerLatency: -1}
}

func figures(before, after snapshot, rss *RSSPeak, pid int) AgentFigures {
	f := UnknownFigures()
	if before.cpu >= 0 && after.cpu >= 0 {
		f.CPUSeconds = after.cpu - before.cpu
	}
	if before.self >= 0 && after.self >= 0 {
		f.LoadgenCPU = after.self - before.self
	}
	if before.busy >= 0 && after.busy >= 0 {
		f.MachineCPU = after.busy - before.busy
	}
	f.MinIOCPU, f.PostgresCPU = treeDelta(before.tree, after.tree, "minio"), treeDelta(before.tree, after.tree, "postgres")
	f.Seconds = after.at.Sub(before.at).Seconds()
	if rss != nil {
		f.PeakRSS = rss.Stop()
	}
	if pid > 0 {
		if v, err := MemoryBytes(pid, "VmHWM"); err == nil {
			f.HWM = v
		}
	}
	if before.metrics != nil && after.metrics != nil {
		f.Puts = Delta(before.metrics, after.metrics, "silt_objstore_requests_total", `op="put"`)
		f.Gets = Delta(before.metrics, after.metrics, "silt_objstore_requests_total", `op="get"`)
		f.Segments = Delta(before.metrics, after.metrics, "silt_ingest_segments_total")
		f.Commits = Delta(before.metrics, after.metrics, "silt_ingest_commit_duration_seconds_count")
		f.SegmentBytes = Delta(before.metrics, after.metrics, "silt_ingest_segment_bytes_sum")
		f.Cuts = map[string]float64{}
		for _, reason := range CutReasons {
			f.Cuts[reason] = Delta(before.metrics, after.metrics, "silt_ingest_segments_total", `reason="`+reason+`"`)
		}
		f.BytesIn = Delta(before.metrics, after.metrics, "silt_topic_bytes_in_total")
		f.BytesPut = Delta(before.metrics, after.metrics, "silt_objstore_bytes_total", `op="put"`)
		f.BytesGet = Delta(before.metrics, after.metrics, "silt_objstore_bytes_total", `op="get"`)
		if n := Delta(before.metrics, after.metrics, "silt_produce_latency_seconds_count"); n > 0 {
			f.ServerLatency = Delta(before.metrics, after.metrics, "silt_produce_latency_seconds_sum") / n
		}
	}
	if before.extra != nil && after.extra != nil {
		f.Counters = map[string]float64{}
		for k, v := range after.extra {
			if b, ok := before.extra[k]; ok {
				f.Counters[k] = v - b
			}
		}
	}
	return f
}

// LoadResult is a produce phase with a consumer reading alongside.
type LoadResult struct {
	Produce ProduceResult
	// Consume is the consumer that read the phase's records as they were
	// committed: tail-consumer throughput at saturation, end-to-end
	// latency at a fixed rate.
	Consume ConsumeResult
	Agent   AgentFigures
}

// warmup produces briefly so connections, metadata and the agent's first
// segment are not part of the measurement.
func warmup(ctx context.Context, cfg Config) error {
	w := cfg
	w.Duration, w.MaxBytes, w.Rate = 2*time.Second, 4<<20, 0
	w.Logger = nil
	r, err := Produce(ctx, w)
	if err != nil {
		return err
	}
	if r.Records == 0 {
		return fmt.Errorf("warmup: nothing acknowledged (%d errors, first: %w)", r.Errors, r.FirstErr)
	}
	return nil
}

// RunLoad creates the topic, warms up, then produces cfg's load (at
// cfg.Rate, or as fast as possible when it is 0) while a consumer tails
// the topic from the offsets the warmup left, and measures the agent
// through probe.
func RunLoad(ctx context.Context, cfg Config, probe Probe) (LoadResult, error) {
	if err := cfg.Validate(); err != nil {
		return LoadResult{}, err
	}
	if err := CreateTopic(ctx, cfg); err != nil {
		return LoadResult{}, err
	}
	if err := warmup(ctx, cfg); err != nil {
		return LoadResult{}, err
	}
	ends, err := EndOffsets(ctx, cfg)
	if err != nil {
		return LoadResult{}, err
	}
	before := probe.snapshot(ctx)
	var rss *RSSPeak
	if probe.PID > 0 {
		rss = WatchRSS(ctx, probe.PID, 50*time.Millisecond)
	}

	// The consumer may take at most this long after the producers end
	// to catch up; it is a bound on failure, not a pace.
	cctx, cancel := context.WithTimeout(ctx, cfg.Duration+2*time.Minute)
	defer cancel()
	var (
		stopAt atomic.Int64
		cres   ConsumeResult
		cerr   error
		wg     sync.WaitGroup
	)
	wg.Go(func() {
		cres, cerr = Consume(cctx, ConsumeConfig{Brokers: cfg.Brokers, Client: cfg.Client, Topic: cfg.Topic, StartOffsets: ends, StopAt: &stopAt})
	})
	pres, err := Produce(ctx, cfg)
	if err != nil {
		cancel()
		wg.Wait()
		if rss != nil {
			rss.Stop()
		}
		return LoadResult{}, err
	}
	if pres.Bytes == 0 {
		cancel()
	}
	stopAt.Store(max(pres.Bytes, 1))
	wg.Wait()
	after := probe.snapshot(ctx)
	if cerr != nil {
		return LoadResult{}, cerr
	}
	if cres.Bytes < pres.Bytes {
		cfg.logger().Warn("consumer did not receive every acknowledged record in time",
			"received_bytes", cres.Bytes, "acked_bytes", pres.Bytes)
	}
	return LoadResult{Produce: pres, Consume: cres, Agent: figures(before, after, rss, probe.PID)}, nil
}

// ReplayResult is a consumer reading a topic from its start.
type ReplayResult struct {
	Consume ConsumeResult
	Agent   AgentFigures
}

// Replay reads cfg.Topic from the log start until bytes value bytes
// arrived (or the timeout passed) and measures the agent through probe.
// For a cold replay the caller restarts the agent first, so its caches
// are empty.
func Replay(ctx context.Context, cfg Config, bytes int64, timeout time.Duration, probe Probe) (ReplayResult, error) {
	if bytes <= 0 {
		return ReplayResult{}, errors.New("replay: nothing to read")
	}
	before := probe.snapshot(ctx)
	var rss *RSSPeak
	if probe.PID > 0 {
		rss = WatchRSS(ctx, probe.PID, 50*time.Millisecond)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := Consume(cctx, ConsumeConfig{Brokers: cfg.Brokers, Client: cfg.Client, Topic: cfg.Topic, StopAfterBytes: bytes})
	after := probe.snapshot(ctx)
	f := figures(before, after, rss, probe.PID)
	if err != nil {
		return ReplayResult{}, err
	}
	if res.Bytes < bytes {
		cfg.logger().Warn("replay ended before reading everything", "read", res.Bytes, "wanted", bytes)
	}
	return ReplayResult{Consume: res, Agent: f}, nil
}

// UploadRatio is the object bytes the agent uploaded per value byte
// acknowledged in the phase (about 1 for incompressible values), or -1
// when either is unknown.
func (r LoadResult) UploadRatio() float64 {
	if r.Agent.BytesPut < 0 || r.Produce.Bytes <= 0 {
		return -1
	}
	return r.Agent.BytesPut / float64(r.Produce.Bytes)
}

// treeDelta is the CPU seconds the named descendant processes used
// between two snapshots, or -1 when none ran.
func treeDelta(before, after map[string]float64, name string) float64 {
	a, ok := after[name]
	if !ok || before == nil {
		return -1
	}
	return max(0, a-before[name])
}
