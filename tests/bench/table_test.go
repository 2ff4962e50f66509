package bench

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/siltdata/silt/tests/bench/loadgen"
)

// minUploadRatio is the least object bytes uploaded per value byte
// produced that an incompressible load may show. Below it, the payload
// compressed, and the storage figures measure the compressor.
const minUploadRatio = 0.95

// buildTable turns the measurements into the report's main table: the
// raw store columns, then one column per system.
func buildTable(p params, base loadgen.Config, rawS3, rawFS rawStore, systems []*system) *loadgen.Table {
	tbl := &loadgen.Table{Title: "silt vs the physical limit"}
	tbl.Notes = []string{
		fmt.Sprintf("load: franz-go, acks=all (idempotent), %d producers, %d partitions, %d B records, no compression, %s per phase; values incompressible and distinct per record (random payload) unless the column says json", base.Producers, base.Partitions, base.RecordSize, p.phase),
		"json: JSON-like events (ids, timestamps, enums, URLs, words), compressed by silt's per-chunk zstd: the bytes table gives the ratio",
		fmt.Sprintf("raw: PUT %s KiB objects × %d in flight (silt FlushBytes × UploadConcurrency); GET %s KiB ranges × 8 in flight (one partition's chunk of a saturation segment × the read path's concurrency); low load: 1 PUT at a time at the segment size silt cut at half load", kib(rawS3.objectSize), rawS3.concurrencyPG[0], kib(rawS3.chunkSize)),
		"silt dev runs on SQLite + a local directory, so its targets compare with raw FS; silt agent (Postgres + MinIO) with raw S3",
		"each silt phase runs in a fresh process on the same metastore and bucket; cold replay starts with empty caches",
		"one idempotent producer: one client with the library's default settings (idempotence on) producing as fast as it goes, no consumer",
		"kfake keeps its log in memory: it replays only what its saturation phase produced, from memory",
		"Apache Kafka: one broker (KRaft, as Kafka ships it: 1 GiB heap, G1) with its log on the local disk; its replay reads what the page cache holds, and its CPU column is the broker JVM's",
		"figures are from a machine shared with other builds: noisy, compare ratios within one run",
	}
	if n := runtime.NumCPU(); n <= 4 {
		tbl.Notes = append(tbl.Notes, fmt.Sprintf("only %d CPUs are shared by the load generator, kfake or the agent, MinIO and Postgres: saturation figures may measure CPU, not storage (kfake, an in-memory broker, is the CPU-bound reference)", n))
	}
	raw := func(f func(r rawStore) string) []string { return []string{f(rawS3), f(rawFS)} }
	// sys is one row over the system columns; siltOnly leaves kfake's
	// cell empty.
	sys := func(siltOnly bool, f func(s *system) string) []string {
		cells := []string{"", ""}
		for _, s := range systems {
			if siltOnly && !s.silt {
				cells = append(cells, "")
				continue
			}
			cells = append(cells, f(s))
		}
		return cells
	}
	tbl.Add("raw PUT bandwidth (saturation)", "MB/s", raw(func(r rawStore) string { return loadgen.MBps(r.put.Throughput()) })...)
	tbl.Add("raw PUT latency p50 / p99 (saturation)", "ms", raw(func(r rawStore) string { return p5099(r.put.Latency) })...)
	tbl.Add("raw GET bandwidth", "MB/s", raw(func(r rawStore) string { return loadgen.MBps(r.get.Throughput()) })...)
	tbl.Add("raw GET latency p50 / p99", "ms", raw(func(r rawStore) string { return p5099(r.get.Latency) })...)
	rawCPU := func(x loadgen.RawResult) string {
		if x.MachineCPU < 0 || x.ClientCPU < 0 || x.Bytes <= 0 {
			return "?"
		}
		gb := float64(x.Bytes) / 1e9
		minio, other := "-", x.MachineCPU-x.ClientCPU
		if x.MinIOCPU >= 0 {
			minio, other = loadgen.Num(x.MinIOCPU/gb, 1), other-x.MinIOCPU
		}
		return loadgen.Num(x.MachineCPU/gb, 1) + " / " + loadgen.Num(x.ClientCPU/gb, 1) + " / " + minio + " / " + loadgen.Num(other/gb, 1)
	}
	tbl.Add("CPU per GB moved, raw PUT: machine / client / MinIO / other", "CPU-s/GB", raw(func(r rawStore) string { return rawCPU(r.put) })...)
	tbl.Add("CPU per GB moved, raw GET: machine / client / MinIO / other", "CPU-s/GB", raw(func(r rawStore) string { return rawCPU(r.get) })...)
	tbl.Add("raw PUT low load: size", "KiB", raw(func(r rawStore) string { return kib(r.lowSize) + " / " + kib(r.low25Size) })...)
	tbl.Add("raw PUT low load p50 / p99 (250ms size)", "ms", raw(func(r rawStore) string { return p5099(r.low.Latency) })...)
	tbl.Add("raw PUT low load p50 / p99 (25ms size)", "ms", raw(func(r rawStore) string { return p5099(r.low25.Latency) })...)

	loadCell := func(name string, f func(r *loadgen.LoadResult) string) func(s *system) string {
		return func(s *system) string {
			if r := s.load(name); r != nil {
				return f(r)
			}
			return ""
		}
	}
	agentCell := func(name string, f func(a loadgen.AgentFigures) string) func(s *system) string {
		return func(s *system) string {
			if ph := s.phase(name); ph != nil {
				return f(ph.agent())
			}
			return ""
		}
	}
	tbl.Add("max produce throughput", "MB/s", sys(false, loadCell(phaseSat, func(r *loadgen.LoadResult) string { return loadgen.MBps(r.Produce.Throughput()) }))...)
	tbl.Add("agent CPU per GB produced (saturation)", "CPU-s/GB", sys(true, loadCell(phaseSat, func(r *loadgen.LoadResult) string {
		return known(r.Agent.CPUSeconds, func(v float64) string { return loadgen.Num(v/(float64(r.Produce.Bytes)/1e9), 1) })
	}))...)
	tbl.Add("CPU cores busy at saturation: machine / agent / load generator / MinIO / Postgres / other", "cores", sys(false, cpuCell(phaseSat, false))...)
	tbl.Add("CPU per GB produced at saturation: machine / agent / load generator / MinIO / Postgres / other", "CPU-s/GB", sys(false, cpuCell(phaseSat, true))...)
	tbl.Add("CPU cores busy in cold replay: machine / agent / load generator / MinIO / Postgres / other", "cores", sys(false, cpuCell(phaseReplay, false))...)
	tbl.Add("CPU per GB replayed: machine / agent / load generator / MinIO / Postgres / other", "CPU-s/GB", sys(false, cpuCell(phaseReplay, true))...)
	tbl.Add("tail consumer throughput (saturation)", "MB/s", sys(false, loadCell(phaseSat, func(r *loadgen.LoadResult) string { return loadgen.MBps(r.Consume.Throughput()) }))...)
	tbl.Add("produce rate for latency (half of max)", "MB/s", sys(false, loadCell(phaseHalf, func(r *loadgen.LoadResult) string { return loadgen.MBps(r.Produce.Throughput()) }))...)
	tbl.Add("produce latency p50 / p99 / p999, flush 250ms", "ms", sys(false, loadCell(phaseHalf, func(r *loadgen.LoadResult) string { return p5099999(r.Produce.Latency) }))...)
	tbl.Add("end-to-end latency p50 / p99, flush 250ms", "ms", sys(false, loadCell(phaseHalf, func(r *loadgen.LoadResult) string { return p5099(r.Consume.EndToEnd) }))...)
	tbl.Add("agent-side produce latency mean (append→commit), flush 250ms / 25ms", "ms", sys(true, func(s *system) string {
		ms := func(name string) string {
			return agentCell(name, func(a loadgen.AgentFigures) string {
				return known(a.ServerLatency, func(v float64) string { return loadgen.Num(v*1000, 1) })
			})(s)
		}
		return ms(phaseHalf) + " / " + ms(phaseHalf25)
	})...)
	tbl.Add("produce latency p50 / p99 / p999, flush 25ms", "ms", sys(true, loadCell(phaseHalf25, func(r *loadgen.LoadResult) string { return p5099999(r.Produce.Latency) }))...)
	tbl.Add("end-to-end latency p50 / p99, flush 25ms", "ms", sys(true, loadCell(phaseHalf25, func(r *loadgen.LoadResult) string { return p5099(r.Consume.EndToEnd) }))...)
	tbl.Add("replay throughput (silt: cold, empty cache)", "MB/s", sys(false, func(s *system) string {
		if ph := s.phase(phaseReplay); ph != nil && ph.replay != nil {
			return loadgen.MBps(ph.replay.Consume.Throughput())
		}
		return ""
	})...)
	tbl.Add("bytes replayed", "MiB", sys(false, func(s *system) string {
		if ph := s.phase(phaseReplay); ph != nil && ph.replay != nil {
			return mib(ph.replay.Consume.Bytes)
		}
		return ""
	})...)
	tbl.Add("object PUTs per GiB produced (saturation)", "PUT/GiB", sys(true, loadCell(phaseSat, func(r *loadgen.LoadResult) string {
		return known(r.Agent.Puts, func(v float64) string { return loadgen.Num(perGiB(v, r.Produce.Bytes), 1) })
	}))...)
	tbl.Add("mean segment size: saturation / half / half 25ms", "KiB", sys(true, func(s *system) string {
		seg := func(name string) string {
			return agentCell(name, func(a loadgen.AgentFigures) string { return kibf(a.AvgSegmentBytes()) })(s)
		}
		return seg(phaseSat) + " / " + seg(phaseHalf) + " / " + seg(phaseHalf25)
	})...)
	tbl.Add("segments cut by bytes / time / early / backpressure: saturation; half", "count", sys(true, func(s *system) string {
		cuts := func(name string) string {
			c := s.phase(name).agent().Cuts
			if c == nil {
				return "?"
			}
			return fmt.Sprintf("%.0f / %.0f / %.0f / %.0f", c["bytes"], c["time"], c["early"], c["backpressure"])
		}
		return cuts(phaseSat) + "; " + cuts(phaseHalf)
	})...)
	tbl.Add("segment commits per segment (saturation)", "tx/seg", sys(true, agentCell(phaseSat, func(a loadgen.AgentFigures) string {
		return known(a.Segments, func(v float64) string { return loadgen.Num(a.Commits/v, 3) })
	}))...)
	tbl.Add("Postgres write transactions per segment (saturation; all, incl. pending marker and leases)", "tx/seg", sys(true, agentCell(phaseSat, func(a loadgen.AgentFigures) string {
		return known(writeTxPerSegment(a), func(v float64) string { return loadgen.Num(v, 2) })
	}))...)
	tbl.Add("object GETs per GiB replayed (expected)", "GET/GiB", sys(true, func(s *system) string {
		ph := s.phase(phaseReplay)
		if ph == nil || ph.replay == nil {
			return ""
		}
		return known(ph.replay.Agent.Gets, func(v float64) string {
			return loadgen.Num(perGiB(v, ph.replay.Consume.Bytes), 1) + " (" + loadgen.Num(expectedGets(s, base.Partitions), 1) + ")"
		})
	})...)
	tbl.Add("peak agent RSS: saturation / half", "MiB", sys(true, func(s *system) string {
		return mib(s.phase(phaseSat).agent().PeakRSS) + " / " + mib(s.phase(phaseHalf).agent().PeakRSS)
	})...)
	tbl.Add("agent VmHWM after saturation / cold replay", "MiB", sys(true, func(s *system) string {
		return mib(s.phase(phaseSat).agent().HWM) + " / " + mib(s.phase(phaseReplay).agent().HWM)
	})...)

	tbl.Add("saturation, early cut off: throughput / PUTs per GiB", "MB/s / PUT/GiB", sys(true, loadCell(noEarlyCut(phaseSat), func(r *loadgen.LoadResult) string {
		return loadgen.MBps(r.Produce.Throughput()) + " / " + known(r.Agent.Puts, func(v float64) string { return loadgen.Num(perGiB(v, r.Produce.Bytes), 1) })
	}))...)

	// TLS + SCRAM beside plaintext: the same saturation load, its
	// encryption done by the agent and the load generator on the same
	// CPUs.
	tbl.Add("saturation over TLS + SCRAM-SHA-512 (SASL_SSL): throughput (× plaintext) / CPU per GB: agent, load generator", "MB/s / CPU-s/GB", sys(true, func(s *system) string {
		sec, plain := s.load(phaseSatSecure), s.load(phaseSat)
		if sec == nil {
			return ""
		}
		thr := loadgen.MBps(sec.Produce.Throughput())
		if plain != nil && plain.Produce.Throughput() > 0 {
			thr += " (" + loadgen.Ratio(sec.Produce.Throughput()/plain.Produce.Throughput()) + ")"
		}
		gb := float64(sec.Produce.Bytes) / 1e9
		perGB := func(v float64) string { return known(v, func(v float64) string { return loadgen.Num(v/gb, 1) }) }
		return thr + " / " + perGB(sec.Agent.CPUSeconds) + ", " + perGB(sec.Agent.LoadgenCPU)
	})...)

	// One idempotent producer per client, in the order the phases ran.
	for _, name := range phaseNames(systems) {
		client, ok := strings.CutPrefix(name, "single ")
		if !ok {
			continue
		}
		tbl.Add("one idempotent producer ("+client+"): throughput", "MB/s", sys(false, loadCell(name, func(r *loadgen.LoadResult) string { return loadgen.MBps(r.Produce.Throughput()) }))...)
		tbl.Add("one idempotent producer ("+client+"): latency p50 / p99 (agent side: mean)", "ms", sys(false, loadCell(name, func(r *loadgen.LoadResult) string {
			agent := ""
			if r.Agent.ServerLatency >= 0 {
				agent = " (" + loadgen.Num(r.Agent.ServerLatency*1000, 1) + ")"
			}
			return p5099(r.Produce.Latency) + agent
		}))...)
		tbl.Add("one idempotent producer ("+client+"): PUTs per GiB / mean segment / share cut early", "PUT/GiB / KiB / %", sys(true, loadCell(name, func(r *loadgen.LoadResult) string {
			early := "?"
			if r.Agent.Segments > 0 && r.Agent.Cuts != nil {
				early = loadgen.Num(100*r.Agent.Cuts["early"]/r.Agent.Segments, 0)
			}
			return known(r.Agent.Puts, func(v float64) string { return loadgen.Num(perGiB(v, r.Produce.Bytes), 1) }) + " / " + kibf(r.Agent.AvgSegmentBytes()) + " / " + early
		}))...)
	}

	var kfake *system
	for _, s := range systems {
		if s.name == "kfake" {
			kfake = s
		}
	}
	for _, s := range systems {
		if s.raw != nil {
			targets(tbl, s, kfake, base)
		}
	}
	return tbl
}

