package group

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

// consumerConfig is testConfig with fast KIP-848 timers.
func consumerConfig() Config {
	c := testConfig()
	g := &c.Groups
	g.ConsumerMinSessionTimeout, g.ConsumerSessionTimeout = 200*time.Millisecond, 300*time.Millisecond
	g.ConsumerMinHeartbeatInterval, g.ConsumerHeartbeatInterval = 10*time.Millisecond, 50*time.Millisecond
	c.MetadataRefresh = 20 * time.Millisecond
	return c
}

// cghOpts is one ConsumerGroupHeartbeat.
type cghOpts struct {
	member   string
	epoch    int32
	instance *string
	topics   []string // nil: unchanged
	regex    *string
	assignor *string
	owned    assignment // nil with join: empty; nil otherwise: unchanged
}

func (e *env) cgh(ctx context.Context, c *Coordinator, group string, o cghOpts) *kmsg.ConsumerGroupHeartbeatResponse {
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = 1
	r.Group, r.MemberID, r.MemberEpoch, r.InstanceID = group, o.member, o.epoch, o.instance
	r.SubscribedTopicNames, r.SubscribedTopicRegex, r.ServerAssignor = o.topics, o.regex, o.assignor
	r.RebalanceTimeoutMillis = -1
	if o.epoch == 0 {
		r.RebalanceTimeoutMillis = 1000
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	}
	if o.owned != nil {
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		for _, t := range o.owned.topics() {
			r.Topics = append(r.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: t, Partitions: o.owned[t]})
		}
	}
	return c.ConsumerGroupHeartbeat(ctx, Client{ID: "cl", Host: "/127.0.0.1"}, r)
}

// respAssignment is the assignment of a heartbeat response (nil: none sent).
func respAssignment(r *kmsg.ConsumerGroupHeartbeatResponse) assignment {
	if r.Assignment == nil {
		return nil
	}
	a := assignment{}
	for _, t := range r.Assignment.Topics {
		for _, p := range t.Partitions {
			a.add(t.TopicID, p)
		}
	}
	return a
}

func wantOK(t *testing.T, what string, r *kmsg.ConsumerGroupHeartbeatResponse) {
	t.Helper()
	if r.ErrorCode != 0 {
		msg := ""
		if r.ErrorMessage != nil {
			msg = *r.ErrorMessage
		}
		t.Fatalf("%s: %s %s", what, codeName(r.ErrorCode), msg)
	}
}

