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
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/siltdata/silt/agent/group"
	"github.com/siltdata/silt/agent/ingest"
	"github.com/siltdata/silt/agent/share"
	"github.com/siltdata/silt/agent/txn"
	"github.com/siltdata/silt/auth/acl"
	"github.com/siltdata/silt/auth/sasl"
	"github.com/siltdata/silt/auth/tlsconf"
	"github.com/siltdata/silt/fetch"
	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/topicconfig"
)

// Config is an agent's configuration. Every field has a default in
// DefaultConfig; Validate reports what is wrong before anything starts.
type Config struct {
	// ListenAddr is the Kafka listener, host:port, when Listeners is
	// empty (one PLAINTEXT listener).
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
	// TopicDefaults are the defaults of topic configs a topic does not
	// set (log.retention.ms and log.retention.bytes in Kafka's broker
	// config), as DescribeConfigs reports them. The storage janitor must
	// be given the same.
	TopicDefaults topicconfig.Defaults

	// MaxRequestBytes bounds one request frame (socket.request.max.bytes).
	// Larger frames close the connection, as Kafka does.
	MaxRequestBytes int32
	// QueuedRequestBytes bounds the request frames read from clients and
	// not yet handled (queued.max.request.bytes): at the bound, the agent
	// stops reading produce-sized frames until handlers finish (a produce
	// once its batches are in the segment buffer, which MaxBufferedBytes
	// bounds), so producers sending faster than the agent commits are
	// slowed by TCP instead of growing its memory. Frames under 16 KiB
	// (heartbeats, metadata, fetch requests) are not counted, so control
	// traffic never waits behind produce data. A larger frame than the
	// bound is read alone.
	QueuedRequestBytes int64
	// LeaseTTL is how long the agent's registration lives without renewal;
	// it is renewed every LeaseTTL/3. It is how long a crashed agent is
	// still named as a leader and coordinator (its clients stall, then
	// move), against how long a metastore hiccup may last before a live
	// agent drops out. The default matches Kafka's broker session timeout.
	LeaseTTL time.Duration
	// LeaveGrace is how long a stopping agent keeps its connections open
	// after deregistering, when other agents are live: it answers produce
	// with NOT_LEADER_OR_FOLLOWER and group requests with NOT_COORDINATOR
	// and serves fetches, while its clients refresh metadata and move to
	// the others. Longer: fewer clients see the connection close; shorter:
	// a faster exit.
	LeaveGrace time.Duration

	// Listeners are the Kafka listeners, each with its security protocol
	// and advertised address. Empty: one PLAINTEXT listener on
	// ListenAddr advertising AdvertisedHost and AdvertisedPort.
	Listeners []Listener
	// TLS is the certificate (and client-certificate policy) of the SSL
	// and SASL_SSL listeners; its files are reloaded when they change.
	TLS tlsconf.Config
	// SASL selects the mechanisms of the SASL listeners.
	SASL sasl.Config
	// Authorize turns on ACL checks (Kafka's authorizer.class.name).
	// Without it every client may do everything, and the ACL APIs
	// answer SECURITY_DISABLED.
	Authorize bool
	// ACL configures the authorizer: super users and whether a resource
	// without ACLs is open.
	ACL acl.Config
	// ReauthAfter bounds a SASL session (connections.max.reauth.ms,
	// KIP-368): clients re-authenticate on the same connection before it
	// ends, or the connection is closed at their next request. Zero:
	// sessions last as long as the connection (an OAUTHBEARER session
	// still ends with its token).
	ReauthAfter time.Duration
	// FailedAuthDelay delays the answer to a failed authentication
	// (connection.failed.authentication.delay.ms), so a client guessing
	// passwords cannot retry at full speed.
	FailedAuthDelay time.Duration
	// MaxUnauthenticatedBytes bounds a request frame before the client
	// authenticated (sasl.server.max.receive.size): a stranger cannot
	// make the agent allocate more.
	MaxUnauthenticatedBytes int32
	// IdleTimeout closes a connection with no request for this long and
	// nothing in flight (connections.max.idle.ms); zero never does.
	IdleTimeout time.Duration
	// MaxConnections bounds the open client connections of the agent
	// (max.connections) and MaxConnectionsPerIP those from one client IP
	// (max.connections.per.ip); zero is unbounded. A connection over a
	// bound is closed at once.
	MaxConnections      int
	MaxConnectionsPerIP int

	Ingest ingest.Config
	Fetch  fetch.Config
	Group  group.Config
	Txn    txn.Config
	// Share configures share groups; its Groups defaults are taken from
	// Group.Groups (one set of group-config defaults for both).
	Share share.Config
}

