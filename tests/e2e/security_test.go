package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	ksasl "github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xscram "github.com/xdg-go/scram"

	"github.com/siltdata/silt/auth/sasl/jwttest"
	"github.com/siltdata/silt/auth/tlsconf/tlstest"
	"github.com/siltdata/silt/tests/harness"
)

const alicePass = "alice-secret"

// secureSilt is silt with a SASL_SSL listener (PLAIN, SCRAM-SHA-256/512,
// OAUTHBEARER) and an SSL listener (client certificates requested), the
// authorizer on with alice (by password or certificate) as super user;
// alice's SCRAM credentials were created with `silt user create` before
// the start.
type secureSilt struct {
	*silt
	ca        *tlstest.CA
	iss       *jwttest.Issuer
	saslAddr  string
	sslAddr   string
	metastore string
}

func startSecure(t *testing.T, backend string, extra ...string) *secureSilt {
	t.Helper()
	ca := tlstest.NewCA(t, "e2e")
	server := ca.Server(t, "server")
	e := &secureSilt{ca: ca, iss: jwttest.New(t), saslAddr: freeAddr(t), sslAddr: freeAddr(t)}
	args := []string{
		"--listeners", "SASL_SSL://" + e.saslAddr + ",SSL://" + e.sslAddr,
		"--tls-cert-file", server.CertFile, "--tls-key-file", server.KeyFile,
		"--tls-client-ca-file", ca.File, "--tls-client-auth", "requested",
		"--sasl-mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
		"--oauth-jwks-file", e.iss.JWKSFile, "--oauth-issuer", e.iss.Name, "--oauth-audience", e.iss.Audience,
		"--authorizer", "--super-users", "User:alice;User:CN=alice",
		"--flush-interval", "10ms",
	}
	args = append(args, extra...)
	switch backend {
	case "dev":
		dir := t.TempDir()
		e.metastore = filepath.Join(dir, "metastore.db")
		siltUser(t, e.metastore, "create", "--user", "alice", "--password-file", "-")
		e.silt = newDev(t, append([]string{"--data-dir", dir}, args...)...)
	default:
		pg := harness.Postgres(t)
		e.metastore = pg
		siltUser(t, pg, "create", "--user", "alice", "--password-file", "-")
		e.silt = newAgentOn(t, pg, harness.S3(t), append([]string{"--agent-id", "secure"}, args...)...)
	}
	e.Start()
	if e.Kafka() != e.saslAddr {
		t.Fatalf("ready line names %s, want the first listener %s", e.Kafka(), e.saslAddr)
	}
	return e
}

// siltUser runs `silt user ...` against a metastore, alice's password on
// standard input.
func siltUser(t testing.TB, store string, args ...string) string {
	t.Helper()
	cmd := exec.Command(siltBinary(t), append([]string{"user", args[0], "--metastore", store}, args[1:]...)...)
	cmd.Stdin = strings.NewReader(alicePass + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("silt user %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// client is a franz-go client on the SASL_SSL listener.
func (e *secureSilt) client(t testing.TB, m ksasl.Mechanism, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return newClient(t, e.saslAddr, append([]kgo.Opt{kgo.SASL(m), kgo.DialTLSConfig(e.ca.ClientTLS(t, tlstest.Pair{})),
		kgo.RetryTimeout(10 * time.Second)}, opts...)...)
}

func TestSecureClients(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := startSecure(t, b.name)
			ctx := testContext(t, 4*time.Minute)
			if out := siltUser(t, e.metastore, "list"); !strings.Contains(out, "alice\tSCRAM-SHA-256\titerations=8192") {
				t.Fatalf("silt user list: %q", out)
			}
			// A client that keeps working while others fail.
			steady := e.client(t, scram.Auth{User: "alice", Pass: alicePass}.AsSha512Mechanism(), kgo.DefaultProduceTopic("steady"))
			steadyProduce := func() {
				t.Helper()
				if err := steady.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
					t.Fatalf("the steady client failed: %v", err)
				}
			}
			steadyProduce()

			t.Run("franz-go", func(t *testing.T) { e.franz(t, ctx) })
			t.Run("kcat", func(t *testing.T) { e.kcat(t, ctx) })
			t.Run("confluent-kafka", func(t *testing.T) { e.python(t) })
			t.Run("kafkajs", func(t *testing.T) { e.kafkajs(t) })
			t.Run("sarama", func(t *testing.T) { e.sarama(t) })
			t.Run("refused", func(t *testing.T) { e.refused(t, ctx) })
			steadyProduce()
		})
	}
}

