package agent

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

// BenchmarkTopicByNameHit is the produce/fetch hot path's topic lookup.
func BenchmarkTopicByNameHit(b *testing.B) {
	a := startAgent(b)
	if _, err := a.createTopic(b.Context(), metastore.TopicSpec{Name: "bench", Partitions: 1}); err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.topicByName(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApiVersionsRoundTrip measures the server loop: frame read,
// decode, dispatch, ordered write, on one connection, one request at a
// time.
func BenchmarkApiVersionsRoundTrip(b *testing.B) {
	a := startAgent(b)
	c := dialRaw(b, a.Addr())
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "bench", "1"
	frame := kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)
	b.ReportAllocs()
	for b.Loop() {
		c.write(frame)
		if _, _, err := c.readFrame(); err != nil {
			b.Fatal(err)
		}
	}
}
