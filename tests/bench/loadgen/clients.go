package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// ProducerClient is one Kafka client library driven as a single
// producer with the library's default settings (idempotence on): the
// single-producer figures. FranzGo runs in process; any other library
// runs as an External command, so adding one (the Java client, say)
// takes a program that speaks External's protocol and one entry in the
// report's client list.
type ProducerClient interface {
	// Name labels the client in reports ("franz-go", "librdkafka").
	Name() string
	// Produce produces cfg.RecordSize-byte values of cfg.Payload to
	// cfg.Topic for cfg.Duration from one producer, at cfg.Rate bytes per
	// second or, when it is 0, as fast as the client goes, waits for
	// every acknowledgement, and returns what it measured (Latency:
	// Produce call to acknowledgement, per record).
	Produce(ctx context.Context, cfg Config) (ProduceResult, error)
}

// FranzGo is franz-go with its defaults (see Config.ClientDefaults).
type FranzGo struct{}

// Name implements ProducerClient.
func (FranzGo) Name() string { return "franz-go" }

// Produce implements ProducerClient.
func (FranzGo) Produce(ctx context.Context, cfg Config) (ProduceResult, error) {
	cfg.Producers, cfg.ClientDefaults, cfg.MaxBytes = 1, true, 0
	return Produce(ctx, cfg)
}

// External is a producer client run as a command. The command gets
//
//	--brokers host:port,... --topic T --duration SECONDS --record-size N --payload random|json --rate BYTES_PER_SECOND
//
// appended to Argv, produces from one producer with the library's
// defaults but enable.idempotence (or its equivalent) on, at the rate
// (0: as fast as the client goes), and prints one JSON object on stdout:
//
//	{"client": "librdkafka 2.0.2", "records": N, "bytes": N, "errors": N,
//	 "first_error": "...", "elapsed_s": S, "latencies_us": [N, ...]}
//
// bytes counts acknowledged value bytes, elapsed_s runs from the first
// produce call to the last acknowledgement, and latencies_us holds every
// acknowledged record's produce-to-acknowledgement time. Anything on
// stderr is kept for the error message.
type External struct {
	Label string
	Argv  []string
}

// Name implements ProducerClient.
func (e External) Name() string { return e.Label }

// externalResult is the JSON object an External command prints.
type externalResult struct {
	Client      string  `json:"client"`
	Records     int64   `json:"records"`
	Bytes       int64   `json:"bytes"`
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"first_error"`
	ElapsedSecs float64 `json:"elapsed_s"`
	LatenciesUS []int64 `json:"latencies_us"`
}

// Produce implements ProducerClient.
func (e External) Produce(ctx context.Context, cfg Config) (ProduceResult, error) {
	if len(e.Argv) == 0 {
		return ProduceResult{}, errors.New("external producer: no command")
	}
	if !cfg.Client.Plaintext() {
		// Its protocol carries no TLS or SASL settings: running it in
		// plaintext would measure something else than asked.
		return ProduceResult{}, fmt.Errorf("%s producer: %s connections are not supported for external clients", e.Label, cfg.Client)
	}
	// The command may take a while to start and to drain its queue; the
	// bound is on failure, not a pace.
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration+3*time.Minute)
	defer cancel()
	args := append(append([]string(nil), e.Argv[1:]...),
		"--brokers", strings.Join(cfg.Brokers, ","), "--topic", cfg.Topic,
		"--duration", fmt.Sprintf("%g", cfg.Duration.Seconds()),
		"--record-size", fmt.Sprint(cfg.RecordSize), "--payload", cfg.payload(), "--rate", fmt.Sprintf("%g", cfg.Rate))
	cmd := exec.CommandContext(ctx, e.Argv[0], args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return ProduceResult{}, fmt.Errorf("%s producer: %w: %s", e.Label, err, tail(stderr.String(), 2000))
	}
	var r externalResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return ProduceResult{}, fmt.Errorf("%s producer: output: %w: %s", e.Label, err, tail(stdout.String(), 500))
	}
	res := ProduceResult{Records: r.Records, Bytes: r.Bytes, Errors: r.Errors, Latency: &Samples{},
		Elapsed: time.Duration(r.ElapsedSecs * float64(time.Second))}
	if r.FirstError != "" {
		res.FirstErr = errors.New(r.FirstError)
	}
	for _, us := range r.LatenciesUS {
		res.Latency.Add(time.Duration(us) * time.Microsecond)
	}
	cfg.logger().Info("external produce done", "client", r.Client, "topic", cfg.Topic, "records", res.Records,
		"mb_per_s", MBps(res.Throughput()), "errors", res.Errors)
	return res, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// RunProducer creates the topic, warms up (with the load generator's own
// producers, so the agent has connections, metadata and a first segment
// behind it), then runs one client's single-producer phase and measures
// the agent through probe. No consumer reads alongside.
func RunProducer(ctx context.Context, client ProducerClient, cfg Config, probe Probe) (LoadResult, error) {
	if err := cfg.Validate(); err != nil {
		return LoadResult{}, err
	}
	if err := CreateTopic(ctx, cfg); err != nil {
		return LoadResult{}, err
	}
	if err := warmup(ctx, cfg); err != nil {
		return LoadResult{}, err
	}
	before := probe.snapshot(ctx)
	var rss *RSSPeak
	if probe.PID > 0 {
		rss = WatchRSS(ctx, probe.PID, 50*time.Millisecond)
	}
	pres, err := client.Produce(ctx, cfg)
	after := probe.snapshot(ctx)
	f := figures(before, after, rss, probe.PID)
	if err != nil {
		return LoadResult{}, err
	}
	return LoadResult{Produce: pres, Consume: ConsumeResult{EndToEnd: &Samples{}}, Agent: f}, nil
}
