package faults

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// echoServer answers every line with the same line, until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex // mu guards conns
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(c, c) })
		}
	})
	return ln.Addr().String()
}

// roundTrip sends a line and waits up to d for its echo.
func roundTrip(c net.Conn, d time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err == nil && line != "ping\n" {
		err = errors.New("wrong echo " + line)
	}
	return err
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestProxy checks the proxy's faults: a cut blackholes existing and new
// connections (nothing arrives, nothing is closed), a heal closes the
// cut connections and lets new ones through, latency delays each round
// trip by twice its value.
func TestProxy(t *testing.T) {
	p, err := NewProxy("test", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	before := dial(t, p.Addr())
	if err := roundTrip(before, 5*time.Second); err != nil {
		t.Fatalf("healthy link: %v", err)
	}

	p.Cut()
	if err := roundTrip(before, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("existing connection across a cut: %v, want a timeout (a hang)", err)
	}
	during := dial(t, p.Addr()) // accepted: a blackhole does not refuse
	if err := roundTrip(during, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("new connection during a cut: %v, want a timeout (a hang)", err)
	}

	p.Heal()
	for _, c := range []net.Conn{before, during} {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a connection cut before the heal: read %v, want it closed", err)
		}
	}
	after := dial(t, p.Addr())
	if err := roundTrip(after, 5*time.Second); err != nil {
		t.Fatalf("after the heal: %v", err)
	}

	const lat = 150 * time.Millisecond
	p.SetLatency(lat)
	start := time.Now()
	if err := roundTrip(after, 10*time.Second); err != nil {
		t.Fatalf("slow link: %v", err)
	}
	if took := time.Since(start); took < 2*lat {
		t.Fatalf("round trip with %v each way took %v", lat, took)
	}
}
