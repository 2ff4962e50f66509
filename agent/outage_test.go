package agent

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/sqlite"
)

// flakyStore is a real store whose topic and offset reads fail while down
// is set: a metastore outage as the agent sees it.
type flakyStore struct {
	metastore.Backend
	down atomic.Bool
}

var errStoreDown = errors.New("metastore unreachable")

func (s *flakyStore) Topic(ctx context.Context, name string) (metastore.Topic, error) {
	if s.down.Load() {
		return metastore.Topic{}, errStoreDown
	}
	return s.Backend.Topic(ctx, name)
}

func (s *flakyStore) CreateTopic(ctx context.Context, spec metastore.TopicSpec) (metastore.Topic, error) {
	if s.down.Load() {
		return metastore.Topic{}, errStoreDown
	}
	return s.Backend.CreateTopic(ctx, spec)
}

func (s *flakyStore) Offsets(ctx context.Context, tp metastore.TopicPartition) (metastore.PartitionOffsets, error) {
	if s.down.Load() {
		return metastore.PartitionOffsets{}, errStoreDown
	}
	return s.Backend.Offsets(ctx, tp)
}

func (s *flakyStore) OffsetsMany(ctx context.Context, tps []metastore.TopicPartition) ([]metastore.OffsetsResult, error) {
	if s.down.Load() {
		return nil, errStoreDown
	}
	return s.Backend.OffsetsMany(ctx, tps)
}

func (s *flakyStore) BatchesMany(ctx context.Context, q []metastore.BatchesQuery) ([]metastore.BatchesResult, error) {
	if s.down.Load() {
		return nil, errStoreDown
	}
	return s.Backend.BatchesMany(ctx, q)
}

func (s *flakyStore) NextProducerID(ctx context.Context) (int64, error) {
	if s.down.Load() {
		return 0, errStoreDown
	}
	return s.Backend.NextProducerID(ctx)
}

// TestMetastoreOutageAnswersRetriable: with the metastore down, requests
// get retriable errors on a live connection; once it is back, the same
// connection works again.
func TestMetastoreOutageAnswersRetriable(t *testing.T) {
	dir := t.TempDir()
	inner, err := sqlite.Open(t.Context(), filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	store := &flakyStore{Backend: inner}
	a := startAgentOn(t, store, dir, func(c *Config) { c.AutoCreateTopics = false })
	if _, err := a.createTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, a.Addr())

	metadata := kmsg.NewPtrMetadataRequest()
	metadata.SetVersion(12)
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("other")
	metadata.Topics = append(metadata.Topics, mt)

	create := kmsg.NewPtrCreateTopicsRequest()
	create.SetVersion(7)
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "new", 1, 1
	create.Topics = append(create.Topics, ct)

	list := kmsg.NewPtrListOffsetsRequest()
	list.SetVersion(8)
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "t"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	list.Topics = append(list.Topics, lt)

	initPID := kmsg.NewPtrInitProducerIDRequest()
	initPID.SetVersion(4)

	codes := func() []int16 {
		return []int16{
			c.roundTrip(metadata).(*kmsg.MetadataResponse).Topics[0].ErrorCode,
			c.roundTrip(create).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode,
			c.roundTrip(list).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode,
			c.roundTrip(initPID).(*kmsg.InitProducerIDResponse).ErrorCode,
		}
	}
	store.down.Store(true)
	for i, code := range codes() {
		if !kerr.TypedErrorForCode(code).Retriable {
			t.Errorf("request %d during outage: %s, want a retriable code", i, codeName(code))
		}
	}
	store.down.Store(false)
	got := codes()
	want := []int16{kerr.UnknownTopicOrPartition.Code, 0, 0, 0}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("request %d after recovery: %s, want %s", i, codeName(got[i]), codeName(want[i]))
		}
	}
}
