package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// txnVersions are franz-go's two transaction protocols against silt:
// KIP-890 part 2 (silt advertises transaction.version 2), and the one
// before, which franz-go uses when EndTxn v5 is capped.
var txnVersions = []struct {
	name string
	opts []kgo.Opt
}{
	{"tv2", nil},
	{"tv0", []kgo.Opt{kgo.MaxVersions(func() *kversion.Versions {
		v := kversion.Stable()
		v.SetMaxKeyVersion(int16(kmsg.EndTxn), 4)
		v.SetMaxKeyVersion(int16(kmsg.Produce), 11)
		v.SetMaxKeyVersion(int16(kmsg.TxnOffsetCommit), 4)
		return v
	}())}},
}

// fastFlush cuts segments every 5ms: transactional tests produce record
// by record.
func fastFlush(c *Config) { c.Ingest.FlushInterval = 5 * time.Millisecond }

// consumeAll reads a topic from the start up to its end (as listed with
// the isolation level), and returns the values read.
func consumeAll(t *testing.T, a *testAgent, topic string, committed bool) []string {
	t.Helper()
	ctx := ctxTimeout(t)
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	// Control records kept: the markers' offsets show the position.
	cl, adm := a.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso),
		kgo.KeepControlRecords())
	var ends kadm.ListedOffsets
	var err error
	if committed {
		ends, err = adm.ListCommittedOffsets(ctx, topic)
	} else {
		ends, err = adm.ListEndOffsets(ctx, topic)
	}
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	pos := map[int32]int64{}
	done := func() bool {
		for _, o := range ends[topic] {
			if pos[o.Partition] < o.Offset {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			pos[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				got = append(got, string(r.Value))
			}
		})
	}
	slices.Sort(got)
	return got
}

func TestTransactionsCommitAndAbort(t *testing.T) {
	for _, v := range txnVersions {
		t.Run(v.name, func(t *testing.T) {
			a := startAgent(t, fastFlush)
			ctx := ctxTimeout(t)
			topic := "tx-" + v.name
			_, adm := a.client(t)
			if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
			p, _ := a.client(t, append([]kgo.Opt{kgo.TransactionalID("p-" + v.name), kgo.DefaultProduceTopic(topic)}, v.opts...)...)
			var want []string
			for round, commit := range []bool{true, false, true} {
				if err := p.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				for i := range 20 {
					val := fmt.Sprintf("r%d-%02d", round, i)
					if err := p.ProduceSync(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(val)}).FirstErr(); err != nil {
						t.Fatal(err)
					}
					if commit {
						want = append(want, val)
					}
				}
				if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
					t.Fatalf("end transaction %d: %v", round, err)
				}
			}
			slices.Sort(want)
			if got := consumeAll(t, a, topic, true); !slices.Equal(got, want) {
				t.Fatalf("read_committed read %d records %v, want the %d committed", len(got), got, len(want))
			}
			if got := consumeAll(t, a, topic, false); len(got) != 60 {
				t.Fatalf("read_uncommitted read %d records, want all 60", len(got))
			}
			// The coordinator's view.
			d, err := adm.DescribeTransactions(ctx, "p-"+v.name)
			if err != nil {
				t.Fatal(err)
			}
			if s, err := d.On("p-"+v.name, nil); err != nil || s.State != "CompleteCommit" {
				t.Fatalf("describe: %+v %v", s, err)
			}
		})
	}
}

// TestGroupTransactSession: consume-transform-produce with franz-go's
// GroupTransactSession moves every input record exactly once, offsets
// committed with the output.
func TestGroupTransactSession(t *testing.T) {
	for _, v := range txnVersions {
		t.Run(v.name, func(t *testing.T) {
			a := startAgent(t, fastFlush)
			ctx := ctxTimeout(t)
			in, out := "in-"+v.name, "out-"+v.name
			_, adm := a.client(t)
			if _, err := adm.CreateTopic(ctx, 2, 1, nil, in); err != nil {
				t.Fatal(err)
			}
			if _, err := adm.CreateTopic(ctx, 2, 1, nil, out); err != nil {
				t.Fatal(err)
			}
			src, _ := a.client(t, kgo.DefaultProduceTopic(in))
			const n = 200
			for i := range n {
				src.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("v%03d", i))}, nil)
			}
			if err := src.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			sess, err := kgo.NewGroupTransactSession(append([]kgo.Opt{kgo.SeedBrokers(a.Addr()), kgo.TransactionalID("etl-" + v.name),
				kgo.ConsumerGroup("g-" + v.name), kgo.ConsumeTopics(in), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
				kgo.DefaultProduceTopic(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, v.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			moved := 0
			for moved < n {
				fs := sess.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatalf("poll: %v", err)
				}
				if err := sess.Begin(); err != nil {
					t.Fatal(err)
				}
				k := 0
				fs.EachRecord(func(r *kgo.Record) {
					sess.Produce(ctx, &kgo.Record{Value: append([]byte("t-"), r.Value...)}, nil)
					k++
				})
				committed, err := sess.End(ctx, kgo.TryCommit)
				if err != nil {
					t.Fatalf("end: %v", err)
				}
				if committed {
					moved += k
				}
			}
			got := consumeAll(t, a, out, true)
			if len(got) != n {
				t.Fatalf("output holds %d records, want %d", len(got), n)
			}
			for i, g := range got {
				if w := fmt.Sprintf("t-v%03d", i); g != w {
					t.Fatalf("output record %d is %q, want %q", i, g, w)
				}
			}
			offs, err := adm.FetchOffsets(ctx, "g-"+v.name)
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
			if sum != n {
				t.Fatalf("committed offsets sum to %d, want %d", sum, n)
			}
		})
	}
}