func (e *secureSilt) franz(t *testing.T, ctx context.Context) {
	for _, m := range []ksasl.Mechanism{
		plain.Auth{User: "alice", Pass: alicePass}.AsMechanism(),
		scram.Auth{User: "alice", Pass: alicePass}.AsSha256Mechanism(),
		scram.Auth{User: "alice", Pass: alicePass}.AsSha512Mechanism(),
		oauth.Auth{Token: e.iss.Token(t, "alice", time.Hour)}.AsMechanism(),
	} {
		topic := "franz-" + strings.ToLower(m.Name())
		cl := e.client(t, m, kgo.DefaultProduceTopic(topic))
		for i := range 10 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%s %d", m.Name(), i)}).FirstErr(); err != nil {
				t.Fatalf("%s produce: %v", m.Name(), err)
			}
		}
		cons := e.client(t, m, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		n := 0
		for n < 10 {
			fs := cons.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("%s consume: %v", m.Name(), err)
			}
			n += fs.NumRecords()
		}
	}
	// A client certificate on the SSL listener: principal User:CN=alice.
	cert := e.ca.Client(t, "alice", pkix.Name{CommonName: "alice"})
	cl := newClient(t, e.sslAddr, kgo.DialTLSConfig(e.ca.ClientTLS(t, cert)), kgo.DefaultProduceTopic("franz-ssl"))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("by certificate")}).FirstErr(); err != nil {
		t.Fatalf("produce with a client certificate: %v", err)
	}
	// Without one the client is anonymous: the authorizer refuses it.
	anon := newClient(t, e.sslAddr, kgo.DialTLSConfig(e.ca.ClientTLS(t, tlstest.Pair{})), kgo.DefaultProduceTopic("franz-ssl"),
		kgo.RecordDeliveryTimeout(10*time.Second))
	if err := anon.ProduceSync(ctx, &kgo.Record{Value: []byte("anonymous")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) &&
		!errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("anonymous produce: %v, want an authorization error", err)
	}
}

// kcatArgs are librdkafka's settings for the SASL_SSL listener.
func (e *secureSilt) kcatArgs(mech, pass string) []string {
	return []string{"-b", e.saslAddr, "-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location=" + e.ca.File,
		"-X", "sasl.mechanisms=" + mech, "-X", "sasl.username=alice", "-X", "sasl.password=" + pass}
}

func (e *secureSilt) kcat(t *testing.T, ctx context.Context) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		missingTool(t, "kcat not installed")
	}
	// Debian's kcat links librdkafka 2.0.2, whose SCRAM client-final
	// message repeats the client nonce (fixed in librdkafka 2.6.1): silt,
	// like Kafka 4, checks the nonce as RFC 5802 says and refuses it. SCRAM
	// through librdkafka is covered by confluent-kafka's current wheel.
	for _, mech := range []string{"PLAIN"} {
		topic := "kcat-" + strings.ToLower(mech)
		prod := exec.CommandContext(ctx, kcat, append(e.kcatArgs(mech, alicePass), "-t", topic, "-P", "-p", "0")...)
		prod.Stdin = strings.NewReader("one\ntwo\nthree\n")
		if out, err := prod.CombinedOutput(); err != nil {
			t.Fatalf("kcat %s produce: %v\n%s", mech, err, out)
		}
		cons := exec.CommandContext(ctx, kcat, append(e.kcatArgs(mech, alicePass), "-t", topic, "-C", "-o", "beginning", "-e", "-q")...)
		out, err := cons.Output()
		if err != nil || string(out) != "one\ntwo\nthree\n" {
			t.Fatalf("kcat %s consume: %v %q", mech, err, out)
		}
	}
	// A wrong password: librdkafka reports the broker's authentication
	// failure.
	bad := exec.CommandContext(ctx, kcat, append(e.kcatArgs("PLAIN", "wrong"), "-L", "-m", "10")...)
	out, err := bad.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Authentication failed") {
		t.Fatalf("kcat with a wrong password: %v\n%s", err, out)
	}
	// A client certificate from another CA on the SSL listener.
	other := tlstest.NewCA(t, "other").Client(t, "mallory", pkix.Name{CommonName: "mallory"})
	badCert := exec.CommandContext(ctx, kcat, "-b", e.sslAddr, "-X", "security.protocol=SSL", "-X", "ssl.ca.location="+e.ca.File,
		"-X", "ssl.certificate.location="+other.CertFile, "-X", "ssl.key.location="+other.KeyFile, "-L", "-m", "10")
	if out, err := badCert.CombinedOutput(); err == nil {
		t.Fatalf("kcat with a foreign client certificate listed metadata:\n%s", out)
	}
}