// TestConsumerGroupReconciliation walks KIP-848's hand-over: a second
// member gets partitions only after the first stopped owning them, and
// every member ends at the target epoch with half the partitions.
func TestConsumerGroupReconciliation(t *testing.T) {
	e := newEnv(t)
	c := e.coordinator(consumerConfig())
	ctx := ctxT(t)
	tid := e.topic.ID

	a := e.cgh(ctx, c, "g", cghOpts{member: "a", topics: []string{"t"}})
	wantOK(t, "a joins", a)
	all := assignment{tid: {0, 1, 2, 3}}
	if a.MemberEpoch != 1 || !respAssignment(a).equal(all) {
		t.Fatalf("a joined at epoch %d with %v, want epoch 1 with everything", a.MemberEpoch, respAssignment(a))
	}
	b := e.cgh(ctx, c, "g", cghOpts{member: "b", topics: []string{"t"}})
	wantOK(t, "b joins", b)
	if b.MemberEpoch != 2 || respAssignment(b).count() != 0 {
		t.Fatalf("b joined at epoch %d with %v, want epoch 2 and nothing yet (a owns it all)", b.MemberEpoch, respAssignment(b))
	}
	// a is asked to give up half and stays at epoch 1 until it does.
	a = e.cgh(ctx, c, "g", cghOpts{member: "a", epoch: 1, owned: all})
	wantOK(t, "a heartbeats", a)
	keep := respAssignment(a)
	if a.MemberEpoch != 1 || keep.count() != 2 {
		t.Fatalf("a at epoch %d keeps %v, want epoch 1 and two partitions", a.MemberEpoch, keep)
	}
	if d := c.ConsumerGroupDescribe(ctx, "g"); d.State != "Reconciling" {
		t.Fatalf("group %s while a revokes, want Reconciling", d.State)
	}
	// b still waits.
	b = e.cgh(ctx, c, "g", cghOpts{member: "b", epoch: 2, owned: assignment{}})
	wantOK(t, "b waits", b)
	if got := respAssignment(b); got != nil && got.count() != 0 {
		t.Fatalf("b got %v before a revoked", got)
	}
	a = e.cgh(ctx, c, "g", cghOpts{member: "a", epoch: 1, owned: keep})
	wantOK(t, "a revoked", a)
	if a.MemberEpoch != 2 {
		t.Fatalf("a at epoch %d after revoking, want 2", a.MemberEpoch)
	}
	b = e.cgh(ctx, c, "g", cghOpts{member: "b", epoch: 2, owned: assignment{}})
	wantOK(t, "b gets its share", b)
	if got := respAssignment(b); !got.equal(all.minus(keep)) {
		t.Fatalf("b got %v, want %v", got, all.minus(keep))
	}
	d := c.ConsumerGroupDescribe(ctx, "g")
	if d.State != "Stable" || d.Epoch != 2 || d.AssignmentEpoch != 2 || len(d.Members) != 2 || d.AssignorName != "uniform" {
		t.Fatalf("describe: %+v", d)
	}

	// An epoch the coordinator never handed out is fenced; one behind is
	// accepted while the member owns no more than its assignment.
	wantCode(t, "future epoch", e.cgh(ctx, c, "g", cghOpts{member: "a", epoch: 3, owned: keep}).ErrorCode, kerr.FencedMemberEpoch.Code)
	wantCode(t, "previous epoch, owned subset", e.cgh(ctx, c, "g", cghOpts{member: "a", epoch: 1, owned: keep}).ErrorCode, 0)
	wantCode(t, "previous epoch, owning more", e.cgh(ctx, c, "g", cghOpts{member: "a", epoch: 1, owned: all}).ErrorCode, kerr.FencedMemberEpoch.Code)
	wantCode(t, "unknown member", e.cgh(ctx, c, "g", cghOpts{member: "z", epoch: 2}).ErrorCode, kerr.UnknownMemberID.Code)
	wantCode(t, "unsupported assignor", e.cgh(ctx, c, "g", cghOpts{member: "c", topics: []string{"t"}, assignor: kmsg.StringPtr("cooperative")}).ErrorCode, kerr.UnsupportedAssignor.Code)
	wantCode(t, "bad regex", e.cgh(ctx, c, "g", cghOpts{member: "c", regex: kmsg.StringPtr("(")}).ErrorCode, kerr.InvalidRegularExpression.Code)

	// b leaves: a gets everything at the next epoch.
	l := e.cgh(ctx, c, "g", cghOpts{member: "b", epoch: -1})
	wantOK(t, "b leaves", l)
	if l.MemberEpoch != -1 {
		t.Fatalf("leave answered epoch %d", l.MemberEpoch)
	}
	a = e.cgh(ctx, c, "g", cghOpts{member: "a", epoch: 2, owned: keep})
	wantOK(t, "a after b left", a)
	if a.MemberEpoch != 3 || !respAssignment(a).equal(all) {
		t.Fatalf("a at epoch %d with %v after b left", a.MemberEpoch, respAssignment(a))
	}
}

