package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"time"

	"github.com/xdg-go/scram"

	"github.com/siltdata/silt/metastore"
)

// Iteration bounds of SCRAM credentials, Kafka's (ScramMechanism): fewer
// than 4096 iterations is too cheap to brute-force, more than 16384 makes
// every login expensive for the agent.
const (
	MinIterations     = 4096
	MaxIterations     = 16384
	DefaultIterations = 8192
)

// hashFor returns xdg-go/scram's hash of a SCRAM mechanism.
func hashFor(mech string) (scram.HashGeneratorFcn, error) {
	switch mech {
	case ScramSHA256:
		return scram.SHA256, nil
	case ScramSHA512:
		return scram.SHA512, nil
	}
	return nil, fmt.Errorf("%w: %q is not a SCRAM mechanism", ErrUnsupportedMechanism, mech)
}

// NewScramCredential derives what the metastore keeps for user's password
// under mech: a random salt, the iteration count and RFC 5802's StoredKey
// and ServerKey. The password and the salted password are not kept.
func NewScramCredential(mech, user, password string, iterations int) (metastore.ScramCredential, error) {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return metastore.ScramCredential{}, err
	}
	return ScramCredentialWithSalt(mech, user, password, salt, iterations)
}

// ScramCredentialWithSalt is NewScramCredential with a given salt (from an
// AlterUserScramCredentials request, whose client salted the password).
func ScramCredentialWithSalt(mech, user, password string, salt []byte, iterations int) (metastore.ScramCredential, error) {
	if iterations < MinIterations || iterations > MaxIterations {
		return metastore.ScramCredential{}, fmt.Errorf("iterations %d: must be between %d and %d", iterations, MinIterations, MaxIterations)
	}
	h, err := hashFor(mech)
	if err != nil {
		return metastore.ScramCredential{}, err
	}
	cl, err := h.NewClient(user, password, "")
	if err != nil {
		return metastore.ScramCredential{}, fmt.Errorf("scram credential for %q: %w", user, err)
	}
	sc, err := cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: iterations})
	if err != nil {
		return metastore.ScramCredential{}, err
	}
	return metastore.ScramCredential{User: user, Mechanism: mech, Iterations: int32(iterations),
		Salt: salt, StoredKey: sc.StoredKey, ServerKey: sc.ServerKey}, nil
}

// ScramCredentialFromSaltedPassword derives the stored keys from a salted
// password, which is what AlterUserScramCredentials carries (the client
// ran Hi(password, salt, iterations) itself, so the password never
// reaches the broker).
func ScramCredentialFromSaltedPassword(mech, user string, salt, salted []byte, iterations int) (metastore.ScramCredential, error) {
	if iterations < MinIterations || iterations > MaxIterations {
		return metastore.ScramCredential{}, fmt.Errorf("iterations %d: must be between %d and %d", iterations, MinIterations, MaxIterations)
	}
	h, err := hashFor(mech)
	if err != nil {
		return metastore.ScramCredential{}, err
	}
	// RFC 5802: ClientKey = HMAC(SaltedPassword, "Client Key"),
	// StoredKey = H(ClientKey), ServerKey = HMAC(SaltedPassword, "Server Key").
	// xdg-go/scram exposes no function from a salted password, so the
	// three primitive steps are written out with its hash.
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(func() hash.Hash { return h() }, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	ck := mac(salted, "Client Key")
	sum := h()
	sum.Write(ck)
	return metastore.ScramCredential{User: user, Mechanism: mech, Iterations: int32(iterations),
		Salt: salt, StoredKey: sum.Sum(nil), ServerKey: mac(salted, "Server Key")}, nil
}

// scramSession is a SCRAM exchange: xdg-go/scram's server conversation,
// with credentials looked up in the metastore.
type scramSession struct {
	mech  string
	creds metastore.Credentials
	conv  *scram.ServerConversation
	ctx   context.Context // the current Step's, for the lookup
	user  string
}

func newScramSession(mech string, creds metastore.Credentials) (*scramSession, error) {
	h, err := hashFor(mech)
	if err != nil {
		return nil, err
	}
	s := &scramSession{mech: mech, creds: creds}
	srv, err := h.NewServer(s.lookup)
	if err != nil {
		return nil, err
	}
	s.conv = srv.NewConversation()
	return s, nil
}

// errLookup marks a credential lookup that failed for another reason than
// an unknown user (the metastore is down): still a failed login, but
// logged as such.
var errLookup = errors.New("credential lookup failed")

func (s *scramSession) lookup(user string) (scram.StoredCredentials, error) {
	c, err := s.creds.ScramCredential(s.ctx, user, s.mech)
	if err != nil {
		if !errors.Is(err, metastore.ErrUnknownCredential) {
			err = fmt.Errorf("%w: %w", errLookup, err)
		}
		return scram.StoredCredentials{}, err
	}
	return scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: int(c.Iterations)},
		StoredKey:  c.StoredKey,
		ServerKey:  c.ServerKey,
	}, nil
}

