// Package loadgen is silt's benchmark load generator: franz-go producers
// and consumers that measure throughput and exact latency quantiles
// against any Kafka-compatible cluster, plus the readers of an agent's
// /proc and /metrics figures and the table the report prints.
//
// It is an ordinary (non-test) package so that `silt bench` and the full
// `make bench` report (tests/bench) drive the same code.
//
// Every record value starts with the producer's wall-clock send time
// (8 bytes, big-endian Unix nanoseconds), so a consumer in the same
// process measures end-to-end latency without a side channel. The rest
// of the value is incompressible and distinct per record by default
// (PayloadRandom), so figures about storage measure storage; PayloadJSON
// gives realistic compressibility instead (payload.go).
package loadgen

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config is one load: where, how much and how fast.
type Config struct {
	// Brokers are the seed addresses (host:port).
	Brokers []string
	// Client is how every client reaches the brokers: plaintext when
	// zero, TLS and SASL for a secured listener.
	Client ClientOpts
	// Topic is produced to and consumed from; CreateTopic creates it.
	Topic string
	// Partitions of the topic when it is created.
	Partitions int
	// Producers is the number of independent clients producing at once:
	// several clients use several connections and produce pipelines, as
	// several applications would.
	Producers int
	// RecordSize is each record's value size in bytes (at least 8: the
	// send timestamp).
	RecordSize int
	// Duration bounds the produce phase.
	Duration time.Duration
	// Rate is the total produce rate in bytes per second across all
	// producers; 0 produces as fast as the cluster accepts (saturation).
	Rate float64
	// MaxBytes, when positive, stops producing once this many value bytes
	// were sent, even before Duration.
	MaxBytes int64
	// MaxBufferedRecords bounds each producer's unacknowledged records.
	// It is the producer's window: at saturation a produce takes at least
	// one flush interval, so throughput per client is bounded by about
	// MaxBufferedRecords × RecordSize / flush interval.
	MaxBufferedRecords int
	// MaxInflight, when positive, disables idempotence and allows this
	// many produce requests in flight per broker. An idempotent producer
	// (the default, 0) keeps at most 5 in flight: against a broker that
	// answers after a flush interval, records produced while 5 requests
	// wait are held in the client until one returns, which shows as
	// produce latency above the flush interval.
	MaxInflight int
	// Compression is the producer batch codec: none, gzip, snappy, lz4 or
	// zstd. none is the default so MB/s means bytes on the wire (and, with
	// the random payload, bytes stored).
	Compression string
	// Payload is how values are filled: PayloadRandom (the default,
	// incompressible and distinct per record) or PayloadJSON (JSON-like
	// events with realistic compressibility). Empty means PayloadRandom.
	Payload string
	// ClientDefaults makes each producer client take the library's
	// defaults for everything but brokers, topic and client id
	// (MaxBufferedRecords, MaxInflight and Compression are ignored):
	// the single-producer figures measure what an application gets
	// without tuning. franz-go's defaults: idempotent, acks=all, 5
	// requests in flight per broker, linger 10 ms, snappy, 50000
	// buffered records.
	ClientDefaults bool
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig is the load: 12 partitions, 4 producers, 1 KiB
// records, acks=all, 10 s.
func DefaultConfig() Config {
	return Config{
		Brokers:            []string{"127.0.0.1:9092"},
		Topic:              "silt-bench",
		Partitions:         12,
		Producers:          4,
		RecordSize:         1024,
		Duration:           10 * time.Second,
		MaxBufferedRecords: 64 << 10,
		Compression:        "none",
		Payload:            PayloadRandom,
	}
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("empty topic"))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("partitions %d: must be at least 1", c.Partitions))
	}
	if c.Producers < 1 {
		errs = append(errs, fmt.Errorf("producers %d: must be at least 1", c.Producers))
	}
	if c.RecordSize < 8 {
		errs = append(errs, fmt.Errorf("record size %d: must be at least 8 (the send timestamp)", c.RecordSize))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration %s: must be positive", c.Duration))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %g: must not be negative", c.Rate))
	}
	if c.MaxInflight < 0 {
		errs = append(errs, fmt.Errorf("max inflight %d: must not be negative", c.MaxInflight))
	}
	if c.MaxBufferedRecords < 1 {
		errs = append(errs, fmt.Errorf("max buffered records %d: must be at least 1", c.MaxBufferedRecords))
	}
	if _, err := codec(c.Compression); err != nil {
		errs = append(errs, err)
	}
	if err := validPayload(c.payload()); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c Config) payload() string {
	if c.Payload == "" {
		return PayloadRandom
	}
	return c.Payload
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}
