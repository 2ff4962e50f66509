package e2e

// Kafka's Java ecosystem on compacted topics: a Kafka Streams KTable
// restored from its compacted changelog, and a Kafka Connect worker whose
// internal topics (configs, offsets, status) are compacted topics it
// creates, checks and reads back after a restart.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/siltdata/silt/tests/harness"
)

// compactingFlags make the janitor compact as soon as it may: data leaves
// the produce segments at once and is cleaned by key in the next pass.
var compactingFlags = append([]string{"--compaction-age", "0s"}, lifecycleFlags...)

// TestJavaStreamsCompactedRestore: a Kafka Streams count over 2,000 updates
// of 20 keys; while the app is down silt compacts its changelog to one
// record per key; a fresh instance restores exactly those 20 records and
// continues every count (the Java driver's streams-compacted-restore).
func TestJavaStreamsCompactedRestore(t *testing.T) {
	j := harness.Java(t)
	forEachBackend(t, func(t *testing.T, newSilt func(t testing.TB, extra ...string) *silt) {
		s := newSilt(t, compactingFlags...).Start()
		runJavaChecks(t, j.Java, j.Clients4CP, s.Kafka(), "streams-compacted-restore")
		if removed := s.metric(t, testContext(t, time.Minute), "silt_cleaner_removed_bytes_total"); removed == 0 {
			t.Errorf("silt_cleaner_removed_bytes_total is 0 after the changelog was compacted")
		}
	})
}

// TestKafkaConnect runs a Kafka Connect distributed worker (Kafka's own
// ConnectDistributed) against silt with the FileStream connectors: the
// worker creates its compacted internal topics, a source connector copies
// a file into a topic and a sink connector copies the topic into another
// file. silt compacts the internal topics; a restarted worker finds its
// connectors in them and resumes from the offsets stored there: the lines
// appended while it was down arrive once, none twice.
func TestKafkaConnect(t *testing.T) {
	j := harness.Java(t)
	forEachBackend(t, func(t *testing.T, newSilt func(t testing.TB, extra ...string) *silt) {
		s := newSilt(t, compactingFlags...).Start()
		ctx := testContext(t, 8*time.Minute)
		dir := t.TempDir()
		in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
		lines := appendLines(t, in, nil, 0, 100)
		topic := "connect-lines"

		w := startConnect(t, ctx, j, s.Kafka(), dir)
		w.putConnector(t, ctx, "file-source", map[string]string{
			"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
			"tasks.max":       "1", "file": in, "topic": topic,
		})
		w.putConnector(t, ctx, "file-sink", map[string]string{
			"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
			"tasks.max":       "1", "file": out, "topics": topic,
		})
		waitLines(t, ctx, "the sink file to hold the source file's 100 lines", out, lines)

		adm := kadm.NewClient(newClient(t, s.Kafka()))
		internal := []string{"connect-configs", "connect-offsets", "connect-status"}
		rcs, err := adm.DescribeTopicConfigs(ctx, internal...)
		if err != nil {
			t.Fatalf("describe the internal topics: %v", err)
		}
		for _, rc := range rcs {
			policy := ""
			for _, c := range rc.Configs {
				if c.Key == "cleanup.policy" {
					policy = c.MaybeValue()
				}
			}
			if rc.Err != nil || policy != "compact" {
				t.Errorf("internal topic %s: cleanup.policy %q (%v), want compact", rc.Name, policy, rc.Err)
			}
		}
		// Clean the internal topics as soon as a little is dirty, and wait
		// until silt has removed superseded records from them.
		for _, topic := range internal {
			if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "min.cleanable.dirty.ratio", Value: ptr("0.01")}}, topic); err != nil {
				t.Fatalf("alter %s: %v", topic, err)
			}
		}
		waitFor(t, ctx, "silt to remove superseded records from Connect's internal topics", func() bool {
			return s.metric(t, ctx, "silt_cleaner_removed_bytes_total") > 0
		})

		w.stop(t)
		lines = appendLines(t, in, lines, 100, 50)
		w = startConnect(t, ctx, j, s.Kafka(), dir)
		waitLines(t, ctx, "the restarted worker to copy the 50 appended lines", out, lines)
		for _, name := range []string{"file-source", "file-sink"} {
			if st := w.status(t, ctx, name); !strings.Contains(st, `"state":"RUNNING"`) {
				t.Errorf("connector %s after the restart: %s", name, st)
			}
		}
		w.stop(t)
		if got := readLines(out); !slices.Equal(got, lines) {
			t.Fatalf("the sink file holds %d lines once the worker stopped, want the %d of the source", len(got), len(lines))
		}
	})
}

// connectWorker is a running ConnectDistributed process.
type connectWorker struct {
	cmd    *exec.Cmd
	rest   string
	stderr *syncBuffer
	done   chan error
}