// targets adds the targets for one silt system to tbl.
func targets(tbl *loadgen.Table, s, kfake *system, base loadgen.Config) {
	raw := s.raw
	sat, zero := s.load(phaseSat), loadgen.LoadResult{}
	if sat == nil {
		sat = &zero
	}
	thr := sat.Produce.Throughput()
	r := thr / raw.put.Throughput()
	tbl.Check(s.name, "produce ≥ 0.7× "+s.rawName+" PUT bandwidth", loadgen.Ratio(r), r >= 0.7, raw.put.Throughput() > 0 && thr > 0)
	if kfake != nil {
		if k := kfake.load(phaseSat); k != nil {
			r = thr / k.Produce.Throughput()
			tbl.Check(s.name, "produce ≥ 1.0× kfake", loadgen.Ratio(r), r >= 1.0, k.Produce.Throughput() > 0)
		}
	}
	for _, l := range []struct {
		flush time.Duration
		res   *loadgen.LoadResult
		raw   loadgen.RawResult
	}{{250 * time.Millisecond, s.load(phaseHalf), raw.low}, {25 * time.Millisecond, s.load(phaseHalf25), raw.low25}} {
		if l.res == nil {
			continue
		}
		p99 := l.res.Produce.Latency.Quantile(0.99)
		limit := l.flush + l.raw.Latency.Quantile(0.99) + 50*time.Millisecond
		tbl.Check(s.name, fmt.Sprintf("produce p99 ≤ flush %s + raw PUT p99 + 50ms (= %sms)", l.flush, loadgen.Ms(limit)),
			loadgen.Ms(p99)+"ms", p99 <= limit, l.raw.Ops > 0)
		e99 := l.res.Consume.EndToEnd.Quantile(0.99)
		tbl.Check(s.name, fmt.Sprintf("e2e p99 ≤ produce p99 + 50ms (flush %s)", l.flush),
			loadgen.Ms(e99)+"ms vs "+loadgen.Ms(p99+50*time.Millisecond)+"ms", e99 <= p99+50*time.Millisecond, l.res.Consume.EndToEnd.Len() > 0)
	}
	if ph := s.phase(phaseReplay); ph != nil && ph.replay != nil {
		r = ph.replay.Consume.Throughput() / raw.get.Throughput()
		tbl.Check(s.name, "cold replay ≥ 0.7× "+s.rawName+" GET bandwidth", loadgen.Ratio(r), r >= 0.7, raw.get.Throughput() > 0)
		gets, want := perGiB(ph.replay.Agent.Gets, ph.replay.Consume.Bytes), expectedGets(s, base.Partitions)
		tbl.Check(s.name, "GETs/GiB replayed ≈ GiB / chunk size (0.5×–1.5×)", loadgen.Num(gets, 1)+" vs "+loadgen.Num(want, 1),
			gets >= 0.5*want && gets <= 1.5*want, ph.replay.Agent.Gets >= 0 && want > 0)
	}
	puts := perGiB(sat.Agent.Puts, sat.Produce.Bytes)
	tbl.Check(s.name, "≤ 140 PUTs/GiB at saturation", loadgen.Num(puts, 1), puts <= 140, sat.Agent.Puts >= 0 && sat.Produce.Bytes > 0)
	tx := sat.Agent.Commits / sat.Agent.Segments
	tbl.Check(s.name, "1 metastore commit tx per segment (±5%)", loadgen.Num(tx, 3), tx >= 0.95 && tx <= 1.05, sat.Agent.Segments > 0)
	half := s.phase(phaseHalf).agent()
	rss := float64(sat.Agent.PeakRSS) / float64(half.PeakRSS)
	tbl.Check(s.name, "RSS flat when load doubles (saturation ≤ 1.5× half-load peak)", loadgen.Ratio(rss), rss <= 1.5, half.PeakRSS > 0)
	earlyCutTargets(tbl, s)
	if s.payload == loadgen.PayloadRandom {
		low, name, ok := lowestUploadRatio(s)
		tbl.Check(s.name, fmt.Sprintf("incompressible load uploads ≥ %.2f× what it produced (lowest phase: %s)", minUploadRatio, name),
			loadgen.Ratio(low), low >= minUploadRatio, ok)
	}
}

