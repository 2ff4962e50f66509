// Package topicconfig is the one definition of the topic configs silt
// accepts: their types, defaults, documentation and validation, and the
// effective settings of a topic that the produce path and the storage
// janitor act on. The protocol server describes configs from it; the
// janitor reads retention and cleanup settings through it.
package topicconfig

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Def is one known config: its type, default, documentation, the broker
// config that supplies its default (Kafka's synonym), and its validation.
type Def struct {
	Name    string
	Type    kmsg.ConfigType
	Default string // Kafka's default; Defaults may override some
	Synonym string // broker config name of the default
	Doc     string
	// Check validates a value whose type already checked; nil: the type
	// check only.
	Check func(v string) error
	// Honoured is false for configs that are stored and described but
	// have no effect on a stateless agent over object storage.
	Honoured bool
}

const maxLong = "9223372036854775807"

// defs lists every topic config silt accepts, sorted by name. Kafka
// rejects unknown topic configs with INVALID_CONFIG; so does silt. Configs
// about replicas, local log segments and flushing mean nothing for a
// stateless agent over object storage: they are accepted, validated,
// stored and described (tools and frameworks set them), and have no
// effect (Honoured false).
var defs = []Def{
	{Name: "cleanup.policy", Type: kmsg.ConfigTypeList, Default: "delete", Synonym: "log.cleanup.policy", Honoured: true,
		Doc:   "delete: the storage janitor removes old data by retention.ms and retention.bytes. compact: it keeps only the latest record of each key (records need keys). Both may be given.",
		Check: checkCleanupPolicy},
	{Name: "compression.type", Type: kmsg.ConfigTypeString, Default: "producer", Synonym: "compression.type",
		Doc:   "silt keeps batches compressed as the producer sent them (producer); other values are accepted and not applied.",
		Check: oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")},
	{Name: "delete.retention.ms", Type: kmsg.ConfigTypeLong, Default: "86400000", Synonym: "log.cleaner.delete.retention.ms", Honoured: true,
		Doc: "How long a tombstone (a record with a null value) of a compacted topic is kept, from its timestamp, so that consumers behind see the delete.", Check: atLeast(0)},
	{Name: "file.delete.delay.ms", Type: kmsg.ConfigTypeLong, Default: "60000", Synonym: "log.segment.delete.delay.ms", Check: atLeast(0)},
	{Name: "flush.messages", Type: kmsg.ConfigTypeLong, Default: maxLong, Synonym: "log.flush.interval.messages", Check: atLeast(1)},
	{Name: "flush.ms", Type: kmsg.ConfigTypeLong, Default: maxLong, Synonym: "log.flush.interval.ms", Check: atLeast(0)},
	{Name: "index.interval.bytes", Type: kmsg.ConfigTypeInt, Default: "4096", Synonym: "log.index.interval.bytes", Check: atLeast(0)},
	{Name: "local.retention.bytes", Type: kmsg.ConfigTypeLong, Default: "-2", Synonym: "log.local.retention.bytes", Check: atLeast(-2)},
	{Name: "local.retention.ms", Type: kmsg.ConfigTypeLong, Default: "-2", Synonym: "log.local.retention.ms", Check: atLeast(-2)},
	{Name: "max.compaction.lag.ms", Type: kmsg.ConfigTypeLong, Default: maxLong, Synonym: "log.cleaner.max.compaction.lag.ms", Honoured: true,
		Doc: "The longest a record stays ineligible for compaction: past it the partition is cleaned whatever its dirty ratio.", Check: atLeast(1)},
	{Name: "max.message.bytes", Type: kmsg.ConfigTypeInt, Default: "1048588", Synonym: "message.max.bytes", Honoured: true,
		Doc: "The largest record batch size allowed.", Check: atLeast(0)},
	{Name: "message.downconversion.enable", Type: kmsg.ConfigTypeBoolean, Default: "true", Synonym: "log.message.downconversion.enable"},
	{Name: "message.timestamp.after.max.ms", Type: kmsg.ConfigTypeLong, Default: maxLong, Synonym: "log.message.timestamp.after.max.ms", Check: atLeast(0)},
	{Name: "message.timestamp.before.max.ms", Type: kmsg.ConfigTypeLong, Default: maxLong, Synonym: "log.message.timestamp.before.max.ms", Check: atLeast(0)},
	{Name: "message.timestamp.difference.max.ms", Type: kmsg.ConfigTypeLong, Default: maxLong, Synonym: "log.message.timestamp.difference.max.ms", Check: atLeast(0)},
	{Name: "message.timestamp.type", Type: kmsg.ConfigTypeString, Default: "CreateTime", Synonym: "log.message.timestamp.type", Honoured: true,
		Doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the time they are appended.", Check: oneOf("CreateTime", "LogAppendTime")},
	{Name: "min.cleanable.dirty.ratio", Type: kmsg.ConfigTypeDouble, Default: "0.5", Synonym: "log.cleaner.min.cleanable.ratio", Honoured: true,
		Doc: "A compacted partition is cleaned once the part written since its last cleaning is at least this share of its log.", Check: between01},
	{Name: "min.compaction.lag.ms", Type: kmsg.ConfigTypeLong, Default: "0", Synonym: "log.cleaner.min.compaction.lag.ms", Honoured: true,
		Doc: "The least time a record stays uncompacted.", Check: atLeast(0)},
	{Name: "min.insync.replicas", Type: kmsg.ConfigTypeInt, Default: "1", Synonym: "min.insync.replicas",
		Doc: "Accepted for compatibility; every acknowledged write is durable in object storage.", Check: atLeast(1)},
	{Name: "preallocate", Type: kmsg.ConfigTypeBoolean, Default: "false", Synonym: "log.preallocate"},
	{Name: "remote.storage.enable", Type: kmsg.ConfigTypeBoolean, Default: "false", Synonym: "remote.log.storage.system.enable"},
	{Name: "retention.bytes", Type: kmsg.ConfigTypeLong, Default: "-1", Synonym: "log.retention.bytes", Honoured: true,
		Doc: "The most bytes a partition keeps (the record batches as producers sent them) before its oldest data is deleted; -1 for no limit.", Check: atLeast(-1)},
	{Name: "retention.ms", Type: kmsg.ConfigTypeLong, Default: "604800000", Synonym: "log.retention.ms", Honoured: true,
		Doc: "How long records are kept, by their timestamps, before they are deleted; -1 for no limit.", Check: atLeast(-1)},
	{Name: "segment.bytes", Type: kmsg.ConfigTypeInt, Default: "1073741824", Synonym: "log.segment.bytes", Check: atLeast(14)},
	{Name: "segment.index.bytes", Type: kmsg.ConfigTypeInt, Default: "10485760", Synonym: "log.index.size.max.bytes", Check: atLeast(4)},
	{Name: "segment.jitter.ms", Type: kmsg.ConfigTypeLong, Default: "0", Synonym: "log.roll.jitter.ms", Check: atLeast(0)},
	{Name: "segment.ms", Type: kmsg.ConfigTypeLong, Default: "604800000", Synonym: "log.roll.ms", Check: atLeast(1)},
	{Name: "unclean.leader.election.enable", Type: kmsg.ConfigTypeBoolean, Default: "false", Synonym: "unclean.leader.election.enable"},
}

// All returns every known config, sorted by name.
func All() []Def { return slices.Clone(defs) }

// Lookup returns the definition of a known config.
func Lookup(name string) (Def, bool) {
	i, ok := slices.BinarySearchFunc(defs, name, func(d Def, n string) int { return strings.Compare(d.Name, n) })
	if !ok {
		return Def{}, false
	}
	return defs[i], true
}

// ErrInvalid is wrapped by every validation error; the message follows
// Kafka's wording, so it can be answered as is with INVALID_CONFIG.
var ErrInvalid = errors.New("invalid config")

// invalidError is a validation error: Kafka's message, and ErrInvalid.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// Validate checks one config.
func Validate(name, value string) error {
	d, ok := Lookup(name)
	if !ok {
		return invalid("Unknown topic config name: %s", name)
	}
	if err := checkType(d.Type, value); err != nil {
		return invalid("Invalid value %s for configuration %s: %v", value, name, err)
	}
	if d.Check != nil {
		if err := d.Check(value); err != nil {
			return invalid("Invalid value %s for configuration %s: %v", value, name, err)
		}
	}
	return nil
}

// ValidateAll validates a whole set of explicitly set configs, in name
// order, and returns the first error; then the rules between configs that
// Kafka's LogConfig checks.
func ValidateAll(configs map[string]string) error {
	names := make([]string, 0, len(configs))
	for n := range configs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := Validate(n, configs[n]); err != nil {
			return err
		}
	}
	c := Parse(configs, KafkaDefaults())
	if c.MinCompactionLagMs > c.MaxCompactionLagMs {
		return invalid("conflict topic config setting min.compaction.lag.ms (%d) > max.compaction.lag.ms (%d)", c.MinCompactionLagMs, c.MaxCompactionLagMs)
	}
	if c.Compact && strings.EqualFold(strings.TrimSpace(configs["remote.storage.enable"]), "true") {
		return invalid("Remote log storage is unsupported for the compacted topics")
	}
	return nil
}

// Defaults are the cluster's defaults for configs a topic does not set,
// where they differ from Kafka's: the broker settings of silt's flags.
type Defaults struct {
	// Retention is log.retention.ms: how long records are kept; negative
	// keeps them forever.
	Retention time.Duration
	// RetentionBytes is log.retention.bytes per partition; -1 is no limit.
	RetentionBytes int64
}

// KafkaDefaults are Kafka's own defaults: 7 days, no size limit.
func KafkaDefaults() Defaults {
	return Defaults{Retention: 7 * 24 * time.Hour, RetentionBytes: -1}
}

// Default returns a config's default value under d: d's for the configs
// it covers, Kafka's otherwise.
func (d Defaults) Default(name string) string {
	switch name {
	case "retention.ms":
		if d.Retention < 0 {
			return "-1"
		}
		return strconv.FormatInt(d.Retention.Milliseconds(), 10)
	case "retention.bytes":
		return strconv.FormatInt(d.RetentionBytes, 10)
	}
	def, _ := Lookup(name)
	return def.Default
}

// Config is a topic's effective settings, as the data paths use them.
type Config struct {
	// MaxMessageBytes bounds one record batch (max.message.bytes).
	MaxMessageBytes int32
	// LogAppendTime: message.timestamp.type=LogAppendTime, the agent
	// stamps batches with the append time.
	LogAppendTime bool
	// RetentionMs and RetentionBytes are retention.ms and
	// retention.bytes; -1 keeps forever.
	RetentionMs    int64
	RetentionBytes int64
	// CleanupPolicy is cleanup.policy as set: "delete", "compact",
	// "compact,delete" or "delete,compact".
	CleanupPolicy string
	// Delete and Compact are whether cleanup.policy includes delete
	// (retention applies) and compact (records need keys).
	Delete, Compact bool
	// Log compaction by key: min.compaction.lag.ms,
	// max.compaction.lag.ms, delete.retention.ms and
	// min.cleanable.dirty.ratio.
	MinCompactionLagMs     int64
	MaxCompactionLagMs     int64
	DeleteRetentionMs      int64
	MinCleanableDirtyRatio float64
}

// Parse resolves a topic's explicitly set configs (validated on the way
// in) against the defaults. A value that does not parse falls back to the
// default rather than failing the data path.
func Parse(configs map[string]string, d Defaults) Config {
	value := func(name string) string {
		if v, ok := configs[name]; ok {
			return v
		}
		return d.Default(name)
	}
	long := func(name string) int64 {
		v, err := strconv.ParseInt(strings.TrimSpace(value(name)), 10, 64)
		if err != nil {
			v, _ = strconv.ParseInt(d.Default(name), 10, 64)
		}
		return v
	}
	policies := SplitList(value("cleanup.policy"))
	ratio, err := strconv.ParseFloat(strings.TrimSpace(value("min.cleanable.dirty.ratio")), 64)
	if err != nil {
		ratio, _ = strconv.ParseFloat(d.Default("min.cleanable.dirty.ratio"), 64)
	}
	return Config{
		MinCompactionLagMs:     long("min.compaction.lag.ms"),
		MaxCompactionLagMs:     long("max.compaction.lag.ms"),
		DeleteRetentionMs:      long("delete.retention.ms"),
		MinCleanableDirtyRatio: ratio,
		MaxMessageBytes:        int32(min(max(long("max.message.bytes"), 0), math.MaxInt32)),
		LogAppendTime:          value("message.timestamp.type") == "LogAppendTime",
		RetentionMs:            long("retention.ms"),
		RetentionBytes:         long("retention.bytes"),
		CleanupPolicy:          value("cleanup.policy"),
		Delete:                 slices.Contains(policies, "delete"),
		Compact:                slices.Contains(policies, "compact"),
	}
}

// SplitList splits a list config's value into its trimmed, non-empty items.
func SplitList(v string) []string {
	var out []string
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func checkType(t kmsg.ConfigType, v string) error {
	var err error
	switch t {
	case kmsg.ConfigTypeBoolean:
		if l := strings.ToLower(strings.TrimSpace(v)); l != "true" && l != "false" {
			err = errors.New("expected value to be either true or false")
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
		return errors.New("value must be between 0 and 1")
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
		return errors.New("empty cleanup policy")
	}
	return nil
}
