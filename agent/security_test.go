package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"net"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	ksasl "github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/siltdata/silt/auth/sasl"
	"github.com/siltdata/silt/auth/sasl/jwttest"
	"github.com/siltdata/silt/auth/tlsconf"
	"github.com/siltdata/silt/auth/tlsconf/tlstest"
	"github.com/siltdata/silt/metastore"
)

// secureSetup is an agent with a PLAINTEXT listener (INTERNAL, advertised
// as internal.example:9092), a SASL_SSL listener with every mechanism, and
// an SSL listener requiring client certificates; alice's SCRAM
// credentials are in the store and tokens are signed by a JWKS file.
type secureSetup struct {
	*testAgent
	ca    *tlstest.CA
	token func(claims jwt.MapClaims) string
}

const alicePassword = "alice-secret"

func startSecure(t testing.TB, modify ...func(*Config)) *secureSetup {
	t.Helper()
	ca := tlstest.NewCA(t, "silt-test")
	server := ca.Server(t, "server")
	iss := jwttest.New(t)
	s := &secureSetup{ca: ca, token: func(c jwt.MapClaims) string { return iss.Sign(t, c) }}
	jwks := iss.JWKSFile
	s.testAgent = startAgent(t, append([]func(*Config){func(c *Config) {
		c.Listeners = []Listener{
			{Name: "INTERNAL", Addr: "127.0.0.1:0", Protocol: Plaintext, AdvertisedHost: "internal.example", AdvertisedPort: 9092},
			{Name: "EXTERNAL", Addr: "127.0.0.1:0", Protocol: SASLSSL},
			{Name: "CERTS", Addr: "127.0.0.1:0", Protocol: SSL},
		}
		c.TLS = tlsconf.Config{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: ca.File, ClientAuth: tlsconf.ClientAuthRequested}
		c.SASL.Mechanisms = []string{sasl.Plain, sasl.ScramSHA256, sasl.ScramSHA512, sasl.OAuthBearer}
		c.SASL.OAuth = sasl.DefaultOAuthConfig()
		c.SASL.OAuth.JWKSFile, c.SASL.OAuth.Issuer, c.SASL.OAuth.Audience = jwks, "https://issuer.test", "silt"
		c.FailedAuthDelay = 10 * time.Millisecond
		c.Ingest.FlushInterval = 5 * time.Millisecond
	}}, modify...)...)
	for _, mech := range []string{sasl.ScramSHA256, sasl.ScramSHA512} {
		c, err := sasl.NewScramCredential(mech, "alice", alicePassword, sasl.MinIterations)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.store.(metastore.Credentials).UpsertScramCredential(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *secureSetup) goodToken(sub string, ttl time.Duration) string {
	return s.token(jwt.MapClaims{"sub": sub, "iss": "https://issuer.test", "aud": "silt", "exp": time.Now().Add(ttl).Unix()})
}

// saslClient is a franz-go client on the EXTERNAL listener.
func (s *secureSetup) saslClient(t testing.TB, m ksasl.Mechanism, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(s.ListenerAddr("EXTERNAL")),
		kgo.DialTLSConfig(s.ca.ClientTLS(t, tlstest.Pair{})),
		kgo.SASL(m),
		kgo.RetryTimeout(5 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestSASLMechanismsOverTLS(t *testing.T) {
	s := startSecure(t)
	makeTopic(t, s.testAgent, "secure", 1)
	ctx := ctxTimeout(t)
	mechs := []ksasl.Mechanism{
		plain.Auth{User: "alice", Pass: alicePassword}.AsMechanism(),
		scram.Auth{User: "alice", Pass: alicePassword}.AsSha256Mechanism(),
		scram.Auth{User: "alice", Pass: alicePassword}.AsSha512Mechanism(),
		oauth.Auth{Token: s.goodToken("alice", time.Hour)}.AsMechanism(),
	}
	for i, m := range mechs {
		cl := s.saslClient(t, m, kgo.DefaultProduceTopic("secure"), kgo.ConsumeTopics("secure"),
			kgo.ConsumeResetOffset(kgo.NewOffset().At(int64(i))))
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(m.Name())}).FirstErr(); err != nil {
			t.Fatalf("%s produce: %v", m.Name(), err)
		}
		fs := cl.PollRecords(ctx, 1)
		if err := fs.Err0(); err != nil {
			t.Fatalf("%s consume: %v", m.Name(), err)
		}
		if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != m.Name() {
			t.Fatalf("%s consumed %v", m.Name(), recs)
		}
		// Metadata answers the addresses of the client's listener.
		md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if got := hostPort(md.Brokers[0].Host, md.Brokers[0].Port); got != s.ListenerAddr("EXTERNAL") {
			t.Fatalf("EXTERNAL metadata names %s, want %s", got, s.ListenerAddr("EXTERNAL"))
		}
	}

	// The PLAINTEXT listener's clients get its advertised address.
	c := dialRaw(t, s.ListenerAddr("INTERNAL"))
	md := c.roundTrip(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
	if len(md.Brokers) != 1 || md.Brokers[0].Host != "internal.example" || md.Brokers[0].Port != 9092 {
		t.Fatalf("INTERNAL metadata brokers %+v", md.Brokers)
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g"
	if r := c.roundTrip(fc).(*kmsg.FindCoordinatorResponse); r.Host != "internal.example" || r.Port != 9092 {
		t.Fatalf("INTERNAL coordinator %s:%d", r.Host, r.Port)
	}
}

// tlsRaw is a raw connection over TLS.
func (s *secureSetup) tlsRaw(t *testing.T, listener string, pair tlstest.Pair) (*rawConn, error) {
	t.Helper()
	return s.tlsRawConfig(t, listener, s.ca.ClientTLS(t, pair))
}

func (s *secureSetup) tlsRawConfig(t *testing.T, listener string, cfg *tls.Config) (*rawConn, error) {
	t.Helper()
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.ListenerAddr(listener), cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc}, nil
}

// authenticate runs SaslHandshake v1 and one SaslAuthenticate.
func authenticate(c *rawConn, mech string, token []byte) (*kmsg.SASLHandshakeResponse, *kmsg.SASLAuthenticateResponse) {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = mech
	hr := c.roundTrip(hs).(*kmsg.SASLHandshakeResponse)
	if hr.ErrorCode != 0 {
		return hr, nil
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.SetVersion(2)
	au.SASLAuthBytes = token
	return hr, c.roundTrip(au).(*kmsg.SASLAuthenticateResponse)
}

func TestAuthenticationFailuresCloseOnlyThatConnection(t *testing.T) {
	s := startSecure(t)
	makeTopic(t, s.testAgent, "t", 1)
	ctx := ctxTimeout(t)
	good := s.saslClient(t, scram.Auth{User: "alice", Pass: alicePassword}.AsSha256Mechanism(), kgo.DefaultProduceTopic("t"))
	if err := good.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	for name, token := range map[string][]byte{
		"wrong password": []byte("\x00alice\x00nope"),
		"unknown user":   []byte("\x00mallory\x00" + alicePassword),
	} {
		c, err := s.tlsRaw(t, "EXTERNAL", tlstest.Pair{})
		if err != nil {
			t.Fatal(err)
		}
		_, ar := authenticate(c, sasl.Plain, token)
		if ar == nil || ar.ErrorCode != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("%s: answer %+v, want SASL_AUTHENTICATION_FAILED", name, ar)
		}
		c.expectClosed()
	}
	expired := s.token(jwt.MapClaims{"sub": "alice", "iss": "https://issuer.test", "aud": "silt", "exp": time.Now().Add(-time.Hour).Unix()})
	c, err := s.tlsRaw(t, "EXTERNAL", tlstest.Pair{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ar := authenticate(c, sasl.OAuthBearer, []byte("n,,\x01auth=Bearer "+expired+"\x01\x01")); ar == nil || ar.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		t.Fatalf("expired token: %+v", ar)
	}
	c.expectClosed()

	// Real clients see Kafka's error.
	for _, m := range []ksasl.Mechanism{
		scram.Auth{User: "alice", Pass: "nope"}.AsSha512Mechanism(),
		scram.Auth{User: "mallory", Pass: "x"}.AsSha256Mechanism(),
		oauth.Auth{Token: expired}.AsMechanism(),
	} {
		bad := s.saslClient(t, m)
		if err := bad.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("%s with a bad credential: %v, want SASL_AUTHENTICATION_FAILED", m.Name(), err)
		}
	}

	// An unsupported mechanism is refused with the enabled list.
	c, err = s.tlsRaw(t, "EXTERNAL", tlstest.Pair{})
	if err != nil {
		t.Fatal(err)
	}
	if hr, _ := authenticate(c, "GSSAPI", nil); hr.ErrorCode != kerr.UnsupportedSaslMechanism.Code || len(hr.SupportedMechanisms) != 4 {
		t.Fatalf("GSSAPI: %+v", hr)
	}
	c.expectClosed()

	// A certificate from another CA is refused by the TLS handshake.
	// (The client presents it although the agent names its own CA as
	// acceptable, as kcat and Java clients do.)
	other := tlstest.NewCA(t, "other")
	cfg := s.ca.ClientTLS(t, other.Client(t, "mallory", pkix.Name{CommonName: "mallory"}))
	foreign := cfg.Certificates[0]
	cfg.Certificates = nil
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil }
	if c, err := s.tlsRawConfig(t, "CERTS", cfg); err == nil {
		c.apiVersionsFails()
	}

	if err := good.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("the good client was harmed: %v", err)
	}
}

// apiVersionsFails asserts the connection is unusable (a TLS 1.3 server
// refuses the client certificate after the client's handshake ended).
func (c *rawConn) apiVersionsFails() {
	c.t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw-test"))
	if _, err := c.nc.Write(f.AppendRequest(nil, req, 1)); err != nil {
		return
	}
	if _, _, err := c.readFrame(); err == nil {
		c.t.Fatal("a connection with a foreign client certificate was answered")
	}
}

func TestUnauthenticatedConnections(t *testing.T) {
	s := startSecure(t, func(c *Config) { c.MaxUnauthenticatedBytes = 4 << 10 })
	// Any request other than ApiVersions and SaslHandshake before
	// authentication closes the connection.
	c, err := s.tlsRaw(t, "EXTERNAL", tlstest.Pair{})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.apiVersions(1); r.ErrorCode != 0 {
		t.Fatal(r.ErrorCode)
	}
	c.send(kmsg.NewPtrMetadataRequest(), 2)
	c.expectClosed()

	// A large frame before authentication: closed without reading it.
	c, err = s.tlsRaw(t, "EXTERNAL", tlstest.Pair{})
	if err != nil {
		t.Fatal(err)
	}
	c.write([]byte{0, 1, 0, 0}) // 64 KiB announced
	c.expectClosed()

	// SaslAuthenticate without a handshake.
	c, err = s.tlsRaw(t, "EXTERNAL", tlstest.Pair{})
	if err != nil {
		t.Fatal(err)
	}
	c.send(kmsg.NewPtrSASLAuthenticateRequest(), 3)
	c.expectClosed()

	// On the SSL listener a client certificate is the principal; without
	// one the client is anonymous, and may use every API.
	alice := s.ca.Client(t, "alice", pkix.Name{CommonName: "alice"})
	c, err = s.tlsRaw(t, "CERTS", alice)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.apiVersions(4); r.ErrorCode != 0 {
		t.Fatal(r.ErrorCode)
	}
	s.mu.Lock()
	var principal string
	for cc := range s.conns {
		if cc.l.cfg.Name == "CERTS" {
			principal, _ = cc.principalAndHost()
		}
	}
	s.mu.Unlock()
	if principal != "User:CN=alice" {
		t.Fatalf("certificate principal %q", principal)
	}
}

// TestSASLHandshakeV0 drives the legacy framing: after SaslHandshake v0
// the tokens are bare frames (sarama's default).
func TestSASLHandshakeV0(t *testing.T) {
	s := startSecure(t)
	for _, pass := range []string{alicePassword, "wrong"} {
		c, err := s.tlsRaw(t, "EXTERNAL", tlstest.Pair{})
		if err != nil {
			t.Fatal(err)
		}
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.SetVersion(0)
		hs.Mechanism = sasl.Plain
		if r := c.roundTrip(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
			t.Fatal(r.ErrorCode)
		}
		tok := []byte("\x00alice\x00" + pass)
		c.write(append([]byte{0, 0, 0, byte(len(tok))}, tok...))
		if pass != alicePassword {
			c.expectClosed()
			continue
		}
		var size [4]byte
		if _, err := c.nc.Read(size[:]); err != nil || size != [4]byte{} {
			t.Fatalf("v0 PLAIN reply %v %v, want an empty frame", size, err)
		}
		if r := c.roundTrip(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse); len(r.Brokers) != 1 {
			t.Fatalf("after v0 authentication: %+v", r)
		}
	}
}

// TestReauthentication: with a session lifetime, franz-go re-authenticates
// on the same connection (KIP-368) and keeps working past it; a client
// that does not is closed at its next request.
func TestReauthentication(t *testing.T) {
	s := startSecure(t, func(c *Config) { c.ReauthAfter = 500 * time.Millisecond })
	makeTopic(t, s.testAgent, "t", 1)
	ctx := ctxTimeout(t)
	cl := s.saslClient(t, scram.Auth{User: "alice", Pass: alicePassword}.AsSha256Mechanism(), kgo.DefaultProduceTopic("t"))
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}

	c, err := s.tlsRaw(t, "EXTERNAL", tlstest.Pair{})
	if err != nil {
		t.Fatal(err)
	}
	_, ar := authenticate(c, sasl.Plain, []byte("\x00alice\x00"+alicePassword))
	if ar == nil || ar.ErrorCode != 0 || ar.SessionLifetimeMillis != 500 {
		t.Fatalf("authenticate: %+v", ar)
	}
	md := c.roundTrip(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
	if len(md.Brokers) == 0 {
		t.Fatal("no brokers")
	}
	expired := time.NewTimer(600 * time.Millisecond)
	<-expired.C
	c.send(kmsg.NewPtrMetadataRequest(), 9)
	c.expectClosed()
}

func TestConnectionLimits(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.MaxConnectionsPerIP = 2 })
	c1, c2 := dialRaw(t, a.Addr()), dialRaw(t, a.Addr())
	c1.apiVersions(1)
	c2.apiVersions(1)
	c3 := dialRaw(t, a.Addr())
	c3.send(kmsg.NewPtrApiVersionsRequest(), 1)
	c3.expectClosed()
	c1.nc.Close()
	// The slot is freed once the agent saw the close.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c4 := dialRaw(t, a.Addr())
		c4.send(kmsg.NewPtrApiVersionsRequest(), 1)
		if _, _, err := c4.readFrame(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection's slot was not freed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIdleConnectionsClosed opens 10,000 idle connections and checks that
// the idle timeout closes them all and the agent's heap returns to its
// baseline.
func TestIdleConnectionsClosed(t *testing.T) {
	n := 10000
	// Client and agent ends are in this process: two descriptors each.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if room := int(lim.Cur) - 1000; 2*n > room {
		n = room / 2
		t.Logf("descriptor limit %d: %d connections", lim.Cur, n)
	}
	const idle = 10 * time.Second
	a := startAgent(t, func(c *Config) { c.IdleTimeout = idle })
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// The runtime keeps the descriptors of exited goroutines for reuse
	// and never frees them: let it have them for two goroutines per
	// connection before the baseline, so what is measured is the agent.
	warm := make(chan struct{})
	var wg sync.WaitGroup
	for range 2*n + 100 {
		wg.Go(func() { <-warm })
	}
	close(warm)
	wg.Wait()
	baseline := heapInUse()
	start := time.Now()
	for range n {
		nc, err := net.DialTimeout("tcp", a.Addr(), 5*time.Second)
		if err != nil {
			t.Fatalf("opened %d connections: %v", len(conns), err)
		}
		conns = append(conns, nc)
	}
	waitWithin(t, idle, "all connections registered", func() bool { return a.openConns() == n })
	if time.Since(start) >= idle {
		t.Fatalf("opening %d connections took %s, longer than the idle timeout", n, time.Since(start))
	}
	grown := heapInUse()
	waitWithin(t, 3*idle, "idle connections closed", func() bool { return a.openConns() == 0 })
	// The clients see their connections closed.
	for _, c := range conns[:100] {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("an idle connection is still answered")
		}
	}
	// The client ends live in this process too: release them before
	// measuring the agent.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	var after uint64
	waitWithin(t, 10*time.Second, "memory back to baseline", func() bool {
		after = heapInUse()
		return after < baseline+(grown-baseline)/10+4<<20
	})
	t.Logf("heap in use: baseline %d KiB, with %d connections %d KiB, after %d KiB", baseline>>10, n, grown>>10, after>>10)
	if grown-baseline < 10<<20 {
		t.Fatalf("%d connections grew the heap by only %d bytes: the test measures nothing", n, grown-baseline)
	}
}

func (a *testAgent) openConns() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.conns)
}

// waitWithin polls cond (it observes the agent from outside, where no
// event can be waited on) until it holds or the limit passes.
func waitWithin(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
