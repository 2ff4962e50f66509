package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/agent/ingest"
	"github.com/siltdata/silt/metastore"
)

// errNoTransactionalID is logged for transactional batches in a produce
// request without a transactional id.
var errNoTransactionalID = errors.New("transactional record batches in a produce request without a transactional id")

// hasTransactionalRecords reports whether a produce request carries
// transactional batches, as Kafka's ProduceRequest.hasTransactionalRecords
// decides it: by the first batch of each partition (before validation).
func hasTransactionalRecords(req *kmsg.ProduceRequest) bool {
	const offAttributes = 21
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			if len(p.Records) >= offAttributes+2 && binary.BigEndian.Uint16(p.Records[offAttributes:])&0x10 != 0 {
				return true
			}
		}
	}
	return false
}

// implicitAdd adds the partitions of items' transactional batches to
// their transactions (Produce v12+, KIP-890), as Kafka's partition leader
// asks the coordinator to. It returns the partitions that could not be
// added, with why; a partition whose transaction the cache says already
// holds it costs nothing. The add is not the coordinator's write: the
// store checks the producer id and epoch against the transactional id.
func (a *Agent) implicitAdd(ctx context.Context, id string, items []ingest.Item) map[metastore.TopicPartition]error {
	type producer struct {
		pid   int64
		epoch int16
	}
	want := map[producer][]metastore.TopicPartition{}
	seen := map[txnAddKey]bool{}
	for _, it := range items {
		if !it.Transactional {
			continue
		}
		k := txnAddKey{it.ProducerID, it.ProducerEpoch, it.TopicPartition}
		if seen[k] || a.txnAdded.has(k) {
			continue
		}
		seen[k] = true
		p := producer{it.ProducerID, it.ProducerEpoch}
		want[p] = append(want[p], it.TopicPartition)
	}
	var failed map[metastore.TopicPartition]error
	for p, tps := range want {
		sctx, cancel := context.WithTimeout(ctx, a.cfg.Txn.StoreTimeout)
		_, err := a.store.AddToTransaction(sctx, metastore.AddToTxnRequest{
			TxnProducer: metastore.TxnProducer{ID: id, ProducerID: p.pid, Epoch: p.epoch},
			Partitions:  tps, MaxPartitions: a.cfg.Txn.MaxPartitions,
		})
		cancel()
		if err != nil {
			if failed == nil {
				failed = map[metastore.TopicPartition]error{}
			}
			for _, tp := range tps {
				failed[tp] = err
			}
			continue
		}
		for _, tp := range tps {
			a.txnAdded.add(txnAddKey{p.pid, p.epoch, tp})
		}
	}
	return failed
}

// txnAddKey is one partition of a transaction: under KIP-890 every
// transaction has its own (producer id, epoch).
type txnAddKey struct {
	pid   int64
	epoch int16
	tp    metastore.TopicPartition
}

// txnAddCacheMax bounds the cache; when full it starts over (the cost of
// forgetting is one more implicit add, a no-op metastore transaction).
const txnAddCacheMax = 1 << 16

// txnAddCache remembers the partitions Produce v12+ added to
// transactions, so that a transaction's later produces to a partition need
// no metastore transaction of their own. A stale entry (the transaction
// ended) is harmless: the segment commit refuses the batch, and the entry
// is forgotten.
type txnAddCache struct {
	// mu guards m.
	mu sync.Mutex
	m  map[txnAddKey]struct{}
}

func newTxnAddCache() *txnAddCache { return &txnAddCache{m: map[txnAddKey]struct{}{}} }

func (c *txnAddCache) has(k txnAddKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[k]
	return ok
}

func (c *txnAddCache) add(k txnAddKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= txnAddCacheMax {
		clear(c.m)
	}
	c.m[k] = struct{}{}
}

// forget drops the entries of one producer epoch.
func (c *txnAddCache) forget(pid int64, epoch int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if k.pid == pid && k.epoch == epoch {
			delete(c.m, k)
		}
	}
}
