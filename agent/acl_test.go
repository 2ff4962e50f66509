package agent

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/siltdata/silt/auth/sasl"
	"github.com/siltdata/silt/metastore"
)

// aclSetup is an agent with a SASL_PLAINTEXT listener (PLAIN), the
// authorizer on, admin a super user and alice, bob and admin users.
func aclSetup(t *testing.T) (*testAgent, func(user string, opts ...kgo.Opt) *kgo.Client) {
	t.Helper()
	a := startAgent(t, func(c *Config) {
		c.Listeners = []Listener{{Name: "SASL", Addr: "127.0.0.1:0", Protocol: SASLPlaintext}}
		c.SASL.Mechanisms = []string{sasl.Plain, sasl.ScramSHA256}
		c.Authorize = true
		c.ACL.SuperUsers = []string{"User:admin"}
		c.Ingest.FlushInterval = 5 * time.Millisecond
		c.FailedAuthDelay = 0
	})
	for _, u := range []string{"admin", "alice", "bob"} {
		cred, err := sasl.NewScramCredential(sasl.ScramSHA256, u, u+"-pw", sasl.MinIterations)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.store.(metastore.Credentials).UpsertScramCredential(t.Context(), cred); err != nil {
			t.Fatal(err)
		}
	}
	return a, func(user string, opts ...kgo.Opt) *kgo.Client {
		cl, _ := a.client(t, append([]kgo.Opt{kgo.SASL(plain.Auth{User: user, Pass: user + "-pw"}.AsMechanism()),
			kgo.RetryTimeout(3 * time.Second)}, opts...)...)
		return cl
	}
}

