package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/siltdata/silt/auth/tlsconf"
	"github.com/siltdata/silt/auth/tlsconf/tlstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// get fetches url and returns the status and body.
func get(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func newTestServer(t *testing.T, cfg Config, g prometheus.Gatherer, ready ReadyFunc) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(New(cfg, g, ready, slog.New(slog.DiscardHandler)).Handler())
	t.Cleanup(ts.Close)
	return ts
}

func TestMetricsServesGivenGathererOnly(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "silt_test_things_total", Help: "Things."})
	reg.MustRegister(c)
	c.Add(3)
	ts := newTestServer(t, Config{Addr: ":0"}, reg, nil)

	code, body := get(t, ts.Client(), ts.URL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("status %d, body %q", code, body)
	}
	if !strings.Contains(body, "silt_test_things_total 3") {
		t.Errorf("metrics lack the registered counter:\n%s", body)
	}
	// The global registry carries go_* and process_* collectors; the
	// given registry has none, so their absence shows which one is served.
	if strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics include the global registry's collectors:\n%s", body)
	}
}

func TestNilGathererAndReady(t *testing.T) {
	ts := newTestServer(t, Config{Addr: ":0"}, nil, nil)
	if code, body := get(t, ts.Client(), ts.URL+"/metrics"); code != http.StatusOK {
		t.Errorf("/metrics status %d, body %q", code, body)
	}
	if code, body := get(t, ts.Client(), ts.URL+"/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz = %d %q, want 200 ok", code, body)
	}
}

func TestHealthz(t *testing.T) {
	// Liveness does not depend on readiness: a not-ready agent is alive.
	ts := newTestServer(t, Config{Addr: ":0"}, nil, func(context.Context) error { return errors.New("metastore down") })
	code, body := get(t, ts.Client(), ts.URL+"/healthz")
	if code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
}

func TestReadyz(t *testing.T) {
	var reason atomic.Pointer[string] // what ready reports; nil: ready
	ts := newTestServer(t, Config{Addr: ":0"}, nil, func(context.Context) error {
		if r := reason.Load(); r != nil {
			return errors.New(*r)
		}
		return nil
	})

	if code, body := get(t, ts.Client(), ts.URL+"/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("ready: /readyz = %d %q, want 200 ok", code, body)
	}
	down := "metastore: connection refused"
	reason.Store(&down)
	code, body := get(t, ts.Client(), ts.URL+"/readyz")
	if code != http.StatusServiceUnavailable {
		t.Errorf("not ready: status %d, want 503", code)
	}
	if body != "not ready: metastore: connection refused\n" {
		t.Errorf("not ready: body %q does not carry the reason", body)
	}
}

func TestReadyzTimeoutHonoringContext(t *testing.T) {
	ts := newTestServer(t, Config{Addr: ":0", ReadyTimeout: 20 * time.Millisecond}, nil,
		func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	code, body := get(t, ts.Client(), ts.URL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, ErrReadyTimeout.Error()) {
		t.Errorf("/readyz = %d %q, want 503 with %q", code, body, ErrReadyTimeout)
	}
}

func TestReadyzTimeoutIgnoringContext(t *testing.T) {
	// A check that ignores ctx must still not hold the probe.
	release := make(chan struct{})
	returned := make(chan struct{})
	ts := newTestServer(t, Config{Addr: ":0", ReadyTimeout: 20 * time.Millisecond}, nil,
		func(context.Context) error { defer close(returned); <-release; return nil })
	code, body := get(t, ts.Client(), ts.URL+"/readyz")
	close(release)
	<-returned // the check's goroutine ends; goleak verifies nothing else is left
	if code != http.StatusServiceUnavailable || !strings.Contains(body, ErrReadyTimeout.Error()) {
		t.Errorf("/readyz = %d %q, want 503 with %q", code, body, ErrReadyTimeout)
	}
}

func TestPprof(t *testing.T) {
	ts := newTestServer(t, Config{Addr: ":0"}, nil, nil)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		if code, body := get(t, ts.Client(), ts.URL+path); code != http.StatusOK || body == "" {
			t.Errorf("%s = %d (%d bytes), want 200 with a body", path, code, len(body))
		}
	}
	off := newTestServer(t, Config{Addr: ":0", DisablePprof: true}, nil, nil)
	if code, _ := get(t, off.Client(), off.URL+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof disabled: status %d, want 404", code)
	}
}

