package storetest

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/siltdata/silt/metastore"
)

// testConcurrentCommits has several committers, each an agent with its own
// idempotent producer, commit segments touching interleaved, overlapping
// partition sets at the same time, and resend some batches. Afterwards
// every partition's offsets are contiguous from 0 with no gap and no
// overlap, the batch index agrees, and every resent batch was answered as
// a duplicate with its original offset.
func testConcurrentCommits(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	const (
		topics     = 3
		partitions = 4
		committers = 8
		segments   = 20
	)
	var tps []metastore.TopicPartition
	for i := range topics {
		top := createTopic(t, s, fmt.Sprintf("t%d", i), partitions)
		for p := range int32(partitions) {
			tps = append(tps, metastore.TopicPartition{Topic: top.ID, Partition: p})
		}
	}
	type span struct{ base, n int64 }
	var (
		mu       sync.Mutex // mu guards accepted and failures
		accepted = map[metastore.TopicPartition][]span{}
		failures []string
		resent   int // duplicates answered with their original offset
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for g := range committers {
		pid, err := s.NextProducerID(c)
		must(t, "NextProducerID", err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := map[metastore.TopicPartition]int32{}
			type sent struct {
				b   metastore.BatchAppend
				off int64
			}
			last := map[metastore.TopicPartition]sent{}
			for i := range segments {
				// Interleaved sets: committer g touches every partition
				// whose index is congruent to g or i modulo 3, in an
				// order that differs between committers.
				var bs []metastore.BatchAppend
				var dups []sent
				seen := map[metastore.TopicPartition]bool{}
				for k := range tps {
					tp := tps[(k*(g+1)+i)%len(tps)]
					if seen[tp] || (k+g)%3 != 0 && (k+i)%3 != 0 {
						continue
					}
					seen[tp] = true
					n := int32(1 + (g+i+k)%4)
					if g%2 == 0 { // even committers are idempotent
						if prev, ok := last[tp]; ok && (i+k)%5 == 0 {
							bs = append(bs, prev.b) // a resend of the previous batch
							dups = append(dups, prev)
						}
						bs = append(bs, idem(tp, pid, 0, seq[tp], n))
						seq[tp] += n
					} else {
						bs = append(bs, batch(tp, n, int64(i), 10))
					}
				}
				key := fmt.Sprintf("c%d-s%d", g, i)
				if err := s.AddPendingSegment(c, key); err != nil {
					fail("%s: %v", key, err)
					return
				}
				res, err := s.CommitSegment(c, metastore.Segment{Key: key, Size: 1, Batches: bs})
				if err != nil {
					fail("%s: %v", key, err)
					return
				}
				di := 0
				for j, r := range res {
					b := bs[j]
					if errors.Is(r.Err, metastore.ErrDuplicateSequence) {
						if di >= len(dups) || dups[di].b != b || r.BaseOffset != dups[di].off {
							fail("%s batch %d: unexpected duplicate %+v", key, j, r)
						}
						di++
						continue
					}
					if r.Err != nil {
						fail("%s batch %d: %v", key, j, r.Err)
						continue
					}
					mu.Lock()
					accepted[b.TopicPartition] = append(accepted[b.TopicPartition], span{r.BaseOffset, int64(b.Records)})
					mu.Unlock()
					if b.ProducerID >= 0 {
						last[b.TopicPartition] = sent{b, r.BaseOffset}
					}
				}
				if di != len(dups) {
					fail("%s: %d resends, %d answered as duplicates", key, len(dups), di)
				}
				mu.Lock()
				resent += di
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d failures, first: %s", len(failures), failures[0])
	}
	if resent == 0 {
		t.Fatal("no batch was resent: the test does not exercise duplicates")
	}
	t.Logf("%d duplicate batches answered with their original offsets", resent)
	for _, tp := range tps {
		spans := accepted[tp]
		sort.Slice(spans, func(i, j int) bool { return spans[i].base < spans[j].base })
		next := int64(0)
		for _, sp := range spans {
			if sp.base != next {
				t.Fatalf("partition %s/%d: batch at %d, expected %d (gap or overlap)", tp.Topic, tp.Partition, sp.base, next)
			}
			next += sp.n
		}
		bs, o, err := s.Batches(c, tp, 0, 1<<40)
		must(t, "Batches", err)
		if o.HighWatermark != next || len(bs) != len(spans) {
			t.Fatalf("partition %d: hw %d, %d index rows; want %d, %d", tp.Partition, o.HighWatermark, len(bs), next, len(spans))
		}
		for i, b := range bs {
			if b.BaseOffset != spans[i].base || b.LastOffset != spans[i].base+spans[i].n-1 {
				t.Fatalf("partition %d index row %d = %+v, want %+v", tp.Partition, i, b, spans[i])
			}
		}
	}
}
