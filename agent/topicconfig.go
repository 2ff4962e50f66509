package agent

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicConfig is a topic's effective settings, as the data paths use them.
type topicConfig struct {
	// maxMessageBytes bounds one record batch (max.message.bytes).
	maxMessageBytes int32
	// logAppendTime: message.timestamp.type=LogAppendTime, the agent
	// stamps batches with the append time.
	logAppendTime bool
	// retentionMs and retentionBytes are retention.ms / retention.bytes;
	// -1 keeps forever.
	retentionMs    int64
	retentionBytes int64
	// cleanupPolicy is cleanup.policy as set: "delete", "compact",
	// "compact,delete" or "delete,compact". silt does not compact; see
	// topicConfigDefs.
	cleanupPolicy string
	// compact is whether cleanup.policy includes compact (in any order),
	// which makes Kafka require a key on every record.
	compact bool
}

// parseTopicConfig resolves a topic's explicitly set configs (validated on
// the way in) against the defaults. A value that does not parse falls back
// to the default rather than failing the data path.
func parseTopicConfig(configs map[string]string) topicConfig {
	value := func(name string) string {
		if v, ok := configs[name]; ok {
			return v
		}
		return topicConfigDef(name).def
	}
	long := func(name string) int64 {
		v, err := strconv.ParseInt(value(name), 10, 64)
		if err != nil {
			v, _ = strconv.ParseInt(topicConfigDef(name).def, 10, 64)
		}
		return v
	}
	return topicConfig{
		maxMessageBytes: int32(min(max(long("max.message.bytes"), 0), math.MaxInt32)),
		logAppendTime:   value("message.timestamp.type") == "LogAppendTime",
		retentionMs:     long("retention.ms"),
		retentionBytes:  long("retention.bytes"),
		cleanupPolicy:   value("cleanup.policy"),
		compact:         slices.Contains(splitValues(value("cleanup.policy")), "compact"),
	}
}

// configDef is one known config: its type, default, documentation, the
// broker config that supplies its default (Kafka's synonym), and its
// validation.
type configDef struct {
	name     string
	typ      kmsg.ConfigType
	def      string
	synonym  string // broker config name of the default
	doc      string
	check    func(v string) error // nil: type check only
	honoured bool                 // false: stored and described, not acted on
}

const maxLong = "9223372036854775807"

