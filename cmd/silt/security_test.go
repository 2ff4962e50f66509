package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siltdata/silt/agent"
	"github.com/siltdata/silt/auth/sasl"
	"github.com/siltdata/silt/metastore/sqlite"
)

// TestSecurityFlags maps the security flags (and their variables) onto
// the agent configuration.
func TestSecurityFlags(t *testing.T) {
	e := env(map[string]string{
		"SILT_SUPER_USERS":   "User:admin; User:ops",
		"SILT_AUTHORIZER":    "true",
		"SILT_IDLE_TIMEOUT":  "30s",
		"SILT_TLS_KEY_FILE":  "/k.pem",
		"SILT_TLS_CERT_FILE": "/c.pem",
	})
	o, err := parseOptions("dev", []string{
		"--listeners", "INTERNAL://127.0.0.1:0,EXTERNAL://127.0.0.1:0",
		"--listener-security-protocol-map", "INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL",
		"--advertised-listeners", "EXTERNAL://kafka.example.com:9093",
		"--advertised-addr", "10.0.0.5:9092",
		"--sasl-mechanisms", "scram-sha-512,PLAIN",
		"--max-connections-per-ip", "50",
	}, e, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := agentConfig(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	want := []agent.Listener{
		{Name: "INTERNAL", Addr: "127.0.0.1:0", Protocol: agent.Plaintext, AdvertisedHost: "10.0.0.5", AdvertisedPort: 9092},
		{Name: "EXTERNAL", Addr: "127.0.0.1:0", Protocol: agent.SASLSSL, AdvertisedHost: "kafka.example.com", AdvertisedPort: 9093},
	}
	if len(cfg.Listeners) != 2 || cfg.Listeners[0] != want[0] || cfg.Listeners[1] != want[1] {
		t.Fatalf("listeners %+v", cfg.Listeners)
	}
	if strings.Join(cfg.SASL.Mechanisms, ",") != "SCRAM-SHA-512,PLAIN" || !cfg.Authorize ||
		strings.Join(cfg.ACL.SuperUsers, ",") != "User:admin,User:ops" || cfg.IdleTimeout != 30*time.Second ||
		cfg.MaxConnectionsPerIP != 50 || cfg.TLS.CertFile != "/c.pem" || cfg.TLS.KeyFile != "/k.pem" {
		t.Fatalf("config %+v", cfg)
	}

	// Without --listeners, the advertised listeners make no sense.
	if _, err := parseOptions("dev", []string{"--advertised-listeners", "A://h:1"}, env(nil), &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "--listeners") {
		t.Fatalf("--advertised-listeners alone: %v", err)
	}
	// A TLS listener without its files fails before anything starts.
	o, err = parseOptions("dev", []string{"--listeners", "SSL://127.0.0.1:0"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agentConfig(context.Background(), o); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("SSL without files: %v", err)
	}
}

// TestUserCommand creates, lists and deletes a SCRAM user in a SQLite
// metastore, then checks the stored credential logs in.
func TestUserCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m.db")
	run := func(stdin string, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := runUser(args, strings.NewReader(stdin), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := run("pw\n", "create", "--metastore", db, "--user", "bob", "--password-file", "-", "--iterations", "4096"); code != exitOK {
		t.Fatalf("create: %d %s", code, out)
	}
	if code, out := run("", "list", "--metastore", db); code != exitOK ||
		!strings.Contains(out, "bob\tSCRAM-SHA-256\titerations=4096") || !strings.Contains(out, "bob\tSCRAM-SHA-512\titerations=4096") {
		t.Fatalf("list: %d %q", code, out)
	}
	s, err := sqlite.Open(t.Context(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sasl.New(t.Context(), sasl.Config{Mechanisms: []string{sasl.Plain}}, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	sess, _ := srv.Start(sasl.Plain)
	if _, done, err := sess.Step(t.Context(), []byte("\x00bob\x00pw")); err != nil || !done {
		t.Fatalf("bob logs in with the password given on stdin: %v", err)
	}
	s.Close()
	if code, out := run("", "create", "--metastore", db, "--user", "bob"); code != exitUsage || !strings.Contains(out, "SILT_USER_PASSWORD") {
		t.Fatalf("create without a password: %d %s", code, out)
	}
	if code, out := run("", "create", "--metastore", db, "--user", "bob", "--mechanisms", "MD5"); code != exitUsage {
		t.Fatalf("unknown mechanism: %d %s", code, out)
	}
	if code, out := run("", "delete", "--metastore", db, "--user", "bob"); code != exitOK {
		t.Fatalf("delete: %d %s", code, out)
	}
	if code, _ := run("", "delete", "--metastore", db, "--user", "bob"); code != exitFailed {
		t.Fatalf("deleting a missing user: %d", code)
	}
	if code, _ := run(""); code != exitUsage {
		t.Fatalf("no subcommand: %d", code)
	}
	_ = os.Remove(db)
}
