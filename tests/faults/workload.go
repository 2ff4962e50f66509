package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// WorkloadConfig is the clients' load.
type WorkloadConfig struct {
	Seeds      []string
	Topic      string
	Partitions int32
	Group      string
	Producers  int
	// Rate is records per second per producer.
	Rate    int
	Keys    int
	Members int
	// ClientLog receives the clients' own logs (franz-go, info level).
	ClientLog io.Writer
}

// Workload runs the producers, the group's members and the committed
// offsets sampler, recording everything in History.
type Workload struct {
	cfg WorkloadConfig
	h   *History

	prodCtx    context.Context
	stopProd   context.CancelFunc
	producing  sync.WaitGroup // the producer loops
	producers  []*kgo.Client
	consCtx    context.Context
	stopCons   context.CancelFunc
	consuming  sync.WaitGroup // the members' poll loops and the sampler
	members    []*kgo.Client
	sampler    *kadm.Client
	samplerCl  *kgo.Client // sampler's client
	stopping   atomic.Bool // produce errors from here on may be the suite's own cancellation
	sent       atomic.Int64
	cancelled  atomic.Int64   // records the suite's cancellation failed when it stopped the producers
	memberPoll []atomic.Int64 // polls per member, for progress checks
}

// clientOpts are common to every client: a short metadata refresh
// floor (recovery times measured are the cluster's, not the client's
// throttle) and their logs.
func (c WorkloadConfig) clientOpts(name string) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Seeds...),
		kgo.ClientID(name),
		kgo.MetadataMinAge(500 * time.Millisecond),
	}
	if c.ClientLog != nil {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(c.ClientLog, kgo.LogLevelInfo, func() string {
			return time.Now().Format("15:04:05.000000 ") + name + " "
		})))
	}
	return opts
}

// StartWorkload starts every client; the topic must exist.
func StartWorkload(ctx context.Context, cfg WorkloadConfig, h *History) (*Workload, error) {
	w := &Workload{cfg: cfg, h: h, memberPoll: make([]atomic.Int64, cfg.Members)}
	w.prodCtx, w.stopProd = context.WithCancel(ctx)
	w.consCtx, w.stopCons = context.WithCancel(ctx)
	for i := range cfg.Producers {
		name := fmt.Sprintf("producer-%d", i)
		// Idempotent with acks=all: franz-go's defaults, spelled out.
		cl, err := kgo.NewClient(append(cfg.clientOpts(name),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(5*time.Millisecond),
		)...)
		if err != nil {
			w.Close()
			return nil, err
		}
		w.producers = append(w.producers, cl)
		w.producing.Go(func() { w.produce(name, cl) })
	}
	for i := range cfg.Members {
		name := fmt.Sprintf("member-%d", i)
		m := &member{w: w, name: name, idx: i}
		cl, err := kgo.NewClient(append(cfg.clientOpts(name),
			kgo.ConsumerGroup(cfg.Group),
			kgo.ConsumeTopics(cfg.Topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(),
			// Rebalances wait while a poll is processed and committed,
			// so a poll's records all belong to one assignment.
			kgo.BlockRebalanceOnPoll(),
			kgo.OnPartitionsAssigned(m.reassigned),
			kgo.OnPartitionsRevoked(m.reassigned),
			kgo.OnPartitionsLost(m.reassigned),
			kgo.FetchMaxWait(500*time.Millisecond),
			kgo.HeartbeatInterval(time.Second),
			// A request to a paused agent hangs until its deadline
			// (the overhead), and franz-go retries a group request at
			// the same coordinator until the retry timeout: seconds,
			// not franz-go's defaults of 10 s and more, so a member
			// moves on within the time of a fault.
			kgo.RebalanceTimeout(10*time.Second),
			kgo.RequestTimeoutOverhead(3*time.Second),
			kgo.RetryTimeout(5*time.Second),
		)...)
		if err != nil {
			w.Close()
			return nil, err
		}
		w.members = append(w.members, cl)
		w.consuming.Go(func() { m.run(cl) })
	}
	scl, err := kgo.NewClient(append(cfg.clientOpts("sampler"), kgo.RetryTimeout(5*time.Second))...)
	if err != nil {
		w.Close()
		return nil, err
	}
	w.samplerCl, w.sampler = scl, kadm.NewClient(scl)
	w.consuming.Go(w.sample)
	return w, nil
}

// produce sends cfg.Rate records per second until the workload stops
// producing. Values are unique: "<producer>-<n>".
func (w *Workload) produce(name string, cl *kgo.Client) {
	tick := time.NewTicker(time.Second / time.Duration(max(1, w.cfg.Rate)))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-w.prodCtx.Done():
			return
		case <-tick.C:
		}
		rec := &kgo.Record{
			Topic: w.cfg.Topic,
			Key:   fmt.Appendf(nil, "k%d", n%max(1, w.cfg.Keys)),
			Value: fmt.Appendf(nil, "%s-%d", name, n),
		}
		w.sent.Add(1)
		cl.Produce(w.prodCtx, rec, func(r *kgo.Record, err error) {
			if err == nil {
				w.h.AddAck(Ack{Producer: name, Partition: r.Partition, Offset: r.Offset, Value: string(r.Value)})
				return
			}
			if w.stopping.Load() && (errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed)) {
				w.cancelled.Add(1)
				return // the suite's own cancellation: never acknowledged, nothing claimed
			}
			w.h.AddProduceError(ProduceError{Producer: name, Value: string(r.Value), Err: err.Error(), At: time.Now()})
		})
	}
}

