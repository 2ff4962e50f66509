package agent

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/agent/group"
	"github.com/siltdata/silt/agent/ingest"
	"github.com/siltdata/silt/auth"
	"github.com/siltdata/silt/auth/sasl"
	"github.com/siltdata/silt/auth/tlsconf"
)

// maxInFlight bounds the requests of one connection that are read but not
// yet answered. When it is reached the connection stops reading, so a
// client that pipelines faster than the agent answers is slowed by TCP
// backpressure instead of growing the agent's memory.
const maxInFlight = 100

// conn is one client connection. Three kinds of goroutines serve it, all
// counted in the agent's WaitGroups:
//
//   - readLoop (one) reads frames, decodes them and starts each request's
//     handler once the previous request released; it owns pending and
//     closes it when it stops;
//   - one handler goroutine per request (Agent.handlers);
//   - writeLoop (one) writes the answers in arrival order and closes the
//     socket when pending is drained or the connection is aborted.
type conn struct {
	a      *Agent
	nc     net.Conn // a *tls.Conn on TLS listeners
	l      *listener
	remote string
	host   string // the client's IP, for ACLs and connection limits

	// ctx is every request's context: cancelled when the connection
	// aborts or the agent shuts down.
	ctx    context.Context
	cancel context.CancelFunc

	pending    chan *inflight
	writerDone chan struct{}

	// fetchTurn rotates where this connection's fetches start reading,
	// so that every partition gets its turn when not all can be read
	// before a fetch's deadline.
	fetchTurn atomic.Uint64

	// mu guards draining and producer.
	mu sync.Mutex
	// draining is set by Shutdown: the reader stops without treating the
	// interrupted read as an error, and the writer still flushes answers.
	draining bool
	// producer counts this connection's produce requests waiting for
	// their commit, for the early cut (ingest.Config.EarlyCut); made at
	// the first produce, closed by the writer when the connection ends.
	producer *ingest.Source

	// outstanding counts requests read and not yet answered: a
	// connection waiting for an answer is not idle.
	outstanding atomic.Int32

	// authMu guards the authentication state below. On a SASL listener
	// a connection starts unauthenticated: until SaslAuthenticate
	// succeeds only ApiVersions, SaslHandshake and SaslAuthenticate are
	// accepted, one at a time, in frames of at most
	// Config.MaxUnauthenticatedBytes.
	authMu        sync.Mutex
	principal     string
	authenticated bool
	handshaken    bool         // SaslHandshake accepted: the exchange is next
	rawTokens     bool         // SaslHandshake v0: raw SASL frames follow
	mech          string       // the mechanism of the (last) exchange
	session       sasl.Session // the exchange in progress
	reauthing     bool         // a KIP-368 re-authentication is in progress
	expires       time.Time    // the session's end (zero: none)
}

// inflight is one request between its arrival and its answer.
type inflight struct {
	corr    int32
	key     int16
	flex    bool          // response header v1 (tagged fields)
	done    chan struct{} // closed when resp/err are set
	release chan struct{} // closed when the next request may start
	resp    kmsg.Response // nil: nothing to send (acks=0 produce)
	err     error         // non-nil: close the connection
	// raw is a SASL token answered without a Kafka header (after
	// SaslHandshake v0), sent instead of resp when rawReply is set.
	raw      []byte
	rawReply bool
	// closeAfter closes the connection once the answer is written
	// (failed authentication).
	closeAfter bool
}

func newConn(a *Agent, l *listener, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(a.ctx)
	c := &conn{
		a:          a,
		nc:         nc,
		l:          l,
		remote:     nc.RemoteAddr().String(),
		ctx:        ctx,
		cancel:     cancel,
		pending:    make(chan *inflight, maxInFlight),
		writerDone: make(chan struct{}),
		principal:  auth.Anonymous,
	}
	c.host = clientHost(c.remote)
	c.authenticated = !l.cfg.SASL()
	if l.tls != nil {
		c.nc = tls.Server(nc, l.tls)
	}
	return c
}

// abort closes the connection at once: pending answers are dropped and
// running handlers see a cancelled context.
func (c *conn) abort() {
	c.cancel()
	_ = c.nc.Close()
}

// stopReading makes the reader stop after the frame it is reading; answers
// to requests already read are still written.
func (c *conn) stopReading() {
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
	_ = c.nc.SetReadDeadline(time.Now())
}