// MemoryBudget is the memory the configuration lets an agent use: the
// read path's decoded-chunk tiers, the produce buffer (batches, the
// encoded segment and compression scratch: three times its bound), the
// queued request frames, and a fixed allowance for everything else
// (index caches, connections, the shared large-answer buffers of at most
// 64 MiB, the runtime). silt sets it as the Go
// runtime's soft memory limit unless GOMEMLIMIT is set, so the garbage
// collector keeps the heap near it under load instead of letting it grow
// to twice what is live.
func (c Config) MemoryBudget() int64 {
	return c.Fetch.MemoryBytes + c.Fetch.PrefetchBytes + 3*int64(c.Ingest.MaxBufferedBytes) +
		c.QueuedRequestBytes + 256<<20
}

// DefaultConfig returns a configuration for one local agent.
func DefaultConfig() Config {
	return Config{
		ListenAddr:        "127.0.0.1:9092",
		ClusterID:         "silt",
		AutoCreateTopics:  true,
		DefaultPartitions: 1,
		TopicDefaults:     topicconfig.KafkaDefaults(),
		MaxRequestBytes:   100 << 20,
		// Kafka's sasl.server.max.receive.size.
		MaxUnauthenticatedBytes: 512 << 10,
		QueuedRequestBytes:      64 << 20,
		LeaseTTL:                9 * time.Second,
		LeaveGrace:              2 * time.Second,
		SASL:                    sasl.DefaultConfig(),
		ACL:                     acl.DefaultConfig(),
		FailedAuthDelay:         100 * time.Millisecond,
		IdleTimeout:             10 * time.Minute,
		Ingest:                  ingest.DefaultConfig(),
		Fetch:                   fetch.DefaultConfig(),
		Group:                   group.DefaultConfig(),
		Txn:                     txn.DefaultConfig(),
		Share:                   share.DefaultConfig(),
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	var errs []error
	if c.ListenAddr == "" && len(c.Listeners) == 0 {
		errs = append(errs, errors.New("listen address is empty"))
	} else if err := c.validateListeners(); err != nil {
		errs = append(errs, err)
	}
	if c.Authorize {
		if err := c.ACL.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("acl: %w", err))
		}
	}
	if c.MaxUnauthenticatedBytes < 1<<10 || c.MaxUnauthenticatedBytes > c.MaxRequestBytes {
		errs = append(errs, fmt.Errorf("max unauthenticated bytes %d: must be between 1 KiB and the max request bytes", c.MaxUnauthenticatedBytes))
	}
	if c.ReauthAfter < 0 || c.FailedAuthDelay < 0 || c.IdleTimeout < 0 {
		errs = append(errs, errors.New("reauth interval, failed authentication delay and idle timeout must not be negative"))
	}
	if c.MaxConnections < 0 || c.MaxConnectionsPerIP < 0 {
		errs = append(errs, errors.New("connection limits must not be negative"))
	}
	if c.DefaultPartitions < 1 {
		errs = append(errs, fmt.Errorf("default partitions %d: must be at least 1", c.DefaultPartitions))
	}
	if c.MaxRequestBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("max request bytes %d: must be at least 1 MiB", c.MaxRequestBytes))
	}
	if c.QueuedRequestBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("queued request bytes %d: must be at least 1 MiB", c.QueuedRequestBytes))
	}
	if c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("lease ttl %s: must be at least 1s", c.LeaseTTL))
	}
	if c.LeaveGrace < 0 {
		errs = append(errs, fmt.Errorf("leave grace %s: must not be negative", c.LeaveGrace))
	}
	if err := c.Group.Validate(); err != nil {
		errs = append(errs, err)
	}
	sc := c.Share
	sc.Groups = c.Group.Groups
	if err := sc.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Agent is one silt broker.
