package storetest

import (
	"maps"
	"strings"
	"testing"

	"github.com/siltdata/silt/metastore"
)

func testTopics(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	b, err := s.CreateTopic(c, metastore.TopicSpec{Name: "b", Partitions: 3, Configs: map[string]string{"retention.ms": "1000"}})
	must(t, "CreateTopic b", err)
	if b.ID.IsZero() || b.ID[6]>>4 != 4 || b.Name != "b" || b.Partitions != 3 || b.Configs["retention.ms"] != "1000" {
		t.Fatalf("CreateTopic b = %+v", b)
	}
	want := metastore.NewTopicID()
	a, err := s.CreateTopic(c, metastore.TopicSpec{Name: "a", ID: want, Partitions: 1})
	must(t, "CreateTopic a", err)
	if a.ID != want {
		t.Fatalf("CreateTopic with id %s got %s", want, a.ID)
	}

	_, err = s.CreateTopic(c, metastore.TopicSpec{Name: "b", Partitions: 1})
	wantErr(t, "CreateTopic existing name", err, metastore.ErrTopicExists)
	_, err = s.CreateTopic(c, metastore.TopicSpec{Name: "c", ID: want, Partitions: 1})
	wantErr(t, "CreateTopic existing id", err, metastore.ErrTopicExists)
	for _, name := range []string{"", ".", "..", "a b", strings.Repeat("x", 250)} {
		_, err = s.CreateTopic(c, metastore.TopicSpec{Name: name, Partitions: 1})
		wantErr(t, "CreateTopic "+name, err, metastore.ErrInvalidTopic)
	}
	_, err = s.CreateTopic(c, metastore.TopicSpec{Name: "zero", Partitions: 0})
	wantErr(t, "CreateTopic 0 partitions", err, metastore.ErrInvalidPartitions)
	_, err = s.CreateTopic(c, metastore.TopicSpec{Name: "neg", Partitions: -1})
	wantErr(t, "CreateTopic -1 partitions", err, metastore.ErrInvalidPartitions)

	got, err := s.Topic(c, "b")
	must(t, "Topic b", err)
	if got.ID != b.ID || got.Partitions != 3 || !maps.Equal(got.Configs, b.Configs) {
		t.Fatalf("Topic b = %+v, want %+v", got, b)
	}
	got, err = s.TopicByID(c, a.ID)
	must(t, "TopicByID a", err)
	if got.Name != "a" || got.Partitions != 1 || got.Configs == nil || len(got.Configs) != 0 {
		t.Fatalf("TopicByID a = %+v", got)
	}
	_, err = s.Topic(c, "nope")
	wantErr(t, "Topic unknown", err, metastore.ErrUnknownTopic)
	_, err = s.TopicByID(c, metastore.NewTopicID())
	wantErr(t, "TopicByID unknown", err, metastore.ErrUnknownTopic)

	all, err := s.Topics(c)
	must(t, "Topics", err)
	if len(all) != 2 || all[0].Name != "a" || all[1].Name != "b" || all[1].Partitions != 3 {
		t.Fatalf("Topics = %+v", all)
	}

	wantErr(t, "DeleteTopic unknown", s.DeleteTopic(c, "nope"), metastore.ErrUnknownTopic)
	must(t, "DeleteTopic a", s.DeleteTopic(c, "a"))
	_, err = s.Topic(c, "a")
	wantErr(t, "Topic deleted", err, metastore.ErrUnknownTopic)
	_, err = s.TopicByID(c, a.ID)
	wantErr(t, "TopicByID deleted", err, metastore.ErrUnknownTopic)
	all, err = s.Topics(c)
	must(t, "Topics", err)
	if len(all) != 1 || all[0].Name != "b" {
		t.Fatalf("Topics after delete = %+v", all)
	}
	a2 := createTopic(t, s, "a", 2)
	if a2.ID == a.ID {
		t.Fatal("recreated topic reuses the deleted topic's id")
	}
}

func testTopicConfigs(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	_, err := s.CreateTopic(c, metastore.TopicSpec{Name: "t", Partitions: 1,
		Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": "5"}})
	must(t, "CreateTopic", err)
	v := "compact"
	must(t, "AlterTopicConfigs", s.AlterTopicConfigs(c, "t", map[string]*string{
		"cleanup.policy": &v, "retention.ms": nil, "absent": nil,
	}))
	got, err := s.Topic(c, "t")
	must(t, "Topic", err)
	if want := map[string]string{"cleanup.policy": "compact"}; !maps.Equal(got.Configs, want) {
		t.Fatalf("configs = %v, want %v", got.Configs, want)
	}
	wantErr(t, "AlterTopicConfigs unknown", s.AlterTopicConfigs(c, "nope", map[string]*string{"a": &v}), metastore.ErrUnknownTopic)
}

func testCreatePartitions(t *testing.T, s metastore.Backend) {
	c := ctx(t)
	top := createTopic(t, s, "t", 2)
	wantErr(t, "CreatePartitions same", s.CreatePartitions(c, "t", 2), metastore.ErrInvalidPartitions)
	wantErr(t, "CreatePartitions fewer", s.CreatePartitions(c, "t", 1), metastore.ErrInvalidPartitions)
	wantErr(t, "CreatePartitions unknown", s.CreatePartitions(c, "nope", 5), metastore.ErrUnknownTopic)
	must(t, "CreatePartitions 5", s.CreatePartitions(c, "t", 5))
	got, err := s.Topic(c, "t")
	must(t, "Topic", err)
	if got.Partitions != 5 {
		t.Fatalf("partitions = %d, want 5", got.Partitions)
	}
	for p := int32(0); p < 5; p++ {
		o, err := s.Offsets(c, metastore.TopicPartition{Topic: top.ID, Partition: p})
		must(t, "Offsets", err)
		if o != (metastore.PartitionOffsets{}) {
			t.Fatalf("partition %d offsets %+v, want zero", p, o)
		}
	}
	_, err = s.Offsets(c, metastore.TopicPartition{Topic: top.ID, Partition: 5})
	wantErr(t, "Offsets partition 5", err, metastore.ErrUnknownTopicOrPartition)
}
