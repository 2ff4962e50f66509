package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/siltdata/silt/agent"
	"github.com/siltdata/silt/agent/ingest"
	"github.com/siltdata/silt/agent/txn"
	"github.com/siltdata/silt/fetch"
	"github.com/siltdata/silt/janitor"
)

// errHelp is returned by parseOptions after it printed the help that -h asked for.
var errHelp = flag.ErrHelp

// options is one subcommand's configuration, as parsed from flags and the
// environment. Zero values of the tuning fields mean "the package default".
type options struct {
	mode string // "dev" or "agent"

	listen             string
	advertisedAddr     string
	advertisedAddrFile string
	adminListen        string
	agentID            string
	zone               string

	flushBytes       byteSize
	flushInterval    time.Duration
	earlyCut         bool
	earlyCutMin      time.Duration
	maxBufferedBytes byteSize
	maxQueuedBytes   byteSize
	cacheDir         string
	cacheBytes       byteSize

	autoCreateTopics  bool
	defaultPartitions int

	// Storage lifecycle (janitor/).
	defaultRetention      retention
	defaultRetentionBytes byteSize
	janitor               bool
	janitorInterval       time.Duration
	reclaimGrace          time.Duration
	orphanAge             time.Duration
	compaction            bool
	compactionAge         time.Duration
	compactionChunkBytes  byteSize
	compactionObjectBytes byteSize
	producerIDExpiration  time.Duration
	cleanerKeys           int

	// Transactions (agent/txn).
	txnMaxTimeout    time.Duration
	txnAbortInterval time.Duration
	txnIDExpiration  time.Duration
	txnMaxPartitions int

	logFormat string
	logLevel  string

	dataDir   string // dev
	metastore string // agent
	bucket    string // agent

	sec    securityOptions // listeners, TLS, SASL, ACLs, connection limits (security.go)
	groups groupOptions    // KIP-848 and share-group defaults (groups.go)

	// source says where each set flag's value came from ("--name" or
	// "SILT_NAME"), so errors name what the operator actually wrote.
	source map[string]string
}

