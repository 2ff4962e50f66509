// Package jwttest is a throwaway OAuth token issuer for tests: an EC key,
// its JSON Web Key Set in a file (for --oauth-jwks-file), and signed JWTs.
package jwttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Issuer signs tokens with one key published in JWKSFile.
type Issuer struct {
	JWKSFile string
	Name     string // the iss claim of Token
	Audience string // the aud claim of Token
	key      *ecdsa.PrivateKey
}

// New makes an issuer whose JWKS file lives in t.TempDir().
func New(t testing.TB) *Issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "test-key", ALG: jwkset.AlgES256}})
	if err != nil {
		t.Fatal(err)
	}
	set := jwkset.NewMemoryStorage()
	if err := set.KeyWrite(t.Context(), jwk); err != nil {
		t.Fatal(err)
	}
	raw, err := set.JSONPublic(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return &Issuer{JWKSFile: file, Name: "https://issuer.test", Audience: "silt", key: key}
}

// Sign signs arbitrary claims.
func (i *Issuer) Sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = "test-key"
	s, err := tok.SignedString(i.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Token is a valid token for sub expiring after ttl (negative: expired).
func (i *Issuer) Token(t testing.TB, sub string, ttl time.Duration) string {
	t.Helper()
	return i.Sign(t, jwt.MapClaims{"sub": sub, "iss": i.Name, "aud": i.Audience, "exp": time.Now().Add(ttl).Unix()})
}
