package harness

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Servers a test owns: fault tests stop, kill, pause and restart them, so
// they are never the servers other tests of the process share (Postgres
// and S3 above), and they are always local processes, whatever the
// environment names: a server elsewhere cannot be paused or killed from
// here. Each is stopped when its test ends (and by the parent-death
// signal if the test binary dies first).

// restartLimit bounds a server's start after a fault: crash recovery of
// a busy Postgres or MinIO on a loaded machine takes seconds.
const restartLimit = 60 * time.Second

// ownedProcess is the life cycle shared by the owned servers: one
// process at a time, started on a fixed port so the addresses the test
// handed out stay valid across restarts.
type ownedProcess struct {
	name  string
	port  int
	start func(port int) (*process, error)
	ready func(port int) error
	// stopSig is the graceful stop used when the test ends.
	stopSig syscall.Signal

	mu     sync.Mutex // mu guards p and paused
	p      *process   // nil while stopped
	paused bool
}

// run starts the process on o.port and waits until it is ready.
func (o *ownedProcess) run() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.p != nil && !o.p.exited() {
		return fmt.Errorf("%s is already running", o.name)
	}
	p, err := o.start(o.port)
	if err != nil {
		return err
	}
	if err := waitUntil(p, restartLimit, func() error { return o.ready(o.port) }); err != nil {
		_ = p.stop(syscall.SIGKILL, 5*time.Second)
		return err
	}
	o.p, o.paused = p, false
	return nil
}

// signalStop sends sig to the running process and waits for its exit
// (killing it after grace).
func (o *ownedProcess) signalStop(sig syscall.Signal, grace time.Duration) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.p == nil {
		return fmt.Errorf("%s is not running", o.name)
	}
	if o.paused {
		// A stopped process acts on no signal but SIGKILL until it is
		// continued.
		_ = o.p.cmd.Process.Signal(syscall.SIGCONT)
		o.paused = false
	}
	err := o.p.stop(sig, grace)
	o.p = nil
	return err
}

// signal sends sig (SIGSTOP, SIGCONT) without waiting.
func (o *ownedProcess) signal(sig syscall.Signal) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.p == nil || o.p.exited() {
		return fmt.Errorf("%s is not running", o.name)
	}
	if err := o.p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", o.name, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		o.paused = true
	case syscall.SIGCONT:
		o.paused = false
	}
	return nil
}

// exitedUnasked reports whether the process ended without being stopped
// (a crash), with its exit error and the end of its log.
func (o *ownedProcess) exitedUnasked() (bool, string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.p == nil || !o.p.exited() {
		return false, ""
	}
	return true, fmt.Sprintf("%s exited: %v\n%s", o.name, o.p.waitErr, o.p.logTail())
}

// cleanup stops whatever runs when the test ends.
func (o *ownedProcess) cleanup() error {
	o.mu.Lock()
	running := o.p != nil
	o.mu.Unlock()
	if !running {
		return nil
	}
	return o.signalStop(o.stopSig, 10*time.Second)
}

// PostgresServer is a Postgres server of the test's own (see above). It
// commits synchronously, so a crash (StopImmediate) loses no transaction
// it acknowledged.
type PostgresServer struct {
	proc ownedProcess
	host string
}

// StartPostgresServer starts a Postgres server for t alone; it is stopped
// when t ends. Without the Postgres binaries the test is skipped (failed
// under Strict).
func StartPostgresServer(t testing.TB) *PostgresServer {
	t.Helper()
	bin, err := newestPostgresBin()
	if err == nil {
		var cred *syscall.Credential
		if cred, err = userCredential("postgres"); err == nil {
			var srv *PostgresServer
			if srv, err = startPostgresServer(t, bin, cred); err == nil {
				return srv
			}
		}
	}
	unavailable(t, "postgres", err)
	return nil
}

func startPostgresServer(t testing.TB, bin string, cred *syscall.Credential) (*PostgresServer, error) {
	dir, data, err := postgresDataDir(bin, cred)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	srv := &PostgresServer{host: "127.0.0.1"}
	srv.proc = ownedProcess{
		name: "postgres",
		start: func(port int) (*process, error) {
			return startPostgresProcess(bin, dir, data, port, cred, true)
		},
		ready: func(port int) error {
			_, err := pgVersion(pgAdminURL(port))
			return err
		},
		// SIGINT is the fast shutdown: it disconnects clients.
		stopSig: syscall.SIGINT,
	}
	// The first start looks for a free port; restarts reuse it.
	p, port, err := startOnFreePort("postgres", restartLimit, srv.proc.start, srv.proc.ready)
	if err != nil {
		return nil, err
	}
	srv.proc.p, srv.proc.port = p, port
	t.Cleanup(func() {
		if err := srv.proc.cleanup(); err != nil {
			t.Errorf("harness: stop postgres: %v", err)
		}
	})
	ver, _ := pgVersion(pgAdminURL(port))
	announce(t, fmt.Sprintf("harness: postgres %s local process on %s owned by %s (%s)", ver, srv.Addr(), t.Name(), bin))
	return srv, nil
}

