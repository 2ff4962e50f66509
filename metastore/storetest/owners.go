package storetest

import (
	"bytes"
	"testing"

	"github.com/siltdata/silt/metastore"
)

// testGroupOwnership: a coordinator that claimed a group before another
// one did is refused every write (save, commit, delete), and nothing it
// tried is stored; the current owner's writes go through; member commits
// are checked against the stored generation.
func testGroupOwnership(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "t", 2)
	p0 := metastore.TopicPartition{Topic: top.ID, Partition: 0}
	p1 := metastore.TopicPartition{Topic: top.ID, Partition: 1}
	offsets := func(o int64) []metastore.CommittedOffset {
		return []metastore.CommittedOffset{{TopicPartition: p0, Offset: o}, {TopicPartition: p1, Offset: o}}
	}
	wantOffsets := func(what string, want int64) {
		t.Helper()
		offs, err := s.FetchOffsets(c, "g", nil)
		must(t, "FetchOffsets", err)
		for _, o := range offs {
			if o.Offset != want {
				t.Fatalf("%s: offsets %+v, want %d", what, offs, want)
			}
		}
		if want >= 0 && len(offs) != 2 || want < 0 && len(offs) != 0 {
			t.Fatalf("%s: offsets %+v, want %d", what, offs, want)
		}
	}

	// Coordinator A claims a group that is not stored yet and saves it.
	a, err := s.ClaimGroup(c, "g")
	must(t, "ClaimGroup a", err)
	if a.Found || a.Epoch < 1 {
		t.Fatalf("first claim = %+v, want epoch >= 1, not found", a)
	}
	gen3 := metastore.Group{Name: "g", State: "Stable", ProtocolType: "consumer", Generation: 3, Data: []byte("a3")}
	must(t, "SaveOwnedGroup a", s.SaveOwnedGroup(c, a.Epoch, gen3))
	must(t, "CommitOwnedOffsets a", s.CommitOwnedOffsets(c, "g", a.Epoch, 3, offsets(10)))

	// Coordinator B takes the group over: it reads what A wrote.
	b, err := s.ClaimGroup(c, "g")
	must(t, "ClaimGroup b", err)
	if b.Epoch <= a.Epoch || !b.Found || b.Group.Generation != 3 || b.Group.State != "Stable" ||
		b.Group.ProtocolType != "consumer" || !bytes.Equal(b.Group.Data, []byte("a3")) {
		t.Fatalf("second claim = %+v after epoch %d", b, a.Epoch)
	}

	// Every write A makes now is refused, and leaves nothing behind.
	stale := metastore.Group{Name: "g", State: "Empty", ProtocolType: "consumer", Generation: 4, Data: []byte("a4")}
	wantErr(t, "SaveOwnedGroup stale", s.SaveOwnedGroup(c, a.Epoch, stale), metastore.ErrGroupFenced)
	wantErr(t, "CommitOwnedOffsets stale", s.CommitOwnedOffsets(c, "g", a.Epoch, 3, offsets(5)), metastore.ErrGroupFenced)
	wantErr(t, "CommitOwnedOffsets stale, simple", s.CommitOwnedOffsets(c, "g", a.Epoch, -1, offsets(5)), metastore.ErrGroupFenced)
	wantErr(t, "DeleteOwnedOffsets stale", s.DeleteOwnedOffsets(c, "g", a.Epoch, []metastore.TopicPartition{p0}), metastore.ErrGroupFenced)
	wantErr(t, "DeleteOwnedGroup stale", s.DeleteOwnedGroup(c, "g", a.Epoch), metastore.ErrGroupFenced)
	g, found, err := s.LoadGroup(c, "g")
	must(t, "LoadGroup", err)
	if !found || g.Generation != 3 || !bytes.Equal(g.Data, []byte("a3")) {
		t.Fatalf("after stale writes the group is %+v (found %v), want A's save", g, found)
	}
	wantOffsets("after stale writes", 10)

	// B's writes go through; a member commit must name the stored
	// generation.
	wantErr(t, "CommitOwnedOffsets old generation", s.CommitOwnedOffsets(c, "g", b.Epoch, 2, offsets(11)), metastore.ErrIllegalGeneration)
	wantErr(t, "CommitOwnedOffsets future generation", s.CommitOwnedOffsets(c, "g", b.Epoch, 4, offsets(11)), metastore.ErrIllegalGeneration)
	wantOffsets("after commits of other generations", 10)
	must(t, "CommitOwnedOffsets b", s.CommitOwnedOffsets(c, "g", b.Epoch, 3, offsets(12)))
	wantOffsets("after B's commit", 12)
	gen4 := metastore.Group{Name: "g", State: "Stable", ProtocolType: "consumer", Generation: 4, Data: []byte("b4")}
	must(t, "SaveOwnedGroup b", s.SaveOwnedGroup(c, b.Epoch, gen4))
	wantErr(t, "CommitOwnedOffsets generation before the save", s.CommitOwnedOffsets(c, "g", b.Epoch, 3, offsets(13)), metastore.ErrIllegalGeneration)
	must(t, "CommitOwnedOffsets generation 4", s.CommitOwnedOffsets(c, "g", b.Epoch, 4, offsets(13)))
	// A simple commit (no generation) is the coordinator's to allow.
	must(t, "CommitOwnedOffsets simple", s.CommitOwnedOffsets(c, "g", b.Epoch, -1, offsets(14)))
	wantOffsets("after B's commits", 14)
	// Unknown partitions still fail the whole commit.
	err = s.CommitOwnedOffsets(c, "g", b.Epoch, 4, append(offsets(15), metastore.CommittedOffset{TopicPartition: metastore.TopicPartition{Topic: top.ID, Partition: 9}, Offset: 1}))
	wantErr(t, "CommitOwnedOffsets unknown partition", err, metastore.ErrUnknownTopicOrPartition)
	wantOffsets("after a commit with an unknown partition", 14)

	// Other groups have epochs of their own.
	h, err := s.ClaimGroup(c, "h")
	must(t, "ClaimGroup h", err)
	must(t, "CommitOwnedOffsets h", s.CommitOwnedOffsets(c, "h", h.Epoch, -1, offsets(1)))
	wantErr(t, "member commit to a group not stored", s.CommitOwnedOffsets(c, "h", h.Epoch, 0, offsets(2)), metastore.ErrIllegalGeneration)
	must(t, "SaveOwnedGroup b after h's claim", s.SaveOwnedGroup(c, b.Epoch, gen4))

	// Deletes: the owner's go through.
	must(t, "DeleteOwnedOffsets b", s.DeleteOwnedOffsets(c, "g", b.Epoch, []metastore.TopicPartition{p0}))
	offs, err := s.FetchOffsets(c, "g", nil)
	must(t, "FetchOffsets", err)
	if len(offs) != 1 || offs[0].TopicPartition != p1 {
		t.Fatalf("after DeleteOwnedOffsets: %+v", offs)
	}
	must(t, "DeleteOwnedGroup b", s.DeleteOwnedGroup(c, "g", b.Epoch))
	if _, found, err := s.LoadGroup(c, "g"); err != nil || found {
		t.Fatalf("deleted group loads: found %v, %v", found, err)
	}
	wantOffsets("after DeleteOwnedGroup", -1)

	// The epoch outlives the group: a coordinator that claimed it before
	// the delete cannot bring it back after a new claim.
	n, err := s.ClaimGroup(c, "g")
	must(t, "ClaimGroup after delete", err)
	if n.Found || n.Epoch <= b.Epoch {
		t.Fatalf("claim after delete = %+v, want a new epoch after %d", n, b.Epoch)
	}
	wantErr(t, "SaveOwnedGroup from before the delete", s.SaveOwnedGroup(c, b.Epoch, gen4), metastore.ErrGroupFenced)
	wantErr(t, "CommitOwnedOffsets from before the delete", s.CommitOwnedOffsets(c, "g", b.Epoch, -1, offsets(1)), metastore.ErrGroupFenced)
	if _, found, err := s.LoadGroup(c, "g"); err != nil || found {
		t.Fatalf("deleted group came back: found %v, %v", found, err)
	}
	wantOffsets("after stale writes to the deleted group", -1)
}
