package harness

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KafkaBroker is a real single-node Apache Kafka broker in KRaft mode
// (one process as broker and controller), started from the Maven Central
// jars tests/java/build.sh resolves: the reference silt is compared with.
type KafkaBroker struct {
	Addr    string // host:port of the PLAINTEXT listener
	Version string // Apache Kafka's version, "external" for SILT_TEST_KAFKA_ADDR
	Pid     int    // the broker's process id (0 when external), for CPU accounting
	LogDir  string // its log.dirs (empty when external)
}

const kafkaStartLimit = 90 * time.Second

var kafkaShared struct {
	once sync.Once
	b    KafkaBroker
	err  error
}

// Kafka returns the test process's shared Apache Kafka broker, started on
// the first call and stopped by Run: SILT_TEST_KAFKA_ADDR when set, else
// a local process. Tests sharing it should use their own topic and group
// names. Without Java or Maven the test is skipped, or fails under Strict.
func Kafka(t testing.TB) KafkaBroker {
	t.Helper()
	kafkaShared.once.Do(func() {
		if addr := os.Getenv("SILT_TEST_KAFKA_ADDR"); addr != "" {
			kafkaShared.b = KafkaBroker{Addr: addr, Version: "external"}
			kafkaShared.err = kafkaReady(addr)
			if kafkaShared.err == nil {
				announce(t, "harness: kafka external broker from SILT_TEST_KAFKA_ADDR ("+addr+")")
			}
			return
		}
		var stop func() error
		kafkaShared.b, stop, kafkaShared.err = startKafka(t)
		if stop != nil {
			onStop(stop)
		}
	})
	if kafkaShared.err != nil {
		unavailable(t, "kafka", kafkaShared.err)
	}
	return kafkaShared.b
}

// StartKafka starts a dedicated Apache Kafka broker with its own log
// directory, stopped when the test ends: for benchmarks, which must not
// share a broker with other tests.
func StartKafka(t testing.TB) KafkaBroker {
	t.Helper()
	b, stop, err := startKafka(t)
	if stop != nil {
		t.Cleanup(func() {
			if err := stop(); err != nil {
				t.Errorf("harness: stop kafka: %v", err)
			}
		})
	}
	if err != nil {
		unavailable(t, "kafka", err)
	}
	return b
}

// kafkaJVMOptions are kafka-server-start.sh's defaults (KAFKA_HEAP_OPTS
// and KAFKA_JVM_PERFORMANCE_OPTS), so the broker runs as Kafka ships.
var kafkaJVMOptions = []string{
	"-Xmx1G", "-Xms1G",
	"-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
	"-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true",
}

// startKafka formats a KRaft log directory and runs kafka.Kafka on free
// ports. stop is non-nil whenever something was left to clean up.
func startKafka(t testing.TB) (b KafkaBroker, stop func() error, err error) {
	env, err := javaFor()
	if err != nil {
		return KafkaBroker{}, nil, err
	}
	dir, err := os.MkdirTemp("", "silt-harness-kafka-")
	if err != nil {
		return KafkaBroker{}, nil, err
	}
	cleanupDir := func() error { return os.RemoveAll(dir) }
	logDir := filepath.Join(dir, "data")
	log4j := filepath.Join(dir, "log4j2.properties")
	if err := os.WriteFile(log4j, []byte(kafkaLog4j), 0o644); err != nil {
		return KafkaBroker{}, cleanupDir, err
	}
	clusterID := kafkaClusterID()
	p, port, err := startOnFreePort("kafka", kafkaStartLimit, func(port int) (*process, error) {
		controllerPort, err := freePort()
		if err != nil {
			return nil, err
		}
		props := filepath.Join(dir, "server.properties")
		if err := os.WriteFile(props, []byte(kafkaProperties(port, controllerPort, logDir)), 0o644); err != nil {
			return nil, err
		}
		if err := os.RemoveAll(logDir); err != nil {
			return nil, err
		}
		// Formatting is a JVM of its own; it exits in a few seconds.
		format := exec.Command(env.Java, "-cp", env.KafkaCP, "-Dlog4j2.configurationFile="+log4j,
			"kafka.tools.StorageTool", "format", "-t", clusterID, "-c", props)
		if out, err := format.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("format kafka storage: %w\n%s", err, out)
		}
		args := append(append([]string{}, kafkaJVMOptions...),
			"-Dlog4j2.configurationFile="+log4j, "-cp", env.KafkaCP, "kafka.Kafka", props)
		return startProcess("kafka", exec.Command(env.Java, args...), filepath.Join(dir, "server.log"), nil)
	}, func(port int) error {
		return kafkaReady("127.0.0.1:" + strconv.Itoa(port))
	})
	if err != nil {
		return KafkaBroker{}, cleanupDir, err
	}
	stop = func() error {
		err := p.stop(syscall.SIGTERM, 60*time.Second) // a controlled shutdown; slow on a loaded machine
		return errors.Join(err, cleanupDir())
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	announce(t, fmt.Sprintf("harness: kafka %s local process (KRaft) on %s", env.KafkaVersion, addr))
	return KafkaBroker{Addr: addr, Version: env.KafkaVersion, Pid: p.cmd.Process.Pid, LogDir: logDir}, stop, nil
}

// kafkaProperties configures one combined broker and controller for tests:
// replication factor 1 for the internal topics (one broker), and no
// initial rebalance delay, so groups form as fast as on silt.
func kafkaProperties(port, controllerPort int, logDir string) string {
	return strings.Join([]string{
		"process.roles=broker,controller",
		"node.id=1",
		fmt.Sprintf("controller.quorum.voters=1@127.0.0.1:%d", controllerPort),
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", port, controllerPort),
		fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d", port),
		"controller.listener.names=CONTROLLER",
		"inter.broker.listener.name=PLAINTEXT",
		"listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"log.dirs=" + logDir,
		"num.partitions=1",
		"offsets.topic.replication.factor=1",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"share.coordinator.state.topic.replication.factor=1",
		"share.coordinator.state.topic.min.isr=1",
		"group.initial.rebalance.delay.ms=0",
		"",
	}, "\n")
}

// kafkaLog4j sends Kafka's warnings and errors to its log file.
const kafkaLog4j = `status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
`

// kafkaClusterID is a random cluster id as Kafka formats them: 16 bytes,
// URL-safe base64 without padding, never starting with '-' (it would read
// as a command-line flag).
func kafkaClusterID() string {
	for {
		var b [16]byte
		_, _ = rand.Read(b[:])
		id := base64.RawURLEncoding.EncodeToString(b[:])
		if id[0] != '-' {
			return id
		}
	}
}

// kafkaReady checks that the broker answers Metadata naming itself.
func kafkaReady(addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RetryTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if len(resp.Brokers) == 0 {
		return errors.New("metadata lists no broker yet")
	}
	return nil
}
