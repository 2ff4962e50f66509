package agent

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/segment/segmenttest"
)

// rawConn is a hand-driven Kafka connection for malformed input.
type rawConn struct {
	t  testing.TB
	nc net.Conn
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc}
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send writes a well-formed request.
func (c *rawConn) send(req kmsg.Request, corr int32) {
	c.t.Helper()
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw-test"))
	c.write(f.AppendRequest(nil, req, corr))
}

// readFrame reads one response frame: correlation id and the rest.
func (c *rawConn) readFrame() (int32, []byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return 0, nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.nc, body); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(body)), body[4:], nil
}

// expectClosed asserts that the agent closes the connection without
// answering.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	_, _, err := c.readFrame()
	if err == nil {
		c.t.Fatal("got a response, want the connection closed")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("connection still open: %v", err)
	}
}

// apiVersions sends a valid ApiVersions v3 and checks the answer: the
// connection still works.
func (c *rawConn) apiVersions(corr int32) *kmsg.ApiVersionsResponse {
	c.t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "silt-test", "1.0"
	c.send(req, corr)
	got, body, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if got != corr {
		c.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(3)
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decode ApiVersions v3 response: %v", err)
	}
	return resp
}

func TestApiVersionsAdvertisesTable(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	resp := c.apiVersions(7)
	if resp.ErrorCode != 0 {
		t.Fatalf("error code %d", resp.ErrorCode)
	}
	if len(resp.ApiKeys) != len(apis) {
		t.Fatalf("%d keys advertised, %d registered", len(resp.ApiKeys), len(apis))
	}
	for _, k := range resp.ApiKeys {
		api := lookupAPI(k.ApiKey)
		if api == nil || api.min != k.MinVersion || api.max != k.MaxVersion {
			t.Errorf("key %d advertised v%d-v%d, registry %+v", k.ApiKey, k.MinVersion, k.MaxVersion, api)
		}
	}
}

func TestApiVersionsUnsupportedVersion(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	// A future ApiVersions version with a body we cannot know.
	frame := []byte{0, 0, 0, 0, 0, 18, 0, 99, 0, 0, 0, 42, 0, 3, 'c', 'l', 'i', 0, 1, 2, 3}
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	c.write(frame)
	corr, body, err := c.readFrame()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if corr != 42 {
		t.Fatalf("correlation id %d", corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode v0: %v", err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error code %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
	}
	found := false
	for _, k := range resp.ApiKeys {
		if k.ApiKey == 18 && k.MaxVersion == lookupAPI(18).max {
			found = true
		}
	}
	if !found {
		t.Fatalf("ApiVersions range missing from %+v", resp.ApiKeys)
	}
	// The connection stays usable.
	if r := c.apiVersions(43); r.ErrorCode != 0 {
		t.Fatalf("follow-up ApiVersions error %d", r.ErrorCode)
	}
}

func TestApiVersionsInvalidSoftwareName(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "bad name!", "1"
	c.send(req, 1)
	_, body, err := c.readFrame()
	if err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(3)
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("error code %d, want INVALID_REQUEST", resp.ErrorCode)
	}
}

func TestMalformedInputClosesOnlyThatConnection(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.MaxRequestBytes = 1 << 20 })
	header := func(key, version int16) []byte {
		b := binary.BigEndian.AppendUint32(nil, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, 9)
		b = binary.BigEndian.AppendUint16(b, 1)
		return append(b, 'x')
	}
	finish := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		return b
	}
	cases := map[string][]byte{
		"oversized size prefix": {0x7f, 0xff, 0xff, 0xff},
		"negative size prefix":  {0xff, 0xff, 0xff, 0xff},
		"size above max":        binary.BigEndian.AppendUint32(nil, 1<<20+1),
		"short header":          {0, 0, 0, 3, 0, 18, 0},
		"unknown api key":       finish(header(999, 0)),
		"unimplemented api key": finish(header(57, 0)), // UpdateFeatures
		"unsupported version":   finish(header(3, 99)), // Metadata v99
		"garbage body":          finish(append(header(3, 1), 0x7f, 0xff, 0xff, 0xff, 1)),
		"client id overrun":     {0, 0, 0, 12, 0, 18, 0, 0, 0, 0, 0, 1, 0, 40, 'a', 'b'},
		"bad flexible tags":     finish(append(header(3, 9), 0xff, 0xff)),
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, a.Addr())
			c.write(frame)
			c.expectClosed()
			// Another connection is unaffected.
			if r := dialRaw(t, a.Addr()).apiVersions(1); r.ErrorCode != 0 {
				t.Fatalf("second connection: error %d", r.ErrorCode)
			}
		})
	}
}

func TestTruncatedFrameThenClose(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	c.write([]byte{0, 0, 0, 50, 0, 18, 0}) // promises 50 bytes, sends 3
	c.nc.(*net.TCPConn).CloseWrite()
	c.expectClosed()
	if r := dialRaw(t, a.Addr()).apiVersions(1); r.ErrorCode != 0 {
		t.Fatalf("second connection: error %d", r.ErrorCode)
	}
}

