package e2e

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawConn speaks the Kafka protocol frame by frame, so tests can send what
// no client library would.
type rawConn struct {
	t    testing.TB
	c    net.Conn
	corr int32
	f    *kmsg.RequestFormatter
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("silt-e2e-raw"))}
}

// write sends bytes as they are.
func (r *rawConn) write(b []byte) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// send encodes and sends req, returning its correlation id.
func (r *rawConn) send(req kmsg.Request) int32 {
	r.t.Helper()
	r.corr++
	r.write(r.f.AppendRequest(nil, req, r.corr))
	return r.corr
}

// roundTrip sends req and decodes its response.
func (r *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	corr := r.send(req)
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	r.read(resp, corr)
	return resp
}

// read reads one response frame into resp.
func (r *rawConn) read(resp kmsg.Response, corr int32) {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	frame, err := readFrame(r.c)
	if err != nil {
		r.t.Fatalf("read %T: %v", resp, err)
	}
	body := frame[4:]
	if len(body) < 4 {
		r.t.Fatalf("response frame of %d bytes", len(body))
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		r.t.Fatalf("response correlation id %d, want %d", got, corr)
	}
	body = body[4:]
	// Flexible responses carry header tags, except ApiVersions, whose
	// response header is always v0 so old clients can read it.
	if resp.IsFlexible() && resp.Key() != 18 {
		if len(body) == 0 || body[0] != 0 {
			r.t.Fatalf("unexpected response header tags")
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		r.t.Fatalf("decode %T v%d: %v", resp, resp.GetVersion(), err)
	}
}

// expectClosed requires the agent to close the connection (EOF or reset)
// without answering.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var buf [512]byte
	n, err := r.c.Read(buf[:])
	switch {
	case n > 0:
		r.t.Fatalf("got %d bytes (% x...), want the connection closed", n, buf[:min(n, 16)])
	case errors.Is(err, os.ErrDeadlineExceeded):
		r.t.Fatal("connection still open, want it closed")
	case errors.Is(err, io.EOF), isReset(err):
	default:
		r.t.Fatalf("read: %v, want the connection closed", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// apiVersions returns the agent's supported version range per API key.
func (r *rawConn) apiVersions() map[int16][2]int16 {
	r.t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "silt-e2e", "0"
	resp := r.roundTrip(req).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != 0 {
		r.t.Fatalf("ApiVersions error %d", resp.ErrorCode)
	}
	m := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		m[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	return m
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordBatch encodes a magic-2 record batch of uncompressed values with a
// correct length and CRC-32C.
func recordBatch(values ...[]byte) []byte {
	var recs []byte
	for i, v := range values {
		rec := kmsg.Record{OffsetDelta: int32(i), Value: v}
		body := rec.AppendTo(nil)[1:] // drop the zero length varint
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(values) - 1),
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(values)),
		Records:              recs,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))                   // length: after the length field
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli)) // CRC: attributes to the end
	return raw
}

// produceRequest builds an acks=all Produce for one partition.
func produceRequest(version int16, topic string, partition int32, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	req.Acks = -1
	req.TimeoutMillis = 30000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = topic
	p := kmsg.NewProduceRequestTopicPartition()
	p.Partition = partition
	p.Records = batch
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	return req
}

// partitionResult is the single partition answer of a Produce response.
func partitionResult(t testing.TB, resp kmsg.Response) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response %+v: want one topic with one partition", pr)
	}
	return pr.Topics[0].Partitions[0]
}
