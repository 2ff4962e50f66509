// Package siltproc builds the silt binary and runs it as a child process
// for tests and benchmarks: start, wait for the "silt ready:" line that
// names the Kafka and admin addresses, stop gracefully or kill.
//
// It is an ordinary package (not a _test file) so any test package can
// share it; the benchmark report (tests/bench) uses it and the e2e tests
// could too.
package siltproc

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
	"time"
)

// Errors of the process life cycle.
var (
	// ErrExited means the process ended before it printed its ready line.
	ErrExited = errors.New("silt exited before it was ready")
	// ErrNotReady means the ready line did not come within the timeout.
	ErrNotReady = errors.New("silt not ready in time")
)

// Build compiles github.com/siltdata/silt/cmd/silt into dir and returns
// the binary's path. race adds -race (the tests' binaries should match
// the race mode of the test run; benchmarks should not use it).
func Build(ctx context.Context, dir string, race bool) (string, error) {
	bin := filepath.Join(dir, "silt")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "github.com/siltdata/silt/cmd/silt")
	cmd := exec.CommandContext(ctx, "go", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build cmd/silt: %w\n%s", err, out.String())
	}
	return bin, nil
}

// Spec is how to run one silt process.
type Spec struct {
	Bin  string   // the binary (from Build)
	Args []string // subcommand and flags, e.g. dev --data-dir ... --listen 127.0.0.1:0
	Env  []string // added to the current environment (KEY=value)
	// Log receives the process's stdout and stderr; nil discards them.
	Log io.Writer
	// ReadyTimeout bounds the wait for the ready line (default 90s).
	ReadyTimeout time.Duration
}

// Proc is one running silt process.
type Proc struct {
	Kafka string // Kafka address from the ready line
	Admin string // admin HTTP address from the ready line ("off" when disabled)
	PID   int

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's result, valid after done
	// copyDone is closed when the output copier goroutine has finished.
	copyDone chan struct{}
}

// syncWriter serializes writes from the stdout and stderr copiers.
type syncWriter struct {
	mu sync.Mutex // mu guards w
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// Start runs the process and waits for its ready line. The child gets a
// parent-death signal, so it never outlives a killed test binary. On
// error nothing is left running.
func Start(ctx context.Context, s Spec) (*Proc, error) {
	if s.ReadyTimeout == 0 {
		s.ReadyTimeout = 90 * time.Second
	}
	logw := io.Discard
	if s.Log != nil {
		logw = s.Log
	}
	out := &syncWriter{w: logw}
	cmd := exec.Command(s.Bin, s.Args...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start silt: %w", err)
	}
	p := &Proc{PID: cmd.Process.Pid, cmd: cmd, done: make(chan struct{}), copyDone: make(chan struct{})}
	ready := make(chan [2]string, 1)
	// The copier is owned by this process: it ends when the process
	// closes stdout; the waiter runs after it (Wait closes the pipe).
	go func() {
		defer close(p.copyDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(out, line)
			if rest, ok := strings.CutPrefix(line, "silt ready: "); ok {
				var addrs [2]string
				for f := range strings.FieldsSeq(rest) {
					if v, ok := strings.CutPrefix(f, "kafka="); ok {
						addrs[0] = v
					} else if v, ok := strings.CutPrefix(f, "admin="); ok {
						addrs[1] = v
					}
				}
				select {
				case ready <- addrs:
				default:
				}
			}
		}
		_, _ = io.Copy(out, stdout)
	}()
	go func() {
		<-p.copyDone
		p.err = cmd.Wait()
		close(p.done)
	}()

	timer := time.NewTimer(s.ReadyTimeout)
	defer timer.Stop()
	select {
	case addrs := <-ready:
		p.Kafka, p.Admin = addrs[0], addrs[1]
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%w: %w", ErrExited, p.err)
	case <-timer.C:
		p.Kill()
		return nil, fmt.Errorf("%w (%s)", ErrNotReady, s.ReadyTimeout)
	case <-ctx.Done():
		p.Kill()
		return nil, ctx.Err()
	}
}

// MetricsURL is the process's Prometheus endpoint.
func (p *Proc) MetricsURL() string { return "http://" + p.Admin + "/metrics" }

// Stop sends SIGTERM (a graceful shutdown that flushes buffered records)
// and waits up to timeout, then kills. It returns the exit error of a
// process that did not exit cleanly.
func (p *Proc) Stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		p.Kill()
		return fmt.Errorf("silt did not stop within %s; killed", timeout)
	}
}

// Kill ends the process at once (SIGKILL) and waits for it.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Signal sends sig without waiting for anything: SIGSTOP and SIGCONT
// pause and resume the process (fault tests).
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Err is the process's exit error, valid once Done is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }
