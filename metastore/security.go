package metastore

import "context"

// Credentials is the store of SASL/SCRAM credentials, so every agent
// authenticates every user. Only what a SCRAM server needs is kept: the
// salt, the iteration count and the two derived keys (RFC 5802's StoredKey
// and ServerKey), never the password nor the salted password.
type Credentials interface {
	// UpsertScramCredential creates or replaces one user's credential
	// for one mechanism.
	UpsertScramCredential(ctx context.Context, c ScramCredential) error
	// DeleteScramCredential removes one user's credential for one
	// mechanism. Errors: ErrUnknownCredential.
	DeleteScramCredential(ctx context.Context, user, mechanism string) error
	// ScramCredential returns one user's credential for one mechanism.
	// Errors: ErrUnknownCredential.
	ScramCredential(ctx context.Context, user, mechanism string) (ScramCredential, error)
	// ScramCredentials lists the credentials of the named users, or of
	// every user when users is nil, ordered by user and mechanism.
	ScramCredentials(ctx context.Context, users []string) ([]ScramCredential, error)
}

// ScramCredential is one user's SCRAM credential for one mechanism.
type ScramCredential struct {
	User       string
	Mechanism  string // "SCRAM-SHA-256" or "SCRAM-SHA-512"
	Iterations int32
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
}

// ACLs is the store of access control entries. Agents read the whole set
// into a cache (an ACL set is small: entries, not data) and reload it
// when it changes; matching is the authorizer's, not the store's.
type ACLs interface {
	// CreateACLs adds entries; an entry equal to an existing one is
	// not added twice.
	CreateACLs(ctx context.Context, acls []ACL) error
	// DeleteACLs removes exactly the given entries (those that exist).
	DeleteACLs(ctx context.Context, acls []ACL) error
	// ListACLs returns every entry, in a stable order.
	ListACLs(ctx context.Context) ([]ACL, error)
}

// ACLWatcher is implemented by stores that can tell every agent that the
// ACLs changed (Postgres: LISTEN/NOTIFY), so their caches follow within a
// round trip instead of a refresh period.
type ACLWatcher interface {
	// WatchACLs calls fn after each change of the ACLs made by anyone,
	// this store included, until ctx ends; then it returns ctx's error.
	// fn is also called once the watch is listening and after each
	// reconnection (changes may have been missed). It runs in the
	// caller's goroutine; fn must not block for long.
	WatchACLs(ctx context.Context, fn func()) error
}

// ACL is one access control entry, with Kafka's wire codes (kmsg's
// ACLResourceType, ACLResourcePatternType, ACLOperation and
// ACLPermissionType): allow or deny Principal ("User:alice", "User:*")
// from Host ("*" or an IP) the Operation on the resources of type
// ResourceType named Name (literal, "*" for all, or a prefix).
type ACL struct {
	ResourceType int8
	Name         string
	PatternType  int8
	Principal    string
	Host         string
	Operation    int8
	Permission   int8
}
