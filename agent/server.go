package agent

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// acceptLoop accepts connections until the listener closes (Shutdown).
// Each connection gets a reader and a writer goroutine; see conn.
func (a *Agent) acceptLoop(l *listener) {
	defer a.loops.Done()
	var backoff time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little
			// instead of spinning, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			a.logger.Error("accept failed", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-a.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := newConn(a, l, nc)
		a.mu.Lock()
		if a.closing {
			a.mu.Unlock()
			_ = nc.Close()
			c.cancel()
			return
		}
		if reason := a.overLimit(c.host); reason != "" {
			a.mu.Unlock()
			_ = nc.Close()
			c.cancel()
			a.metrics.rejected.WithLabelValues(reason).Inc()
			a.logger.Warn("connection refused: too many connections", "client", c.remote, "limit", reason)
			continue
		}
		a.conns[c] = struct{}{}
		a.perIP[c.host]++
		a.loops.Add(2)
		a.mu.Unlock()
		a.metrics.connections.Inc()
		go c.readLoop()
		go func() {
			c.writeLoop()
			a.mu.Lock()
			delete(a.conns, c)
			if a.perIP[c.host]--; a.perIP[c.host] <= 0 {
				delete(a.perIP, c.host)
			}
			a.mu.Unlock()
		}()
	}
}

// overLimit names the connection limit a new connection from host would
// exceed ("" for none). a.mu must be held.
func (a *Agent) overLimit(host string) string {
	switch {
	case a.cfg.MaxConnections > 0 && len(a.conns) >= a.cfg.MaxConnections:
		return "agent"
	case a.cfg.MaxConnectionsPerIP > 0 && a.perIP[host] >= a.cfg.MaxConnectionsPerIP:
		return "ip"
	}
	return ""
}

// apiTable indexes apis by key. It is built in init rather than by a
// variable initializer because ApiVersions' handler reads it, which would
// make an initialization cycle through apis.
var apiTable map[int16]*api

func init() { apiTable = buildAPITable(apis) }

func buildAPITable(list []api) map[int16]*api {
	t := make(map[int16]*api, len(list))
	for i := range list {
		k := list[i].key
		if _, dup := t[k]; dup {
			panic(fmt.Sprintf("agent: api key %d registered twice", k))
		}
		if kmsg.RequestForKey(k) == nil || list[i].max > kmsg.RequestForKey(k).MaxVersion() {
			panic(fmt.Sprintf("agent: api key %d: kmsg cannot decode up to v%d", k, list[i].max))
		}
		t[k] = &list[i]
	}
	return t
}

// lookupAPI returns the registered api for key, or nil.
func lookupAPI(key int16) *api { return apiTable[key] }

// serverMetrics are the protocol server's Prometheus metrics.
type serverMetrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	errors      *prometheus.CounterVec
	connections prometheus.Gauge
	topics      *topicMetrics // per-topic traffic, counted by Produce and Fetch

	rejected     *prometheus.CounterVec // connections over a limit, by limit
	idleClosed   prometheus.Counter
	authFailures *prometheus.CounterVec // by mechanism (TLS: handshakes)
	denials      *prometheus.CounterVec // authorization denials, by API
}

func newServerMetrics(reg prometheus.Registerer) (*serverMetrics, error) {
	m := &serverMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_requests_total",
			Help: "Kafka requests handled, by API.",
		}, []string{"api"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "silt_request_duration_seconds",
			Help:    "Time from a request's start to its handler's answer, by API.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"api"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_request_errors_total",
			Help: "Kafka error codes answered, by API and error code name.",
		}, []string{"api", "code"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "silt_connections",
			Help: "Open client connections.",
		}),
	}
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "silt_connections_rejected_total",
		Help: "Connections closed at once for exceeding a connection limit, by limit (agent, ip).",
	}, []string{"limit"})
	m.idleClosed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "silt_connections_idle_closed_total",
		Help: "Connections closed after the idle timeout (connections.max.idle.ms).",
	})
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "silt_authentication_failures_total",
		Help: "Failed authentications, by SASL mechanism (TLS: failed TLS handshakes).",
	}, []string{"mechanism"})
	m.denials = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "silt_authorization_denials_total",
		Help: "Authorization checks denied (each logged as an audit line), by API.",
	}, []string{"api"})
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.errors, m.connections,
		m.rejected, m.idleClosed, m.authFailures, m.denials} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	var err error
	if m.topics, err = newTopicMetrics(reg); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *serverMetrics) observe(api string, d time.Duration) {
	m.requests.WithLabelValues(api).Inc()
	m.duration.WithLabelValues(api).Observe(d.Seconds())
}

func (m *serverMetrics) countError(key int16, code int16) {
	m.errors.WithLabelValues(kmsg.NameForKey(key), codeName(code)).Inc()
}

// hostPort joins a host and an int32 port.
func hostPort(host string, port int32) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}
