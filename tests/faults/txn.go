package faults

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The transactional consume-transform-produce pipeline.
//
// It runs only against agents that advertise the transaction APIs
// (AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit); until
// silt implements transactions (issue 12) TransactionsSupported is false
// and the suite reports the pipeline as skipped. Nothing else needs to
// change when they land: the pipeline starts, and Check's transaction
// checks (aborted-read, committed-missing, not-exactly-once) run on its
// history and on the read_committed read of its output topic.

// txnAPIs are the API keys a transactional producer needs.
var txnAPIs = []int16{
	kmsg.AddPartitionsToTxn.Int16(),
	kmsg.AddOffsetsToTxn.Int16(),
	kmsg.EndTxn.Int16(),
	kmsg.TxnOffsetCommit.Int16(),
}

// TransactionsSupported asks an agent (ApiVersions) whether it
// implements the transaction APIs.
func TransactionsSupported(ctx context.Context, addr string) (bool, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return false, err
	}
	defer cl.Close()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		return false, fmt.Errorf("ApiVersions: %w", err)
	}
	have := map[int16]bool{}
	for _, k := range resp.ApiKeys {
		have[k.ApiKey] = true
	}
	for _, k := range txnAPIs {
		if !have[k] {
			return false, nil
		}
	}
	return true, nil
}

// Pipeline consumes the workload's topic in a group, and for each poll
// produces every input's TransformValue to the output topic and commits
// the consumed offsets in one transaction.
type Pipeline struct {
	cfg    WorkloadConfig
	out    string // output topic
	group  string // the pipeline's consumer group
	h      *History
	ctx    context.Context
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// StartPipeline starts the pipeline from cfg's topic to out.
func StartPipeline(ctx context.Context, cfg WorkloadConfig, out, group string, h *History) *Pipeline {
	p := &Pipeline{cfg: cfg, out: out, group: group, h: h}
	p.ctx, p.cancel = context.WithCancel(ctx)
	p.done.Go(p.run)
	return p
}

// Stop ends the pipeline (the transaction in progress is aborted).
func (p *Pipeline) Stop() {
	p.cancel()
	p.done.Wait()
}

func (p *Pipeline) session() (*kgo.GroupTransactSession, error) {
	return kgo.NewGroupTransactSession(append(p.cfg.clientOpts("txn-pipeline"),
		kgo.TransactionalID("faults-pipeline"),
		kgo.TransactionTimeout(30*time.Second),
		kgo.ConsumerGroup(p.group),
		kgo.ConsumeTopics(p.cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.RequestTimeoutOverhead(5*time.Second),
	)...)
}

// run is the pipeline's loop. A session whose End fails is in a state
// franz-go cannot continue from: it is closed and a new one (the same
// transactional id, so the old producer is fenced) takes over.
func (p *Pipeline) run() {
	seq := 0
	for p.ctx.Err() == nil {
		s, err := p.session()
		if err != nil {
			p.h.AddAppError(AppError{Client: "txn-pipeline", Err: "new session: " + err.Error(), At: time.Now()})
			return
		}
		for p.ctx.Err() == nil {
			fs := s.PollRecords(p.ctx, 500)
			if p.ctx.Err() != nil {
				break
			}
			for _, e := range fs.Errors() {
				p.h.AddAppError(AppError{Client: "txn-pipeline", Err: fmt.Sprintf("poll %s[%d]: %v", e.Topic, e.Partition, e.Err), Retriable: Retriable(e.Err), At: time.Now()})
			}
			if fs.NumRecords() == 0 {
				continue
			}
			seq++
			t := Txn{Producer: "txn-pipeline", Seq: seq}
			if err := s.Begin(); err != nil {
				p.h.AddAppError(AppError{Client: "txn-pipeline", Err: "begin: " + err.Error(), At: time.Now()})
				break
			}
			fs.EachRecord(func(r *kgo.Record) {
				t.Inputs = append(t.Inputs, Input{Partition: r.Partition, Offset: r.Offset, Value: string(r.Value)})
				v := TransformValue(string(r.Value))
				t.Outputs = append(t.Outputs, v)
				s.Produce(p.ctx, &kgo.Record{Topic: p.out, Key: r.Key, Value: []byte(v)}, nil)
			})
			committed, err := s.End(p.ctx, kgo.TryCommit)
			t.At = time.Now()
			switch {
			case err != nil:
				t.Outcome = TxnUnknown
			case committed:
				t.Outcome = TxnCommitted
			default:
				t.Outcome = TxnAborted
			}
			p.h.AddTxn(t)
			if err != nil {
				if p.ctx.Err() == nil {
					p.h.AddAppError(AppError{Client: "txn-pipeline", Err: "end transaction: " + err.Error(), Retriable: Retriable(err), At: t.At})
				}
				break
			}
		}
		s.Close()
	}
}
