package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/sqlite"
)

func TestClientZone(t *testing.T) {
	for id, want := range map[string]string{
		"":                                 "",
		"app":                              "",
		"silt_az=eu-1a":                    "eu-1a",
		"orders,silt_az=us-east-1b":        "us-east-1b",
		"orders,silt_az=us-east-1b,x=1":    "us-east-1b",
		"silt_az=z1;other":                 "z1",
		"consumer-1 silt_az=a&k=v":         "a",
		"orders,silt_az=":                  "",
		"orders,not_silt_az_but_silt_az=q": "q",
	} {
		if got := clientZone(id); got != want {
			t.Errorf("clientZone(%q) = %q, want %q", id, got, want)
		}
	}
}

// named returns a function that takes a picked agent and fails the test
// when none was picked.
func named(t testing.TB) func(metastore.Agent, bool) metastore.Agent {
	return func(a metastore.Agent, ok bool) metastore.Agent {
		t.Helper()
		if !ok {
			t.Fatal("no agent named")
		}
		return a
	}
}

func TestPickIsDeterministicAndZoned(t *testing.T) {
	if _, ok := pick(nil, []byte("k"), ""); ok {
		t.Fatal("pick over no agents named one")
	}
	agents := []metastore.Agent{
		{ID: "a", NodeID: 1, Zone: "z1"},
		{ID: "b", NodeID: 2, Zone: "z1"},
		{ID: "c", NodeID: 3, Zone: "z2"},
	}
	counts := map[int32]int{}
	for p := range int32(300) {
		key := []byte(fmt.Sprint("topic", p))
		x := named(t)(pick(agents, key, ""))
		if y := named(t)(pick([]metastore.Agent{agents[2], agents[0], agents[1]}, key, "")); y.NodeID != x.NodeID {
			t.Fatalf("order changed the pick: %d vs %d", x.NodeID, y.NodeID)
		}
		counts[x.NodeID]++
		if z := named(t)(pick(agents, key, "z1")); z.Zone != "z1" {
			t.Fatalf("zone z1 picked %+v", z)
		}
		if z := named(t)(pick(agents, key, "nowhere")); z.NodeID != x.NodeID {
			t.Fatalf("unknown zone should fall back to all agents")
		}
		// Removing an agent moves only that agent's keys.
		if x.NodeID != 3 {
			if y := named(t)(pick(agents[:2], key, "")); y.NodeID != x.NodeID {
				t.Fatalf("key moved from %d to %d when agent 3 left", x.NodeID, y.NodeID)
			}
		}
	}
	for id, n := range counts {
		if n < 50 {
			t.Errorf("agent %d leads %d of 300 partitions: poor spread %v", id, n, counts)
		}
	}
}

func TestErrorCode(t *testing.T) {
	for err, want := range map[error]int16{
		nil:                                0,
		kerr.InvalidConfig:                 kerr.InvalidConfig.Code,
		kafkaErr(kerr.InvalidRequest, "x"): kerr.InvalidRequest.Code,
		metastore.ErrUnknownTopic:          kerr.UnknownTopicOrPartition.Code,
		fmt.Errorf("wrapped: %w", metastore.ErrUnknownTopicOrPartition): kerr.UnknownTopicOrPartition.Code,
		metastore.ErrTopicExists:          kerr.TopicAlreadyExists.Code,
		metastore.ErrInvalidTopic:         kerr.InvalidTopicException.Code,
		metastore.ErrInvalidPartitions:    kerr.InvalidPartitions.Code,
		metastore.ErrDuplicateSequence:    0,
		metastore.ErrOutOfOrderSequence:   kerr.OutOfOrderSequenceNumber.Code,
		metastore.ErrInvalidProducerEpoch: kerr.InvalidProducerEpoch.Code,
		metastore.ErrUnknownProducerID:    kerr.UnknownProducerID.Code,
		context.DeadlineExceeded:          kerr.RequestTimedOut.Code,
		errors.New("connection refused"):  kerr.KafkaStorageError.Code,
	} {
		if got := errorCode(err); got != want {
			t.Errorf("errorCode(%v) = %s, want %s", err, codeName(got), codeName(want))
		}
	}
	if got := groupErrorCode(errors.New("down")); got != kerr.CoordinatorNotAvailable.Code {
		t.Errorf("groupErrorCode = %s", codeName(got))
	}
	for _, code := range []int16{kerr.KafkaStorageError.Code, kerr.CoordinatorNotAvailable.Code, kerr.RequestTimedOut.Code} {
		if !kerr.TypedErrorForCode(code).Retriable {
			t.Errorf("%s must be retriable", codeName(code))
		}
	}
}

