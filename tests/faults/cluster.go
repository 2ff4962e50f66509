package faults

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/siltdata/silt/tests/bench/siltproc"
	"github.com/siltdata/silt/tests/harness"
)

// Cluster is what the suite runs: one Postgres, one MinIO and several
// `silt agent` processes, each agent reaching Postgres and MinIO through
// proxies of its own. Clients reach the agents directly.
type Cluster struct {
	PG     *harness.PostgresServer
	Minio  *harness.MinioServer
	Agents []*Agent

	// PGURL and S3 reach the servers directly (the suite's own reads).
	PGURL string
	S3    harness.S3Config
}

// Agent is one `silt agent` process definition: restarts keep its id,
// its proxies, its ports and its flags.
type Agent struct {
	ID      string
	PGLink  *Proxy // the agent's link to Postgres
	S3Link  *Proxy // the agent's link to MinIO
	Kafka   string // host:port, the same across restarts
	admin   string
	bin     string
	args    []string
	env     []string
	logPath string

	mu      sync.Mutex // mu guards the fields below
	proc    *siltproc.Proc
	paused  bool
	stopped bool // the suite stopped (or killed) the current process
	// crashes are exits the suite did not cause.
	crashes []string
	starts  int
}

// AgentFlags are the flags every agent gets besides its addresses. The
// storage lifecycle runs with short periods so that compaction,
// reclamation and orphan collection happen while faults do.
var AgentFlags = []string{
	"--flush-interval", "50ms",
	"--janitor-interval", "2s",
	"--compaction-age", "15s",
	"--reclaim-grace", "10s",
	"--orphan-age", "45s",
	"--log-format", "text",
}

// NewAgent defines an agent on pgURL and s3 (direct addresses of the
// servers), creating its two proxies. Its log goes to logDir/<id>.log.
func NewAgent(id, bin, pgURL string, s3 harness.S3Config, pgAddr, s3Addr, logDir string, extra ...string) (*Agent, error) {
	pgLink, err := NewProxy(id+"->postgres", pgAddr)
	if err != nil {
		return nil, err
	}
	s3Link, err := NewProxy(id+"->minio", s3Addr)
	if err != nil {
		pgLink.Close()
		return nil, err
	}
	kafka, err := freeAddr()
	if err == nil {
		var admin string
		if admin, err = freeAddr(); err == nil {
			u, perr := url.Parse(pgURL)
			if perr != nil {
				err = perr
			} else {
				u.Host = pgLink.Addr()
				q := u.Query()
				// Each agent names its connections, so the metastore
				// can tell which agent made a write.
				q.Set("application_name", id)
				u.RawQuery = q.Encode()
				viaS3 := s3
				viaS3.Endpoint = "http://" + s3Link.Addr()
				args := append([]string{"agent", "--agent-id", id, "--metastore", u.String(), "--bucket", viaS3.URL(),
					"--listen", kafka, "--admin-listen", admin, "--cache-dir", filepath.Join(logDir, id+"-cache")},
					AgentFlags...)
				return &Agent{
					ID: id, PGLink: pgLink, S3Link: s3Link, Kafka: kafka, admin: admin, bin: bin,
					args: append(args, extra...), env: s3.Env(), logPath: filepath.Join(logDir, id+".log"),
				}, nil
			}
		}
	}
	pgLink.Close()
	s3Link.Close()
	return nil, err
}

