package main

import (
	"io"
	"strings"
	"testing"

	"github.com/siltdata/silt/tests/bench/loadgen"
)

func TestBenchPayloadFlag(t *testing.T) {
	o, err := parseBenchOptions(nil, io.Discard)
	if err != nil || o.load.Payload != loadgen.PayloadRandom {
		t.Fatalf("default: payload %q, %v; want %q", o.load.Payload, err, loadgen.PayloadRandom)
	}
	o, err = parseBenchOptions([]string{"--payload", "json"}, io.Discard)
	if err != nil || o.load.Payload != loadgen.PayloadJSON {
		t.Fatalf("--payload json: payload %q, %v", o.load.Payload, err)
	}
	if _, err := parseBenchOptions([]string{"--payload", "zeros"}, io.Discard); err == nil || !strings.Contains(err.Error(), "zeros") {
		t.Fatalf("--payload zeros: %v, want an error naming it", err)
	}
}

func TestBytesRatio(t *testing.T) {
	for _, c := range []struct {
		logical int64
		stored  float64
		want    string
	}{{1 << 30, 1 << 30, "1024 / 1024 = 1.000"}, {1 << 30, 1 << 28, "1024 / 256 = 0.250"}, {1 << 30, -1, "?"}, {0, 5, "?"}} {
		if got := bytesRatio(c.logical, c.stored); got != c.want {
			t.Errorf("bytesRatio(%d, %v) = %q, want %q", c.logical, c.stored, got, c.want)
		}
	}
}