//
// Lock order: a.mu before conn.mu and membership.mu; none is held while
// calling the store.
type Agent struct {
	cfg    Config
	store  metastore.Backend
	bucket objstore.Bucket
	logger *slog.Logger
	reg    prometheus.Registerer

	ingest *ingest.Pipeline
	reader *fetch.Reader
	groups *group.Coordinator
	txns   *txn.Coordinator
	// txnAdded caches the partitions a Produce v12+ added to transactions
	// implicitly (see produceImplicitAdd).
	txnAdded *txnAddCache
	// shares coordinates share groups; shareParts is the share-fetch
	// path and shareSessions its sessions (agent/share).
	shares        *share.Coordinator
	shareParts    *share.Partitions
	shareSessions *share.Sessions

	metrics *serverMetrics
	topics  *topicCache

	// Security (see auth/): tlsFiles serves the TLS listeners, sasl the
	// SASL ones (nil without); authz decides requests (nil when
	// Config.Authorize is off); creds holds SCRAM credentials (nil when
	// the store has none).
	tlsFiles *tlsconf.Files
	sasl     *sasl.Server
	authz    *acl.Authorizer
	creds    metastore.Credentials

	members *membership
	// queued holds the bytes of request frames read and not yet
	// released (Config.QueuedRequestBytes).
	queued *semaphore.Weighted
	// onQueueWait, when set (tests), is called when a reader waits for
	// room in queued.
	onQueueWait func()

	// ctx is the parent of every connection and request context; cancel
	// ends them on Shutdown.
	ctx    context.Context
	cancel context.CancelFunc

	// handlers counts running request handlers. Only readers (counted in
	// loops) add to it, so Shutdown waits for it after loops.
	handlers sync.WaitGroup
	// loops counts the accept loop and every connection's reader and
	// writer goroutines.
	loops sync.WaitGroup
	// watching is the commit watcher goroutine (when the store is a
	// metastore.CommitWatcher): it runs from Start until ctx ends.
	watching sync.WaitGroup

	// mu guards lns, conns, perIP, started, stopping and closing.
	mu    sync.Mutex
	lns   []*listener
	conns map[*conn]struct{}
	// perIP counts open connections by client IP
	// (Config.MaxConnectionsPerIP).
	perIP   map[string]int
	started bool
	// stopping is set when Shutdown begins (Start must not register any
	// more); closing once connections are no longer accepted.
	stopping bool
	closing  bool
	shutdown sync.Once
	downErr  error
}

