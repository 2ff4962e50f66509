package e2e

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestInvalidConfiguration runs the binary with bad settings: it must exit
// with status 2 and name the flag (or variable) at fault, before starting.
func TestInvalidConfiguration(t *testing.T) {
	bin := siltBinary(t)
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"agent"}, nil, "--metastore: required"},
		{[]string{"agent", "--metastore", "mysql://db", "--bucket", "s3://b"}, nil, "--metastore"},
		{[]string{"dev", "--listen", "localhost"}, nil, "--listen"},
		{[]string{"dev"}, []string{"SILT_FLUSH_BYTES=lots"}, "SILT_FLUSH_BYTES"},
		{[]string{"dev", "--log-format", "yaml"}, nil, "--log-format"},
		{[]string{"launch"}, nil, "unknown command"},
	} {
		ctx := testContext(t, 30*time.Second)
		cmd := exec.CommandContext(ctx, bin, tc.args...)
		cmd.Dir = t.TempDir() // nothing may be created here
		cmd.Env = append(os.Environ(), tc.env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("silt %q %q: %v, want exit status 2", tc.args, tc.env, err)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("silt %q %q: stderr %q does not name %s", tc.args, tc.env, stderr.String(), tc.want)
		}
		if entries, _ := os.ReadDir(cmd.Dir); len(entries) > 0 {
			t.Errorf("silt %q created %s before failing", tc.args, entries[0].Name())
		}
	}
}

// TestAdvertisedAddrFile starts silt before its advertised address is
// known: it waits for the file, then Metadata names exactly that address.
func TestAdvertisedAddrFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "advertised")
	s := newDev(t, "--advertised-addr-file", file)
	// Write the file only once silt says it is waiting for it.
	var once sync.Once
	writeErr := make(chan error, 1)
	s.onLog = func(p []byte) {
		if bytes.Contains(p, []byte("waiting for the advertised address file")) {
			once.Do(func() { writeErr <- os.WriteFile(file, []byte("broker-7.example:19092\n"), 0o644) })
		}
	}
	s.Start()
	select {
	case err := <-writeErr:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatal("silt became ready without waiting for the advertised address file")
	}

	c := dialRaw(t, s.Kafka())
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 9
	resp := c.roundTrip(req).(*kmsg.MetadataResponse)
	if len(resp.Brokers) != 1 || resp.Brokers[0].Host != "broker-7.example" || resp.Brokers[0].Port != 19092 {
		t.Fatalf("brokers %+v, want one at broker-7.example:19092", resp.Brokers)
	}
}

// TestAgentOnLocalStorage runs `silt agent` on a SQLite path and a file://
// bucket (the single-machine production setup), and stops it with SIGINT,
// which must shut down as gracefully as SIGTERM.
func TestAgentOnLocalStorage(t *testing.T) {
	ctx := testContext(t, time.Minute)
	dir := t.TempDir()
	s := newSilt(t, []string{"agent", "--metastore", filepath.Join(dir, "meta.db"), "--bucket", "file://" + filepath.Join(dir, "bucket"),
		"--listen", "127.0.0.1:0", "--admin-listen", "", "--agent-id", "local"}, nil).Start()
	if s.Admin() != "off" {
		t.Errorf("ready line admin=%q with --admin-listen empty, want off", s.Admin())
	}
	const topic = "local"
	r := &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("on local storage")}
	if err := newClient(t, s.Kafka()).ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if err := s.signal(syscall.SIGINT); err != nil {
		t.Fatalf("exit after SIGINT: %v", err)
	}
	s.Start()
	checkAcked(t, []acked{{r.Partition, r.Offset, "k", "on local storage"}}, readAll(t, ctx, s.Kafka(), topic))
}

// TestPortInUse: a listener that cannot bind is a run-time failure (exit
// status 1) reported clearly, not a hang.
func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx := testContext(t, time.Minute)
	cmd := exec.CommandContext(ctx, siltBinary(t), "dev", "--data-dir", t.TempDir(), "--listen", ln.Addr().String(), "--admin-listen", "")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("silt dev on a port in use: %v, want exit status 1\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), ln.Addr().String()) {
		t.Errorf("stderr does not name the address in use:\n%s", stderr.String())
	}
}
