package faults

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Kind is a kind of anomaly.
type Kind string

// The anomalies Check looks for.
const (
	// Lost: an acknowledged record is nowhere in the log.
	Lost Kind = "lost"
	// Duplicated: one value at two offsets.
	Duplicated Kind = "duplicated"
	// InconsistentOffset: a record acknowledged at an offset that holds
	// another value (the acknowledged value is elsewhere).
	InconsistentOffset Kind = "inconsistent-offset"
	// NonMonotonic: offsets not strictly increasing in a read of a
	// partition or in one poll of one partition.
	NonMonotonic Kind = "non-monotonic"
	// WatermarkMismatch: agents report different high watermarks for a
	// partition after the cluster settled.
	WatermarkMismatch Kind = "watermark-mismatch"
	// DivergentRead: agents return different records for a partition.
	DivergentRead Kind = "divergent-read"
	// CommitRegression: the group's committed offset of a partition
	// moved back (between two samples, or below what a commit the
	// coordinator had accepted set before the sample was asked).
	CommitRegression Kind = "committed-offset-regression"
	// PollSkip: a member's consecutive polls of a partition within one
	// assignment skipped offsets that exist, or the group passed an
	// acknowledged record without any member ever polling it.
	PollSkip Kind = "poll-skip"
	// ClientError: a client handed the application an error that is not
	// retriable (or gave up on a produce).
	ClientError Kind = "client-error"
	// AbortedRead: a read_committed read returned an output of an
	// aborted transaction.
	AbortedRead Kind = "aborted-read"
	// CommittedMissing: an output of a committed transaction is not in
	// the read_committed log.
	CommittedMissing Kind = "committed-missing"
	// NotExactlyOnce: an input's transformed output is in the
	// read_committed log more than once, or not at all although the
	// pipeline's group committed past the input.
	NotExactlyOnce Kind = "not-exactly-once"
	// NamedDead: an agent sent clients (as broker, partition leader or
	// group coordinator) to an agent whose lease had expired.
	NamedDead Kind = "named-dead-agent"
	// Crash: a process exited without the suite stopping it.
	Crash Kind = "crash"
	// Unrecovered: after a fault was healed the cluster did not serve
	// producers and the group again within the deadline.
	Unrecovered Kind = "unrecovered"
	// ReadError: a partition could not be read through an agent after
	// the cluster settled.
	ReadError Kind = "read-error"
)

// Kinds lists every kind, in report order.
var Kinds = []Kind{Lost, Duplicated, InconsistentOffset, NonMonotonic, WatermarkMismatch, DivergentRead,
	CommitRegression, PollSkip, ClientError, AbortedRead, CommittedMissing, NotExactlyOnce, NamedDead, Crash, Unrecovered, ReadError}

// Anomaly is one finding.
type Anomaly struct {
	Kind   Kind
	Detail string
}

// Observed is what the suite read once the cluster had settled.
type Observed struct {
	// Reads holds, per agent, every partition of the workload's topic
	// read from its start (read_uncommitted).
	Reads map[string]map[int32]PartitionRead
	// TxnOutput holds, per agent, every partition of the pipeline's
	// output topic read with read_committed (nil: no pipeline ran).
	TxnOutput map[string]map[int32]PartitionRead
	// TxnCommitted is the pipeline group's committed offsets on the
	// input topic.
	TxnCommitted map[int32]int64
	// GroupDrained reports that the workload's group committed the end
	// of every partition before its members stopped: only then must
	// every acknowledged record have been polled.
	GroupDrained bool
}

// PartitionRead is one partition as read through one agent.
type PartitionRead struct {
	LogStart      int64
	HighWatermark int64
	Records       []Record
	Err           string // the read failed
}

// Record is one record of a read.
type Record struct {
	Offset int64
	Value  string
}

// Result is Check's verdict.
type Result struct {
	Anomalies []Anomaly // at most maxDetails of each kind
	Counts    map[Kind]int
}

// maxDetails bounds the anomalies of one kind kept with their details.
const maxDetails = 25