// startConnect starts a Connect distributed worker on bootstrap and waits
// until its REST API answers.
func startConnect(t *testing.T, ctx context.Context, j harness.JavaEnv, bootstrap, dir string) *connectWorker {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	props := filepath.Join(dir, "worker.properties")
	cfg := strings.Join([]string{
		"bootstrap.servers=" + bootstrap,
		"group.id=silt-connect",
		"key.converter=org.apache.kafka.connect.storage.StringConverter",
		"value.converter=org.apache.kafka.connect.storage.StringConverter",
		"config.storage.topic=connect-configs",
		"offset.storage.topic=connect-offsets",
		"status.storage.topic=connect-status",
		"config.storage.replication.factor=1",
		"offset.storage.replication.factor=1",
		"status.storage.replication.factor=1",
		"offset.flush.interval.ms=500",
		"listeners=http://127.0.0.1:" + strconv.Itoa(port),
		"rest.advertised.host.name=127.0.0.1",
		"",
	}, "\n")
	log4j := filepath.Join(dir, "log4j2.properties")
	for path, data := range map[string]string{props: cfg, log4j: connectLog4j} {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := append(append([]string{}, javaOptions...), "-Dlog4j2.configurationFile="+log4j,
		"-cp", j.ConnectCP, "org.apache.kafka.connect.cli.ConnectDistributed", props)
	w := &connectWorker{cmd: exec.Command(j.Java, args...), rest: fmt.Sprintf("http://127.0.0.1:%d", port),
		stderr: &syncBuffer{}, done: make(chan error, 1)}
	w.cmd.Stdout, w.cmd.Stderr = w.stderr, w.stderr
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("start the Connect worker: %v", err)
	}
	go func() { w.done <- w.cmd.Wait() }()
	t.Cleanup(func() {
		_ = w.cmd.Process.Kill()
		<-w.done
		if t.Failed() {
			t.Logf("Connect worker output:\n%s", lastLines(w.stderr.String(), 60))
		}
	})
	waitFor(t, ctx, "the Connect worker's REST API", func() bool {
		select {
		case err := <-w.done:
			w.done <- err
			t.Fatalf("the Connect worker exited: %v\n%s", err, lastLines(w.stderr.String(), 60))
		default:
		}
		code, _ := w.call(ctx, http.MethodGet, "/connectors", "")
		return code == http.StatusOK
	})
	return w
}

// putConnector creates (or updates) a connector, retrying while the worker
// is still joining its group (Connect answers 409 then, or 500 saying the
// request timed out inside it); any other error fails the test.
func (w *connectWorker) putConnector(t *testing.T, ctx context.Context, name string, config map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("{")
	first := true
	for k, v := range config {
		if !first {
			b.WriteString(",")
		}
		first = false
		fmt.Fprintf(&b, "%s:%s", strconv.Quote(k), strconv.Quote(v))
	}
	b.WriteString("}")
	var last string
	waitFor(t, ctx, "Connect to accept connector "+name, func() bool {
		code, body := w.call(ctx, http.MethodPut, "/connectors/"+name+"/config", b.String())
		last = fmt.Sprintf("%d %s", code, body)
		switch {
		case code == http.StatusOK || code == http.StatusCreated:
			return true
		case code == http.StatusConflict, code == 0:
		case code == http.StatusInternalServerError && strings.Contains(body, "timed out"):
		default:
			t.Fatalf("PUT connector %s: %s", name, last)
		}
		return false
	})
}

// status is the connector's status document.
func (w *connectWorker) status(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	var body string
	waitFor(t, ctx, "connector "+name+" and its task running", func() bool {
		var code int
		code, body = w.call(ctx, http.MethodGet, "/connectors/"+name+"/status", "")
		return code == http.StatusOK && strings.Count(body, `"state":"RUNNING"`) == 2
	})
	return strings.ReplaceAll(body, " ", "")
}

func (w *connectWorker) call(ctx context.Context, method, path, body string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, method, w.rest+path, strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.String()
}

// stop stops the worker as an operator would (SIGTERM: it commits its
// source offsets and its sink's group offsets on the way out).
func (w *connectWorker) stop(t *testing.T) {
	t.Helper()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-w.done:
		w.done <- err
	case <-time.After(2 * time.Minute):
		t.Fatalf("the Connect worker did not stop within 2 minutes of SIGTERM\n%s", lastLines(w.stderr.String(), 60))
	}
}

// appendLines appends n numbered lines from first to the file at path and
// returns lines with them.
func appendLines(t *testing.T, path string, lines []string, first, n int) []string {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for i := first; i < first+n; i++ {
		l := fmt.Sprintf("line %04d", i)
		lines = append(lines, l)
		if _, err := fmt.Fprintln(f, l); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func readLines(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// waitLines waits until the file at path holds as many lines as want, and
// fails unless they are want: in order, none lost, none twice.
func waitLines(t *testing.T, ctx context.Context, what, path string, want []string) {
	t.Helper()
	waitFor(t, ctx, what, func() bool { return len(readLines(path)) >= len(want) })
	if got := readLines(path); !slices.Equal(got, want) {
		t.Fatalf("%s: the file holds %d lines, want %d in order; first lines %q", what, len(got), len(want), got[:min(len(got), 5)])
	}
}

func ptr[T any](v T) *T { return &v }

const connectLog4j = `status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
`
