// Package siltcontainer starts silt in a container for your tests, in the
// style of testcontainers-go's Kafka and Redpanda modules:
//
//	ctr, err := siltcontainer.Run(ctx, "ghcr.io/siltdata/silt:latest")
//	testcontainers.CleanupContainer(t, ctr)
//	if err != nil { t.Fatal(err) }
//	addr, err := ctr.BootstrapAddr(ctx) // "localhost:32781"
//	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
//
// The container runs `silt dev` (SQLite and a local bucket inside the
// container, one agent). Kafka clients must reach every broker at the
// address Metadata advertises, which for a container is the host's mapped
// port, known only after the container started. silt reads it from a file
// (--advertised-addr-file): Run starts silt with SILT_ADVERTISED_ADDR_FILE
// set, writes HOST:MAPPEDPORT into that file once the port is mapped, and
// returns when silt logs "silt ready:".
package siltcontainer

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

const (
	// KafkaPort is the container's Kafka listener.
	KafkaPort = "9092/tcp"
	// AdminPort is the container's admin listener (/metrics, /healthz,
	// /readyz, /debug/pprof/).
	AdminPort = "9644/tcp"

	// advertisedAddrFile is where Run writes the address clients use.
	// /tmp exists in the distroless image and is writable by anyone.
	advertisedAddrFile = "/tmp/silt-advertised-addr"
	// readyLine is what silt logs once it serves clients.
	readyLine = "silt ready:"
	// startupTimeout bounds the wait for readyLine: silt starts in well
	// under a second; the margin is for slow CI hosts and image pulls of
	// other containers competing for the engine.
	startupTimeout = 60 * time.Second
)

// Container is a running silt container.
type Container struct {
	testcontainers.Container
}

// Run starts silt from image (for example a tag built from this
// repository's Dockerfile) and waits until it serves clients. opts may
// change anything, e.g. testcontainers.WithEnv or the With* options here;
// they apply after the defaults.
//
// As with every testcontainers module, the returned container may be
// non-nil even when err is not: pass it to testcontainers.CleanupContainer
// before checking err.
func Run(ctx context.Context, image string, opts ...testcontainers.ContainerCustomizer) (*Container, error) {
	defaults := []testcontainers.ContainerCustomizer{
		testcontainers.WithExposedPorts(KafkaPort, AdminPort),
		testcontainers.WithCmd("dev",
			"--listen", "0.0.0.0:9092",
			"--admin-listen", "0.0.0.0:9644",
			"--data-dir", "/data"),
		// Through the environment rather than a flag, so a WithCmd
		// override keeps it.
		testcontainers.WithEnv(map[string]string{"SILT_ADVERTISED_ADDR_FILE": advertisedAddrFile}),
		testcontainers.WithWaitStrategy(
			wait.ForLog(readyLine).WithStartupTimeout(startupTimeout),
		),
	}
	// The hook goes after the caller's options so that their
	// WithLifecycleHooks (which replaces the list) cannot drop it: without
	// it silt waits for the file forever. Hooks given here run before
	// testcontainers' own PostStarts, which hold the wait strategy.
	essential := testcontainers.WithAdditionalLifecycleHooks(testcontainers.ContainerLifecycleHooks{
		PostStarts: []testcontainers.ContainerHook{writeAdvertisedAddr},
	})
	all := append(append(defaults, opts...), essential)
	ctr, err := testcontainers.Run(ctx, image, all...)
	var c *Container
	if ctr != nil {
		c = &Container{Container: ctr}
	}
	if err != nil {
		return c, fmt.Errorf("run silt: %w", err)
	}
	return c, nil
}

// writeAdvertisedAddr tells silt the address clients on this host reach
// it at. The trailing newline marks the content complete, so silt never
// acts on a half-written file.
func writeAdvertisedAddr(ctx context.Context, ctr testcontainers.Container) error {
	addr, err := hostAddr(ctx, ctr, KafkaPort)
	if err != nil {
		return err
	}
	if err := ctr.CopyToContainer(ctx, []byte(addr+"\n"), advertisedAddrFile, 0o644); err != nil {
		return fmt.Errorf("write advertised address: %w", err)
	}
	return nil
}

// hostAddr returns host:port at which the host reaches the container's port.
func hostAddr(ctx context.Context, ctr testcontainers.Container, port string) (string, error) {
	host, err := ctr.Host(ctx)
	if err != nil {
		return "", fmt.Errorf("container host: %w", err)
	}
	mapped, err := ctr.MappedPort(ctx, port)
	if err != nil {
		return "", fmt.Errorf("mapped port %s: %w", port, err)
	}
	return net.JoinHostPort(host, strconv.Itoa(int(mapped.Num()))), nil
}

// BootstrapAddr returns the host:port to give Kafka clients as their seed
// broker.
func (c *Container) BootstrapAddr(ctx context.Context) (string, error) {
	return hostAddr(ctx, c.Container, KafkaPort)
}

// AdminURL returns the admin endpoint's base URL, e.g.
// http://localhost:32782 (append /metrics, /readyz, ...).
func (c *Container) AdminURL(ctx context.Context) (string, error) {
	addr, err := hostAddr(ctx, c.Container, AdminPort)
	if err != nil {
		return "", err
	}
	return "http://" + addr, nil
}

// WithAutoCreateTopics sets whether producing to or asking Metadata for an
// unknown topic creates it (Kafka's auto.create.topics.enable).
func WithAutoCreateTopics(enabled bool) testcontainers.CustomizeRequestOption {
	return testcontainers.WithEnv(map[string]string{"SILT_AUTO_CREATE_TOPICS": strconv.FormatBool(enabled)})
}

// WithDefaultPartitions sets the partition count of auto-created topics.
func WithDefaultPartitions(n int) testcontainers.CustomizeRequestOption {
	return testcontainers.WithEnv(map[string]string{"SILT_DEFAULT_PARTITIONS": strconv.Itoa(n)})
}

// WithFlushInterval sets how long the agent buffers produced records before
// it uploads a segment: lower means faster acknowledgements and more
// objects. Tests that produce one record at a time may want it low.
func WithFlushInterval(d time.Duration) testcontainers.CustomizeRequestOption {
	return testcontainers.WithEnv(map[string]string{"SILT_FLUSH_INTERVAL": d.String()})
}

// WithLogLevel sets silt's log level (debug, info, warn, error).
func WithLogLevel(level string) testcontainers.CustomizeRequestOption {
	return testcontainers.WithEnv(map[string]string{"SILT_LOG_LEVEL": level})
}