// envName is the environment variable that sets flag name.
func envName(name string) string {
	return "SILT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// parseOptions parses a subcommand's flags, fills unset flags from the
// environment (lookup is os.LookupEnv outside tests) and validates the
// result. Help goes to out. Every error names the flag or variable at fault.
func parseOptions(mode string, args []string, lookup func(string) (string, bool), out io.Writer) (options, error) {
	o := options{mode: mode, source: map[string]string{}}
	fs := flag.NewFlagSet("silt "+mode, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by the caller

	// stringly marks flags whose empty value means something (an empty
	// --admin-listen disables the admin server), so an empty environment
	// variable is applied to them and ignored for the others.
	stringly := map[string]bool{}
	str := func(p *string, name, def, help string) {
		fs.StringVar(p, name, def, help)
		stringly[name] = true
	}

	listenDef, adminDef, logFormatDef := ":9092", ":9644", "json"
	if mode == "dev" {
		listenDef, adminDef, logFormatDef = "127.0.0.1:9092", "127.0.0.1:9644", "text"
	}
	str(&o.listen, "listen", listenDef, "Kafka listener `host:port`")
	str(&o.advertisedAddr, "advertised-addr", "", "`host:port` clients are told to connect to (default: the listener's, 127.0.0.1 for a wildcard host)")
	str(&o.advertisedAddrFile, "advertised-addr-file", "", "`file` holding host:port to advertise; waits up to 60s for it to appear (for platforms that learn the address after start)")
	str(&o.adminListen, "admin-listen", adminDef, "admin HTTP listener `host:port` (/metrics, /healthz, /readyz); empty disables")
	// One dev agent owns its data dir, so a fixed id lets a restart after
	// a crash take over its own lease at once instead of leaving a dead
	// broker in Metadata until the lease expires.
	agentIDDef := ""
	if mode == "dev" {
		agentIDDef = "dev"
	}
	str(&o.agentID, "agent-id", agentIDDef, "this agent's `id` in the metastore; a restarted agent with the same id replaces its old registration at once (agent default: random per start)")
	str(&o.zone, "zone", "", "availability `zone` (Kafka rack) of this agent")
	ingestDef, fetchDef := ingest.DefaultConfig(), fetch.DefaultConfig()
	o.flushBytes, o.maxBufferedBytes = byteSize(ingestDef.FlushBytes), byteSize(ingestDef.MaxBufferedBytes)
	o.cacheBytes = byteSize(fetchDef.CacheBytes)
	o.maxQueuedBytes = byteSize(agent.DefaultConfig().QueuedRequestBytes)
	fs.Var(&o.flushBytes, "flush-bytes", "cut a segment object once it holds this `size` of batches (e.g. 512KiB, 8MiB)")
	fs.DurationVar(&o.flushInterval, "flush-interval", ingestDef.FlushInterval, "cut a segment object this `duration` after its first byte, or after the previous cut under continuous traffic: the produce latency floor")
	fs.BoolVar(&o.earlyCut, "early-cut", ingestDef.EarlyCut, "cut a segment before --flush-interval when every producer connection has 5 produce requests waiting on it (an idempotent producer's limit): more throughput for few producers, smaller segments when every producer is stalled")
	fs.DurationVar(&o.earlyCutMin, "early-cut-min-interval", ingestDef.EarlyCutMinInterval, "least `duration` between a cut and an early cut (bounds the PUT rate early cuts can cause)")
	fs.Var(&o.maxBufferedBytes, "max-buffered-bytes", "produce data (`size`) buffered but not yet committed before producers are slowed down")
	fs.Var(&o.maxQueuedBytes, "max-queued-request-bytes", "request frames (`size`) read but not yet taken in before the agent stops reading produce data (queued.max.request.bytes; frames under 16KiB are not counted)")
	str(&o.cacheDir, "cache-dir", "", "`directory` of the read cache on disk, emptied at start (dev default: <data-dir>/cache; agent default: none, memory only)")
	fs.Var(&o.cacheBytes, "cache-bytes", "`size` bound of the on-disk read cache")
	fs.BoolVar(&o.autoCreateTopics, "auto-create-topics", true, "create unknown topics on Metadata and Produce, as auto.create.topics.enable")
	fs.IntVar(&o.defaultPartitions, "default-partitions", 1, "partition `count` of auto-created topics")
	jdef := janitor.DefaultConfig()
	o.defaultRetention = retention(jdef.Defaults.Retention)
	o.defaultRetentionBytes = byteSize(jdef.Defaults.RetentionBytes)
	o.compactionChunkBytes, o.compactionObjectBytes = byteSize(jdef.ChunkBytes), byteSize(jdef.ObjectBytes)
	fs.Var(&o.defaultRetention, "default-retention", "how long topics keep records unless their retention.ms says otherwise (Kafka's log.retention.hours); a `duration` such as 168h or 7d, or -1 to keep forever")
	fs.Var(&o.defaultRetentionBytes, "default-retention-bytes", "bytes a partition keeps unless its retention.bytes says otherwise (log.retention.bytes); a `size`, or -1 for no limit")
	fs.BoolVar(&o.janitor, "janitor", true, "take part in electing the agent that runs the storage lifecycle (retention, reclamation, compaction, garbage collection); one agent of the cluster runs it at a time")
	fs.DurationVar(&o.janitorInterval, "janitor-interval", jdef.Interval, "`duration` between two passes of the storage lifecycle")
	fs.DurationVar(&o.reclaimGrace, "reclaim-grace", jdef.Grace, "`duration` an object that no index row uses any more is kept before it is deleted (readers that looked it up just before can still read it)")
	fs.DurationVar(&o.orphanAge, "orphan-age", jdef.OrphanAge, "`duration` after which an object uploaded but never committed is garbage-collected")
	fs.BoolVar(&o.compaction, "compaction", true, "rewrite old data into per-partition objects, so replaying a partition reads few, large objects")
	fs.DurationVar(&o.compactionAge, "compaction-age", jdef.CompactAge, "`duration` data stays in the produce segments before it is compacted")
	fs.Var(&o.compactionChunkBytes, "compaction-chunk-bytes", "target `size` of a compacted chunk: one index row and one range GET of a replaying reader")
	fs.Var(&o.compactionObjectBytes, "compaction-object-bytes", "`size` bound of a compacted object")
	fs.IntVar(&o.cleanerKeys, "cleaner-keys", jdef.CleanerKeys, "keys log compaction maps at once (about 64 bytes of memory each); a partition with more is cleaned in several passes")
	fs.DurationVar(&o.producerIDExpiration, "producer-id-expiration", jdef.ProducerExpiration, "idempotent producers idle this `duration` lose their sequence state (Kafka's producer.id.expiration.ms)")
	tdef := txn.DefaultConfig()
	fs.DurationVar(&o.txnMaxTimeout, "transaction-max-timeout", tdef.MaxTimeout, "the longest transaction.timeout.ms a producer may ask for (Kafka's transaction.max.timeout.ms); an open transaction holds back read_committed consumers of its partitions for up to its timeout when its producer dies")
	fs.DurationVar(&o.txnAbortInterval, "transaction-abort-interval", tdef.AbortInterval, "how often each agent aborts the transactions past their timeout among those it coordinates (Kafka's transaction.abort.timed.out.transaction.cleanup.interval.ms)")
	fs.DurationVar(&o.txnIDExpiration, "transactional-id-expiration", tdef.IDExpiration, "transactional ids unused this `duration` are forgotten (Kafka's transactional.id.expiration.ms)")
	fs.IntVar(&o.txnMaxPartitions, "transaction-max-partitions", tdef.MaxPartitions, "partitions and groups one transaction may hold, and offsets it may stage (its end writes a marker into each partition in one metastore transaction)")
	o.sec.addSecurityFlags(fs, str)
	o.groups.addGroupFlags(fs, str)
	str(&o.logFormat, "log-format", logFormatDef, "log `format`: text or json")
	str(&o.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	if mode == "dev" {
		str(&o.dataDir, "data-dir", "./silt-data", "`directory` holding the SQLite metastore and the bucket")
	} else {
		str(&o.metastore, "metastore", "", "metastore: postgres://user:pass@host/db?... or a SQLite file path (`url`, required)")
		str(&o.bucket, "bucket", "", "bucket: s3://bucket/prefix?endpoint=...&region=... or file:///dir (`url`, required); S3 credentials come from the AWS environment")
	}

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printFlags(out, fs)
			return o, errHelp
		}
		return o, fmt.Errorf("%w (see 'silt help %s')", err, mode)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (see 'silt help %s')", fs.Arg(0), mode)
	}
	fs.Visit(func(f *flag.Flag) { o.source[f.Name] = "--" + f.Name })

	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if o.source[f.Name] != "" {
			return // the command line wins
		}
		v, ok := lookup(envName(f.Name))
		if !ok || (v == "" && !stringly[f.Name]) {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s (for --%s): invalid value %q: %w", envName(f.Name), f.Name, v, err))
			return
		}
		o.source[f.Name] = envName(f.Name)
	})
	if err := errors.Join(errs...); err != nil {
		return o, err
	}
	return o, o.validate()
}

