package group

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzMemberMetadata decodes consumer-protocol member metadata as the
// coordinator does (a static member's rejoin, the group's subscribed
// topics), from whatever bytes a client put in its JoinGroup: never a
// panic, and a member's metadata always matches itself.
func FuzzMemberMetadata(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0, 0, 0, 0}, []byte{0xff, 0xff, 0xff, 0xff})
	for v := int16(0); v <= 3; v++ {
		m := kmsg.ConsumerMemberMetadata{Version: v, Topics: []string{"a", "b"}, UserData: []byte("u"), Generation: 3}
		m.OwnedPartitions = []kmsg.ConsumerMemberMetadataOwnedPartition{{Topic: "a", Partitions: []int32{0, 1}}}
		b := m.AppendTo(nil)
		f.Add(b, b)
		f.Add(b, b[:len(b)/2])
		m.Topics = []string{"b", "a", "a"}
		f.Add(b, m.AppendTo(nil))
	}
	f.Fuzz(func(t *testing.T, prev, next []byte) {
		m := &member{protocolType: "consumer", protocols: []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: prev}}}
		rejoin := func(meta []byte) bool {
			return m.sameSubscription("range", "consumer", []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta}})
		}
		if !rejoin(prev) {
			t.Fatalf("metadata %x does not match itself", prev)
		}
		_ = rejoin(next)
		g := &group{protocol: "range", members: map[string]*member{"m": m, "n": {protocols: []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: next}}}}}
		_ = g.subscribedTopics()
	})
}