func TestTwoAgentsShareLeadersAndZones(t *testing.T) {
	dir := t.TempDir()
	store, err := sqlite.Open(t.Context(), filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	a := startAgentOn(t, store, filepath.Join(dir, "a"), func(c *Config) { c.Zone = "z1" })
	b := startAgentOn(t, store, filepath.Join(dir, "b"), func(c *Config) { c.Zone = "z2" })
	// Each agent learnt of the other by the time both registered?
	// Refresh explicitly rather than wait for the timer.
	a.members.refresh(t.Context())
	b.members.refresh(t.Context())

	metadata := func(ag *testAgent, clientID string) *kmsg.MetadataResponse {
		t.Helper()
		c := dialRaw(t, ag.Addr())
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		req.AllowAutoTopicCreation = true
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("shared")
		req.Topics = append(req.Topics, rt)
		f := kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))
		c.write(f.AppendRequest(nil, req, 1))
		_, body, err := c.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		resp := kmsg.NewPtrMetadataResponse()
		resp.SetVersion(12)
		if err := resp.ReadFrom(body[1:]); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if _, err := a.createTopic(t.Context(), metastore.TopicSpec{Name: "shared", Partitions: 64}); err != nil {
		t.Fatal(err)
	}
	ma, mb := metadata(a, "x"), metadata(b, "x")
	if len(ma.Brokers) != 2 || len(mb.Brokers) != 2 {
		t.Fatalf("brokers %d and %d, want 2", len(ma.Brokers), len(mb.Brokers))
	}
	leaders := map[int32]int{}
	for i, p := range ma.Topics[0].Partitions {
		if q := mb.Topics[0].Partitions[i]; q.Leader != p.Leader {
			t.Fatalf("partition %d: agents disagree on the leader (%d, %d)", p.Partition, p.Leader, q.Leader)
		}
		leaders[p.Leader]++
	}
	if len(leaders) != 2 {
		t.Fatalf("one agent leads everything: %v", leaders)
	}
	for _, p := range metadata(b, "svc,silt_az=z2").Topics[0].Partitions {
		if p.Leader != b.NodeID() {
			t.Fatalf("zone z2 client got leader %d, want %d", p.Leader, b.NodeID())
		}
	}
	if named(t)(a.coordinatorFor("g1")).NodeID != named(t)(b.coordinatorFor("g1")).NodeID {
		t.Fatal("agents disagree on a group coordinator")
	}

	// A shut-down agent leaves the live list.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Shutdown(ctx); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
	live, err := store.LiveAgents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 || live[0].NodeID != a.NodeID() {
		t.Fatalf("live after shutdown %+v", live)
	}
	a.members.refresh(ctx)
	for _, p := range metadata(a, "x").Topics[0].Partitions {
		if p.Leader != a.NodeID() {
			t.Fatalf("leader %d after b left", p.Leader)
		}
	}
}