func (s *scramSession) Step(ctx context.Context, msg []byte) ([]byte, bool, error) {
	if s.conv.Done() {
		return nil, false, ErrExchangeDone
	}
	s.ctx = ctx
	defer func() { s.ctx = nil }()
	reply, err := s.conv.Step(string(msg))
	if err != nil {
		return nil, false, failed("%s: %v", s.mech, err)
	}
	if !s.conv.Done() {
		return []byte(reply), false, nil
	}
	if !s.conv.Valid() {
		return nil, false, failed("%s: invalid proof", s.mech)
	}
	// Kafka accepts an authorization id only when it names the user.
	if az := s.conv.AuthzID(); az != "" && az != s.conv.Username() {
		return nil, false, failed("%s: authorization id %q differs from user %q", s.mech, az, s.conv.Username())
	}
	s.user = s.conv.Username()
	return []byte(reply), true, nil
}

func (s *scramSession) User() string      { return s.user }
func (s *scramSession) Expiry() time.Time { return time.Time{} }

// checkPassword verifies a clear-text password (PLAIN) against the user's
// SCRAM credentials: it derives the StoredKey from the password with the
// credential's salt and iterations and compares. SHA-512 is tried first,
// then SHA-256; a user with neither does not exist.
func checkPassword(ctx context.Context, creds metastore.Credentials, user, password string) error {
	found := false
	for _, mech := range []string{ScramSHA512, ScramSHA256} {
		c, err := creds.ScramCredential(ctx, user, mech)
		if errors.Is(err, metastore.ErrUnknownCredential) {
			continue
		}
		if err != nil {
			return failed("PLAIN: %v: %v", errLookup, err)
		}
		found = true
		got, err := ScramCredentialWithSalt(mech, user, password, c.Salt, int(c.Iterations))
		if err != nil {
			return failed("PLAIN: %v", err)
		}
		if subtle.ConstantTimeCompare(got.StoredKey, c.StoredKey) == 1 {
			return nil
		}
	}
	if !found {
		return failed("PLAIN: unknown user %q", user)
	}
	return failed("PLAIN: wrong password for %q", user)
}

// plainSession is a PLAIN exchange (RFC 4616): one message,
// "authzid NUL authcid NUL password".
type plainSession struct {
	creds metastore.Credentials
	user  string
	done  bool
}

func (s *plainSession) Step(ctx context.Context, msg []byte) ([]byte, bool, error) {
	if s.done {
		return nil, false, ErrExchangeDone
	}
	s.done = true
	authz, rest, ok1 := cut(msg, 0)
	user, pass, ok2 := cut(rest, 0)
	if !ok1 || !ok2 || len(user) == 0 || len(pass) == 0 {
		return nil, false, failed("PLAIN: malformed message")
	}
	if len(authz) > 0 && string(authz) != string(user) {
		return nil, false, failed("PLAIN: authorization id %q differs from user %q", authz, user)
	}
	if err := checkPassword(ctx, s.creds, string(user), string(pass)); err != nil {
		return nil, false, err
	}
	s.user = string(user)
	return nil, true, nil
}

func (s *plainSession) User() string      { return s.user }
func (s *plainSession) Expiry() time.Time { return time.Time{} }

func cut(b []byte, sep byte) (before, after []byte, ok bool) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}
