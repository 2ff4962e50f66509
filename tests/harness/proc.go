package harness

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"time"
)

// process is a server the harness runs as a child process. Its wait
// goroutine (started by startProcess) ends when the process exits; stop
// makes that happen.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
}

// startProcess starts cmd with its output in logPath. cred, when not nil,
// runs it as another user. The child gets a parent-death signal so it does
// not outlive a test binary that is killed before Run can stop it.
func startProcess(name string, cmd *exec.Cmd, logPath string, cred *syscall.Credential) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred,
		Pdeathsig:  syscall.SIGKILL,
		Setpgid:    true, // keep ^C in a terminal from reaching it before Run stops it
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig, waits up to grace for the exit, then kills.
func (p *process) stop(sig os.Signal, grace time.Duration) error {
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s did not stop within %v of %v; killed", p.name, grace, sig)
}

// logTail returns the end of the process's output, for error messages.
func (p *process) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// userCredential returns the credential to run as name when the harness
// runs as root (Postgres refuses to run as root), or nil otherwise.
func userCredential(name string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("running as root and no %q user to run the server as: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// waitUntil polls ready until it returns nil, the process exits, or the
// deadline passes. Polling is how one waits for a foreign server to start
// accepting connections: it offers no event to wait on.
func waitUntil(p *process, timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %w\n%s", p.name, timeout, err, p.logTail())
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during startup (%w):\n%s", p.name, p.waitErr, p.logTail())
		case <-tick.C:
		}
	}
}

// startOnFreePort starts a server on a free port and waits until ready
// passes. When the server exits during startup it tries again on another
// port: test binaries of several packages start servers at the same time,
// and another may take the port between freePort and the server's bind.
func startOnFreePort(name string, timeout time.Duration, start func(port int) (*process, error), ready func(port int) error) (*process, int, error) {
	const attempts = 3
	for i := 1; ; i++ {
		port, err := freePort()
		if err != nil {
			return nil, 0, err
		}
		p, err := start(port)
		if err != nil {
			return nil, 0, err
		}
		err = waitUntil(p, timeout, func() error { return ready(port) })
		if err == nil {
			return p, port, nil
		}
		exitedByItself := p.exited()
		_ = p.stop(syscall.SIGKILL, 5*time.Second)
		if !exitedByItself || i == attempts {
			return nil, 0, fmt.Errorf("%s (attempt %d): %w", name, i, err)
		}
	}
}