// cpuCell shows where a phase's CPU went, in cores (CPU-seconds per
// second of the phase) or, perGB, in CPU-seconds per GB of values
// produced (replay: received). For kfake the broker runs inside the load
// generator's process.
func cpuCell(name string, perGB bool) func(s *system) string {
	return func(s *system) string {
		ph := s.phase(name)
		if ph == nil {
			return ""
		}
		a := ph.agent()
		if a.Seconds <= 0 || a.MachineCPU < 0 || a.LoadgenCPU < 0 {
			return "?"
		}
		div, decimals := a.Seconds, 2
		if perGB {
			var n int64
			switch {
			case ph.load != nil:
				n = ph.load.Produce.Bytes
			case ph.replay != nil:
				n = ph.replay.Consume.Bytes
			}
			if n <= 0 {
				return "?"
			}
			div, decimals = float64(n)/1e9, 1
		}
		cores := func(v float64) string { return loadgen.Num(v/div, decimals) }
		parts := []string{cores(a.MachineCPU)}
		other := a.MachineCPU
		for _, v := range []float64{a.CPUSeconds, a.LoadgenCPU, a.MinIOCPU, a.PostgresCPU} {
			if v < 0 {
				parts = append(parts, "-")
				continue
			}
			parts = append(parts, cores(v))
			other -= v
		}
		return strings.Join(append(parts, cores(other)), " / ")
	}
}

