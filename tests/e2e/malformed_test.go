package e2e

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestMalformedInput sends what a broken or hostile client might over raw
// TCP, while a well-behaved producer keeps writing on its own connection.
// Each bad input gets the answer Apache Kafka gives (an error code, or a
// closed connection where Kafka closes it), the agent stays up and the
// good producer's data is intact.
func TestMalformedInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		ctx := testContext(t, 2*time.Minute)
		s := newSilt(t, "--flush-interval", "20ms").Start()
		const good, bad = "malformed-good", "malformed-bad"

		// Create the bad input's topic with a real client.
		if err := newClient(t, s.Kafka()).ProduceSync(ctx, &kgo.Record{Topic: bad, Value: []byte("first")}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		l := startLoad(t, s.Kafka(), good, 1)
		l.waitAcked(ctx, 200)

		versions := dialRaw(t, s.Kafka()).apiVersions()
		pv, ok := versions[0]
		if !ok {
			t.Fatal("Produce not advertised")
		}
		produceVersion := min(pv[1], 12) // v13 names topics by id

		t.Run("wrong-crc", func(t *testing.T) {
			c := dialRaw(t, s.Kafka())
			batch := recordBatch([]byte("corrupt"))
			batch[len(batch)-1] ^= 0xff // the CRC covers this byte
			p := partitionResult(t, c.roundTrip(produceRequest(produceVersion, bad, 0, batch)))
			if p.ErrorCode != kerr.CorruptMessage.Code {
				t.Fatalf("error code %d (%v), want CORRUPT_MESSAGE", p.ErrorCode, kerr.ErrorForCode(p.ErrorCode))
			}
			// The connection stays usable, as in Kafka.
			p = partitionResult(t, c.roundTrip(produceRequest(produceVersion, bad, 0, recordBatch([]byte("valid")))))
			if p.ErrorCode != 0 || p.BaseOffset != 1 {
				t.Fatalf("valid produce after a corrupt one: error %v, base offset %d, want offset 1", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
			}
		})

		t.Run("oversized-batch", func(t *testing.T) {
			c := dialRaw(t, s.Kafka())
			big := bytes.Repeat([]byte("x"), 2<<20) // over max.message.bytes (1 MiB by default)
			p := partitionResult(t, c.roundTrip(produceRequest(produceVersion, bad, 0, recordBatch(big))))
			if p.ErrorCode != kerr.MessageTooLarge.Code {
				t.Fatalf("error code %d (%v), want MESSAGE_TOO_LARGE", p.ErrorCode, kerr.ErrorForCode(p.ErrorCode))
			}
		})

		t.Run("unknown-api-key", func(t *testing.T) {
			c := dialRaw(t, s.Kafka())
			var frame []byte
			frame = binary.BigEndian.AppendUint32(frame, 10)
			frame = binary.BigEndian.AppendUint16(frame, 32000)  // api key
			frame = binary.BigEndian.AppendUint16(frame, 0)      // version
			frame = binary.BigEndian.AppendUint32(frame, 7)      // correlation id
			frame = binary.BigEndian.AppendUint16(frame, 0xffff) // null client id
			c.write(frame)
			c.expectClosed()
		})

		t.Run("unsupported-version", func(t *testing.T) {
			// ApiVersions answers in v0 with UNSUPPORTED_VERSION and its
			// supported range, so clients can retry with a version it has.
			c := dialRaw(t, s.Kafka())
			req := kmsg.NewPtrApiVersionsRequest()
			req.Version = 3
			frame := c.f.AppendRequest(nil, req, 42)
			binary.BigEndian.PutUint16(frame[6:], 127) // version field
			c.write(frame)
			resp := kmsg.NewPtrApiVersionsResponse()
			resp.Version = 0
			c.read(resp, 42)
			if resp.ErrorCode != kerr.UnsupportedVersion.Code {
				t.Fatalf("ApiVersions v127: error code %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
			}
			found := false
			for _, k := range resp.ApiKeys {
				found = found || k.ApiKey == 18
			}
			if !found {
				t.Error("ApiVersions v127: response does not list ApiVersions' own versions")
			}

			// Any other API at a version the broker does not have: Kafka
			// closes the connection.
			c = dialRaw(t, s.Kafka())
			mreq := kmsg.NewPtrMetadataRequest()
			mreq.Version = 4
			frame = c.f.AppendRequest(nil, mreq, 43)
			binary.BigEndian.PutUint16(frame[6:], 127)
			c.write(frame)
			c.expectClosed()
		})

		t.Run("truncated-header", func(t *testing.T) {
			// A complete frame whose request header is cut short.
			c := dialRaw(t, s.Kafka())
			c.write([]byte{0, 0, 0, 6, 0, 3, 0, 4, 0, 0})
			c.expectClosed()
		})

		t.Run("truncated-frame", func(t *testing.T) {
			// A frame that promises more bytes than the client sends
			// before it stops writing.
			c := dialRaw(t, s.Kafka())
			frame := c.f.AppendRequest(nil, kmsg.NewPtrMetadataRequest(), 1)
			c.write(frame[:len(frame)/2])
			c.c.(interface{ CloseWrite() error }).CloseWrite()
			c.expectClosed()
		})

		t.Run("truncated-body", func(t *testing.T) {
			// A Produce whose body ends in the middle of its topic array.
			c := dialRaw(t, s.Kafka())
			frame := c.f.AppendRequest(nil, produceRequest(produceVersion, bad, 0, recordBatch([]byte("x"))), 9)
			frame = frame[:len(frame)-40]
			binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
			c.write(frame)
			c.expectClosed()
		})

		t.Run("huge-size", func(t *testing.T) {
			// A size beyond socket.request.max.bytes: Kafka closes at once.
			c := dialRaw(t, s.Kafka())
			c.write([]byte{0x7f, 0xff, 0xff, 0xff, 0, 3})
			c.expectClosed()
		})

		// The good producer kept working through all of it.
		l.mu.Lock()
		before := len(l.acks)
		l.mu.Unlock()
		l.waitAcked(ctx, before+200)
		acks, _ := l.stop()
		checkAcked(t, acks, readAll(t, ctx, s.Kafka(), good))

		s.Stop() // and the agent shuts down cleanly: nothing crashed
	})
}
