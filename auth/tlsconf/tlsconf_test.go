package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/siltdata/silt/auth"
	"github.com/siltdata/silt/auth/tlsconf"
	"github.com/siltdata/silt/auth/tlsconf/tlstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// handshake connects a client to a server using cfg over loopback TCP and
// returns both sides' states (or the first error). The client reads once
// after its handshake, so a server that rejects it (TLS 1.3 checks the
// client certificate after the client finished) is seen.
func handshake(t *testing.T, server *tls.Config, client *tls.Config) (tls.ConnectionState, tls.ConnectionState, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		st  tls.ConnectionState
		err error
	}
	res := make(chan result, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		defer nc.Close()
		srv := tls.Server(nc, server)
		err = srv.HandshakeContext(t.Context())
		if err == nil {
			_, err = srv.Write([]byte{1})
		}
		res <- result{srv.ConnectionState(), err}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cl := tls.Client(nc, client)
	_ = cl.SetDeadline(time.Now().Add(10 * time.Second))
	cerr := cl.HandshakeContext(t.Context())
	if cerr == nil {
		_, cerr = cl.Read(make([]byte, 1))
	}
	r := <-res
	if cerr == nil {
		cerr = r.err
	}
	return r.st, cl.ConnectionState(), cerr
}

func TestReloadAndPrincipal(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	server := ca.Server(t, "server")
	files, err := tlsconf.Load(tlsconf.Config{CertFile: server.CertFile, KeyFile: server.KeyFile,
		ClientCAFile: ca.File, ClientAuth: tlsconf.ClientAuthRequested, CheckInterval: time.Nanosecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Without a client certificate (requested, not required): anonymous.
	ss, cs, err := handshake(t, files.ServerConfig(), ca.ClientTLS(t, tlstest.Pair{}))
	if err != nil {
		t.Fatal(err)
	}
	if p := tlsconf.Principal(ss); p != auth.Anonymous {
		t.Fatalf("principal without a client certificate: %q", p)
	}
	first := cs.PeerCertificates[0].SerialNumber

	// With one: named by its subject.
	client := ca.Client(t, "alice", pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"eng"}})
	ss, _, err = handshake(t, files.ServerConfig(), ca.ClientTLS(t, client))
	if err != nil {
		t.Fatal(err)
	}
	if p := tlsconf.Principal(ss); p != "User:CN=alice,OU=eng" {
		t.Fatalf("principal %q", p)
	}

	// A renewed certificate is served on the next handshake, without a
	// restart.
	renewed := ca.Server(t, "server")
	if renewed.CertFile != server.CertFile {
		t.Fatal("renewal wrote other files")
	}
	_, cs, err = handshake(t, files.ServerConfig(), ca.ClientTLS(t, tlstest.Pair{}))
	if err != nil {
		t.Fatal(err)
	}
	if cs.PeerCertificates[0].SerialNumber.Cmp(first) == 0 || files.Reloads() != 1 {
		t.Fatalf("certificate not reloaded (reloads %d)", files.Reloads())
	}
	// A broken file keeps the last good certificate.
	if err := os.WriteFile(server.KeyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := handshake(t, files.ServerConfig(), ca.ClientTLS(t, tlstest.Pair{})); err != nil {
		t.Fatalf("handshake after a broken key file: %v", err)
	}
}

func TestClientCertRequired(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	other := tlstest.NewCA(t, "other")
	server := ca.Server(t, "server")
	files, err := tlsconf.Load(tlsconf.Config{CertFile: server.CertFile, KeyFile: server.KeyFile,
		ClientCAFile: ca.File, ClientAuth: tlsconf.ClientAuthRequired}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := handshake(t, files.ServerConfig(), ca.ClientTLS(t, tlstest.Pair{})); err == nil {
		t.Fatal("handshake without a client certificate succeeded")
	}
	// A certificate from another CA: refused.
	bad := other.Client(t, "mallory", pkix.Name{CommonName: "mallory"})
	cfg := ca.ClientTLS(t, bad)
	if _, _, err := handshake(t, files.ServerConfig(), cfg); err == nil {
		t.Fatal("handshake with a foreign client certificate succeeded")
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []tlsconf.Config{
		{},
		{CertFile: "c", KeyFile: "k", ClientAuth: "required"},
		{CertFile: "c", KeyFile: "k", ClientAuth: "maybe", ClientCAFile: "x"},
	} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := tlsconf.Load(tlsconf.Config{CertFile: "/nonexistent", KeyFile: "/nonexistent"}, nil); err == nil {
		t.Error("missing files accepted")
	}
}
