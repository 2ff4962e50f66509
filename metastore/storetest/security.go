package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/siltdata/silt/metastore"
)

func testScramCredentials(t *testing.T, cs metastore.Backend) {
	c := ctx(t)
	_, err := cs.ScramCredential(c, "alice", "SCRAM-SHA-256")
	wantErr(t, "unknown credential", err, metastore.ErrUnknownCredential)
	wantErr(t, "delete unknown", cs.DeleteScramCredential(c, "alice", "SCRAM-SHA-256"), metastore.ErrUnknownCredential)

	a256 := metastore.ScramCredential{User: "alice", Mechanism: "SCRAM-SHA-256", Iterations: 4096,
		Salt: []byte("salt-a"), StoredKey: []byte("stored-a"), ServerKey: []byte("server-a")}
	a512 := metastore.ScramCredential{User: "alice", Mechanism: "SCRAM-SHA-512", Iterations: 8192,
		Salt: []byte("salt-b"), StoredKey: []byte("stored-b"), ServerKey: []byte("server-b")}
	b256 := metastore.ScramCredential{User: "bob,=x", Mechanism: "SCRAM-SHA-256", Iterations: 4096,
		Salt: []byte{0, 1, 2}, StoredKey: []byte{3}, ServerKey: []byte{4}}
	for _, x := range []metastore.ScramCredential{a256, a512, b256} {
		must(t, "UpsertScramCredential", cs.UpsertScramCredential(c, x))
	}
	got, err := cs.ScramCredential(c, "alice", "SCRAM-SHA-512")
	must(t, "ScramCredential", err)
	if !reflect.DeepEqual(got, a512) {
		t.Fatalf("ScramCredential = %+v, want %+v", got, a512)
	}
	// Upsert replaces.
	a256.Iterations, a256.Salt = 10000, []byte("salt-c")
	must(t, "UpsertScramCredential again", cs.UpsertScramCredential(c, a256))
	all, err := cs.ScramCredentials(c, nil)
	must(t, "ScramCredentials all", err)
	if !reflect.DeepEqual(all, []metastore.ScramCredential{a256, a512, b256}) {
		t.Fatalf("ScramCredentials(nil) = %+v", all)
	}
	some, err := cs.ScramCredentials(c, []string{"bob,=x", "nobody"})
	must(t, "ScramCredentials some", err)
	if !reflect.DeepEqual(some, []metastore.ScramCredential{b256}) {
		t.Fatalf("ScramCredentials(bob) = %+v", some)
	}
	none, err := cs.ScramCredentials(c, []string{})
	must(t, "ScramCredentials none", err)
	if len(none) != 0 {
		t.Fatalf("ScramCredentials([]) = %+v", none)
	}
	must(t, "DeleteScramCredential", cs.DeleteScramCredential(c, "alice", "SCRAM-SHA-256"))
	_, err = cs.ScramCredential(c, "alice", "SCRAM-SHA-256")
	wantErr(t, "deleted credential", err, metastore.ErrUnknownCredential)
	if _, err := cs.ScramCredential(c, "alice", "SCRAM-SHA-512"); err != nil {
		t.Fatalf("the other mechanism's credential went too: %v", err)
	}
}

func testACLs(t *testing.T, as metastore.Backend) {
	c := ctx(t)
	list := func() []metastore.ACL {
		t.Helper()
		got, err := as.ListACLs(c)
		must(t, "ListACLs", err)
		return got
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("new store has ACLs: %+v", got)
	}
	x := metastore.ACL{ResourceType: 2, Name: "orders-", PatternType: 4, Principal: "User:alice", Host: "*", Operation: 4, Permission: 3}
	y := metastore.ACL{ResourceType: 3, Name: "*", PatternType: 3, Principal: "User:*", Host: "10.0.0.1", Operation: 3, Permission: 2}
	z := x
	z.Operation = 2 // differs in one field only
	must(t, "CreateACLs", as.CreateACLs(c, []metastore.ACL{x, y, z}))
	must(t, "CreateACLs duplicate", as.CreateACLs(c, []metastore.ACL{x}))
	if got := list(); !reflect.DeepEqual(got, []metastore.ACL{z, x, y}) {
		t.Fatalf("ListACLs = %+v", got)
	}
	must(t, "DeleteACLs", as.DeleteACLs(c, []metastore.ACL{x, {Name: "absent"}}))
	if got := list(); !reflect.DeepEqual(got, []metastore.ACL{z, y}) {
		t.Fatalf("ListACLs after delete = %+v", got)
	}
}

// testACLWatch checks that a store that can watch ACLs reports every
// change, its own included (the agents' caches rely on it).
func testACLWatch(t *testing.T, s metastore.Backend) {
	w, ok := s.(metastore.ACLWatcher)
	if !ok {
		t.Skip("the store has no ACL notifications (one process: the agent reloads its own changes)")
	}
	c, cancel := context.WithCancel(ctx(t))
	events := make(chan struct{}, 16)
	done := make(chan error, 1)
	go func() {
		done <- w.WatchACLs(c, func() {
			select {
			case events <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("WatchACLs returned %v, want context.Canceled", err)
		}
	})
	wait := func(what string) {
		t.Helper()
		select {
		case <-events:
		case <-time.After(10 * time.Second):
			t.Fatalf("no ACL notification %s", what)
		}
	}
	wait("when listening")
	as := s
	a := metastore.ACL{ResourceType: 2, Name: "t", PatternType: 3, Principal: "User:a", Host: "*", Operation: 3, Permission: 3}
	must(t, "CreateACLs", as.CreateACLs(c, []metastore.ACL{a}))
	wait("after CreateACLs")
	must(t, "DeleteACLs", as.DeleteACLs(c, []metastore.ACL{a}))
	wait("after DeleteACLs")
}