// New builds an agent from its configuration and dependencies. It starts
// the produce pipeline, the read path and the group coordinator, but does
// not listen until Start.
func New(cfg Config, store metastore.Backend, bucket objstore.Bucket, logger *slog.Logger, reg prometheus.Registerer) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if cfg.AgentID == "" {
		cfg.AgentID = uuid.NewString()
	}
	a := &Agent{
		cfg:    cfg,
		store:  store,
		bucket: bucket,
		logger: logger,
		reg:    reg,
		conns:  make(map[*conn]struct{}),
		perIP:  make(map[string]int),
		queued: semaphore.NewWeighted(cfg.QueuedRequestBytes),
	}
	a.creds, _ = store.(metastore.Credentials)
	a.ctx, a.cancel = context.WithCancel(context.Background())
	var err error
	if a.metrics, err = newServerMetrics(reg); err != nil {
		return nil, err
	}
	a.topics = newTopicCache(store, topicCacheTTL)
	a.members = newMembership(a)
	if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "silt_agents_live",
		Help: "Agents holding a live lease in this agent's cached view (leaders and coordinators are picked among them).",
	}, a.members.liveCount)); err != nil {
		return nil, fmt.Errorf("register silt_agents_live: %w", err)
	}

	if err := a.newSecurity(); err != nil {
		return nil, err
	}
	if a.reader, err = fetch.New(cfg.Fetch, store, bucket, logger, reg); err != nil {
		a.closeSecurity()
		return nil, fmt.Errorf("fetch: %w", err)
	}
	reader := a.reader
	hooks := ingest.Hooks{Uploaded: reader.Seed, Committed: reader.Committed}
	if a.ingest, err = ingest.New(cfg.Ingest, store, bucket, logger, reg, hooks); err != nil {
		a.closeSecurity()
		_ = a.reader.Close()
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if a.groups, err = group.New(cfg.Group, store, groupOwnership{a}, logger, reg); err != nil {
		a.closeSecurity()
		_ = a.ingest.Close(context.Background())
		_ = a.reader.Close()
		return nil, fmt.Errorf("group: %w", err)
	}
	if a.txns, err = txn.New(cfg.Txn, store, txnOwnership{a}, reader.Notify, logger, reg); err != nil {
		a.closeSecurity()
		_ = a.groups.Close()
		_ = a.ingest.Close(context.Background())
		_ = a.reader.Close()
		return nil, fmt.Errorf("transactions: %w", err)
	}
	a.txnAdded = newTxnAddCache()
	shareCfg := cfg.Share
	shareCfg.Groups = cfg.Group.Groups
	a.shareParts = share.NewPartitions(shareCfg, store, logger)
	a.shareSessions = share.NewSessions()
	if a.shares, err = share.New(shareCfg, store, groupOwnership{a}, a.shareParts, logger, reg); err != nil {
		a.closeSecurity()
		a.txns.Close()
		_ = a.groups.Close()
		_ = a.ingest.Close(context.Background())
		_ = a.reader.Close()
		return nil, fmt.Errorf("share: %w", err)
	}
	return a, nil
}

// Start listens on cfg.ListenAddr, registers the agent in the metastore and
// serves connections in the background. It returns once the listener is
// bound and the agent is registered.
func (a *Agent) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.started || a.stopping {
		a.mu.Unlock()
		return errors.New("agent: already started or shut down")
	}
	a.started = true
	a.mu.Unlock()

	lns, err := a.listen(ctx)
	if err != nil {
		return err
	}
	closeAll := func() {
		for _, l := range lns {
			_ = l.ln.Close()
		}
	}
	if a.authz != nil {
		// Before serving: until the ACLs are loaded every request
		// would be denied.
		if err := a.authz.Load(ctx); err != nil {
			closeAll()
			return err
		}
	}
	if err := a.members.register(ctx, lns); err != nil {
		closeAll()
		return err
	}
	a.mu.Lock()
	if a.stopping { // Shutdown raced with Start
		a.mu.Unlock()
		closeAll()
		_ = a.members.deregister(ctx)
		return errors.New("agent: shut down during start")
	}
	// Under mu, so that Shutdown either sees none of this or all of it.
	a.lns = lns
	a.members.start()
	a.watchCommits()
	a.txns.Start()
	if a.authz != nil {
		a.watching.Go(func() { a.authz.Run(a.ctx) })
	}
	for _, l := range lns {
		a.loops.Add(1)
		go a.acceptLoop(l)
	}
	a.mu.Unlock()

	for _, l := range lns {
		ep, _ := a.self().Endpoint(l.cfg.Name)
		a.logger.Info("agent listening", "listener", l.cfg.Name, "protocol", l.cfg.Protocol,
			"addr", l.ln.Addr().String(), "node_id", a.NodeID(), "advertised", hostPort(ep.Host, ep.Port))
	}
	return nil
}

// listen binds every listener; on an error none stays bound.
func (a *Agent) listen(ctx context.Context) ([]*listener, error) {
	var (
		lc  net.ListenConfig
		out []*listener
	)
	for _, cfg := range a.cfg.listeners() {
		ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
		if err != nil {
			for _, l := range out {
				_ = l.ln.Close()
			}
			return nil, fmt.Errorf("listen %s (%s): %w", cfg.Addr, cfg.Name, err)
		}
		l := &listener{cfg: cfg, ln: ln}
		if cfg.TLS() {
			l.tls = a.tlsFiles.ServerConfig()
		}
		out = append(out, l)
	}
	return out, nil
}

