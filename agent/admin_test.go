package agent

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/segment/segmenttest"
	"github.com/siltdata/silt/topicconfig"
)

func TestCreateDescribeDeleteTopics(t *testing.T) {
	a := startAgent(t)
	_, adm := a.client(t)
	ctx := ctxTimeout(t)

	created, err := adm.CreateTopic(ctx, 3, -1, map[string]*string{"retention.ms": kmsg.StringPtr("1000")}, "orders")
	if err != nil || created.Err != nil {
		t.Fatalf("create: %v / %v", err, created.Err)
	}
	if created.NumPartitions != 3 || created.ReplicationFactor != 1 || created.ID == (kadm.TopicID{}) {
		t.Fatalf("created %+v", created)
	}
	if c := created.Configs["retention.ms"]; c.Value == nil || *c.Value != "1000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms in create response: %+v", c)
	}

	// Errors answered per topic.
	cases := []struct {
		name       string
		partitions int32
		rf         int16
		configs    map[string]*string
		want       error
	}{
		{"orders", 1, 1, nil, kerr.TopicAlreadyExists},
		{"bad name", 1, 1, nil, kerr.InvalidTopicException},
		{"zero-partitions", 0, 1, nil, kerr.InvalidPartitions},
		{"zero-rf", 1, 0, nil, kerr.InvalidReplicationFactor},
		{"bad-config", 1, 1, map[string]*string{"retention.ms": kmsg.StringPtr("soon")}, kerr.InvalidConfig},
		{"unknown-config", 1, 1, map[string]*string{"no.such.config": kmsg.StringPtr("1")}, kerr.InvalidConfig},
		{"bad-enum", 1, 1, map[string]*string{"message.timestamp.type": kmsg.StringPtr("Now")}, kerr.InvalidConfig},
	}
	for _, c := range cases {
		rs, err := adm.CreateTopics(ctx, c.partitions, c.rf, c.configs, c.name)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r := rs[c.name]; !errors.Is(r.Err, c.want) {
			t.Errorf("%s: got %v (%s), want %v", c.name, r.Err, r.ErrMessage, c.want)
		}
	}

	// Replication factor 3 and the default partition count are accepted.
	r, err := adm.CreateTopic(ctx, -1, 3, nil, "replicated")
	if err != nil || r.Err != nil || r.NumPartitions != 1 {
		t.Fatalf("rf 3: %v %+v", err, r)
	}

	// validate_only creates nothing.
	vr, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "validated")
	if err != nil || vr["validated"].Err != nil {
		t.Fatalf("validate: %v %+v", err, vr)
	}
	if _, err := a.store.Topic(ctx, "validated"); !errors.Is(err, metastore.ErrUnknownTopic) {
		t.Fatalf("validate_only created the topic: %v", err)
	}

	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !topics.Has("orders") || !topics.Has("replicated") || len(topics) != 2 {
		t.Fatalf("topics %v", topics.Names())
	}
	if d := topics["orders"]; len(d.Partitions) != 3 || d.ID != created.ID {
		t.Fatalf("orders %+v", d)
	}
	for _, p := range topics["orders"].Partitions {
		if p.Leader != a.NodeID() || len(p.Replicas) != 1 || len(p.ISR) != 1 {
			t.Fatalf("partition %+v", p)
		}
	}

	del, err := adm.DeleteTopics(ctx, "orders", "missing")
	if err != nil {
		t.Fatal(err)
	}
	if del["orders"].Err != nil || !errors.Is(del["missing"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("delete: %+v", del)
	}
	// (kadm caches metadata; ask the agent directly.)
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.SetVersion(12)
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("orders")
	mreq.Topics = append(mreq.Topics, mt)
	if md := dialRaw(t, a.Addr()).roundTrip(mreq).(*kmsg.MetadataResponse); md.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("deleted topic still described: %+v", md.Topics[0])
	}
}