// maxOther is the CPU (in cores) other users of the machine may take
// during a phase before the report calls the phase disturbed.
const maxOther = 0.3

// disturbed lists the phases (and raw measurements) during which other
// users of the machine took more than maxOther cores: CPU that neither
// the system measured nor its load generator, object store or metastore
// used.
func disturbed(rawS3, rawFS rawStore, systems []*system) []string {
	var out []string
	rawOther := func(name string, r loadgen.RawResult) {
		if r.MachineCPU < 0 || r.ClientCPU < 0 || r.Elapsed <= 0 {
			return
		}
		other := r.MachineCPU - r.ClientCPU - max(0, r.MinIOCPU)
		if cores := other / r.Elapsed.Seconds(); cores > maxOther {
			out = append(out, fmt.Sprintf("%s (%.2f)", name, cores))
		}
	}
	rawOther("raw S3 PUT", rawS3.put)
	rawOther("raw S3 GET", rawS3.get)
	rawOther("raw FS PUT", rawFS.put)
	rawOther("raw FS GET", rawFS.get)
	for _, s := range systems {
		for i := range s.phases {
			a := s.phases[i].agent()
			if a.Seconds <= 0 || a.MachineCPU < 0 || a.LoadgenCPU < 0 {
				continue
			}
			other := a.MachineCPU - a.LoadgenCPU - max(0, a.CPUSeconds) - max(0, a.MinIOCPU) - max(0, a.PostgresCPU)
			if cores := other / a.Seconds; cores > maxOther {
				out = append(out, fmt.Sprintf("%s %s (%.2f)", s.name, s.phases[i].name, cores))
			}
		}
	}
	return out
}

// earlyCutTargets adds the early cut's conditions for staying on by
// default: it at least doubles one idempotent producer's throughput (per
// client) and raises PUTs per GiB at saturation by at most 1.5×.
func earlyCutTargets(tbl *loadgen.Table, s *system) {
	for _, name := range phaseNames([]*system{s}) {
		client, ok := strings.CutPrefix(name, "single ")
		if !ok || strings.HasSuffix(name, noEarlyCut("")) {
			continue
		}
		on, off := s.load(name), s.load(noEarlyCut(name))
		if on == nil || off == nil || strings.Contains(client, "MB/s") {
			continue
		}
		// A client the early cut never fired for was not stalled on
		// segments (franz-go packs every partition into one large
		// request): the setting does not apply to it.
		r := on.Produce.Throughput() / off.Produce.Throughput()
		measured, fired := loadgen.Ratio(r), on.Agent.Cuts["early"] > 0
		if !fired {
			measured += " (never cut early: not stalled)"
		}
		tbl.Check(s.name, "early cut: one idempotent producer ("+client+") ≥ 2× the throughput without", measured, r >= 2, off.Produce.Throughput() > 0 && fired)
	}
	on, off := s.load(phaseSat), s.load(noEarlyCut(phaseSat))
	if on == nil || off == nil {
		return
	}
	a, b := perGiB(on.Agent.Puts, on.Produce.Bytes), perGiB(off.Agent.Puts, off.Produce.Bytes)
	r := a / b
	tbl.Check(s.name, "early cut: PUTs/GiB at saturation ≤ 1.5× without", loadgen.Num(a, 1)+" vs "+loadgen.Num(b, 1)+" ("+loadgen.Ratio(r)+")", r <= 1.5, a > 0 && b > 0)
}

