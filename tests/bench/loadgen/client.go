package loadgen

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// ClientOpts are how every client of the load generator (producers,
// consumers, the admin calls) reaches the cluster: plaintext by default,
// TLS and SASL for a secured listener, so a TLS + SCRAM run measures the
// same load as a plaintext one.
type ClientOpts struct {
	// TLS, when not nil, connects over TLS with this configuration.
	TLS *tls.Config
	// SASL, when not nil, authenticates every connection with this
	// mechanism.
	SASL sasl.Mechanism
}

// SASL mechanisms NewClientOpts knows.
const (
	MechPlain       = "PLAIN"
	MechSCRAMSHA256 = "SCRAM-SHA-256"
	MechSCRAMSHA512 = "SCRAM-SHA-512"
)

// NewClientOpts builds ClientOpts from settings as flags give them:
// useTLS (implied by caFile) trusts caFile's certificates, or the
// system's when it is empty; a non-empty mechanism (PLAIN,
// SCRAM-SHA-256 or SCRAM-SHA-512) authenticates as user with password.
func NewClientOpts(useTLS bool, caFile, mechanism, user, password string) (ClientOpts, error) {
	var o ClientOpts
	if useTLS || caFile != "" {
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return ClientOpts{}, fmt.Errorf("TLS CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return ClientOpts{}, fmt.Errorf("TLS CA %s: no PEM certificate", caFile)
			}
			o.TLS.RootCAs = pool
		}
	}
	if mechanism == "" {
		if user != "" || password != "" {
			return ClientOpts{}, errors.New("a SASL user or password without a SASL mechanism")
		}
		return o, nil
	}
	if user == "" || password == "" {
		return ClientOpts{}, fmt.Errorf("SASL %s needs a user and a password", mechanism)
	}
	switch strings.ToUpper(mechanism) {
	case MechPlain:
		o.SASL = plain.Auth{User: user, Pass: password}.AsMechanism()
	case MechSCRAMSHA256:
		o.SASL = scram.Auth{User: user, Pass: password}.AsSha256Mechanism()
	case MechSCRAMSHA512:
		o.SASL = scram.Auth{User: user, Pass: password}.AsSha512Mechanism()
	default:
		return ClientOpts{}, fmt.Errorf("SASL mechanism %q: not %s, %s or %s", mechanism, MechPlain, MechSCRAMSHA256, MechSCRAMSHA512)
	}
	return o, nil
}

// Plaintext reports whether o adds nothing to a plain TCP connection.
func (o ClientOpts) Plaintext() bool { return o.TLS == nil && o.SASL == nil }

// String names the connection for reports: "plaintext", "TLS",
// "SASL SCRAM-SHA-512" or "TLS + SCRAM-SHA-512".
func (o ClientOpts) String() string {
	switch {
	case o.TLS != nil && o.SASL != nil:
		return "TLS + " + o.SASL.Name()
	case o.TLS != nil:
		return "TLS"
	case o.SASL != nil:
		return "SASL " + o.SASL.Name()
	}
	return "plaintext"
}

// kgoOpts are the client options for brokers with o's TLS and SASL.
func (o ClientOpts) kgoOpts(brokers []string) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	if o.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(o.TLS.Clone()))
	}
	if o.SASL != nil {
		opts = append(opts, kgo.SASL(o.SASL))
	}
	return opts
}
