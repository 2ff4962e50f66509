package e2e

// Transactional producers of other clients than franz-go (kafkajs and
// sarama here; confluent-kafka in tests/interop/python/clients.py): each
// commits a transaction with offsets of a group, aborts one, commits
// another, and a read_committed reader of the same client sees exactly
// the committed records. What the log holds is checked with franz-go too.

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
)

// txnScenario is the three transactions every client runs: committed1
// (4 records over partitions 0 and 1, with the group's offset of the
// input topic's partition 0 at 3), aborted (4 records, offset 99 for the
// group), committed2 (2 records).
var txnScenario = []struct {
	label  string
	n      int
	commit bool
}{{"committed1", 4, true}, {"aborted", 4, false}, {"committed2", 2, true}}

// txnScenarioValues are the values of the scenario's committed records
// and the number of aborted ones.
func txnScenarioValues() (committed []string, aborted int) {
	for _, tx := range txnScenario {
		for i := range tx.n {
			if tx.commit {
				committed = append(committed, fmt.Sprintf("%s-%d", tx.label, i))
			} else {
				aborted++
			}
		}
	}
	return committed, aborted
}

// checkTxnOutcome checks what the scenario left in topic and in group's
// offsets, as franz-go reads them: read_committed, exactly the committed
// values; read_uncommitted, the aborted records as well; the group's
// offset of in's partition 0 is the committed transaction's 3.
func checkTxnOutcome(t *testing.T, addr, topic, in, group string) {
	t.Helper()
	ctx := testContext(t, 60*time.Second)
	want, aborted := txnScenarioValues()
	got, uncommitted := readCommittedValues(t, ctx, []string{addr}, topic)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("read_committed values of %s: %v, want %v", topic, got, want)
	}
	if uncommitted != len(want)+aborted {
		t.Errorf("read_uncommitted reads %d records of %s, want %d (the aborted ones too)", uncommitted, topic, len(want)+aborted)
	}
	adm := kadm.NewClient(clusterClient(t, []string{addr}))
	defer adm.Close()
	offs, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	if o, ok := offs.Lookup(in, 0); !ok || o.At != 3 {
		t.Errorf("offset of group %s for %s-0: %+v (found %v), want 3 (the aborted transaction's 99 must not show)", group, in, o, ok)
	}
}

// TestKafkaJSTransactions: kafkajs's transactional producer (commit with
// sendOffsets, abort) and its read_committed consumer.
func TestKafkaJSTransactions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		s := newSilt(t, "--flush-interval", "20ms").Start()
		ctx := testContext(t, 30*time.Second)
		const topic, in, group = "kafkajs-txn", "kafkajs-txn-in", "kafkajs-txn-group"
		createTopic(t, ctx, s.Kafka(), topic, 2)
		createTopic(t, ctx, s.Kafka(), in, 1)
		var res struct {
			Sent []struct {
				Txn       string `json:"txn"`
				ErrorCode int16  `json:"errorCode"`
			} `json:"sent"`
			Values  []string `json:"values"`
			Offsets []struct {
				Topic     string `json:"topic"`
				Partition int32  `json:"partition"`
				Offset    int64  `json:"offset"`
			} `json:"offsets"`
		}
		runNode(t, &res, "txn", s.Kafka(), topic, in, group, "kafkajs-txn-id")
		if len(res.Sent) != 2*len(txnScenario) {
			t.Errorf("kafkajs acknowledged %+v, want one answer per partition and transaction", res.Sent)
		}
		for _, a := range res.Sent {
			if a.ErrorCode != 0 {
				t.Errorf("kafkajs send in %s: error code %d", a.Txn, a.ErrorCode)
			}
		}
		want, _ := txnScenarioValues()
		got := slices.Clone(res.Values)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("kafkajs read_committed consumer read %v, want %v", res.Values, want)
		}
		if len(res.Offsets) != 1 || res.Offsets[0].Partition != 0 || res.Offsets[0].Offset != 3 {
			t.Errorf("kafkajs fetchOffsets of %s: %+v, want partition 0 at 3", group, res.Offsets)
		}
		checkTxnOutcome(t, s.Kafka(), topic, in, group)
	})
}