// producerSource returns the connection's ingest.Source, made on first
// use.
func (c *conn) producerSource() *ingest.Source {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.producer == nil {
		c.producer = c.a.ingest.NewSource()
	}
	return c.producer
}

// closeProducer ends the connection's Source, once every handler is done.
func (c *conn) closeProducer() {
	c.mu.Lock()
	src := c.producer
	c.mu.Unlock()
	src.Close()
}

func (c *conn) isDraining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

// finish waits for the writer to flush every answer and close the socket,
// or aborts the connection when ctx ends first.
func (c *conn) finish(ctx context.Context) {
	select {
	case <-c.writerDone:
	case <-ctx.Done():
		c.abort()
	}
}

// errClose marks protocol violations that Kafka answers by closing the
// connection; the reader logs them once.
var errClose = errors.New("closing connection")

// readLoop is the connection's reader; see conn.
func (c *conn) readLoop() {
	defer c.a.loops.Done()
	defer close(c.pending)
	if !c.handshakeTLS() {
		return
	}
	var (
		size [4]byte
		prev *inflight
	)
	for {
		if c.a.cfg.IdleTimeout > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.a.cfg.IdleTimeout))
		}
		if m, err := io.ReadFull(c.nc, size[:]); err != nil {
			if m == 0 && errors.Is(err, os.ErrDeadlineExceeded) && !c.isDraining() && c.outstanding.Load() > 0 {
				continue // not idle: an answer is still on its way
			}
			if m == 0 && errors.Is(err, os.ErrDeadlineExceeded) && !c.isDraining() {
				c.a.metrics.idleClosed.Inc()
				c.a.logger.Debug("closing idle connection", "client", c.remote, "idle", c.a.cfg.IdleTimeout)
			}
			c.readEnded(err)
			return
		}
		authed, raw := c.authState()
		limit := c.a.cfg.MaxRequestBytes
		if !authed {
			limit = c.a.cfg.MaxUnauthenticatedBytes
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if n < 0 || n > limit {
			// Kafka's InvalidReceiveException: the size is never
			// allocated, the connection is closed.
			c.a.logger.Warn("closing connection: request size out of range",
				"client", c.remote, "size", n, "max", limit, "authenticated", authed)
			c.abort()
			return
		}
		// Wait for room before reading the frame, so a full agent
		// slows its producers by TCP (see Config.QueuedRequestBytes).
		queued := c.a.queuedWeight(n)
		if queued > 0 && !c.a.queued.TryAcquire(queued) {
			if c.a.onQueueWait != nil {
				c.a.onQueueWait()
			}
			if err := c.a.queued.Acquire(c.ctx, queued); err != nil {
				return // the connection is closing
			}
		}
		frame, err := readFrame(c.nc, int(n))
		if err != nil {
			c.a.queued.Release(queued)
			c.readEnded(err)
			return
		}
		if raw {
			// After SaslHandshake v0 the frame is a bare SASL token.
			c.a.queued.Release(queued)
			inf := c.rawToken(frame)
			c.outstanding.Add(1)
			select {
			case c.pending <- inf:
			case <-c.ctx.Done():
				return
			}
			continue
		}
		inf, start, err := c.decode(frame, queued)
		if err == nil {
			err = c.admit(inf.key)
		}
		if err != nil {
			c.a.queued.Release(queued)
			c.abort()
			return
		}
		// Requests start in arrival order, each after the previous one
		// released (see request in apis.go).
		if prev != nil {
			select {
			case <-prev.release:
			case <-c.ctx.Done():
				return
			}
		}
		c.outstanding.Add(1)
		select {
		case c.pending <- inf:
		case <-c.ctx.Done():
			return
		}
		if start != nil {
			c.a.handlers.Add(1)
			go start()
		}
		prev = inf
		if !authed || isSASLKey(inf.key) {
			// The answer may change what the next frame is allowed to
			// be (or whether it is a Kafka request at all): read it
			// only once this one is handled.
			select {
			case <-inf.done:
			case <-c.ctx.Done():
				return
			}
		}
	}
}

