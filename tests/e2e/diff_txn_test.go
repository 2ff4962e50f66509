package e2e

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The transaction cases of the differential corpus: the coordinator APIs
// (FindCoordinator key type 1, InitProducerId, AddPartitionsToTxn,
// AddOffsetsToTxn, TxnOffsetCommit, EndTxn, DescribeTransactions,
// ListTransactions, DescribeProducers), transactional produce, and what
// readers see of open, committed and aborted transactions (Fetch and
// ListOffsets read_committed, OffsetFetch require_stable). Producer ids
// differ between the sides; epochs, offsets, states and error codes must
// not. A side's producer state (its ids, epochs and sequences) is kept in
// diffSide.txns; preps that set a transaction up are not compared.

// devInitAbortsAtOnce: agent/txn's package doc, "Deliberate differences".
const devInitAbortsAtOnce = "InitProducerId finding a transaction a previous instance left open aborts it and answers at once; " +
	"Kafka writes the abort markers asynchronously and answers CONCURRENT_TRANSACTIONS until they are written (the client retries)"

// diffTxn is one side's producer for a transactional id.
type diffTxn struct {
	pid   int64
	epoch int16
	// seq is the next sequence per partition of the txn topic, at seqOf.
	seq   map[int32]int32
	seqOf [2]int64 // the producer id and epoch seq counts for
}

func (e diffEnv) txnID(name string) string { return e.px + "-" + name }

// txn is the side's producer state for name.
func (e diffEnv) txn(name string) *diffTxn {
	t := e.side.txns[name]
	if t == nil {
		t = &diffTxn{pid: -1, epoch: -1}
		e.side.txns[name] = t
	}
	return t
}

// nextSeq returns the sequence of the next batch to partition of the txn
// topic and counts it.
func (t *diffTxn) nextSeq(partition int32) int32 {
	if t.seqOf != [2]int64{t.pid, int64(t.epoch)} {
		t.seq, t.seqOf = map[int32]int32{}, [2]int64{t.pid, int64(t.epoch)}
	}
	s := t.seq[partition]
	t.seq[partition]++
	return s
}