func TestDeleteTopicByID(t *testing.T) {
	a := startAgent(t)
	cl, adm := a.client(t)
	ctx := ctxTimeout(t)
	r, err := adm.CreateTopic(ctx, 1, 1, nil, "by-id")
	if err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.SetVersion(6)
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.TopicID = r.ID
	unknown := kmsg.NewDeleteTopicsRequestTopic()
	unknown.TopicID = [16]byte{1, 2, 3}
	req.Topics = append(req.Topics, dt, unknown)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Topics[0].ErrorCode != 0 || resp.Topics[1].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("codes %d %d", resp.Topics[0].ErrorCode, resp.Topics[1].ErrorCode)
	}
	if _, err := a.store.Topic(ctx, "by-id"); !errors.Is(err, metastore.ErrUnknownTopic) {
		t.Fatalf("topic still exists: %v", err)
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.DefaultPartitions = 4 })
	cl, _ := a.client(t)
	ctx := ctxTimeout(t)

	metadata := func(version int16, auto bool, names ...string) *kmsg.MetadataResponse {
		t.Helper()
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(version)
		req.AllowAutoTopicCreation = auto
		for _, n := range names {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(n)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := metadata(12, false, "not-auto")
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("without auto-create: %d", resp.Topics[0].ErrorCode)
	}
	resp = metadata(12, true, "auto", "bad name", "auto")
	if len(resp.Topics) != 2 {
		t.Fatalf("duplicate names not merged: %d topics", len(resp.Topics))
	}
	got := resp.Topics[0]
	if got.ErrorCode != 0 || len(got.Partitions) != 4 || got.TopicID == [16]byte{} {
		t.Fatalf("auto-created %+v", got)
	}
	if resp.Topics[1].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("invalid name: %d", resp.Topics[1].ErrorCode)
	}
	if resp.ClusterID == nil || *resp.ClusterID != "silt" || resp.ControllerID != a.NodeID() {
		t.Fatalf("cluster %v controller %d", resp.ClusterID, resp.ControllerID)
	}
	// v3 and older imply auto-creation.
	old := kmsg.NewPtrMetadataRequest()
	old.SetVersion(3)
	ot := kmsg.NewMetadataRequestTopic()
	ot.Topic = kmsg.StringPtr("old-client")
	old.Topics = append(old.Topics, ot)
	if r := dialRaw(t, a.Addr()).roundTrip(old).(*kmsg.MetadataResponse); r.Topics[0].ErrorCode != 0 || len(r.Topics[0].Partitions) != 4 {
		t.Fatalf("v3 auto-create: %+v", r.Topics[0])
	}
	// By topic id (v10+).
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	byID := kmsg.NewMetadataRequestTopic()
	byID.TopicID = got.TopicID
	missing := kmsg.NewMetadataRequestTopic()
	missing.TopicID = [16]byte{9}
	req.Topics = append(req.Topics, byID, missing)
	r, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if r.Topics[0].Topic == nil || *r.Topics[0].Topic != "auto" || r.Topics[1].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("by id: %+v", r.Topics)
	}
	// Auto-creation disabled in the agent.
	b := startAgent(t, func(c *Config) { c.AutoCreateTopics = false })
	bcl, _ := b.client(t)
	req = kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = true
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("nope")
	req.Topics = append(req.Topics, rt)
	r, err = req.RequestWith(ctx, bcl)
	if err != nil {
		t.Fatal(err)
	}
	if r.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("auto-create disabled: %d", r.Topics[0].ErrorCode)
	}
}

