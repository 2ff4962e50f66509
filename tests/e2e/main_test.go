// Package e2e runs the silt binary as a subprocess — `silt dev` with a
// temporary data directory and `silt agent` against the harness's Postgres
// and MinIO — and drives it with real Kafka clients (franz-go, kcat,
// kafkajs) and raw protocol frames: interop, idempotent retries, crash and
// graceful-shutdown durability, and malformed input.
package e2e

import (
	"os"
	"testing"

	"github.com/siltdata/silt/tests/harness"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(txnWorkerEnv); spec != "" {
		// A re-executed test binary: a transactional worker process.
		os.Exit(runTxnWorker(spec))
	}
	// The goroutine leak check runs after every server, subprocess and
	// client of the tests is gone.
	code := harness.RunCheckingLeaks(m)
	removeBinary()
	os.Exit(code)
}
