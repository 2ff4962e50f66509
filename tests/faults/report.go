package faults

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Markdown renders the summary: what ran, what was acknowledged, each
// fault with its recovery time, and the anomalies by kind.
func (s *Summary) Markdown(command string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	verdict := "no anomalies"
	if n := s.Result.Total(); n > 0 {
		verdict = fmt.Sprintf("%d anomalies", n)
	}
	p("# Fault suite run: %s\n\n", verdict)
	p("Command: `%s`\n\n", command)
	p("- started %s, %s in all, faults applied for %s; seed %d; agents built with -race: %v\n",
		s.Started.Format(time.RFC3339), s.Ended.Sub(s.Started).Round(time.Second), s.FaultTime.Round(time.Second), s.Seed, s.Race)
	p("- records sent %d, acknowledged %d, failed to the application %d, cancelled by the suite when it stopped producing %d\n", s.Sent, s.Acked, s.ProduceErrors, s.Cancelled)
	p("- group: %d polls with records, %d partition commits, %d committed-offset samples\n", s.Polls, s.Commits, s.Samples)
	if s.TxnSkipped != "" {
		p("- transactional pipeline: skipped: %s\n", s.TxnSkipped)
	} else {
		p("- transactional pipeline: %d transactions committed, %d aborted, %d unknown\n", s.Txns[TxnCommitted], s.Txns[TxnAborted], s.Txns[TxnUnknown])
	}
	if len(s.Lifecycle) > 0 {
		p("- storage lifecycle during the run (summed over agents, lower bounds): %s\n", lifecycleLine(s.Lifecycle))
	}

	p("\n## Faults\n\n")
	p("| fault | applied | recovered | recovery after heal: min / median / max | longest produce stall: median / max | longest commit stall: median / max |\n|---|---|---|---|---|---|\n")
	byName := map[string][]Fault{}
	for _, f := range s.Faults {
		byName[f.Name] = append(byName[f.Name], f)
	}
	names := make([]string, 0, len(byName))
	for _, n := range Nemeses {
		if len(byName[n.Name]) > 0 {
			names = append(names, n.Name)
		}
	}
	for n := range byName {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, n := range names {
		fs := byName[n]
		var ds, ps, cs []time.Duration
		ok := 0
		for _, f := range fs {
			if f.Recovered {
				ok++
				ds = append(ds, f.Recovery)
			}
			ps, cs = append(ps, f.ProduceStall), append(cs, f.CommitStall)
		}
		rec := "-"
		if len(ds) > 0 {
			slices.Sort(ds)
			rec = fmt.Sprintf("%.1f s / %.1f s / %.1f s", ds[0].Seconds(), ds[len(ds)/2].Seconds(), ds[len(ds)-1].Seconds())
		}
		slices.Sort(ps)
		slices.Sort(cs)
		p("| %s | %d | %d | %s | %.1f s / %.1f s | %.1f s / %.1f s |\n", n, len(fs), ok, rec,
			ps[len(ps)/2].Seconds(), ps[len(ps)-1].Seconds(), cs[len(cs)/2].Seconds(), cs[len(cs)-1].Seconds())
	}
	p("\nRecovery is the time from the heal until every partition was acknowledged again, the group committed past where it was on every partition, and every agent listed every agent. A stall is the longest time, from the fault's start to its recovery, that one partition went without an acknowledgement (produce) or the group without an accepted commit.\n")

	p("\n## Anomalies\n\n| kind | count |\n|---|---|\n")
	for _, k := range Kinds {
		p("| %s | %d |\n", k, s.Result.Counts[k])
	}
	if len(s.Result.Anomalies) > 0 {
		p("\n")
		for _, a := range s.Result.Anomalies {
			p("- %s: %s\n", a.Kind, a.Detail)
		}
	}

	p("\n## Timeline\n\n")
	for _, f := range s.Faults {
		rec := "not recovered"
		if f.Recovered {
			rec = fmt.Sprintf("recovered in %.1f s", f.Recovery.Seconds())
		}
		p("- %s %s on %s (%s): %s\n", f.Start.Format(time.TimeOnly), f.Name, f.Target, f.Note, rec)
	}
	return b.String()
}

func lifecycleLine(m map[string]float64) string {
	var parts []string
	for _, k := range lifecycleMetrics {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %.0f", strings.TrimPrefix(k, "silt_"), v))
		}
	}
	return strings.Join(parts, ", ")
}
