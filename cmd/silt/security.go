package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/siltdata/silt/agent"
	"github.com/siltdata/silt/auth/sasl"
	"github.com/siltdata/silt/auth/tlsconf"
)

// securityOptions are the listener, TLS, SASL, ACL and connection flags,
// named after Kafka's settings.
type securityOptions struct {
	listeners          string
	advertisedListener string
	protocolMap        string

	tlsCert       string
	tlsKey        string
	tlsClientCA   string
	tlsClientAuth string
	adminTLS      bool

	saslMechanisms string
	jwksFile       string
	jwksURL        string
	oauthIssuer    string
	oauthAudience  string
	oauthClaim     string

	authorizer    bool
	superUsers    string
	allowEveryone bool

	reauth            time.Duration
	failedAuthDelay   time.Duration
	maxUnauthBytes    byteSize
	idleTimeout       time.Duration
	maxConnections    int
	maxConnectionsPer int
}

// addSecurityFlags registers the security flags; str registers a string
// flag whose empty value is meaningful.
func (s *securityOptions) addSecurityFlags(fs *flag.FlagSet, str func(p *string, name, def, help string)) {
	def := agent.DefaultConfig()
	str(&s.listeners, "listeners", "", "Kafka listeners `NAME://host:port,...` (listeners); replaces --listen. A name that is not a protocol needs --listener-security-protocol-map")
	str(&s.advertisedListener, "advertised-listeners", "", "`NAME://host:port,...` each listener tells its clients (advertised.listeners); --advertised-addr(-file) applies to the first listener otherwise")
	str(&s.protocolMap, "listener-security-protocol-map", "", "`NAME:PROTOCOL,...` (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) for listener names that are not protocols")
	str(&s.tlsCert, "tls-cert-file", "", "PEM certificate (with chain) of the SSL and SASL_SSL listeners; reloaded when it changes (`file`)")
	str(&s.tlsKey, "tls-key-file", "", "PEM private key of --tls-cert-file (`file`)")
	str(&s.tlsClientCA, "tls-client-ca-file", "", "PEM CAs that sign client certificates (`file`)")
	str(&s.tlsClientAuth, "tls-client-auth", "none", "client certificates (ssl.client.auth): `none`, requested or required; on SSL listeners the principal is User:<subject DN>")
	fs.BoolVar(&s.adminTLS, "admin-tls", false, "serve the admin port over HTTPS with --tls-cert-file")
	str(&s.saslMechanisms, "sasl-mechanisms", strings.Join(sasl.DefaultConfig().Mechanisms, ","), "enabled SASL `mechanisms` (sasl.enabled.mechanisms): PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER")
	str(&s.jwksFile, "oauth-jwks-file", "", "OAUTHBEARER: JSON Web Key Set `file` that signs tokens")
	str(&s.jwksURL, "oauth-jwks-url", "", "OAUTHBEARER: JSON Web Key Set `url` (refreshed hourly and on unknown keys)")
	str(&s.oauthIssuer, "oauth-issuer", "", "OAUTHBEARER: required token issuer (iss)")
	str(&s.oauthAudience, "oauth-audience", "", "OAUTHBEARER: required token audience (aud)")
	str(&s.oauthClaim, "oauth-principal-claim", "sub", "OAUTHBEARER: the `claim` naming the user")
	fs.BoolVar(&s.authorizer, "authorizer", false, "check ACLs on every request (authorizer.class.name); manage them with any Kafka admin client")
	str(&s.superUsers, "super-users", "", "principals allowed everything, `User:a;User:b` (super.users)")
	fs.BoolVar(&s.allowEveryone, "allow-everyone-if-no-acl-found", false, "allow operations on resources that no ACL names (allow.everyone.if.no.acl.found)")
	fs.DurationVar(&s.reauth, "reauth-interval", 0, "SASL session lifetime (connections.max.reauth.ms); clients re-authenticate before it ends; 0: unlimited")
	fs.DurationVar(&s.failedAuthDelay, "failed-auth-delay", def.FailedAuthDelay, "delay before answering a failed authentication (connection.failed.authentication.delay.ms)")
	s.maxUnauthBytes = byteSize(def.MaxUnauthenticatedBytes)
	fs.Var(&s.maxUnauthBytes, "max-unauthenticated-bytes", "largest request `size` before a client authenticated (sasl.server.max.receive.size)")
	fs.DurationVar(&s.idleTimeout, "idle-timeout", def.IdleTimeout, "close connections idle this long (connections.max.idle.ms); 0: never")
	fs.IntVar(&s.maxConnections, "max-connections", 0, "open connections per agent (max.connections); 0: unbounded")
	fs.IntVar(&s.maxConnectionsPer, "max-connections-per-ip", 0, "open connections per client IP (max.connections.per.ip); 0: unbounded")
}