// handshakeTLS runs the TLS handshake of a TLS listener's connection,
// within tlsHandshakeTimeout, and takes the principal from the client
// certificate on an SSL listener. It reports whether to go on; a failed
// handshake (a bad or missing client certificate, not TLS at all) closes
// the connection.
func (c *conn) handshakeTLS() bool {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(c.ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.a.metrics.authFailures.WithLabelValues("TLS").Inc()
		c.a.logger.Warn("closing connection: tls handshake failed", "client", c.remote, "listener", c.l.cfg.Name, "err", err)
		c.abort()
		return false
	}
	if c.l.cfg.Protocol == SSL {
		p := tlsconf.Principal(tc.ConnectionState())
		c.authMu.Lock()
		c.principal = p
		c.authMu.Unlock()
	}
	return true
}

// tlsHandshakeTimeout bounds a TLS handshake: a client that connects and
// says nothing holds no goroutine for longer.
const tlsHandshakeTimeout = 10 * time.Second

// unqueuedFrame is the largest frame not counted against
// Config.QueuedRequestBytes: control requests never wait behind produce
// data.
const unqueuedFrame = 16 << 10

// queuedWeight is what a frame of n bytes counts against the queued
// request bytes: nothing when small, never more than the whole bound.
func (a *Agent) queuedWeight(n int32) int64 {
	if n < unqueuedFrame {
		return 0
	}
	return min(int64(n), a.cfg.QueuedRequestBytes)
}

// eagerFrame is the largest frame allocated whole before its bytes
// arrive; a larger one is allocated whole once its first eagerFrame bytes
// have arrived, so a client announcing a big frame and sending nothing
// cannot make the agent hold the memory.
const eagerFrame = 1 << 20

// readFrame reads an n-byte frame. A frame over eagerFrame is read into
// an eagerFrame buffer first and moved, once, into one of its full size
// when that buffer is full: one copy of 1 MiB instead of a doubling
// series of copies of the whole frame (which, for produce frames of
// several MiB, cost 15% of the agent's CPU at saturation). The frame's
// size is already charged to the queued request bytes before it is read.
func readFrame(r io.Reader, n int) ([]byte, error) {
	first := min(n, eagerFrame)
	frame := make([]byte, first)
	if _, err := io.ReadFull(r, frame); err != nil {
		return nil, err
	}
	if n == first {
		return frame, nil
	}
	whole := make([]byte, n)
	copy(whole, frame)
	if _, err := io.ReadFull(r, whole[first:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return whole, nil
}

// readEnded classifies the error that ended the reader. During Shutdown
// the writer still flushes what is pending; otherwise the client is gone
// (or sent half a frame), so, as Kafka does, the connection closes and
// running handlers see their context end.
func (c *conn) readEnded(err error) {
	if c.isDraining() {
		return
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded):
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.a.logger.Debug("client closed mid-frame", "client", c.remote)
	default:
		c.a.logger.Debug("connection read failed", "client", c.remote, "err", err)
	}
	c.abort()
}

// decode turns one frame into the request's place in the answer order and
// the function that runs its handler (nil when the answer is already
// known), or returns errClose when Kafka would close the connection.
//
// queued is the frame's share of the queued request bytes; the request
// returns it when released. On an error the caller returns it.
func (c *conn) decode(frame []byte, queued int64) (inf *inflight, start func(), err error) {
	defer func() {
		if p := recover(); p != nil {
			c.a.logger.Error("panic decoding request", "client", c.remote, "panic", p, "stack", string(debug.Stack()))
			inf, start, err = nil, nil, errClose
		}
	}()
	h, api, kreq, err := parseRequest(frame)
	if h.key == kmsg.ApiVersions.Int16() && errors.Is(err, errUnsupportedVersion) {
		// KIP-511: the client retries with a version it finds in this
		// v0 answer. Routine for clients newer than the agent: Debug.
		c.a.metrics.countError(h.key, kerr.UnsupportedVersion.Code)
		c.a.logger.Debug("request failed", "client", c.remote, "client_id", h.clientID,
			"api", "ApiVersions", "api_version", h.version, "error", kerr.UnsupportedVersion.Message)
		inf = &inflight{corr: h.corr, key: h.key, done: make(chan struct{}), release: make(chan struct{})}
		inf.resp = unsupportedApiVersions()
		close(inf.done)
		close(inf.release)
		c.a.queued.Release(queued)
		return inf, nil, nil
	}
	if err != nil {
		c.a.logger.Warn("closing connection", "client", c.remote, "client_id", h.clientID,
			"api_key", h.key, "api_version", h.version, "err", err)
		return nil, nil, errClose
	}
	inf = &inflight{
		corr:    h.corr,
		key:     h.key,
		flex:    kreq.IsFlexible() && h.key != kmsg.ApiVersions.Int16(),
		done:    make(chan struct{}),
		release: make(chan struct{}),
	}
	var once sync.Once
	r := &request{
		inf:      inf,
		conn:     c,
		version:  h.version,
		clientID: h.clientID,
		kreq:     kreq,
		release: func() {
			once.Do(func() {
				close(inf.release)
				c.a.queued.Release(queued)
			})
		},
	}
	r.leaseTerm, r.leaseHeld = c.a.members.lease()
	return inf, func() { c.run(api, inf, r) }, nil
}

// Reasons parseRequest gives for closing a connection.
var (
	errUnknownAPI         = errors.New("unsupported api key")
	errUnsupportedVersion = errors.New("unsupported api version")
)

// parseRequest decodes a frame: header, then the body with the registered
// API's request type. It never panics on any input (FuzzParseRequest).
// For an ApiVersions request of an unknown version it returns the header
// and errUnsupportedVersion without decoding the body, whose layout is
// unknown.
func parseRequest(frame []byte) (requestHeader, *api, kmsg.Request, error) {
	h, body, err := parseHeader(frame)
	if err != nil {
		return h, nil, nil, fmt.Errorf("malformed request header: %w", err)
	}
	api := lookupAPI(h.key)
	if api == nil {
		return h, nil, nil, errUnknownAPI
	}
	if h.version < api.min || h.version > api.max {
		return h, api, nil, fmt.Errorf("%w: v%d, supported v%d-v%d", errUnsupportedVersion, h.version, api.min, api.max)
	}
	kreq := kmsg.RequestForKey(h.key)
	kreq.SetVersion(h.version)
	if kreq.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			return h, api, nil, fmt.Errorf("malformed request header tags: %w", err)
		}
	}
	if err := kreq.ReadFrom(body); err != nil {
		return h, api, nil, fmt.Errorf("malformed request body: %w", err)
	}
	return h, api, kreq, nil
}