// member is one consumer of the group.
type member struct {
	w     *Workload
	name  string
	idx   int
	epoch atomic.Int64
}

func (m *member) reassigned(context.Context, *kgo.Client, map[string][]int32) { m.epoch.Add(1) }

// run polls, records the poll, commits what it polled and records the
// commit's outcome, until the workload stops consuming.
func (m *member) run(cl *kgo.Client) {
	ctx := m.w.consCtx
	for {
		fs := cl.PollRecords(ctx, 1000)
		if ctx.Err() != nil {
			cl.AllowRebalance()
			return
		}
		now := time.Now()
		for _, e := range fs.Errors() {
			m.w.h.AddAppError(AppError{Client: m.name, Err: fmt.Sprintf("poll %s[%d]: %v", e.Topic, e.Partition, e.Err), Retriable: Retriable(e.Err), At: now})
		}
		poll := Poll{Member: m.name, Epoch: int(m.epoch.Load()), At: now}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			pp := PolledPartition{Partition: p.Partition}
			for _, r := range p.Records {
				pp.Offsets = append(pp.Offsets, r.Offset)
				pp.Values = append(pp.Values, string(r.Value))
			}
			poll.Partitions = append(poll.Partitions, pp)
		})
		if len(poll.Partitions) > 0 {
			m.w.h.AddPoll(poll)
		}
		m.w.memberPoll[m.idx].Add(1)
		if offs := cl.UncommittedOffsets(); len(offs) > 0 {
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			cl.CommitOffsetsSync(cctx, offs, m.recordCommit)
			cancel()
		}
		cl.AllowRebalance()
	}
}

// recordCommit records each partition's outcome of an OffsetCommit.
func (m *member) recordCommit(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	now := time.Now()
	if err != nil {
		if m.w.consCtx.Err() == nil {
			m.w.h.AddAppError(AppError{Client: m.name, Err: "commit: " + err.Error(), Retriable: Retriable(err), At: now})
		}
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				m.w.h.AddCommits(Commit{Member: m.name, Partition: p.Partition, Offset: p.Offset, Err: err.Error(), At: now})
			}
		}
		return
	}
	sent := map[int32]int64{}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			sent[p.Partition] = p.Offset
		}
	}
	var cs []Commit
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			c := Commit{Member: m.name, Partition: p.Partition, Offset: sent[p.Partition], At: now}
			if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
				c.Err = e.Error()
				if !groupChurn(e) {
					m.w.h.AddAppError(AppError{Client: m.name, Err: fmt.Sprintf("commit %s[%d]: %v", t.Topic, p.Partition, e), Retriable: Retriable(e), At: now})
				}
			}
			cs = append(cs, c)
		}
	}
	m.w.h.AddCommits(cs...)
}

