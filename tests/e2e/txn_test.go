package e2e

// Transactions with real clients: franz-go's consume-transform-produce
// (GroupTransactSession) exactly once under SIGKILLs of the consuming
// member and of the transaction coordinator's agent, on both backends.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
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

// txnBatch is recordBatch made transactional: producer id, epoch and
// first sequence set, the transactional attribute on, the CRC recomputed.
func txnBatch(pid int64, epoch int16, seq int32, values ...[]byte) []byte {
	raw := recordBatch(values...)
	binary.BigEndian.PutUint16(raw[21:], 0x10) // attributes: transactional
	binary.BigEndian.PutUint64(raw[43:], uint64(pid))
	binary.BigEndian.PutUint16(raw[51:], uint16(epoch))
	binary.BigEndian.PutUint32(raw[53:], uint32(seq))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli))
	return raw
}

// TestTxnCoordinatorPausedPastLease: the agent coordinating a transaction
// (and the group it commits offsets to) is paused (SIGSTOP) with a
// TxnOffsetCommit and an EndTxn(commit) of that transaction in its socket.
// Past its lease another agent coordinates the transactional id, and a
// new instance of the producer initializes with it, which fences the old
// one and aborts its transaction. When the paused agent resumes and reads
// the queued requests, it must neither commit the transaction (no commit
// marker, nothing visible read_committed) nor stage or commit its offsets;
// and the new instance's transactions work.
func TestTxnCoordinatorPausedPastLease(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	pg, s3 := harness.Postgres(t), harness.S3(t)
	var agents []*silt
	for i := range 3 {
		agents = append(agents, newAgentOn(t, pg, s3, append([]string{"--agent-id", fmt.Sprint("p", i)}, clusterFlags...)...).Start())
	}
	waitAllBrokers(t, ctx, agents)
	const (
		topic = "txn-pause"
		id    = "txn-pause"
	)
	createTopic(t, ctx, agents[0].Kafka(), topic, 1)
	coord := txnCoordinatorOf(t, agents[0].Kafka(), id, agents)
	var other *silt // an agent that is not paused, for the produce and the checks
	for _, s := range agents {
		if s != coord {
			other = s
			break
		}
	}
	// A group the same agent coordinates, so both requests wait in it.
	var group string
	for i := 0; group == ""; i++ {
		if g := fmt.Sprintf("txn-pause-%d", i); coordinatorOf(t, other.Kafka(), g, agents) == coord {
			group = g
		}
	}

	// The first instance: a transaction with a record and staged offsets.
	rc := dialRaw(t, coord.Kafka())
	initReq := kmsg.NewPtrInitProducerIDRequest()
	initReq.Version = 4
	initReq.TransactionalID = kmsg.StringPtr(id)
	initReq.TransactionTimeoutMillis = 120000
	initReq.ProducerID, initReq.ProducerEpoch = -1, -1
	ir := rc.roundTrip(initReq).(*kmsg.InitProducerIDResponse)
	if err := kerr.ErrorForCode(ir.ErrorCode); err != nil {
		t.Fatalf("InitProducerId: %v", err)
	}
	pid, epoch := ir.ProducerID, ir.ProducerEpoch
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Version = 3
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, pid, epoch
	at := kmsg.NewAddPartitionsToTxnRequestTopic()
	at.Topic, at.Partitions = topic, []int32{0}
	add.Topics = append(add.Topics, at)
	if code := rc.roundTrip(add).(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("AddPartitionsToTxn: %v", kerr.ErrorForCode(code))
	}
	txnProduce := func(seq int32, value string) int16 {
		req := produceRequest(9, topic, 0, txnBatch(pid, epoch, seq, []byte(value)))
		req.TransactionID = kmsg.StringPtr(id)
		return partitionResult(t, dialRaw(t, other.Kafka()).roundTrip(req)).ErrorCode
	}
	if code := txnProduce(0, "zombie"); code != 0 {
		t.Fatalf("transactional produce: %v", kerr.ErrorForCode(code))
	}
	addOff := kmsg.NewPtrAddOffsetsToTxnRequest()
	addOff.Version = 3
	addOff.TransactionalID, addOff.ProducerID, addOff.ProducerEpoch, addOff.Group = id, pid, epoch, group
	if code := rc.roundTrip(addOff).(*kmsg.AddOffsetsToTxnResponse).ErrorCode; code != 0 {
		t.Fatalf("AddOffsetsToTxn: %v", kerr.ErrorForCode(code))
	}
	offsets := func(offset int64) *kmsg.TxnOffsetCommitRequest {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.Version = 3
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = id, group, pid, epoch
		req.Generation = -1
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	if code := rc.roundTrip(offsets(1)).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("TxnOffsetCommit: %v", kerr.ErrorForCode(code))
	}

	// Paused, with a TxnOffsetCommit and the commit in its socket.
	coord.Pause()
	t.Cleanup(coord.Resume)
	pausedAt := time.Now()
	offCorr := rc.send(offsets(7))
	end := kmsg.NewPtrEndTxnRequest()
	end.Version = 4
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, pid, epoch, true
	endCorr := rc.send(end)

	// Another agent coordinates the id once the paused one's lease lapsed;
	// the new instance initializes there, which aborts the transaction.
	var taker *silt
	waitFor(t, ctx, "another agent to coordinate the transactional id", func() bool {
		taker = txnCoordinatorOf(t, other.Kafka(), id, agents)
		return taker != coord
	})
	var ir2 *kmsg.InitProducerIDResponse
	waitFor(t, ctx, "the new instance's InitProducerId", func() bool {
		ir2 = dialRaw(t, taker.Kafka()).roundTrip(initReq).(*kmsg.InitProducerIDResponse)
		return ir2.ErrorCode == 0
	})
	if ir2.ProducerID == pid && ir2.ProducerEpoch <= epoch {
		t.Fatalf("new instance got producer %d epoch %d, not past the old %d/%d", ir2.ProducerID, ir2.ProducerEpoch, pid, epoch)
	}
	t.Logf("paused %s; %s took the transactional id over after %v, fencing producer %d epoch %d (now %d epoch %d)",
		coord.Kafka(), taker.Kafka(), time.Since(pausedAt).Round(time.Millisecond), pid, epoch, ir2.ProducerID, ir2.ProducerEpoch)
	// The zombie's produce is fenced everywhere.
	if code := txnProduce(1, "zombie-2"); code == 0 {
		t.Fatalf("the fenced producer's produce was accepted")
	} else {
		t.Logf("the fenced producer's produce: %v", kerr.ErrorForCode(code))
	}

	// Resumed: the queued requests are refused.
	coord.Resume()
	offResp := kmsg.NewPtrTxnOffsetCommitResponse()
	offResp.Version = 3
	rc.read(offResp, offCorr)
	endResp := kmsg.NewPtrEndTxnResponse()
	endResp.Version = 4
	rc.read(endResp, endCorr)
	offCode := offResp.Topics[0].Partitions[0].ErrorCode
	t.Logf("after the pause: TxnOffsetCommit %v, EndTxn %v", kerr.ErrorForCode(offCode), kerr.ErrorForCode(endResp.ErrorCode))
	if offCode == 0 {
		t.Errorf("the paused agent staged offsets of a fenced transaction")
	}
	if endResp.ErrorCode == 0 {
		t.Errorf("the paused agent committed a fenced transaction")
	}

	// The log holds the record and an abort marker, no commit; nothing
	// is visible read_committed, and the group has no offset.
	seeds := []string{other.Kafka(), taker.Kafka()}
	ctl := map[string]int{}
	var seen []string
	read := clusterClient(t, seeds, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords())
	waitFor(t, ctx, "the aborted transaction's record and marker", func() bool {
		fs := read.PollRecords(ctx, 100)
		fs.EachRecord(func(r *kgo.Record) {
			if r.Attrs.IsControl() {
				ctl[controlType(r)]++
				return
			}
			seen = append(seen, string(r.Value))
		})
		return ctl["abort"] > 0
	})
	if ctl["commit"] > 0 || !slices.Equal(seen, []string{"zombie"}) {
		t.Fatalf("read uncommitted: records %q, markers %v; want the one record and an abort", seen, ctl)
	}
	if vals, _ := readCommittedValues(t, ctx, seeds, topic); len(vals) != 0 {
		t.Fatalf("read committed sees %q of the fenced transaction", vals)
	}
	fetched, err := kadm.NewClient(clusterClient(t, seeds)).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	if o, ok := fetched.Lookup(topic, 0); ok && o.At >= 0 {
		t.Fatalf("group %s has offset %d of the fenced transaction", group, o.At)
	}

	// Nothing else is harmed: the new instance commits.
	prod := clusterClient(t, seeds, kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic))
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after the pause: %v", err)
	}
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit after the pause: %v", err)
	}
	if vals, _ := readCommittedValues(t, ctx, seeds, topic); !slices.Equal(vals, []string{"after"}) {
		t.Fatalf("read committed after the new instance's commit: %q, want [after]", vals)
	}
}

// controlType names a control record's type: "commit" or "abort".
func controlType(r *kgo.Record) string {
	if len(r.Key) >= 4 && binary.BigEndian.Uint16(r.Key[2:]) == 1 {
		return "commit"
	}
	return "abort"
}
