package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// JavaEnv is Apache Kafka and the Java clients from Maven Central, as
// tests/java/build.sh resolved them into $SILT_CACHE/java: classpaths to
// run with `java -cp`.
type JavaEnv struct {
	Java string // the java binary

	KafkaVersion string
	// KafkaCP runs the broker (kafka.Kafka) and Kafka's command-line
	// tools; with the driver jar first (DriverCP) it also runs the
	// driver's in-process CLI runner (dev.silt.javatest.Main cli).
	KafkaCP string
	// DriverJar is silt's Java test driver (tests/java/clients).
	DriverJar string

	Clients4Version, Clients3Version string
	// Clients4CP and Clients3CP run the driver with kafka-clients and
	// kafka-streams of each line.
	Clients4CP, Clients3CP string

	// ConnectVersion and ConnectCP run a Kafka Connect worker
	// (org.apache.kafka.connect.cli.ConnectDistributed) with the
	// FileStream connectors.
	ConnectVersion, ConnectCP string
}

// CLICP is the classpath of the driver's CLI runner: the driver jar and
// Kafka's tools.
func (j JavaEnv) CLICP() string { return j.DriverJar + ":" + j.KafkaCP }

var javaEnv struct {
	once sync.Once
	env  JavaEnv
	err  error
}

// Java returns the Java environment, running tests/java/build.sh once per
// test process (cheap when its last build is current; a minute the first
// time, resolving from Maven Central). Without java or mvn the test is
// skipped, or fails under Strict.
func Java(t testing.TB) JavaEnv {
	t.Helper()
	env, err := javaFor()
	if err != nil {
		unavailable(t, "Java/Kafka", err)
	}
	return env
}

// javaFor is Java without a test to report to.
func javaFor() (JavaEnv, error) {
	javaEnv.once.Do(func() { javaEnv.env, javaEnv.err = buildJava() })
	return javaEnv.env, javaEnv.err
}

func buildJava() (JavaEnv, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return JavaEnv{}, fmt.Errorf("no java on PATH (tests/install-deps.sh installs it): %w", err)
	}
	script := filepath.Join(repoRoot(), "tests", "java", "build.sh")
	cmd := exec.Command(script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return JavaEnv{}, fmt.Errorf("%s: %w\n%s", script, err, lastLines(stderr.String(), 40))
	}
	envPath := strings.TrimSpace(lastLines(stdout.String(), 1))
	f, err := os.Open(envPath)
	if err != nil {
		return JavaEnv{}, fmt.Errorf("%s printed %q: %w", script, envPath, err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			vars[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return JavaEnv{}, err
	}
	env := JavaEnv{
		Java:            java,
		KafkaVersion:    vars["KAFKA_VERSION"],
		KafkaCP:         vars["KAFKA_CP"],
		DriverJar:       filepath.Join(filepath.Dir(envPath), "silt-javatest.jar"),
		Clients4Version: vars["CLIENTS4_VERSION"],
		Clients3Version: vars["CLIENTS3_VERSION"],
		Clients4CP:      vars["CLIENTS4_CP"],
		Clients3CP:      vars["CLIENTS3_CP"],
		ConnectVersion:  vars["CONNECT_VERSION"],
		ConnectCP:       vars["CONNECT_CP"],
	}
	if env.KafkaCP == "" || env.Clients4CP == "" || env.Clients3CP == "" || env.ConnectCP == "" {
		return JavaEnv{}, fmt.Errorf("%s lacks a classpath", envPath)
	}
	return env, nil
}

// repoRoot is the repository's root, found from this source file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