// run is one request's handler goroutine.
func (c *conn) run(api *api, inf *inflight, r *request) {
	defer c.a.handlers.Done()
	defer close(inf.done)
	defer r.release()
	name := kmsg.NameForKey(api.key)
	begin := time.Now()
	defer func() {
		c.a.metrics.observe(name, time.Since(begin))
		if p := recover(); p != nil {
			c.a.logger.Error("panic in request handler; closing connection",
				"client", c.remote, "client_id", r.clientID, "api", name,
				"panic", p, "stack", string(debug.Stack()))
			inf.resp, inf.err = nil, fmt.Errorf("%s handler panicked: %v", name, p)
		}
	}()
	ctx := group.WithRequestLease(c.ctx, r.leaseTerm, r.leaseHeld)
	resp, err := api.handle(c.a, ctx, r)
	if err != nil {
		inf.err = err
		return
	}
	if resp != nil {
		resp.SetVersion(r.version)
	}
	inf.resp = resp
}

// writeLoop is the connection's writer; see conn.
func (c *conn) writeLoop() {
	defer c.a.loops.Done()
	// Before the loop counts as done, so Shutdown waits for it.
	defer c.a.shareConnClosed(c)
	defer close(c.writerDone)
	defer c.a.metrics.connections.Dec()
	defer c.abort()
	defer c.closeProducer() // every handler has finished: pending is drained
	var buf []byte
	broken := false
	for inf := range c.pending {
		<-inf.done // handlers always finish: their context ends with the connection
		c.outstanding.Add(-1)
		if broken {
			continue
		}
		if inf.err != nil {
			c.a.logger.Warn("closing connection", "client", c.remote,
				"api", kmsg.NameForKey(inf.key), "err", inf.err)
			broken = true
			c.abort()
			continue
		}
		if inf.rawReply {
			buf = binary.BigEndian.AppendUint32(buf[:0], uint32(len(inf.raw)))
			buf = append(buf, inf.raw...)
			if _, err := c.nc.Write(buf); err != nil {
				broken = true
				c.abort()
			}
			continue
		}
		if inf.resp == nil {
			continue
		}
		if n := 9 + sizeHint(inf.resp); n > cap(buf) {
			buf = largeBuffer(n)
		}
		buf = append(buf[:0], 0, 0, 0, 0, 0, 0, 0, 0) // size, correlation id
		if inf.flex {
			buf = append(buf, 0) // response header v1: no tagged fields
		}
		buf = inf.resp.AppendTo(buf)
		binary.BigEndian.PutUint32(buf[0:], uint32(len(buf)-4))
		binary.BigEndian.PutUint32(buf[4:], uint32(inf.corr))
		if _, err := c.nc.Write(buf); err != nil {
			c.a.logger.Debug("connection write failed", "client", c.remote, "err", err)
			broken = true
			c.abort()
		} else if inf.closeAfter {
			broken = true
			c.abort()
		}
		if cap(buf) > 1<<20 { // do not pin one large fetch answer
			putLargeBuffer(buf)
			buf = nil
		}
	}
}

