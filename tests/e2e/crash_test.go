package e2e

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKillDuringLoad SIGKILLs the agent while several producers write, then
// restarts it on the same metastore and bucket: every record acknowledged
// before the kill is read back at its acknowledged offset, once.
func TestKillDuringLoad(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		ctx := testContext(t, 3*time.Minute)
		const topic = "crash"
		s := newSilt(t, "--default-partitions", "4", "--flush-interval", "20ms").Start()

		l := startLoad(t, s.Kafka(), topic, 4)
		l.waitAcked(ctx, 2000)
		s.Kill()
		acks, failed := l.stop()
		t.Logf("%d records acknowledged before the kill, %d failed", len(acks), failed)

		s.Restart()
		recs := readAll(t, ctx, s.Kafka(), topic)
		checkAcked(t, acks, recs)
		checkUnique(t, recs)

		// The restarted agent keeps appending after what survived.
		cl := newClient(t, s.Kafka())
		r := &kgo.Record{Topic: topic, Value: []byte("after restart")}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce after restart: %v", err)
		}
		var end int64
		for _, x := range recs {
			if x.Partition == r.Partition && x.Offset >= end {
				end = x.Offset + 1
			}
		}
		if r.Offset != end {
			t.Errorf("record after restart at offset %d of partition %d, want %d", r.Offset, r.Partition, end)
		}
	})
}
