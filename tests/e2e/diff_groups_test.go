package e2e

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func offsetCommit(v int16, e diffEnv, group string, generation int32, member string, topic string, partition int32, offset int64) *kmsg.OffsetCommitRequest {
	r := req(kmsg.NewPtrOffsetCommitRequest(), v)
	r.Group, r.Generation, r.MemberID = group, generation, member
	r.RetentionTimeMillis = -1
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topic
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition, p.Offset, p.LeaderEpoch = partition, offset, -1
	t.Partitions = append(t.Partitions, p)
	r.Topics = append(r.Topics, t)
	return r
}

func offsetFetch(v int16, group string, topic string, partitions ...int32) *kmsg.OffsetFetchRequest {
	r := req(kmsg.NewPtrOffsetFetchRequest(), v)
	r.Group = group
	if topic != "" {
		t := kmsg.NewOffsetFetchRequestTopic()
		t.Topic = topic
		t.Partitions = partitions
		r.Topics = append(r.Topics, t)
	} else {
		r.Topics = nil
	}
	if v >= 8 {
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = group
		if topic != "" {
			t := kmsg.NewOffsetFetchRequestGroupTopic()
			t.Topic = topic
			t.Partitions = partitions
			g.Topics = append(g.Topics, t)
		}
		r.Groups = append(r.Groups, g)
	}
	return r
}

func joinGroup(v int16, group, member, protocolType string, sessionMillis int32) *kmsg.JoinGroupRequest {
	r := req(kmsg.NewPtrJoinGroupRequest(), v)
	r.Group, r.MemberID, r.ProtocolType = group, member, protocolType
	r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = sessionMillis, 10000
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	p.Metadata = []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
	r.Protocols = append(r.Protocols, p)
	return r
}

// joinMember joins a member to a new group (JoinGroup twice for v4+,
// which asks for a member id first) and hands build the response.
func joinMember(v int16, group func(e diffEnv) string) func(e diffEnv) (any, error) {
	return func(e diffEnv) (any, error) {
		r, err := e.side.do(joinGroup(v, group(e), "", "consumer", 10000))
		if err != nil {
			return nil, err
		}
		jr := r.(*kmsg.JoinGroupResponse)
		if jr.ErrorCode == 79 { // MEMBER_ID_REQUIRED
			r, err = e.side.do(joinGroup(v, group(e), jr.MemberID, "consumer", 10000))
			if err != nil {
				return nil, err
			}
			jr = r.(*kmsg.JoinGroupResponse)
		}
		if jr.ErrorCode != 0 {
			return nil, fmt.Errorf("join: error %d", jr.ErrorCode)
		}
		return jr, nil
	}
}

