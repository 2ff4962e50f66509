package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/siltdata/silt/tests/harness"
)

// Deadlines of the process life cycle. Generous: they bound failures, they
// do not pace successes.
const (
	readyTimeout = 90 * time.Second
	exitTimeout  = 60 * time.Second
)

var (
	buildOnce sync.Once
	binPath   string
	binDir    string
	buildErr  error
)

// siltBinary builds cmd/silt once per test process (with -race when the
// tests run with it, so the binary is checked too) and returns its path.
func siltBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "silt-e2e-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "silt")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/siltdata/silt/cmd/silt")
		cmd := exec.Command("go", args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go build cmd/silt: %w\n%s", err, out.String())
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func removeBinary() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// silt is one silt process definition; Start may run it several times
// (restarts keep the same metastore and bucket).
type silt struct {
	t    testing.TB
	args []string // subcommand and flags
	env  []string
	// Where its bucket is: a directory (dev) or an S3 bucket (agent).
	bucketDir string
	s3        *harness.S3Config
	// onLog, when set before Start, sees every chunk of the process's
	// stderr (whole log lines: slog writes one line per call).
	onLog func([]byte)

	mu     sync.Mutex // mu guards the fields below
	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has exited
	err    error         // cmd.Wait's result, valid after done
	kafka  string        // from the "silt ready:" line of the current run
	admin  string
	logs   bytes.Buffer // stdout and stderr of every run
	starts int
	// signaled is set when the test sends a signal; an exit without it
	// is unexpected and recorded in unexpected.
	signaled   bool
	unexpected []string
}

// backend starts silt processes of one kind.
type backend struct {
	name   string
	define func(t testing.TB, extra ...string) *silt
}

// backends are the two deployments every behaviour is checked against.
var backends = []backend{
	{"dev", newDev},
	{"agent", newAgent},
}

// forEachBackend runs fn as a parallel subtest per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, newSilt func(t testing.TB, extra ...string) *silt)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.define)
		})
	}
}