func TestShutdownClosesConnections(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	c.apiVersions(1)
	if got := testutil.ToFloat64(a.metrics.connections); got != 1 {
		t.Fatalf("connections gauge %v", got)
	}
	if got := testutil.ToFloat64(a.metrics.requests.WithLabelValues("ApiVersions")); got != 1 {
		t.Fatalf("requests counter %v", got)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.expectClosed()
	if got := testutil.ToFloat64(a.metrics.connections); got != 0 {
		t.Fatalf("connections gauge after shutdown %v", got)
	}
}

func TestTopicCacheExpiresAndInvalidates(t *testing.T) {
	a := startAgent(t)
	ctx := t.Context()
	now := time.Now()
	a.topics.now = func() time.Time { return now }
	if _, err := a.createTopic(ctx, metastore.TopicSpec{Name: "cached", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	top, err := a.topicByName(ctx, "cached")
	if err != nil {
		t.Fatal(err)
	}
	// Another agent deletes it behind this one's back: the cache answers
	// until its TTL passes.
	if err := a.store.DeleteTopic(ctx, "cached"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.topicByID(ctx, top.ID); err != nil {
		t.Fatalf("cached by id: %v", err)
	}
	now = now.Add(topicCacheTTL + time.Millisecond)
	if _, err := a.topicByName(ctx, "cached"); !errors.Is(err, metastore.ErrUnknownTopic) {
		t.Fatalf("after ttl: %v", err)
	}
	if _, err := a.topicByID(ctx, top.ID); !errors.Is(err, metastore.ErrUnknownTopic) {
		t.Fatalf("by id after ttl: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ListenAddr, cfg.DefaultPartitions, cfg.MaxRequestBytes, cfg.LeaseTTL = "", 0, 10, time.Millisecond
	if err := cfg.Validate(); err == nil {
		t.Fatal("invalid config accepted")
	}
	if _, err := New(cfg, nil, nil, nil, nil); err == nil {
		t.Fatal("New accepted an invalid config")
	}
}

func TestAdvertisedAddress(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.AdvertisedHost, c.AdvertisedPort = "kafka.example", 9093 })
	if s := a.self(); s.Host != "kafka.example" || s.Port != 9093 {
		t.Fatalf("self %+v", s)
	}
	live, err := a.store.LiveAgents(t.Context())
	if err != nil || len(live) != 1 || live[0].Host != "kafka.example" || live[0].Port != 9093 {
		t.Fatalf("registered %+v (%v)", live, err)
	}
	b := startAgent(t)
	if s := b.self(); hostPort(s.Host, s.Port) != b.Addr() {
		t.Fatalf("default advertised %s, listener %s", hostPort(s.Host, s.Port), b.Addr())
	}
}

// TestLeavingAgentSendsClientsElsewhere checks a graceful exit with
// another agent live: the leaving agent deregisters first and, while its
// connections stay open for LeaveGrace, names only the other agent in
// Metadata and FindCoordinator, answers produce with
// NOT_LEADER_OR_FOLLOWER and group requests with NOT_COORDINATOR, and
// its silt_agents_live gauge no longer counts itself.
func TestLeavingAgentSendsClientsElsewhere(t *testing.T) {
	dir := t.TempDir()
	store, err := sqlite.Open(t.Context(), filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	a := startAgentOn(t, store, filepath.Join(dir, "a"))
	b := startAgentOn(t, store, filepath.Join(dir, "b"), func(c *Config) { c.LeaveGrace = 3 * time.Second })
	a.members.refresh(t.Context())
	b.members.refresh(t.Context())
	if _, err := a.createTopic(t.Context(), metastore.TopicSpec{Name: "leave", Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	gauge := func(x *testAgent) float64 {
		mfs, err := x.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "silt_agents_live" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("silt_agents_live not registered")
		return 0
	}
	if ga, gb := gauge(a), gauge(b); ga != 2 || gb != 2 {
		t.Fatalf("silt_agents_live %v and %v, want 2", ga, gb)
	}

	c := dialRaw(t, b.Addr()) // a client connected before the shutdown
	produce := func() int16 {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 9, -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "leave"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = 0, oneRecordBatch([]byte("v"))
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return c.roundTrip(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}
	if code := produce(); code != 0 {
		t.Fatalf("produce before shutdown: %s", codeName(code))
	}

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- b.Shutdown(ctx)
	}()
	waitFor(t, "b to deregister", func() bool {
		live, err := store.LiveAgents(t.Context())
		return err == nil && len(live) == 1 && live[0].NodeID == a.NodeID()
	})
	waitFor(t, "b to answer produce with NOT_LEADER_OR_FOLLOWER", func() bool {
		return produce() == kerr.NotLeaderForPartition.Code
	})

	md := kmsg.NewPtrMetadataRequest()
	md.Version = 9
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("leave")
	md.Topics = append(md.Topics, rt)
	resp := c.roundTrip(md).(*kmsg.MetadataResponse)
	if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != a.NodeID() {
		t.Fatalf("leaving agent lists brokers %+v, want only %d", resp.Brokers, a.NodeID())
	}
	for _, p := range resp.Topics[0].Partitions {
		if p.Leader != a.NodeID() {
			t.Fatalf("leaving agent names leader %d for partition %d", p.Leader, p.Partition)
		}
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version, fc.CoordinatorKey = 3, "leave-group"
	if got := c.roundTrip(fc).(*kmsg.FindCoordinatorResponse); got.ErrorCode != 0 || got.NodeID != a.NodeID() {
		t.Fatalf("FindCoordinator at the leaving agent: node %d, %s", got.NodeID, codeName(got.ErrorCode))
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version, hb.Group, hb.MemberID, hb.Generation = 3, "leave-group", "m", 1
	if got := c.roundTrip(hb).(*kmsg.HeartbeatResponse); got.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("Heartbeat at the leaving agent: %s, want NOT_COORDINATOR", codeName(got.ErrorCode))
	}
	if g := gauge(b); g != 1 {
		t.Fatalf("leaving agent's silt_agents_live %v, want 1", g)
	}
	// The other agent drops it at its next refresh, or on demand when a
	// client asks it for metadata.
	ca := dialRaw(t, a.Addr())
	waitFor(t, "a to stop listing b", func() bool {
		return len(ca.roundTrip(md).(*kmsg.MetadataResponse).Brokers) == 1
	})
	if g := gauge(a); g != 1 {
		t.Fatalf("silt_agents_live on a %v, want 1", g)
	}
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	c.expectClosed()
}

// oneRecordBatch encodes a magic-2 batch of one record with its CRC.
func oneRecordBatch(value []byte) []byte {
	rec := kmsg.NewRecord()
	rec.Value = value
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // the body after a 1-byte zero length
	recs := rec.AppendTo(nil)
	b := kmsg.NewRecordBatch()
	b.Magic = 2
	b.LastOffsetDelta = 0
	b.FirstTimestamp, b.MaxTimestamp = time.Now().UnixMilli(), time.Now().UnixMilli()
	b.ProducerID, b.ProducerEpoch, b.FirstSequence = -1, -1, -1
	b.NumRecords = 1
	b.Records = recs
	raw := b.AppendTo(nil)
	b.Length = int32(len(raw) - 12)
	raw = b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}
