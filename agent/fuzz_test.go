package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore/sqlite"
)

// FuzzParseRequest feeds arbitrary frames to the request decoder: it must
// never panic, and what it accepts must re-encode.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 1, 0xff, 0xff})
	fm := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	for _, api := range apis {
		for v := api.min; v <= api.max; v++ {
			req := kmsg.RequestForKey(api.key)
			req.SetVersion(v)
			frame := fm.AppendRequest(nil, req, 1)[4:]
			f.Add(frame)
			f.Add(append(append([]byte(nil), frame...), 0xff, 0xff, 0xff, 0xff))
			if len(frame) > 12 {
				f.Add(frame[:len(frame)/2])
			}
		}
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if hugeVarint(frame) {
			// kmsg v1.15.0 keeps looping over a tagged-field count after
			// its reader failed: a count near 2^32 costs seconds of CPU
			// (not a crash). Reported as a known issue; skipped here so
			// the fuzzer looks for panics.
			return
		}
		h, _, kreq, err := parseRequest(frame)
		if err != nil {
			return
		}
		if kreq.Key() != h.key || kreq.GetVersion() != h.version {
			t.Fatalf("decoded key %d v%d from header key %d v%d", kreq.Key(), kreq.GetVersion(), h.key, h.version)
		}
		_ = kreq.AppendTo(nil)
	})
}

// hugeVarint reports whether b holds four consecutive bytes with the
// varint continuation bit, i.e. a possible uvarint of 2^28 or more.
func hugeVarint(b []byte) bool {
	run := 0
	for _, c := range b {
		if c&0x80 != 0 {
			run++
			if run >= 4 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// FuzzUnauthenticatedFrames sends arbitrary bytes to a SASL listener
// before authentication: the agent must close the connection (or answer
// and then close it when the client stops), never crash, never let the
// stream allocate past the unauthenticated bound, and keep serving new
// connections.
func FuzzUnauthenticatedFrames(f *testing.F) {
	fm := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = "PLAIN"
	hs0 := kmsg.NewPtrSASLHandshakeRequest()
	hs0.SetVersion(0)
	hs0.Mechanism = "SCRAM-SHA-256"
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.SASLAuthBytes = []byte("\x00alice\x00wrong")
	seeds := [][]byte{
		{}, {0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff}, {0, 0x10, 0, 0},
		fm.AppendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 1),
		fm.AppendRequest(nil, kmsg.NewPtrMetadataRequest(), 1),
		fm.AppendRequest(fm.AppendRequest(nil, hs, 1), au, 2),
		append(fm.AppendRequest(nil, hs0, 1), 0, 0, 0, 16, 'n', ',', ',', 'n', '=', 'a', ',', 'r', '=', 'x', 0xff, 0, 0, 0, 0, 0),
		append(fm.AppendRequest(nil, hs0, 1), 0xff, 0xff, 0xff, 0xff),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	dir := f.TempDir()
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	a := startAgentOn(f, store, dir, func(c *Config) {
		c.Listeners = []Listener{{Name: "SASL", Addr: "127.0.0.1:0", Protocol: SASLPlaintext}}
		c.SASL.Mechanisms = []string{"PLAIN", "SCRAM-SHA-256"}
		c.MaxUnauthenticatedBytes = 4 << 10
		c.FailedAuthDelay = 0
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		if hugeVarint(in) {
			return // see FuzzParseRequest
		}
		nc, err := net.Dial("tcp", a.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write(in); err != nil {
			return // the agent already closed it
		}
		_ = nc.(*net.TCPConn).CloseWrite()
		// Answers (if any), then the close; a timeout means the agent
		// kept a connection that stopped sending open.
		if _, err := io.Copy(io.Discard, nc); err != nil && !isReset(err) {
			t.Fatalf("connection not closed: %v", err)
		}
		c := dialRaw(t, a.Addr())
		if r := c.apiVersions(1); r.ErrorCode != 0 {
			t.Fatalf("agent no longer answers: %d", r.ErrorCode)
		}
	})
}

// isReset reports a connection reset (the agent closed with unread input).
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