// newDev defines a `silt dev` on free ports with its own data directory.
func newDev(t testing.TB, extra ...string) *silt {
	dir := t.TempDir()
	args := []string{"dev", "--data-dir", dir, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-level", "debug"}
	s := newSilt(t, append(args, extra...), nil)
	s.bucketDir = filepath.Join(dir, "bucket")
	return s
}

// newAgent defines a `silt agent` on free ports against a fresh Postgres
// database and a fresh MinIO bucket.
func newAgent(t testing.TB, extra ...string) *silt {
	// Restarts reuse the id, as an orchestrator restarting a pod would,
	// so the dead process's lease is replaced rather than left to expire.
	return newAgentOn(t, harness.Postgres(t), harness.S3(t), append([]string{"--agent-id", "e2e-agent"}, extra...)...)
}

// newAgentOn defines a `silt agent` on free ports against the given
// metastore and bucket, which several agents may share.
func newAgentOn(t testing.TB, pg string, s3 harness.S3Config, extra ...string) *silt {
	args := []string{"agent", "--metastore", pg, "--bucket", s3.URL(), "--listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0", "--cache-dir", t.TempDir(), "--log-format", "text", "--log-level", "debug"}
	s := newSilt(t, append(args, extra...), s3.Env())
	s.s3 = &s3
	return s
}

func newSilt(t testing.TB, args, env []string) *silt {
	s := &silt{t: t, args: args, env: env}
	t.Cleanup(func() {
		s.mu.Lock()
		running := s.cmd != nil
		s.mu.Unlock()
		if running {
			s.Kill()
		}
		s.mu.Lock()
		raced := bytes.Contains(s.logs.Bytes(), []byte("WARNING: DATA RACE"))
		s.mu.Unlock()
		if raced {
			t.Error("the race detector reported a data race in silt (see its output)")
		}
		s.mu.Lock()
		for _, msg := range s.unexpected {
			t.Error(msg)
		}
		s.mu.Unlock()
		if t.Failed() {
			s.mu.Lock()
			t.Logf("silt %s output:\n%s", strings.Join(s.args, " "), s.logs.String())
			s.mu.Unlock()
		}
	})
	return s
}

// logWriter appends a process's output to s.logs under s.mu.
type logWriter struct{ s *silt }

func (w logWriter) Write(p []byte) (int, error) {
	if w.s.onLog != nil {
		w.s.onLog(p)
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.logs.Write(p)
}

// Start runs the process and waits for its "silt ready:" line.
func (s *silt) Start() *silt {
	s.t.Helper()
	bin := siltBinary(s.t)
	cmd := exec.Command(bin, s.args...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stderr = logWriter{s}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start silt: %v", err)
	}
	done := make(chan struct{})
	ready := make(chan [2]string, 1)
	s.mu.Lock()
	s.cmd, s.done, s.err, s.kafka, s.admin, s.signaled = cmd, done, nil, "", "", false
	s.starts++
	fmt.Fprintf(&s.logs, "=== start %d: silt %s\n", s.starts, strings.Join(s.args, " "))
	s.mu.Unlock()

	// The reader goroutine is owned by this run: it ends when the
	// process closes stdout (exit), and Wait runs after it.
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			logWriter{s}.Write([]byte(line + "\n"))
			if rest, ok := strings.CutPrefix(line, "silt ready: "); ok {
				var kafka, admin string
				for f := range strings.FieldsSeq(rest) {
					if v, ok := strings.CutPrefix(f, "kafka="); ok {
						kafka = v
					}
					if v, ok := strings.CutPrefix(f, "admin="); ok {
						admin = v
					}
				}
				ready <- [2]string{kafka, admin}
			}
		}
		io.Copy(io.Discard, stdout)
		err := cmd.Wait()
		s.mu.Lock()
		s.err = err
		if !s.signaled {
			// Nobody asked it to stop: say so at once on stderr (the test
			// may be blocked on a client that keeps retrying) and fail the
			// test at cleanup.
			msg := fmt.Sprintf("silt %s exited unexpectedly: %v", strings.Join(s.args, " "), err)
			s.unexpected = append(s.unexpected, msg)
			fmt.Fprintf(os.Stderr, "%s; last output:\n%s\n", msg, lastLines(s.logs.String(), 40))
		}
		s.mu.Unlock()
		close(done)
	}()

	select {
	case r := <-ready:
		s.mu.Lock()
		s.kafka, s.admin = r[0], r[1]
		s.mu.Unlock()
	case <-done:
		s.t.Fatalf("silt exited before it was ready: %v", s.exitErr())
	case <-time.After(readyTimeout):
		s.Kill()
		s.t.Fatalf("silt not ready after %s", readyTimeout)
	}
	return s
}

// Kafka is the Kafka address of the current run.
func (s *silt) Kafka() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kafka
}

// Admin is the admin HTTP address of the current run.
func (s *silt) Admin() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admin
}

func (s *silt) exitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// signal sends sig and waits for the process to exit.
func (s *silt) signal(sig syscall.Signal) error {
	s.t.Helper()
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.signaled = true
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatal("silt is not running")
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-done:
	case <-time.After(exitTimeout):
		cmd.Process.Kill()
		<-done
		s.t.Fatalf("silt did not exit within %s of %v", exitTimeout, sig)
	}
	s.mu.Lock()
	s.cmd = nil
	s.mu.Unlock()
	return s.exitErr()
}

// Stop sends SIGTERM and requires a clean exit (status 0).
func (s *silt) Stop() {
	s.t.Helper()
	if err := s.signal(syscall.SIGTERM); err != nil {
		s.t.Fatalf("silt exit after SIGTERM: %v", err)
	}
}

// Kill sends SIGKILL: the agent gets no chance to flush.
func (s *silt) Kill() {
	s.t.Helper()
	s.signal(syscall.SIGKILL)
}

// Pause sends SIGSTOP: the process keeps its sockets and its place in
// the metastore but runs nothing, as a process stalled by the machine
// (a long GC pause, a frozen VM) would, until Resume.
func (s *silt) Pause() { s.t.Helper(); s.send(syscall.SIGSTOP) }

// Resume sends SIGCONT to a paused process.
func (s *silt) Resume() { s.t.Helper(); s.send(syscall.SIGCONT) }

// send sends sig without waiting for anything.
func (s *silt) send(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatal("silt is not running")
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Restart starts the process again on the same metastore and bucket.
func (s *silt) Restart() *silt { return s.Start() }

// testContext is t.Context() bounded by d.
func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