func TestCreatePartitions(t *testing.T) {
	a := startAgent(t)
	_, adm := a.client(t)
	ctx := ctxTimeout(t)
	if r, err := adm.CreateTopic(ctx, 2, 1, nil, "grow"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	v, err := adm.ValidateCreatePartitions(ctx, 3, "grow")
	if err != nil || v["grow"].Err != nil {
		t.Fatalf("validate: %v %+v", err, v)
	}
	if n := mustTopic(t, a, "grow").Partitions; n != 2 {
		t.Fatalf("validate_only changed partitions to %d", n)
	}
	r, err := adm.CreatePartitions(ctx, 3, "grow", "missing")
	if err != nil {
		t.Fatal(err)
	}
	if r["grow"].Err != nil || !errors.Is(r["missing"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("%+v", r)
	}
	md, err := adm.Metadata(ctx, "grow")
	if err != nil || len(md.Topics["grow"].Partitions) != 5 {
		t.Fatalf("after grow: %v %+v", err, md.Topics["grow"])
	}
	r, err = adm.UpdatePartitions(ctx, 4, "grow")
	if err != nil || !errors.Is(r["grow"].Err, kerr.InvalidPartitions) {
		t.Fatalf("shrink: %v %+v", err, r)
	}
}

func mustTopic(t *testing.T, a *testAgent, name string) metastore.Topic {
	t.Helper()
	top, err := a.store.Topic(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func TestTopicConfigs(t *testing.T) {
	a := startAgent(t)
	_, adm := a.client(t)
	ctx := ctxTimeout(t)
	if r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("delete")}, "cfg"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	describe := func() map[string]kadm.Config {
		t.Helper()
		rcs, err := adm.DescribeTopicConfigs(ctx, "cfg")
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On("cfg", nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("describe: %v %v", err, rc.Err)
		}
		out := map[string]kadm.Config{}
		for _, c := range rc.Configs {
			out[c.Key] = c
		}
		return out
	}
	cfgs := describe()
	if len(cfgs) != len(topicconfig.All()) {
		t.Fatalf("%d configs described, %d known", len(cfgs), len(topicconfig.All()))
	}
	if c := cfgs["max.message.bytes"]; *c.Value != "1048588" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("max.message.bytes %+v", c)
	}
	if c := cfgs["cleanup.policy"]; *c.Value != "delete" || c.Source != kmsg.ConfigSourceDynamicTopicConfig || len(c.Synonyms) != 2 {
		t.Fatalf("cleanup.policy %+v", c)
	}

	alter, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("60000")},
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")},
		{Op: kadm.SetConfig, Name: "message.timestamp.type", Value: kmsg.StringPtr("LogAppendTime")},
	}, "cfg")
	if err != nil || alter[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, alter)
	}
	cfgs = describe()
	if *cfgs["retention.ms"].Value != "60000" || *cfgs["cleanup.policy"].Value != "delete,compact" {
		t.Fatalf("after alter: %s %s", *cfgs["retention.ms"].Value, *cfgs["cleanup.policy"].Value)
	}
	// The agent's own change is visible to the data paths at once.
	top, err := a.topicByName(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	if tc := a.topicConfig(top.Configs); !tc.LogAppendTime || tc.RetentionMs != 60000 || tc.MaxMessageBytes != 1048588 || !tc.Compact || !tc.Delete {
		t.Fatalf("parsed %+v", tc)
	}

	for _, bad := range [][]kadm.AlterConfig{
		{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("-5")}},
		{{Op: kadm.SetConfig, Name: "bogus", Value: kmsg.StringPtr("1")}},
		{{Op: kadm.AppendConfig, Name: "retention.ms", Value: kmsg.StringPtr("1")}},
	} {
		r, err := adm.AlterTopicConfigs(ctx, bad, "cfg")
		if err != nil || !errors.Is(r[0].Err, kerr.InvalidConfig) {
			t.Errorf("alter %+v: %v %+v", bad[0], err, r)
		}
	}
	r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("1")}}, "missing")
	if err != nil || !errors.Is(r[0].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v %+v", err, r)
	}

	// DELETE goes back to the default; validate_only stores nothing.
	if r, err := adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, "cfg"); err != nil || r[0].Err != nil {
		t.Fatal(err, r)
	}
	if *describe()["retention.ms"].Value != "60000" {
		t.Fatal("validate_only altered the config")
	}
	if r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, "cfg"); err != nil || r[0].Err != nil {
		t.Fatal(err, r)
	}
	if c := describe()["retention.ms"]; *c.Value != "604800000" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("after delete %+v", c)
	}

	// Legacy AlterConfigs replaces the whole set.
	if r, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: kmsg.StringPtr("1000")}}, "cfg"); err != nil || r[0].Err != nil {
		t.Fatal(err, r)
	}
	if got := mustTopic(t, a, "cfg").Configs; len(got) != 1 || got["segment.ms"] != "1000" {
		t.Fatalf("after legacy alter: %v", got)
	}
}

