package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// kgoUnbuilt are franz-go integration tests of features silt has not built
// yet. They skip themselves when ApiVersions does not advertise the
// feature, and only they may: any other skip fails TestFranzGoSuite.
// None is left: transactions, KIP-848 and share groups are built.
var kgoUnbuilt = []struct {
	pattern *regexp.Regexp
	feature string
}{}

// kgoMustPass are tests of the suite that must have run and passed (a
// change of franz-go's version that renamed them would otherwise let
// them go unnoticed): SCRAM, transactions, the KIP-848 consumer groups and the share
// groups.
var kgoMustPass = []string{
	"TestConsumeRegex", "TestGroupETL", "TestTxnEtl", "TestTxnEtl/range/848", "TestTxnEtl/sticky/848/static", "TestSCRAMAuth", "TestSCRAMAuthBadCredentials",
	"TestGroupSimple/848", "TestGroupETL/range/848", "TestGroupETL/sticky/848", "TestGroupETL/sticky/848/static",
	"Test848RegexBrokerResolves",
	"TestShareGroup", "TestShareGroupETL", "TestShareGroupAckOnClose", "TestShareGroupOffsetsAdmin",
	"TestConsumeRegexShareSkipsInternal",
}

// TestFranzGoSuite runs franz-go's own kgo integration suite (the version
// in go.mod, from the module cache) against silt dev: one broker,
// replication factor 1, 20k records per ETL test, a short flush interval,
// and a SASL_PLAINTEXT listener beside the plaintext one for its SCRAM
// tests (user kgo, SCRAM-SHA-512, created with `silt user create`).
// It passes whole except the tests of features silt has not built yet
// (kgoUnbuilt, none now), which are named in its log; SCRAM,
// transactions, KIP-848 consumer groups and share groups (kgoMustPass)
// run and pass.
func TestFranzGoSuite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(siltBinary(t), "user", "create", "--metastore", filepath.Join(dir, "metastore.db"),
		"--user", "kgo", "--password-file", "-")
	cmd.Stdin = strings.NewReader("kgo-secret\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("silt user create: %v\n%s", err, out)
	}
	plain, scram := freeAddr(t), freeAddr(t)
	s := newDev(t, "--data-dir", dir, "--flush-interval", "10ms",
		"--listeners", "PLAINTEXT://"+plain+",SASL_PLAINTEXT://"+scram,
		"--sasl-mechanisms", "SCRAM-SHA-512").Start()
	ctx := testContext(t, 12*time.Minute)
	cmd = exec.CommandContext(ctx, "go", "test", "-count=1", "-timeout=10m", "-v",
		"github.com/twmb/franz-go/pkg/kgo")
	cmd.Env = append(os.Environ(),
		"KGO_SEEDS="+s.Kafka(),
		"KGO_TEST_SCRAM_SEEDS="+scram,
		"KGO_TEST_SCRAM=kgo:kgo-secret:512",
		"KGO_TEST_RF=1",
		"KGO_TEST_RECORDS=20000",
		"KGO_LOG_LEVEL=none",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	log := out.String()
	var failed []string
	var failures strings.Builder // each failed test's own lines
	own := map[string][]string{} // lines printed under each test's name
	current := ""
	skipped := map[string][]string{}
	for _, line := range strings.Split(log, "\n") {
		trimmed := strings.TrimSpace(line)
		for _, header := range []string{"=== RUN ", "=== CONT ", "=== NAME ", "=== PAUSE "} {
			if name, ok := strings.CutPrefix(trimmed, header); ok {
				current = strings.TrimSpace(name)
			}
		}
		if current != "" && !strings.HasPrefix(trimmed, "===") {
			own[current] = append(own[current], line)
		}
		line = trimmed
		if name, ok := strings.CutPrefix(line, "--- FAIL: "); ok {
			name = strings.Fields(name)[0]
			failed = append(failed, name)
			fmt.Fprintf(&failures, "%s:\n%s\n", name, strings.Join(lastN(own[name], 30), "\n"))
		}
		if name, ok := strings.CutPrefix(line, "--- SKIP: "); ok {
			name = strings.Fields(name)[0]
			feature := ""
			for _, u := range kgoUnbuilt {
				if u.pattern.MatchString(name) {
					feature = u.feature
					break
				}
			}
			if feature == "" {
				t.Errorf("franz-go test %s skipped, and it tests nothing silt lacks", name)
				continue
			}
			skipped[feature] = append(skipped[feature], name)
		}
	}
	for feature, names := range skipped {
		t.Logf("skipped (%s not built yet): %s", feature, strings.Join(names, " "))
	}
	if err != nil || len(failed) > 0 {
		t.Fatalf("franz-go's kgo suite against silt: %v; failed: %v\n%s\nthe suite's last lines:\n%s", err, failed, failures.String(), lastLines(log, 60))
	}
	for _, name := range kgoMustPass {
		if !strings.Contains(log, "--- PASS: "+name+" ") {
			t.Errorf("the suite passed without running %s", name)
		}
	}
	if t.Failed() {
		t.Fatalf("the suite's last lines:\n%s", lastLines(log, 50))
	}
}

// lastN is the last n of lines.
func lastN(lines []string, n int) []string {
	return lines[max(0, len(lines)-n):]
}
