package sasl_test

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	ksasl "github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.uber.org/goleak"

	"github.com/siltdata/silt/auth/sasl"
	"github.com/siltdata/silt/auth/sasl/jwttest"
	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// credStore is a real (SQLite) metastore holding alice's credentials for
// both SCRAM mechanisms, with password "alice-secret".
func credStore(t *testing.T) metastore.Credentials {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "m.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, mech := range []string{sasl.ScramSHA256, sasl.ScramSHA512} {
		c, err := sasl.NewScramCredential(mech, "alice", "alice-secret", sasl.MinIterations)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.UpsertScramCredential(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// exchange runs a franz-go client mechanism against a server session, as
// SaslAuthenticate round trips would.
func exchange(ctx context.Context, srv *sasl.Server, m ksasl.Mechanism) (sasl.Session, error) {
	sess, err := srv.Start(m.Name())
	if err != nil {
		return nil, err
	}
	cs, msg, err := m.Authenticate(ctx, "silt:9092")
	if err != nil {
		return nil, err
	}
	for range 10 {
		reply, done, err := sess.Step(ctx, msg)
		if err != nil {
			return nil, err
		}
		cdone, next, err := cs.Challenge(reply)
		if err != nil {
			return nil, err
		}
		if done {
			if !cdone {
				return nil, errors.New("server done, client not")
			}
			return sess, nil
		}
		msg = next
	}
	return nil, errors.New("exchange did not end")
}

func TestPlainAndScram(t *testing.T) {
	creds := credStore(t)
	srv, err := sasl.New(t.Context(), sasl.Config{Mechanisms: []string{sasl.Plain, sasl.ScramSHA256, sasl.ScramSHA512}}, creds, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	mechs := func(user, pass string) []ksasl.Mechanism {
		return []ksasl.Mechanism{
			plain.Auth{User: user, Pass: pass}.AsMechanism(),
			scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(),
			scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(),
		}
	}
	for _, m := range mechs("alice", "alice-secret") {
		sess, err := exchange(t.Context(), srv, m)
		if err != nil {
			t.Fatalf("%s: %v", m.Name(), err)
		}
		if sess.User() != "alice" || !sess.Expiry().IsZero() {
			t.Fatalf("%s: user %q expiry %v", m.Name(), sess.User(), sess.Expiry())
		}
	}
	for _, bad := range [][2]string{{"alice", "wrong"}, {"mallory", "alice-secret"}} {
		for _, m := range mechs(bad[0], bad[1]) {
			if _, err := exchange(t.Context(), srv, m); !errors.Is(err, sasl.ErrAuthenticationFailed) {
				t.Fatalf("%s as %s/%s: err %v, want ErrAuthenticationFailed", m.Name(), bad[0], bad[1], err)
			}
		}
	}
	if _, err := srv.Start(sasl.OAuthBearer); !errors.Is(err, sasl.ErrUnsupportedMechanism) {
		t.Fatalf("disabled mechanism: %v", err)
	}
}

// TestSaltedPassword checks that a credential made from a salted password
// (AlterUserScramCredentials) equals the one made from the password.
func TestSaltedPassword(t *testing.T) {
	for _, mech := range []string{sasl.ScramSHA256, sasl.ScramSHA512} {
		want, err := sasl.NewScramCredential(mech, "bob", "pw", sasl.MinIterations)
		if err != nil {
			t.Fatal(err)
		}
		salted := saltedPassword(t, mech, "pw", want.Salt, sasl.MinIterations)
		got, err := sasl.ScramCredentialFromSaltedPassword(mech, "bob", want.Salt, salted, sasl.MinIterations)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.StoredKey) != string(want.StoredKey) || string(got.ServerKey) != string(want.ServerKey) {
			t.Fatalf("%s: keys differ", mech)
		}
	}
	if _, err := sasl.NewScramCredential(sasl.ScramSHA256, "bob", "pw", 100); err == nil {
		t.Fatal("100 iterations accepted")
	}
}

// oauthSetup is a token issuer and the OAUTHBEARER config trusting it.
func oauthSetup(t *testing.T) (sasl.OAuthConfig, func(claims jwt.MapClaims) string) {
	t.Helper()
	iss := jwttest.New(t)
	cfg := sasl.DefaultOAuthConfig()
	cfg.JWKSFile, cfg.Issuer, cfg.Audience = iss.JWKSFile, iss.Name, iss.Audience
	return cfg, func(claims jwt.MapClaims) string { return iss.Sign(t, claims) }
}

func TestOAuthBearer(t *testing.T) {
	cfg, token := oauthSetup(t)
	srv, err := sasl.New(t.Context(), sasl.Config{Mechanisms: []string{sasl.OAuthBearer}, OAuth: cfg}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	good := jwt.MapClaims{"sub": "carol", "iss": "https://issuer.test", "aud": "silt", "exp": exp.Unix()}
	sess, err := exchange(t.Context(), srv, oauth.Auth{Token: token(good)}.AsMechanism())
	if err != nil {
		t.Fatal(err)
	}
	if sess.User() != "carol" || !sess.Expiry().Equal(exp) {
		t.Fatalf("user %q expiry %v, want carol %v", sess.User(), sess.Expiry(), exp)
	}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range good {
			c[k] = v
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	for name, tok := range map[string]string{
		"expired":      token(with("exp", time.Now().Add(-time.Hour).Unix())),
		"no expiry":    token(with("exp", nil)),
		"wrong issuer": token(with("iss", "https://evil.test")),
		"wrong aud":    token(with("aud", "other")),
		"no subject":   token(with("sub", nil)),
		"not a jwt":    "abc.def.ghi",
		"bad sig":      token(good)[:len(token(good))-4] + "AAAA",
	} {
		if _, err := exchange(t.Context(), srv, oauth.Auth{Token: tok}.AsMechanism()); !errors.Is(err, sasl.ErrAuthenticationFailed) {
			t.Errorf("%s: err %v, want ErrAuthenticationFailed", name, err)
		}
	}
	// A token signed by another key (same kid) is refused.
	_, other := oauthSetup(t)
	if _, err := exchange(t.Context(), srv, oauth.Auth{Token: other(good)}.AsMechanism()); !errors.Is(err, sasl.ErrAuthenticationFailed) {
		t.Errorf("foreign key: err %v", err)
	}
}

func TestOAuthMessageMalformed(t *testing.T) {
	cfg, _ := oauthSetup(t)
	srv, err := sasl.New(t.Context(), sasl.Config{Mechanisms: []string{sasl.OAuthBearer}, OAuth: cfg}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, msg := range []string{"", "n,,", "x,,\x01auth=Bearer a\x01\x01", "n,,\x01auth=Basic a\x01\x01", "n,,\x01host=x\x01\x01", "n,a,\x01auth=Bearer a\x01\x01"} {
		sess, _ := srv.Start(sasl.OAuthBearer)
		if _, _, err := sess.Step(t.Context(), []byte(msg)); !errors.Is(err, sasl.ErrAuthenticationFailed) {
			t.Errorf("%q: err %v", msg, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (sasl.Config{Mechanisms: []string{"GSSAPI"}}).Validate(); err == nil || !strings.Contains(err.Error(), "GSSAPI") {
		t.Fatalf("GSSAPI: %v", err)
	}
	if err := (sasl.Config{Mechanisms: []string{sasl.OAuthBearer}, OAuth: sasl.DefaultOAuthConfig()}).Validate(); err == nil {
		t.Fatal("OAUTHBEARER without a JWKS accepted")
	}
	if err := sasl.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

// FuzzScramExchange feeds arbitrary client messages to a SCRAM server
// session at each step: it must fail cleanly, never panic, and never
// authenticate without the password.
func FuzzScramExchange(f *testing.F) {
	f.Add([]byte("n,,n=alice,r=abc"), []byte("c=biws,r=abcdef,p=AAAA"))
	f.Add([]byte(""), []byte(""))
	f.Add([]byte("n,,n=alice,r="), []byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte("y,,n==2C=3D,r=x,m=ext"), []byte("c=,r=,p="))
	f.Add([]byte("p=tls-unique,,n=alice,r=x"), []byte("c=cD10bHMtdW5pcXVlLCw=,r=x,p=AA=="))
	creds := credStoreF(f)
	srv, err := sasl.New(context.Background(), sasl.Config{Mechanisms: []string{sasl.ScramSHA256, sasl.ScramSHA512, sasl.Plain}}, creds, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(srv.Close)
	f.Fuzz(func(t *testing.T, first, final []byte) {
		for _, mech := range []string{sasl.ScramSHA256, sasl.ScramSHA512, sasl.Plain} {
			sess, err := srv.Start(mech)
			if err != nil {
				t.Fatal(err)
			}
			_, done, err := sess.Step(context.Background(), first)
			if err != nil || done {
				if done && mech != sasl.Plain {
					t.Fatalf("%s: authenticated after one message", mech)
				}
				if done && !strings.Contains(string(first), "alice-secret") {
					t.Fatalf("PLAIN authenticated without the password: %q", first)
				}
				continue
			}
			if _, done, err := sess.Step(context.Background(), final); done && err == nil {
				t.Fatalf("%s: fuzzed exchange authenticated: %q %q", mech, first, final)
			}
		}
	})
}

func credStoreF(f *testing.F) metastore.Credentials {
	dir, err := os.MkdirTemp("", "sasl-fuzz")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	s, err := sqlite.Open(context.Background(), filepath.Join(dir, "m.db"), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	for _, mech := range []string{sasl.ScramSHA256, sasl.ScramSHA512} {
		c, err := sasl.NewScramCredential(mech, "alice", "alice-secret", sasl.MinIterations)
		if err != nil {
			f.Fatal(err)
		}
		if err := s.UpsertScramCredential(context.Background(), c); err != nil {
			f.Fatal(err)
		}
	}
	return s
}

// saltedPassword is Hi(password, salt, iterations) (RFC 5802), as an
// AlterUserScramCredentials client computes it: PBKDF2 with HMAC.
func saltedPassword(t *testing.T, mech, password string, salt []byte, iterations int) []byte {
	t.Helper()
	h, size := sha256.New, sha256.Size
	if mech == sasl.ScramSHA512 {
		h, size = sha512.New, sha512.Size
	}
	k, err := pbkdf2.Key(h, password, salt, iterations, size)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestOAuthBearerJWKSURL validates tokens against a key set served over
// HTTP (here from loopback), as an identity provider publishes it.
func TestOAuthBearerJWKSURL(t *testing.T) {
	iss := jwttest.New(t)
	raw, err := os.ReadFile(iss.JWKSFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(raw)
	}))
	defer srv.Close()
	cfg := sasl.DefaultOAuthConfig()
	cfg.JWKSURL, cfg.Issuer = srv.URL, iss.Name
	s, err := sasl.New(t.Context(), sasl.Config{Mechanisms: []string{sasl.OAuthBearer}, OAuth: cfg}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := exchange(t.Context(), s, oauth.Auth{Token: iss.Token(t, "dave", time.Hour)}.AsMechanism()); err != nil {
		t.Fatalf("token signed by the URL's key: %v", err)
	}
	if _, err := exchange(t.Context(), s, oauth.Auth{Token: jwttest.New(t).Token(t, "dave", time.Hour)}.AsMechanism()); !errors.Is(err, sasl.ErrAuthenticationFailed) {
		t.Fatalf("token of another issuer's key: %v", err)
	}
	// An unreachable URL fails at start, not at the first login.
	cfg.JWKSURL = "http://127.0.0.1:1/jwks.json"
	if _, err := sasl.New(t.Context(), sasl.Config{Mechanisms: []string{sasl.OAuthBearer}, OAuth: cfg}, nil, nil); err == nil {
		t.Fatal("an unreachable JWKS URL was accepted")
	}
}