// prepAll runs preps in order.
func prepAll(preps ...func(e diffEnv) (any, error)) func(e diffEnv) (any, error) {
	return func(e diffEnv) (any, error) {
		for _, p := range preps {
			if _, err := p(e); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
}

// retryTxn repeats do while it answers a retriable code (a coordinator
// still loading) or CONCURRENT_TRANSACTIONS (a transaction still being
// completed: Kafka writes its markers asynchronously).
func retryTxn(what string, do func() (int16, error)) error {
	for deadline := time.Now().Add(30 * time.Second); ; {
		code, err := do()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if code == 0 {
			return nil
		}
		if err := kerr.ErrorForCode(code); !kerr.IsRetriable(err) && code != kerr.ConcurrentTransactions.Code || time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// txnCoordinatorReady waits until the side coordinates name: Kafka
// creates __transaction_state on the first lookup and then loads each of
// its partitions asynchronously, answering NOT_COORDINATOR for the ids
// of a partition not yet loaded even after FindCoordinator named it.
// DescribeTransactions tells, without changing anything: it answers
// TRANSACTIONAL_ID_NOT_FOUND (not retriable in kerr, and the answer
// waited for here) for an unknown id once the partition is loaded.
func txnCoordinatorReady(name string) func(e diffEnv) (any, error) {
	return func(e diffEnv) (any, error) {
		err := retryTxn("find coordinator", func() (int16, error) {
			r := req(kmsg.NewPtrFindCoordinatorRequest(), 3)
			r.CoordinatorType, r.CoordinatorKey = 1, e.txnID(name)
			resp, err := e.side.do(r)
			if err != nil {
				return 0, err
			}
			return resp.(*kmsg.FindCoordinatorResponse).ErrorCode, nil
		})
		if err != nil {
			return nil, err
		}
		return nil, retryTxn("coordinator loaded", func() (int16, error) {
			st, err := describeTxn(e, name)
			if err != nil || st.ErrorCode == kerr.TransactionalIDNotFound.Code {
				return 0, err
			}
			return st.ErrorCode, nil
		})
	}
}

func initProducerID(v int16, e diffEnv, name string, timeoutMs int32) *kmsg.InitProducerIDRequest {
	r := req(kmsg.NewPtrInitProducerIDRequest(), v)
	r.TransactionalID = kmsg.StringPtr(e.txnID(name))
	r.TransactionTimeoutMillis = timeoutMs
	r.ProducerID, r.ProducerEpoch = -1, -1
	return r
}

// txnInit initializes name's producer (a new instance) on the side.
func txnInit(name string) func(e diffEnv) (any, error) {
	return func(e diffEnv) (any, error) {
		if _, err := txnCoordinatorReady(name)(e); err != nil {
			return nil, err
		}
		return nil, retryTxn("init producer id", func() (int16, error) {
			resp, err := e.side.do(initProducerID(4, e, name, 60000))
			if err != nil {
				return 0, err
			}
			ir := resp.(*kmsg.InitProducerIDResponse)
			if ir.ErrorCode == 0 {
				t := e.txn(name)
				t.pid, t.epoch = ir.ProducerID, ir.ProducerEpoch
			}
			return ir.ErrorCode, nil
		})
	}
}

// txnSync reads name's producer id and epoch back from the side
// (DescribeTransactions), once no transition is under way: after a
// compared request changed them.
func txnSync(name string) func(e diffEnv) (any, error) {
	return func(e diffEnv) (any, error) {
		for deadline := time.Now().Add(30 * time.Second); ; {
			r := req(kmsg.NewPtrDescribeTransactionsRequest(), 0)
			r.TransactionalIDs = []string{e.txnID(name)}
			resp, err := e.side.do(r)
			if err != nil {
				return nil, err
			}
			st := resp.(*kmsg.DescribeTransactionsResponse).TransactionStates[0]
			settled := st.ErrorCode == 0 && !strings.HasPrefix(st.State, "Prepare")
			if settled {
				t := e.txn(name)
				t.pid, t.epoch = st.ProducerID, st.ProducerEpoch
				return nil, nil
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("describe transaction %s: error %d, state %s", name, st.ErrorCode, st.State)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// describeTxn describes name on the side.
func describeTxn(e diffEnv, name string) (kmsg.DescribeTransactionsResponseTransactionState, error) {
	r := req(kmsg.NewPtrDescribeTransactionsRequest(), 0)
	r.TransactionalIDs = []string{e.txnID(name)}
	resp, err := e.side.do(r)
	if err != nil {
		return kmsg.DescribeTransactionsResponseTransactionState{}, err
	}
	return resp.(*kmsg.DescribeTransactionsResponse).TransactionStates[0], nil
}

// compareDescribedTxns compares DescribeTransactions answers with the
// fields of compareFields but each transaction's topics in name order
// (Kafka lists them in its hash set's order).
func compareDescribedTxns(fields ...string) func(k, s kmsg.Response) []string {
	return func(k, s kmsg.Response) []string {
		for _, r := range []kmsg.Response{k, s} {
			for i := range r.(*kmsg.DescribeTransactionsResponse).TransactionStates {
				st := &r.(*kmsg.DescribeTransactionsResponse).TransactionStates[i]
				slices.SortFunc(st.Topics, func(x, y kmsg.DescribeTransactionsResponseTransactionStateTopic) int {
					return strings.Compare(x.Topic, y.Topic)
				})
			}
		}
		return compareFields(k, s, append([]string{"ErrorCode"}, fields...))
	}
}

func addPartitionsToTxn(v int16, e diffEnv, name string, t *diffTxn, topic string, partitions ...int32) *kmsg.AddPartitionsToTxnRequest {
	r := req(kmsg.NewPtrAddPartitionsToTxnRequest(), v)
	if v >= 4 {
		tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
		tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch = e.txnID(name), t.pid, t.epoch
		tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
		tt.Topic, tt.Partitions = e.topic(topic), partitions
		tx.Topics = append(tx.Topics, tt)
		r.Transactions = append(r.Transactions, tx)
		return r
	}
	r.TransactionalID, r.ProducerID, r.ProducerEpoch = e.txnID(name), t.pid, t.epoch
	rt := kmsg.NewAddPartitionsToTxnRequestTopic()
	rt.Topic, rt.Partitions = e.topic(topic), partitions
	r.Topics = append(r.Topics, rt)
	return r
}

// txnAdd adds partitions of the txn topic to name's transaction.
func txnAdd(name string, partitions ...int32) func(e diffEnv) (any, error) {
	return func(e diffEnv) (any, error) {
		return nil, retryTxn("add partitions", func() (int16, error) {
			resp, err := e.side.do(addPartitionsToTxn(3, e, name, e.txn(name), "txn", partitions...))
			if err != nil {
				return 0, err
			}
			for _, rt := range resp.(*kmsg.AddPartitionsToTxnResponse).Topics {
				for _, rp := range rt.Partitions {
					if rp.ErrorCode != 0 {
						return rp.ErrorCode, nil
					}
				}
			}
			return 0, nil
		})
	}
}

// txnProduceReq is a Produce of one transactional batch of name's
// producer to partition of the txn topic.
func txnProduceReq(v int16, e diffEnv, name string, partition int32, epoch int16, seq int32, value string) *kmsg.ProduceRequest {
	t := e.txn(name)
	r := produceTo(v, e, "txn", partition, txnBatch(t.pid, epoch, seq, []byte(value)))
	r.TransactionID = kmsg.StringPtr(e.txnID(name))
	return r
}

// txnProduce writes a record into name's transaction.
func txnProduce(name string, partition int32, value string) func(e diffEnv) (any, error) {
	return func(e diffEnv) (any, error) {
		t := e.txn(name)
		resp, err := e.side.do(txnProduceReq(9, e, name, partition, t.epoch, t.nextSeq(partition), value))
		if err != nil {
			return nil, err
		}
		if code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
			return nil, fmt.Errorf("transactional produce: %w", kerr.ErrorForCode(code))
		}
		return nil, nil
	}
}

func endTxn(v int16, e diffEnv, name string, pid int64, epoch int16, commit bool) *kmsg.EndTxnRequest {
	r := req(kmsg.NewPtrEndTxnRequest(), v)
	r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = e.txnID(name), pid, epoch, commit
	return r
}

// txnEnd ends name's transaction (EndTxn v4) and waits for it to settle.
func txnEnd(name string, commit bool) func(e diffEnv) (any, error) {
	return func(e diffEnv) (any, error) {
		t := e.txn(name)
		err := retryTxn("end txn", func() (int16, error) {
			resp, err := e.side.do(endTxn(4, e, name, t.pid, t.epoch, commit))
			if err != nil {
				return 0, err
			}
			return resp.(*kmsg.EndTxnResponse).ErrorCode, nil
		})
		if err != nil {
			return nil, err
		}
		return txnSync(name)(e)
	}
}

func txnOffsetCommit(v int16, e diffEnv, name, group string, t *diffTxn, partition int32, offset int64) *kmsg.TxnOffsetCommitRequest {
	r := req(kmsg.NewPtrTxnOffsetCommitRequest(), v)
	r.TransactionalID, r.Group, r.ProducerID, r.ProducerEpoch = e.txnID(name), e.px+"-"+group, t.pid, t.epoch
	r.Generation = -1
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = e.topic("a")
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch = partition, offset, -1
	rt.Partitions = append(rt.Partitions, rp)
	r.Topics = append(r.Topics, rt)
	return r
}

// compareListedTxns compares the run's transactional ids in two
// ListTransactions answers (the brokers hold others' too): id and state.
func compareListedTxns(px string) func(k, s kmsg.Response) []string {
	return func(k, s kmsg.Response) []string {
		list := func(r kmsg.Response) ([]string, int16) {
			lr := r.(*kmsg.ListTransactionsResponse)
			var out []string
			for _, st := range lr.TransactionStates {
				if strings.HasPrefix(st.TransactionalID, px+"-") {
					out = append(out, st.TransactionalID+" "+st.TransactionState)
				}
			}
			slices.Sort(out)
			return out, lr.ErrorCode
		}
		kl, kc := list(k)
		sl, sc := list(s)
		if kc != sc || !slices.Equal(kl, sl) {
			return []string{fmt.Sprintf("kafka %s %v, silt %s %v", show("ErrorCode", kc), kl, show("ErrorCode", sc), sl)}
		}
		return nil
	}
}

// compareAddPartitions compares AddPartitionsToTxn answers by topic and
// partition: Kafka lists topics and partitions in its hash maps' order.
func compareAddPartitions(k, s kmsg.Response) []string {
	codes := func(r kmsg.Response) map[string]string {
		ar := r.(*kmsg.AddPartitionsToTxnResponse)
		m := map[string]string{"": show("ErrorCode", ar.ErrorCode)}
		each := func(txn, topic string, p int32, code int16) {
			m[fmt.Sprintf("%s %s-%d", txn, topic, p)] = show("ErrorCode", code)
		}
		for _, t := range ar.Topics {
			for _, p := range t.Partitions {
				each("", t.Topic, p.Partition, p.ErrorCode)
			}
		}
		for _, tx := range ar.Transactions {
			for _, t := range tx.Topics {
				for _, p := range t.Partitions {
					each(tx.TransactionalID, t.Topic, p.Partition, p.ErrorCode)
				}
			}
		}
		return m
	}
	km, sm := codes(k), codes(s)
	var diffs []string
	for key, kc := range km {
		if sc, ok := sm[key]; !ok || sc != kc {
			diffs = append(diffs, fmt.Sprintf("%q: kafka %s, silt %s", key, kc, sc))
		}
	}
	for key, sc := range sm {
		if _, ok := km[key]; !ok {
			diffs = append(diffs, fmt.Sprintf("%q: only silt answers it (%s)", key, sc))
		}
	}
	slices.Sort(diffs)
	return diffs
}

func txnCases(k, s *diffSide, px string, add func(diffCase)) {
	// FindCoordinator for transactional ids.
	for _, v := range from(commonVersions(k, s, 10), 1) {
		add(diffCase{name: fmt.Sprintf("FindCoordinator v%d transactional id", v), prep: txnCoordinatorReady("fc"),
			build: func(e diffEnv, _ any) kmsg.Request {
				r := req(kmsg.NewPtrFindCoordinatorRequest(), v)
				r.CoordinatorType = 1
				if v >= 4 {
					r.CoordinatorKeys = []string{e.txnID("fc"), e.txnID("fc2")}
				} else {
					r.CoordinatorKey = e.txnID("fc")
				}
				return r
			}})
	}

	// InitProducerId: new ids at every version, then the rules.
	ivs := commonVersions(k, s, 22)
	for _, v := range ivs {
		name := fmt.Sprintf("init-v%d", v)
		add(diffCase{name: fmt.Sprintf("InitProducerId v%d new transactional id", v), fields: []string{"ProducerEpoch"},
			prep:  txnCoordinatorReady(name),
			build: func(e diffEnv, _ any) kmsg.Request { return initProducerID(v, e, name, 60000) }})
		add(diffCase{name: fmt.Sprintf("InitProducerId v%d again (a new instance)", v), fields: []string{"ProducerEpoch"},
			build: func(e diffEnv, _ any) kmsg.Request { return initProducerID(v, e, name, 60000) }})
	}
	for _, v := range pick(ivs) {
		add(diffCase{name: fmt.Sprintf("InitProducerId v%d timeout above transaction.max.timeout.ms", v), prep: txnCoordinatorReady("init-big"),
			build: func(e diffEnv, _ any) kmsg.Request { return initProducerID(v, e, "init-big", 900001) }})
		add(diffCase{name: fmt.Sprintf("InitProducerId v%d timeout 0", v), prep: txnCoordinatorReady("init-zero"),
			build: func(e diffEnv, _ any) kmsg.Request { return initProducerID(v, e, "init-zero", 0) }})
		add(diffCase{name: fmt.Sprintf("InitProducerId v%d negative timeout", v), prep: txnCoordinatorReady("init-neg"),
			build: func(e diffEnv, _ any) kmsg.Request { return initProducerID(v, e, "init-neg", -1) }})
		add(diffCase{name: fmt.Sprintf("InitProducerId v%d empty transactional id", v), fields: []string{"ProducerEpoch"},
			build: func(e diffEnv, _ any) kmsg.Request {
				r := initProducerID(v, e, "", 60000)
				r.TransactionalID = kmsg.StringPtr("")
				return r
			}})
	}
	for _, v := range from(ivs, 3) {
		name := fmt.Sprintf("kip360-v%d", v)
		add(diffCase{name: fmt.Sprintf("InitProducerId v%d with the current producer id and epoch (KIP-360 bump)", v), fields: []string{"ProducerEpoch"},
			prep: txnInit(name),
			build: func(e diffEnv, _ any) kmsg.Request {
				t := e.txn(name)
				r := initProducerID(v, e, name, 60000)
				r.ProducerID, r.ProducerEpoch = t.pid, t.epoch
				return r
			}})
		add(diffCase{name: fmt.Sprintf("InitProducerId v%d with the previous epoch (retry of the bump)", v), fields: []string{"ProducerEpoch"},
			build: func(e diffEnv, _ any) kmsg.Request {
				t := e.txn(name)
				r := initProducerID(v, e, name, 60000)
				r.ProducerID, r.ProducerEpoch = t.pid, t.epoch
				return r
			}})
		add(diffCase{name: fmt.Sprintf("InitProducerId v%d with a stale epoch", v), fields: []string{"ProducerEpoch"},
			prep: txnSync(name),
			build: func(e diffEnv, _ any) kmsg.Request {
				t := e.txn(name)
				r := initProducerID(v, e, name, 60000)
				r.ProducerID, r.ProducerEpoch = t.pid, t.epoch-2
				return r
			}})
		add(diffCase{name: fmt.Sprintf("InitProducerId v%d with another producer id", v), fields: []string{"ProducerEpoch"},
			build: func(e diffEnv, _ any) kmsg.Request {
				t := e.txn(name)
				r := initProducerID(v, e, name, 60000)
				r.ProducerID, r.ProducerEpoch = t.pid+1000, 0
				return r
			}})
	}

	// AddPartitionsToTxn: errors, then t1's transaction on txn-0.
	avs := upTo(commonVersions(k, s, 24), 3)
	for _, v := range pick(avs) {
		add(diffCase{name: fmt.Sprintf("AddPartitionsToTxn v%d unknown transactional id", v), prep: txnCoordinatorReady("apt-unknown"),
			build: func(e diffEnv, _ any) kmsg.Request {
				return addPartitionsToTxn(v, e, "apt-unknown", &diffTxn{pid: 5, epoch: 0}, "txn", 0)
			}})
		add(diffCase{name: fmt.Sprintf("AddPartitionsToTxn v%d another producer id", v), prep: txnInit("apt"),
			build: func(e diffEnv, _ any) kmsg.Request {
				t := e.txn("apt")
				return addPartitionsToTxn(v, e, "apt", &diffTxn{pid: t.pid + 1000, epoch: t.epoch}, "txn", 0)
			}})
		add(diffCase{name: fmt.Sprintf("AddPartitionsToTxn v%d stale epoch", v), prep: txnInit("apt"),
			build: func(e diffEnv, _ any) kmsg.Request {
				t := e.txn("apt")
				return addPartitionsToTxn(v, e, "apt", &diffTxn{pid: t.pid, epoch: t.epoch - 1}, "txn", 0)
			}})
		add(diffCase{name: fmt.Sprintf("AddPartitionsToTxn v%d unknown topic beside a known one", v), compare: compareAddPartitions,
			build: func(e diffEnv, _ any) kmsg.Request {
				r := addPartitionsToTxn(v, e, "apt", e.txn("apt"), "txn", 0)
				rt := kmsg.NewAddPartitionsToTxnRequestTopic()
				rt.Topic, rt.Partitions = e.topic("missing"), []int32{0}
				r.Topics = append(r.Topics, rt)
				return r
			}})
		add(diffCase{name: fmt.Sprintf("AddPartitionsToTxn v%d unknown partition", v),
			build: func(e diffEnv, _ any) kmsg.Request { return addPartitionsToTxn(v, e, "apt", e.txn("apt"), "txn", 9) }})
		add(diffCase{name: fmt.Sprintf("AddPartitionsToTxn v%d", v),
			build: func(e diffEnv, _ any) kmsg.Request { return addPartitionsToTxn(v, e, "apt", e.txn("apt"), "txn", 2) }})
		add(diffCase{name: fmt.Sprintf("AddPartitionsToTxn v%d again (already added)", v),
			build: func(e diffEnv, _ any) kmsg.Request { return addPartitionsToTxn(v, e, "apt", e.txn("apt"), "txn", 2) }})
	}
	add(diffCase{name: "EndTxn v4 abort of apt", prep: txnSync("apt"),
		build: func(e diffEnv, _ any) kmsg.Request {
			t := e.txn("apt")
			return endTxn(4, e, "apt", t.pid, t.epoch, false)
		}})

	// t1: a transaction on txn-0 with a record and offsets of group tg.
	add(diffCase{name: "AddPartitionsToTxn v3 txn-0", prep: prepAll(txnSync("apt"), txnInit("t1")),
		build: func(e diffEnv, _ any) kmsg.Request { return addPartitionsToTxn(3, e, "t1", e.txn("t1"), "txn", 0) }})
	for _, v := range from(commonVersions(k, s, 24), 4) {
		add(diffCase{name: fmt.Sprintf("AddPartitionsToTxn v%d verify only, one partition added, one not", v), compare: compareAddPartitions,
			build: func(e diffEnv, _ any) kmsg.Request {
				r := addPartitionsToTxn(v, e, "t1", e.txn("t1"), "txn", 0, 1)
				r.Transactions[0].VerifyOnly = true
				return r
			}})
		add(diffCase{name: fmt.Sprintf("AddPartitionsToTxn v%d verify only, stale epoch", v),
			build: func(e diffEnv, _ any) kmsg.Request {
				t := e.txn("t1")
				r := addPartitionsToTxn(v, e, "t1", &diffTxn{pid: t.pid, epoch: t.epoch - 1}, "txn", 0)
				r.Transactions[0].VerifyOnly = true
				return r
			}})
	}
	pvs := commonVersions(k, s, 0)
	add(diffCase{name: "Produce v9 transactional batch to an added partition", fields: []string{"BaseOffset", "LogStartOffset"},
		build: func(e diffEnv, _ any) kmsg.Request {
			t := e.txn("t1")
			return txnProduceReq(9, e, "t1", 0, t.epoch, t.nextSeq(0), "t1-0")
		}})
	for _, v := range pick(upTo(pvs, 11)) {
		add(diffCase{name: fmt.Sprintf("Produce v%d transactional batch to a partition not added", v),
			build: func(e diffEnv, _ any) kmsg.Request {
				t := e.txn("t1")
				return txnProduceReq(v, e, "t1", 1, t.epoch, 0, "t1-1")
			}})
	}
	add(diffCase{name: "Produce v11 transactional batch to a partition not added", // TRANSACTION_ABORTABLE from v11
		build: func(e diffEnv, _ any) kmsg.Request {
			t := e.txn("t1")
			return txnProduceReq(11, e, "t1", 1, t.epoch, 0, "t1-1")
		}})
	add(diffCase{name: "Produce v9 transactional batch without a transactional id",
		build: func(e diffEnv, _ any) kmsg.Request {
			t := e.txn("t1")
			r := txnProduceReq(9, e, "t1", 0, t.epoch, 1, "t1-x")
			r.TransactionID = nil
			return r
		}})
	add(diffCase{name: "Produce v9 transactional batch with a stale epoch",
		build: func(e diffEnv, _ any) kmsg.Request {
			t := e.txn("t1")
			return txnProduceReq(9, e, "t1", 0, t.epoch-1, 1, "t1-x")
		}})
	add(diffCase{name: "Produce v9 transactional batch with a sequence gap",
		build: func(e diffEnv, _ any) kmsg.Request {
			t := e.txn("t1")
			return txnProduceReq(9, e, "t1", 0, t.epoch, 5, "t1-x")
		}})
	add(diffCase{name: "Produce v9 non-transactional batch of a producer with an open transaction",
		build: func(e diffEnv, _ any) kmsg.Request {
			t := e.txn("t1")
			return produceTo(9, e, "txn", 0, diffBatch(t.pid, t.epoch, 1, rec(1)))
		}})
	add(diffCase{name: "AddOffsetsToTxn v3 group tg", prep: txnSync("t1"),
		build: func(e diffEnv, _ any) kmsg.Request {
			t := e.txn("t1")
			r := req(kmsg.NewPtrAddOffsetsToTxnRequest(), 3)
			r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group = e.txnID("t1"), t.pid, t.epoch, e.px+"-tg"
			return r
		}})
	add(diffCase{name: "TxnOffsetCommit v3 group tg a-0 at 4",
		build: func(e diffEnv, _ any) kmsg.Request { return txnOffsetCommit(3, e, "t1", "tg", e.txn("t1"), 0, 4) }})
	add(diffCase{name: "TxnOffsetCommit v3 stale epoch",
		build: func(e diffEnv, _ any) kmsg.Request {
			t := e.txn("t1")
			return txnOffsetCommit(3, e, "t1", "tg", &diffTxn{pid: t.pid, epoch: t.epoch - 1}, 0, 4)
		}})
	add(diffCase{name: "TxnOffsetCommit v3 unknown transactional id", prep: txnCoordinatorReady("toc-unknown"),
		build: func(e diffEnv, _ any) kmsg.Request {
			return txnOffsetCommit(3, e, "toc-unknown", "tg", &diffTxn{pid: 5, epoch: 0}, 0, 4)
		}})

	// What readers see of the open transaction.
	rfields := []string{"HighWatermark", "LastStableOffset", "LogStartOffset", "FirstOffset"}
	for _, v := range pick(commonVersions(k, s, 1)) {
		add(diffCase{name: fmt.Sprintf("Fetch v%d read_committed, a transaction open", v), fields: rfields,
			build: func(e diffEnv, _ any) kmsg.Request {
				r := fetchRequest(v, e, "txn", 0, 0)
				r.IsolationLevel = 1
				return r
			}})
	}
	for _, v := range pick(from(commonVersions(k, s, 2), 2)) {
		for _, iso := range []int8{0, 1} {
			add(diffCase{name: fmt.Sprintf("ListOffsets v%d latest isolation %d, a transaction open", v, iso), fields: []string{"Offset"},
				build: func(e diffEnv, _ any) kmsg.Request {
					r := listOffsets(v, e, "txn", 0, -1)
					r.IsolationLevel = iso
					return r
				}})
		}
	}
	for _, v := range from(commonVersions(k, s, 9), 7) {
		add(diffCase{name: fmt.Sprintf("OffsetFetch v%d require_stable, offsets pending", v), fields: []string{"Offset"},
			build: func(e diffEnv, _ any) kmsg.Request {
				r := offsetFetch(v, e.px+"-tg", e.topic("a"), 0)
				r.RequireStable = true
				return r
			}})
	}
	pfields := []string{"ProducerEpoch", "LastSequence", "CurrentTxnStartOffset", "CoordinatorEpoch"}
	for _, v := range commonVersions(k, s, 61) {
		add(diffCase{name: fmt.Sprintf("DescribeProducers v%d, a transaction open", v), fields: pfields,
			build: func(e diffEnv, _ any) kmsg.Request {
				r := req(kmsg.NewPtrDescribeProducersRequest(), v)
				rt := kmsg.NewDescribeProducersRequestTopic()
				rt.Topic, rt.Partitions = e.topic("txn"), []int32{0, 9}
				r.Topics = append(r.Topics, rt)
				return r
			}})
	}
	dfields := []string{"State", "TimeoutMillis", "ProducerEpoch", "Topic", "Partitions"}
	for _, v := range commonVersions(k, s, 65) {
		add(diffCase{name: fmt.Sprintf("DescribeTransactions v%d unknown, empty", v), fields: append(dfields, "ProducerID", "StartTimestamp"),
			prep: prepAll(txnCoordinatorReady("never"), txnCoordinatorReady("empty")),
			build: func(e diffEnv, _ any) kmsg.Request {
				r := req(kmsg.NewPtrDescribeTransactionsRequest(), v)
				r.TransactionalIDs = []string{e.txnID("never"), ""}
				return r
			}})
		add(diffCase{name: fmt.Sprintf("DescribeTransactions v%d ongoing, unknown", v), compare: compareDescribedTxns(dfields...),
			build: func(e diffEnv, _ any) kmsg.Request {
				r := req(kmsg.NewPtrDescribeTransactionsRequest(), v)
				r.TransactionalIDs = []string{e.txnID("t1"), e.txnID("never")}
				return r
			}})
	}
	for _, v := range commonVersions(k, s, 66) {
		add(diffCase{name: fmt.Sprintf("ListTransactions v%d", v), compare: compareListedTxns(px),
			build: func(e diffEnv, _ any) kmsg.Request { return req(kmsg.NewPtrListTransactionsRequest(), v) }})
		add(diffCase{name: fmt.Sprintf("ListTransactions v%d state Ongoing", v), compare: compareListedTxns(px),
			build: func(e diffEnv, _ any) kmsg.Request {
				r := req(kmsg.NewPtrListTransactionsRequest(), v)
				r.StateFilters = []string{"Ongoing"}
				return r
			}})
		add(diffCase{name: fmt.Sprintf("ListTransactions v%d unknown state", v), compare: compareListedTxns(px),
			build: func(e diffEnv, _ any) kmsg.Request {
				r := req(kmsg.NewPtrListTransactionsRequest(), v)
				r.StateFilters = []string{"Bogus"}
				return r
			}})
	}

	// EndTxn: errors, the commit, its retry, an abort after it.
	evs := upTo(commonVersions(k, s, 26), 4)
	for _, v := range pick(evs) {
		add(diffCase{name: fmt.Sprintf("EndTxn v%d unknown transactional id", v), prep: txnCoordinatorReady("end-unknown"),
			build: func(e diffEnv, _ any) kmsg.Request { return endTxn(v, e, "end-unknown", 5, 0, true) }})
		add(diffCase{name: fmt.Sprintf("EndTxn v%d another producer id", v),
			build: func(e diffEnv, _ any) kmsg.Request {
				t := e.txn("t1")
				return endTxn(v, e, "t1", t.pid+1000, t.epoch, true)
			}})
		add(diffCase{name: fmt.Sprintf("EndTxn v%d stale epoch", v),
			build: func(e diffEnv, _ any) kmsg.Request {
				t := e.txn("t1")
				return endTxn(v, e, "t1", t.pid, t.epoch-1, true)
			}})
	}
	add(diffCase{name: "EndTxn v4 commit",
		build: func(e diffEnv, _ any) kmsg.Request {
			t := e.txn("t1")
			return endTxn(4, e, "t1", t.pid, t.epoch, true)
		}})
	add(diffCase{name: "EndTxn v4 commit again (a retry)", prep: txnSync("t1"),
		build: func(e diffEnv, _ any) kmsg.Request {
			t := e.txn("t1")
			return endTxn(4, e, "t1", t.pid, t.epoch, true)
		}})
	add(diffCase{name: "EndTxn v4 abort after the commit", prep: txnSync("t1"),
		build: func(e diffEnv, _ any) kmsg.Request {
			t := e.txn("t1")
			return endTxn(4, e, "t1", t.pid, t.epoch, false)
		}})
	add(diffCase{name: "EndTxn v4 commit with no transaction", prep: txnInit("empty"),
		build: func(e diffEnv, _ any) kmsg.Request {
			t := e.txn("empty")
			return endTxn(4, e, "empty", t.pid, t.epoch, true)
		}})
	add(diffCase{name: "DescribeTransactions v0 after the commit", compare: compareDescribedTxns(dfields...), prep: txnSync("t1"),
		build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrDescribeTransactionsRequest(), 0)
			r.TransactionalIDs = []string{e.txnID("t1")}
			return r
		}})
	for _, v := range pick(commonVersions(k, s, 1)) {
		add(diffCase{name: fmt.Sprintf("Fetch v%d read_committed after the commit", v), fields: rfields,
			build: func(e diffEnv, _ any) kmsg.Request {
				r := fetchRequest(v, e, "txn", 0, 0)
				r.IsolationLevel = 1
				return r
			}})
	}
	add(diffCase{name: "ListOffsets v5 latest read_committed after the commit", fields: []string{"Offset"},
		build: func(e diffEnv, _ any) kmsg.Request {
			r := listOffsets(5, e, "txn", 0, -1)
			r.IsolationLevel = 1
			return r
		}})
	add(diffCase{name: "OffsetFetch v7 require_stable after the commit", fields: []string{"Offset"},
		build: func(e diffEnv, _ any) kmsg.Request {
			r := offsetFetch(7, e.px+"-tg", e.topic("a"), 0)
			r.RequireStable = true
			return r
		}})

	// An aborted transaction on txn-1, then one committed after it.
	add(diffCase{name: "EndTxn v4 abort of a transaction with a record", prep: prepAll(txnAdd("t1", 1), txnProduce("t1", 1, "aborted")),
		build: func(e diffEnv, _ any) kmsg.Request {
			t := e.txn("t1")
			return endTxn(4, e, "t1", t.pid, t.epoch, false)
		}})
	add(diffCase{name: "Fetch read_committed over an aborted transaction", fields: rfields,
		prep: prepAll(txnSync("t1"), txnAdd("t1", 1), txnProduce("t1", 1, "committed"), txnEnd("t1", true)),
		build: func(e diffEnv, _ any) kmsg.Request {
			r := fetchRequest(12, e, "txn", 1, 0)
			r.IsolationLevel = 1
			return r
		}})
	add(diffCase{name: "Fetch read_uncommitted over an aborted transaction (no aborted list)", fields: rfields,
		build: func(e diffEnv, _ any) kmsg.Request { return fetchRequest(12, e, "txn", 1, 0) }})
	add(diffCase{name: "Fetch read_committed past the aborted transaction", fields: rfields,
		build: func(e diffEnv, _ any) kmsg.Request {
			r := fetchRequest(12, e, "txn", 1, 2)
			r.IsolationLevel = 1
			return r
		}})

	// A new instance fences a producer with an open transaction.
	add(diffCase{name: "InitProducerId v4 while a previous instance's transaction is open", deviation: devInitAbortsAtOnce,
		prep:  prepAll(txnInit("fence"), txnAdd("fence", 0), txnProduce("fence", 0, "fenced")),
		build: func(e diffEnv, _ any) kmsg.Request { return initProducerID(4, e, "fence", 60000) }})
	add(diffCase{name: "EndTxn v4 commit by the fenced instance",
		prep: func(e diffEnv) (any, error) {
			// The new instance retries until it is initialized (Kafka
			// answers it CONCURRENT_TRANSACTIONS until the abort's
			// markers are written; silt has initialized it already).
			old := *e.txn("fence")
			if _, err := txnSync("fence")(e); err != nil {
				return nil, err
			}
			if st, err := describeTxn(e, "fence"); err != nil || st.State != "Empty" {
				if _, err := txnInit("fence")(e); err != nil {
					return nil, err
				}
			}
			return old, nil
		},
		build: func(e diffEnv, old any) kmsg.Request {
			o := old.(diffTxn)
			return endTxn(4, e, "fence", o.pid, o.epoch, true)
		}})
	// From offset 2 (the fenced record): an agent serves a reader below
	// the tail it cached before the fence from that cache, with the high
	// watermark it cached (as a follower lags); one at the end asks.
	add(diffCase{name: "Fetch read_committed after the fence", fields: rfields,
		build: func(e diffEnv, _ any) kmsg.Request {
			r := fetchRequest(12, e, "txn", 0, 2)
			r.IsolationLevel = 1
			return r
		}})
	add(diffCase{name: "DescribeTransactions v0 after the fence", compare: compareDescribedTxns(dfields...), prep: txnSync("fence"),
		build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrDescribeTransactionsRequest(), 0)
			r.TransactionalIDs = []string{e.txnID("fence")}
			return r
		}})

	// Transaction version 2 (KIP-890): EndTxn v5 bumps the epoch.
	if slices.Contains(commonVersions(k, s, 26), 5) {
		efields := []string{"ProducerEpoch"}
		add(diffCase{name: "EndTxn v5 abort with no transaction", fields: efields, prep: txnInit("tv2"),
			build: func(e diffEnv, _ any) kmsg.Request {
				t := e.txn("tv2")
				return endTxn(5, e, "tv2", t.pid, t.epoch, false)
			}})
		add(diffCase{name: "EndTxn v5 commit with no transaction", fields: efields, prep: txnSync("tv2"),
			build: func(e diffEnv, _ any) kmsg.Request {
				t := e.txn("tv2")
				return endTxn(5, e, "tv2", t.pid, t.epoch, true)
			}})
		add(diffCase{name: "Produce v12 transactional batch to a partition not added (added implicitly)", fields: []string{"BaseOffset"},
			build: func(e diffEnv, _ any) kmsg.Request {
				t := e.txn("tv2")
				return txnProduceReq(12, e, "tv2", 2, t.epoch, t.nextSeq(2), "tv2")
			}})
		add(diffCase{name: "TxnOffsetCommit v5 without AddOffsetsToTxn (added implicitly)",
			build: func(e diffEnv, _ any) kmsg.Request { return txnOffsetCommit(5, e, "tv2", "tg2", e.txn("tv2"), 1, 2) }})
		add(diffCase{name: "DescribeTransactions v0 after implicit adds", compare: compareDescribedTxns(dfields...),
			build: func(e diffEnv, _ any) kmsg.Request {
				r := req(kmsg.NewPtrDescribeTransactionsRequest(), 0)
				r.TransactionalIDs = []string{e.txnID("tv2")}
				return r
			}})
		add(diffCase{name: "EndTxn v5 commit", fields: efields,
			build: func(e diffEnv, _ any) kmsg.Request {
				t := e.txn("tv2")
				return endTxn(5, e, "tv2", t.pid, t.epoch, true)
			}})
		add(diffCase{name: "EndTxn v5 commit retried (the previous epoch)", fields: efields,
			prep: func(e diffEnv) (any, error) {
				old := *e.txn("tv2")
				_, err := txnSync("tv2")(e)
				return old, err
			},
			build: func(e diffEnv, old any) kmsg.Request {
				o := old.(diffTxn)
				return endTxn(5, e, "tv2", o.pid, o.epoch, true)
			}})
		add(diffCase{name: "EndTxn v5 abort with the epoch before the commit's bump", fields: efields,
			build: func(e diffEnv, _ any) kmsg.Request {
				t := e.txn("tv2")
				return endTxn(5, e, "tv2", t.pid, t.epoch-1, false)
			}})
		add(diffCase{name: "Produce v12 with the epoch before the commit's bump",
			build: func(e diffEnv, _ any) kmsg.Request {
				t := e.txn("tv2")
				return txnProduceReq(12, e, "tv2", 2, t.epoch-1, 1, "late")
			}})
		add(diffCase{name: "OffsetFetch v8 after the v5 commit", fields: []string{"Offset"},
			build: func(e diffEnv, _ any) kmsg.Request {
				r := offsetFetch(8, e.px+"-tg2", e.topic("a"), 1)
				r.RequireStable = true
				return r
			}})
	}
}
