package faults

import (
	"testing"
	"time"
)

// cleanRun is a small history and final state without anomalies: two
// partitions read identically through two agents, everything
// acknowledged polled and committed in order, one transaction of the
// pipeline committed and one aborted.
func cleanRun() (*History, *Observed) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	log := map[int32]PartitionRead{
		0: {HighWatermark: 3, Records: []Record{{0, "a"}, {1, "b"}, {2, "c"}}},
		1: {HighWatermark: 2, Records: []Record{{0, "d"}, {1, "e"}}},
	}
	out := map[int32]PartitionRead{
		0: {HighWatermark: 5, Records: []Record{{0, "t:a"}, {1, "t:b"}, {3, "t:d"}}},
	}
	h := &History{
		Acks: []Ack{
			{Producer: "p0", Partition: 0, Offset: 0, Value: "a", At: at(1)},
			{Producer: "p0", Partition: 0, Offset: 1, Value: "b", At: at(1)},
			{Producer: "p1", Partition: 1, Offset: 0, Value: "d", At: at(1)},
			{Producer: "p0", Partition: 0, Offset: 2, Value: "c", At: at(2)},
			{Producer: "p1", Partition: 1, Offset: 1, Value: "e", At: at(2)},
		},
		Polls: []Poll{
			{Member: "m0", Epoch: 1, At: at(2), Partitions: []PolledPartition{{0, []int64{0, 1}, []string{"a", "b"}}}},
			{Member: "m1", Epoch: 1, At: at(2), Partitions: []PolledPartition{{1, []int64{0}, []string{"d"}}}},
			{Member: "m0", Epoch: 1, At: at(3), Partitions: []PolledPartition{{0, []int64{2}, []string{"c"}}}},
			// A new assignment may start anywhere (its committed offset).
			{Member: "m1", Epoch: 2, At: at(4), Partitions: []PolledPartition{{1, []int64{1}, []string{"e"}}}},
		},
		Commits: []Commit{
			{Member: "m0", Partition: 0, Offset: 2, At: at(2)},
			{Member: "m1", Partition: 1, Offset: 1, At: at(2)},
			{Member: "m0", Partition: 0, Offset: 3, At: at(3)},
			{Member: "m1", Partition: 1, Offset: 2, At: at(4)},
			// A refused commit constrains nothing.
			{Member: "m9", Partition: 1, Offset: 7, At: at(4), Err: "ILLEGAL_GENERATION"},
		},
		Samples: []OffsetSample{
			{Start: at(1), At: at(1), Offsets: map[int32]int64{}},
			{Start: at(2).Add(time.Millisecond), At: at(3), Offsets: map[int32]int64{0: 2, 1: 1}},
			{Start: at(5), At: at(5), Offsets: map[int32]int64{0: 3, 1: 2}},
		},
		AppErrors: []AppError{{Client: "m0", Err: "NOT_COORDINATOR", Retriable: true, At: at(3)}},
		Txns: []Txn{
			{Producer: "x", Seq: 1, Inputs: []Input{{0, 0, "a"}, {0, 1, "b"}}, Outputs: []string{"t:a", "t:b"}, Outcome: TxnCommitted, At: at(3)},
			{Producer: "x", Seq: 2, Inputs: []Input{{0, 2, "c"}}, Outputs: []string{"t:c"}, Outcome: TxnAborted, At: at(4)},
			{Producer: "x", Seq: 3, Inputs: []Input{{1, 0, "d"}}, Outputs: []string{"t:d"}, Outcome: TxnCommitted, At: at(5)},
		},
		Faults: []Fault{{Name: "kill-agent", Target: "a", Start: at(1), Healed: at(2), Recovered: true, Recovery: time.Second}},
	}
	o := &Observed{
		Reads:        map[string]map[int32]PartitionRead{"a": log, "b": clonePartitions(log)},
		TxnOutput:    map[string]map[int32]PartitionRead{"a": out, "b": clonePartitions(out)},
		TxnCommitted: map[int32]int64{0: 2, 1: 1},
		GroupDrained: true,
	}
	return h, o
}

func clonePartitions(m map[int32]PartitionRead) map[int32]PartitionRead {
	out := map[int32]PartitionRead{}
	for p, pr := range m {
		pr.Records = append([]Record(nil), pr.Records...)
		out[p] = pr
	}
	return out
}