// parsedListeners is the listener list the flags give (nil: --listen).
func (o options) parsedListeners() ([]agent.Listener, error) {
	s := o.sec
	if s.listeners == "" {
		if s.advertisedListener != "" || s.protocolMap != "" {
			return nil, fmt.Errorf("%s and %s need %s", o.name("advertised-listeners"), o.name("listener-security-protocol-map"), o.name("listeners"))
		}
		return nil, nil
	}
	ls, err := agent.ParseListeners(s.listeners, s.advertisedListener, s.protocolMap)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.name("listeners"), err)
	}
	return ls, nil
}

// validateSecurity checks the security flags before anything starts.
func (o options) validateSecurity() []error {
	var errs []error
	if _, err := o.parsedListeners(); err != nil {
		errs = append(errs, err)
	}
	if o.sec.maxConnections < 0 || o.sec.maxConnectionsPer < 0 {
		errs = append(errs, fmt.Errorf("%s and %s must not be negative", o.name("max-connections"), o.name("max-connections-per-ip")))
	}
	if o.sec.adminTLS && (o.sec.tlsCert == "" || o.sec.tlsKey == "") {
		errs = append(errs, fmt.Errorf("%s needs %s and %s", o.name("admin-tls"), o.name("tls-cert-file"), o.name("tls-key-file")))
	}
	return errs
}

// applySecurity maps the security flags onto the agent configuration;
// cfg.Validate reports inconsistencies (a TLS listener without files, an
// OAUTHBEARER mechanism without a JWKS).
func applySecurity(cfg *agent.Config, o options) error {
	s := o.sec
	ls, err := o.parsedListeners()
	if err != nil {
		return err
	}
	if ls != nil {
		// --advertised-addr(-file) is the first listener's, unless it
		// has one in --advertised-listeners.
		if ls[0].AdvertisedHost == "" {
			ls[0].AdvertisedHost, ls[0].AdvertisedPort = cfg.AdvertisedHost, cfg.AdvertisedPort
		}
		cfg.Listeners = ls
	}
	cfg.TLS = tlsconf.Config{CertFile: s.tlsCert, KeyFile: s.tlsKey, ClientCAFile: s.tlsClientCA, ClientAuth: s.tlsClientAuth}
	cfg.SASL.Mechanisms = nil
	for m := range strings.SplitSeq(s.saslMechanisms, ",") {
		if m = strings.TrimSpace(m); m != "" {
			cfg.SASL.Mechanisms = append(cfg.SASL.Mechanisms, strings.ToUpper(m))
		}
	}
	cfg.SASL.OAuth.JWKSFile, cfg.SASL.OAuth.JWKSURL = s.jwksFile, s.jwksURL
	cfg.SASL.OAuth.Issuer, cfg.SASL.OAuth.Audience, cfg.SASL.OAuth.PrincipalClaim = s.oauthIssuer, s.oauthAudience, s.oauthClaim
	cfg.Authorize = s.authorizer
	cfg.ACL.SuperUsers = nil
	for p := range strings.SplitSeq(s.superUsers, ";") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.ACL.SuperUsers = append(cfg.ACL.SuperUsers, p)
		}
	}
	cfg.ACL.AllowEveryoneIfNoACLFound = s.allowEveryone
	cfg.ReauthAfter = s.reauth
	cfg.FailedAuthDelay = s.failedAuthDelay
	cfg.MaxUnauthenticatedBytes = int32(min(int64(s.maxUnauthBytes), maxInt32Size))
	cfg.IdleTimeout = s.idleTimeout
	cfg.MaxConnections, cfg.MaxConnectionsPerIP = s.maxConnections, s.maxConnectionsPer
	return nil
}
