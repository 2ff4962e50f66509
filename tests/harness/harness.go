// Package harness gives tests real Postgres and S3 (MinIO) servers, a real
// Apache Kafka broker as the reference (Kafka, StartKafka; kafka.go), and
// the Java and Python Kafka clients (Java, PythonClients), all installed
// outside the repository under $SILT_CACHE.
//
// Each server is started lazily, once per test process, on the first call
// to Postgres or S3, from the first of these sources that works:
//
//  1. an existing server named by environment variables:
//     SILT_TEST_POSTGRES_URL (a postgres:// URL of a server where the harness
//     may CREATE DATABASE) and SILT_TEST_S3_ENDPOINT (with
//     SILT_TEST_S3_ACCESS_KEY and SILT_TEST_S3_SECRET_KEY);
//  2. a container through testcontainers-go, when a Docker engine answers;
//  3. a local process: Postgres from /usr/lib/postgresql/*/bin (the newest
//     version) and MinIO from $SILT_CACHE/bin/minio (SILT_CACHE defaults to
//     ~/.cache/silt; tests/install-deps.sh builds it).
//
// When no server can be had the test is skipped with the reason, except
// when CI=true, where it fails: CI must never pass by skipping everything.
// Every server started is announced with one line on stderr and in the
// log of the first test that used it.
//
// Use it from TestMain so servers are stopped when the tests end:
//
//	func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }
//
// or, for packages that also check for goroutine leaks,
//
//	func TestMain(m *testing.M) { os.Exit(harness.RunCheckingLeaks(m)) }
package harness

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// S3Config is an S3 endpoint with a bucket created for the caller.
type S3Config struct {
	Endpoint  string // http://127.0.0.1:port
	Region    string
	AccessKey string
	SecretKey string
	Bucket    string
}

// URL is the bucket URL as silt's flags take it:
// s3://bucket?endpoint=...&region=... (credentials from the environment;
// see Env).
func (c S3Config) URL() string {
	q := url.Values{}
	q.Set("endpoint", c.Endpoint)
	q.Set("region", c.Region)
	return "s3://" + c.Bucket + "?" + q.Encode()
}

// Env returns the environment variables that give a child process (a silt
// binary under test) the credentials for this endpoint, in os/exec's
// "KEY=value" form.
func (c S3Config) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + c.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + c.SecretKey,
		"AWS_REGION=" + c.Region,
	}
}

// Postgres returns a URL to a fresh, empty database.
func Postgres(t testing.TB) string {
	t.Helper()
	srv, err := postgresServer(t)
	if err != nil {
		unavailable(t, "postgres", err)
		return ""
	}
	u, err := srv.createDatabase(t)
	if err != nil {
		t.Fatalf("harness: create database: %v", err)
	}
	return u
}

// S3 returns an endpoint with a fresh, empty bucket.
func S3(t testing.TB) S3Config {
	t.Helper()
	srv, err := s3ServerFor(t)
	if err != nil {
		unavailable(t, "s3", err)
		return S3Config{}
	}
	cfg, err := srv.createBucket(t)
	if err != nil {
		t.Fatalf("harness: create bucket: %v", err)
	}
	return cfg
}

// Run runs the tests (call from TestMain: os.Exit(harness.Run(m))) and then
// stops every server the harness started.
func Run(m *testing.M) int {
	code := m.Run()
	if err := stopAll(); err != nil {
		fmt.Fprintf(os.Stderr, "harness: stopping servers: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// RunCheckingLeaks is Run followed by a goroutine leak check (goleak),
// done after the servers and the harness's own connections are gone so
// they do not count as leaks. A leak fails the test binary.
func RunCheckingLeaks(m *testing.M, opts ...goleak.Option) int {
	code := Run(m)
	if code != 0 {
		return code
	}
	if dockerAvailable() {
		// Containers were (or could have been) used: testcontainers keeps
		// a connection to its reaper container, and the Docker client's
		// idle connections, for the life of the process.
		opts = append(opts,
			goleak.IgnoreAnyFunction("github.com/testcontainers/testcontainers-go.(*Reaper).connect.func1"),
			goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		)
	}
	if err := goleak.Find(opts...); err != nil {
		fmt.Fprintf(os.Stderr, "harness: goroutine leak: %v\n", err)
		return 1
	}
	return code
}

// unavailable skips the test, or fails it under CI=true.
func unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if Strict() {
		t.Fatalf("harness: no %s server (CI=true or SILT_TEST_STRICT=1 forbids skipping): %v", what, err)
	}
	t.Skipf("harness: no %s server, skipping: %v", what, err)
}

// Strict reports whether a test whose server or client tool is missing
// must fail instead of skipping: in CI (CI=true) and under `make test`
// (SILT_TEST_STRICT=1), which install everything the tests need first, so
// a skip would hide a suite that never ran.
func Strict() bool {
	return os.Getenv("CI") == "true" || os.Getenv("SILT_TEST_STRICT") == "1"
}

// announce reports a started server on stderr and in the test's log, so
// test output shows which real servers a suite ran against.
func announce(t testing.TB, line string) {
	t.Helper()
	fmt.Fprintln(os.Stderr, line)
	t.Log(line)
}

// stoppers holds what Run must stop, in start order.
var (
	// stopMu guards stopFuncs.
	stopMu    sync.Mutex
	stopFuncs []func() error
)

func onStop(f func() error) {
	stopMu.Lock()
	defer stopMu.Unlock()
	stopFuncs = append(stopFuncs, f)
}

// stopAll stops everything in reverse start order and returns every error.
func stopAll() error {
	stopMu.Lock()
	fs := stopFuncs
	stopFuncs = nil
	stopMu.Unlock()
	var errs []error
	for i := len(fs) - 1; i >= 0; i-- {
		errs = append(errs, fs[i]())
	}
	return errors.Join(errs...)
}