// runResult runs a client script and decodes its RESULT line.
func runResult(t *testing.T, cmd *exec.Cmd, out any) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	for line := range strings.Lines(stdout.String()) {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			if err := json.Unmarshal([]byte(rest), out); err != nil {
				t.Fatalf("result %q: %v", rest, err)
			}
			return
		}
	}
	t.Fatalf("%s printed no RESULT line\nstdout:\n%s\nstderr:\n%s", cmd.Args[0], stdout.String(), stderr.String())
}

type scriptResult struct {
	Produced, Consumed int
	OK                 bool
	Error, Message     string
}

// currentPython is the venv with a current confluent-kafka (librdkafka
// 2.16) that tests/install-deps.sh makes.
func currentPython(t testing.TB) string {
	t.Helper()
	cache := os.Getenv("SILT_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "silt")
	}
	py := filepath.Join(cache, "venv-confluent-kafka", "bin", "python")
	if err := exec.Command(py, "-c", "import confluent_kafka").Run(); err != nil {
		missingTool(t, "%s cannot import confluent_kafka (tests/install-deps.sh installs it): %v", py, err)
	}
	return py
}

func (e *secureSilt) python(t *testing.T) {
	py := currentPython(t)
	script := filepath.Join("..", "interop", "python", "secure.py")
	ctx := testContext(t, 3*time.Minute)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		var r scriptResult
		runResult(t, exec.CommandContext(ctx, py, script, e.ca.File, mech, "alice", alicePass, e.saslAddr, "python-"+strings.ToLower(mech), "20"), &r)
		if r.Produced != 20 || r.Consumed != 20 {
			t.Fatalf("confluent-kafka %s: %+v", mech, r)
		}
	}
	var r scriptResult
	runResult(t, exec.CommandContext(ctx, py, script, e.ca.File, "SCRAM-SHA-256", "alice", "wrong", e.saslAddr, "-", "0"), &r)
	if r.Error != "_AUTHENTICATION" {
		t.Fatalf("confluent-kafka with a wrong password: %+v, want _AUTHENTICATION", r)
	}
}

func (e *secureSilt) kafkajs(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		missingTool(t, "node not installed")
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "kafkajs")); err != nil {
		missingTool(t, "kafkajs not installed: run tests/install-deps.sh")
	}
	ctx := testContext(t, 2*time.Minute)
	for _, mech := range []string{"plain", "scram-sha-256", "scram-sha-512"} {
		cmd := exec.CommandContext(ctx, node, "secure.js", e.ca.File, mech, "alice", alicePass, e.saslAddr, "kafkajs-secure", "10")
		cmd.Dir = nodeDir
		var r scriptResult
		runResult(t, cmd, &r)
		if r.Produced != 10 || r.Consumed != 10 {
			t.Fatalf("kafkajs %s: %+v", mech, r)
		}
	}
	cmd := exec.CommandContext(ctx, node, "secure.js", e.ca.File, "scram-sha-256", "mallory", "x", e.saslAddr, "-", "0")
	cmd.Dir = nodeDir
	var r scriptResult
	runResult(t, cmd, &r)
	if r.Error != "KafkaJSSASLAuthenticationError" {
		t.Fatalf("kafkajs as an unknown user: %+v", r)
	}
}

