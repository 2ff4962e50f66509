package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/siltdata/silt/metastore"
)

func testGroups(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	_, found, err := s.LoadGroup(c, "g")
	must(t, "LoadGroup unknown", err)
	if found {
		t.Fatal("LoadGroup found an unknown group")
	}
	gs, err := s.Groups(c)
	must(t, "Groups", err)
	if len(gs) != 0 {
		t.Fatalf("Groups = %+v", gs)
	}
	must(t, "SaveGroup g", s.SaveGroup(c, metastore.Group{Name: "g", State: "Empty", ProtocolType: "consumer", Data: []byte{1, 2}}))
	must(t, "SaveGroup a", s.SaveGroup(c, metastore.Group{Name: "a", State: "Stable", ProtocolType: "connect", Data: nil}))
	must(t, "SaveGroup g again", s.SaveGroup(c, metastore.Group{Name: "g", State: "Stable", ProtocolType: "consumer", Generation: 7, Data: []byte{3}}))
	g, found, err := s.LoadGroup(c, "g")
	must(t, "LoadGroup", err)
	if !found || g.Name != "g" || g.State != "Stable" || g.ProtocolType != "consumer" || g.Generation != 7 || !bytes.Equal(g.Data, []byte{3}) {
		t.Fatalf("LoadGroup = %+v, %v", g, found)
	}
	gs, err = s.Groups(c)
	must(t, "Groups", err)
	if len(gs) != 2 || gs[0].Name != "a" || gs[1].Name != "g" || gs[0].State != "Stable" || gs[0].ProtocolType != "connect" {
		t.Fatalf("Groups = %+v", gs)
	}

	top := createTopic(t, s, "t", 1)
	tp := metastore.TopicPartition{Topic: top.ID}
	must(t, "CommitOffsets", s.CommitOffsets(c, "g", []metastore.CommittedOffset{{TopicPartition: tp, Offset: 5}}))
	must(t, "DeleteGroup", s.DeleteGroup(c, "g"))
	must(t, "DeleteGroup unknown", s.DeleteGroup(c, "nope"))
	_, found, err = s.LoadGroup(c, "g")
	must(t, "LoadGroup deleted", err)
	if found {
		t.Fatal("deleted group still loads")
	}
	offs, err := s.FetchOffsets(c, "g", nil)
	must(t, "FetchOffsets", err)
	if len(offs) != 0 {
		t.Fatalf("deleted group's offsets remain: %+v", offs)
	}
}

func testCommittedOffsets(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	a := createTopic(t, s, "a", 2)
	b := createTopic(t, s, "b", 1)
	a0 := metastore.TopicPartition{Topic: a.ID, Partition: 0}
	a1 := metastore.TopicPartition{Topic: a.ID, Partition: 1}
	b0 := metastore.TopicPartition{Topic: b.ID, Partition: 0}
	when := time.UnixMilli(1_700_000_000_123)

	offs, err := s.FetchOffsets(c, "g", nil)
	must(t, "FetchOffsets unknown group", err)
	if len(offs) != 0 {
		t.Fatalf("FetchOffsets unknown group = %+v", offs)
	}
	must(t, "CommitOffsets", s.CommitOffsets(c, "g", []metastore.CommittedOffset{
		{TopicPartition: a0, Offset: 10, LeaderEpoch: -1, Metadata: "m0", CommitTime: when},
		{TopicPartition: a1, Offset: 20, LeaderEpoch: 3, Metadata: "", CommitTime: when},
	}))
	must(t, "CommitOffsets other group", s.CommitOffsets(c, "h", []metastore.CommittedOffset{{TopicPartition: a0, Offset: 99}}))
	must(t, "CommitOffsets overwrite", s.CommitOffsets(c, "g", []metastore.CommittedOffset{
		{TopicPartition: a0, Offset: 11, LeaderEpoch: 2, Metadata: "m1", CommitTime: when.Add(time.Second)},
	}))
	// Unknown partitions fail the whole call and commit nothing.
	err = s.CommitOffsets(c, "g", []metastore.CommittedOffset{
		{TopicPartition: b0, Offset: 1, CommitTime: when},
		{TopicPartition: metastore.TopicPartition{Topic: a.ID, Partition: 2}, Offset: 1},
	})
	wantErr(t, "CommitOffsets unknown partition", err, metastore.ErrUnknownTopicOrPartition)
	err = s.CommitOffsets(c, "g", []metastore.CommittedOffset{{TopicPartition: metastore.TopicPartition{Topic: metastore.NewTopicID()}, Offset: 1}})
	wantErr(t, "CommitOffsets unknown topic", err, metastore.ErrUnknownTopicOrPartition)

	offs, err = s.FetchOffsets(c, "g", nil)
	must(t, "FetchOffsets all", err)
	if len(offs) != 2 {
		t.Fatalf("FetchOffsets all = %+v", offs)
	}
	byP := map[metastore.TopicPartition]metastore.CommittedOffset{}
	for _, o := range offs {
		byP[o.TopicPartition] = o
	}
	if o := byP[a0]; o.Offset != 11 || o.LeaderEpoch != 2 || o.Metadata != "m1" || !o.CommitTime.Equal(when.Add(time.Second)) {
		t.Fatalf("a0 = %+v", o)
	}
	if o := byP[a1]; o.Offset != 20 || o.LeaderEpoch != 3 || o.Metadata != "" || !o.CommitTime.Equal(when) {
		t.Fatalf("a1 = %+v", o)
	}
	offs, err = s.FetchOffsets(c, "g", []metastore.TopicPartition{a1, b0, {Topic: metastore.NewTopicID()}})
	must(t, "FetchOffsets some", err)
	if len(offs) != 1 || offs[0].TopicPartition != a1 || offs[0].Offset != 20 {
		t.Fatalf("FetchOffsets some = %+v", offs)
	}
	// A zero commit time means now.
	before := time.Now().Add(-time.Minute)
	must(t, "CommitOffsets b0", s.CommitOffsets(c, "g", []metastore.CommittedOffset{{TopicPartition: b0, Offset: 1}}))
	offs, err = s.FetchOffsets(c, "g", []metastore.TopicPartition{b0})
	must(t, "FetchOffsets b0", err)
	if len(offs) != 1 || offs[0].CommitTime.Before(before) {
		t.Fatalf("FetchOffsets b0 = %+v", offs)
	}

	must(t, "DeleteOffsets", s.DeleteOffsets(c, "g", []metastore.TopicPartition{a0, b0}))
	offs, err = s.FetchOffsets(c, "g", nil)
	must(t, "FetchOffsets after delete", err)
	if len(offs) != 1 || offs[0].TopicPartition != a1 {
		t.Fatalf("after DeleteOffsets = %+v", offs)
	}
	offs, err = s.FetchOffsets(c, "h", nil)
	must(t, "FetchOffsets h", err)
	if len(offs) != 1 || offs[0].Offset != 99 {
		t.Fatalf("group h = %+v", offs)
	}
}