func (r *Result) add(k Kind, format string, args ...any) {
	r.Counts[k]++
	if r.Counts[k] <= maxDetails {
		r.Anomalies = append(r.Anomalies, Anomaly{Kind: k, Detail: fmt.Sprintf(format, args...)})
	}
}

// Total is the number of anomalies of every kind.
func (r *Result) Total() int {
	n := 0
	for _, c := range r.Counts {
		n += c
	}
	return n
}

// location is where a value sits in the log.
type location struct {
	partition int32
	offset    int64
}

// Check compares what the clients observed with what the cluster holds.
func Check(h *History, o *Observed) *Result {
	r := &Result{Counts: map[Kind]int{}}
	agents := slices.Sorted(maps.Keys(o.Reads))

	for _, c := range h.Crashes {
		r.add(Crash, "%s", c)
	}
	for _, d := range h.DeadNamed {
		r.add(NamedDead, "%s", d)
	}
	for _, f := range h.Faults {
		if !f.Recovered {
			r.add(Unrecovered, "%s on %s (healed at %s): %s", f.Name, f.Target, f.Healed.Format(time.TimeOnly), f.Note)
		}
	}

	// Per agent: reads that failed, offsets out of order; across
	// agents: watermarks and records that differ. The first agent whose
	// reads all succeeded is the reference log.
	var ref map[int32]PartitionRead
	refAgent := ""
	for _, a := range agents {
		ok := true
		for _, p := range slices.Sorted(maps.Keys(o.Reads[a])) {
			pr := o.Reads[a][p]
			if pr.Err != "" {
				r.add(ReadError, "partition %d through agent %s: %s", p, a, pr.Err)
				ok = false
				continue
			}
			for i := 1; i < len(pr.Records); i++ {
				if pr.Records[i].Offset <= pr.Records[i-1].Offset {
					r.add(NonMonotonic, "agent %s, partition %d: offset %d follows %d", a, p, pr.Records[i].Offset, pr.Records[i-1].Offset)
				}
			}
		}
		if ok && ref == nil {
			ref, refAgent = o.Reads[a], a
		}
	}
	if ref == nil {
		r.add(ReadError, "no agent could read every partition")
		ref = map[int32]PartitionRead{}
	}
	for _, a := range agents {
		if a == refAgent {
			continue
		}
		for _, p := range slices.Sorted(maps.Keys(ref)) {
			want, got := ref[p], o.Reads[a][p]
			if got.Err != "" {
				continue
			}
			if got.HighWatermark != want.HighWatermark {
				r.add(WatermarkMismatch, "partition %d: agent %s reports high watermark %d, agent %s %d", p, refAgent, want.HighWatermark, a, got.HighWatermark)
			}
			if i := firstDifference(want.Records, got.Records); i >= 0 {
				r.add(DivergentRead, "partition %d: agent %s and agent %s differ from record %d on (%s / %s)", p, refAgent, a, i, recordAt(want.Records, i), recordAt(got.Records, i))
			}
		}
	}

	// The reference log: where each value is.
	where := map[string][]location{}
	at := map[location]string{}
	for p, pr := range ref {
		for _, rec := range pr.Records {
			loc := location{p, rec.Offset}
			where[rec.Value] = append(where[rec.Value], loc)
			at[loc] = rec.Value
		}
	}
	for v, locs := range where {
		if len(locs) > 1 {
			r.add(Duplicated, "value %q at %s", v, formatLocations(locs))
		}
	}
	acked := map[string]bool{}
	for _, a := range h.Acks {
		acked[a.Value] = true
		loc := location{a.Partition, a.Offset}
		switch got, ok := at[loc]; {
		case ok && got == a.Value:
		case len(where[a.Value]) == 0:
			r.add(Lost, "%s acknowledged at partition %d offset %d (%s) is not in the log (offset holds %q)", a.Value, a.Partition, a.Offset, a.At.Format(time.TimeOnly), got)
		default:
			r.add(InconsistentOffset, "%s acknowledged at partition %d offset %d (%s) is at %s; the offset holds %q", a.Value, a.Partition, a.Offset, a.At.Format(time.TimeOnly), formatLocations(where[a.Value]), got)
		}
	}

	checkPolls(r, h, ref, acked, o.GroupDrained)
	checkCommits(r, h)

	for _, e := range h.ProduceErrors {
		r.add(ClientError, "producer %s gave up on %s at %s: %s", e.Producer, e.Value, e.At.Format(time.TimeOnly), e.Err)
	}
	for _, e := range h.AppErrors {
		if !e.Retriable {
			r.add(ClientError, "%s at %s: %s", e.Client, e.At.Format(time.TimeOnly), e.Err)
		}
	}
	if o.TxnOutput != nil {
		checkTxns(r, h, o, ref)
	}
	return r
}