// topicConfigDefs lists every topic config silt accepts, sorted by name.
// Kafka rejects unknown topic configs with INVALID_CONFIG; so does silt.
// Configs about replicas, local log segments and flushing mean nothing for
// a stateless agent over object storage: they are accepted, validated,
// stored and described (tools and frameworks set them), and have no
// effect (honoured=false).
var topicConfigDefs = []configDef{
	{name: "cleanup.policy", typ: kmsg.ConfigTypeList, def: "delete", synonym: "log.cleanup.policy", honoured: true,
		doc:   "delete: old segments are removed by retention. compact is accepted and stored, but silt does not compact: records are removed by retention only.",
		check: checkCleanupPolicy},
	{name: "compression.type", typ: kmsg.ConfigTypeString, def: "producer", synonym: "compression.type",
		doc:   "silt keeps batches compressed as the producer sent them (producer); other values are accepted and not applied.",
		check: oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")},
	{name: "delete.retention.ms", typ: kmsg.ConfigTypeLong, def: "86400000", synonym: "log.cleaner.delete.retention.ms", check: atLeast(0)},
	{name: "file.delete.delay.ms", typ: kmsg.ConfigTypeLong, def: "60000", synonym: "log.segment.delete.delay.ms", check: atLeast(0)},
	{name: "flush.messages", typ: kmsg.ConfigTypeLong, def: maxLong, synonym: "log.flush.interval.messages", check: atLeast(1)},
	{name: "flush.ms", typ: kmsg.ConfigTypeLong, def: maxLong, synonym: "log.flush.interval.ms", check: atLeast(0)},
	{name: "index.interval.bytes", typ: kmsg.ConfigTypeInt, def: "4096", synonym: "log.index.interval.bytes", check: atLeast(0)},
	{name: "local.retention.bytes", typ: kmsg.ConfigTypeLong, def: "-2", synonym: "log.local.retention.bytes", check: atLeast(-2)},
	{name: "local.retention.ms", typ: kmsg.ConfigTypeLong, def: "-2", synonym: "log.local.retention.ms", check: atLeast(-2)},
	{name: "max.compaction.lag.ms", typ: kmsg.ConfigTypeLong, def: maxLong, synonym: "log.cleaner.max.compaction.lag.ms", check: atLeast(1)},
	{name: "max.message.bytes", typ: kmsg.ConfigTypeInt, def: "1048588", synonym: "message.max.bytes", honoured: true,
		doc: "The largest record batch size allowed.", check: atLeast(0)},
	{name: "message.downconversion.enable", typ: kmsg.ConfigTypeBoolean, def: "true", synonym: "log.message.downconversion.enable"},
	{name: "message.timestamp.after.max.ms", typ: kmsg.ConfigTypeLong, def: maxLong, synonym: "log.message.timestamp.after.max.ms", check: atLeast(0)},
	{name: "message.timestamp.before.max.ms", typ: kmsg.ConfigTypeLong, def: maxLong, synonym: "log.message.timestamp.before.max.ms", check: atLeast(0)},
	{name: "message.timestamp.difference.max.ms", typ: kmsg.ConfigTypeLong, def: maxLong, synonym: "log.message.timestamp.difference.max.ms", check: atLeast(0)},
	{name: "message.timestamp.type", typ: kmsg.ConfigTypeString, def: "CreateTime", synonym: "log.message.timestamp.type", honoured: true,
		doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the time they are appended.", check: oneOf("CreateTime", "LogAppendTime")},
	{name: "min.cleanable.dirty.ratio", typ: kmsg.ConfigTypeDouble, def: "0.5", synonym: "log.cleaner.min.cleanable.ratio", check: between01},
	{name: "min.compaction.lag.ms", typ: kmsg.ConfigTypeLong, def: "0", synonym: "log.cleaner.min.compaction.lag.ms", check: atLeast(0)},
	{name: "min.insync.replicas", typ: kmsg.ConfigTypeInt, def: "1", synonym: "min.insync.replicas",
		doc: "Accepted for compatibility; every acknowledged write is durable in object storage.", check: atLeast(1)},
	{name: "preallocate", typ: kmsg.ConfigTypeBoolean, def: "false", synonym: "log.preallocate"},
	{name: "remote.storage.enable", typ: kmsg.ConfigTypeBoolean, def: "false", synonym: "remote.log.storage.system.enable"},
	{name: "retention.bytes", typ: kmsg.ConfigTypeLong, def: "-1", synonym: "log.retention.bytes", honoured: true,
		doc: "The most bytes a partition keeps before old data is deleted; -1 for no limit.", check: atLeast(-1)},
	{name: "retention.ms", typ: kmsg.ConfigTypeLong, def: "604800000", synonym: "log.retention.ms", honoured: true,
		doc: "How long records are kept before they are deleted; -1 for no limit.", check: atLeast(-1)},
	{name: "segment.bytes", typ: kmsg.ConfigTypeInt, def: "1073741824", synonym: "log.segment.bytes", check: atLeast(14)},
	{name: "segment.index.bytes", typ: kmsg.ConfigTypeInt, def: "10485760", synonym: "log.index.size.max.bytes", check: atLeast(4)},
	{name: "segment.jitter.ms", typ: kmsg.ConfigTypeLong, def: "0", synonym: "log.roll.jitter.ms", check: atLeast(0)},
	{name: "segment.ms", typ: kmsg.ConfigTypeLong, def: "604800000", synonym: "log.roll.ms", check: atLeast(1)},
	{name: "unclean.leader.election.enable", typ: kmsg.ConfigTypeBoolean, def: "false", synonym: "unclean.leader.election.enable"},
}

// topicConfigDef returns the definition of a known config, or a zero
// configDef for an unknown one.
func topicConfigDef(name string) configDef {
	i, ok := slices.BinarySearchFunc(topicConfigDefs, name, func(d configDef, n string) int { return strings.Compare(d.name, n) })
	if !ok {
		return configDef{}
	}
	return topicConfigDefs[i]
}

// validateTopicConfig checks one config; errors wrap kerr.InvalidConfig
// with Kafka's wording so the message can be answered as is.
func validateTopicConfig(name, value string) error {
	d := topicConfigDef(name)
	if d.name == "" {
		return kafkaErr(kerr.InvalidConfig, "Unknown topic config name: %s", name)
	}
	if err := checkType(d.typ, value); err != nil {
		return kafkaErr(kerr.InvalidConfig, "Invalid value %s for configuration %s: %v", value, name, err)
	}
	if d.check != nil {
		if err := d.check(value); err != nil {
			return kafkaErr(kerr.InvalidConfig, "Invalid value %s for configuration %s: %v", value, name, err)
		}
	}
	return nil
}

// validateTopicConfigs validates a whole set of explicitly set configs.
func validateTopicConfigs(configs map[string]string) error {
	names := make([]string, 0, len(configs))
	for n := range configs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := validateTopicConfig(n, configs[n]); err != nil {
			return err
		}
	}
	return nil
}

func checkType(t kmsg.ConfigType, v string) error {
	var err error
	switch t {
	case kmsg.ConfigTypeBoolean:
		if l := strings.ToLower(strings.TrimSpace(v)); l != "true" && l != "false" {
			err = fmt.Errorf("expected value to be either true or false")
		}
	case kmsg.ConfigTypeInt:
		_, err = strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	case kmsg.ConfigTypeLong:
		_, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	case kmsg.ConfigTypeDouble:
		_, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
	}
	if err != nil {
		return fmt.Errorf("not a valid %s", strings.ToLower(t.String()))
	}
	return nil
}

func atLeast(n int64) func(string) error {
	return func(v string) error {
		x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if x < n {
			return fmt.Errorf("value must be at least %d", n)
		}
		return nil
	}
}

func oneOf(values ...string) func(string) error {
	return func(v string) error {
		if !slices.Contains(values, v) {
			return fmt.Errorf("string must be one of: %s", strings.Join(values, ", "))
		}
		return nil
	}
}

func between01(v string) error {
	x, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if x < 0 || x > 1 {
		return fmt.Errorf("value must be between 0 and 1")
	}
	return nil
}

func checkCleanupPolicy(v string) error {
	seen := map[string]bool{}
	for p := range strings.SplitSeq(v, ",") {
		p = strings.TrimSpace(p)
		if p != "delete" && p != "compact" {
			return fmt.Errorf("invalid cleanup policy %q: must be delete and/or compact", p)
		}
		seen[p] = true
	}
	if len(seen) == 0 {
		return fmt.Errorf("empty cleanup policy")
	}
	return nil
}

// describedConfig is one config as DescribeConfigs and CreateTopics
// report it.
type describedConfig struct {
	name     string
	value    string
	source   kmsg.ConfigSource
	def      configDef
	synonyms []describedSynonym
}

type describedSynonym struct {
	name, value string
	source      kmsg.ConfigSource
}

// describeTopicConfigs reports a topic's configs: every known one when
// names is nil, else the named known ones. Explicitly set configs are
// DYNAMIC_TOPIC_CONFIG; the rest DEFAULT_CONFIG. Synonyms list the topic
// value (when set) then the broker default it falls back to, Kafka's
// precedence order.
func describeTopicConfigs(set map[string]string, names []string) []describedConfig {
	defs := topicConfigDefs
	if names != nil {
		defs = nil
		seen := make(map[string]bool, len(names))
		for _, n := range names {
			if d := topicConfigDef(n); d.name != "" && !seen[n] {
				seen[n] = true
				defs = append(defs, d)
			}
		}
	}
	out := make([]describedConfig, 0, len(defs))
	for _, d := range defs {
		c := describedConfig{name: d.name, value: d.def, source: kmsg.ConfigSourceDefaultConfig, def: d}
		if v, ok := set[d.name]; ok {
			c.value, c.source = v, kmsg.ConfigSourceDynamicTopicConfig
			c.synonyms = append(c.synonyms, describedSynonym{d.name, v, kmsg.ConfigSourceDynamicTopicConfig})
		}
		c.synonyms = append(c.synonyms, describedSynonym{d.synonym, d.def, kmsg.ConfigSourceDefaultConfig})
		out = append(out, c)
	}
	return out
}

// isListConfig reports whether APPEND and SUBTRACT apply to a config.
func isListConfig(name string) bool {
	return topicConfigDef(name).typ == kmsg.ConfigTypeList
}
