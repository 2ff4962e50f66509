// Package admin is the agent's operations HTTP endpoint (the "admin port",
// 9644 by default): Prometheus metrics, liveness and readiness probes for
// orchestrators and load balancers, and Go's pprof profiles.
//
// It is a separate listener from the Kafka port so that health checks and
// scrapes never queue behind client traffic, and so that it can be bound to
// a private interface while the Kafka port is public.
//
//	/metrics        Prometheus exposition of the Gatherer passed to New
//	/healthz        200 while the process runs (liveness: restart if not)
//	/readyz         200 when the ready check passes, else 503 and the reason
//	                (readiness: send traffic only when 200)
//	/debug/pprof/   net/http/pprof, unless Config.DisablePprof
package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Errors returned by Server.
var (
	// ErrStarted is returned by Start when the server was already started
	// or shut down: a Server serves one listener in its life.
	ErrStarted = errors.New("admin server already started")
	// ErrReadyTimeout is the reason /readyz gives when the ready check did
	// not answer within Config.ReadyTimeout.
	ErrReadyTimeout = errors.New("readiness check timed out")
)

// Config configures the admin server. The zero value of every field except
// Addr means its default, so Config{Addr: ":9644"} is complete.
type Config struct {
	// Addr is the listen address, host:port. Port 0 picks a free port
	// (see Server.Addr). Binding to 0.0.0.0 exposes pprof and metrics to
	// the network: do it only where the network is private.
	Addr string
	// ReadyTimeout bounds one readiness check. A check slower than this
	// reports not ready: a load balancer probing an agent whose metastore
	// hangs should take it out of rotation, not wait with it. Zero means
	// 2s, below the usual 5s probe timeout of Kubernetes and ELB.
	ReadyTimeout time.Duration
	// TLS, when set, serves HTTPS (e.g. tlsconf.Files.ServerConfig,
	// whose certificate reloads on change). Probes and scrapers must
	// then speak HTTPS.
	TLS *tls.Config
	// DisablePprof removes /debug/pprof/. Profiles are cheap until
	// requested, and invaluable when an agent misbehaves in production, so
	// they are on unless disabled.
	DisablePprof bool
}

// DefaultReadyTimeout is the ReadyTimeout used when Config leaves it zero.
const DefaultReadyTimeout = 2 * time.Second

// DefaultConfig returns the configuration of a local agent's admin port.
func DefaultConfig() Config {
	return Config{Addr: "127.0.0.1:9644", ReadyTimeout: DefaultReadyTimeout}
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("admin listen address is empty"))
	} else if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("admin listen address %q: %w", c.Addr, err))
	}
	if c.ReadyTimeout < 0 {
		errs = append(errs, fmt.Errorf("ready timeout %s: must not be negative", c.ReadyTimeout))
	}
	return errors.Join(errs...)
}

func (c Config) readyTimeout() time.Duration {
	if c.ReadyTimeout == 0 {
		return DefaultReadyTimeout
	}
	return c.ReadyTimeout
}

// ReadyFunc reports whether the agent can serve clients: nil when it can,
// otherwise an error saying why not (it is shown to whoever probes). It must
// return promptly when ctx is done.
type ReadyFunc func(ctx context.Context) error

// Server is the admin HTTP server. Its one goroutine (the HTTP accept loop,
// with net/http's per-connection goroutines under it) is started by Start
// and stopped by Shutdown, which waits for it.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	handler http.Handler

	// mu guards srv, ln, done and started.
	mu      sync.Mutex
	started bool
	srv     *http.Server
	ln      net.Listener
	done    chan struct{} // closed when the serve goroutine returns
}

// New returns a server exposing gatherer on /metrics and ready on /readyz.
// A nil gatherer serves an empty exposition; a nil ready is always ready.
// Nothing listens until Start.
func New(cfg Config, gatherer prometheus.Gatherer, ready ReadyFunc, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	if ready == nil {
		ready = func(context.Context) error { return nil }
	}
	logger = logger.With("component", "admin")
	return &Server{
		cfg:     cfg,
		logger:  logger,
		handler: newHandler(cfg, gatherer, ready, logger),
	}
}

// Handler returns the server's routes, for embedding them elsewhere or for
// tests with httptest.
func (s *Server) Handler() http.Handler { return s.handler }

// Start binds the listener and serves in the background until Shutdown.
// ctx bounds only the bind; a bind failure (port in use) is returned here,
// so a misconfigured agent fails at start rather than silently.
func (s *Server) Start(ctx context.Context) error {
	if err := s.cfg.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return ErrStarted
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("admin listen %s: %w", s.cfg.Addr, err)
	}
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	s.started = true
	s.ln = ln
	s.srv = &http.Server{
		Handler: s.handler,
		// Slow or idle clients must not pin connections forever. There is
		// no WriteTimeout: /debug/pprof/profile and /trace stream for as
		// many seconds as asked.
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.done = make(chan struct{})
	srv, done := s.srv, s.done
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("admin server stopped", "err", err)
		}
	}()
	s.logger.Info("admin server listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the bound address (host:port), or "" before Start. With
// port 0 in Config.Addr this is where the server actually listens.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting connections, waits for in-flight requests until
// ctx is done (then closes them), and waits for the serve goroutine. It may
// be called more than once, and before Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.started = true // a shut-down server cannot be started again
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		// In-flight requests (a long pprof profile) outlived ctx: cut them.
		err = errors.Join(fmt.Errorf("admin shutdown: %w", err), srv.Close())
	}
	<-done
	return err
}
