package e2e

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siltdata/silt/tests/harness"
)

// Main classes of Kafka's command-line tools, as bin/kafka-*.sh run them.
const (
	kafkaTopics          = "org.apache.kafka.tools.TopicCommand"
	kafkaConfigs         = "org.apache.kafka.tools.ConfigCommand"
	kafkaConsumerGroups  = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
	kafkaConsoleProducer = "org.apache.kafka.tools.ConsoleProducer"
	kafkaConsoleConsumer = "org.apache.kafka.tools.consumer.ConsoleConsumer"
	kafkaDeleteRecords   = "org.apache.kafka.tools.DeleteRecordsCommand"
)

// kafkaCLI runs Kafka's command-line tools one after another in one JVM
// (the driver's CLI runner, tests/java/clients Cli.java).
type kafkaCLI struct {
	t      testing.TB
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr syncBuffer
}

func startKafkaCLI(t testing.TB, j harness.JavaEnv) *kafkaCLI {
	t.Helper()
	args := append(append([]string{}, javaOptions...), "-cp", j.CLICP(), "dev.silt.javatest.Main", "cli")
	c := &kafkaCLI{t: t, cmd: exec.Command(j.Java, args...)}
	c.cmd.Stderr = &c.stderr
	var err error
	if c.in, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.out = bufio.NewScanner(stdout)
	c.out.Buffer(make([]byte, 16<<20), 16<<20)
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start the CLI runner: %v", err)
	}
	t.Cleanup(func() {
		c.in.Close() // the runner exits at the end of its input
		done := make(chan error, 1)
		go func() { done <- c.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("CLI runner: %v\n%s", err, lastLines(c.stderr.String(), 50))
			}
		case <-time.After(30 * time.Second):
			c.cmd.Process.Kill()
			<-done
			t.Errorf("CLI runner did not exit")
		}
	})
	return c
}

// cliResult is one tool run.
type cliResult struct {
	exit           int
	stdout, stderr string
}

// run runs one tool with stdin and args and returns what it printed.
func (c *kafkaCLI) run(main, stdin string, args ...string) cliResult {
	c.t.Helper()
	enc := base64.StdEncoding.EncodeToString
	fields := []string{enc([]byte(main)), enc([]byte(stdin))}
	for _, a := range args {
		fields = append(fields, enc([]byte(a)))
	}
	if _, err := io.WriteString(c.in, strings.Join(fields, " ")+"\n"); err != nil {
		c.t.Fatalf("CLI runner: %v\n%s", err, lastLines(c.stderr.String(), 50))
	}
	if !c.out.Scan() {
		c.t.Fatalf("CLI runner ended: %v\n%s", c.out.Err(), lastLines(c.stderr.String(), 50))
	}
	f := strings.Split(c.out.Text(), " ")
	if len(f) != 3 {
		c.t.Fatalf("CLI runner answered %q", c.out.Text())
	}
	exit, err := strconv.Atoi(f[0])
	if err != nil {
		c.t.Fatalf("CLI runner answered %q", c.out.Text())
	}
	out, err1 := base64.StdEncoding.DecodeString(f[1])
	errOut, err2 := base64.StdEncoding.DecodeString(f[2])
	if err1 != nil || err2 != nil {
		c.t.Fatalf("CLI runner answered %q", c.out.Text())
	}
	return cliResult{exit: exit, stdout: string(out), stderr: string(errOut)}
}

// ok runs a tool that must exit 0 and returns its stdout.
func (c *kafkaCLI) ok(main, stdin string, args ...string) string {
	c.t.Helper()
	r := c.run(main, stdin, args...)
	if r.exit != 0 {
		c.t.Fatalf("%s %s: exit %d\nstdout:\n%s\nstderr:\n%s", main, strings.Join(args, " "), r.exit, r.stdout, r.stderr)
	}
	return r.stdout
}