// TestSaramaTransactions: sarama's transactional SyncProducer (commit
// with AddOffsetsToTxn, abort) and a read_committed sarama consumer.
func TestSaramaTransactions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		s := newSilt(t, "--flush-interval", "20ms").Start()
		ctx := testContext(t, 30*time.Second)
		const topic, in, group = "sarama-txn", "sarama-txn-in", "sarama-txn-group"
		createTopic(t, ctx, s.Kafka(), topic, 2)
		createTopic(t, ctx, s.Kafka(), in, 1)

		cfg := saramaConfig()
		cfg.Producer.Idempotent = true
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Producer.Return.Successes = true
		cfg.Producer.Transaction.ID = "sarama-txn-id"
		cfg.Producer.Partitioner = sarama.NewManualPartitioner
		cfg.Net.MaxOpenRequests = 1
		prod, err := sarama.NewSyncProducer([]string{s.Kafka()}, cfg)
		if err != nil {
			t.Fatalf("sarama transactional producer: %v", err)
		}
		defer prod.Close()
		for _, tx := range txnScenario {
			if err := prod.BeginTxn(); err != nil {
				t.Fatalf("BeginTxn %s: %v", tx.label, err)
			}
			for i := range tx.n {
				m := &sarama.ProducerMessage{Topic: topic, Partition: int32(i % 2), Value: sarama.StringEncoder(fmt.Sprintf("%s-%d", tx.label, i))}
				if _, _, err := prod.SendMessage(m); err != nil {
					t.Fatalf("send in %s: %v", tx.label, err)
				}
			}
			if tx.label != "committed2" {
				offset := int64(3)
				if !tx.commit {
					offset = 99
				}
				offs := map[string][]*sarama.PartitionOffsetMetadata{in: {{Partition: 0, Offset: offset, LeaderEpoch: -1}}}
				if err := prod.AddOffsetsToTxn(offs, group); err != nil {
					t.Fatalf("AddOffsetsToTxn in %s: %v", tx.label, err)
				}
			}
			end := prod.CommitTxn
			if !tx.commit {
				end = prod.AbortTxn
			}
			if err := end(); err != nil {
				t.Fatalf("end %s (commit %v): %v", tx.label, tx.commit, err)
			}
		}

		// sarama's read_committed partition consumers, until the last
		// committed record: an aborted one would come before it.
		ccfg := saramaConfig()
		ccfg.Consumer.IsolationLevel = sarama.ReadCommitted
		cons, err := sarama.NewConsumer([]string{s.Kafka()}, ccfg)
		if err != nil {
			t.Fatalf("sarama consumer: %v", err)
		}
		defer cons.Close()
		values := make(chan string, 64) // more than the topic holds: the readers never block
		for p := range int32(2) {
			pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
			if err != nil {
				t.Fatalf("consume %s-%d: %v", topic, p, err)
			}
			defer pc.Close()
			go func() {
				for m := range pc.Messages() {
					select {
					case values <- string(m.Value):
					case <-ctx.Done():
						return
					}
				}
			}()
		}
		var got []string
		for last := map[string]bool{"committed2-0": true, "committed2-1": true}; len(last) > 0; {
			select {
			case v := <-values:
				got = append(got, v)
				delete(last, v)
			case <-ctx.Done():
				t.Fatalf("sarama read_committed read %v, not yet committed2-0 and -1: %v", got, ctx.Err())
			}
		}
		want, _ := txnScenarioValues()
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("sarama read_committed consumer read %v, want %v", got, want)
		}
		checkTxnOutcome(t, s.Kafka(), topic, in, group)
	})
}