// printFlags prints every flag with its environment variable and default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s [flags]\n\nFlags (environment variable in brackets; a flag wins over its variable):\n", fs.Name())
	fs.VisitAll(func(f *flag.Flag) {
		name, help := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s  [%s]\n    \t%s", line, envName(f.Name), strings.ReplaceAll(help, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// name is how an error refers to a flag: the flag, or the environment
// variable when that is where the value came from.
func (o options) name(flagName string) string {
	if src := o.source[flagName]; strings.HasPrefix(src, "SILT_") {
		return src + " (--" + flagName + ")"
	}
	return "--" + flagName
}

// validate checks everything that can be checked without touching the
// network or the disk, so a bad configuration fails before anything starts.
func (o options) validate() error {
	var errs []error
	bad := func(flagName, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", o.name(flagName), fmt.Sprintf(format, args...)))
	}
	if err := checkHostPort(o.listen, true); err != nil {
		bad("listen", "%v", err)
	}
	if o.advertisedAddr != "" {
		if err := checkHostPort(o.advertisedAddr, false); err != nil {
			bad("advertised-addr", "%v", err)
		}
		if o.advertisedAddrFile != "" {
			bad("advertised-addr-file", "cannot be used together with %s", o.name("advertised-addr"))
		}
	}
	if o.adminListen != "" {
		if err := checkHostPort(o.adminListen, true); err != nil {
			bad("admin-listen", "%v", err)
		}
	}
	if o.flushBytes <= 0 || o.flushBytes > maxInt32Size {
		bad("flush-bytes", "%s: must be between 1 byte and 2GiB", &o.flushBytes)
	}
	if o.flushInterval <= 0 {
		bad("flush-interval", "%s: must be positive", o.flushInterval)
	}
	if o.earlyCutMin < 0 {
		bad("early-cut-min-interval", "%s: must not be negative", o.earlyCutMin)
	}
	if o.maxBufferedBytes <= 0 || o.maxBufferedBytes > maxInt32Size*64 {
		bad("max-buffered-bytes", "%s: must be positive and at most 128GiB", &o.maxBufferedBytes)
	} else if o.flushBytes > 0 && o.maxBufferedBytes < o.flushBytes {
		bad("max-buffered-bytes", "%s is smaller than %s %s: a segment could never fill", &o.maxBufferedBytes, o.name("flush-bytes"), &o.flushBytes)
	}
	if o.maxQueuedBytes < 1<<20 || o.maxQueuedBytes > maxInt32Size*64 {
		bad("max-queued-request-bytes", "%s: must be between 1MiB and 128GiB", &o.maxQueuedBytes)
	}
	if o.cacheBytes <= 0 {
		bad("cache-bytes", "%s: must be positive", &o.cacheBytes)
	}
	if o.defaultPartitions < 1 || o.defaultPartitions > 1<<20 {
		bad("default-partitions", "%d: must be between 1 and %d", o.defaultPartitions, 1<<20)
	}
	if o.defaultRetentionBytes < -1 {
		bad("default-retention-bytes", "%s: must be -1 (no limit) or a size", &o.defaultRetentionBytes)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
		min  time.Duration
	}{{"janitor-interval", o.janitorInterval, time.Millisecond}, {"reclaim-grace", o.reclaimGrace, 0}, {"orphan-age", o.orphanAge, 0},
		{"compaction-age", o.compactionAge, 0}, {"producer-id-expiration", o.producerIDExpiration, 0},
		{"transaction-max-timeout", o.txnMaxTimeout, time.Millisecond}, {"transaction-abort-interval", o.txnAbortInterval, time.Millisecond},
		{"transactional-id-expiration", o.txnIDExpiration, time.Millisecond}} {
		if d.v < d.min {
			bad(d.flag, "%s: must be at least %s", d.v, d.min)
		}
	}
	if o.cleanerKeys < 1 {
		bad("cleaner-keys", "%d: must be at least 1", o.cleanerKeys)
	}
	if o.txnMaxTimeout > time.Duration(1<<31-1)*time.Millisecond {
		bad("transaction-max-timeout", "%s: must fit 2^31-1 ms", o.txnMaxTimeout)
	}
	if o.txnMaxPartitions < 1 || o.txnMaxPartitions > 1<<20 {
		bad("transaction-max-partitions", "%d: must be between 1 and %d", o.txnMaxPartitions, 1<<20)
	}
	if o.compactionChunkBytes < 1<<10 || o.compactionChunkBytes > 256<<20 {
		bad("compaction-chunk-bytes", "%s: must be between 1KiB and 256MiB", &o.compactionChunkBytes)
	}
	if o.compactionObjectBytes < o.compactionChunkBytes || o.compactionObjectBytes > 256<<20 {
		bad("compaction-object-bytes", "%s: must be at least %s and at most 256MiB", &o.compactionObjectBytes, o.name("compaction-chunk-bytes"))
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		bad("log-format", "%q: must be text or json", o.logFormat)
	}
	if _, err := parseLevel(o.logLevel); err != nil {
		bad("log-level", "%v", err)
	}
	errs = append(errs, o.validateSecurity()...)
	errs = append(errs, o.validateGroups()...)
	switch o.mode {
	case "dev":
		if o.dataDir == "" {
			bad("data-dir", "must not be empty")
		}
	case "agent":
		if o.metastore == "" {
			bad("metastore", "required (postgres://... or a SQLite file path)")
		} else if _, _, err := metastoreKind(o.metastore); err != nil {
			bad("metastore", "%v", err)
		}
		if o.bucket == "" {
			bad("bucket", "required (s3://bucket/prefix?endpoint=...&region=... or file:///dir)")
		} else if err := checkBucketURL(o.bucket); err != nil {
			bad("bucket", "%v", err)
		}
	}
	return errors.Join(errs...)
}

// checkHostPort accepts host:port with a numeric port; a listener may leave
// the host empty (all interfaces) and use port 0 (any free port).
func checkHostPort(addr string, listener bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q: port %q is not a number between 0 and 65535", addr, port)
	}
	if !listener && (host == "" || p == 0) {
		return fmt.Errorf("%q: clients need a host and a non-zero port", addr)
	}
	return nil
}

// metastoreKind tells a Postgres URL from a SQLite path. A sqlite:// or
// file: URL is accepted too, for symmetry with --bucket.
func metastoreKind(s string) (kind, target string, err error) {
	switch {
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		if _, err := url.Parse(s); err != nil {
			return "", "", fmt.Errorf("not a valid URL: %w", err)
		}
		return "postgres", s, nil
	case strings.HasPrefix(s, "sqlite://"):
		return "sqlite", strings.TrimPrefix(s, "sqlite://"), nil
	case strings.HasPrefix(s, "file://"):
		return "sqlite", strings.TrimPrefix(s, "file://"), nil
	case strings.Contains(s, "://"):
		return "", "", fmt.Errorf("%q: unsupported scheme (want postgres:// or a SQLite file path)", redactURL(s))
	default:
		return "sqlite", s, nil
	}
}

func checkBucketURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a valid URL: %w", err)
	}
	switch u.Scheme {
	case "s3":
		if u.Host == "" {
			return fmt.Errorf("%q: s3 URL needs a bucket name: s3://bucket/prefix", s)
		}
	case "file":
		if u.Path == "" && u.Opaque == "" {
			return fmt.Errorf("%q: file URL needs a directory: file:///dir", s)
		}
	default:
		return fmt.Errorf("%q: unsupported scheme (want s3:// or file://)", s)
	}
	return nil
}

