package agent

import (
	"reflect"
	"strings"
	"testing"

	"github.com/siltdata/silt/auth/sasl"
	"github.com/siltdata/silt/auth/tlsconf"
)

func TestParseListeners(t *testing.T) {
	got, err := ParseListeners("INTERNAL://:9092,EXTERNAL://0.0.0.0:9093,SSL://127.0.0.1:9094",
		"EXTERNAL://kafka.example.com:19093", "INTERNAL:PLAINTEXT,EXTERNAL:sasl_ssl")
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{
		{Name: "INTERNAL", Addr: ":9092", Protocol: Plaintext},
		{Name: "EXTERNAL", Addr: "0.0.0.0:9093", Protocol: SASLSSL, AdvertisedHost: "kafka.example.com", AdvertisedPort: 19093},
		{Name: "SSL", Addr: "127.0.0.1:9094", Protocol: SSL},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseListeners = %+v", got)
	}
	for _, c := range []struct{ listeners, advertised, protos, want string }{
		{"INTERNAL://:9092", "", "", "no security protocol"},
		{"PLAINTEXT:9092", "", "", "want NAME://host:port"},
		{"PLAINTEXT://:9092", "OTHER://h:1", "", "is not a listener"},
		{"PLAINTEXT://:9092", "PLAINTEXT://:1", "", "want NAME://host:port"},
		{"PLAINTEXT://:9092", "PLAINTEXT://h:0", "", "port"},
		{"X://:9092", "", "X", "want NAME:PROTOCOL"},
	} {
		if _, err := ParseListeners(c.listeners, c.advertised, c.protos); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseListeners(%q, %q, %q) = %v, want %q", c.listeners, c.advertised, c.protos, err, c.want)
		}
	}
}

func TestSecurityConfigValidate(t *testing.T) {
	base := DefaultConfig()
	for name, c := range map[string]struct {
		modify func(*Config)
		want   string
	}{
		"duplicate listener": {func(c *Config) {
			c.Listeners = []Listener{{Name: "A", Addr: ":1", Protocol: Plaintext}, {Name: "A", Addr: ":2", Protocol: Plaintext}}
		}, "named twice"},
		"unknown protocol": {func(c *Config) {
			c.Listeners = []Listener{{Name: "A", Addr: ":1", Protocol: "TLS"}}
		}, "protocol"},
		"tls without files": {func(c *Config) {
			c.Listeners = []Listener{{Name: "A", Addr: ":1", Protocol: SSL}}
		}, "certificate"},
		"sasl without mechanisms": {func(c *Config) {
			c.Listeners = []Listener{{Name: "A", Addr: ":1", Protocol: SASLPlaintext}}
			c.SASL.Mechanisms = nil
		}, "mechanism"},
		"oauth without jwks": {func(c *Config) {
			c.Listeners = []Listener{{Name: "A", Addr: ":1", Protocol: SASLPlaintext}}
			c.SASL.Mechanisms = []string{sasl.OAuthBearer}
		}, "JWKS"},
		"bad super user": {func(c *Config) {
			c.Authorize = true
			c.ACL.SuperUsers = []string{"admin"}
		}, "super user"},
		"client auth without CA": {func(c *Config) {
			c.Listeners = []Listener{{Name: "A", Addr: ":1", Protocol: SSL}}
			c.TLS = tlsconf.Config{CertFile: "c", KeyFile: "k", ClientAuth: tlsconf.ClientAuthRequired}
		}, "client CA"},
	} {
		cfg := base
		c.modify(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, c.want)
		}
	}
}
