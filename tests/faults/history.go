// Package faults is a Jepsen-style fault suite for a silt cluster: real
// Postgres, real MinIO and several `silt agent` processes, each agent
// reaching Postgres and MinIO through a proxy of its own, under a
// workload of real Kafka clients (idempotent producers, a consumer group
// committing after every poll, a sampler of the group's committed
// offsets, and, where the agents support transactions, a transactional
// consume-transform-produce pipeline), while a nemesis applies one fault
// at a time: agents killed or paused past their lease, the group
// coordinator paused, MinIO paused or killed, Postgres crashed, one
// agent's link to Postgres or MinIO cut or slowed.
//
// Everything the clients observe is recorded in a History. After the
// faults are healed and the cluster has settled, every partition is read
// from its start through every agent, and Check looks for anomalies:
// acknowledged records lost, duplicated or at another offset, offsets
// out of order, agents disagreeing, committed offsets moving back,
// consumers skipping records, client errors that are not retriable,
// transactional outputs not exactly once, processes that crashed and
// faults the cluster did not recover from.
//
// TestFaults runs it (briefly under `go test`, each fault once; `make
// faults` for a long run, see the flags in faults_test.go); TestChecker
// feeds Check doctored histories and requires each anomaly kind to be
// reported.
package faults

import (
	"sync"
	"time"
)

// History is what the workload's clients and the nemesis observed. Every
// method is safe for concurrent use; the checker reads the fields once
// the workload has stopped.
type History struct {
	mu sync.Mutex // mu guards every field

	Acks          []Ack
	ProduceErrors []ProduceError
	Polls         []Poll
	Commits       []Commit
	Samples       []OffsetSample
	AppErrors     []AppError
	Txns          []Txn
	Faults        []Fault
	// Crashes are processes that exited without the suite stopping them.
	Crashes []string
	// DeadNamed are answers of agents that named an agent whose lease
	// had expired (see probe).
	DeadNamed []string
}

// Ack is one acknowledged record.
type Ack struct {
	Producer  string
	Partition int32
	Offset    int64
	Value     string
	At        time.Time
}

// ProduceError is one record whose produce failed, as the application
// saw it (the client gave up on it).
type ProduceError struct {
	Producer string
	Value    string
	Err      string
	At       time.Time
}

// Poll is what one poll of one group member returned.
type Poll struct {
	Member string
	// Epoch counts the member's assignments: it changes whenever
	// partitions are assigned, revoked or lost, so two polls with the
	// same epoch are within one assignment.
	Epoch      int
	At         time.Time
	Partitions []PolledPartition
}

// PolledPartition is one partition's records in a poll, in the order the
// client returned them.
type PolledPartition struct {
	Partition int32
	Offsets   []int64
	Values    []string
}

// Commit is the outcome of one partition's offset in an OffsetCommit a
// member sent after processing a poll.
type Commit struct {
	Member    string
	Partition int32
	Offset    int64
	Err       string // "" when the coordinator accepted it
	At        time.Time
}

// OffsetSample is the group's committed offsets as OffsetFetch answered
// them, asked at Start and answered at At.
type OffsetSample struct {
	Start, At time.Time
	Offsets   map[int32]int64
}

// AppError is an error a client handed to the application (a poll
// error, a failed commit request, a transaction error).
type AppError struct {
	Client    string
	Err       string
	Retriable bool
	At        time.Time
}

// TxnOutcome is how a transaction ended, as its producer saw it.
type TxnOutcome string

// Transaction outcomes.
const (
	TxnCommitted TxnOutcome = "committed"
	TxnAborted   TxnOutcome = "aborted"
	// TxnUnknown: the end of the transaction failed in a way that
	// leaves its outcome unknown to the producer.
	TxnUnknown TxnOutcome = "unknown"
)

// Txn is one transaction of the consume-transform-produce pipeline: the
// input records it consumed and the outputs it produced for them.
type Txn struct {
	Producer string
	Seq      int
	Inputs   []Input
	Outputs  []string
	Outcome  TxnOutcome
	At       time.Time
}

// Input is one consumed input record.
type Input struct {
	Partition int32
	Offset    int64
	Value     string
}

// Fault is one nemesis action, from its start to its heal, and how long
// the cluster took to recover after the heal (Recovered false: it did
// not within the deadline).
type Fault struct {
	Name      string
	Target    string
	Start     time.Time
	Healed    time.Time
	Recovered bool
	Recovery  time.Duration
	// ProduceStall is the longest time, from the fault's start until it
	// had recovered, that some partition went without an
	// acknowledgement; CommitStall the longest without any accepted
	// offset commit of the group.
	ProduceStall time.Duration
	CommitStall  time.Duration
	Note         string
}