// redactURL hides a password so configuration errors can be logged.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// maxInt32Size bounds sizes that end up in 32-bit protocol or buffer fields.
const maxInt32Size = 1<<31 - 1

// byteSize is a flag.Value for sizes: a plain number of bytes or a number
// with a unit (KiB, MiB, GiB, KB, MB, GB; K/M/G are binary).
type byteSize int64

func (b *byteSize) String() string {
	n := int64(*b)
	switch {
	case n == 0:
		return "0"
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return strconv.FormatInt(n, 10)
}

func (b *byteSize) Set(s string) error {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '-' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not a size (want e.g. 1048576, 64KiB, 8MiB, 1GiB)", s)
	}
	mult, ok := map[string]int64{
		"": 1, "b": 1, "B": 1,
		"k": 1 << 10, "K": 1 << 10, "KiB": 1 << 10, "KB": 1000, "kB": 1000,
		"m": 1 << 20, "M": 1 << 20, "MiB": 1 << 20, "MB": 1000 * 1000,
		"g": 1 << 30, "G": 1 << 30, "GiB": 1 << 30, "GB": 1000 * 1000 * 1000,
	}[unit]
	if !ok {
		return fmt.Errorf("%q: unknown unit %q (want KiB, MiB, GiB, KB, MB or GB)", s, unit)
	}
	if n > (1<<62)/mult || n < -(1<<62)/mult {
		return fmt.Errorf("%q is too large", s)
	}
	*b = byteSize(n * mult)
	return nil
}

// retention is a flag.Value for a retention period: a Go duration, a
// number of days ("7d"), or -1 (or "forever") to keep forever.
type retention time.Duration

func (r *retention) String() string {
	d := time.Duration(*r)
	switch {
	case d < 0:
		return "-1"
	case d > 0 && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func (r *retention) Set(s string) error {
	s = strings.TrimSpace(s)
	switch {
	case s == "-1" || s == "forever":
		*r = retention(-1)
		return nil
	case strings.HasSuffix(s, "d"):
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n < 0 || n > 100*365 {
			return fmt.Errorf("%q is not a number of days", s)
		}
		*r = retention(time.Duration(n) * 24 * time.Hour)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("%q is not a duration (want e.g. 168h, 7d, 30m, or -1 for forever)", s)
	}
	*r = retention(d)
	return nil
}
