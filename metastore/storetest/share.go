package storetest

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/siltdata/silt/metastore"
)

// testGroupTypes: a group's type is stored and read back (classic for
// groups saved without one); a share group and a classic or consumer
// group never overwrite each other under one name, and deleting one kind
// leaves the other.
func testGroupTypes(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	must(t, "SaveGroup untyped", s.SaveGroup(c, metastore.Group{Name: "old", State: "Empty", ProtocolType: "consumer"}))
	g, _, err := s.LoadGroup(c, "old")
	must(t, "LoadGroup old", err)
	if g.Type != metastore.GroupTypeClassic {
		t.Fatalf("untyped group loads as type %q, want classic", g.Type)
	}

	cg, err := s.ClaimGroup(c, "cg")
	must(t, "ClaimGroup cg", err)
	must(t, "SaveOwnedGroup classic", s.SaveOwnedGroup(c, cg.Epoch, metastore.Group{Name: "cg", State: "Stable", ProtocolType: "consumer", Type: metastore.GroupTypeClassic, Generation: 2}))
	// Classic and consumer are one kind: an online upgrade changes it.
	must(t, "SaveOwnedGroup consumer", s.SaveOwnedGroup(c, cg.Epoch, metastore.Group{Name: "cg", State: "Reconciling", ProtocolType: "consumer", Type: metastore.GroupTypeConsumer, Generation: 3}))
	wantErr(t, "SaveOwnedGroup as share", s.SaveOwnedGroup(c, cg.Epoch, metastore.Group{Name: "cg", Type: metastore.GroupTypeShare}), metastore.ErrGroupTypeConflict)

	// A share coordinator's claim of the name fences nothing of the
	// group coordinator's, and its save does not replace the group.
	sc, err := s.ClaimShareGroup(c, "cg")
	must(t, "ClaimShareGroup cg", err)
	if !sc.Found || sc.Group.Type != metastore.GroupTypeConsumer || sc.Group.Generation != 3 {
		t.Fatalf("ClaimShareGroup of a consumer group = %+v", sc)
	}
	wantErr(t, "SaveOwnedShareGroup over a consumer group",
		s.SaveOwnedShareGroup(c, sc.Epoch, metastore.Group{Name: "cg", State: "Empty", ProtocolType: "share"}), metastore.ErrGroupTypeConflict)
	must(t, "SaveOwnedGroup after a share claim", s.SaveOwnedGroup(c, cg.Epoch, metastore.Group{Name: "cg", State: "Stable", ProtocolType: "consumer", Type: metastore.GroupTypeConsumer, Generation: 4}))
	g, _, err = s.LoadGroup(c, "cg")
	must(t, "LoadGroup cg", err)
	if g.Type != metastore.GroupTypeConsumer || g.Generation != 4 {
		t.Fatalf("consumer group after a share coordinator's attempts: %+v", g)
	}

	// The other way round.
	sh, err := s.ClaimShareGroup(c, "sh")
	must(t, "ClaimShareGroup sh", err)
	if sh.Found || sh.Epoch < 1 {
		t.Fatalf("first share claim = %+v", sh)
	}
	must(t, "SaveOwnedShareGroup", s.SaveOwnedShareGroup(c, sh.Epoch, metastore.Group{Name: "sh", State: "Stable", ProtocolType: "share", Generation: 5, Data: []byte("s")}))
	gc, err := s.ClaimGroup(c, "sh")
	must(t, "ClaimGroup of a share group", err)
	if !gc.Found || gc.Group.Type != metastore.GroupTypeShare {
		t.Fatalf("ClaimGroup of a share group = %+v", gc)
	}
	wantErr(t, "SaveOwnedGroup over a share group", s.SaveOwnedGroup(c, gc.Epoch, metastore.Group{Name: "sh", State: "Empty", ProtocolType: "consumer"}), metastore.ErrGroupTypeConflict)
	wantErr(t, "SaveGroup over a share group", s.SaveGroup(c, metastore.Group{Name: "sh", State: "Empty", ProtocolType: "consumer"}), metastore.ErrGroupTypeConflict)
	must(t, "DeleteOwnedGroup of a share group's name", s.DeleteOwnedGroup(c, "sh", gc.Epoch))
	must(t, "SaveOwnedShareGroup after a group claim", s.SaveOwnedShareGroup(c, sh.Epoch, metastore.Group{Name: "sh", State: "Empty", ProtocolType: "share", Generation: 6, Data: []byte("t")}))

	gs, err := s.Groups(c)
	must(t, "Groups", err)
	types := map[string]string{}
	for _, g := range gs {
		types[g.Name] = g.Type
	}
	if types["old"] != "classic" || types["cg"] != "consumer" || types["sh"] != "share" || len(types) != 3 {
		t.Fatalf("Groups types = %v", types)
	}
}

