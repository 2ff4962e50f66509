package main

import (
	"io"
	"strings"
	"testing"

	"github.com/siltdata/silt/auth/tlsconf/tlstest"
	"github.com/siltdata/silt/tests/bench/loadgen"
)

func TestBenchPayloadFlag(t *testing.T) {
	o, err := parseBenchOptions(nil, io.Discard, strings.NewReader(""))
	if err != nil || o.load.Payload != loadgen.PayloadRandom {
		t.Fatalf("default: payload %q, %v; want %q", o.load.Payload, err, loadgen.PayloadRandom)
	}
	o, err = parseBenchOptions([]string{"--payload", "json"}, io.Discard, strings.NewReader(""))
	if err != nil || o.load.Payload != loadgen.PayloadJSON {
		t.Fatalf("--payload json: payload %q, %v", o.load.Payload, err)
	}
	if _, err := parseBenchOptions([]string{"--payload", "zeros"}, io.Discard, strings.NewReader("")); err == nil || !strings.Contains(err.Error(), "zeros") {
		t.Fatalf("--payload zeros: %v, want an error naming it", err)
	}
}

func TestBytesRatio(t *testing.T) {
	for _, c := range []struct {
		logical int64
		stored  float64
		want    string
	}{{1 << 30, 1 << 30, "1024 / 1024 = 1.000"}, {1 << 30, 1 << 28, "1024 / 256 = 0.250"}, {1 << 30, -1, "?"}, {0, 5, "?"}} {
		if got := bytesRatio(c.logical, c.stored); got != c.want {
			t.Errorf("bytesRatio(%d, %v) = %q, want %q", c.logical, c.stored, got, c.want)
		}
	}
}

func TestBenchSecurityFlags(t *testing.T) {
	ca := tlstest.NewCA(t, "bench")
	o, err := parseBenchOptions([]string{"--tls-ca-file", ca.File, "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-user", "alice", "--sasl-password-file", "-"},
		io.Discard, strings.NewReader("s3cret\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := o.load.Client; c.TLS == nil || c.TLS.RootCAs == nil || c.SASL == nil || c.String() != "TLS + SCRAM-SHA-512" {
		t.Fatalf("client %s (TLS %v), want TLS with the CA + SCRAM-SHA-512", c, c.TLS)
	}
	t.Setenv(benchPasswordEnv, "pw")
	if o, err = parseBenchOptions([]string{"--sasl-mechanism", "plain", "--sasl-user", "bob"}, io.Discard, strings.NewReader("")); err != nil || o.load.Client.String() != "SASL PLAIN" {
		t.Fatalf("PLAIN with the password from %s: %s, %v", benchPasswordEnv, o.load.Client, err)
	}
	if o, err = parseBenchOptions(nil, io.Discard, strings.NewReader("")); err != nil || !o.load.Client.Plaintext() {
		t.Fatalf("default: %s, %v; want plaintext", o.load.Client, err)
	}
	for _, bad := range [][]string{
		{"--sasl-mechanism", "GSSAPI", "--sasl-user", "u"},
		{"--sasl-mechanism", "PLAIN"}, // no user
		{"--sasl-user", "u"},          // no mechanism
		{"--tls-ca-file", "/nonexistent/ca.pem"},
	} {
		if _, err := parseBenchOptions(bad, io.Discard, strings.NewReader("")); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}