// TestTransactionErrors: bad transactional requests answer Kafka's codes
// and harm nothing else.
func TestTransactionErrors(t *testing.T) {
	a := startAgent(t, fastFlush)
	ctx := ctxTimeout(t)
	_, adm := a.client(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	raw := dialRaw(t, a.Addr())
	init := kmsg.NewPtrInitProducerIDRequest()
	init.SetVersion(4)
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr("tx"), 60000
	ir := raw.roundTrip(init).(*kmsg.InitProducerIDResponse)
	if ir.ErrorCode != 0 {
		t.Fatalf("init: %d", ir.ErrorCode)
	}
	end := func(v int16, id string, pid int64, epoch int16, commit bool) int16 {
		t.Helper()
		req := kmsg.NewPtrEndTxnRequest()
		req.SetVersion(v)
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
		return raw.roundTrip(req).(*kmsg.EndTxnResponse).ErrorCode
	}
	for _, c := range []struct {
		name string
		got  int16
		want *kerr.Error
	}{
		{"EndTxn without a transaction", end(4, "tx", ir.ProducerID, ir.ProducerEpoch, true), kerr.InvalidTxnState},
		{"EndTxn v5 commit without a transaction", end(5, "tx", ir.ProducerID, ir.ProducerEpoch, true), kerr.InvalidTxnState},
		{"EndTxn of an unknown transactional id", end(4, "nope", ir.ProducerID, 0, true), kerr.InvalidProducerIDMapping},
		{"EndTxn of another producer id", end(4, "tx", ir.ProducerID+1, ir.ProducerEpoch, true), kerr.InvalidProducerIDMapping},
		{"EndTxn with a wrong epoch", end(4, "tx", ir.ProducerID, ir.ProducerEpoch+3, true), kerr.ProducerFenced},
		{"EndTxn v1 with a wrong epoch", end(1, "tx", ir.ProducerID, ir.ProducerEpoch+3, true), kerr.InvalidProducerEpoch},
		{"EndTxn with an empty transactional id", end(4, "", ir.ProducerID, ir.ProducerEpoch, true), kerr.InvalidRequest},
	} {
		if c.got != c.want.Code {
			t.Errorf("%s: %s, want %s", c.name, codeName(c.got), c.want.Message)
		}
	}
	// Produce of a transactional batch to a partition not added.
	produce := func(v int16, txnID *string, batch []byte) int16 {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(v)
		req.Acks, req.TimeoutMillis, req.TransactionID = -1, 5000, txnID
		tp := kmsg.NewProduceRequestTopic()
		tp.Topic = "t"
		p := kmsg.NewProduceRequestTopicPartition()
		p.Records = batch
		tp.Partitions = append(tp.Partitions, p)
		req.Topics = append(req.Topics, tp)
		return raw.roundTrip(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}
	txnBatch := transactionalBatch(ir.ProducerID, ir.ProducerEpoch, 0)
	if c := produce(9, kmsg.StringPtr("tx"), txnBatch); c != kerr.InvalidTxnState.Code {
		t.Errorf("produce v9 to a partition not added: %s", codeName(c))
	}
	if c := produce(11, kmsg.StringPtr("tx"), txnBatch); c != kerr.TransactionAbortable.Code {
		t.Errorf("produce v11 to a partition not added: %s", codeName(c))
	}
	if c := produce(9, nil, txnBatch); c != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Errorf("transactional produce without a transactional id: %s", codeName(c))
	}
	if c := produce(9, kmsg.StringPtr("tx"), transactionalBatch(ir.ProducerID, ir.ProducerEpoch+5, 0)); c != kerr.InvalidTxnState.Code && c != kerr.InvalidProducerEpoch.Code {
		t.Errorf("transactional produce with a wrong epoch: %s", codeName(c))
	}
	// v12: the partition joins the transaction implicitly; the epoch is
	// checked.
	if c := produce(12, kmsg.StringPtr("tx"), transactionalBatch(ir.ProducerID, ir.ProducerEpoch+5, 0)); c != kerr.InvalidProducerEpoch.Code {
		t.Errorf("produce v12 with a wrong epoch: %s", codeName(c))
	}
	if c := produce(12, kmsg.StringPtr("tx"), txnBatch); c != 0 {
		t.Errorf("produce v12 implicit add: %s", codeName(c))
	}
	if c := end(5, "tx", ir.ProducerID, ir.ProducerEpoch, false); c != 0 {
		t.Errorf("abort: %s", codeName(c))
	}
	// A transaction larger than the limit.
	a2 := startAgent(t, fastFlush, func(c *Config) { c.Txn.MaxPartitions = 2 })
	_, adm2 := a2.client(t)
	if _, err := adm2.CreateTopic(ctx, 3, 1, nil, "big"); err != nil {
		t.Fatal(err)
	}
	p, _ := a2.client(t, kgo.TransactionalID("big"), kgo.DefaultProduceTopic("big"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var last error
	for i := range int32(3) {
		last = p.ProduceSync(ctx, &kgo.Record{Partition: i, Value: []byte("x")}).FirstErr()
	}
	if !errors.Is(last, kerr.UnknownServerError) {
		t.Errorf("third partition of a transaction of at most 2: %v", last)
	}
	// Nothing else was harmed: an idempotent producer still writes.
	plain, _ := a.client(t, kgo.DefaultProduceTopic("t"))
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("ok")}).FirstErr(); err != nil {
		t.Fatalf("plain produce after the errors: %v", err)
	}
}

// transactionalBatch is a one-record transactional batch.
func transactionalBatch(pid int64, epoch int16, seq int32) []byte {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(oneRecordBatch([]byte("v"))); err != nil {
		panic(err)
	}
	rb.Attributes |= 0x10
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = pid, epoch, seq
	return encodeTestBatch(&rb)
}

// TestTransactionFencingAndTimeout: a second instance of a transactional
// id fences the first (its open transaction is aborted), and a
// transaction past its timeout is aborted by the coordinator.
func TestTransactionFencingAndTimeout(t *testing.T) {
	a := startAgent(t, fastFlush, func(c *Config) { c.Txn.AbortInterval = 50 * time.Millisecond })
	ctx := ctxTimeout(t)
	_, adm := a.client(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	zombie, _ := a.client(t, kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("t"))
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := zombie.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fresh, _ := a.client(t, kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("t"))
	if err := fresh.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := fresh.ProduceSync(ctx, &kgo.Record{Value: []byte("fresh")}).FirstErr(); err != nil {
		t.Fatalf("the new instance's produce: %v", err)
	}
	if err := zombie.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the fenced instance committed")
	}
	if err := fresh.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("the new instance's commit: %v", err)
	}
	if got := consumeAll(t, a, "t", true); !slices.Equal(got, []string{"fresh"}) {
		t.Fatalf("read_committed after fencing: %v", got)
	}

	// A transaction of 1s that is never ended.
	slow, _ := a.client(t, kgo.TransactionalID("slow"), kgo.DefaultProduceTopic("t"), kgo.TransactionTimeout(time.Second))
	if err := slow.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := slow.ProduceSync(ctx, &kgo.Record{Value: []byte("slow")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for {
		o, err := adm.ListCommittedOffsets(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		e, _ := adm.ListEndOffsets(ctx, "t")
		if lso, hw := o["t"][0].Offset, e["t"][0].Offset; lso == hw {
			break // aborted: the LSO reached the end
		}
		select {
		case <-ctx.Done():
			t.Fatal("the expired transaction was never aborted")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := slow.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the timed-out transaction committed")
	}
	if got := consumeAll(t, a, "t", true); !slices.Equal(got, []string{"fresh"}) {
		t.Fatalf("read_committed after the timeout: %v", got)
	}
	ps, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"t": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	ps.EachProducer(func(kadm.DescribedProducer) { n++ })
	if n < 2 {
		t.Fatalf("DescribeProducers lists %d producers", n)
	}
	lt, err := adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(lt) != 2 {
		t.Fatalf("ListTransactions: %+v", lt)
	}
}

// encodeTestBatch encodes rb with its length and CRC.
func encodeTestBatch(rb *kmsg.RecordBatch) []byte {
	raw := rb.AppendTo(nil)
	rb.Length = int32(len(raw) - 12)
	raw = rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}
