package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// pgServer is a Postgres server on which the harness creates one database
// per Postgres call.
type pgServer struct {
	adminURL string // a database on the server where CREATE DATABASE may run
	// dropAfter drops each database when its test ends. Servers the
	// harness started and will remove skip the drop, saving time per test.
	dropAfter bool

	// createMu serializes CREATE DATABASE: concurrent creates from the
	// same template can fail with "source database is being accessed".
	createMu sync.Mutex
	seq      atomic.Int64
}

var pg struct {
	once sync.Once
	srv  *pgServer
	err  error
}

func postgresServer(t testing.TB) (*pgServer, error) {
	pg.once.Do(func() { pg.srv, pg.err = startPostgres(t) })
	return pg.srv, pg.err
}

func startPostgres(t testing.TB) (*pgServer, error) {
	if u := os.Getenv("SILT_TEST_POSTGRES_URL"); u != "" {
		ver, err := pgVersion(u)
		if err != nil {
			return nil, fmt.Errorf("SILT_TEST_POSTGRES_URL: %w", err)
		}
		announce(t, fmt.Sprintf("harness: postgres %s external server from SILT_TEST_POSTGRES_URL (%s)", ver, redact(u)))
		return &pgServer{adminURL: u, dropAfter: true}, nil
	}
	if dockerAvailable() {
		return startPostgresContainer(t)
	}
	return startPostgresLocal(t)
}

func startPostgresContainer(t testing.TB) (*pgServer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := tcpostgres.Run(ctx, "postgres:16-alpine",
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies(),
	)
	if c != nil {
		onStop(func() error { return c.Terminate(context.Background()) })
	}
	if err != nil {
		return nil, fmt.Errorf("postgres container: %w", err)
	}
	u, err := c.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		return nil, err
	}
	ver, err := pgVersion(u)
	if err != nil {
		return nil, err
	}
	announce(t, fmt.Sprintf("harness: postgres %s testcontainers container at %s", ver, redact(u)))
	return &pgServer{adminURL: u}, nil
}

// startPostgresLocal runs the newest installed PostgreSQL on a temporary
// copy of an initdb template, tuned for tests (no fsync).
func startPostgresLocal(t testing.TB) (*pgServer, error) {
	bin, err := newestPostgresBin()
	if err != nil {
		return nil, err
	}
	cred, err := userCredential("postgres")
	if err != nil {
		return nil, err
	}
	dir, data, err := postgresDataDir(bin, cred)
	if err != nil {
		return nil, err
	}
	cleanupDir := func() error { return os.RemoveAll(dir) }

	var ver string
	p, port, err := startOnFreePort("postgres", 10*time.Second, func(port int) (*process, error) {
		return startPostgresProcess(bin, dir, data, port, cred, false)
	}, func(port int) error {
		var err error
		ver, err = pgVersion(pgAdminURL(port))
		return err
	})
	if err != nil {
		_ = cleanupDir()
		return nil, err
	}
	onStop(func() error {
		// SIGINT is Postgres's fast shutdown: it disconnects clients.
		err := p.stop(syscall.SIGINT, 10*time.Second)
		return errors.Join(err, cleanupDir())
	})
	announce(t, fmt.Sprintf("harness: postgres %s local process on 127.0.0.1:%d (%s)", ver, port, bin))
	return &pgServer{adminURL: pgAdminURL(port)}, nil
}

// postgresDataDir makes a temporary directory owned by cred's user
// holding a fresh data directory (a copy of the initdb template), and
// returns both.
func postgresDataDir(bin string, cred *syscall.Credential) (dir, data string, err error) {
	dir, err = os.MkdirTemp("", "silt-harness-pg-")
	if err != nil {
		return "", "", err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return "", "", err
		}
	}
	data = filepath.Join(dir, "data")
	tmpl, err := pgDataTemplate(bin, cred)
	if err == nil {
		err = copyTree(tmpl, data, cred)
	}
	if err != nil {
		// No usable template: initialize this server's own directory.
		os.RemoveAll(data)
		if err := runInitdb(bin, data, cred); err != nil {
			os.RemoveAll(dir)
			return "", "", err
		}
	}
	return dir, data, nil
}

// startPostgresProcess runs the server of bin on data (inside dir, which
// also holds its socket and log) on 127.0.0.1:port, as cred's user.
// synchronousCommit off (the shared test server) saves a WAL write per
// commit; a server that tests crash must keep it on, or commits it
// acknowledged are lost with the WAL buffers.
func startPostgresProcess(bin, dir, data string, port int, cred *syscall.Credential, synchronousCommit bool) (*process, error) {
	sc := "off"
	if synchronousCommit {
		sc = "on"
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+dir,
		// Without fsync an operating system crash can lose data; no
		// test crashes the machine.
		"-c", "fsync=off",
		"-c", "synchronous_commit="+sc,
		"-c", "full_page_writes=off",
		"-c", "max_connections=500",
		"-c", "log_min_messages=warning",
	)
	cmd.Dir = dir
	// The harness writes the log file itself, so the server needs no
	// write access to it.
	return startProcess("postgres", cmd, filepath.Join(dir, "server.log"), cred)
}

func pgAdminURL(port int) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
}

// newestPostgresBin returns /usr/lib/postgresql/N/bin for the highest N
// that has initdb.
func newestPostgresBin() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", errors.New("no Postgres binaries in /usr/lib/postgresql/*/bin (run tests/install-deps.sh)")
	}
	version := func(p string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(p))), 64)
		return v
	}
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	return filepath.Dir(matches[0]), nil
}

// pgVersion connects to u and returns the server version.
func pgVersion(u string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "", err
	}
	return v, nil
}

// createDatabase creates a database with a unique name and returns its URL.
func (s *pgServer) createDatabase(t testing.TB) (string, error) {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("silt_test_%d_%d_%s", os.Getpid(), s.seq.Add(1), hex.EncodeToString(rnd[:]))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.createMu.Lock()
	err := s.exec(ctx, "CREATE DATABASE "+name)
	s.createMu.Unlock()
	if err != nil {
		return "", err
	}
	if s.dropAfter {
		t.Cleanup(func() { s.drop(t, name) })
	}
	u, err := url.Parse(s.adminURL)
	if err != nil {
		return "", fmt.Errorf("postgres URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// drop removes a test's database after the test's own cleanups (which
// should close its connections; FORCE ends any that remain).
func (s *pgServer) drop(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		t.Logf("harness: drop database %s: %v", name, err)
	}
}

func (s *pgServer) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// redact hides a URL's password for logging.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