// testGroupConfigs: set, overwrite and delete keys; groups are apart.
func testGroupConfigs(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	cfg, err := s.GroupConfigs(c, "g")
	must(t, "GroupConfigs none", err)
	if len(cfg) != 0 {
		t.Fatalf("GroupConfigs of an unconfigured group = %v", cfg)
	}
	v := func(s string) *string { return &s }
	must(t, "AlterGroupConfigs", s.AlterGroupConfigs(c, "g", map[string]*string{"share.auto.offset.reset": v("earliest"), "share.delivery.count.limit": v("3")}))
	must(t, "AlterGroupConfigs other", s.AlterGroupConfigs(c, "h", map[string]*string{"consumer.session.timeout.ms": v("50000")}))
	must(t, "AlterGroupConfigs change", s.AlterGroupConfigs(c, "g", map[string]*string{"share.delivery.count.limit": v("4"), "share.auto.offset.reset": nil, "absent": nil}))
	cfg, err = s.GroupConfigs(c, "g")
	must(t, "GroupConfigs", err)
	if len(cfg) != 1 || cfg["share.delivery.count.limit"] != "4" {
		t.Fatalf("GroupConfigs g = %v", cfg)
	}
	cfg, err = s.GroupConfigs(c, "h")
	must(t, "GroupConfigs h", err)
	if len(cfg) != 1 || cfg["consumer.session.timeout.ms"] != "50000" {
		t.Fatalf("GroupConfigs h = %v", cfg)
	}
}

