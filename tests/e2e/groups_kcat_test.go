package e2e

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

// kcatGroupConsume runs `kcat -G group topic -e` (librdkafka's balanced
// consumer; -e exits once every assigned partition is at its end, and
// closing commits the consumed offsets) and returns what it read. A group
// without committed offsets starts from the earliest record through
// auto.offset.reset: kcat's `-o beginning` would instead start every
// assigned partition at the beginning whatever was committed (kcat does
// that against Apache Kafka too).
func kcatGroupConsume(t testing.TB, ctx context.Context, kcat, addr, group, topic string) []groupRecord {
	t.Helper()
	// The deadline turns a consumer that never reaches the end into a
	// failure instead of a hang.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, kcat, "-b", addr, "-G", group, topic, "-X", "auto.offset.reset=earliest", "-e", "-J", "-q",
		"-X", "session.timeout.ms=10000", "-X", "fetch.wait.max.ms=200")
	var out []groupRecord
	for _, line := range runLines(t, cmd) {
		var m kcatMessage
		decodeLine(t, line, &m)
		if m.Topic != topic || m.Key == nil || m.Payload == nil {
			t.Fatalf("kcat -G read %q: want a keyed record of %s", line, topic)
		}
		out = append(out, groupRecord{"kcat", m.Partition, m.Offset, *m.Key, *m.Payload})
	}
	return out
}

// TestGroupKcat: kcat -G (librdkafka's high-level consumer) reads every
// record of a 3-partition topic and commits on exit; a second run of the
// same group gets nothing old, and a third gets exactly what was produced
// since.
func TestGroupKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		missingTool(t, "kcat not installed (tests/install-deps.sh installs it)")
	}
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		s := newSilt(t).Start()
		ctx := testContext(t, 120*time.Second)
		const topic, group = "group-kcat", "group-kcat"
		createTopic(t, ctx, s.Kafka(), topic, 3)
		acks := produceKeyed(t, ctx, s.Kafka(), topic, "kcat group round 1", 45, 9)

		got := kcatGroupConsume(t, ctx, kcat, s.Kafka(), group, topic)
		checkExactly(t, "kcat -G first run", acks, got)
		ends := endOffsets(t, ctx, s.Kafka(), topic)
		if c := committedOffsets(t, ctx, s.Kafka(), group, topic); !sameOffsets(c, ends) {
			t.Fatalf("committed offsets after kcat -G read everything: %v, want the end offsets %v", c, ends)
		}

		if again := kcatGroupConsume(t, ctx, kcat, s.Kafka(), group, topic); len(again) != 0 {
			t.Fatalf("second kcat -G run of the group read %d records (first %+v), want none: committed offsets not honoured", len(again), again[0])
		}

		more := produceKeyed(t, ctx, s.Kafka(), topic, "kcat group round 2", 18, 9)
		checkExactly(t, "kcat -G third run", more, kcatGroupConsume(t, ctx, kcat, s.Kafka(), group, topic))
		ends = endOffsets(t, ctx, s.Kafka(), topic)
		if c := committedOffsets(t, ctx, s.Kafka(), group, topic); !sameOffsets(c, ends) {
			t.Fatalf("committed offsets after the third run: %v, want the end offsets %v", c, ends)
		}
	})
}
