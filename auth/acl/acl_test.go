package acl_test

import (
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/siltdata/silt/auth/acl"
	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	topic   = kmsg.ACLResourceTypeTopic
	group   = kmsg.ACLResourceTypeGroup
	cluster = kmsg.ACLResourceTypeCluster
	txn     = kmsg.ACLResourceTypeTransactionalId
	lit     = kmsg.ACLResourcePatternTypeLiteral
	pre     = kmsg.ACLResourcePatternTypePrefixed
	allow   = kmsg.ACLPermissionTypeAllow
	deny    = kmsg.ACLPermissionTypeDeny
)

func entry(rt kmsg.ACLResourceType, pt kmsg.ACLResourcePatternType, name, principal, host string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) metastore.ACL {
	return metastore.ACL{ResourceType: int8(rt), Name: name, PatternType: int8(pt), Principal: principal,
		Host: host, Operation: int8(op), Permission: int8(perm)}
}

func newAuthorizer(t *testing.T, cfg acl.Config, acls ...metastore.ACL) *acl.Authorizer {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "m.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a, err := acl.New(cfg, s, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Authorize("User:x", "1.2.3.4", kmsg.ACLOperationRead, topic, "t") {
		t.Fatal("allowed before the ACLs were loaded")
	}
	if err := a.Create(t.Context(), acls); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAuthorize(t *testing.T) {
	cfg := acl.DefaultConfig()
	cfg.SuperUsers = []string{"User:admin"}
	a := newAuthorizer(t, cfg,
		entry(topic, pre, "orders-", "User:alice", "*", kmsg.ACLOperationWrite, allow),
		entry(topic, lit, "orders-secret", "User:alice", "*", kmsg.ACLOperationAll, deny),
		entry(topic, lit, "*", "User:*", "*", kmsg.ACLOperationDescribeConfigs, allow),
		entry(topic, lit, "audit", "User:bob", "10.0.0.1", kmsg.ACLOperationRead, allow),
		entry(group, lit, "g", "User:bob", "*", kmsg.ACLOperationRead, allow),
		entry(txn, pre, "tx-", "User:carol", "*", kmsg.ACLOperationWrite, allow),
	)
	for _, c := range []struct {
		principal, host string
		op              kmsg.ACLOperation
		rt              kmsg.ACLResourceType
		name            string
		want            bool
	}{
		{"User:alice", "1.1.1.1", kmsg.ACLOperationWrite, topic, "orders-eu", true},
		{"User:alice", "1.1.1.1", kmsg.ACLOperationDescribe, topic, "orders-eu", true}, // WRITE implies DESCRIBE
		{"User:alice", "1.1.1.1", kmsg.ACLOperationRead, topic, "orders-eu", false},
		{"User:alice", "1.1.1.1", kmsg.ACLOperationWrite, topic, "orders", false},        // not the prefix
		{"User:alice", "1.1.1.1", kmsg.ACLOperationWrite, topic, "orders-secret", false}, // deny wins
		{"User:alice", "1.1.1.1", kmsg.ACLOperationDescribeConfigs, topic, "anything", true},
		{"User:alice", "1.1.1.1", kmsg.ACLOperationAlterConfigs, topic, "anything", false},
		{"User:bob", "10.0.0.1", kmsg.ACLOperationRead, topic, "audit", true},
		{"User:bob", "::ffff:10.0.0.1", kmsg.ACLOperationRead, topic, "audit", true},
		{"User:bob", "10.0.0.2", kmsg.ACLOperationRead, topic, "audit", false}, // other host
		{"User:bob", "10.0.0.2", kmsg.ACLOperationRead, group, "g", true},
		{"User:bob", "10.0.0.2", kmsg.ACLOperationDelete, group, "g", false},
		{"User:bob", "10.0.0.2", kmsg.ACLOperationRead, group, "other", false}, // no ACL: closed
		{"User:carol", "1.1.1.1", kmsg.ACLOperationWrite, txn, "tx-1", true},
		{"User:carol", "1.1.1.1", kmsg.ACLOperationDescribe, txn, "tx-1", true},
		{"User:carol", "1.1.1.1", kmsg.ACLOperationAlter, cluster, acl.ClusterName, false},
		{"User:admin", "1.1.1.1", kmsg.ACLOperationAlter, cluster, acl.ClusterName, true}, // super user
	} {
		if got := a.Authorize(c.principal, c.host, c.op, c.rt, c.name); got != c.want {
			t.Errorf("%s@%s %s %s %q = %v, want %v", c.principal, c.host, c.op, c.rt, c.name, got, c.want)
		}
	}
	if !a.AuthorizeAny("User:alice", "1.1.1.1", kmsg.ACLOperationWrite, topic) {
		t.Error("alice may write some topic")
	}
	if a.AuthorizeAny("User:bob", "1.1.1.1", kmsg.ACLOperationWrite, topic) {
		t.Error("bob may not write any topic")
	}
	ops := a.Operations("User:alice", "1.1.1.1", topic, "orders-x", []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe})
	if ops != 1<<kmsg.ACLOperationWrite|1<<kmsg.ACLOperationDescribe {
		t.Errorf("operations %b", ops)
	}
}