// largeBuffers holds a few response buffers between large fetch answers,
// shared by all connections: a fresh multi-megabyte buffer for every
// answer cost about as much CPU in zeroing as the rest of a replaying
// consumer's fetch path. At most cap(largeBuffers) buffers of at most
// maxLargeBuffer bytes are kept.
var largeBuffers = make(chan []byte, 4)

const maxLargeBuffer = 16 << 20

// largeBuffer returns an empty buffer of at least n bytes' capacity.
func largeBuffer(n int) []byte {
	select {
	case b := <-largeBuffers:
		if cap(b) >= n {
			return b[:0]
		}
	default:
	}
	return slices.Grow([]byte(nil), n+n/4) // room for the next, larger answer
}

// putLargeBuffer keeps b for a later answer when there is room.
func putLargeBuffer(b []byte) {
	if cap(b) > maxLargeBuffer {
		return
	}
	select {
	case largeBuffers <- b:
	default:
	}
}

// sizeHint guesses a response's encoded size (0: small), so a large fetch
// answer is encoded into one allocation instead of a doubling series of
// copies of its record bytes.
func sizeHint(resp kmsg.Response) int {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 0
	}
	n := 64
	for _, t := range f.Topics {
		n += 64 + len(t.Topic)
		for _, p := range t.Partitions {
			n += 64 + len(p.RecordBatches) + 32*len(p.AbortedTransactions)
		}
	}
	return n
}

// requestHeader is a Kafka request header (v1, or v2 with tagged fields).
type requestHeader struct {
	key, version int16
	corr         int32
	clientID     string
}

var errShortHeader = errors.New("request header truncated")

// parseHeader reads key, version, correlation id and client id; the
// tagged fields of header v2 are skipped by the caller, which knows from
// the API version whether they are present.
func parseHeader(b []byte) (requestHeader, []byte, error) {
	var h requestHeader
	if len(b) < 10 {
		return h, nil, errShortHeader
	}
	h.key = int16(binary.BigEndian.Uint16(b[0:]))
	h.version = int16(binary.BigEndian.Uint16(b[2:]))
	h.corr = int32(binary.BigEndian.Uint32(b[4:]))
	n := int16(binary.BigEndian.Uint16(b[8:]))
	b = b[10:]
	if n > 0 {
		if len(b) < int(n) {
			return h, nil, errShortHeader
		}
		h.clientID = string(b[:n])
		b = b[n:]
	} else if n < -1 {
		return h, nil, fmt.Errorf("client id length %d", n)
	}
	return h, b, nil
}

// skipTags skips a tagged-field section.
func skipTags(b []byte) ([]byte, error) {
	count, b, err := uvarint(b)
	if err != nil {
		return nil, err
	}
	for ; count > 0; count-- {
		if _, b, err = uvarint(b); err != nil {
			return nil, err
		}
		var size uint64
		if size, b, err = uvarint(b); err != nil {
			return nil, err
		}
		if uint64(len(b)) < size {
			return nil, errShortHeader
		}
		b = b[size:]
	}
	return b, nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 || v > 1<<31 {
		return 0, nil, errShortHeader
	}
	return v, b[n:], nil
}

// logError counts a request-level error code and logs it once; handlers
// call it for every error they answer that is worth an operator's look.
func (r *request) logError(code int16, detail error, args ...any) {
	name := kmsg.NameForKey(r.kreq.Key())
	r.conn.a.metrics.countError(r.kreq.Key(), code)
	attrs := append([]any{
		"client", r.conn.remote, "client_id", r.clientID, "api", name,
		"error", codeName(code),
	}, args...)
	if detail != nil {
		attrs = append(attrs, "err", detail)
	}
	r.conn.a.logger.Log(r.conn.ctx, slog.LevelWarn, "request failed", attrs...)
}