// lowestUploadRatio is the lowest upload ratio of s's produce phases
// and its phase; ok is false when a phase's ratio is unknown (the check
// must not pass silently then).
func lowestUploadRatio(s *system) (low float64, name string, ok bool) {
	low, ok = -1, true
	for i := range s.phases {
		ph := &s.phases[i]
		if ph.load == nil {
			continue
		}
		r := ph.load.UploadRatio()
		if r < 0 {
			return -1, ph.name, false
		}
		if low < 0 || r < low {
			low, name = r, ph.name
		}
	}
	return low, name, ok && low >= 0
}

// checkIncompressible fails the report, loudly, when an incompressible
// load's upload ratio is below minUploadRatio (or was not measured):
// the payload compressed, so every storage figure of the run measures
// the compressor, not silt writing to storage.
func checkIncompressible(t *testing.T, systems []*system) {
	for _, s := range systems {
		if !s.silt || s.payload != loadgen.PayloadRandom {
			continue
		}
		for i := range s.phases {
			ph := &s.phases[i]
			if ph.load == nil {
				continue
			}
			r := ph.load.UploadRatio()
			switch {
			case r < 0:
				t.Errorf("BENCHMARK INVALID: %s phase %s: upload ratio not measured (bytes uploaded %v, produced %d); the incompressible-payload check cannot pass silently",
					s, ph.name, ph.load.Agent.BytesPut, ph.load.Produce.Bytes)
			case r < minUploadRatio:
				t.Errorf("BENCHMARK INVALID: %s phase %s uploaded %.3f× the bytes it produced (%s of %s MiB), below %.2f: the payload compressed, so this run's storage figures measure compression, not storage",
					s, ph.name, r, loadgen.Num(ph.load.Agent.BytesPut/(1<<20), 0), mib(ph.load.Produce.Bytes), minUploadRatio)
			}
		}
	}
}

