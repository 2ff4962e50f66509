package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nodeDir holds the kafkajs client (npm install is done by
// tests/install-deps.sh).
var nodeDir = filepath.Join("..", "interop", "node")

// runNode runs interop.js and decodes its RESULT line into out.
func runNode(t *testing.T, out any, args ...string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missingTool(t, "node not installed")
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "kafkajs")); err != nil {
		missingTool(t, "kafkajs not installed: run tests/install-deps.sh")
	}
	ctx := testContext(t, 90*time.Second)
	cmd := exec.CommandContext(ctx, node, append([]string{"interop.js"}, args...)...)
	cmd.Dir = nodeDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node interop.js %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	for line := range strings.Lines(stdout.String()) {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			if err := json.Unmarshal([]byte(rest), out); err != nil {
				t.Fatalf("interop.js result %q: %v", rest, err)
			}
			return
		}
	}
	t.Fatalf("interop.js printed no RESULT line\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
}

// TestKafkaJS produces with kafkajs with every codec (snappy, lz4 and zstd
// through the add-on codecs registered in tests/interop/node/codecs.js),
// checks the acknowledged offsets with franz-go, then consumes back with a
// kafkajs consumer group, which decompresses all five.
func TestKafkaJS(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		s := newSilt(t).Start()
		const topic, n = "kafkajs", 30
		var prod struct {
			Produced []struct {
				Codec      string `json:"codec"`
				Partition  int32  `json:"partition"`
				BaseOffset int64  `json:"baseOffset"`
				Count      int    `json:"count"`
			} `json:"produced"`
		}
		runNode(t, &prod, "produce", s.Kafka(), topic, fmt.Sprint(n))
		if len(prod.Produced) != 5 {
			t.Fatalf("produce result %+v: want one entry per codec", prod)
		}
		var acks []acked
		for i, p := range prod.Produced {
			if p.Partition != 0 || p.BaseOffset != int64(i*n) {
				t.Fatalf("%s batch acknowledged at partition %d offset %d, want 0/%d", p.Codec, p.Partition, p.BaseOffset, i*n)
			}
			for j := range n {
				acks = append(acks, acked{0, p.BaseOffset + int64(j), fmt.Sprintf("k%d", j%3), fmt.Sprintf("kafkajs %s message %d", p.Codec, j)})
			}
		}
		ctx := testContext(t, 60*time.Second)
		recs := consumeN(t, ctx, s.Kafka(), topic, len(acks))
		checkAcked(t, acks, recs)
		// Kafka's attribute codes: none 0, gzip 1, snappy 2, lz4 3, zstd 4.
		codecID := map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
		for _, r := range recs {
			if len(r.Headers) != 2 || r.Headers[0].Key != "codec" || r.Headers[1].Key != "index" {
				t.Fatalf("record %q: headers %+v", r.Value, r.Headers)
			}
			codec := string(r.Headers[0].Value)
			if got := r.Attrs.CompressionType(); got != codecID[codec] {
				t.Fatalf("record %q was sent with %s but its batch has compression type %d", r.Value, codec, got)
			}
		}

		t.Run("consumer-group", func(t *testing.T) {
			var cons struct {
				Consumed []struct {
					Partition int32             `json:"partition"`
					Offset    int64             `json:"offset"`
					Key       string            `json:"key"`
					Value     string            `json:"value"`
					Headers   map[string]string `json:"headers"`
				} `json:"consumed"`
			}
			runNode(t, &cons, "consume", s.Kafka(), topic, "kafkajs-group", fmt.Sprint(len(acks)))
			if len(cons.Consumed) != len(acks) {
				t.Fatalf("kafkajs consumed %d messages, want %d", len(cons.Consumed), len(acks))
			}
			for i, m := range cons.Consumed {
				a := acks[i]
				if m.Partition != a.Partition || m.Offset != a.Offset || m.Key != a.Key || m.Value != a.Value {
					t.Fatalf("kafkajs message %d: %+v, want %v", i, m, a)
				}
				if m.Headers["codec"] == "" || m.Headers["index"] != fmt.Sprint(i%n) {
					t.Fatalf("kafkajs message %d headers %v", i, m.Headers)
				}
			}
		})
	})
}