// freeAddr is a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// Start runs the agent and waits for its ready line. The agent keeps its
// Kafka port across restarts, as a restarted pod keeps its address.
func (a *Agent) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.proc != nil {
		a.mu.Unlock()
		return fmt.Errorf("agent %s is already running", a.ID)
	}
	a.starts++
	n := a.starts
	a.mu.Unlock()
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== start %d at %s\n", n, time.Now().Format(time.RFC3339Nano))
	p, err := siltproc.Start(ctx, siltproc.Spec{Bin: a.bin, Args: a.args, Env: a.env, Log: logf, ReadyTimeout: 2 * time.Minute})
	if err != nil {
		logf.Close()
		return fmt.Errorf("start agent %s: %w (log %s)", a.ID, err, a.logPath)
	}
	a.mu.Lock()
	a.proc, a.paused, a.stopped = p, false, false
	a.mu.Unlock()
	// The watcher is owned by this run of the process: it ends when the
	// process exits, and records an exit the suite did not cause.
	go func() {
		<-p.Done()
		logf.Close()
		a.mu.Lock()
		defer a.mu.Unlock()
		if !a.stopped {
			a.crashes = append(a.crashes, fmt.Sprintf("agent %s exited unasked at %s: %v (log %s)", a.ID, time.Now().Format(time.RFC3339Nano), p.Err(), a.logPath))
		}
		if a.proc == p {
			a.proc = nil
		}
	}()
	return nil
}

// Kill ends the agent with SIGKILL and waits for the exit.
func (a *Agent) Kill() {
	a.mu.Lock()
	p := a.proc
	a.stopped = true
	a.mu.Unlock()
	if p == nil {
		return
	}
	p.Kill()
	a.mu.Lock()
	if a.proc == p {
		a.proc = nil
	}
	a.paused = false
	a.mu.Unlock()
}

// Stop ends the agent gracefully (SIGTERM), killing it after timeout.
func (a *Agent) Stop(timeout time.Duration) error {
	a.mu.Lock()
	p := a.proc
	a.stopped = true
	paused := a.paused
	a.mu.Unlock()
	if p == nil {
		return nil
	}
	if paused {
		_ = p.Signal(syscall.SIGCONT)
	}
	err := p.Stop(timeout)
	a.mu.Lock()
	if a.proc == p {
		a.proc = nil
	}
	a.paused = false
	a.mu.Unlock()
	return err
}

// Pause sends SIGSTOP: the agent keeps its sockets and its lease row but
// runs nothing until Resume.
func (a *Agent) Pause() error { return a.signal(syscall.SIGSTOP) }

// Resume sends SIGCONT.
func (a *Agent) Resume() error { return a.signal(syscall.SIGCONT) }

func (a *Agent) signal(sig syscall.Signal) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc == nil {
		return fmt.Errorf("agent %s is not running", a.ID)
	}
	if err := a.proc.Signal(sig); err != nil {
		return fmt.Errorf("signal agent %s: %w", a.ID, err)
	}
	a.paused = sig == syscall.SIGSTOP
	return nil
}

// Paused reports whether the agent is stopped by SIGSTOP.
func (a *Agent) Paused() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proc != nil && a.paused
}

// Running reports whether the agent's process runs (paused or not).
func (a *Agent) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proc != nil
}

// Crashes returns the agent's exits the suite did not cause.
func (a *Agent) Crashes() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.crashes...)
}

// AdminURL is the agent's admin HTTP base URL.
func (a *Agent) AdminURL() string { return "http://" + a.admin }

// Close stops the agent (SIGKILL: the suite is over or failed) and its
// proxies.
func (a *Agent) Close() {
	a.Kill()
	a.PGLink.Close()
	a.S3Link.Close()
}

// Heal ends every cut and latency on the agent's links.
func (a *Agent) Heal() {
	a.PGLink.Heal()
	a.S3Link.Heal()
}

// AgentByAddr returns the agent whose Kafka address is addr.
func (c *Cluster) AgentByAddr(addr string) *Agent {
	for _, a := range c.Agents {
		if a.Kafka == addr {
			return a
		}
	}
	return nil
}

// Seeds are the agents' Kafka addresses.
func (c *Cluster) Seeds() []string {
	out := make([]string, 0, len(c.Agents))
	for _, a := range c.Agents {
		out = append(out, a.Kafka)
	}
	return out
}

// Close stops every agent, its proxies, and the servers are stopped by
// their own cleanups.
func (c *Cluster) Close() {
	for _, a := range c.Agents {
		a.Close()
	}
}
