package postgres

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/tests/harness"
)

func TestParseCommitPayload(t *testing.T) {
	id := metastore.TopicID{0xab, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xff}
	got := parseCommitPayload("ab0102030405060708090a0b0c0d0eff:0,7;ab0102030405060708090a0b0c0d0eff:12")
	want := []metastore.TopicPartition{{Topic: id, Partition: 0}, {Topic: id, Partition: 7}, {Topic: id, Partition: 12}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"", "*", "zz:1", "ab:1", "ab0102030405060708090a0b0c0d0eff", "ab0102030405060708090a0b0c0d0eff:x"} {
		if got := parseCommitPayload(bad); got != nil {
			t.Errorf("parseCommitPayload(%q) = %v, want nil", bad, got)
		}
	}
}

// TestWatchCommits checks a commit through one store reaches a watch on
// another (two agents), naming exactly the partitions that got batches,
// and that a store's own commits do not.
func TestWatchCommits(t *testing.T) {
	url := harness.Postgres(t)
	committer, err := Open(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer committer.Close()
	watcher, err := Open(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	a, err := committer.CreateTopic(t.Context(), metastore.TopicSpec{Name: "a", Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, err := committer.CreateTopic(t.Context(), metastore.TopicSpec{Name: "b", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan []metastore.TopicPartition, 16)
	done := make(chan error, 1)
	go func() {
		done <- watcher.WatchCommits(ctx, func(tps []metastore.TopicPartition) { got <- tps })
	}()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("WatchCommits returned %v", err)
		}
	}()
	next := func() []metastore.TopicPartition {
		select {
		case tps := <-got:
			return tps
		case <-time.After(10 * time.Second):
			t.Fatal("no notification")
			return nil
		}
	}
	if tps := next(); tps != nil {
		t.Fatalf("first call %v, want nil (listening)", tps)
	}
	batch := func(id metastore.TopicID, p int32) metastore.BatchAppend {
		return metastore.BatchAppend{TopicPartition: metastore.TopicPartition{Topic: id, Partition: p}, Records: 1, ProducerID: -1}
	}
	for _, key := range []string{"s1", "s2", "s3"} {
		if err := committer.AddPendingSegment(t.Context(), key); err != nil {
			t.Fatal(err)
		}
	}
	_, err = committer.CommitSegment(t.Context(), metastore.Segment{Key: "s1", Batches: []metastore.BatchAppend{
		batch(a.ID, 2), batch(b.ID, 0), batch(a.ID, 0), batch(a.ID, 2), batch(a.ID, 9),
	}})
	if err != nil {
		t.Fatal(err)
	}
	tps := next()
	want := []metastore.TopicPartition{{Topic: a.ID, Partition: 0}, {Topic: a.ID, Partition: 2}, {Topic: b.ID, Partition: 0}}
	for _, w := range want {
		if !slices.Contains(tps, w) {
			t.Fatalf("notification %v lacks %v", tps, w)
		}
	}
	if len(tps) != len(want) {
		t.Fatalf("notification %v, want %v", tps, want)
	}

	// The watching store's own commit is left out (its caller knows of
	// it): the next notification is the other store's later commit.
	if _, err := watcher.CommitSegment(t.Context(), metastore.Segment{Key: "s2", Batches: []metastore.BatchAppend{batch(b.ID, 0)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := committer.CommitSegment(t.Context(), metastore.Segment{Key: "s3", Batches: []metastore.BatchAppend{batch(a.ID, 1)}}); err != nil {
		t.Fatal(err)
	}
	if tps := next(); len(tps) != 1 || tps[0] != (metastore.TopicPartition{Topic: a.ID, Partition: 1}) {
		t.Fatalf("notification %v, want only the other store's commit of %v/1", tps, a.ID)
	}
}