// checkPolls looks for skips: within one assignment, a member's next
// poll of a partition must start right after the last offset it polled
// unless the offsets between do not exist; and once the group drained,
// every acknowledged record must have been polled. It also requires
// offsets in each poll to increase.
func checkPolls(r *Result, h *History, ref map[int32]PartitionRead, acked map[string]bool, drained bool) {
	type key struct {
		member    string
		epoch     int
		partition int32
	}
	last := map[key]int64{}
	polled := map[string]bool{}
	for _, pl := range h.Polls {
		for _, pp := range pl.Partitions {
			for i := 1; i < len(pp.Offsets); i++ {
				if pp.Offsets[i] <= pp.Offsets[i-1] {
					r.add(NonMonotonic, "member %s polled partition %d offset %d after %d in one poll (%s)", pl.Member, pp.Partition, pp.Offsets[i], pp.Offsets[i-1], pl.At.Format(time.TimeOnly))
				}
			}
			for _, v := range pp.Values {
				polled[v] = true
			}
			if len(pp.Offsets) == 0 {
				continue
			}
			k := key{pl.Member, pl.Epoch, pp.Partition}
			if prev, ok := last[k]; ok && pp.Offsets[0] > prev+1 {
				if missed := existingBetween(ref[pp.Partition].Records, prev, pp.Offsets[0]); missed > 0 {
					r.add(PollSkip, "member %s, partition %d, one assignment: polled offset %d after %d, skipping %d records (%s)", pl.Member, pp.Partition, pp.Offsets[0], prev, missed, pl.At.Format(time.TimeOnly))
				}
			}
			last[k] = pp.Offsets[len(pp.Offsets)-1]
		}
	}
	if !drained {
		return
	}
	for _, a := range h.Acks {
		if !polled[a.Value] {
			r.add(PollSkip, "%s acknowledged at partition %d offset %d was never polled by the group, which committed past it", a.Value, a.Partition, a.Offset)
		}
	}
}

// checkCommits requires committed offsets never to move back: from one
// sample to a later one, and below an offset the coordinator accepted
// before the sample was asked.
func checkCommits(r *Result, h *History) {
	samples := slices.Clone(h.Samples)
	sort.SliceStable(samples, func(i, j int) bool { return samples[i].Start.Before(samples[j].Start) })
	high := map[int32]int64{}
	highAt := map[int32]time.Time{}
	for _, s := range samples {
		for _, p := range slices.Sorted(maps.Keys(s.Offsets)) {
			o := s.Offsets[p]
			if prev, ok := high[p]; ok && o < prev && s.Start.After(highAt[p]) {
				r.add(CommitRegression, "partition %d: committed offset %d asked at %s, after %d was answered at %s", p, o, s.Start.Format(time.TimeOnly), prev, highAt[p].Format(time.TimeOnly))
			}
			if o > high[p] || highAt[p].IsZero() {
				high[p], highAt[p] = o, s.At
			}
		}
	}
	commits := slices.Clone(h.Commits)
	sort.SliceStable(commits, func(i, j int) bool { return commits[i].At.Before(commits[j].At) })
	// For each sample, the highest accepted commit answered before it
	// was asked.
	ci := 0
	accepted := map[int32]Commit{}
	for _, s := range samples {
		for ; ci < len(commits) && commits[ci].At.Before(s.Start); ci++ {
			c := commits[ci]
			if c.Err == "" && c.Offset > accepted[c.Partition].Offset {
				accepted[c.Partition] = c
			}
		}
		for _, p := range slices.Sorted(maps.Keys(accepted)) {
			c := accepted[p]
			if o, ok := s.Offsets[p]; !ok || o < c.Offset {
				r.add(CommitRegression, "partition %d: committed offset %s asked at %s, after member %s's commit of %d was accepted at %s", p, sampleOffset(s, p), s.Start.Format(time.TimeOnly), c.Member, c.Offset, c.At.Format(time.TimeOnly))
				delete(accepted, p) // reported once
			}
		}
	}
}