func (h *History) lock() func() {
	h.mu.Lock()
	return h.mu.Unlock
}

// AddAck records an acknowledgement; its time is taken under the lock,
// so Acks are in time order.
func (h *History) AddAck(a Ack) {
	defer h.lock()()
	a.At = time.Now()
	h.Acks = append(h.Acks, a)
}

// AddProduceError records a failed produce.
func (h *History) AddProduceError(e ProduceError) {
	defer h.lock()()
	h.ProduceErrors = append(h.ProduceErrors, e)
}

// AddPoll records a poll.
func (h *History) AddPoll(p Poll) { defer h.lock()(); h.Polls = append(h.Polls, p) }

// AddCommits records a commit's outcomes.
func (h *History) AddCommits(cs ...Commit) { defer h.lock()(); h.Commits = append(h.Commits, cs...) }

// AddSample records a committed-offsets sample.
func (h *History) AddSample(s OffsetSample) { defer h.lock()(); h.Samples = append(h.Samples, s) }

// AddAppError records an error handed to the application.
func (h *History) AddAppError(e AppError) {
	defer h.lock()()
	h.AppErrors = append(h.AppErrors, e)
}

// AddTxn records a finished transaction.
func (h *History) AddTxn(t Txn) { defer h.lock()(); h.Txns = append(h.Txns, t) }

// AddFault records a fault once it was healed.
func (h *History) AddFault(f Fault) { defer h.lock()(); h.Faults = append(h.Faults, f) }

// AddCrash records a process that exited unasked.
func (h *History) AddCrash(msg string) { defer h.lock()(); h.Crashes = append(h.Crashes, msg) }

// AddDeadNamed records an agent naming a dead agent.
func (h *History) AddDeadNamed(msg string) { defer h.lock()(); h.DeadNamed = append(h.DeadNamed, msg) }

// AckCount is the number of acknowledgements so far.
func (h *History) AckCount() int { defer h.lock()(); return len(h.Acks) }

// AckedPartitionsSince returns the partitions that got an
// acknowledgement at or after t.
func (h *History) AckedPartitionsSince(t time.Time) map[int32]bool {
	defer h.lock()()
	out := map[int32]bool{}
	for i := len(h.Acks) - 1; i >= 0 && !h.Acks[i].At.Before(t); i-- {
		out[h.Acks[i].Partition] = true
	}
	return out
}

// AckedPartitions returns every partition that ever got an
// acknowledgement.
func (h *History) AckedPartitions() map[int32]bool {
	defer h.lock()()
	out := map[int32]bool{}
	for _, a := range h.Acks {
		out[a.Partition] = true
	}
	return out
}

// LatestSample returns the newest committed-offsets sample (ok false
// when there is none).
func (h *History) LatestSample() (OffsetSample, bool) {
	defer h.lock()()
	if len(h.Samples) == 0 {
		return OffsetSample{}, false
	}
	return h.Samples[len(h.Samples)-1], true
}

// Stalls measures, over [from, to], the longest time some partition (of
// those that were ever acknowledged) went without an acknowledgement, and
// the longest time without an accepted commit.
func (h *History) Stalls(from, to time.Time) (produce, commit time.Duration) {
	defer h.lock()()
	last := map[int32]time.Time{}
	for _, a := range h.Acks {
		last[a.Partition] = from
	}
	gap := func(prev *time.Time, at time.Time, worst *time.Duration) {
		if d := at.Sub(*prev); d > *worst {
			*worst = d
		}
		*prev = at
	}
	for _, a := range h.Acks {
		if a.At.Before(from) || a.At.After(to) {
			continue
		}
		prev := last[a.Partition]
		gap(&prev, a.At, &produce)
		last[a.Partition] = prev
	}
	for p := range last {
		prev := last[p]
		gap(&prev, to, &produce)
	}
	prev := from
	for _, c := range h.Commits {
		if c.Err != "" || c.At.Before(from) || c.At.After(to) {
			continue
		}
		if c.At.After(prev) {
			gap(&prev, c.At, &commit)
		}
	}
	gap(&prev, to, &commit)
	return produce, commit
}

// TxnCount is the number of finished transactions.
func (h *History) TxnCount() int { defer h.lock()(); return len(h.Txns) }
