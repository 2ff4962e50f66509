package agent

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/siltdata/silt/auth/tlsconf"
)

// Security protocols of a listener, as Kafka names them.
const (
	Plaintext     = "PLAINTEXT"
	SSL           = "SSL"
	SASLPlaintext = "SASL_PLAINTEXT"
	SASLSSL       = "SASL_SSL"
)

// Listener is one Kafka listener of the agent (Kafka's listeners,
// advertised.listeners and listener.security.protocol.map in one).
type Listener struct {
	// Name identifies the listener; clients connected to it are told
	// the other agents' addresses on the listener of the same name.
	Name string
	// Addr is the host:port to bind; port 0 picks a free port.
	Addr string
	// Protocol is PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
	Protocol string
	// AdvertisedHost and AdvertisedPort are what Metadata tells this
	// listener's clients to connect to. Empty host: the bound host, or
	// 127.0.0.1 for a wildcard; zero port: the bound port.
	AdvertisedHost string
	AdvertisedPort int32
}

// TLS reports whether the listener speaks TLS.
func (l Listener) TLS() bool { return l.Protocol == SSL || l.Protocol == SASLSSL }

// SASL reports whether the listener authenticates clients with SASL.
func (l Listener) SASL() bool { return l.Protocol == SASLPlaintext || l.Protocol == SASLSSL }

// listeners is the effective listener list: Config.Listeners, or one
// PLAINTEXT listener on ListenAddr advertising AdvertisedHost/Port.
func (c Config) listeners() []Listener {
	if len(c.Listeners) > 0 {
		return c.Listeners
	}
	return []Listener{{Name: Plaintext, Addr: c.ListenAddr, Protocol: Plaintext,
		AdvertisedHost: c.AdvertisedHost, AdvertisedPort: c.AdvertisedPort}}
}

// validateListeners checks names, protocols and what they need.
func (c Config) validateListeners() error {
	var errs []error
	seen := map[string]bool{}
	needTLS, needSASL := false, false
	for _, l := range c.listeners() {
		if l.Name == "" || strings.ContainsAny(l.Name, ":/, ") {
			errs = append(errs, fmt.Errorf("listener name %q: want letters, digits, _ or -", l.Name))
		}
		if seen[l.Name] {
			errs = append(errs, fmt.Errorf("listener %s named twice", l.Name))
		}
		seen[l.Name] = true
		if _, _, err := net.SplitHostPort(l.Addr); err != nil {
			errs = append(errs, fmt.Errorf("listener %s address %q: %w", l.Name, l.Addr, err))
		}
		switch l.Protocol {
		case Plaintext, SSL, SASLPlaintext, SASLSSL:
		default:
			errs = append(errs, fmt.Errorf("listener %s protocol %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", l.Name, l.Protocol))
		}
		needTLS = needTLS || l.TLS()
		needSASL = needSASL || l.SASL()
	}
	if needTLS {
		if err := c.TLS.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("tls: %w", err))
		}
	}
	if needSASL {
		if len(c.SASL.Mechanisms) == 0 {
			errs = append(errs, errors.New("a SASL listener needs at least one enabled mechanism"))
		}
		if err := c.SASL.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("sasl: %w", err))
		}
	}
	return errors.Join(errs...)
}

// listener is one bound listener.
type listener struct {
	cfg Listener
	ln  net.Listener
	tls *tls.Config // nil: plaintext
}

// ParseListeners reads Kafka-style settings into listeners:
//
//	listeners        "INTERNAL://:9092,EXTERNAL://0.0.0.0:9093"
//	advertised       "INTERNAL://10.0.0.5:9092,EXTERNAL://kafka.example.com:9093" (optional, per name)
//	protocolMap      "INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL" (optional: a
//	                 listener named after a protocol uses it)
func ParseListeners(listeners, advertised, protocolMap string) ([]Listener, error) {
	protos := map[string]string{}
	if protocolMap != "" {
		for kv := range strings.SplitSeq(protocolMap, ",") {
			name, proto, ok := strings.Cut(strings.TrimSpace(kv), ":")
			if !ok || name == "" {
				return nil, fmt.Errorf("security protocol map entry %q: want NAME:PROTOCOL", kv)
			}
			protos[name] = strings.ToUpper(proto)
		}
	}
	adv := map[string][2]string{}
	if advertised != "" {
		for part := range strings.SplitSeq(advertised, ",") {
			name, addr, ok := strings.Cut(strings.TrimSpace(part), "://")
			if !ok {
				return nil, fmt.Errorf("advertised listener %q: want NAME://host:port", part)
			}
			host, port, err := net.SplitHostPort(addr)
			if err != nil || host == "" {
				return nil, fmt.Errorf("advertised listener %q: want NAME://host:port", part)
			}
			adv[name] = [2]string{host, port}
		}
	}
	var out []Listener
	for part := range strings.SplitSeq(listeners, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(part), "://")
		if !ok || name == "" {
			return nil, fmt.Errorf("listener %q: want NAME://host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("listener %q: %w", part, err)
		}
		l := Listener{Name: name, Addr: addr, Protocol: protos[name]}
		if l.Protocol == "" {
			switch name {
			case Plaintext, SSL, SASLPlaintext, SASLSSL:
				l.Protocol = name
			default:
				return nil, fmt.Errorf("listener %s: no security protocol (name it in the protocol map)", name)
			}
		}
		if a, ok := adv[name]; ok {
			p, err := strconv.Atoi(a[1])
			if err != nil || p <= 0 || p > 65535 {
				return nil, fmt.Errorf("advertised listener %s: port %q", name, a[1])
			}
			l.AdvertisedHost, l.AdvertisedPort = a[0], int32(p)
			delete(adv, name)
		}
		out = append(out, l)
	}
	for name := range adv {
		return nil, fmt.Errorf("advertised listener %s is not a listener", name)
	}
	return out, nil
}

// tlsFor loads the listeners' TLS files once; every TLS listener (and the
// admin port, through ServerTLS) shares them.
func (a *Agent) loadTLS() error {
	for _, l := range a.cfg.listeners() {
		if !l.TLS() {
			continue
		}
		files, err := tlsconf.Load(a.cfg.TLS, a.logger)
		if err != nil {
			return err
		}
		a.tlsFiles = files
		return nil
	}
	return nil
}