// saramaSCRAM adapts xdg-go/scram's client to sarama.SCRAMClient.
type saramaSCRAM struct {
	hash xscram.HashGeneratorFcn
	conv *xscram.ClientConversation
}

func (s *saramaSCRAM) Begin(user, pass, authz string) error {
	c, err := s.hash.NewClient(user, pass, authz)
	if err != nil {
		return err
	}
	s.conv = c.NewConversation()
	return nil
}
func (s *saramaSCRAM) Step(challenge string) (string, error) { return s.conv.Step(challenge) }
func (s *saramaSCRAM) Done() bool                            { return s.conv.Done() }

func (e *secureSilt) saramaConfig(t *testing.T, mech sarama.SASLMechanism, pass string) *sarama.Config {
	cfg := saramaConfig()
	cfg.Net.TLS.Enable = true
	cfg.Net.TLS.Config = e.ca.ClientTLS(t, tlstest.Pair{})
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Mechanism = mech
	cfg.Net.SASL.User, cfg.Net.SASL.Password = "alice", pass
	switch mech {
	case sarama.SASLTypeSCRAMSHA256:
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{hash: xscram.SHA256} }
	case sarama.SASLTypeSCRAMSHA512:
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{hash: xscram.SHA512} }
	}
	cfg.Producer.Return.Successes = true
	cfg.Metadata.Retry.Max = 1
	return cfg
}

func (e *secureSilt) sarama(t *testing.T) {
	for _, mech := range []sarama.SASLMechanism{sarama.SASLTypePlaintext, sarama.SASLTypeSCRAMSHA256, sarama.SASLTypeSCRAMSHA512} {
		cfg := e.saramaConfig(t, mech, alicePass)
		topic := "sarama-" + strings.ToLower(string(mech))
		prod, err := sarama.NewSyncProducer([]string{e.saslAddr}, cfg)
		if err != nil {
			t.Fatalf("sarama %s producer: %v", mech, err)
		}
		for i := range 5 {
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(fmt.Sprint(i))}); err != nil {
				t.Fatalf("sarama %s produce: %v", mech, err)
			}
		}
		prod.Close()
		cons, err := sarama.NewConsumer([]string{e.saslAddr}, cfg)
		if err != nil {
			t.Fatalf("sarama %s consumer: %v", mech, err)
		}
		pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("sarama %s consume: %v", mech, err)
		}
		for range 5 {
			select {
			case <-pc.Messages():
			case err := <-pc.Errors():
				t.Fatalf("sarama %s: %v", mech, err)
			case <-time.After(30 * time.Second):
				t.Fatalf("sarama %s: no message", mech)
			}
		}
		pc.Close()
		cons.Close()
	}
	_, err := sarama.NewClient([]string{e.saslAddr}, e.saramaConfig(t, sarama.SASLTypeSCRAMSHA256, "wrong"))
	if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) && !strings.Contains(fmt.Sprint(err), "SASL Authentication failed") {
		t.Fatalf("sarama with a wrong password: %v", err)
	}
}

// refused: bad credentials are refused with Kafka's error and the
// connection closed, through the binary.
func (e *secureSilt) refused(t *testing.T, ctx context.Context) {
	for name, m := range map[string]ksasl.Mechanism{
		"wrong password": scram.Auth{User: "alice", Pass: "wrong"}.AsSha256Mechanism(),
		"unknown user":   plain.Auth{User: "mallory", Pass: alicePass}.AsMechanism(),
		"expired token":  oauth.Auth{Token: e.iss.Token(t, "alice", -time.Minute)}.AsMechanism(),
		"foreign token":  oauth.Auth{Token: jwttest.New(t).Token(t, "alice", time.Hour)}.AsMechanism(),
	} {
		cl := e.client(t, m)
		if err := cl.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("%s: %v, want SASL_AUTHENTICATION_FAILED", name, err)
		}
	}
	// On the wire: the answer, then the close.
	nc, err := tls.Dial("tcp", e.saslAddr, e.ca.ClientTLS(t, tlstest.Pair{}))
	if err != nil {
		t.Fatal(err)
	}
	r := &rawConn{t: t, c: nc, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("silt-e2e-raw"))}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = "PLAIN"
	if resp := r.roundTrip(hs).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
		t.Fatalf("handshake: %d", resp.ErrorCode)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.SetVersion(2)
	au.SASLAuthBytes = []byte("\x00alice\x00wrong")
	if resp := r.roundTrip(au).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		t.Fatalf("authenticate: %d", resp.ErrorCode)
	}
	r.expectClosed()
}