// Addr is the server's host:port.
func (s *PostgresServer) Addr() string { return s.host + ":" + strconv.Itoa(s.proc.port) }

// CreateDatabase creates a database and returns its URL on Addr. Pass
// the URL through a proxy by replacing its host (see URLVia).
func (s *PostgresServer) CreateDatabase(ctx context.Context, name string) (string, error) {
	srv := &pgServer{adminURL: pgAdminURL(s.proc.port)}
	if err := srv.exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, _ := url.Parse(pgAdminURL(s.proc.port))
	u.Path = "/" + name
	return u.String(), nil
}

// StopImmediate is `pg_ctl stop -m immediate`: SIGQUIT, the server and
// its backends exit at once without a checkpoint, as in a crash; the next
// Start runs crash recovery.
func (s *PostgresServer) StopImmediate() error {
	return s.proc.signalStop(syscall.SIGQUIT, 30*time.Second)
}

// Start starts the server again on its data directory and port, and
// waits until it accepts connections.
func (s *PostgresServer) Start() error { return s.proc.run() }

// Crashed reports whether the server ended without being stopped, with
// what it said.
func (s *PostgresServer) Crashed() (bool, string) { return s.proc.exitedUnasked() }

// MinioServer is a MinIO server of the test's own (see above), on a
// data directory that survives restarts.
type MinioServer struct {
	proc ownedProcess
	s3   *s3Server
}

// StartMinioServer starts a MinIO server for t alone; it is stopped when
// t ends. Without the MinIO binary the test is skipped (failed under
// Strict).
func StartMinioServer(t testing.TB) *MinioServer {
	t.Helper()
	srv, err := startMinioServer(t)
	if err != nil {
		unavailable(t, "s3", err)
		return nil
	}
	return srv
}

func startMinioServer(t testing.TB) (*MinioServer, error) {
	bin, err := minioBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "silt-harness-minio-")
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	srv := &MinioServer{}
	srv.proc = ownedProcess{
		name:    "minio",
		start:   func(port int) (*process, error) { return startMinioProcess(bin, dir, port) },
		ready:   minioLive,
		stopSig: syscall.SIGTERM,
	}
	p, port, err := startOnFreePort("minio", restartLimit, srv.proc.start, srv.proc.ready)
	if err != nil {
		return nil, err
	}
	srv.proc.p, srv.proc.port = p, port
	t.Cleanup(func() {
		if err := srv.proc.cleanup(); err != nil {
			t.Errorf("harness: stop minio: %v", err)
		}
	})
	srv.s3 = newS3Server("http://"+srv.Addr(), minioUser, minioPassword)
	t.Cleanup(srv.s3.transport.CloseIdleConnections)
	announce(t, fmt.Sprintf("harness: minio %s local process on %s owned by %s (%s)", minioVersion(bin), srv.Addr(), t.Name(), bin))
	return srv, nil
}

// Addr is the server's host:port.
func (s *MinioServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.proc.port) }

// CreateBucket creates an empty bucket. Its Endpoint is Addr; to pass a
// client through a proxy, replace it.
func (s *MinioServer) CreateBucket(t testing.TB) (S3Config, error) {
	return s.s3.createBucket(t)
}

// Kill ends the server at once (SIGKILL).
func (s *MinioServer) Kill() error {
	return s.proc.signalStop(syscall.SIGKILL, 30*time.Second)
}

// Start starts the server again on its data and port, and waits until
// it is live.
func (s *MinioServer) Start() error { return s.proc.run() }

// Pause stops the server (SIGSTOP): its sockets stay open and nothing
// answers, until Resume.
func (s *MinioServer) Pause() error { return s.proc.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *MinioServer) Resume() error { return s.proc.signal(syscall.SIGCONT) }

// Crashed reports whether the server ended without being stopped, with
// what it said.
func (s *MinioServer) Crashed() (bool, string) { return s.proc.exitedUnasked() }
