package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/siltdata/silt/tests/harness"
)

// pythonClients is the PyPI clients' check script (confluent-kafka,
// aiokafka, kafka-python).
var pythonClients = filepath.Join("..", "interop", "python", "clients.py")

// TestPythonClients runs the Python clients from PyPI (pinned in
// tests/interop/python/requirements.txt, installed into a virtualenv
// under $SILT_CACHE) against silt dev and silt agent: each produces with
// compression, keys and headers, consumes in a group, commits and uses
// its admin client (topics, groups, offsets, configs).
func TestPythonClients(t *testing.T) {
	py := harness.PythonClients(t)
	forEachBackend(t, func(t *testing.T, newSilt func(t testing.TB, extra ...string) *silt) {
		s := newSilt(t, "--flush-interval", "20ms", "--log-level", "info").Start()
		ctx := testContext(t, 5*time.Minute)
		runDriverChecks(t, exec.CommandContext(ctx, py, pythonClients, s.Kafka()), 0)
	})
}