// sample reads the group's committed offsets every second.
func (w *Workload) sample() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-w.consCtx.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(w.consCtx, 5*time.Second)
		offs, err := w.sampler.FetchOffsets(ctx, w.cfg.Group)
		cancel()
		if err != nil || offs.Error() != nil {
			// The coordinator is moving: no sample. franz-go keeps
			// asking a cached coordinator that times out (a paused
			// agent) until its metadata drops that agent.
			w.samplerCl.ForceMetadataRefresh()
			continue
		}
		s := OffsetSample{Start: start, At: time.Now(), Offsets: map[int32]int64{}}
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == w.cfg.Topic && o.At >= 0 {
				s.Offsets[o.Partition] = o.At
			}
		})
		w.h.AddSample(s)
	}
}

// Polls is the number of polls member i has made.
func (w *Workload) Polls(i int) int64 { return w.memberPoll[i].Load() }

// Sent is the number of records handed to the producers.
func (w *Workload) Sent() int64 { return w.sent.Load() }

// Cancelled is the number of records failed by the suite's own
// cancellation when it stopped the producers (neither acknowledged nor
// failed to the application).
func (w *Workload) Cancelled() int64 { return w.cancelled.Load() }

// StopProducing stops the producers and waits until every record they
// were given is acknowledged or failed. It reports how many were still
// outstanding when ctx ended.
func (w *Workload) StopProducing(ctx context.Context) error {
	w.stopping.Store(true)
	w.stopProd()
	w.producing.Wait()
	var errs []error
	for i, cl := range w.producers {
		// The records' context is cancelled: Flush waits for the
		// requests already sent, which the cluster must answer.
		if err := cl.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("producer-%d: %d records unanswered: %w", i, cl.BufferedProduceRecords(), err))
		}
	}
	return errors.Join(errs...)
}

// StopConsuming stops the members and the sampler.
func (w *Workload) StopConsuming() {
	w.stopping.Store(true)
	w.stopCons()
	w.consuming.Wait()
}

// Close stops everything and closes every client.
func (w *Workload) Close() {
	w.stopping.Store(true)
	w.stopProd()
	w.producing.Wait()
	w.StopConsuming()
	for _, cl := range w.producers {
		cl.Close()
	}
	for _, cl := range w.members {
		cl.Close()
	}
	if w.sampler != nil {
		w.sampler.Close()
	}
}

// groupChurn reports commit errors that mean the member's generation
// ended (a rebalance): the member rejoins and its partitions' new owner
// resumes from the last accepted commit. Routine in a group whose
// coordinator moves, not an error the application must handle.
func groupChurn(err error) bool {
	return errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.IllegalGeneration) ||
		errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.FencedInstanceID)
}

// Retriable classifies an error a client handed to the application:
// Kafka's retriable codes, a rebalance, a connection that failed or timed
// out, or a group session that ended for one of those; anything else
// (an error the application would have to act on) is not.
func Retriable(err error) bool {
	if err == nil {
		return true
	}
	var ge *kgo.ErrGroupSession
	if errors.As(err, &ge) {
		return Retriable(ge.Err)
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable || groupChurn(ke)
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	// franz-go's own wrapping of a failed connection, and its error for
	// a request whose connection died (it retries those itself).
	msg := err.Error()
	return strings.Contains(msg, "unable to dial") || strings.Contains(msg, "the broker connection has died")
}