func testDeleteTopicCascades(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	a := createTopic(t, s, "a", 2)
	keep := createTopic(t, s, "keep", 1)
	a0 := metastore.TopicPartition{Topic: a.ID}
	k0 := metastore.TopicPartition{Topic: keep.ID}
	commit(t, s, "s1", batch(a0, 5, 1, 10), batch(k0, 5, 1, 10), idem(a0, 9, 0, 0, 1))
	must(t, "CommitOffsets", s.CommitOffsets(c, "g", []metastore.CommittedOffset{
		{TopicPartition: a0, Offset: 3}, {TopicPartition: k0, Offset: 4},
	}))
	must(t, "DeleteTopic", s.DeleteTopic(c, "a"))

	_, _, err := s.Batches(c, a0, 0, 1<<20)
	wantErr(t, "Batches of deleted topic", err, metastore.ErrUnknownTopicOrPartition)
	offs, err := s.FetchOffsets(c, "g", nil)
	must(t, "FetchOffsets", err)
	if len(offs) != 1 || offs[0].TopicPartition != k0 || offs[0].Offset != 4 {
		t.Fatalf("offsets after topic delete = %+v", offs)
	}
	// A commit naming the deleted topic's partition is refused per batch.
	r := commit(t, s, "s2", batch(a0, 1, 1, 1), batch(k0, 1, 1, 1))
	expect(t, "deleted topic", r[0], 0, metastore.ErrUnknownTopicOrPartition)
	expect(t, "kept topic", r[1], 5, nil)
	bs, _, err := s.Batches(c, k0, 0, 1<<20)
	must(t, "Batches kept", err)
	if len(bs) != 2 {
		t.Fatalf("kept topic batches = %+v", bs)
	}
	// Same name again: a new, empty topic.
	a2 := createTopic(t, s, "a", 1)
	bs, o, err := s.Batches(c, metastore.TopicPartition{Topic: a2.ID}, 0, 1<<20)
	must(t, "Batches recreated", err)
	if len(bs) != 0 || o.HighWatermark != 0 {
		t.Fatalf("recreated topic has %d batches, hw %d", len(bs), o.HighWatermark)
	}
}

func testProducerIDs(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	seen := map[int64]bool{}
	prev := int64(-1)
	for range 20 {
		id, err := s.NextProducerID(c)
		must(t, "NextProducerID", err)
		if id < 0 || seen[id] || id <= prev {
			t.Fatalf("NextProducerID gave %d after %d", id, prev)
		}
		seen[id], prev = true, id
	}
}
