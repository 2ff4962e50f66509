package siltproc

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// script writes an executable shell script standing in for silt.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-silt")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

type lockedBuffer struct {
	mu sync.Mutex // mu guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestStartReadyAndStop(t *testing.T) {
	bin := script(t, `trap 'echo stopping; exit 0' TERM
echo starting >&2
echo "silt ready: kafka=127.0.0.1:1234 admin=127.0.0.1:5678"
while :; do sleep 0.1; done`)
	var log lockedBuffer
	p, err := Start(t.Context(), Spec{Bin: bin, Log: &log, ReadyTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if p.Kafka != "127.0.0.1:1234" || p.Admin != "127.0.0.1:5678" || p.PID <= 0 {
		t.Fatalf("proc %+v", p)
	}
	if p.MetricsURL() != "http://127.0.0.1:5678/metrics" {
		t.Fatalf("metrics url %s", p.MetricsURL())
	}
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	<-p.Done()
	for _, want := range []string{"starting", "silt ready:", "stopping"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q: %q", want, log.String())
		}
	}
}

func TestStartExitBeforeReady(t *testing.T) {
	bin := script(t, `echo "bad flag" >&2; exit 2`)
	_, err := Start(t.Context(), Spec{Bin: bin, ReadyTimeout: 30 * time.Second})
	if !errors.Is(err, ErrExited) {
		t.Fatalf("err = %v, want ErrExited", err)
	}
}

func TestStartNotReadyIsKilled(t *testing.T) {
	bin := script(t, `exec sleep 60`)
	_, err := Start(t.Context(), Spec{Bin: bin, ReadyTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("err = %v, want ErrNotReady", err)
	}
}
