package harness

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var pythonEnv struct {
	once sync.Once
	py   string
	err  error
}

// PythonClients returns the python of a virtualenv under $SILT_CACHE that
// holds the Python Kafka clients pinned in tests/interop/python/
// requirements.txt (confluent-kafka, aiokafka, kafka-python), made by
// tests/interop/python/venv.sh once per test process (cheap when it
// exists). Without python3 the test is skipped, or fails under Strict.
func PythonClients(t testing.TB) string {
	t.Helper()
	pythonEnv.once.Do(func() {
		script := filepath.Join(repoRoot(), "tests", "interop", "python", "venv.sh")
		cmd := exec.Command(script)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			pythonEnv.err = fmt.Errorf("%s: %w\n%s", script, err, lastLines(stderr.String(), 30))
			return
		}
		pythonEnv.py = strings.TrimSpace(lastLines(stdout.String(), 1))
	})
	if pythonEnv.err != nil {
		unavailable(t, "python clients", pythonEnv.err)
	}
	return pythonEnv.py
}