// TestChecker feeds Check a clean history, which must pass, and doctored
// ones, each of which must be reported as its anomaly kind: a checker
// that never fails proves nothing.
func TestChecker(t *testing.T) {
	h, o := cleanRun()
	if r := Check(h, o); r.Total() != 0 {
		t.Fatalf("clean history: %d anomalies: %v", r.Total(), r.Anomalies)
	}
	cases := []struct {
		kind   Kind
		doctor func(h *History, o *Observed)
	}{
		{Lost, func(h *History, o *Observed) {
			h.Acks = append(h.Acks, Ack{Producer: "p0", Partition: 0, Offset: 3, Value: "z"})
		}},
		{Duplicated, func(h *History, o *Observed) {
			for _, a := range []string{"a", "b"} {
				pr := o.Reads[a][1]
				pr.Records = append(pr.Records, Record{2, "a"})
				pr.HighWatermark = 3
				o.Reads[a][1] = pr
			}
		}},
		{InconsistentOffset, func(h *History, o *Observed) { h.Acks[1].Offset = 2 }},
		{NonMonotonic, func(h *History, o *Observed) {
			h.Polls = append(h.Polls, Poll{Member: "m2", Epoch: 1, Partitions: []PolledPartition{{0, []int64{2, 1}, []string{"c", "b"}}}})
		}},
		{NonMonotonic, func(h *History, o *Observed) {
			pr := o.Reads["b"][0]
			pr.Records[1], pr.Records[2] = pr.Records[2], pr.Records[1]
		}},
		{WatermarkMismatch, func(h *History, o *Observed) {
			pr := o.Reads["b"][1]
			pr.HighWatermark = 3
			o.Reads["b"][1] = pr
		}},
		{DivergentRead, func(h *History, o *Observed) { o.Reads["b"][0].Records[1].Value = "x" }},
		{CommitRegression, func(h *History, o *Observed) {
			h.Samples = append(h.Samples, OffsetSample{Start: h.Samples[2].At.Add(time.Second), At: h.Samples[2].At.Add(time.Second), Offsets: map[int32]int64{0: 1, 1: 2}})
		}},
		{CommitRegression, func(h *History, o *Observed) {
			// The sample was asked after the commit of 3 was accepted.
			h.Samples[1].Offsets[0] = 2
			h.Commits = append(h.Commits, Commit{Member: "m0", Partition: 0, Offset: 3, At: h.Samples[1].Start.Add(-time.Microsecond)})
		}},
		{PollSkip, func(h *History, o *Observed) {
			h.Polls[0].Partitions[0] = PolledPartition{0, []int64{0}, []string{"a"}}
		}},
		{PollSkip, func(h *History, o *Observed) { h.Polls = h.Polls[:3] }}, // "e" never polled
		{ClientError, func(h *History, o *Observed) {
			h.AppErrors = append(h.AppErrors, AppError{Client: "m1", Err: "UNKNOWN_TOPIC_OR_PARTITION"})
		}},
		{ClientError, func(h *History, o *Observed) {
			h.ProduceErrors = append(h.ProduceErrors, ProduceError{Producer: "p0", Value: "f", Err: "INVALID_RECORD"})
		}},
		{AbortedRead, func(h *History, o *Observed) {
			for _, a := range []string{"a", "b"} {
				pr := o.TxnOutput[a][0]
				pr.Records = append(pr.Records, Record{5, "t:c"})
				o.TxnOutput[a][0] = pr
			}
		}},
		{CommittedMissing, func(h *History, o *Observed) {
			for _, a := range []string{"a", "b"} {
				pr := o.TxnOutput[a][0]
				pr.Records = pr.Records[:2]
				o.TxnOutput[a][0] = pr
			}
		}},
		{NotExactlyOnce, func(h *History, o *Observed) {
			for _, a := range []string{"a", "b"} {
				pr := o.TxnOutput[a][0]
				pr.Records = append(pr.Records, Record{6, "t:a"})
				o.TxnOutput[a][0] = pr
			}
		}},
		{NotExactlyOnce, func(h *History, o *Observed) {
			// The pipeline committed past "c" (offset 2), whose
			// transaction aborted and was never redone.
			o.TxnCommitted[0] = 3
		}},
		{NamedDead, func(h *History, o *Observed) { h.DeadNamed = append(h.DeadNamed, "agent a named node 2 as leader") }},
		{Crash, func(h *History, o *Observed) { h.Crashes = append(h.Crashes, "agent a exited unasked") }},
		{Unrecovered, func(h *History, o *Observed) { h.Faults[0].Recovered = false }},
		{ReadError, func(h *History, o *Observed) {
			pr := o.Reads["a"][1]
			pr.Err = "NOT_LEADER_OR_FOLLOWER"
			o.Reads["a"][1] = pr
		}},
	}
	seen := map[Kind]bool{}
	for _, c := range cases {
		h, o := cleanRun()
		c.doctor(h, o)
		r := Check(h, o)
		if r.Counts[c.kind] == 0 {
			t.Errorf("doctored for %s: not reported; got %v", c.kind, r.Anomalies)
			continue
		}
		seen[c.kind] = true
		t.Logf("%s: %v", c.kind, r.Anomalies)
	}
	for _, k := range Kinds {
		if !seen[k] {
			t.Errorf("no doctored history shows %s", k)
		}
	}
}