// watchCommits wakes this agent's waiting fetches on commits made by the
// other agents, when the store can tell (Postgres LISTEN/NOTIFY); a
// commit of this agent's own wakes them in process (see New). It runs
// until a.ctx ends (Shutdown).
func (a *Agent) watchCommits() {
	w, ok := a.store.(metastore.CommitWatcher)
	if !ok {
		return
	}
	a.watching.Go(func() {
		err := w.WatchCommits(a.ctx, a.reader.Notify)
		if err != nil && a.ctx.Err() == nil {
			a.logger.Error("commit watcher stopped", "err", err)
		}
	})
}

// Addr is the first listener's bound address ("" before Start), useful
// with port 0.
func (a *Agent) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.lns) == 0 {
		return ""
	}
	return a.lns[0].ln.Addr().String()
}

// ListenerAddr is the named listener's bound address ("" when unknown or
// before Start).
func (a *Agent) ListenerAddr(name string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range a.lns {
		if l.cfg.Name == name {
			return l.ln.Addr().String()
		}
	}
	return ""
}

// ID is the agent's id in the metastore (Config.AgentID, or the random
// one New picked).
func (a *Agent) ID() string { return a.cfg.AgentID }

// NodeID is the broker id the metastore assigned at Start (-1 before).
func (a *Agent) NodeID() int32 { return a.members.nodeID() }

// Shutdown stops the agent, moving its clients to the other agents
// without errors reaching applications: it first deregisters and stops
// naming itself in Metadata and FindCoordinator (group requests now
// answer NOT_COORDINATOR), flushes the produce pipeline (answering
// buffered produce requests; later ones answer NOT_LEADER_OR_FOLLOWER),
// and when other agents are live keeps serving for LeaveGrace while
// clients move. Then it stops accepting connections and reading
// requests, lets running handlers finish, closes the connections and
// stops every goroutine. A context deadline bounds the wait; remaining
// work is then cancelled. Shutdown is idempotent and safe to call without
// Start.
func (a *Agent) Shutdown(ctx context.Context) error {
	a.shutdown.Do(func() { a.downErr = a.doShutdown(ctx) })
	return a.downErr
}

func (a *Agent) doShutdown(ctx context.Context) error {
	var errs []error
	a.mu.Lock()
	a.stopping = true
	lns := a.lns
	a.mu.Unlock()

	// 1. Leave the cluster: the other agents stop naming this one (at
	// their next refresh of the live list), and this one names only them.
	others, err := a.members.leave(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	// 2. Flush what produce requests have buffered and answer them;
	// produce requests from now on answer NOT_LEADER_OR_FOLLOWER, which
	// sends their clients to refresh metadata, now without this agent.
	if err := a.ingest.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("close ingest: %w", err))
	}
	// 3. Give the clients time to move before closing their connections.
	if others && len(lns) > 0 && a.cfg.LeaveGrace > 0 {
		a.logger.Info("left the cluster; serving while clients move", "grace", a.cfg.LeaveGrace)
		t := time.NewTimer(a.cfg.LeaveGrace)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	// 4. No new connections, no new requests on existing ones.
	a.mu.Lock()
	a.closing = true
	conns := make([]*conn, 0, len(a.conns))
	for c := range a.conns {
		conns = append(conns, c)
	}
	a.mu.Unlock()
	for _, l := range lns {
		_ = l.ln.Close()
	}
	for _, c := range conns {
		c.stopReading()
	}
	// 5. Handlers still running (fetch long polls, admin calls) see their
	// context end and answer with what they have.
	a.cancel()
	// 6. Writers flush the answers, then the connections close. Each
	// writer waits for its connection's handlers, so once the loops are
	// done no handler can start any more.
	for _, c := range conns {
		c.finish(ctx)
	}
	a.loops.Wait()
	a.handlers.Wait()
	a.watching.Wait()
	a.txns.Close()
	if err := a.groups.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close groups: %w", err))
	}
	if err := a.shares.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close share groups: %w", err))
	}
	if err := a.reader.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close fetch: %w", err))
	}
	a.closeSecurity()
	return errors.Join(errs...)
}
