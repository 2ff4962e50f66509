package e2e

// Transactions with real clients: franz-go's consume-transform-produce
// (GroupTransactSession) exactly once under SIGKILLs of the consuming
// member and of the transaction coordinator's agent, on both backends.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/tests/harness"
)

// txnWorkerEnv names, in the environment of a re-executed test binary, the
// ETL worker to run instead of the tests (runTxnWorker).
const txnWorkerEnv = "SILT_E2E_TXN_WORKER"

// txnWorkerFlags make expired transactions abort within about a second of
// their timeout.
var txnWorkerFlags = []string{"--transaction-abort-interval", "500ms"}

// txnWorker is one consume-transform-produce member in a process of its
// own (this test binary, re-executed), so that the test can SIGKILL it.
type txnWorker struct {
	t    testing.TB
	id   string
	cmd  *exec.Cmd
	mu   sync.Mutex    // mu guards the fields below
	open chan struct{} // receives when the worker has produced into an open transaction
	ends int           // transactions committed
	// restarts counts the sessions ended by an error (runTxnWorker).
	restarts int
	errs     []string
	done     chan struct{}
	// killed is set when the test killed the worker.
	killed bool
}

// startTxnWorker runs a worker with transactional id id and transaction
// timeout timeout, consuming in into group and writing "t-<value>" to out.
func startTxnWorker(t testing.TB, seeds []string, id string, timeout time.Duration, group, in, out string) *txnWorker {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), txnWorkerEnv+"="+strings.Join([]string{strings.Join(seeds, ","), id, group, in, out, timeout.String()}, ";"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &txnWorker{t: t, id: id, cmd: cmd, open: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "open":
				select {
				case w.open <- struct{}{}:
				default:
				}
			case strings.HasPrefix(line, "restart"):
				w.t.Logf("worker %s %s", id, line)
				w.mu.Lock()
				w.restarts++
				w.mu.Unlock()
			case strings.HasPrefix(line, "committed"):
				w.mu.Lock()
				w.ends++
				w.mu.Unlock()
			case strings.HasPrefix(line, "error"):
				w.mu.Lock()
				w.errs = append(w.errs, line)
				w.mu.Unlock()
			}
		}
		err := cmd.Wait()
		w.mu.Lock()
		if !w.killed {
			w.errs = append(w.errs, fmt.Sprintf("worker %s exited: %v\n%s", id, err, stderr.String()))
		}
		w.mu.Unlock()
	}()
	t.Cleanup(func() {
		w.kill()
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, e := range w.errs {
			t.Errorf("worker %s: %s", id, e)
		}
	})
	return w
}

// kill SIGKILLs the worker and waits for it to be gone.
func (w *txnWorker) kill() {
	w.mu.Lock()
	w.killed = true
	w.mu.Unlock()
	_ = w.cmd.Process.Kill()
	<-w.done
}

// waitOpen waits until the worker has produced into a transaction it has
// not ended yet.
func (w *txnWorker) waitOpen(ctx context.Context) {
	w.t.Helper()
	select {
	case <-w.open:
	case <-ctx.Done():
		w.t.Fatalf("worker %s never had an open transaction", w.id)
	}
	// Drain a stale signal: the next one is from now on.
}

// runTxnWorker is the worker process: a franz-go GroupTransactSession
// that reads a batch, writes each value transformed, and ends the
// transaction; it prints "open" once a transaction's records are written
// and it is about to end it (the test's moment to kill), "committed" after
// a commit, and "error ..." for an error the session did not absorb.
//
// franz-go documents an error from End as final for the session ("odds
// are you should not continue"): a supervised application exits and is
// restarted. The worker does that in-process, closing the session and
// opening a new one with the same transactional id, which fences the old
// producer and aborts what it left open; it prints "restart ...". One
// such error is expected when the agent coordinating the transaction is
// killed: until the cluster stops naming the dead agent (its lease, as
// Kafka's broker session timeout), franz-go may exhaust its coordinator
// lookups on it.
func runTxnWorker(spec string) int {
	parts := strings.Split(spec, ";")
	seeds, id, group, in, out := strings.Split(parts[0], ","), parts[1], parts[2], parts[3], parts[4]
	timeout, err := time.ParseDuration(parts[5])
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	for restarts := 0; ; restarts++ {
		err := runTxnSession(seeds, id, group, in, out, timeout)
		if restarts == 3 {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("restart", err)
	}
}

// runTxnSession runs one session of runTxnWorker until it fails.
func runTxnSession(seeds []string, id, group, in, out string, timeout time.Duration) error {
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("txn-worker-"+id),
		kgo.TransactionalID(id),
		kgo.TransactionTimeout(timeout),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.DefaultProduceTopic(out),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.RebalanceTimeout(10*time.Second),
		kgo.MetadataMinAge(500*time.Millisecond),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil)),
	)
	if err != nil {
		return err
	}
	defer sess.Close()
	ctx := context.Background()
	for {
		fs := sess.PollRecords(ctx, 40)
		if errs := fs.Errors(); len(errs) > 0 {
			fmt.Println("poll errors", errs) // retried by the session
		}
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: append([]byte("t-"), r.Value...)}, nil)
		})
		if err := sess.Client().Flush(ctx); err == nil {
			fmt.Println("open")
			time.Sleep(30 * time.Millisecond)
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		switch {
		case err != nil:
			return fmt.Errorf("end: %w", err)
		case committed:
			fmt.Println("committed")
		default:
			fmt.Println("aborted")
		}
	}
}