func TestUnknownPathAndMethod(t *testing.T) {
	ts := newTestServer(t, Config{Addr: ":0"}, nil, nil)
	if code, _ := get(t, ts.Client(), ts.URL+"/nope"); code != http.StatusNotFound {
		t.Errorf("unknown path: status %d, want 404", code)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: status %d, want 405", resp.StatusCode)
	}
}

func TestStartServeShutdown(t *testing.T) {
	s := New(Config{Addr: "127.0.0.1:0"}, nil, nil, slog.New(slog.DiscardHandler))
	if s.Addr() != "" {
		t.Errorf("Addr before Start = %q, want empty", s.Addr())
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if _, port, _ := net.SplitHostPort(addr); port == "0" || port == "" {
		t.Fatalf("Addr after Start = %q, want the bound port", addr)
	}
	if code, _ := get(t, http.DefaultClient, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz over the listener: status %d", code)
	}
	if err := s.Start(t.Context()); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start = %v, want ErrStarted", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	var d net.Dialer
	if conn, err := d.DialContext(t.Context(), "tcp", addr); err == nil {
		conn.Close()
		t.Errorf("listener still accepts after Shutdown")
	}
	if err := s.Start(t.Context()); !errors.Is(err, ErrStarted) {
		t.Errorf("Start after Shutdown = %v, want ErrStarted", err)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestShutdownBeforeStart(t *testing.T) {
	s := New(DefaultConfig(), nil, nil, nil)
	if err := s.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown before Start: %v", err)
	}
}

func TestShutdownCutsLongRequests(t *testing.T) {
	entered := make(chan struct{})
	s := New(Config{Addr: "127.0.0.1:0", ReadyTimeout: time.Hour}, nil,
		func(ctx context.Context) error { close(entered); <-ctx.Done(); return ctx.Err() },
		slog.New(slog.DiscardHandler))
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{}
	defer client.CloseIdleConnections()
	probeDone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+s.Addr()+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		probeDone <- err
	}()
	<-entered
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // no grace at all: in-flight requests are closed
	if err := s.Shutdown(ctx); err == nil {
		t.Errorf("Shutdown with an expired context and a request in flight = nil, want an error")
	}
	<-probeDone
}

func TestStartPortInUse(t *testing.T) {
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := New(Config{Addr: ln.Addr().String()}, nil, nil, nil)
	if err := s.Start(t.Context()); err == nil {
		_ = s.Shutdown(t.Context())
		t.Fatal("Start on a port in use succeeded")
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown after a failed Start: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig invalid: %v", err)
	}
	for _, c := range []Config{{}, {Addr: "no-port"}, {Addr: ":9644", ReadyTimeout: -time.Second}} {
		if err := c.Validate(); err == nil {
			t.Errorf("Config %+v: Validate = nil, want an error", c)
		}
		if err := New(c, nil, nil, nil).Start(t.Context()); err == nil {
			t.Errorf("Config %+v: Start = nil, want an error", c)
		}
	}
}

// TestTLS serves the admin port over HTTPS with a certificate from files.
func TestTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "admin")
	pair := ca.Server(t, "admin")
	files, err := tlsconf.Load(tlsconf.Config{CertFile: pair.CertFile, KeyFile: pair.KeyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Addr: "127.0.0.1:0", TLS: files.ServerConfig()}, nil, nil, slog.New(slog.DiscardHandler))
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	}()
	_, port, _ := net.SplitHostPort(s.Addr())
	tr := &http.Transport{TLSClientConfig: ca.ClientTLS(t, tlstest.Pair{})}
	defer tr.CloseIdleConnections()
	if code, _ := get(t, &http.Client{Transport: tr}, "https://localhost:"+port+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz over https: status %d", code)
	}
	plain := &http.Transport{}
	defer plain.CloseIdleConnections()
	if resp, err := (&http.Client{Transport: plain}).Get("http://" + s.Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain http answered on a TLS admin port")
		}
	}
}
