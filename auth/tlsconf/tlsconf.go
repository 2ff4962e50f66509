// Package tlsconf builds server TLS configurations from certificate and
// key files that are reloaded when they change on disk (a renewed
// certificate is served without a restart), optionally asking clients for
// a certificate signed by a given CA, and names a client by its
// certificate's subject, as Kafka's SSL principal builder does.
package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/siltdata/silt/auth"
)

// Client authentication modes (Kafka's ssl.client.auth).
const (
	ClientAuthNone      = "none"
	ClientAuthRequested = "requested"
	ClientAuthRequired  = "required"
)

// Config names the files. Zero CheckInterval means DefaultCheckInterval.
type Config struct {
	// CertFile and KeyFile are PEM files: the server certificate (with
	// its chain) and its private key.
	CertFile string
	KeyFile  string
	// ClientCAFile is a PEM bundle of the CAs that sign client
	// certificates; required unless ClientAuth is none.
	ClientCAFile string
	// ClientAuth is none, requested or required.
	ClientAuth string
	// CheckInterval bounds how often the files are checked for changes:
	// at most once per interval, on a new connection's handshake.
	CheckInterval time.Duration
}

// DefaultCheckInterval is how often, at most, the files are checked.
const DefaultCheckInterval = time.Second

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	if c.CertFile == "" || c.KeyFile == "" {
		errs = append(errs, errors.New("a certificate file and a key file are required"))
	}
	switch c.ClientAuth {
	case "", ClientAuthNone:
	case ClientAuthRequested, ClientAuthRequired:
		if c.ClientCAFile == "" {
			errs = append(errs, fmt.Errorf("client auth %s needs a client CA file", c.ClientAuth))
		}
	default:
		errs = append(errs, fmt.Errorf("client auth %q: want none, requested or required", c.ClientAuth))
	}
	if c.CheckInterval < 0 {
		errs = append(errs, fmt.Errorf("check interval %s: must not be negative", c.CheckInterval))
	}
	return errors.Join(errs...)
}

// Files serves TLS from the configured files, reloading them when their
// contents change. A file that fails to load (half written during a
// renewal) keeps the previous certificate in use and is logged; the next
// check tries again.
type Files struct {
	cfg    Config
	logger *slog.Logger

	// mu guards everything below.
	mu      sync.Mutex
	checked time.Time
	raw     [3][]byte // cert, key, CA file contents last loaded
	current *tls.Config
	reloads int
}

// Load reads the files once and returns the reloading configuration.
func Load(cfg Config, logger *slog.Logger) (*Files, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &Files{cfg: cfg, logger: logger}
	raw, err := f.read()
	if err != nil {
		return nil, err
	}
	if f.current, err = f.build(raw); err != nil {
		return nil, err
	}
	f.raw, f.checked = raw, time.Now()
	return f, nil
}

// read returns the files' contents.
func (f *Files) read() ([3][]byte, error) {
	var raw [3][]byte
	var err error
	if raw[0], err = os.ReadFile(f.cfg.CertFile); err != nil {
		return raw, fmt.Errorf("tls certificate: %w", err)
	}
	if raw[1], err = os.ReadFile(f.cfg.KeyFile); err != nil {
		return raw, fmt.Errorf("tls key: %w", err)
	}
	if f.cfg.ClientCAFile != "" {
		if raw[2], err = os.ReadFile(f.cfg.ClientCAFile); err != nil {
			return raw, fmt.Errorf("tls client CA: %w", err)
		}
	}
	return raw, nil
}

// build makes the server configuration from the files' contents.
func (f *Files) build(raw [3][]byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(raw[0], raw[1])
	if err != nil {
		return nil, fmt.Errorf("tls key pair %s, %s: %w", f.cfg.CertFile, f.cfg.KeyFile, err)
	}
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.NoClientCert,
	}
	if raw[2] != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(raw[2]) {
			return nil, fmt.Errorf("tls client CA %s: no certificate found", f.cfg.ClientCAFile)
		}
		c.ClientCAs = pool
		switch f.cfg.ClientAuth {
		case ClientAuthRequested:
			c.ClientAuth = tls.VerifyClientCertIfGiven
		case ClientAuthRequired:
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return c, nil
}

// ServerConfig returns a configuration for tls.Server / tls.NewListener
// whose every handshake uses the current files.
func (f *Files) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return f.config(), nil },
	}
}

// config returns the current configuration, reloading the files first
// when they changed and the last check is older than CheckInterval.
func (f *Files) config() *tls.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.checked) < f.cfg.CheckInterval {
		return f.current
	}
	f.checked = time.Now()
	raw, err := f.read()
	if err != nil {
		f.logger.Warn("tls files unreadable; serving the previous certificate", "err", err)
		return f.current
	}
	if bytes.Equal(raw[0], f.raw[0]) && bytes.Equal(raw[1], f.raw[1]) && bytes.Equal(raw[2], f.raw[2]) {
		return f.current
	}
	c, err := f.build(raw)
	if err != nil {
		// Likely a renewal caught between writing the certificate and
		// the key: the next check picks up the finished pair.
		f.logger.Warn("tls files changed but do not load; serving the previous certificate", "err", err)
		return f.current
	}
	f.current, f.raw = c, raw
	f.reloads++
	f.logger.Info("tls certificate reloaded", "cert", f.cfg.CertFile)
	return c
}

// Reloads is how many times the files were reloaded after Load.
func (f *Files) Reloads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reloads
}

// Principal names the client of a TLS connection: "User:" and its
// verified certificate's subject distinguished name (RFC 2253, e.g.
// "User:CN=alice,OU=eng,O=Example"), as Kafka's default SSL principal
// mapping does; auth.Anonymous without a verified client certificate.
func Principal(cs tls.ConnectionState) string {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return auth.Anonymous
	}
	return auth.User(cs.VerifiedChains[0][0].Subject.String())
}
