package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore/sqlite"
)

// panicWatch is a slog handler that counts the records reporting a
// panic (a decoder or a handler that panicked and was recovered).
type panicWatch struct{ panics atomic.Int64 }

func (w *panicWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *panicWatch) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		w.panics.Add(1)
		os.Stderr.WriteString("agent logged: " + r.Message + "\n")
	}
	return nil
}
func (w *panicWatch) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *panicWatch) WithGroup(string) slog.Handler      { return w }

// fuzzFrames are request frames (size prefix included) of every API the
// agent accepts, at its lowest and highest version, and a few requests
// with content, so the fuzzer starts inside every decoder. (Every version
// of every API seeds FuzzParseRequest; a seed here costs a connection.)
func fuzzFrames() [][]byte {
	fm := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	var out [][]byte
	for _, api := range apis {
		for _, v := range []int16{api.min, api.max} {
			req := kmsg.RequestForKey(api.key)
			req.SetVersion(v)
			out = append(out, fm.AppendRequest(nil, req, int32(len(out))))
		}
	}
	// A few requests with content: a produce of one batch, a fetch, a
	// metadata naming a topic, a group join.
	produce := kmsg.NewPtrProduceRequest()
	produce.SetVersion(9)
	produce.Acks, produce.TimeoutMillis = -1, 1000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "fuzz"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = oneRecordBatch([]byte("value"))
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(12)
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "fuzz"
	ft.Partitions = append(ft.Partitions, kmsg.NewFetchRequestTopicPartition())
	fetch.Topics = append(fetch.Topics, ft)
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("fuzz")
	md.Topics = append(md.Topics, mt)
	join := kmsg.NewPtrJoinGroupRequest()
	join.SetVersion(7)
	join.Group, join.ProtocolType = "g", "consumer"
	jp := kmsg.NewJoinGroupRequestProtocol()
	jp.Name, jp.Metadata = "range", (&kmsg.ConsumerMemberMetadata{Topics: []string{"fuzz"}}).AppendTo(nil)
	join.Protocols = append(join.Protocols, jp)
	for _, r := range []kmsg.Request{produce, fetch, md, join} {
		out = append(out, fm.AppendRequest(nil, r, int32(len(out))))
	}
	return out
}

// FuzzConnection writes arbitrary bytes to one connection of a running
// agent, as a client would: frames of any size, half frames, frames of
// every API and version with any content. Whatever it sends, the agent
// must not panic (not even a recovered one), must answer with whole
// response frames or close the connection, and must keep serving other
// clients.
func FuzzConnection(f *testing.F) {
	frames := fuzzFrames()
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0, 18, 0, 3})
	f.Add(bytes.Join(frames[:6], nil))
	for i, fr := range frames {
		f.Add(fr)
		if i%4 == 0 {
			f.Add(fr[:len(fr)/2])
			f.Add(append(bytes.Clone(fr), fr...))
		}
	}
	watch := &panicWatch{}
	dir := f.TempDir()
	store, err := sqlite.Open(f.Context(), filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	a := startAgentLogged(f, store, dir, slog.New(watch), func(c *Config) {
		c.MaxRequestBytes = 1 << 20
		c.QueuedRequestBytes = 1 << 20
		c.Ingest.FlushInterval = 5 * time.Millisecond
		c.AutoCreateTopics = true
	})
	f.Fuzz(func(t *testing.T, stream []byte) {
		if hugeVarint(stream) {
			return // the known kmsg tagged-field loop (see FuzzParseRequest)
		}
		before := watch.panics.Load()
		nc, err := net.DialTimeout("tcp", a.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := nc.Write(stream); err == nil {
			_ = nc.(*net.TCPConn).CloseWrite()
		}
		// Responses: whole frames, until the agent closes or stops
		// answering (a long-poll fetch may wait).
		for {
			var size [4]byte
			if _, err := io.ReadFull(nc, size[:]); err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("a response frame's size was cut off")
				}
				break
			}
			n := binary.BigEndian.Uint32(size[:])
			if n < 4 || n > 64<<20 {
				t.Fatalf("response frame of %d bytes", n)
			}
			if _, err := io.ReadFull(nc, make([]byte, n)); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				t.Fatalf("response frame of %d bytes cut off: %v", n, err)
			}
		}
		if got := watch.panics.Load(); got != before {
			t.Fatalf("the agent logged %d panics for this input", got-before)
		}
		// Another client is served as before.
		c := dialRaw(t, a.Addr())
		if resp := c.apiVersions(1); resp.ErrorCode != 0 {
			t.Fatalf("ApiVersions after the input: error %d", resp.ErrorCode)
		}
	})
}

// decodeAmplification bounds what decoding a request frame allocates, as
// a multiple of its length. kmsg decodes an array into a slice of
// structs made at the length the frame declares (it only checks that as
// many bytes remain), and its largest request elements take up to about
// 80 bytes of memory per byte a crafted frame spends on them (measured:
// CreateTopics 81x, Produce and Fetch 64x); an array nested in the first
// element of another can claim the same bytes once more. Nothing in a
// frame may make the decoder allocate beyond that (README: known issues).
const decodeAmplification = 256

// FuzzReadFrame reads a frame the way a connection does (the size, then
// the bytes, see readFrame) from a client that may send fewer bytes than
// it announced, and decodes it: the memory read allocates follows the
// bytes that arrived (never the announced size beyond eagerFrame), and
// decoding allocates at most decodeAmplification times the frame. The
// frame is the fuzzer's bytes followed by pad*4 zero bytes, so that a
// large array count can be backed by bytes as a crafted frame's would.
func FuzzReadFrame(f *testing.F) {
	for i, fr := range fuzzFrames() {
		f.Add(uint32(len(fr)-4), fr[4:], uint16(0))
		if i%8 == 0 {
			f.Add(uint32(0xffffffff), fr[4:], uint16(0))
			f.Add(uint32(len(fr)+eagerFrame), fr[4:], uint16(0))
			f.Add(uint32(len(fr)-4+4<<14), fr[4:], uint16(1<<14))
		}
	}
	f.Add(uint32(100<<20), []byte{0, 0, 0, 3}, uint16(0))
	f.Fuzz(func(t *testing.T, announced uint32, head []byte, pad uint16) {
		n := int32(announced)
		if n < 0 || n > DefaultConfig().MaxRequestBytes {
			return // refused before anything is read (readLoop)
		}
		data := append(head, make([]byte, 4*int(pad))...)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		frame, err := readFrame(bytes.NewReader(data), int(n))
		runtime.ReadMemStats(&after)
		// Slack: the fuzzing engine's own goroutines allocate meanwhile.
		got := after.TotalAlloc - before.TotalAlloc
		if limit := uint64(min(int(n), eagerFrame)) + 2*uint64(len(data)) + 64<<10; got > limit {
			t.Fatalf("reading a frame announced at %d bytes with %d sent allocated %d bytes (limit %d)", n, len(data), got, limit)
		}
		if err != nil {
			if int(n) <= len(data) {
				t.Fatalf("readFrame of %d bytes with %d available: %v", n, len(data), err)
			}
			return
		}
		if hugeVarint(frame) {
			return
		}
		runtime.ReadMemStats(&before)
		_, _, _, _ = parseRequest(frame)
		runtime.ReadMemStats(&after)
		if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(decodeAmplification*len(frame)+64<<10); got > limit {
			t.Fatalf("decoding a frame of %d bytes allocated %d bytes (limit %d)", len(frame), got, limit)
		}
	})
}
