package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newHandler builds the admin routes on a private mux. net/http/pprof also
// registers itself on http.DefaultServeMux when imported; that mux is never
// served by silt, so only the routes below are reachable.
func newHandler(cfg Config, gatherer prometheus.Gatherer, ready ReadyFunc, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		// One broken collector must not blank the whole scrape: serve
		// what could be gathered and log the rest.
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
		// Scrapes are cheap, but a stuck scraper retrying in a loop
		// must not pile up gathers.
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", readyHandler(cfg.readyTimeout(), ready, logger))
	if !cfg.DisablePprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index) // and every named profile under it
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "silt admin: /metrics /healthz /readyz /debug/pprof/")
	})
	return mux
}

// readyHandler answers 200 "ok" when ready returns nil within timeout, and
// 503 with the reason otherwise. The check runs in its own goroutine so a
// check that ignores its context still cannot hold the probe past timeout;
// that goroutine ends when the check returns (its result channel is
// buffered, so nobody has to receive it).
func readyHandler(timeout time.Duration, ready ReadyFunc, logger *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		result := make(chan error, 1)
		go func() { result <- ready(ctx) }()
		var err error
		select {
		case err = <-result:
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
				err = fmt.Errorf("%w after %s: %w", ErrReadyTimeout, timeout, err)
			}
		case <-ctx.Done():
			err = fmt.Errorf("%w after %s", ErrReadyTimeout, timeout)
		}
		if err != nil {
			// Debug, not Warn: probes repeat every few seconds and an
			// agent that is starting or draining is not an incident.
			logger.Debug("not ready", "err", err)
			writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
		writeText(w, http.StatusOK, "ok")
	}
}

func writeText(w http.ResponseWriter, code int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	// Probes must see the current state, never a proxy's copy.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body + "\n"))
}
