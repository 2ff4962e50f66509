package bench

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"testing"

	"github.com/siltdata/silt/auth/tlsconf/tlstest"
	"github.com/siltdata/silt/tests/bench/loadgen"
)

// secureListener is what the TLS + SCRAM phase runs with: the agent's
// flags for one SASL_SSL listener and the load generator's client
// options for it.
type secureListener struct {
	flags  []string
	client loadgen.ClientOpts
}

// newSecureListener makes a throwaway CA and server certificate and a
// SCRAM user in the metastore (through `silt user create`, as an
// operator would), and returns the flags and client options of a
// SASL_SSL listener with SCRAM-SHA-512. The agent checks no ACLs: the
// phase measures TLS and authentication, not authorization.
func newSecureListener(t *testing.T, bin, metastoreURL string) *secureListener {
	ca := tlstest.NewCA(t, "silt-bench")
	srv := ca.Server(t, "agent")
	var pw [16]byte
	_, _ = rand.Read(pw[:])
	password := hex.EncodeToString(pw[:])
	const user = "bench"
	cmd := exec.CommandContext(t.Context(), bin, "user", "create", "--metastore", metastoreURL, "--user", user,
		"--mechanisms", loadgen.MechSCRAMSHA512, "--password-file", "-")
	cmd.Stdin = bytes.NewBufferString(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("silt user create: %v: %s", err, out)
	}
	client, err := loadgen.NewClientOpts(true, ca.File, loadgen.MechSCRAMSHA512, user, password)
	if err != nil {
		t.Fatal(err)
	}
	return &secureListener{
		flags: []string{"--listeners", "SASL_SSL://127.0.0.1:0", "--tls-cert-file", srv.CertFile, "--tls-key-file", srv.KeyFile,
			"--sasl-mechanisms", loadgen.MechSCRAMSHA512},
		client: client,
	}
}
