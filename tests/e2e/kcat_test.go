package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// kcatMessage is one line of `kcat -C -J`.
type kcatMessage struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Headers   []string `json:"headers"` // name, value, name, value...
	Key       *string  `json:"key"`
	Payload   *string  `json:"payload"`
}

// TestKcat produces with kcat (librdkafka) with keys, headers and every
// codec, and consumes back with kcat's JSON output.
func TestKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		missingTool(t, "kcat not installed (tests/install-deps.sh installs it)")
	}
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		s := newSilt(t, "--default-partitions", "2").Start()
		for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
			t.Run(codec, func(t *testing.T) {
				ctx := testContext(t, 60*time.Second)
				topic := "kcat-" + codec
				const n = 40
				var in strings.Builder
				for i := range n {
					fmt.Fprintf(&in, "k%d:%s message %d\n", i%4, codec, i)
				}
				prod := exec.CommandContext(ctx, kcat, "-b", s.Kafka(), "-t", topic, "-P", "-K:", "-z", codec,
					"-H", "codec="+codec, "-H", "origin=kcat", "-X", "linger.ms=5")
				prod.Stdin = strings.NewReader(in.String())
				if out, err := prod.CombinedOutput(); err != nil {
					t.Fatalf("kcat -P: %v\n%s", err, out)
				}

				// -e exits once every partition is read to its end; the
				// deadline turns a consumer that never gets there into a
				// failure instead of a hang.
				cctx, cancel := context.WithTimeout(ctx, 25*time.Second)
				defer cancel()
				cons := exec.CommandContext(cctx, kcat, "-b", s.Kafka(), "-t", topic, "-C", "-o", "beginning", "-e", "-J", "-q")
				var stdout, stderr bytes.Buffer
				cons.Stdout, cons.Stderr = &stdout, &stderr
				if err := cons.Run(); err != nil {
					t.Fatalf("kcat -C: %v\n%s", err, stderr.String())
				}
				var msgs []kcatMessage
				for line := range strings.Lines(stdout.String()) {
					var m kcatMessage
					if err := json.Unmarshal([]byte(line), &m); err != nil {
						t.Fatalf("kcat -J line %q: %v", line, err)
					}
					msgs = append(msgs, m)
				}
				if len(msgs) != n {
					t.Fatalf("kcat consumed %d messages, want %d\nstderr: %s", len(msgs), n, stderr.String())
				}
				sort.Slice(msgs, func(i, j int) bool {
					if msgs[i].Partition != msgs[j].Partition {
						return msgs[i].Partition < msgs[j].Partition
					}
					return msgs[i].Offset < msgs[j].Offset
				})
				keyPartition := map[string]int32{}
				lastIndex := map[string]int{}
				next := map[int32]int64{}
				for _, m := range msgs {
					if m.Key == nil || m.Payload == nil {
						t.Fatalf("message without key or payload: %+v", m)
					}
					if m.Offset != next[m.Partition] {
						t.Fatalf("partition %d: offset %d, want %d (contiguous from 0)", m.Partition, m.Offset, next[m.Partition])
					}
					next[m.Partition]++
					var idx int
					if _, err := fmt.Sscanf(*m.Payload, codec+" message %d", &idx); err != nil || fmt.Sprintf("k%d", idx%4) != *m.Key {
						t.Fatalf("message key=%q payload=%q does not match what was produced", *m.Key, *m.Payload)
					}
					if p, ok := keyPartition[*m.Key]; ok && p != m.Partition {
						t.Errorf("key %s on partitions %d and %d", *m.Key, p, m.Partition)
					}
					keyPartition[*m.Key] = m.Partition
					if prev, ok := lastIndex[*m.Key]; ok && idx <= prev {
						t.Errorf("key %s: message %d after %d: order lost", *m.Key, idx, prev)
					}
					lastIndex[*m.Key] = idx
					if want := []string{"codec", codec, "origin", "kcat"}; strings.Join(m.Headers, ",") != strings.Join(want, ",") {
						t.Errorf("headers %q, want %q", m.Headers, want)
					}
				}
			})
		}
	})
}