// saslRaw is a raw connection authenticated with SASL/PLAIN (SaslHandshake
// v1, SaslAuthenticate v2) on a SASL_PLAINTEXT listener.
func saslRaw(t testing.TB, addr, user, pass string) *rawConn {
	t.Helper()
	r := dialRaw(t, addr)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = "PLAIN"
	if resp := r.roundTrip(hs).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
		t.Fatalf("handshake: %d", resp.ErrorCode)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.SetVersion(2)
	au.SASLAuthBytes = []byte("\x00" + user + "\x00" + pass)
	if resp := r.roundTrip(au).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != 0 {
		t.Fatalf("authenticate as %s: %d", user, resp.ErrorCode)
	}
	return r
}

// TestACLPropagation: three agents on one Postgres; an ACL created or
// deleted through one agent takes effect on every agent within a second
// (LISTEN/NOTIFY reloads their caches).
func TestACLPropagation(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	pg, s3 := harness.Postgres(t), harness.S3(t)
	siltUser(t, pg, "create", "--user", "alice", "--password-file", "-")
	siltUser(t, pg, "create", "--user", "admin", "--password-file", "-")
	var agents []*silt
	for i := range 3 {
		agents = append(agents, newAgentOn(t, pg, s3, "--agent-id", fmt.Sprintf("acl-%d", i),
			"--listeners", "SASL_PLAINTEXT://127.0.0.1:0", "--sasl-mechanisms", "PLAIN",
			"--authorizer", "--super-users", "User:admin").Start())
	}
	admin := newClient(t, agents[0].Kafka(), kgo.SASL(plain.Auth{User: "admin", Pass: alicePass}.AsMechanism()))
	adm := kadm.NewClient(admin)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "guarded"); err != nil {
		t.Fatal(err)
	}
	alice := make([]*rawConn, len(agents))
	for i, a := range agents {
		alice[i] = saslRaw(t, a.Kafka(), "alice", alicePass)
	}
	describe := func(i int) int16 {
		req := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("guarded")
		req.Topics = append(req.Topics, mt)
		return alice[i].roundTrip(req).(*kmsg.MetadataResponse).Topics[0].ErrorCode
	}
	for i := range agents {
		if code := describe(i); code != kerr.TopicAuthorizationFailed.Code {
			t.Fatalf("agent %d before the ACL: code %d", i, code)
		}
	}
	// within polls each agent until want holds, and reports how long it
	// took after the change was acknowledged.
	within := func(what string, since time.Time, want func(int16) bool) {
		t.Helper()
		for i := range agents {
			for !want(describe(i)) {
				if time.Since(since) > time.Second {
					t.Fatalf("agent %d: %s not in effect after %s", i, what, time.Since(since))
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("agent %d: %s in effect %s after the change", i, what, time.Since(since).Round(time.Millisecond))
		}
	}
	acl := kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("guarded").Operations(kadm.OpDescribe)
	res, err := adm.CreateACLs(ctx, acl)
	if err != nil || res[0].Err != nil {
		t.Fatalf("create acl: %v %+v", err, res)
	}
	within("the new ACL", time.Now(), func(c int16) bool { return c == 0 })
	if _, err := adm.DeleteACLs(ctx, acl); err != nil {
		t.Fatal(err)
	}
	within("the ACL's deletion", time.Now(), func(c int16) bool { return c == kerr.TopicAuthorizationFailed.Code })
}
