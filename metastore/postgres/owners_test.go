package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/siltdata/silt/metastore"
)

// The contract suite checks fencing one call after another; these tests
// check it against a claim or a write that is in flight at the same
// moment, which is where READ COMMITTED could let a stale write through.

// waitLockWaiters waits until n backends of the database wait for a lock.
func waitLockWaiters(t *testing.T, s *Store, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var waiting int
		err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err != nil {
			t.Fatalf("pg_stat_activity: %v", err)
		}
		if waiting >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %d backends to wait for a lock: %v", n, ctx.Err())
		case <-tick.C:
		}
	}
}

// TestFencedWriteWaitsForClaim: a write by the old owner that starts
// while a claim is in flight waits for it, and is refused once the claim
// commits.
func TestFencedWriteWaitsForClaim(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	top, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	tp := metastore.TopicPartition{Topic: top.ID}
	writes := map[string]func(epoch int64) error{
		"SaveOwnedGroup": func(epoch int64) error {
			return s.SaveOwnedGroup(ctx, epoch, metastore.Group{Name: "g", State: "Empty", Data: []byte("stale")})
		},
		"CommitOwnedOffsets": func(epoch int64) error {
			return s.CommitOwnedOffsets(ctx, "g", epoch, -1, []metastore.CommittedOffset{{TopicPartition: tp, Offset: 1}})
		},
		"DeleteOwnedOffsets": func(epoch int64) error {
			return s.DeleteOwnedOffsets(ctx, "g", epoch, []metastore.TopicPartition{tp})
		},
		"DeleteOwnedGroup": func(epoch int64) error { return s.DeleteOwnedGroup(ctx, "g", epoch) },
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			old, err := s.ClaimGroup(ctx, "g")
			if err != nil {
				t.Fatal(err)
			}
			if err := s.SaveOwnedGroup(ctx, old.Epoch, metastore.Group{Name: "g", State: "Stable", Generation: 1, Data: []byte("kept")}); err != nil {
				t.Fatal(err)
			}
			if err := s.CommitOwnedOffsets(ctx, "g", old.Epoch, 1, []metastore.CommittedOffset{{TopicPartition: tp, Offset: 7}}); err != nil {
				t.Fatal(err)
			}
			// A claim by another coordinator, held open.
			claim, err := s.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer claim.Rollback(ctx)
			if _, err := claim.Exec(ctx, `UPDATE group_owners SET epoch = epoch + 1 WHERE name = 'g'`); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- write(old.Epoch) }()
			waitLockWaiters(t, s, 1)
			if err := claim.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-done; !errors.Is(err, metastore.ErrGroupFenced) {
				t.Fatalf("%s by the old owner: %v, want %v", name, err, metastore.ErrGroupFenced)
			}
			g, found, err := s.LoadGroup(ctx, "g")
			if err != nil || !found || string(g.Data) != "kept" {
				t.Fatalf("group after the fenced %s: %+v, %v, %v", name, g, found, err)
			}
			offs, err := s.FetchOffsets(ctx, "g", nil)
			if err != nil || len(offs) != 1 || offs[0].Offset != 7 {
				t.Fatalf("offsets after the fenced %s: %+v, %v", name, offs, err)
			}
		})
	}
}

// TestClaimWaitsForWrite: a claim that starts while the owner's write is
// in flight waits for it and returns the group with that write.
func TestClaimWaitsForWrite(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	old, err := s.ClaimGroup(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	// The owner's write, held open between its check and its commit
	// (one transaction, as SaveOwnedGroup's one statement is).
	write, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer write.Rollback(ctx)
	var one int
	if err := write.QueryRow(ctx, `SELECT 1 FROM group_owners WHERE name = 'g' AND epoch = $1 FOR SHARE`, old.Epoch).Scan(&one); err != nil {
		t.Fatal(err)
	}
	if _, err := write.Exec(ctx, `INSERT INTO groups (name, state, protocol_type, generation, data) VALUES ('g', 'Stable', 'consumer', 5, 'written')`); err != nil {
		t.Fatal(err)
	}
	type result struct {
		c   metastore.GroupClaim
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := s.ClaimGroup(ctx, "g")
		done <- result{c, err}
	}()
	waitLockWaiters(t, s, 1)
	if err := write.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.c.Epoch <= old.Epoch || !r.c.Found || r.c.Group.Generation != 5 || string(r.c.Group.Data) != "written" {
		t.Fatalf("claim after the write = %+v, want the written group at an epoch after %d", r.c, old.Epoch)
	}
}