func TestDescribeBrokerConfigsAndCluster(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Zone = "az1" })
	cl, adm := a.client(t)
	ctx := ctxTimeout(t)
	rcs, err := adm.DescribeBrokerConfigs(ctx, a.NodeID())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if c.Key == "broker.rack" && *c.Value == "az1" {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("broker.rack not described: %+v", rcs)
	}
	req := kmsg.NewPtrDescribeClusterRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ClusterID != "silt" || len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != a.NodeID() ||
		resp.Brokers[0].Rack == nil || *resp.Brokers[0].Rack != "az1" {
		t.Fatalf("describe cluster %+v", resp)
	}
}

func TestListOffsets(t *testing.T) {
	a := startAgent(t, fastIngest)
	cl, adm := a.client(t)
	ctx := ctxTimeout(t)
	r, err := adm.CreateTopic(ctx, 2, 1, nil, "lo")
	if err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	// Two real batches in partition 0: records 0-2 at base+1..base+3 (zstd
	// compressed by the "client"), records 3-4 at base+20, base+21.
	// Timestamp lookups find the batch in the index, then the record in it.
	base := time.Now().UnixMilli()
	for _, b := range [][]byte{
		segmenttest.New(segmenttest.Options{Records: 3, FirstTimestamp: base + 1, Compressed: true}),
		segmenttest.New(segmenttest.Options{Records: 2, FirstTimestamp: base + 20}),
	} {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = "lo", r.ID
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = b
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		if code := rawProduce(t, cl, req).Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(code))
		}
	}
	check := func(what string, l kadm.ListedOffsets, p int32, offset, ts int64) {
		t.Helper()
		o, ok := l.Lookup("lo", p)
		if !ok || o.Err != nil || o.Offset != offset || o.Timestamp != ts {
			t.Errorf("%s p%d: %+v, want offset %d ts %d", what, p, o, offset, ts)
		}
	}
	end, err := adm.ListEndOffsets(ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	check("end", end, 0, 5, -1)
	check("end", end, 1, 0, -1)
	start, err := adm.ListStartOffsets(ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	check("start", start, 0, 0, -1)
	for _, c := range []struct{ at, offset, ts int64 }{
		{base, 0, base + 1},       // before everything: the first record
		{base + 2, 1, base + 2},   // inside the compressed batch: that record
		{base + 3, 2, base + 3},   // the batch's last record
		{base + 15, 3, base + 20}, // between batches: the next batch's first
		{base + 21, 4, base + 21}, // inside the second batch
		{base + 100, 5, -1},       // after everything: the broker answers -1, kadm turns it into the end offset
	} {
		after, err := adm.ListOffsetsAfterMilli(ctx, c.at, "lo")
		if err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("after base+%d", c.at-base), after, 0, c.offset, c.ts)
	}
	maxTS, err := adm.ListMaxTimestampOffsets(ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	check("max timestamp", maxTS, 0, 4, base+21)

	// -5 (latest tiered): the last record; -1 on an empty partition.
	tiered := kmsg.NewPtrListOffsetsRequest()
	tiered.SetVersion(10)
	tt := kmsg.NewListOffsetsRequestTopic()
	tt.Topic = "lo"
	for _, p := range []int32{0, 1} {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -5
		tt.Partitions = append(tt.Partitions, rp)
	}
	tiered.Topics = append(tiered.Topics, tt)
	tr := dialRaw(t, a.Addr()).roundTrip(tiered).(*kmsg.ListOffsetsResponse)
	if ps := tr.Topics[0].Partitions; ps[0].Offset != 4 || ps[1].Offset != -1 || ps[0].ErrorCode != 0 || ps[1].ErrorCode != 0 {
		t.Fatalf("latest tiered %+v", ps)
	}

	// Unknown topic and partition, duplicates.
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(7)
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "lo"
	for _, p := range []int32{0, 0, 9} {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	missing := kmsg.NewListOffsetsRequestTopic()
	missing.Topic = "nope"
	missing.Partitions = []kmsg.ListOffsetsRequestTopicPartition{kmsg.NewListOffsetsRequestTopicPartition()}
	req.Topics = append(req.Topics, rt, missing)
	raw := dialRaw(t, a.Addr())
	resp := raw.roundTrip(req).(*kmsg.ListOffsetsResponse)
	// The duplicate partition is answered once, as Kafka answers it.
	if n := len(resp.Topics[0].Partitions); n != 2 {
		t.Fatalf("%d partitions answered for 0, 0, 9; want 2", n)
	}
	codes := []int16{resp.Topics[0].Partitions[0].ErrorCode,
		resp.Topics[0].Partitions[1].ErrorCode, resp.Topics[1].Partitions[0].ErrorCode}
	want := []int16{kerr.InvalidRequest.Code, kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicOrPartition.Code}
	for i := range codes {
		if codes[i] != want[i] {
			t.Fatalf("codes %v, want %v", codes, want)
		}
	}

	// OffsetForLeaderEpoch: epoch 0 ends at the high watermark.
	oreq := kmsg.NewPtrOffsetForLeaderEpochRequest()
	oreq.SetVersion(4)
	ot := kmsg.NewOffsetForLeaderEpochRequestTopic()
	ot.Topic = "lo"
	op := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	op.LeaderEpoch = 0
	op2 := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	op2.LeaderEpoch = 5
	ot.Partitions = append(ot.Partitions, op, op2)
	oreq.Topics = append(oreq.Topics, ot)
	oresp := raw.roundTrip(oreq).(*kmsg.OffsetForLeaderEpochResponse)
	ps := oresp.Topics[0].Partitions
	if ps[0].ErrorCode != 0 || ps[0].LeaderEpoch != 0 || ps[0].EndOffset != 5 || ps[1].EndOffset != -1 || ps[1].LeaderEpoch != -1 {
		t.Fatalf("offset for leader epoch %+v", ps)
	}
}

func TestInitProducerID(t *testing.T) {
	a := startAgent(t)
	raw := dialRaw(t, a.Addr())
	init := func(txn *string, id int64, epoch int16) *kmsg.InitProducerIDResponse {
		t.Helper()
		req := kmsg.NewPtrInitProducerIDRequest()
		req.SetVersion(4)
		req.TransactionalID, req.ProducerID, req.ProducerEpoch = txn, id, epoch
		req.TransactionTimeoutMillis = 60000
		return raw.roundTrip(req).(*kmsg.InitProducerIDResponse)
	}
	first := init(nil, -1, -1)
	if first.ErrorCode != 0 || first.ProducerID < 0 || first.ProducerEpoch != 0 {
		t.Fatalf("first %+v", first)
	}
	again := init(nil, first.ProducerID, 0)
	if again.ErrorCode != 0 || again.ProducerID == first.ProducerID || again.ProducerEpoch != 0 {
		t.Fatalf("re-init %+v (first id %d)", again, first.ProducerID)
	}
	// Transactional: a fresh producer id at epoch 0, then the epoch bumped
	// for the next instance.
	tx := init(kmsg.StringPtr("txn"), -1, -1)
	if tx.ErrorCode != 0 || tx.ProducerID < 0 || tx.ProducerEpoch != 0 {
		t.Fatalf("transactional %+v", tx)
	}
	if r := init(kmsg.StringPtr("txn"), -1, -1); r.ErrorCode != 0 || r.ProducerID != tx.ProducerID || r.ProducerEpoch != 1 {
		t.Fatalf("transactional again %+v", r)
	}
	if r := init(kmsg.StringPtr(""), -1, -1); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("empty transactional id: %d", r.ErrorCode)
	}
	if r := init(nil, 5, -1); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("id without epoch: %d", r.ErrorCode)
	}
}

func TestIdempotentProducerInitializes(t *testing.T) {
	// franz-go producers are idempotent by default: they need
	// InitProducerID before the first produce.
	a := startAgent(t)
	cl, _ := a.client(t, kgo.DefaultProduceTopic("unused"))
	ctx := ctxTimeout(t)
	if _, _, err := cl.ProducerID(ctx); err != nil {
		t.Fatalf("producer id: %v", err)
	}
}

func TestCreateTopicsDuplicateName(t *testing.T) {
	a := startAgent(t)
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(7)
	for range 2 {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "twice", 1, 1
		req.Topics = append(req.Topics, rt)
	}
	resp := dialRaw(t, a.Addr()).roundTrip(req).(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("%+v", resp.Topics)
	}
	if _, err := a.store.Topic(t.Context(), "twice"); !errors.Is(err, metastore.ErrUnknownTopic) {
		t.Fatalf("duplicate created: %v", err)
	}
}
