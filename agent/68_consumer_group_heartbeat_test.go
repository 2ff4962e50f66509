package agent

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// consumerGroupTestConfig makes KIP-848 groups react fast enough for
// tests: members heartbeat every 100 ms and a silent one is gone after a
// second.
func consumerGroupTestConfig(c *Config) {
	groupTestConfig(c)
	g := &c.Group.Groups
	g.ConsumerMinSessionTimeout, g.ConsumerSessionTimeout = time.Second, time.Second
	g.ConsumerMinHeartbeatInterval, g.ConsumerHeartbeatInterval = 50*time.Millisecond, 100*time.Millisecond
	c.Group.MetadataRefresh = 100 * time.Millisecond
}

// describeConsumerGroup asks ConsumerGroupDescribe for one group.
func describeConsumerGroup(t *testing.T, cl *kgo.Client, name string) kmsg.ConsumerGroupDescribeResponseGroup {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{name}
	resp, err := req.RequestWith(ctxTimeout(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Groups[0]
}

// TestConsumerGroupsShareAndFailOver runs franz-go consumers with the
// KIP-848 protocol and both server-side assignors: partitions are shared
// without overlap, every record is consumed, and the partitions of a
// member that leaves, then of one that dies (its session expires), move
// to the others; the group ends Stable with epochs the members hold.
func TestConsumerGroupsShareAndFailOver(t *testing.T) {
	for _, b := range []kgo.GroupBalancer{kgo.StickyBalancer(), kgo.RangeBalancer()} {
		t.Run(b.ProtocolName(), func(t *testing.T) {
			a := startAgent(t, consumerGroupTestConfig)
			const parts = 6
			topic := "events"
			makeTopic(t, a, topic, parts)
			w := newGroupWatch()
			var cs []*testConsumer
			for i := range 3 {
				cs = append(cs, startConsumer(t, a, w, "c"+strconv.Itoa(i), "g", topic, kgo.Balancers(b), kgo.ServerSideBalancer()))
			}
			w.waitSplit(t, parts, "c0", "c1", "c2")
			first := produceN(t, a, topic, parts, "first", 300)
			w.waitSeen(t, first)

			cs[0].stop()
			w.waitSplit(t, parts, "c1", "c2")

			cs[1].dialer.kill()
			w.waitSplit(t, parts, "c2")
			second := produceN(t, a, topic, parts, "second", 300)
			w.waitSeen(t, second)
			cs[1].stop()

			raw, adm := a.client(t)
			g := describeConsumerGroup(t, raw, "g")
			wantAssignor := map[string]string{"sticky": "uniform", "range": "range"}[b.ProtocolName()]
			if g.ErrorCode != 0 || g.State != "Stable" || len(g.Members) != 1 || g.AssignorName != wantAssignor ||
				g.Members[0].MemberEpoch != g.Epoch || g.AssignmentEpoch != g.Epoch {
				t.Fatalf("describe: %+v", g)
			}
			var got []int32
			for _, tp := range g.Members[0].Assignment.TopicPartitions {
				if tp.Topic != topic {
					t.Fatalf("assigned topic %q", tp.Topic)
				}
				got = append(got, tp.Partitions...)
			}
			slices.Sort(got)
			if !slices.Equal(got, []int32{0, 1, 2, 3, 4, 5}) {
				t.Fatalf("last member's assignment %v", got)
			}
			listed, err := adm.ListGroups(ctxTimeout(t))
			if err != nil || listed["g"].ProtocolType != "consumer" || listed["g"].State != "Stable" {
				t.Fatalf("list: %+v %v", listed, err)
			}
		})
	}
}

// TestConsumerGroupCommitsWithMemberEpochs: a KIP-848 member commits with
// its epoch, a second member resumes where it committed, and commits with
// a stale epoch or from a non-member are refused as Kafka refuses them.
func TestConsumerGroupCommitsWithMemberEpochs(t *testing.T) {
	a := startAgent(t, consumerGroupTestConfig)
	const parts = 3
	makeTopic(t, a, "orders", parts)
	first := produceN(t, a, "orders", parts, "first", 30)
	w1 := newGroupWatch()
	c1 := startConsumer(t, a, w1, "c1", "resume", "orders", kgo.DisableAutoCommit(), kgo.ServerSideBalancer())
	w1.waitSeen(t, first)
	if err := c1.cl.CommitUncommittedOffsets(ctxTimeout(t)); err != nil {
		t.Fatalf("commit: %v", err)
	}

	raw, _ := a.client(t)
	v8 := kversion.Stable()
	v8.SetMaxKeyVersion(8, 8)
	raw8, _ := a.client(t, kgo.MaxVersions(v8))
	g := describeConsumerGroup(t, raw, "resume")
	m := g.Members[0]
	commit := func(version int16, member string, epoch int32) int16 {
		cl := raw
		if version == 8 {
			cl = raw8
		}
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.MemberID, req.Generation = "resume", member, epoch
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "orders"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Offset = 1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctxTimeout(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Version != version {
			t.Fatalf("OffsetCommit sent as v%d, want v%d", resp.Version, version)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	for _, c := range []struct {
		what    string
		version int16
		member  string
		epoch   int32
		want    int16
	}{
		{"stale epoch", 9, m.MemberID, m.MemberEpoch - 1, kerr.StaleMemberEpoch.Code},
		{"future epoch", 9, m.MemberID, m.MemberEpoch + 1, kerr.StaleMemberEpoch.Code},
		{"unknown member", 9, "nobody", m.MemberEpoch, kerr.UnknownMemberID.Code},
		{"not a member", 9, "", -1, kerr.UnknownMemberID.Code},
		{"v8 from a consumer-protocol member", 8, m.MemberID, m.MemberEpoch, kerr.UnsupportedVersion.Code},
	} {
		if got := commit(c.version, c.member, c.epoch); got != c.want {
			t.Errorf("%s: %v, want %v", c.what, kerr.ErrorForCode(got), kerr.ErrorForCode(c.want))
		}
	}
	c1.stop()

	second := produceN(t, a, "orders", parts, "second", 30)
	w2 := newGroupWatch()
	startConsumer(t, a, w2, "c2", "resume", "orders", kgo.ServerSideBalancer())
	w2.waitSeen(t, second)
	w2.mu.Lock()
	defer w2.mu.Unlock()
	for _, v := range first {
		if w2.seen[v] != 0 {
			t.Fatalf("%s read again after the commit", v)
		}
	}
}