// testSharePartitions: rows are initialized once, changed only by
// compare-and-set, reset and deleted by the claim's owner only, and go
// with their group or topic.
func testSharePartitions(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "t", 2)
	p0 := metastore.TopicPartition{Topic: top.ID, Partition: 0}
	p1 := metastore.TopicPartition{Topic: top.ID, Partition: 1}

	if _, found, err := s.SharePartition(c, "g", p0); err != nil || found {
		t.Fatalf("SharePartition before init: found %v, %v", found, err)
	}
	sp, err := s.InitSharePartition(c, "g", metastore.SharePartition{TopicPartition: p0, StartOffset: 7})
	must(t, "InitSharePartition", err)
	if sp.StartOffset != 7 || sp.Version != 1 || sp.StateEpoch != 1 || len(sp.State) != 0 || sp.TopicPartition != p0 {
		t.Fatalf("InitSharePartition = %+v", sp)
	}
	// A second init (another agent, the coordinator) keeps the first.
	again, err := s.InitSharePartition(c, "g", metastore.SharePartition{TopicPartition: p0, StartOffset: 100})
	must(t, "InitSharePartition again", err)
	if again.StartOffset != 7 || again.Version != 1 {
		t.Fatalf("second InitSharePartition = %+v, want the first", again)
	}
	_, err = s.InitSharePartition(c, "g", metastore.SharePartition{TopicPartition: metastore.TopicPartition{Topic: top.ID, Partition: 5}})
	wantErr(t, "InitSharePartition unknown partition", err, metastore.ErrUnknownTopicOrPartition)

	// Compare-and-set: of two writers that read version 1, one wins.
	w1 := sp
	w1.StartOffset, w1.State = 9, []byte("one")
	w2 := sp
	w2.StartOffset, w2.State = 8, []byte("two")
	must(t, "UpdateSharePartition first", s.UpdateSharePartition(c, "g", w1))
	wantErr(t, "UpdateSharePartition stale", s.UpdateSharePartition(c, "g", w2), metastore.ErrShareStateChanged)
	got, found, err := s.SharePartition(c, "g", p0)
	must(t, "SharePartition", err)
	if !found || got.Version != 2 || got.StartOffset != 9 || !bytes.Equal(got.State, []byte("one")) {
		t.Fatalf("after CAS: %+v", got)
	}

	// Concurrent writers: every successful write is counted once.
	const writers, each = 4, 10
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for range writers {
		wg.Go(func() {
			for n := 0; n < each; {
				cur, _, err := s.SharePartition(c, "g", p0)
				if err != nil {
					t.Error(err)
					return
				}
				cur.StartOffset++
				err = s.UpdateSharePartition(c, "g", cur)
				if errors.Is(err, metastore.ErrShareStateChanged) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				n++
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	got, _, err = s.SharePartition(c, "g", p0)
	must(t, "SharePartition after concurrent writers", err)
	if wins != writers*each || got.StartOffset != 9+int64(wins) || got.Version != 2+int64(wins) {
		t.Fatalf("after %d successful CAS writes: %+v", wins, got)
	}

	// Resets and deletes are the share coordinator's, fenced by its claim.
	a, err := s.ClaimShareGroup(c, "g")
	must(t, "ClaimShareGroup a", err)
	b, err := s.ClaimShareGroup(c, "g")
	must(t, "ClaimShareGroup b", err)
	reset := []metastore.SharePartitionReset{{TopicPartition: p0, StartOffset: 3}, {TopicPartition: p1, StartOffset: 4}}
	wantErr(t, "ResetOwnedSharePartitions stale", s.ResetOwnedSharePartitions(c, "g", a.Epoch, reset), metastore.ErrGroupFenced)
	wantErr(t, "ResetOwnedSharePartitions unknown partition", s.ResetOwnedSharePartitions(c, "g", b.Epoch,
		append(reset, metastore.SharePartitionReset{TopicPartition: metastore.TopicPartition{Topic: top.ID, Partition: 9}})), metastore.ErrUnknownTopicOrPartition)
	before, _, _ := s.SharePartition(c, "g", p0)
	must(t, "ResetOwnedSharePartitions", s.ResetOwnedSharePartitions(c, "g", b.Epoch, reset))
	got, _, err = s.SharePartition(c, "g", p0)
	must(t, "SharePartition after reset", err)
	if got.StartOffset != 3 || len(got.State) != 0 || got.StateEpoch != before.StateEpoch+1 || got.Version != before.Version+1 {
		t.Fatalf("after reset: %+v (before %+v)", got, before)
	}
	wantErr(t, "UpdateSharePartition across a reset", s.UpdateSharePartition(c, "g", before), metastore.ErrShareStateChanged)
	all, err := s.GroupSharePartitions(c, "g")
	must(t, "GroupSharePartitions", err)
	if len(all) != 2 || all[0].TopicPartition != p0 || all[1].TopicPartition != p1 || all[1].StartOffset != 4 || all[1].Version != 1 {
		t.Fatalf("GroupSharePartitions = %+v", all)
	}
	_, err = s.InitSharePartition(c, "h", metastore.SharePartition{TopicPartition: p1, StartOffset: 1})
	must(t, "InitSharePartition h", err)

	wantErr(t, "DeleteOwnedSharePartitions stale", s.DeleteOwnedSharePartitions(c, "g", a.Epoch, []metastore.TopicPartition{p1}), metastore.ErrGroupFenced)
	must(t, "DeleteOwnedSharePartitions", s.DeleteOwnedSharePartitions(c, "g", b.Epoch, []metastore.TopicPartition{p1}))
	all, _ = s.GroupSharePartitions(c, "g")
	if len(all) != 1 || all[0].TopicPartition != p0 {
		t.Fatalf("after DeleteOwnedSharePartitions: %+v", all)
	}

	// Deleting the group takes its rows, not other groups'.
	must(t, "SaveOwnedShareGroup", s.SaveOwnedShareGroup(c, b.Epoch, metastore.Group{Name: "g", State: "Empty", ProtocolType: "share"}))
	wantErr(t, "DeleteOwnedShareGroup stale", s.DeleteOwnedShareGroup(c, "g", a.Epoch), metastore.ErrGroupFenced)
	must(t, "DeleteOwnedShareGroup", s.DeleteOwnedShareGroup(c, "g", b.Epoch))
	if all, _ := s.GroupSharePartitions(c, "g"); len(all) != 0 {
		t.Fatalf("deleted group's share partitions remain: %+v", all)
	}
	if _, found, _ := s.LoadGroup(c, "g"); found {
		t.Fatal("deleted share group still loads")
	}
	if all, _ := s.GroupSharePartitions(c, "h"); len(all) != 1 {
		t.Fatalf("another group's share partitions went with it: %+v", all)
	}

	// Deleting the topic takes every group's rows for it.
	must(t, "DeleteTopic", s.DeleteTopic(c, "t"))
	if all, _ := s.GroupSharePartitions(c, "h"); len(all) != 0 {
		t.Fatalf("deleted topic's share partitions remain: %+v", all)
	}
}