// TestKafkaCLI drives Kafka's own command-line tools against silt dev, a
// 3-agent silt cluster, and (checking the assertions themselves) Apache
// Kafka: kafka-topics, the console producer and consumer,
// kafka-consumer-groups (describe with lag, offset resets with
// --execute, delete), kafka-delete-records and kafka-configs, asserting
// what they print.
func TestKafkaCLI(t *testing.T) {
	j := harness.Java(t)
	t.Run("dev", func(t *testing.T) {
		t.Parallel()
		s := newDev(t, "--flush-interval", "20ms", "--log-level", "info").Start()
		cliScenario(t, startKafkaCLI(t, j), s.Kafka())
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		pg, s3 := harness.Postgres(t), harness.S3(t)
		var agents []*silt
		var addrs []string
		for _, id := range []string{"cli-a", "cli-b", "cli-c"} {
			a := newAgentOn(t, pg, s3, "--agent-id", id, "--flush-interval", "20ms", "--log-level", "info").Start()
			agents = append(agents, a)
			addrs = append(addrs, a.Kafka())
		}
		waitAllBrokers(t, testContext(t, time.Minute), agents)
		cliScenario(t, startKafkaCLI(t, j), strings.Join(addrs, ","))
	})
	t.Run("kafka", func(t *testing.T) {
		t.Parallel()
		cliScenario(t, startKafkaCLI(t, j), harness.Kafka(t).Addr)
	})
}

var (
	describeTopicRE = regexp.MustCompile(`(?m)^Topic: (\S+)\s+TopicId: \S+\s+PartitionCount: (\d+)\s+ReplicationFactor: (\d+)\s+Configs: ?(.*)$`)
	describePartRE  = regexp.MustCompile(`(?m)^\s+Topic: (\S+)\s+Partition: (\d+)\s+Leader: (\d+)\s+Replicas: (\d+)\s+Isr: (\d+)`)
)