// readCommittedValues reads topic read_committed from the start up to its
// last stable offsets and returns every value read (control records
// skipped), and how many records a read_uncommitted reader sees.
func readCommittedValues(t testing.TB, ctx context.Context, seeds []string, topic string) (values []string, uncommitted int) {
	t.Helper()
	for _, committed := range []bool{true, false} {
		iso := kgo.ReadUncommitted()
		if committed {
			iso = kgo.ReadCommitted()
		}
		cl := clusterClient(t, seeds, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(iso), kgo.KeepControlRecords())
		adm := kadm.NewClient(cl)
		var ends kadm.ListedOffsets
		var err error
		if committed {
			ends, err = adm.ListCommittedOffsets(ctx, topic)
		} else {
			ends, err = adm.ListEndOffsets(ctx, topic)
		}
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			t.Fatalf("list offsets of %s: %v", topic, err)
		}
		pos := map[int32]int64{}
		n := 0
		for {
			done := true
			ends.Each(func(o kadm.ListedOffset) {
				if pos[o.Partition] < o.Offset {
					done = false
				}
			})
			if done {
				break
			}
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("read %s: %v", topic, err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				pos[r.Partition] = r.Offset + 1
				if r.Attrs.IsControl() {
					return
				}
				n++
				if committed {
					values = append(values, string(r.Value))
				}
			})
		}
		cl.Close()
		if !committed {
			uncommitted = n
		}
	}
	return values, uncommitted
}

// txnCoordinatorOf asks addr for id's transaction coordinator and returns
// the agent of agents it names.
func txnCoordinatorOf(t testing.TB, addr, id string, agents []*silt) *silt {
	t.Helper()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version = 3
	req.CoordinatorType = 1
	req.CoordinatorKey = id
	resp := dialRaw(t, addr).roundTrip(req).(*kmsg.FindCoordinatorResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("FindCoordinator of transactional id %s at %s: %v", id, addr, err)
	}
	at := fmt.Sprintf("%s:%d", resp.Host, resp.Port)
	for _, s := range agents {
		if s.Kafka() == at {
			return s
		}
	}
	t.Fatalf("transaction coordinator %s of %s is none of the agents", at, id)
	return nil
}

// TestExactlyOnceUnderKills: franz-go GroupTransactSession members move
// every record of an input topic to an output topic, transformed. One
// member is SIGKILLed with a transaction open (its transaction must abort
// at its timeout, and another member take over its partitions), and the
// agent coordinating another member's transaction is SIGKILLed with that
// transaction open (on Postgres: one of three agents, not restarted; on
// SQLite: the one agent, restarted). At the end the output, read
// committed, holds every input value exactly once, and read uncommitted
// it holds more (the aborted work), which read_committed never showed.
func TestExactlyOnceUnderKills(t *testing.T) {
	t.Run("dev", func(t *testing.T) {
		t.Parallel()
		// A fixed port: the restarted agent is where the clients look.
		s := newDev(t, append(txnWorkerFlags, "--flush-interval", "20ms", "--listen", freeAddr(t))...).Start()
		exactlyOnce(t, []*silt{s}, func(t *testing.T, victim *silt) {
			victim.Kill()
			victim.Restart()
		})
	})
	t.Run("agent", func(t *testing.T) {
		t.Parallel()
		pg, s3 := harness.Postgres(t), harness.S3(t)
		var agents []*silt
		for i := range 3 {
			agents = append(agents, newAgentOn(t, pg, s3, append(append([]string{"--agent-id", fmt.Sprint("a", i)}, clusterFlags...), txnWorkerFlags...)...).Start())
		}
		ctx := testContext(t, time.Minute)
		waitAllBrokers(t, ctx, agents)
		exactlyOnce(t, agents, func(t *testing.T, victim *silt) { victim.Kill() })
	})
}