func TestAllowEveryoneIfNoACLFound(t *testing.T) {
	cfg := acl.DefaultConfig()
	cfg.AllowEveryoneIfNoACLFound = true
	a := newAuthorizer(t, cfg, entry(topic, lit, "closed", "User:alice", "*", kmsg.ACLOperationRead, allow))
	if !a.Authorize("User:bob", "1.1.1.1", kmsg.ACLOperationWrite, topic, "open") {
		t.Error("a topic without ACLs is open")
	}
	if a.Authorize("User:bob", "1.1.1.1", kmsg.ACLOperationRead, topic, "closed") {
		t.Error("a topic with ACLs is closed to others")
	}
}

func TestFilters(t *testing.T) {
	x := entry(topic, pre, "orders-", "User:alice", "*", kmsg.ACLOperationWrite, allow)
	y := entry(topic, lit, "*", "User:bob", "*", kmsg.ACLOperationRead, allow)
	z := entry(topic, lit, "orders-eu", "User:bob", "*", kmsg.ACLOperationRead, deny)
	g := entry(group, lit, "orders-eu", "User:bob", "*", kmsg.ACLOperationRead, allow)
	a := newAuthorizer(t, acl.DefaultConfig(), x, y, z, g)
	name := func(s string) *string { return &s }
	for _, c := range []struct {
		f    acl.Filter
		want int
	}{
		{acl.Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, 4},
		{acl.Filter{ResourceType: topic, Name: name("orders-eu"), PatternType: kmsg.ACLResourcePatternTypeMatch, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, 3},
		{acl.Filter{ResourceType: topic, Name: name("orders-eu"), PatternType: lit, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, 1},
		{acl.Filter{ResourceType: kmsg.ACLResourceTypeAny, Principal: name("User:bob"), PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationRead, Permission: allow}, 2},
	} {
		got, err := a.Describe(t.Context(), c.f)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != c.want {
			t.Errorf("filter %+v selected %d, want %d", c.f, len(got), c.want)
		}
	}
	deleted, err := a.Delete(t.Context(), []acl.Filter{{ResourceType: topic, PatternType: kmsg.ACLResourcePatternTypeAny, Principal: name("User:bob"), Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}})
	if err != nil || len(deleted[0]) != 2 {
		t.Fatalf("deleted %v, %v", deleted, err)
	}
	if a.Authorize("User:bob", "1.1.1.1", kmsg.ACLOperationRead, topic, "anything") {
		t.Error("deleted ACL still in force")
	}
}

func TestValidate(t *testing.T) {
	good := entry(topic, lit, "t", "User:a", "*", kmsg.ACLOperationRead, allow)
	if err := acl.Validate(good); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []metastore.ACL{
		entry(kmsg.ACLResourceTypeAny, lit, "t", "User:a", "*", kmsg.ACLOperationRead, allow),
		entry(topic, kmsg.ACLResourcePatternTypeMatch, "t", "User:a", "*", kmsg.ACLOperationRead, allow),
		entry(topic, lit, "", "User:a", "*", kmsg.ACLOperationRead, allow),
		entry(topic, lit, "t", "alice", "*", kmsg.ACLOperationRead, allow),
		entry(topic, lit, "t", "User:a", "*", kmsg.ACLOperationAny, allow),
		entry(topic, lit, "t", "User:a", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAny),
		entry(cluster, lit, "my-cluster", "User:a", "*", kmsg.ACLOperationAlter, allow),
	} {
		if acl.Validate(bad) == nil {
			t.Errorf("%s accepted", acl.Format(bad))
		}
	}
}