func cliScenario(t *testing.T, cli *kafkaCLI, bootstrap string) {
	bs := []string{"--bootstrap-server", bootstrap}
	topic := fmt.Sprintf("cli-%d", time.Now().UnixNano())
	group := topic + "-group"

	// kafka-topics: create, list, describe, add partitions.
	out := cli.ok(kafkaTopics, "", append(bs, "--create", "--topic", topic, "--partitions", "3",
		"--replication-factor", "1", "--config", "retention.ms=86400000")...)
	if !strings.Contains(out, "Created topic "+topic+".") {
		t.Fatalf("kafka-topics --create printed %q", out)
	}
	if r := cli.run(kafkaTopics, "", append(bs, "--create", "--topic", topic, "--partitions", "1", "--replication-factor", "1")...); r.exit == 0 ||
		!strings.Contains(r.stdout+r.stderr, "already exists") {
		t.Errorf("creating %s again: exit %d, printed %q %q; want an error saying it already exists", topic, r.exit, r.stdout, r.stderr)
	}
	list := strings.Fields(cli.ok(kafkaTopics, "", append(bs, "--list")...))
	if !slices.Contains(list, topic) {
		t.Errorf("kafka-topics --list printed %v, without %s", list, topic)
	}
	if list := strings.Fields(cli.ok(kafkaTopics, "", append(bs, "--list", "--exclude-internal")...)); slices.Contains(list, "__consumer_offsets") {
		t.Errorf("kafka-topics --list --exclude-internal lists __consumer_offsets")
	}
	checkDescribe := func(partitions int) {
		t.Helper()
		out := cli.ok(kafkaTopics, "", append(bs, "--describe", "--topic", topic)...)
		m := describeTopicRE.FindStringSubmatch(out)
		if m == nil || m[1] != topic || m[2] != strconv.Itoa(partitions) || m[3] != "1" || !strings.Contains(m[4], "retention.ms=86400000") {
			t.Fatalf("kafka-topics --describe printed:\n%s\nwant %s with %d partitions, replication factor 1, retention.ms=86400000", out, topic, partitions)
		}
		parts := describePartRE.FindAllStringSubmatch(out, -1)
		if len(parts) != partitions {
			t.Fatalf("kafka-topics --describe lists %d partitions, want %d:\n%s", len(parts), partitions, out)
		}
		for i, p := range parts {
			if p[2] != strconv.Itoa(i) || p[3] != p[4] || p[4] != p[5] {
				t.Errorf("partition line %v: want partition %d with leader = replicas = isr", p[0], i)
			}
		}
	}
	checkDescribe(3)
	cli.ok(kafkaTopics, "", append(bs, "--alter", "--topic", topic, "--partitions", "4")...)
	checkDescribe(4)
	if r := cli.run(kafkaTopics, "", append(bs, "--describe", "--topic", topic+"-missing")...); r.exit == 0 || !strings.Contains(r.stdout+r.stderr, "does not exist") {
		t.Errorf("describing a missing topic: exit %d, printed %q %q", r.exit, r.stdout, r.stderr)
	}

	// The console producer and consumer, with keys.
	var lines []string
	for i := range 20 {
		lines = append(lines, fmt.Sprintf("key-%d:value-%d", i, i))
	}
	cli.ok(kafkaConsoleProducer, strings.Join(lines, "\n")+"\n", append(bs, "--topic", topic,
		"--reader-property", "parse.key=true", "--reader-property", "key.separator=:")...)
	r := cli.run(kafkaConsoleConsumer, "", append(bs, "--topic", topic, "--from-beginning", "--max-messages", "20",
		"--group", group, "--timeout-ms", "60000", "--formatter-property", "print.key=true", "--formatter-property", "key.separator=:")...)
	if r.exit != 0 {
		t.Fatalf("kafka-console-consumer: exit %d\n%s\n%s", r.exit, r.stdout, r.stderr)
	}
	got := strings.Fields(r.stdout)
	slices.Sort(got)
	want := slices.Clone(lines)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("kafka-console-consumer printed %v, want %v", got, want)
	}
	if !strings.Contains(r.stderr, "Processed a total of 20 messages") {
		t.Errorf("kafka-console-consumer's summary: %q", r.stderr)
	}
	// 10 more records: the group's lag.
	var more []string
	for i := range 10 {
		more = append(more, fmt.Sprintf("more-%d", i))
	}
	cli.ok(kafkaConsoleProducer, strings.Join(more, "\n")+"\n", append(bs, "--topic", topic)...)

	// kafka-consumer-groups: list, describe with lag, resets, delete.
	if list := strings.Fields(cli.ok(kafkaConsumerGroups, "", append(bs, "--list")...)); !slices.Contains(list, group) {
		t.Errorf("kafka-consumer-groups --list printed %v, without %s", list, group)
	}
	current, lag := describeGroupCLI(t, cli, bs, group, topic)
	if sum(current) != 20 || sum(lag) != 10 {
		t.Errorf("kafka-consumer-groups --describe: current offsets %v (sum %d), lag %v (sum %d); want sums 20 and 10", current, sum(current), lag, sum(lag))
	}
	out = cli.ok(kafkaConsumerGroups, "", append(bs, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute")...)
	if n := len(regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(group)+`\s+`+regexp.QuoteMeta(topic)+`\s+\d+\s+0\s*$`).FindAllString(out, -1)); n != 4 {
		t.Errorf("--reset-offsets --to-earliest printed %d partitions at NEW-OFFSET 0, want 4:\n%s", n, out)
	}
	current, lag = describeGroupCLI(t, cli, bs, group, topic)
	if sum(current) != 0 || sum(lag) != 30 {
		t.Errorf("after --to-earliest: current offsets %v, lag %v; want sums 0 and 30", current, lag)
	}
	cli.ok(kafkaConsumerGroups, "", append(bs, "--reset-offsets", "--group", group, "--topic", topic+":0", "--to-offset", "1", "--execute")...)
	current, _ = describeGroupCLI(t, cli, bs, group, topic)
	if current[0] != 1 || sum(current) != 1 {
		t.Errorf("after --to-offset 1 on partition 0: current offsets %v", current)
	}
	cli.ok(kafkaConsumerGroups, "", append(bs, "--reset-offsets", "--group", group, "--all-topics", "--to-latest", "--execute")...)
	current, lag = describeGroupCLI(t, cli, bs, group, topic)
	if sum(current) != 30 || sum(lag) != 0 {
		t.Errorf("after --to-latest: current offsets %v, lag %v; want sums 30 and 0", current, lag)
	}

	// kafka-delete-records: partition 0 up to its end.
	offsetsFile := filepath.Join(t.TempDir(), "delete.json")
	spec := fmt.Sprintf(`{"version":1,"partitions":[{"topic":%q,"partition":0,"offset":%d}]}`, topic, current[0])
	if err := os.WriteFile(offsetsFile, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	out = cli.ok(kafkaDeleteRecords, "", append(bs, "--offset-json-file", offsetsFile)...)
	if want := fmt.Sprintf("partition: %s-0\tlow_watermark: %d", topic, current[0]); !strings.Contains(out, want) {
		t.Errorf("kafka-delete-records printed %q, want %q", out, want)
	}

	// kafka-configs: alter, describe, delete.
	entity := []string{"--entity-type", "topics", "--entity-name", topic}
	out = cli.ok(kafkaConfigs, "", append(append(bs, entity...), "--alter", "--add-config", "retention.ms=3600000,max.message.bytes=2000000")...)
	if !strings.Contains(out, "Completed updating config for topic "+topic) {
		t.Errorf("kafka-configs --alter printed %q", out)
	}
	out = cli.ok(kafkaConfigs, "", append(append(bs, entity...), "--describe")...)
	if !strings.Contains(out, "retention.ms=3600000") || !strings.Contains(out, "max.message.bytes=2000000") {
		t.Errorf("kafka-configs --describe printed:\n%s\nwant retention.ms=3600000 and max.message.bytes=2000000", out)
	}
	cli.ok(kafkaConfigs, "", append(append(bs, entity...), "--alter", "--delete-config", "retention.ms")...)
	out = cli.ok(kafkaConfigs, "", append(append(bs, entity...), "--describe")...)
	if strings.Contains(out, "retention.ms=") || !strings.Contains(out, "max.message.bytes=2000000") {
		t.Errorf("kafka-configs --describe after --delete-config retention.ms printed:\n%s", out)
	}
	if r := cli.run(kafkaConfigs, "", append(append(bs, entity...), "--alter", "--add-config", "retention.ms=never")...); r.exit == 0 {
		t.Errorf("kafka-configs accepted retention.ms=never: %q", r.stdout)
	}

	out = cli.ok(kafkaConsumerGroups, "", append(bs, "--delete", "--group", group)...)
	if !strings.Contains(out, "Deletion of requested consumer groups ('"+group+"') was successful.") {
		t.Errorf("kafka-consumer-groups --delete printed %q", out)
	}
	cli.ok(kafkaTopics, "", append(bs, "--delete", "--topic", topic)...)
	waitFor(t, testContext(t, time.Minute), "the deleted topic to leave kafka-topics --list", func() bool {
		return !slices.Contains(strings.Fields(cli.ok(kafkaTopics, "", append(bs, "--list")...)), topic)
	})
}

// describeGroupCLI runs kafka-consumer-groups --describe and returns the
// CURRENT-OFFSET and LAG columns by partition.
func describeGroupCLI(t *testing.T, cli *kafkaCLI, bs []string, group, topic string) (current, lag map[int]int64) {
	t.Helper()
	out := cli.ok(kafkaConsumerGroups, "", append(bs, "--describe", "--group", group)...)
	current, lag = map[int]int64{}, map[int]int64{}
	header := false
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) >= 6 && f[0] == "GROUP" && f[1] == "TOPIC" && f[3] == "CURRENT-OFFSET" && f[5] == "LAG" {
			header = true
			continue
		}
		if len(f) < 6 || f[0] != group || f[1] != topic {
			continue
		}
		p, err1 := strconv.Atoi(f[2])
		c, err2 := strconv.ParseInt(f[3], 10, 64)
		l, err3 := strconv.ParseInt(f[5], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("kafka-consumer-groups --describe row %q", line)
		}
		current[p], lag[p] = c, l
	}
	if !header || len(current) != 4 {
		t.Fatalf("kafka-consumer-groups --describe printed:\n%s\nwant a table of 4 partitions", out)
	}
	return current, lag
}

func sum(m map[int]int64) int64 {
	var s int64
	for _, v := range m {
		s += v
	}
	return s
}
