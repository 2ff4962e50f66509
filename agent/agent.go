// Package agent is silt's Kafka protocol server: it accepts client
// connections, decodes requests with franz-go's kmsg, dispatches them to one
// handler per API key (the NN_name.go files, registered in apis.go), and
// wires the produce pipeline (agent/ingest), the read path (fetch) and the
// group coordinator (agent/group) to the metastore and the object store.
//
// An agent holds no state that matters: everything durable lives in the
// metastore and the bucket, so any agent can serve any partition.
package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltdata/silt/agent/group"
	"github.com/siltdata/silt/agent/ingest"
	"github.com/siltdata/silt/fetch"
	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/segment/objstore"
)

// Config is an agent's configuration. Every field has a default in
// DefaultConfig; Validate reports what is wrong before anything starts.
type Config struct {
	// ListenAddr is the Kafka listener, host:port.
	ListenAddr string
	// AdvertisedHost and AdvertisedPort are what Metadata tells clients to
	// connect to. Empty host: the listener's host, or 127.0.0.1 when the
	// listener is on 0.0.0.0/::. Zero port: the listener's port.
	AdvertisedHost string
	AdvertisedPort int32
	// AgentID identifies this agent process in the metastore; empty picks
	// a random one at start.
	AgentID string
	// Zone is this agent's availability zone (Kafka rack), optional.
	Zone string
	// ClusterID is reported in Metadata and DescribeCluster.
	ClusterID string

	// AutoCreateTopics creates a topic on Metadata or Produce for an
	// unknown name, as Kafka's auto.create.topics.enable does.
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics requests that pass -1.
	DefaultPartitions int32

	// MaxRequestBytes bounds one request frame (socket.request.max.bytes).
	// Larger frames close the connection, as Kafka does.
	MaxRequestBytes int32
	// LeaseTTL is how long the agent's registration lives without renewal;
	// it is renewed every LeaseTTL/3.
	LeaseTTL time.Duration

	Ingest ingest.Config
	Fetch  fetch.Config
	Group  group.Config
}

// DefaultConfig returns a configuration for one local agent.
func DefaultConfig() Config {
	return Config{
		ListenAddr:        "127.0.0.1:9092",
		ClusterID:         "silt",
		AutoCreateTopics:  true,
		DefaultPartitions: 1,
		MaxRequestBytes:   100 << 20,
		LeaseTTL:          15 * time.Second,
		Ingest:            ingest.DefaultConfig(),
		Fetch:             fetch.DefaultConfig(),
		Group:             group.DefaultConfig(),
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	var errs []error
	if c.ListenAddr == "" {
		errs = append(errs, errors.New("listen address is empty"))
	}
	if c.DefaultPartitions < 1 {
		errs = append(errs, fmt.Errorf("default partitions %d: must be at least 1", c.DefaultPartitions))
	}
	if c.MaxRequestBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("max request bytes %d: must be at least 1 MiB", c.MaxRequestBytes))
	}
	if c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("lease ttl %s: must be at least 1s", c.LeaseTTL))
	}
	return errors.Join(errs...)
}

// Agent is one silt broker.
type Agent struct {
	cfg    Config
	store  metastore.Store
	bucket objstore.Bucket
	logger *slog.Logger
	reg    prometheus.Registerer

	ingest *ingest.Pipeline
	reader *fetch.Reader
	groups *group.Coordinator
}