func groupCases(k, s *diffSide, add func(diffCase)) {
	// OffsetCommit: simple commits (generation -1) at every version,
	// unknown topics, bad group ids, wrong generations and members.
	ocv := commonVersions(k, s, 8)
	for i, v := range ocv {
		add(diffCase{name: fmt.Sprintf("OffsetCommit v%d simple commit", v), build: func(e diffEnv, _ any) kmsg.Request {
			return offsetCommit(v, e, e.topic("g"), -1, "", e.topic("a"), 1, int64(i))
		}})
	}
	for _, v := range pick(ocv) {
		add(diffCase{name: fmt.Sprintf("OffsetCommit v%d unknown topic", v), build: func(e diffEnv, _ any) kmsg.Request {
			return offsetCommit(v, e, e.topic("g"), -1, "", e.topic("missing"), 0, 1)
		}})
		add(diffCase{name: fmt.Sprintf("OffsetCommit v%d unknown partition", v), build: func(e diffEnv, _ any) kmsg.Request {
			return offsetCommit(v, e, e.topic("g"), -1, "", e.topic("a"), 40, 1)
		}})
		add(diffCase{name: fmt.Sprintf("OffsetCommit v%d empty group id", v), build: func(e diffEnv, _ any) kmsg.Request {
			return offsetCommit(v, e, "", -1, "", e.topic("a"), 0, 1)
		}})
		add(diffCase{name: fmt.Sprintf("OffsetCommit v%d generation 3 to an empty group", v), build: func(e diffEnv, _ any) kmsg.Request {
			return offsetCommit(v, e, e.topic("g"), 3, "", e.topic("a"), 0, 1)
		}})
		add(diffCase{name: fmt.Sprintf("OffsetCommit v%d unknown member of an empty group", v), build: func(e diffEnv, _ any) kmsg.Request {
			return offsetCommit(v, e, e.topic("g"), 1, "nobody", e.topic("a"), 0, 1)
		}})
	}
	// OffsetFetch at every version, and unknown groups and partitions.
	ofv := commonVersions(k, s, 9)
	for _, v := range ofv {
		add(diffCase{name: fmt.Sprintf("OffsetFetch v%d", v), fields: []string{"Offset", "Metadata"}, build: func(e diffEnv, _ any) kmsg.Request {
			return offsetFetch(v, e.topic("g"), e.topic("a"), 0, 2)
		}})
	}
	for _, v := range pick(ofv) {
		add(diffCase{name: fmt.Sprintf("OffsetFetch v%d unknown group", v), fields: []string{"Offset"}, build: func(e diffEnv, _ any) kmsg.Request {
			return offsetFetch(v, e.topic("nogroup"), e.topic("a"), 0)
		}})
		add(diffCase{name: fmt.Sprintf("OffsetFetch v%d unknown topic", v), fields: []string{"Offset"}, build: func(e diffEnv, _ any) kmsg.Request {
			return offsetFetch(v, e.topic("g"), e.topic("missing"), 0)
		}})
	}
	for _, v := range pick(from(ofv, 2)) {
		add(diffCase{name: fmt.Sprintf("OffsetFetch v%d all partitions", v), fields: []string{"Offset"}, build: func(e diffEnv, _ any) kmsg.Request {
			return offsetFetch(v, e.topic("g"), "")
		}})
	}

	// FindCoordinator.
	fcv := commonVersions(k, s, 10)
	for _, v := range fcv {
		add(diffCase{name: fmt.Sprintf("FindCoordinator v%d group", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrFindCoordinatorRequest(), v)
			r.CoordinatorKey, r.CoordinatorKeys = e.topic("g"), []string{e.topic("g")}
			return r
		}})
	}
	for _, v := range pick(fcv) {
		add(diffCase{name: fmt.Sprintf("FindCoordinator v%d empty group id", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrFindCoordinatorRequest(), v)
			r.CoordinatorKey, r.CoordinatorKeys = "", []string{""}
			return r
		}})
		add(diffCase{name: fmt.Sprintf("FindCoordinator v%d unknown key type", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrFindCoordinatorRequest(), v)
			r.CoordinatorKey, r.CoordinatorKeys, r.CoordinatorType = "x", []string{"x"}, 9
			return r
		}})
	}

	// JoinGroup errors.
	jgv := commonVersions(k, s, 11)
	for _, v := range jgv {
		add(diffCase{name: fmt.Sprintf("JoinGroup v%d new member", v), fields: []string{"Generation"}, build: func(e diffEnv, _ any) kmsg.Request {
			return joinGroup(v, e.topic(fmt.Sprintf("join%d", v)), "", "consumer", 10000)
		}})
	}
	for _, v := range pick(jgv) {
		add(diffCase{name: fmt.Sprintf("JoinGroup v%d empty group id", v), build: func(e diffEnv, _ any) kmsg.Request {
			return joinGroup(v, "", "", "consumer", 10000)
		}})
		add(diffCase{name: fmt.Sprintf("JoinGroup v%d session timeout too short", v), build: func(e diffEnv, _ any) kmsg.Request {
			return joinGroup(v, e.topic("short"), "", "consumer", 1)
		}})
		add(diffCase{name: fmt.Sprintf("JoinGroup v%d session timeout too long", v), build: func(e diffEnv, _ any) kmsg.Request {
			return joinGroup(v, e.topic("long"), "", "consumer", 100_000_000)
		}})
		add(diffCase{name: fmt.Sprintf("JoinGroup v%d unknown member id", v), build: func(e diffEnv, _ any) kmsg.Request {
			return joinGroup(v, e.topic(fmt.Sprintf("unknownmember%d", v)), "nobody", "consumer", 10000)
		}})
		add(diffCase{name: fmt.Sprintf("JoinGroup v%d no protocols", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := joinGroup(v, e.topic(fmt.Sprintf("noproto%d", v)), "", "consumer", 10000)
			r.Protocols = nil
			return r
		}})
		// Each case joins its own group: a second join to a group whose
		// member does not rejoin would wait out the rebalance timeout.
		groupOf := func(label string) func(e diffEnv) string {
			return func(e diffEnv) string { return e.topic(fmt.Sprintf("%s%d", label, v)) }
		}
		add(diffCase{name: fmt.Sprintf("JoinGroup v%d other protocol type to a group with a member", v), prep: joinMember(v, groupOf("proto")),
			build: func(e diffEnv, _ any) kmsg.Request {
				return joinGroup(v, groupOf("proto")(e), "", "connect", 10000)
			}})
		// The member from prep: heartbeats and syncs with right and
		// wrong generations and ids.
		hbv := commonVersions(k, s, 12)
		add(diffCase{name: fmt.Sprintf("Heartbeat v%d wrong generation", hbv[len(hbv)-1]), prep: joinMember(v, groupOf("hb")),
			build: func(e diffEnv, p any) kmsg.Request {
				jr := p.(*kmsg.JoinGroupResponse)
				r := req(kmsg.NewPtrHeartbeatRequest(), hbv[len(hbv)-1])
				r.Group, r.Generation, r.MemberID = groupOf("hb")(e), jr.Generation+5, jr.MemberID
				return r
			}})
		syv := commonVersions(k, s, 14)
		add(diffCase{name: fmt.Sprintf("SyncGroup v%d wrong generation", syv[len(syv)-1]), prep: joinMember(v, groupOf("syncgen")),
			build: func(e diffEnv, p any) kmsg.Request {
				jr := p.(*kmsg.JoinGroupResponse)
				r := req(kmsg.NewPtrSyncGroupRequest(), syv[len(syv)-1])
				r.Group, r.Generation, r.MemberID = groupOf("syncgen")(e), jr.Generation+1, jr.MemberID
				r.ProtocolType, r.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
				return r
			}})
		add(diffCase{name: fmt.Sprintf("SyncGroup v%d leader assigns", syv[len(syv)-1]), prep: joinMember(v, groupOf("syncok")),
			build: func(e diffEnv, p any) kmsg.Request {
				jr := p.(*kmsg.JoinGroupResponse)
				r := req(kmsg.NewPtrSyncGroupRequest(), syv[len(syv)-1])
				r.Group, r.Generation, r.MemberID = groupOf("syncok")(e), jr.Generation, jr.MemberID
				r.ProtocolType, r.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
				a := kmsg.NewSyncGroupRequestGroupAssignment()
				a.MemberID, a.MemberAssignment = jr.MemberID, []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
				r.GroupAssignment = append(r.GroupAssignment, a)
				return r
			}})
		add(diffCase{name: fmt.Sprintf("OffsetCommit by the member, wrong generation (JoinGroup v%d)", v), prep: joinMember(v, groupOf("commitgen")),
			build: func(e diffEnv, p any) kmsg.Request {
				jr := p.(*kmsg.JoinGroupResponse)
				return offsetCommit(ocv[len(ocv)-1], e, groupOf("commitgen")(e), jr.Generation+7, jr.MemberID, e.topic("a"), 0, 1)
			}})
		add(diffCase{name: fmt.Sprintf("DeleteGroups a group with a member (JoinGroup v%d)", v), prep: joinMember(v, groupOf("delmember")),
			build: func(e diffEnv, p any) kmsg.Request {
				r := req(kmsg.NewPtrDeleteGroupsRequest(), commonVersions(k, s, 42)[0])
				r.Groups = []string{groupOf("delmember")(e)}
				return r
			}})
		lgv := commonVersions(k, s, 13)
		add(diffCase{name: fmt.Sprintf("LeaveGroup v%d the member", lgv[len(lgv)-1]), prep: joinMember(v, groupOf("leave")),
			build: func(e diffEnv, p any) kmsg.Request {
				jr := p.(*kmsg.JoinGroupResponse)
				r := req(kmsg.NewPtrLeaveGroupRequest(), lgv[len(lgv)-1])
				r.Group, r.MemberID = groupOf("leave")(e), jr.MemberID
				m := kmsg.NewLeaveGroupRequestMember()
				m.MemberID = jr.MemberID
				r.Members = append(r.Members, m)
				return r
			}})
	}

	for _, v := range commonVersions(k, s, 12) {
		add(diffCase{name: fmt.Sprintf("Heartbeat v%d unknown group", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrHeartbeatRequest(), v)
			r.Group, r.Generation, r.MemberID = e.topic("nogroup"), 1, "nobody"
			return r
		}})
		add(diffCase{name: fmt.Sprintf("Heartbeat v%d empty group", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrHeartbeatRequest(), v)
			r.Group, r.Generation, r.MemberID = e.topic("g"), 1, "nobody"
			return r
		}})
	}
	for _, v := range commonVersions(k, s, 13) {
		add(diffCase{name: fmt.Sprintf("LeaveGroup v%d unknown member", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrLeaveGroupRequest(), v)
			r.Group, r.MemberID = e.topic("g"), "nobody"
			m := kmsg.NewLeaveGroupRequestMember()
			m.MemberID = "nobody"
			r.Members = append(r.Members, m)
			return r
		}})
	}
	for _, v := range commonVersions(k, s, 14) {
		add(diffCase{name: fmt.Sprintf("SyncGroup v%d unknown member", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrSyncGroupRequest(), v)
			r.Group, r.Generation, r.MemberID = e.topic("g"), 1, "nobody"
			r.ProtocolType, r.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
			return r
		}})
	}
	for _, v := range commonVersions(k, s, 15) {
		// One group per request: Kafka answers groups in coordinator
		// order, not request order.
		// The empty group with offsets, an unknown one, and the stable
		// group of "SyncGroup leader assigns" at the newest version.
		stable := fmt.Sprintf("syncok%d", pick(jgv)[len(pick(jgv))-1])
		for _, g := range []string{"g", "nogroup", stable} {
			add(diffCase{name: fmt.Sprintf("DescribeGroups v%d %s", v, g), fields: []string{"State", "ProtocolType", "Protocol"},
				build: func(e diffEnv, _ any) kmsg.Request {
					r := req(kmsg.NewPtrDescribeGroupsRequest(), v)
					r.Groups = []string{e.topic(g)}
					return r
				}})
		}
	}
	for _, v := range commonVersions(k, s, 16) {
		add(diffCase{name: fmt.Sprintf("ListGroups v%d", v), build: func(e diffEnv, _ any) kmsg.Request {
			return req(kmsg.NewPtrListGroupsRequest(), v)
		}})
	}
	for _, v := range from(commonVersions(k, s, 16), 4) {
		add(diffCase{name: fmt.Sprintf("ListGroups v%d filtered by an unknown state", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrListGroupsRequest(), v)
			r.StatesFilter = []string{"NoSuchState"}
			return r
		}})
	}
	for _, v := range commonVersions(k, s, 47) {
		add(diffCase{name: fmt.Sprintf("OffsetDelete v%d", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrOffsetDeleteRequest(), v)
			r.Group = e.topic("g")
			t := kmsg.NewOffsetDeleteRequestTopic()
			t.Topic = e.topic("a")
			p := kmsg.NewOffsetDeleteRequestTopicPartition()
			p.Partition = 1
			t.Partitions = append(t.Partitions, p)
			r.Topics = append(r.Topics, t)
			return r
		}})
		add(diffCase{name: fmt.Sprintf("OffsetDelete v%d unknown group", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrOffsetDeleteRequest(), v)
			r.Group = e.topic("nogroup")
			return r
		}})
	}
	for _, v := range commonVersions(k, s, 42) {
		// One group per request: Kafka answers groups in coordinator
		// order, not request order.
		add(diffCase{name: fmt.Sprintf("DeleteGroups v%d unknown group", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrDeleteGroupsRequest(), v)
			r.Groups = []string{e.topic("nogroup")}
			return r
		}})
		add(diffCase{name: fmt.Sprintf("DeleteGroups v%d empty group id", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrDeleteGroupsRequest(), v)
			r.Groups = []string{""}
			return r
		}})
	}
	dgv := commonVersions(k, s, 42)
	add(diffCase{name: "DeleteGroups an empty group with offsets", build: func(e diffEnv, _ any) kmsg.Request {
		r := req(kmsg.NewPtrDeleteGroupsRequest(), dgv[len(dgv)-1])
		r.Groups = []string{e.topic("g")}
		return r
	}})
}
