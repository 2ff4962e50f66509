package e2e

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siltdata/silt/tests/harness"
)

// javaOptions keep the driver's JVM small and quick to start: the checks
// measure behaviour, not speed.
var javaOptions = []string{
	"-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
	"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
}

// TestJavaClients runs the Java driver's checks (tests/java/clients:
// producer with every codec, consumer assignors, static membership, seek,
// pause and offsetsForTimes, the Admin client, the transactional producer
// with read_committed consumers, Kafka Streams stateless, stateful and
// exactly_once_v2) with kafka-clients 4.x against silt dev and silt agent, and
// with the 3.x line against silt dev. One JVM runs all checks of a run;
// each check is a subtest.
func TestJavaClients(t *testing.T) {
	j := harness.Java(t)
	t.Run("clients-"+j.Clients4Version, func(t *testing.T) {
		t.Parallel()
		forEachBackend(t, func(t *testing.T, newSilt func(t testing.TB, extra ...string) *silt) {
			s := newSilt(t, "--flush-interval", "20ms", "--log-level", "info").Start()
			runJavaChecks(t, j.Java, j.Clients4CP, s.Kafka())
		})
	})
	t.Run("clients-"+j.Clients3Version+"/dev", func(t *testing.T) {
		t.Parallel()
		s := newDev(t, "--flush-interval", "20ms", "--log-level", "info").Start()
		runJavaChecks(t, j.Java, j.Clients3CP, s.Kafka())
	})
}

// runJavaChecks runs dev.silt.javatest.Main's checks (all, or those
// named) against bootstrap and reports each as a subtest.
func runJavaChecks(t *testing.T, java, classpath, bootstrap string, checks ...string) {
	t.Helper()
	ctx := testContext(t, 8*time.Minute)
	args := append(append([]string{}, javaOptions...), "-cp", classpath, "dev.silt.javatest.Main", "checks", bootstrap)
	runDriverChecks(t, exec.CommandContext(ctx, java, append(args, checks...)...), len(checks))
}

// runDriverChecks runs a check driver (the Java driver, clients.py) that
// prints "PASS name seconds" or "FAIL name: message" per check, and
// reports each as a subtest. want is the number of checks named (0: all).
func runDriverChecks(t *testing.T, cmd *exec.Cmd, want int) {
	t.Helper()
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start java: %v", err)
	}
	ran, failed := 0, false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "PASS "):
			f := strings.Fields(line)
			ran++
			t.Run(f[1], func(t *testing.T) { t.Logf("passed in %ss", f[2]) })
		case strings.HasPrefix(line, "FAIL "):
			name, msg, _ := strings.Cut(strings.TrimPrefix(line, "FAIL "), ": ")
			ran++
			failed = true
			t.Run(name, func(t *testing.T) { t.Error(msg) })
		}
	}
	err = cmd.Wait()
	if err != nil || failed {
		t.Errorf("%s: %v; the driver's log (stderr):\n%s", filepath.Base(cmd.Path), err, lastLines(stderr.String(), 200))
	}
	if ran == 0 || want > 0 && ran != want {
		t.Errorf("the driver reported %d checks", ran)
	}
}

// syncBuffer is a bytes.Buffer that a process writes while a test reads.
type syncBuffer struct {
	mu sync.Mutex // mu guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
