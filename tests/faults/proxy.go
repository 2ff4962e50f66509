package faults

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is a TCP proxy between one agent and one server (Postgres or
// MinIO), so that one agent's link can be cut or slowed while the other
// agents' links stay healthy.
//
// Cut blackholes the link, as a network partition does: bytes in either
// direction are dropped, connections open at the cut hang (nothing is
// delivered, not even a close), and new connections are accepted and
// then hang the same way. Heal closes the connections that were cut (a
// real partition long enough ends them the same way, by timeouts) and
// lets new connections through again. SetLatency delays every chunk of
// bytes in both directions by d, keeping their order.
type Proxy struct {
	name   string
	target string
	ln     net.Listener

	mu      sync.Mutex // mu guards cut, latency, links and closed
	cut     bool
	latency time.Duration
	links   map[*link]struct{}
	closed  bool

	wg sync.WaitGroup // the accept loop and every link's goroutines
}

// link is one proxied connection.
type link struct {
	p      *Proxy
	client net.Conn
	server net.Conn // nil for a connection accepted during a cut
	// blackholed is set by Cut: the link drops what it reads, and Heal
	// closes it.
	blackholed atomic.Bool
	closeOnce  sync.Once
}

// chunk is bytes read from one side, due at the other at due.
type chunk struct {
	data []byte
	due  time.Time
}

// NewProxy listens on a free port of 127.0.0.1 and forwards to target.
func NewProxy(name, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", name, err)
	}
	p := &Proxy{name: name, target: target, ln: ln, links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Name is the link's name, e.g. "a->postgres".
func (p *Proxy) Name() string { return p.name }

// Addr is where clients connect.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut blackholes the link (see Proxy).
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for l := range p.links {
		l.blackholed.Store(true)
	}
}

// SetLatency delays every chunk forwarded from now on by d.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency = d
}

// Heal ends a cut and any latency: the connections that were cut are
// closed, new ones go through.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut, p.latency = false, 0
	var dead []*link
	for l := range p.links {
		if l.blackholed.Load() {
			dead = append(dead, l)
		}
	}
	p.mu.Unlock()
	for _, l := range dead {
		l.close()
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	for _, l := range links {
		l.close()
	}
	p.wg.Wait()
}

func (p *Proxy) state() (cut bool, latency time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut, p.latency
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		l := &link{p: p, client: c}
		if cut, _ := p.state(); cut {
			l.blackholed.Store(true)
		} else {
			s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
			if err != nil {
				// The server is down: the client sees its connection
				// closed, as it would see it refused.
				_ = c.Close()
				continue
			}
			l.server = s
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			l.close()
			return
		}
		p.links[l] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go l.pump(l.client, l.server)
		go l.pump(l.server, l.client)
	}
}

// pump forwards what src sends to dst, through a delay queue. A nil side
// (a connection accepted during a cut has no server) is skipped: the
// other pump drains the client.
func (l *link) pump(src, dst net.Conn) {
	defer l.p.wg.Done()
	if src == nil {
		return
	}
	q := make(chan chunk, 256)
	var writer sync.WaitGroup
	writer.Go(func() { l.deliver(q, dst) })
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !l.blackholed.Load() && dst != nil {
			_, d := l.p.state()
			q <- chunk{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(d)}
		}
		if err != nil {
			break
		}
	}
	close(q)
	writer.Wait()
	if !l.blackholed.Load() {
		// An end on one side ends the link (neither Postgres nor HTTP
		// needs half-closed connections). A blackholed link forwards
		// no end: it hangs until Heal closes it.
		l.close()
	}
}

// deliver writes q's chunks to dst when each is due.
func (l *link) deliver(q <-chan chunk, dst net.Conn) {
	broken := false
	for c := range q {
		if broken || l.blackholed.Load() {
			continue // drain, so the reader never blocks on q
		}
		if wait := time.Until(c.due); wait > 0 {
			time.Sleep(wait) // the latency being injected, not a synchronization
		}
		if l.blackholed.Load() {
			continue
		}
		if _, err := dst.Write(c.data); err != nil {
			broken = true
			l.close()
		}
	}
}

// close closes both sides and forgets the link.
func (l *link) close() {
	l.closeOnce.Do(func() {
		_ = l.client.Close()
		if l.server != nil {
			_ = l.server.Close()
		}
		l.p.mu.Lock()
		delete(l.p.links, l)
		l.p.mu.Unlock()
	})
}
