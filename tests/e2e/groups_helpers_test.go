package e2e

// Helpers of the consumer-group tests (groups_*_test.go): topics with
// several partitions, keyed production with franz-go, and the group's view
// from the admin side (committed offsets, DescribeGroups).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// createTopic creates topic with the given partition count.
func createTopic(t testing.TB, ctx context.Context, addr, topic string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s with %d partitions: %v", topic, partitions, err)
	}
}

// produceKeyed produces n records to topic synchronously, record i with
// key "k<i mod keys>" and value "<prefix> <i>", and returns them as
// acknowledged. The default partitioner hashes keys as Kafka's does.
func produceKeyed(t testing.TB, ctx context.Context, addr, topic, prefix string, n, keys int) []acked {
	t.Helper()
	cl := newClient(t, addr)
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%keys), Value: fmt.Appendf(nil, "%s %d", prefix, i)}
	}
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce %d records to %s: %v", n, topic, err)
	}
	out := make([]acked, 0, n)
	for _, r := range res {
		out = append(out, acked{r.Record.Partition, r.Record.Offset, string(r.Record.Key), string(r.Record.Value)})
	}
	return out
}

// endOffsets returns the high watermark of every partition of topic.
func endOffsets(t testing.TB, ctx context.Context, addr, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// committedOffsets returns group's committed offsets for topic by
// partition; a partition without a commit is absent.
func committedOffsets(t testing.TB, ctx context.Context, addr, group, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	offs, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		t.Fatalf("fetch offsets of group %s: %v", group, err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

// describeGroup describes one group.
func describeGroup(t testing.TB, ctx context.Context, addr, group string) kadm.DescribedGroup {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatalf("describe group %s: %v", group, err)
	}
	g, ok := gs[group]
	if !ok {
		t.Fatalf("describe group %s: not in the response %v", group, gs)
	}
	if g.Err != nil {
		t.Fatalf("describe group %s: %v %s", group, g.Err, g.ErrMessage)
	}
	return g
}

// sameOffsets reports whether two partition->offset maps are equal.
func sameOffsets(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for p, o := range a {
		if bo, ok := b[p]; !ok || bo != o {
			return false
		}
	}
	return true
}

// groupRecord is one record as a group consumer (any client) saw it.
type groupRecord struct {
	Consumer  string `json:"consumer"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	Value     string `json:"value"`
}

// checkExactly verifies that got holds every record of want (by partition
// and offset, with its key and value) exactly once and nothing else.
func checkExactly(t testing.TB, what string, want []acked, got []groupRecord) {
	t.Helper()
	type po struct {
		p int32
		o int64
	}
	seen := map[po]groupRecord{}
	bad := 0
	fail := func(format string, args ...any) {
		t.Errorf("%s: "+format, append([]any{what}, args...)...)
		if bad++; bad > 20 {
			t.Fatalf("%s: too many errors", what)
		}
	}
	for _, r := range got {
		if prev, dup := seen[po{r.Partition, r.Offset}]; dup {
			fail("p%d@%d consumed twice (by %q and %q)", r.Partition, r.Offset, prev.Consumer, r.Consumer)
		}
		seen[po{r.Partition, r.Offset}] = r
	}
	wanted := map[po]bool{}
	for _, a := range want {
		wanted[po{a.Partition, a.Offset}] = true
		r, ok := seen[po{a.Partition, a.Offset}]
		switch {
		case !ok:
			fail("acknowledged record %v not consumed", a)
		case r.Key != a.Key || r.Value != a.Value:
			fail("acknowledged record %v consumed as key=%q value=%q", a, r.Key, r.Value)
		}
	}
	for k, r := range seen {
		if !wanted[k] {
			fail("consumed p%d@%d key=%q value=%q, which is not among the expected records", r.Partition, r.Offset, r.Key, r.Value)
		}
	}
}

// nextOffsets returns, per partition, one past the highest offset in acks.
func nextOffsets(acks []acked) map[int32]int64 {
	out := map[int32]int64{}
	for _, a := range acks {
		if a.Offset+1 > out[a.Partition] {
			out[a.Partition] = a.Offset + 1
		}
	}
	return out
}

// runLines runs cmd (already bound to a context) and returns its stdout
// lines; a failure reports stderr.
func runLines(t testing.TB, cmd *exec.Cmd) []string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(cmd.Args, " "), err, stdout.String(), stderr.String())
	}
	var lines []string
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// decodeLine decodes one JSON line or fails the test.
func decodeLine(t testing.TB, line string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(line), v); err != nil {
		t.Fatalf("decode %q: %v", line, err)
	}
}

// sortedPartitions returns the keys of m in order.
func sortedPartitions[V any](m map[int32]V) []int32 {
	out := make([]int32, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
