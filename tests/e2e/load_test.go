package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// load is a set of idempotent acks=all producers writing to one topic in
// the background and recording every acknowledged record.
type load struct {
	t      testing.TB
	cancel context.CancelFunc
	wg     sync.WaitGroup // the producer goroutines and their callbacks

	mu      sync.Mutex // mu guards the fields below
	acks    []acked
	errs    int
	waiters []ackWaiter
}

type ackWaiter struct {
	n  int
	ch chan struct{}
}

// startLoad starts producers writing records to topic on addr until stop.
func startLoad(t testing.TB, addr, topic string, producers int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{t: t, cancel: cancel}
	for p := range producers {
		cl := newClient(t, addr,
			kgo.ProducerLinger(2*time.Millisecond),
			kgo.MaxBufferedRecords(500),
			kgo.RequiredAcks(kgo.AllISRAcks()),
		)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer cl.Close() // fails whatever is still buffered
			for i := 0; ctx.Err() == nil; i++ {
				r := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "producer-%d-key-%d", p, i%16), Value: fmt.Appendf(nil, "producer-%d-record-%d", p, i)}
				l.wg.Add(1)
				cl.Produce(ctx, r, func(r *kgo.Record, err error) {
					defer l.wg.Done()
					l.record(r, err)
				})
			}
		}()
	}
	return l
}

func (l *load) record(r *kgo.Record, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errs++
		return
	}
	l.acks = append(l.acks, acked{r.Partition, r.Offset, string(r.Key), string(r.Value)})
	kept := l.waiters[:0]
	for _, w := range l.waiters {
		if len(l.acks) >= w.n {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	l.waiters = kept
}

// waitAcked waits until at least n records were acknowledged.
func (l *load) waitAcked(ctx context.Context, n int) {
	l.t.Helper()
	l.mu.Lock()
	ch := make(chan struct{})
	if len(l.acks) >= n {
		close(ch)
	} else {
		l.waiters = append(l.waiters, ackWaiter{n, ch})
	}
	l.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		l.mu.Lock()
		have, errs := len(l.acks), l.errs
		l.mu.Unlock()
		l.t.Fatalf("%d of %d records acknowledged (%d failed): %v", have, n, errs, ctx.Err())
	}
}

// stop ends the producers, waits for every outstanding callback, and
// returns the acknowledged records and the number that failed.
func (l *load) stop() ([]acked, int) {
	l.cancel()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		l.t.Fatal("producers did not stop")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acks, l.errs
}

// readAll reads topic to its current high watermarks. Records committed
// after they were read (requests a stopped producer had already sent can
// still commit) are left out, so the count is exact.
func readAll(t testing.TB, ctx context.Context, addr, topic string) []*kgo.Record {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	ends := map[int32]int64{}
	total := 0
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s[%d]: %v", o.Topic, o.Partition, o.Err)
		}
		ends[o.Partition] = o.Offset
		total += int(o.Offset)
	})
	return consume(t, ctx, addr, topic, total, func(r *kgo.Record) bool { return r.Offset < ends[r.Partition] })
}

// checkUnique fails when a produced value was written twice.
func checkUnique(t testing.TB, recs []*kgo.Record) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[string(r.Value)] {
			t.Errorf("record %q written twice", r.Value)
		}
		seen[string(r.Value)] = true
	}
}