func TestPipelinedResponsesInOrder(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	const n = 250 // more than maxInFlight
	var buf []byte
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("pipeline"))
	for i := range n {
		var req kmsg.Request
		if i%2 == 0 {
			r := kmsg.NewPtrApiVersionsRequest()
			r.SetVersion(3)
			r.ClientSoftwareName, r.ClientSoftwareVersion = "x", "1"
			req = r
		} else {
			r := kmsg.NewPtrMetadataRequest()
			r.SetVersion(12)
			r.Topics = []kmsg.MetadataRequestTopic{}
			req = r
		}
		buf = append(buf, f.AppendRequest(nil, req, int32(i))...) // AppendRequest sizes from dst[0]
	}
	c.write(buf)
	for i := range n {
		corr, body, err := c.readFrame()
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if corr != int32(i) {
			t.Fatalf("response %d has correlation id %d", i, corr)
		}
		if i%2 == 1 {
			resp := kmsg.NewPtrMetadataResponse()
			resp.SetVersion(12)
			// Flexible response header: one empty tag section first.
			if len(body) == 0 || body[0] != 0 {
				t.Fatalf("metadata response %d lacks the header tag section", i)
			}
			if err := resp.ReadFrom(body[1:]); err != nil {
				t.Fatalf("decode metadata %d: %v", i, err)
			}
			if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != a.NodeID() {
				t.Fatalf("brokers %+v", resp.Brokers)
			}
		}
	}
}

// roundTrip sends req at its set version on a raw connection and decodes
// the answer, bypassing franz-go's version negotiation and request
// routing.
func (c *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	c.send(req, 77)
	corr, body, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	if corr != 77 {
		c.t.Fatalf("correlation id %d", corr)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != 18 {
		body = body[1:] // empty header tag section
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decode %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

func TestLargeFrameGrowsAsItArrives(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	// A valid ApiVersions request padded past eagerFrame: the frame is
	// read whole (the padding is an unknown trailing byte run, which
	// kmsg ignores for v0).
	req := kmsg.NewPtrApiVersionsRequest()
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("big"))
	frame := f.AppendRequest(nil, req, 5)
	frame = append(frame, make([]byte, eagerFrame+10)...)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	c.write(frame)
	corr, _, err := c.readFrame()
	if err != nil || corr != 5 {
		t.Fatalf("corr %d, err %v", corr, err)
	}
}

// A produce frame that does not fit the queued request bytes waits,
// unread, until handlers release room, while small control requests on
// other connections are still answered.
func TestQueuedRequestBytesBoundReads(t *testing.T) {
	waiting := make(chan struct{}, 1)
	a := startAgent(t, fastIngest, func(c *Config) { c.QueuedRequestBytes = 1 << 20 })
	a.onQueueWait = func() { waiting <- struct{}{} }
	if _, err := a.createTopic(t.Context(), metastore.TopicSpec{Name: "q", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	// Hold all the room, as produce frames waiting for their segment would.
	if err := a.queued.Acquire(t.Context(), 1<<20); err != nil {
		t.Fatal(err)
	}

	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 8, -1, 10000 // v8: no response header tags
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "q"
	rt.Partitions = append(rt.Partitions, kmsg.ProduceRequestTopicPartition{
		Records: segmenttest.New(segmenttest.Options{Records: 40, ValueSize: 1024, Random: true}),
	})
	req.Topics = append(req.Topics, rt)
	producer := dialRaw(t, a.Addr())
	producer.send(req, 1)
	select {
	case <-waiting:
	case <-time.After(30 * time.Second):
		t.Fatal("the produce frame was read past the bound")
	}

	// Control traffic is not held up behind it.
	other := dialRaw(t, a.Addr())
	if v := other.apiVersions(2); v.ErrorCode != 0 {
		t.Fatalf("ApiVersions while the bound is full: %s", codeName(v.ErrorCode))
	}

	a.queued.Release(1 << 20)
	_, body, err := producer.readFrame()
	if err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = req.Version
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce after room was released: %s", codeName(code))
	}
	// Every frame's share came back: the whole bound is free again.
	if !a.queued.TryAcquire(1 << 20) {
		t.Fatal("queued request bytes not all released after the produce was answered")
	}
	a.queued.Release(1 << 20)
}

// Large answer buffers are reused, within their bounds.
func TestLargeBuffersReused(t *testing.T) {
	for len(largeBuffers) > 0 {
		<-largeBuffers
	}
	b := largeBuffer(2 << 20)
	if cap(b) < 2<<20 || len(b) != 0 {
		t.Fatalf("largeBuffer(2 MiB): len %d cap %d", len(b), cap(b))
	}
	b = append(b, 1)
	putLargeBuffer(b)
	if again := largeBuffer(1 << 20); cap(again) != cap(b) || &again[:1][0] != &b[0] {
		t.Fatal("a kept buffer large enough was not reused")
	}
	putLargeBuffer(make([]byte, 0, maxLargeBuffer+1))
	if len(largeBuffers) != 0 {
		t.Fatal("a buffer over maxLargeBuffer was kept")
	}
	for range cap(largeBuffers) + 1 {
		putLargeBuffer(make([]byte, 0, 2<<20))
	}
	if len(largeBuffers) != cap(largeBuffers) {
		t.Fatalf("%d buffers kept, want at most %d", len(largeBuffers), cap(largeBuffers))
	}
	for len(largeBuffers) > 0 {
		<-largeBuffers
	}
}