// phaseNames is every phase name of systems, in order of first
// appearance.
func phaseNames(systems []*system) []string {
	var names []string
	seen := map[string]bool{}
	for _, s := range systems {
		for _, ph := range s.phases {
			if !seen[ph.name] {
				seen[ph.name] = true
				names = append(names, ph.name)
			}
		}
	}
	return names
}

// bytesTable is, per phase and system, the bytes produced and uploaded
// and their ratio (for a replay: the bytes the consumer received and
// the bytes read from the object store), so a payload that compresses
// can never pass for storage throughput.
func bytesTable(systems []*system) *loadgen.Table {
	tbl := &loadgen.Table{Title: "bytes produced and stored, per phase"}
	tbl.Notes = []string{
		`produce phases: value bytes acknowledged / object bytes uploaded (silt_objstore_bytes_total{op="put"}) = ratio; about 1 for incompressible values, what silt's zstd achieved for json`,
		`replay: value bytes the consumer received / object bytes read (silt_objstore_bytes_total{op="get"}) = ratio`,
		"kfake stores nothing: produced bytes only",
	}
	for _, name := range phaseNames(systems) {
		cells := make([]string, 0, len(systems))
		for _, s := range systems {
			ph := s.phase(name)
			switch {
			case ph == nil:
				cells = append(cells, "")
			case ph.load != nil:
				cells = append(cells, bytesCell(ph.load.Produce.Bytes, ph.load.Agent.BytesPut, s.silt))
			case ph.replay != nil:
				cells = append(cells, bytesCell(ph.replay.Consume.Bytes, ph.replay.Agent.BytesGet, s.silt))
			}
		}
		tbl.Add(name, "MiB", cells...)
	}
	return tbl
}

func bytesCell(logical int64, stored float64, silt bool) string {
	if !silt || stored < 0 {
		return mib(logical)
	}
	ratio := "?"
	if logical > 0 {
		ratio = loadgen.Num(stored/float64(logical), 3)
	}
	return mib(logical) + " / " + loadgen.Num(stored/(1<<20), 0) + " = " + ratio
}

// expectedGets is GiB divided by the mean chunk size of the replayed
// topic: one GET per partition chunk of each saturation segment.
func expectedGets(s *system, partitions int) float64 {
	avg := s.phase(phaseSat).agent().AvgSegmentBytes()
	if avg <= 0 {
		return -1
	}
	return gib / (avg / float64(partitions))
}

func perGiB(n float64, bytes int64) float64 {
	if bytes <= 0 || n < 0 {
		return -1
	}
	return n / (float64(bytes) / gib)
}

func known(v float64, f func(float64) string) string {
	if v < 0 {
		return "?"
	}
	return f(v)
}

func p5099(s *loadgen.Samples) string {
	if s == nil || s.Len() == 0 {
		return "?"
	}
	return loadgen.Ms(s.Quantile(0.5)) + " / " + loadgen.Ms(s.Quantile(0.99))
}

func p5099999(s *loadgen.Samples) string {
	if s == nil || s.Len() == 0 {
		return "?"
	}
	return strings.Join([]string{loadgen.Ms(s.Quantile(0.5)), loadgen.Ms(s.Quantile(0.99)), loadgen.Ms(s.Quantile(0.999))}, " / ")
}

func kib(n int) string { return fmt.Sprintf("%d", n>>10) }

func kibf(v float64) string {
	if v < 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f", v/1024)
}

func mib(n int64) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f", float64(n)/(1<<20))
}