// TestConsumerGroupSessionExpiry: a member that stops heartbeating is
// removed after the session timeout and its partitions go to the others.
func TestConsumerGroupSessionExpiry(t *testing.T) {
	e := newEnv(t)
	c := e.coordinator(consumerConfig())
	ctx := ctxT(t)
	wantOK(t, "a joins", e.cgh(ctx, c, "g", cghOpts{member: "a", topics: []string{"t"}}))
	wantOK(t, "b joins", e.cgh(ctx, c, "g", cghOpts{member: "b", topics: []string{"t"}}))
	// a keeps heartbeating (owning nothing it should not); b goes silent.
	deadline := time.Now().Add(5 * time.Second)
	epoch := int32(1)
	for time.Now().Before(deadline) {
		r := e.cgh(ctx, c, "g", cghOpts{member: "a", epoch: epoch, owned: assignment{}})
		wantOK(t, "a heartbeats", r)
		epoch = r.MemberEpoch
		if d := c.ConsumerGroupDescribe(ctx, "g"); len(d.Members) == 1 && respAssignment(r) != nil && respAssignment(r).count() == 4 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("b's session never expired: %+v", c.ConsumerGroupDescribe(ctx, "g"))
}

// TestConsumerGroupTakeover: another coordinator loads the group with
// every member's epoch and assignment, members carry on without a
// rebalance, and the old coordinator can no longer change anything.
func TestConsumerGroupTakeover(t *testing.T) {
	for name, newE := range map[string]func(*testing.T) *env{"SQLite": newEnv, "Postgres": newPostgresEnv} {
		t.Run(name, func(t *testing.T) {
			e := newE(t)
			ctx := ctxT(t)
			// Sessions outlast the test: no expiry on the old
			// coordinator (which would drop the group there) interferes.
			cfg := consumerConfig()
			cfg.Groups.ConsumerSessionTimeout = 30 * time.Second
			c1 := e.coordinator(cfg)
			tid := e.topic.ID
			wantOK(t, "a joins", e.cgh(ctx, c1, "g", cghOpts{member: "a", topics: []string{"t"}}))
			wantOK(t, "b joins", e.cgh(ctx, c1, "g", cghOpts{member: "b", topics: []string{"t"}}))
			ra := e.cgh(ctx, c1, "g", cghOpts{member: "a", epoch: 1, owned: assignment{tid: {0, 1, 2, 3}}})
			keep := respAssignment(ra)
			wantOK(t, "a revokes", e.cgh(ctx, c1, "g", cghOpts{member: "a", epoch: 1, owned: keep}))
			rb := e.cgh(ctx, c1, "g", cghOpts{member: "b", epoch: 2, owned: assignment{}})
			bPart := respAssignment(rb)
			before := c1.ConsumerGroupDescribe(ctx, "g")
			if before.State != "Stable" {
				t.Fatalf("before takeover: %+v", before)
			}

			c2 := e.coordinator(cfg)
			after := c2.ConsumerGroupDescribe(ctx, "g")
			if after.State != "Stable" || after.Epoch != before.Epoch || len(after.Members) != 2 {
				t.Fatalf("after takeover: %+v, before %+v", after, before)
			}
			for i := range after.Members {
				if after.Members[i].MemberEpoch != before.Members[i].MemberEpoch ||
					!slices.Equal(after.Members[i].Assignment.TopicPartitions[0].Partitions, before.Members[i].Assignment.TopicPartitions[0].Partitions) {
					t.Fatalf("member %s changed: %+v -> %+v", after.Members[i].MemberID, before.Members[i], after.Members[i])
				}
			}
			// Members heartbeat on at their epochs.
			r := e.cgh(ctx, c2, "g", cghOpts{member: "b", epoch: 2, owned: bPart})
			wantOK(t, "b on the new coordinator", r)
			if r.MemberEpoch != 2 {
				t.Fatalf("b's epoch on the new coordinator: %d", r.MemberEpoch)
			}
			// The old coordinator's writes are refused: a member leaving
			// through it is answered NOT_COORDINATOR and stays.
			wantCode(t, "leave through the old coordinator", e.cgh(ctx, c1, "g", cghOpts{member: "a", epoch: -1}).ErrorCode, kerr.NotCoordinator.Code)
			if d := c2.ConsumerGroupDescribe(ctx, "g"); len(d.Members) != 2 {
				t.Fatalf("the old coordinator removed a member: %+v", d)
			}
			resp := c2.OffsetCommit(ctx, commitReq("g", "a", 2, "t", map[int32]int64{keep[tid][0]: 5}))
			for _, code := range commitCodes(resp) {
				wantCode(t, "commit through the new coordinator", code, 0)
			}
		})
	}
}

// TestConsumerGroupStaticMember: a static member leaving with epoch -2
// keeps its assignment for its next incarnation, which takes it over under
// a new member id; while the first incarnation is active a second is
// refused.
func TestConsumerGroupStaticMember(t *testing.T) {
	e := newEnv(t)
	c := e.coordinator(consumerConfig())
	ctx := ctxT(t)
	inst := kmsg.StringPtr("i1")
	wantOK(t, "a joins", e.cgh(ctx, c, "g", cghOpts{member: "a1", instance: inst, topics: []string{"t"}}))
	b := e.cgh(ctx, c, "g", cghOpts{member: "b", topics: []string{"t"}})
	wantOK(t, "b joins", b)
	a := e.cgh(ctx, c, "g", cghOpts{member: "a1", instance: inst, epoch: 1, owned: assignment{e.topic.ID: {0, 1, 2, 3}}})
	keep := respAssignment(a)
	a = e.cgh(ctx, c, "g", cghOpts{member: "a1", instance: inst, epoch: 1, owned: keep})
	wantOK(t, "a revoked", a)

	wantCode(t, "second incarnation while the first is active",
		e.cgh(ctx, c, "g", cghOpts{member: "a2", instance: inst, topics: []string{"t"}}).ErrorCode, kerr.UnreleasedInstanceID.Code)
	l := e.cgh(ctx, c, "g", cghOpts{member: "a1", instance: inst, epoch: -2})
	wantOK(t, "a leaves for now", l)
	if l.MemberEpoch != -2 {
		t.Fatalf("static leave answered epoch %d", l.MemberEpoch)
	}
	epochBefore := c.ConsumerGroupDescribe(ctx, "g").Epoch
	a2 := e.cgh(ctx, c, "g", cghOpts{member: "a2", instance: inst, topics: []string{"t"}})
	wantOK(t, "a's next incarnation", a2)
	if got := respAssignment(a2); !got.equal(keep) {
		t.Fatalf("next incarnation got %v, want %v", got, keep)
	}
	d := c.ConsumerGroupDescribe(ctx, "g")
	if d.Epoch != epochBefore || len(d.Members) != 2 || !slices.ContainsFunc(d.Members, func(m kmsg.ConsumerGroupDescribeResponseGroupMember) bool { return m.MemberID == "a2" }) {
		t.Fatalf("after the static rejoin (epoch before %d): %+v", epochBefore, d)
	}
	wantCode(t, "the old incarnation", e.cgh(ctx, c, "g", cghOpts{member: "a1", instance: inst, epoch: 1}).ErrorCode, kerr.FencedInstanceID.Code)
}

// TestConsumerGroupRegex: a regular expression is resolved by the
// coordinator against whole topic names, and a topic created later is
// assigned once the group looks at the topics again.
func TestConsumerGroupRegex(t *testing.T) {
	e := newEnv(t)
	c := e.coordinator(consumerConfig())
	ctx := ctxT(t)
	if _, err := e.store.CreateTopic(ctx, metastore.TopicSpec{Name: "xt", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	r := e.cgh(ctx, c, "g", cghOpts{member: "a", regex: kmsg.StringPtr("t.*")})
	wantOK(t, "join with a regex", r)
	if got := respAssignment(r); !got.equal(assignment{e.topic.ID: {0, 1, 2, 3}}) {
		t.Fatalf("regex t.* got %v; only topic t matches whole names", got)
	}
	t2, err := e.store.CreateTopic(ctx, metastore.TopicSpec{Name: "t2", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for epoch := r.MemberEpoch; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		r = e.cgh(ctx, c, "g", cghOpts{member: "a", epoch: epoch, owned: assignment{e.topic.ID: {0, 1, 2, 3}}})
		wantOK(t, "heartbeat", r)
		epoch = r.MemberEpoch
		if got := respAssignment(r); got != nil && got.has(t2.ID, 1) {
			return
		}
	}
	t.Fatal("the new topic matching the regex was never assigned")
}

// TestConsumerGroupUpgradeAndDowngrade: a classic group of consumer
// protocol members becomes a consumer group when a KIP-848 member joins;
// its classic members are told to rejoin and get their assignment from
// the coordinator; when the KIP-848 member leaves, the group is classic
// again and rebalances.
func TestConsumerGroupUpgradeAndDowngrade(t *testing.T) {
	e := newEnv(t)
	c := e.coordinator(consumerConfig())
	ctx := ctxT(t)
	st := watchStates(c)
	opts := joinOpts{session: 5 * time.Second, rebalance: 5 * time.Second}
	j := join(ctx, t, c, "g", opts)
	wantCode(t, "classic join", j.ErrorCode, 0)
	asg := kmsg.NewConsumerMemberAssignment()
	asg.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "t", Partitions: []int32{0, 1, 2, 3}}}
	s := c.SyncGroup(ctx, syncReq("g", j.MemberID, j.Generation, map[string][]byte{j.MemberID: asg.AppendTo(nil)}))
	wantCode(t, "classic sync", s.ErrorCode, 0)
	st.wait(t, "g", "Stable", 1)

	// A KIP-848 member joins: the group is upgraded; the classic member
	// keeps its partitions until it revokes, so the newcomer waits.
	n := e.cgh(ctx, c, "g", cghOpts{member: "n", topics: []string{"t"}})
	wantOK(t, "consumer member joins the classic group", n)
	if d := c.ConsumerGroupDescribe(ctx, "g"); len(d.Members) != 2 || d.State != "Reconciling" {
		t.Fatalf("after the upgrade: %+v", d)
	}
	wantCode(t, "classic heartbeat after the upgrade", heartbeat(ctx, c, "g", j.MemberID, j.Generation, nil), kerr.RebalanceInProgress.Code)
	// The classic member rejoins (eagerly, owning nothing) and is
	// answered at once with its epoch as the generation.
	opts.member = j.MemberID
	j2 := join(ctx, t, c, "g", opts)
	wantCode(t, "classic rejoin", j2.ErrorCode, 0)
	if j2.Generation <= j.Generation || j2.LeaderID != "" || j2.Protocol == nil || *j2.Protocol != "range" {
		t.Fatalf("classic rejoin answered %+v", j2)
	}
	s = c.SyncGroup(ctx, syncReq("g", j.MemberID, j2.Generation, nil))
	wantCode(t, "classic sync in a consumer group", s.ErrorCode, 0)
	var got kmsg.ConsumerMemberAssignment
	if err := got.ReadFrom(s.MemberAssignment); err != nil || len(got.Topics) != 1 || len(got.Topics[0].Partitions) != 2 {
		t.Fatalf("classic member's assignment %+v (%v), want two partitions of t", got, err)
	}
	n = e.cgh(ctx, c, "g", cghOpts{member: "n", epoch: n.MemberEpoch, owned: assignment{}})
	wantOK(t, "consumer member heartbeat", n)
	if respAssignment(n).count() != 2 {
		t.Fatalf("consumer member got %v, want the other two", respAssignment(n))
	}
	if d := c.ConsumerGroupDescribe(ctx, "g"); d.State != "Stable" {
		t.Fatalf("mixed group %s, want Stable", d.State)
	}
	wantCode(t, "classic heartbeat when reconciled", heartbeat(ctx, c, "g", j.MemberID, j2.Generation, nil), 0)

	// The KIP-848 member leaves: the group is classic again and
	// rebalances; its classic member rejoins as usual.
	wantOK(t, "consumer member leaves", e.cgh(ctx, c, "g", cghOpts{member: "n", epoch: -1}))
	if d := c.ConsumerGroupDescribe(ctx, "g"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("after the downgrade ConsumerGroupDescribe answers %s", codeName(d.ErrorCode))
	}
	wantCode(t, "classic heartbeat after the downgrade", heartbeat(ctx, c, "g", j.MemberID, j2.Generation, nil), kerr.RebalanceInProgress.Code)
	j3 := join(ctx, t, c, "g", opts)
	wantCode(t, "classic rejoin after the downgrade", j3.ErrorCode, 0)
	if j3.LeaderID != j.MemberID || j3.Generation <= j2.Generation {
		t.Fatalf("rejoin after the downgrade: %+v", j3)
	}
	if dg := c.DescribeGroup(ctx, "g", 5); dg.ErrorCode != 0 || dg.ProtocolType != "consumer" {
		t.Fatalf("describe after the downgrade: %+v", dg)
	}
}
