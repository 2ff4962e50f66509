package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// kjsEvent is one line printed by tests/interop/node/groups.js.
type kjsEvent struct {
	Event      string  `json:"event"`
	Name       string  `json:"name"` // of a phase
	MemberID   string  `json:"memberId"`
	IsLeader   bool    `json:"isLeader"`
	Partitions []int32 `json:"partitions"`
	groupRecord
}

// TestGroupKafkaJS is what a new Kafka user tries first, with kafkajs: a
// 3-partition topic and three consumers in one group each get exactly one
// partition; every message of one key reaches the same consumer; a fourth
// consumer joins, the group rebalances, and it stays idle while the other
// three keep their partitions. Every message is consumed exactly once and
// the group's committed offsets end at the end of the topic.
func TestGroupKafkaJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		missingTool(t, "node not installed")
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "kafkajs")); err != nil {
		missingTool(t, "kafkajs not installed: run tests/install-deps.sh")
	}
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		s := newSilt(t).Start()
		ctx := testContext(t, 90*time.Second)
		const topic, group, perKey = "group-kafkajs", "group-kafkajs", 5
		cmd := exec.CommandContext(ctx, node, "groups.js", s.Kafka(), topic, group, fmt.Sprint(perKey))
		cmd.Dir = nodeDir
		lines := runLines(t, cmd)

		phase := "start"
		joins := map[string]map[string][]kjsEvent{} // phase -> consumer -> joins
		msgs := map[string][]groupRecord{}          // phase -> messages
		memberIDs := map[string]string{}
		for _, line := range lines {
			var ev kjsEvent
			decodeLine(t, line, &ev)
			switch ev.Event {
			case "phase":
				phase = ev.Name
			case "done":
				phase = "done"
			case "join":
				if joins[phase] == nil {
					joins[phase] = map[string][]kjsEvent{}
				}
				joins[phase][ev.Consumer] = append(joins[phase][ev.Consumer], ev)
				if prev, ok := memberIDs[ev.Consumer]; ok && prev != ev.MemberID {
					t.Errorf("%s changed member id from %s to %s", ev.Consumer, prev, ev.MemberID)
				}
				memberIDs[ev.Consumer] = ev.MemberID
			case "message":
				msgs[phase] = append(msgs[phase], ev.groupRecord)
			}
		}
		if phase != "done" {
			t.Fatalf("groups.js ended in phase %q", phase)
		}

		// The last join of each of the three before the topic was
		// produced to: one partition each, all different.
		owner := map[int32]string{} // partition -> consumer, with three members
		for _, c := range []string{"c0", "c1", "c2"} {
			js := joins["start"][c]
			if len(js) == 0 {
				t.Fatalf("%s never joined before the first messages (joins %+v)", c, joins)
			}
			ps := js[len(js)-1].Partitions
			if len(ps) != 1 {
				t.Fatalf("%s holds partitions %v with three members, want exactly one", c, ps)
			}
			if prev, dup := owner[ps[0]]; dup {
				t.Fatalf("partition %d assigned to %s and %s", ps[0], prev, c)
			}
			owner[ps[0]] = c
		}

		// With four members: c3 (its member id sorts last, as Kafka builds
		// ids from the client id) is idle, the others keep one each.
		after := joins["round1-consumed"]
		if js := after["c3"]; len(js) == 0 || len(js[len(js)-1].Partitions) != 0 {
			t.Fatalf("c3 joins %+v: want it to join with no partitions", js)
		}
		for p, c := range owner {
			js := after[c]
			if len(js) == 0 {
				t.Fatalf("%s did not rejoin when c3 joined (joins %+v)", c, after)
			}
			if got := js[len(js)-1].Partitions; len(got) != 1 || got[0] != p {
				t.Fatalf("%s holds %v with four members, want [%d] as before", c, got, p)
			}
		}
		if js := joins["four-stable"]; len(js) != 0 {
			t.Errorf("rebalances while the fourth member was idle: %+v", js)
		}

		// Messages: each consumed once, by the owner of its partition;
		// one key, one partition, one consumer.
		if n := len(msgs["start"]) + len(msgs["round1-consumed"]) + len(msgs["round2-consumed"]); n != 0 {
			t.Errorf("%d messages consumed outside the two rounds (before producing, during the rebalance or after the end): %+v", n, msgs)
		}
		round1, round2 := msgs["three-stable"], msgs["four-stable"]
		if want := 6 * perKey; len(round1) != want || len(round2) != want {
			t.Fatalf("consumed %d messages in round 1 and %d in round 2, want %d each", len(round1), len(round2), want)
		}
		type po struct {
			p int32
			o int64
		}
		seen := map[po]bool{}
		keyConsumer := map[string]string{}
		keyPartition := map[string]int32{}
		for _, m := range append(round1, round2...) {
			if seen[po{m.Partition, m.Offset}] {
				t.Errorf("p%d@%d consumed twice", m.Partition, m.Offset)
			}
			seen[po{m.Partition, m.Offset}] = true
			if owner[m.Partition] != m.Consumer {
				t.Errorf("message %q of partition %d consumed by %s, the partition is %s's", m.Value, m.Partition, m.Consumer, owner[m.Partition])
			}
			if c, ok := keyConsumer[m.Key]; ok && c != m.Consumer {
				t.Errorf("key %s reached both %s and %s", m.Key, c, m.Consumer)
			}
			if p, ok := keyPartition[m.Key]; ok && p != m.Partition {
				t.Errorf("key %s on partitions %d and %d", m.Key, p, m.Partition)
			}
			keyConsumer[m.Key], keyPartition[m.Key] = m.Consumer, m.Partition
		}
		if len(keyConsumer) != 6 {
			t.Errorf("keys consumed: %v, want k0..k5", keyConsumer)
		}

		ends := endOffsets(t, ctx, s.Kafka(), topic)
		if c := committedOffsets(t, ctx, s.Kafka(), group, topic); !sameOffsets(c, ends) {
			t.Errorf("committed offsets %v after kafkajs consumed everything, want the end offsets %v", c, ends)
		}
	})
}