func exactlyOnce(t *testing.T, agents []*silt, killAgent func(*testing.T, *silt)) {
	ctx := testContext(t, 5*time.Minute)
	seeds := make([]string, len(agents))
	for i, s := range agents {
		seeds[i] = s.Kafka()
	}
	const (
		in, out, group = "eos-in", "eos-out", "eos"
		n              = 3000
	)
	createTopic(t, ctx, seeds[0], in, 6)
	createTopic(t, ctx, seeds[0], out, 6)
	src := clusterClient(t, seeds, kgo.DefaultProduceTopic(in))
	want := make([]string, n)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		want[i] = fmt.Sprintf("t-v%05d", i)
		recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%97), Value: fmt.Appendf(nil, "v%05d", i)}
	}
	if err := src.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce the input: %v", err)
	}

	// eos-1 dies: its transaction aborts at its timeout, kept short.
	// The others live through an agent's death: their timeout must
	// outlast the agent's lease (9 s) and the clients' move to another
	// coordinator, or the coordinator aborts their transactions (which is
	// right, and fatal for the producer, as with Kafka).
	w1 := startTxnWorker(t, seeds, "eos-1", 5*time.Second, group, in, out)
	w2 := startTxnWorker(t, seeds, "eos-2", time.Minute, group, in, out)

	// The consuming member dies with a transaction open; a new member
	// (another transactional id) joins.
	w1.waitOpen(ctx)
	w1.kill()
	t.Logf("killed worker eos-1 with a transaction open")
	w3 := startTxnWorker(t, seeds, "eos-3", time.Minute, group, in, out)

	// The coordinator of a live member's transaction dies with that
	// transaction open.
	w2.waitOpen(ctx)
	victim := txnCoordinatorOf(t, agents[len(agents)-1].Kafka(), "eos-2", agents)
	killAgent(t, victim)
	t.Logf("killed agent %s, coordinator of eos-2, with its transaction open", victim.Kafka())
	live := seeds[:0:0]
	for _, s := range agents {
		if s != victim || len(agents) == 1 {
			live = append(live, s.Kafka())
		}
	}

	// Every input record reaches the output exactly once.
	waitFor(t, ctx, "the output to hold every input record", func() bool {
		o, err := kadm.NewClient(clusterClient(t, live)).ListCommittedOffsets(ctx, out)
		if err != nil {
			return false
		}
		var lso int64
		o.Each(func(lo kadm.ListedOffset) { lso += lo.Offset })
		return lso >= int64(n) // markers take offsets too: checked below
	})
	var got []string
	var uncommitted int
	waitFor(t, ctx, "every input value committed to the output", func() bool {
		got, uncommitted = readCommittedValues(t, ctx, live, out)
		return len(got) >= n
	})
	slices.Sort(got)
	if !slices.Equal(got, want) {
		var dup, missing []string
		seen := map[string]int{}
		for _, g := range got {
			seen[g]++
			if seen[g] == 2 {
				dup = append(dup, g)
			}
		}
		for _, w := range want {
			if seen[w] == 0 {
				missing = append(missing, w)
			}
		}
		t.Fatalf("output read committed: %d values, %d duplicated (%v), %d missing (%v)", len(got), len(dup), firstOf(dup, 10), len(missing), firstOf(missing, 10))
	}
	if uncommitted <= n {
		t.Fatalf("read uncommitted sees %d records, want more than the %d committed: the aborted transactions", uncommitted, n)
	}
	t.Logf("output: %d values exactly once read committed; %d records read uncommitted (aborted work included)", len(got), uncommitted)
	for _, w := range []*txnWorker{w2, w3} {
		w.mu.Lock()
		ends, restarts := w.ends, w.restarts
		w.mu.Unlock()
		if ends == 0 {
			t.Errorf("worker %s committed no transaction", w.id)
		}
		t.Logf("worker %s: %d transactions committed, %d sessions restarted after an error", w.id, ends, restarts)
	}
}

// firstOf returns up to k elements of s.
func firstOf(s []string, k int) []string { return s[:min(len(s), k)] }
