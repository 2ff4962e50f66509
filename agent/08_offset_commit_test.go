package agent

import (
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/siltdata/silt/metastore/sqlite"
)

// TestCommittedOffsetsSurviveRestart: offsets committed through one agent
// are served by a new agent on the same metastore, and a group consumer
// there resumes from them.
func TestCommittedOffsetsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	store, err := sqlite.Open(t.Context(), filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })

	a1 := startAgentOn(t, store, dir, groupTestConfig)
	makeTopic(t, a1, "logs", 2)
	vals := produceN(t, a1, "logs", 2, "v", 20) // 10 per partition
	_, adm := a1.client(t)
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "logs", Partition: 0, At: 4, LeaderEpoch: -1, Metadata: "m0"})
	os.Add(kadm.Offset{Topic: "logs", Partition: 1, At: 7, LeaderEpoch: -1})
	resp, err := adm.CommitOffsets(ctxTimeout(t), "restart", os)
	if err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	if err := a1.Shutdown(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}

	a2 := startAgentOn(t, store, dir, groupTestConfig)
	_, adm2 := a2.client(t)
	fetched, err := adm2.FetchOffsets(ctxTimeout(t), "restart")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := fetched.Lookup("logs", 0); o.At != 4 || o.Metadata != "m0" {
		t.Fatalf("partition 0 after restart: %+v", o)
	}
	if o, _ := fetched.Lookup("logs", 1); o.At != 7 {
		t.Fatalf("partition 1 after restart: %+v", o)
	}

	// A consumer of the group reads exactly from the committed offsets:
	// values v-8, v-10.. on partition 0 (offsets 4..9 are v-8..v-18) and
	// offsets 7..9 of partition 1.
	w := newGroupWatch()
	startConsumer(t, a2, w, "c", "restart", "logs")
	var want []string
	for i, v := range vals {
		p, off := i%2, i/2
		if (p == 0 && off >= 4) || (p == 1 && off >= 7) {
			want = append(want, v)
		}
	}
	w.waitSeen(t, want)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seen) != len(want) {
		t.Fatalf("consumed %d distinct records, want %d (from the committed offsets)", len(w.seen), len(want))
	}
}
