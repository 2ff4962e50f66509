package loadgen

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TxnResult is what a run of small transactions measured.
type TxnResult struct {
	Transactions int
	// EndTxn is the client-side latency of each commit: franz-go's
	// EndTransaction (nothing is buffered: the record was acknowledged
	// before), i.e. one EndTxn round trip.
	EndTxn *Samples
	// WriteTxPerEnd is the metastore's write transactions per EndTxn,
	// from the probe's pg_xids counter read around each EndTxn (the
	// reads' own transaction taken off); -1 when not measured.
	WriteTxPerEnd float64
}

// Transactions creates cfg.Topic and runs n transactions one after
// another on one transactional producer, each one random record of
// cfg.RecordSize bytes to the next partition and a commit, and measures
// the commits. counters (may be nil) reads the metastore's pg_xids.
func Transactions(ctx context.Context, cfg Config, n int, counters func(context.Context) (map[string]float64, error)) (TxnResult, error) {
	if err := CreateTopic(ctx, cfg); err != nil {
		return TxnResult{}, err
	}
	brokers, topic, partitions, size := cfg.Brokers, cfg.Topic, cfg.Partitions, cfg.RecordSize
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	opts := append(cfg.Client.kgoOpts(brokers), kgo.ClientID("silt-bench-txn"),
		kgo.TransactionalID(fmt.Sprintf("silt-bench-%x", id)), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return TxnResult{}, fmt.Errorf("transactional client: %w", err)
	}
	defer cl.Close()
	res := TxnResult{EndTxn: &Samples{}, WriteTxPerEnd: -1}
	var xids float64
	measured := counters != nil
	for i := range n {
		if err := cl.BeginTransaction(); err != nil {
			return res, fmt.Errorf("begin transaction %d: %w", i, err)
		}
		v := make([]byte, size)
		_, _ = rand.Read(v)
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: int32(i % partitions), Value: v}).FirstErr(); err != nil {
			return res, fmt.Errorf("produce in transaction %d: %w", i, err)
		}
		var before map[string]float64
		if measured {
			if before, err = counters(ctx); err != nil {
				measured = false
			}
		}
		start := time.Now()
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return res, fmt.Errorf("commit transaction %d: %w", i, err)
		}
		res.EndTxn.Add(time.Since(start))
		if measured {
			after, err := counters(ctx)
			if err != nil {
				measured = false
			} else {
				xids += after["pg_xids"] - before["pg_xids"] - 1
			}
		}
		res.Transactions++
	}
	if measured && res.Transactions > 0 {
		res.WriteTxPerEnd = xids / float64(res.Transactions)
	}
	return res, nil
}
