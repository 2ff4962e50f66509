// Package storetest is the contract suite every metastore backend passes:
// the SQLite and Postgres packages call Run from their tests with a
// function that opens a fresh, empty store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/siltdata/silt/metastore"
)

// Opener opens a fresh, empty store for one test and registers its Close
// with t.Cleanup.
type Opener func(t *testing.T) metastore.Backend

// Run runs the whole contract suite, each test on its own fresh store.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s metastore.Backend)
	}{
		{"Topics", testTopics},
		{"TopicConfigs", testTopicConfigs},
		{"CreatePartitions", testCreatePartitions},
		{"CommitAndOffsets", testCommitAndOffsets},
		{"Batches", testBatches},
		{"BulkReads", testBulkReads},
		{"Segments", testSegments},
		{"Timestamps", testTimestamps},
		{"Idempotence", testIdempotence},
		{"SequenceWrap", testSequenceWrap},
		{"DeleteTopicCascades", testDeleteTopicCascades},
		{"Groups", testGroups},
		{"CommittedOffsets", testCommittedOffsets},
		{"GroupOwnership", testGroupOwnership},
		{"GroupTypes", testGroupTypes},
		{"GroupConfigs", testGroupConfigs},
		{"SharePartitions", testSharePartitions},
		{"ProducerIDs", testProducerIDs},
		{"Agents", testAgents},
		{"LeaseExpiry", testLeaseExpiry},
		{"ConcurrentCommits", testConcurrentCommits},
		{"Leases", testLeases},
		{"DeleteRecords", testDeleteRecords},
		{"Retention", testRetention},
		{"SegmentReferences", testSegmentReferences},
		{"SwapRows", testSwapRows},
		{"SwapConflicts", testSwapConflicts},
		{"Cleaning", testCleaning},
		{"Orphans", testOrphans},
		{"DeletedTopicReclaim", testDeletedTopicReclaim},
		{"ExpireProducers", testExpireProducers},
		{"LostLeaseFences", testLostLeaseFences},
		{"ScramCredentials", testScramCredentials},
		{"ACLs", testACLs},
		{"ACLWatch", testACLWatch},
		{"Transactions", testTransactions},
		{"TransactionFencing", testTransactionFencing},
		{"TransactionVersion2", testTransactionVersion2},
		{"TransactionTimeouts", testTransactionTimeouts},
		{"TransactionsRetention", testTransactionsRetention},
		{"TransactionRace", testTransactionRace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if err := s.Ping(ctx(t)); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			tc.fn(t, s)
		})
	}
}

// ctx is the test's context with a deadline well inside the package's.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func createTopic(t *testing.T, s metastore.Store, name string, partitions int32) metastore.Topic {
	t.Helper()
	top, err := s.CreateTopic(ctx(t), metastore.TopicSpec{Name: name, Partitions: partitions})
	must(t, "CreateTopic "+name, err)
	return top
}

// batch is a non-idempotent BatchAppend of n records of len bytes.
func batch(tp metastore.TopicPartition, n int32, ts int64, length int32) metastore.BatchAppend {
	return metastore.BatchAppend{
		TopicPartition: tp, Records: n, MaxTimestamp: ts, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		ChunkOffset: 100, ChunkLength: 1000, Pos: 7, Len: length,
	}
}

// idem is an idempotent BatchAppend.
func idem(tp metastore.TopicPartition, pid int64, epoch int16, seq, n int32) metastore.BatchAppend {
	b := batch(tp, n, 1000, 100)
	b.ProducerID, b.ProducerEpoch, b.BaseSequence = pid, epoch, seq
	return b
}

// commit records key as pending and commits it with bs, as the produce
// path does.
func commit(t *testing.T, s metastore.Store, key string, bs ...metastore.BatchAppend) []metastore.BatchResult {
	t.Helper()
	must(t, "AddPendingSegment "+key, s.AddPendingSegment(ctx(t), key))
	res, err := s.CommitSegment(ctx(t), metastore.Segment{Key: key, Size: 4096, Batches: bs})
	must(t, "CommitSegment "+key, err)
	if len(res) != len(bs) {
		t.Fatalf("CommitSegment %s: %d results for %d batches", key, len(res), len(bs))
	}
	return res
}

// offsetForTimestamp is s.OffsetForTimestamp's entry as base offset and
// max timestamp.
func offsetForTimestamp(c context.Context, s metastore.Store, tp metastore.TopicPartition, ts, from int64) (offset, timestamp int64, found bool, err error) {
	e, found, err := s.OffsetForTimestamp(c, tp, ts, from)
	if found && e.LastOffset < e.BaseOffset {
		return 0, 0, false, fmt.Errorf("OffsetForTimestamp entry [%d, %d]", e.BaseOffset, e.LastOffset)
	}
	return e.BaseOffset, e.MaxTimestamp, found, err
}

// maxTimestamp is s.MaxTimestamp's entry as base offset and max timestamp.
func maxTimestamp(c context.Context, s metastore.Store, tp metastore.TopicPartition) (offset, timestamp int64, found bool, err error) {
	e, found, err := s.MaxTimestamp(c, tp)
	if found && e.LastOffset < e.BaseOffset {
		return 0, 0, false, fmt.Errorf("MaxTimestamp entry [%d, %d]", e.BaseOffset, e.LastOffset)
	}
	return e.BaseOffset, e.MaxTimestamp, found, err
}
