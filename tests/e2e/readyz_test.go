package e2e

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siltdata/silt/tests/harness"
)

// TestReadyz: a `silt agent` whose Postgres is reached through a TCP
// forwarder is ready; when the forwarder cuts every connection and refuses
// new ones, /readyz turns 503 (while /healthz stays 200: an outage of the
// metastore must not get the agent restarted), and the process stays up;
// when the forwarder listens again on the same port, /readyz is 200 again,
// a produce succeeds, both records read back, and SIGTERM exits cleanly.
// The shared harness Postgres keeps running for the other tests.
func TestReadyz(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	pg, err := url.Parse(harness.Postgres(t))
	if err != nil {
		t.Fatalf("harness postgres url: %v", err)
	}
	fwd := newTCPForwarder(t, pg.Host)
	pg.Host = fwd.Addr()
	s := newAgentOn(t, pg.String(), harness.S3(t), "--agent-id", "readyz-agent").Start()

	const topic = "readyz"
	waitReadyz(t, ctx, s.Admin(), http.StatusOK, 30*time.Second)
	before := produceKeyed(t, ctx, s.Kafka(), topic, "before", 1, 1)

	fwd.Cut()
	waitReadyz(t, ctx, s.Admin(), http.StatusServiceUnavailable, 30*time.Second)
	// Not a one-off (a dead pooled connection): new connections are
	// refused too.
	if code, body := getAdmin(ctx, s.Admin(), "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz again during the metastore outage: %d %q, want 503", code, body)
	}
	if code, body := getAdmin(ctx, s.Admin(), "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz during the metastore outage: %d %q, want 200", code, body)
	}

	fwd.Restore()
	waitReadyz(t, ctx, s.Admin(), http.StatusOK, 60*time.Second)
	produceCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	after := produceKeyed(t, produceCtx, s.Kafka(), topic, "after", 1, 1)
	checkAcked(t, append(before, after...), consumeN(t, ctx, s.Kafka(), topic, 2))
	s.Stop()
}

// waitReadyz polls admin's /readyz until it answers want, failing the test
// after limit with the last answer.
func waitReadyz(t testing.TB, ctx context.Context, admin string, want int, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		code, body := getAdmin(ctx, admin, "/readyz")
		if code == want {
			t.Logf("/readyz: %d %q", code, body)
			if want != http.StatusOK && !strings.HasPrefix(body, "not ready") {
				t.Errorf("/readyz answered %d %q, want a \"not ready: <reason>\" body", code, body)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/readyz never answered %d within %s (last: %d %q)", want, limit, code, body)
		case <-tick.C:
		}
	}
}

// getAdmin GETs path from the admin server: the status code (0 when the
// request failed) and the body or the error.
func getAdmin(ctx context.Context, admin, path string) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+path, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := metricsClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// tcpForwarder forwards connections from a fixed 127.0.0.1 port to a
// target. Cut drops every connection and stops listening, so new ones are
// refused as by a stopped server; Restore listens on the same port again.
type tcpForwarder struct {
	t      testing.TB
	target string
	addr   string

	mu    sync.Mutex // mu guards ln and conns
	ln    net.Listener
	conns map[net.Conn]struct{}

	wg sync.WaitGroup // the accept loop and the copy goroutines
}

func newTCPForwarder(t testing.TB, target string) *tcpForwarder {
	f := &tcpForwarder{t: t, target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.serve(ln)
	t.Cleanup(f.Cut)
	return f
}

func (f *tcpForwarder) Addr() string { return f.addr }

// Cut closes the listener and every forwarded connection and waits for
// the forwarder's goroutines to end.
func (f *tcpForwarder) Cut() {
	f.mu.Lock()
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
	for c := range f.conns {
		c.Close()
		delete(f.conns, c)
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// Restore listens on the forwarder's port again.
func (f *tcpForwarder) Restore() {
	f.t.Helper()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatalf("forwarder: listen again on %s: %v", f.addr, err)
	}
	f.serve(ln)
}

func (f *tcpForwarder) serve(ln net.Listener) {
	f.mu.Lock()
	f.ln = ln
	f.mu.Unlock()
	f.wg.Add(1)
	go f.accept(ln)
}

// track registers c, or closes it and returns false once ln was cut.
func (f *tcpForwarder) track(ln net.Listener, c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != ln {
		c.Close()
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *tcpForwarder) untrack(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.conns, c)
	c.Close()
}

func (f *tcpForwarder) accept(ln net.Listener) {
	defer f.wg.Done()
	for {
		client, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				f.t.Logf("forwarder accept: %v", err)
			}
			return
		}
		if !f.track(ln, client) {
			continue
		}
		server, err := net.DialTimeout("tcp", f.target, 10*time.Second)
		if err != nil {
			f.t.Logf("forwarder dial %s: %v", f.target, err)
			f.untrack(client)
			continue
		}
		if !f.track(ln, server) {
			f.untrack(client)
			continue
		}
		// Each direction's end closes both sides, so the other
		// direction's copy ends too.
		pipe := func(dst, src net.Conn) {
			defer f.wg.Done()
			io.Copy(dst, src)
			f.untrack(dst)
			f.untrack(src)
		}
		f.wg.Add(2)
		go pipe(server, client)
		go pipe(client, server)
	}
}
