package agent

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/siltdata/silt/auth/tlsconf/tlstest"
	"github.com/siltdata/silt/metastore"
)

// BenchmarkProduceSecurity compares produce throughput through the
// PLAINTEXT listener with the SASL_SSL one (TLS + SCRAM-SHA-512, the
// authorizer on) of one agent: 16 KiB records of distinct random bytes,
// an idempotent franz-go producer, 5 ms flush interval. Run with
// go test -run '^$' -bench ProduceSecurity ./agent (make bench-micro).
func BenchmarkProduceSecurity(b *testing.B) {
	const recordSize = 16 << 10
	for _, name := range []string{"plaintext", "tls_scram"} {
		b.Run(name, func(b *testing.B) {
			s := startSecure(b, func(c *Config) {
				// Clients follow INTERNAL's advertised address here.
				c.Listeners[0].AdvertisedHost, c.Listeners[0].AdvertisedPort = "", 0
				c.Ingest.FlushInterval = 5 * time.Millisecond
				c.Authorize = true
				c.ACL.SuperUsers = []string{"User:alice", "User:ANONYMOUS"}
			})
			if _, err := s.store.CreateTopic(b.Context(), metastore.TopicSpec{Name: "bench", Partitions: 4}); err != nil {
				b.Fatal(err)
			}
			opts := []kgo.Opt{kgo.DefaultProduceTopic("bench"), kgo.ProducerLinger(time.Millisecond)}
			var cl *kgo.Client
			if name == "tls_scram" {
				cl = s.saslClient(b, scram.Auth{User: "alice", Pass: alicePassword}.AsSha512Mechanism(), opts...)
			} else {
				var err error
				if cl, err = kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.ListenerAddr("INTERNAL"))}, opts...)...); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(cl.Close)
			}
			payloads := make([][]byte, 256)
			for i := range payloads {
				payloads[i] = make([]byte, recordSize)
				_, _ = rand.Read(payloads[i])
			}
			ctx := b.Context()
			// Connected (and authenticated) before the clock starts.
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: payloads[0]}).FirstErr(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(recordSize)
			b.ResetTimer()
			// A b.N loop, not b.Loop: produce is asynchronous, and the
			// final Flush (every record acknowledged) must be timed too.
			for i := range b.N {
				cl.Produce(ctx, &kgo.Record{Value: payloads[i%len(payloads)]}, func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkSCRAMLogin is the cost of one new authenticated connection:
// TCP, the TLS handshake, SCRAM-SHA-512 (4096 iterations on the client, a
// credential lookup and proof check on the agent) and one Metadata.
func BenchmarkSCRAMLogin(b *testing.B) {
	s := startSecure(b)
	ctx := b.Context()
	for b.Loop() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.ListenerAddr("EXTERNAL")),
			kgo.DialTLSConfig(s.ca.ClientTLS(b, tlstest.Pair{})),
			kgo.SASL(scram.Auth{User: "alice", Pass: alicePassword}.AsSha512Mechanism()))
		if err != nil {
			b.Fatal(err)
		}
		if err := cl.Ping(ctx); err != nil {
			b.Fatal(err)
		}
		cl.Close()
	}
}
