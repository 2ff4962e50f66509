package e2e

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// dropProxy is a TCP proxy between Kafka clients and one agent that lets
// the first Produce request through, lets the agent commit and answer it,
// and then cuts the client's connection instead of delivering that answer:
// the client sees a produce that may or may not have happened.
type dropProxy struct {
	t  testing.TB
	ln net.Listener

	mu      sync.Mutex // mu guards the fields below
	target  string
	armed   bool  // the next Produce request will lose its response
	victim  int32 // correlation id of that request, on victimC
	victimC net.Conn
	conns   map[net.Conn]struct{}

	dropped chan struct{} // closed once a response was dropped
	wg      sync.WaitGroup
}

func newDropProxy(t testing.TB) *dropProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{t: t, ln: ln, armed: true, conns: map[net.Conn]struct{}{}, dropped: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *dropProxy) Addr() string { return p.ln.Addr().String() }

// SetTarget sets the agent address new connections are forwarded to.
func (p *dropProxy) SetTarget(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = addr
}

// Dropped is closed once the proxy dropped a produce response.
func (p *dropProxy) Dropped() <-chan struct{} { return p.dropped }

func (p *dropProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *dropProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *dropProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			p.mu.Lock()
			p.conns = nil // closed: later track calls refuse
			p.mu.Unlock()
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		agent, err := net.Dial("tcp", target)
		if err != nil {
			p.t.Logf("proxy: dial %s: %v", target, err)
			client.Close()
			continue
		}
		if !p.track(client) || !p.track(agent) {
			client.Close()
			agent.Close()
			return
		}
		p.wg.Add(2)
		go p.requests(client, agent)
		go p.responses(agent, client)
	}
}

// readFrame reads one size-prefixed Kafka frame (size included).
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 200<<20 {
		return nil, errors.New("frame too large")
	}
	frame := make([]byte, 4+n)
	copy(frame, size[:])
	_, err := io.ReadFull(r, frame[4:])
	return frame, err
}

// requests forwards client frames, arming the drop on the first Produce.
func (p *dropProxy) requests(client, agent net.Conn) {
	defer p.wg.Done()
	defer agent.Close()
	for {
		f, err := readFrame(client)
		if err != nil {
			return
		}
		if len(f) >= 12 && int16(binary.BigEndian.Uint16(f[4:])) == 0 { // Produce
			p.mu.Lock()
			if p.armed {
				p.armed = false
				p.victim = int32(binary.BigEndian.Uint32(f[8:]))
				p.victimC = client
			}
			p.mu.Unlock()
		}
		if _, err := agent.Write(f); err != nil {
			return
		}
	}
}

// responses forwards agent frames, except the armed Produce's response:
// its arrival proves the agent committed, and instead of delivering it the
// proxy closes both sides of the connection.
func (p *dropProxy) responses(agent, client net.Conn) {
	defer p.wg.Done()
	defer client.Close()
	for {
		f, err := readFrame(agent)
		if err != nil {
			return
		}
		p.mu.Lock()
		drop := p.victimC == client && len(f) >= 8 && int32(binary.BigEndian.Uint32(f[4:])) == p.victim
		if drop {
			p.victimC = nil
			close(p.dropped)
		}
		p.mu.Unlock()
		if drop {
			agent.Close()
			return
		}
		if _, err := client.Write(f); err != nil {
			return
		}
	}
}