func sampleOffset(s OffsetSample, p int32) string {
	if o, ok := s.Offsets[p]; ok {
		return fmt.Sprint(o)
	}
	return "none"
}

// checkTxns checks the pipeline's outputs in the read_committed log:
// committed transactions' outputs once each, aborted ones' never, and
// every input the pipeline's group committed past transformed exactly
// once.
func checkTxns(r *Result, h *History, o *Observed, ref map[int32]PartitionRead) {
	agents := slices.Sorted(maps.Keys(o.TxnOutput))
	count := map[string]int{}
	for _, a := range agents {
		reads := o.TxnOutput[a]
		failed := false
		for _, p := range slices.Sorted(maps.Keys(reads)) {
			if reads[p].Err != "" {
				r.add(ReadError, "output partition %d through agent %s: %s", p, a, reads[p].Err)
				failed = true
			}
		}
		if failed {
			continue
		}
		for _, pr := range reads {
			for _, rec := range pr.Records {
				count[rec.Value]++
			}
		}
		break // the first agent that read everything; the others must agree (divergent reads are checked on the input)
	}
	for _, t := range h.Txns {
		for _, v := range t.Outputs {
			switch {
			case t.Outcome == TxnCommitted && count[v] == 0:
				r.add(CommittedMissing, "transaction %s#%d committed output %q, which read_committed does not return", t.Producer, t.Seq, v)
			case t.Outcome == TxnAborted && count[v] > 0:
				r.add(AbortedRead, "transaction %s#%d aborted, yet read_committed returns its output %q", t.Producer, t.Seq, v)
			}
		}
	}
	for v, n := range count {
		if n > 1 {
			r.add(NotExactlyOnce, "output %q is in the read_committed log %d times", v, n)
		}
	}
	// Every input below the pipeline's committed offsets has its output.
	for _, p := range slices.Sorted(maps.Keys(ref)) {
		for _, rec := range ref[p].Records {
			if rec.Offset >= o.TxnCommitted[p] {
				break
			}
			if count[TransformValue(rec.Value)] == 0 {
				r.add(NotExactlyOnce, "input %q (partition %d offset %d) is below the pipeline's committed offset %d, but its output is not in the read_committed log", rec.Value, p, rec.Offset, o.TxnCommitted[p])
			}
		}
	}
}

// TransformValue is the pipeline's transformation of an input value.
func TransformValue(v string) string { return "t:" + v }

// existingBetween counts the records of recs with offsets strictly
// between lo and hi.
func existingBetween(recs []Record, lo, hi int64) int {
	i := sort.Search(len(recs), func(i int) bool { return recs[i].Offset > lo })
	j := sort.Search(len(recs), func(i int) bool { return recs[i].Offset >= hi })
	return max(0, j-i)
}

// firstDifference is the index of the first record where a and b
// differ, or -1.
func firstDifference(a, b []Record) int {
	for i := range max(len(a), len(b)) {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return -1
}

func recordAt(recs []Record, i int) string {
	if i >= len(recs) {
		return "end"
	}
	return fmt.Sprintf("offset %d %q", recs[i].Offset, recs[i].Value)
}

func formatLocations(locs []location) string {
	parts := make([]string, len(locs))
	for i, l := range locs {
		parts[i] = fmt.Sprintf("partition %d offset %d", l.partition, l.offset)
	}
	return strings.Join(parts, ", ")
}