// TestACLProduceOnlyPrincipal: alice may only produce to orders-*, and
// every API tells her so, as Kafka would.
func TestACLProduceOnlyPrincipal(t *testing.T) {
	a, client := aclSetup(t)
	ctx := ctxTimeout(t)
	admin := kadm.NewClient(client("admin"))
	for _, topic := range []string{"orders-eu", "payments"} {
		if _, err := admin.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	acls := kadm.NewACLs().Allow("User:alice").Topics("orders-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite)
	if res, err := admin.CreateACLs(ctx, acls); err != nil || res[0].Err != nil {
		t.Fatalf("create acls: %v %+v", err, res)
	}
	topics, err := admin.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	alice := client("alice")
	req := func(r kmsg.Request) kmsg.Response {
		t.Helper()
		// Straight to the agent: kgo's sharding would turn per-topic
		// errors into request errors.
		resp, err := alice.Broker(int(a.NodeID())).Request(ctx, r)
		if err != nil {
			t.Fatalf("%s: %v", kmsg.NameForKey(r.Key()), err)
		}
		return resp
	}
	want := func(what string, got int16, want *kerr.Error) {
		t.Helper()
		if got != want.Code {
			t.Errorf("%s: %s, want %s", what, codeName(got), want.Message)
		}
	}

	// Produce: allowed on orders-*, TOPIC_AUTHORIZATION_FAILED elsewhere
	// (franz-go's producer with its idempotent InitProducerID: allowed by
	// WRITE on some topic, KIP-679).
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "orders-eu", Value: []byte("ok")}).FirstErr(); err != nil {
		t.Fatalf("produce to orders-eu: %v", err)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "payments", Value: []byte("no")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("produce to payments: %v", err)
	}
	// Fetch: no READ anywhere.
	fr := kmsg.NewPtrFetchRequest()
	for _, topic := range []string{"orders-eu", "payments"} {
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic, ft.TopicID = topic, topics[topic].ID
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
		fr.Topics = append(fr.Topics, ft)
	}
	fr.MaxBytes = 1 << 20
	for i, ft := range req(fr).(*kmsg.FetchResponse).Topics {
		want("fetch "+fr.Topics[i].Topic, ft.Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	}
	// Metadata: all topics lists only what she may describe (WRITE
	// implies DESCRIBE); a named one she may not answers
	// TOPIC_AUTHORIZATION_FAILED; she may not auto-create.
	md := req(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
	if len(md.Topics) != 1 || *md.Topics[0].Topic != "orders-eu" {
		t.Errorf("metadata lists %d topics, want only orders-eu", len(md.Topics))
	}
	mr := kmsg.NewPtrMetadataRequest()
	for _, n := range []string{"payments", "orders-new", "unknown"} {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(n)
		mr.Topics = append(mr.Topics, mt)
	}
	mr.AllowAutoTopicCreation = true
	for _, mt := range req(mr).(*kmsg.MetadataResponse).Topics {
		want("metadata "+*mt.Topic, mt.ErrorCode, kerr.TopicAuthorizationFailed)
	}
	// Named by id: TOPIC_AUTHORIZATION_FAILED with the id and no name.
	byID := kmsg.NewPtrMetadataRequest()
	idt := kmsg.NewMetadataRequestTopic()
	idt.TopicID = topics["payments"].ID
	byID.Topics = append(byID.Topics, idt)
	if mt := req(byID).(*kmsg.MetadataResponse).Topics[0]; mt.ErrorCode != kerr.TopicAuthorizationFailed.Code || mt.Topic != nil {
		t.Errorf("metadata by id: %s, name %v", codeName(mt.ErrorCode), mt.Topic)
	}
	if _, err := a.store.Topic(ctx, "orders-new"); !errors.Is(err, metastore.ErrUnknownTopic) {
		t.Errorf("orders-new was auto-created: %v", err)
	}
	// ListOffsets: DESCRIBE (implied) on orders-eu only.
	lr := kmsg.NewPtrListOffsetsRequest()
	for _, topic := range []string{"orders-eu", "payments"} {
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = topic
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = -1
		lt.Partitions = append(lt.Partitions, lp)
		lr.Topics = append(lr.Topics, lt)
	}
	lo := req(lr).(*kmsg.ListOffsetsResponse)
	if c := lo.Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Errorf("list offsets orders-eu: %s", codeName(c))
	}
	want("list offsets payments", lo.Topics[1].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)

	// Groups: no group ACL.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = "g", []string{"g"}
	coordErr := func() int16 {
		r := req(fc).(*kmsg.FindCoordinatorResponse)
		if len(r.Coordinators) > 0 { // v4+
			return r.Coordinators[0].ErrorCode
		}
		return r.ErrorCode
	}
	want("find coordinator", coordErr(), kerr.GroupAuthorizationFailed)
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group, jg.ProtocolType, jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis = "g", "consumer", 10000, 10000
	jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
	want("join group", req(jg).(*kmsg.JoinGroupResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group = "g"
	want("heartbeat", req(hb).(*kmsg.HeartbeatResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation = "g", -1
	oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "orders-eu", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	want("offset commit", req(oc).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, kerr.GroupAuthorizationFailed)
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group = "g"
	of.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}}
	ofr := req(of).(*kmsg.OffsetFetchResponse)
	if len(ofr.Groups) > 0 { // v8+
		ofr.ErrorCode = ofr.Groups[0].ErrorCode
	}
	want("offset fetch", ofr.ErrorCode, kerr.GroupAuthorizationFailed)
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"g"}
	want("describe groups", req(dg).(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode, kerr.GroupAuthorizationFailed)
	xg := kmsg.NewPtrDeleteGroupsRequest()
	xg.Groups = []string{"g"}
	want("delete groups", req(xg).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, kerr.GroupAuthorizationFailed)
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g"
	want("offset delete", req(od).(*kmsg.OffsetDeleteResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	if lg := req(kmsg.NewPtrListGroupsRequest()).(*kmsg.ListGroupsResponse); lg.ErrorCode != 0 || len(lg.Groups) != 0 {
		t.Errorf("list groups: %+v", lg)
	}

	// Topic admin and configs.
	ct := kmsg.NewPtrCreateTopicsRequest()
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "orders-new", 1, 1
	ct.Topics = append(ct.Topics, ctt)
	want("create topics", req(ct).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TopicNames = []string{"orders-eu"}
	dtt := kmsg.NewDeleteTopicsRequestTopic()
	dtt.Topic = kmsg.StringPtr("orders-eu")
	dt.Topics = append(dt.Topics, dtt)
	want("delete topics", req(dt).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "orders-eu", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: -1}}}}
	want("delete records", req(dr).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "orders-eu", Count: 2}}
	want("create partitions", req(cp).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Resources = []kmsg.DescribeConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "orders-eu"},
		{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: ""},
	}
	dcr := req(dc).(*kmsg.DescribeConfigsResponse)
	want("describe topic configs", dcr.Resources[0].ErrorCode, kerr.TopicAuthorizationFailed)
	want("describe broker configs", dcr.Resources[1].ErrorCode, kerr.ClusterAuthorizationFailed)
	ia := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ia.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "orders-eu",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1000")}}}}
	want("incremental alter configs", req(ia).(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode, kerr.TopicAuthorizationFailed)
	ac := kmsg.NewPtrAlterConfigsRequest()
	ac.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "orders-eu"}}
	want("alter configs", req(ac).(*kmsg.AlterConfigsResponse).Resources[0].ErrorCode, kerr.TopicAuthorizationFailed)
	oe := kmsg.NewPtrOffsetForLeaderEpochRequest()
	oe.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: "payments", Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{{Partition: 0}}}}
	want("offset for leader epoch", req(oe).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)

	// Transactions: no transactional id ACL.
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.TransactionalID = kmsg.StringPtr("tx")
	want("init producer id (transactional)", req(ip).(*kmsg.InitProducerIDResponse).ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	fc.CoordinatorType, fc.CoordinatorKey, fc.CoordinatorKeys = 1, "tx", []string{"tx"}
	want("find transaction coordinator", coordErr(), kerr.TransactionalIDAuthorizationFailed)

	// Security admin.
	want("describe acls", req(kmsg.NewPtrDescribeACLsRequest()).(*kmsg.DescribeACLsResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
	ca := kmsg.NewPtrCreateACLsRequest()
	ca.Creations = []kmsg.CreateACLsRequestCreation{{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: "x", ResourcePatternType: kmsg.ACLResourcePatternTypeLiteral,
		Principal: "User:alice", Host: "*", Operation: kmsg.ACLOperationAll, PermissionType: kmsg.ACLPermissionTypeAllow}}
	want("create acls", req(ca).(*kmsg.CreateACLsResponse).Results[0].ErrorCode, kerr.ClusterAuthorizationFailed)
	du := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	want("describe scram", req(du).(*kmsg.DescribeUserSCRAMCredentialsResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
	au := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	au.Deletions = []kmsg.AlterUserSCRAMCredentialsRequestDeletion{{Name: "bob", Mechanism: 1}}
	want("alter scram", req(au).(*kmsg.AlterUserSCRAMCredentialsResponse).Results[0].ErrorCode, kerr.ClusterAuthorizationFailed)

	// bob has no ACL at all: even the idempotent producer's
	// InitProducerID is refused (no IDEMPOTENT_WRITE, no WRITE anywhere).
	bob := client("bob")
	if err := bob.ProduceSync(ctx, &kgo.Record{Topic: "orders-eu", Value: []byte("no")}).FirstErr(); !errors.Is(err, kerr.ClusterAuthorizationFailed) && !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("bob produce: %v", err)
	}

	// Deleting the ACL takes effect on the next request.
	if _, err := admin.DeleteACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("orders-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite)); err != nil {
		t.Fatal(err)
	}
	md = req(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
	if len(md.Topics) != 0 {
		t.Errorf("after the ACL was deleted alice still sees %d topics", len(md.Topics))
	}
}

// TestACLAdminAPIs drives CreateAcls, DescribeAcls, DeleteAcls and the
// SCRAM credential APIs through kadm as a super user.
func TestACLAdminAPIs(t *testing.T) {
	_, client := aclSetup(t)
	ctx := ctxTimeout(t)
	admin := kadm.NewClient(client("admin"))
	b := kadm.NewACLs().Allow("User:alice", "User:bob").Topics("t1", "t2").Groups("g").Operations(kadm.OpRead, kadm.OpDescribe)
	res, err := admin.CreateACLs(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create: %v", r.Err)
		}
	}
	dr := kmsg.NewPtrDescribeACLsRequest()
	dr.ResourceType, dr.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	dr.Operation, dr.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	described, err := dr.RequestWith(ctx, client("admin"))
	if err != nil || described.ErrorCode != 0 {
		t.Fatalf("describe acls: %v %+v", err, described)
	}
	n := 0
	for _, r := range described.Resources {
		n += len(r.ACLs)
	}
	if n != 12 { // 2 principals x (2 topics + 1 group) x 2 operations
		t.Fatalf("described %d ACLs, want 12", n)
	}
	// An invalid entry is refused on its own.
	bad := kmsg.NewPtrCreateACLsRequest()
	bad.Creations = []kmsg.CreateACLsRequestCreation{{ResourceType: kmsg.ACLResourceTypeCluster, ResourceName: "wrong", ResourcePatternType: kmsg.ACLResourcePatternTypeLiteral,
		Principal: "User:x", Host: "*", Operation: kmsg.ACLOperationAlter, PermissionType: kmsg.ACLPermissionTypeAllow}}
	br, err := bad.RequestWith(ctx, client("admin"))
	if err != nil || br.Results[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("invalid cluster name: %v %+v", err, br)
	}
	deleted, err := admin.DeleteACLs(ctx, kadm.NewACLs().Allow("User:bob").AllowHosts().AnyResource().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || len(deleted[0].Deleted) != 6 {
		t.Fatalf("deleted %+v", deleted)
	}

	// SCRAM credentials: alter, describe, log in with the new password.
	alter, err := admin.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "carol", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "carol-pw"}})
	if err != nil || alter.Error() != nil {
		t.Fatalf("alter scram: %v %v", err, alter.Error())
	}
	desc, err := admin.DescribeUserSCRAMs(ctx, "carol", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if c := desc["carol"]; c.Err != nil || len(c.CredInfos) != 1 || c.CredInfos[0].Iterations != 4096 {
		t.Fatalf("carol: %+v", c)
	}
	if !errors.Is(desc["nobody"].Err, kerr.ResourceNotFound) {
		t.Fatalf("nobody: %+v", desc["nobody"])
	}
	if err := client("carol").Ping(ctx); err != nil {
		t.Fatalf("carol logs in: %v", err)
	}
}
