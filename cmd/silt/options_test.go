package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	o, err := parseOptions("dev", nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.listen != "127.0.0.1:9092" || o.adminListen != "127.0.0.1:9644" || o.dataDir != "./silt-data" ||
		!o.autoCreateTopics || o.defaultPartitions != 1 || o.logFormat != "text" || o.flushInterval != 250*time.Millisecond ||
		o.flushBytes != 8<<20 || o.agentID != "dev" {
		t.Fatalf("dev defaults: %+v", o)
	}
	if _, err := parseOptions("agent", nil, env(nil), &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "--metastore: required") || !strings.Contains(err.Error(), "--bucket: required") {
		t.Fatalf("agent without --metastore and --bucket: %v", err)
	}
	o, err = parseOptions("agent", []string{"--metastore", "postgres://u:p@h/db", "--bucket", "s3://b/p?endpoint=http://x"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.listen != ":9092" || o.adminListen != ":9644" || o.logFormat != "json" || o.agentID != "" {
		t.Fatalf("agent defaults: %+v", o)
	}
}

func TestEnvironmentAndPrecedence(t *testing.T) {
	e := env(map[string]string{
		"SILT_LISTEN":             "127.0.0.1:1234",
		"SILT_FLUSH_BYTES":        "1MiB",
		"SILT_FLUSH_INTERVAL":     "1s",
		"SILT_ADMIN_LISTEN":       "", // empty disables
		"SILT_AUTO_CREATE_TOPICS": "false",
		"SILT_DEFAULT_PARTITIONS": "",  // empty: ignored for non-string flags
		"SILT_ZONE":               "a", // overridden by the flag
	})
	o, err := parseOptions("dev", []string{"--zone", "b"}, e, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.listen != "127.0.0.1:1234" || o.flushBytes != 1<<20 || o.flushInterval != time.Second ||
		o.adminListen != "" || o.autoCreateTopics || o.defaultPartitions != 1 || o.zone != "b" {
		t.Fatalf("options: %+v", o)
	}
}

func TestInvalidConfigurationNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--listen", "nonsense"}, nil, "--listen"},
		{[]string{"--listen", "127.0.0.1:99999"}, nil, "--listen"},
		{[]string{"--advertised-addr", "host:0"}, nil, "--advertised-addr"},
		{[]string{"--advertised-addr", "h:1", "--advertised-addr-file", "/x"}, nil, "--advertised-addr-file"},
		{[]string{"--flush-bytes", "0"}, nil, "--flush-bytes"},
		{[]string{"--flush-bytes", "12 parsecs"}, nil, "flush-bytes"},
		{[]string{"--flush-interval", "-1s"}, nil, "--flush-interval"},
		{[]string{"--early-cut-min-interval", "-1ms"}, nil, "--early-cut-min-interval"},
		{nil, map[string]string{"SILT_EARLY_CUT": "maybe"}, "SILT_EARLY_CUT (for --early-cut)"},
		{[]string{"--flush-bytes", "8MiB", "--max-buffered-bytes", "1MiB"}, nil, "--max-buffered-bytes"},
		{[]string{"--max-queued-request-bytes", "512KiB"}, nil, "--max-queued-request-bytes"},
		{[]string{"--default-partitions", "0"}, nil, "--default-partitions"},
		{[]string{"--log-format", "xml"}, nil, "--log-format"},
		{[]string{"--log-level", "loud"}, nil, "--log-level"},
		{[]string{"--data-dir", ""}, nil, "--data-dir"},
		{[]string{"--default-retention", "a week"}, nil, "default-retention"},
		{[]string{"--default-retention", "-5s"}, nil, "default-retention"},
		{[]string{"--default-retention-bytes", "-2"}, nil, "--default-retention-bytes"},
		{[]string{"--reclaim-grace", "-1s"}, nil, "--reclaim-grace"},
		{[]string{"--compaction-chunk-bytes", "8MiB", "--compaction-object-bytes", "4MiB"}, nil, "--compaction-object-bytes"},
		{nil, map[string]string{"SILT_DEFAULT_RETENTION": "soon"}, "SILT_DEFAULT_RETENTION (for --default-retention)"},
		{[]string{"--no-such-flag"}, nil, "no-such-flag"},
		{[]string{"extra"}, nil, "unexpected argument"},
		{nil, map[string]string{"SILT_DEFAULT_PARTITIONS": "many"}, "SILT_DEFAULT_PARTITIONS (for --default-partitions)"},
		{nil, map[string]string{"SILT_LOG_LEVEL": "loud"}, "SILT_LOG_LEVEL (--log-level)"},
	} {
		_, err := parseOptions("dev", tc.args, env(tc.env), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %v: error %v, want one naming %s", tc.args, tc.env, err, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--metastore", "mysql://x", "--bucket", "s3://b"}, "--metastore"},
		{[]string{"--metastore", "/tmp/m.db", "--bucket", "gs://b"}, "--bucket"},
		{[]string{"--metastore", "/tmp/m.db", "--bucket", "s3:///nobucket"}, "--bucket"},
	} {
		_, err := parseOptions("agent", tc.args, env(nil), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one naming %s", tc.args, err, tc.want)
		}
	}
}

func TestRunExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		status int
		out    string
	}{
		{nil, exitUsage, "Usage"},
		{[]string{"help"}, exitOK, "silt agent"},
		{[]string{"help", "agent"}, exitOK, "SILT_METASTORE"},
		{[]string{"version"}, exitOK, "silt "},
		{[]string{"frobnicate"}, exitUsage, "unknown command"},
		{[]string{"dev", "--flush-bytes", "-5"}, exitUsage, "--flush-bytes"},
		{[]string{"agent", "--listen", "x"}, exitUsage, "--listen"},
		{[]string{"dev", "-h"}, exitOK, "SILT_DATA_DIR"},
	} {
		var stdout, stderr bytes.Buffer
		if got := run(tc.args, &stdout, &stderr); got != tc.status {
			t.Errorf("silt %q: exit %d, want %d (stderr %q)", tc.args, got, tc.status, stderr.String())
		}
		if all := stdout.String() + stderr.String(); !strings.Contains(all, tc.out) {
			t.Errorf("silt %q: output %q, want it to contain %q", tc.args, all, tc.out)
		}
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "64KiB": 64 << 10, "8MiB": 8 << 20, "8M": 8 << 20, "1GiB": 1 << 30, "2MB": 2e6, "3 KiB": 3 << 10} {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5MiB", "1PiB", "99999999999GiB"} {
		var b byteSize
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) accepted", in)
		}
	}
	b := byteSize(8 << 20)
	if b.String() != "8MiB" {
		t.Errorf("String() = %s", b.String())
	}
}

func TestWaitAdvertisedFile(t *testing.T) {
	dir := t.TempDir()
	f := dir + "/addr"
	if _, err := waitAdvertisedFile(t.Context(), f, 200*time.Millisecond); err == nil {
		t.Fatal("missing file accepted")
	}
	if err := os.WriteFile(f, []byte("10.0.0.7:9092\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := waitAdvertisedFile(t.Context(), f, time.Second)
	if err != nil || got != "10.0.0.7:9092" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestReachable(t *testing.T) {
	for in, want := range map[string]string{"[::]:9092": "127.0.0.1:9092", "0.0.0.0:1": "127.0.0.1:1", ":5": "127.0.0.1:5", "10.1.2.3:4": "10.1.2.3:4"} {
		if got := reachable(in); got != want {
			t.Errorf("reachable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRetentionFlags(t *testing.T) {
	o, err := parseOptions("dev", nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(o.defaultRetention) != 7*24*time.Hour || o.defaultRetentionBytes != -1 || !o.janitor || !o.compaction {
		t.Fatalf("defaults: retention %v, bytes %d, janitor %v, compaction %v", time.Duration(o.defaultRetention), o.defaultRetentionBytes, o.janitor, o.compaction)
	}
	for in, want := range map[string]time.Duration{"-1": -1, "forever": -1, "3d": 72 * time.Hour, "90m": 90 * time.Minute, "0s": 0} {
		o, err := parseOptions("dev", []string{"--default-retention", in}, env(nil), &bytes.Buffer{})
		if err != nil || time.Duration(o.defaultRetention) != want {
			t.Errorf("--default-retention %s: %v, %v; want %v", in, time.Duration(o.defaultRetention), err, want)
		}
	}
	o, err = parseOptions("dev", []string{"--default-retention-bytes", "1GiB", "--janitor=false"}, env(nil), &bytes.Buffer{})
	if err != nil || o.defaultRetentionBytes != 1<<30 || o.janitor {
		t.Fatalf("retention bytes %d, janitor %v, %v", o.defaultRetentionBytes, o.janitor, err)
	}
	d := topicDefaults(o)
	if d.RetentionBytes != 1<<30 || d.Default("retention.ms") != "604800000" {
		t.Fatalf("topic defaults %+v", d)
	}
}
