// Package groupconfig is the one definition of the group configs silt
// accepts (Kafka's GROUP config resource, set with IncrementalAlterConfigs
// and described with DescribeConfigs): their types, the broker settings
// that supply their defaults, their validation, and the effective settings
// of a group that the consumer-group and share-group coordinators and the
// share-fetch path act on.
package groupconfig

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Defaults are the broker-level settings behind the group configs:
// the value a group gets when it sets nothing, and the bounds of what it
// may set (Kafka's group.consumer.*, group.share.* broker configs).
type Defaults struct {
	// ConsumerSessionTimeout is how long a KIP-848 member may go without
	// a heartbeat before it is removed (group.consumer.session.timeout.ms);
	// a group may set consumer.session.timeout.ms within [Min, Max].
	ConsumerSessionTimeout, ConsumerMinSessionTimeout, ConsumerMaxSessionTimeout time.Duration
	// ConsumerHeartbeatInterval is what KIP-848 members are told to
	// heartbeat at (group.consumer.heartbeat.interval.ms): shorter
	// reconciles faster and costs more requests.
	ConsumerHeartbeatInterval, ConsumerMinHeartbeatInterval, ConsumerMaxHeartbeatInterval time.Duration
	// ShareSessionTimeout and ShareHeartbeatInterval are the same for
	// share-group members (group.share.*).
	ShareSessionTimeout, ShareMinSessionTimeout, ShareMaxSessionTimeout          time.Duration
	ShareHeartbeatInterval, ShareMinHeartbeatInterval, ShareMaxHeartbeatInterval time.Duration
	// ShareRecordLockDuration is how long a share consumer holds a record
	// it fetched before it is delivered again
	// (group.share.record.lock.duration.ms): long enough to process a
	// batch, short enough that a dead consumer's records come back soon.
	ShareRecordLockDuration, ShareMinRecordLockDuration, ShareMaxRecordLockDuration time.Duration
	// ShareDeliveryCountLimit is how many times a record is delivered
	// before it is archived (group.share.delivery.count.limit).
	ShareDeliveryCountLimit, ShareMinDeliveryCountLimit, ShareMaxDeliveryCountLimit int
	// SharePartitionMaxRecordLocks bounds a share-partition's in-flight
	// records (group.share.partition.max.record.locks): the bound of its
	// metastore row, and of how far consumers may run ahead of the
	// oldest unacknowledged record.
	SharePartitionMaxRecordLocks, ShareMinPartitionMaxRecordLocks, ShareMaxPartitionMaxRecordLocks int
}

// KafkaDefaults returns Apache Kafka 4.x's defaults.
func KafkaDefaults() Defaults {
	return Defaults{
		ConsumerSessionTimeout: 45 * time.Second, ConsumerMinSessionTimeout: 45 * time.Second, ConsumerMaxSessionTimeout: 60 * time.Second,
		ConsumerHeartbeatInterval: 5 * time.Second, ConsumerMinHeartbeatInterval: 5 * time.Second, ConsumerMaxHeartbeatInterval: 15 * time.Second,
		ShareSessionTimeout: 45 * time.Second, ShareMinSessionTimeout: 45 * time.Second, ShareMaxSessionTimeout: 60 * time.Second,
		ShareHeartbeatInterval: 5 * time.Second, ShareMinHeartbeatInterval: 5 * time.Second, ShareMaxHeartbeatInterval: 15 * time.Second,
		ShareRecordLockDuration: 30 * time.Second, ShareMinRecordLockDuration: 15 * time.Second, ShareMaxRecordLockDuration: 60 * time.Second,
		ShareDeliveryCountLimit: 5, ShareMinDeliveryCountLimit: 2, ShareMaxDeliveryCountLimit: 10,
		SharePartitionMaxRecordLocks: 2000, ShareMinPartitionMaxRecordLocks: 100, ShareMaxPartitionMaxRecordLocks: 4000,
	}
}

// Validate reports settings that contradict each other.
func (d Defaults) Validate() error {
	var errs []error
	durs := []struct {
		name          string
		v, lo, hi     time.Duration
		mustBeSmaller time.Duration // 0: no relation
	}{
		{"consumer session timeout", d.ConsumerSessionTimeout, d.ConsumerMinSessionTimeout, d.ConsumerMaxSessionTimeout, 0},
		{"consumer heartbeat interval", d.ConsumerHeartbeatInterval, d.ConsumerMinHeartbeatInterval, d.ConsumerMaxHeartbeatInterval, d.ConsumerSessionTimeout},
		{"share session timeout", d.ShareSessionTimeout, d.ShareMinSessionTimeout, d.ShareMaxSessionTimeout, 0},
		{"share heartbeat interval", d.ShareHeartbeatInterval, d.ShareMinHeartbeatInterval, d.ShareMaxHeartbeatInterval, d.ShareSessionTimeout},
		{"share record lock duration", d.ShareRecordLockDuration, d.ShareMinRecordLockDuration, d.ShareMaxRecordLockDuration, 0},
	}
	for _, x := range durs {
		if x.lo <= 0 || x.lo > x.v || x.v > x.hi {
			errs = append(errs, fmt.Errorf("%s %s: need 0 < min %s <= value <= max %s", x.name, x.v, x.lo, x.hi))
		}
		if x.mustBeSmaller > 0 && x.v >= x.mustBeSmaller {
			errs = append(errs, fmt.Errorf("%s %s: must be below the session timeout %s", x.name, x.v, x.mustBeSmaller))
		}
	}
	if d.ShareMinDeliveryCountLimit < 1 || d.ShareMinDeliveryCountLimit > d.ShareDeliveryCountLimit || d.ShareDeliveryCountLimit > d.ShareMaxDeliveryCountLimit {
		errs = append(errs, fmt.Errorf("share delivery count limit %d: need 1 <= min %d <= value <= max %d", d.ShareDeliveryCountLimit, d.ShareMinDeliveryCountLimit, d.ShareMaxDeliveryCountLimit))
	}
	if d.ShareMinPartitionMaxRecordLocks < 1 || d.ShareMinPartitionMaxRecordLocks > d.SharePartitionMaxRecordLocks || d.SharePartitionMaxRecordLocks > d.ShareMaxPartitionMaxRecordLocks {
		errs = append(errs, fmt.Errorf("share partition max record locks %d: need 1 <= min %d <= value <= max %d", d.SharePartitionMaxRecordLocks, d.ShareMinPartitionMaxRecordLocks, d.ShareMaxPartitionMaxRecordLocks))
	}
	return errors.Join(errs...)
}

// Names of the configs.
const (
	ConsumerSessionTimeoutMs       = "consumer.session.timeout.ms"
	ConsumerHeartbeatIntervalMs    = "consumer.heartbeat.interval.ms"
	ConsumerAssignmentIntervalMs   = "consumer.assignment.interval.ms"
	ShareSessionTimeoutMs          = "share.session.timeout.ms"
	ShareHeartbeatIntervalMs       = "share.heartbeat.interval.ms"
	ShareAssignmentIntervalMs      = "share.assignment.interval.ms"
	ShareRecordLockDurationMs      = "share.record.lock.duration.ms"
	ShareDeliveryCountLimit        = "share.delivery.count.limit"
	SharePartitionMaxRecordLocks   = "share.partition.max.record.locks"
	ShareAutoOffsetReset           = "share.auto.offset.reset"
	ShareIsolationLevel            = "share.isolation.level"
	ShareRenewAcknowledgeEnable    = "share.renew.acknowledge.enable"
	intervalNotApplied             = "Accepted and described; silt computes assignments as members heartbeat, without batching them."
	autoOffsetResetValuesForErrors = "The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'."
)

// Def is one group config: its name, type, default, the broker config
// its default comes from, and what it means.
type Def struct {
	Name    string
	Type    kmsg.ConfigType
	Default string
	Synonym string
	Doc     string
}

// Defs lists every group config silt accepts, sorted by name, with its
// default under d.
func Defs(d Defaults) []Def {
	ms := func(x time.Duration) string { return strconv.FormatInt(x.Milliseconds(), 10) }
	defs := []Def{
		{ConsumerAssignmentIntervalMs, kmsg.ConfigTypeInt, "1000", "group.consumer.assignment.interval.ms", intervalNotApplied},
		{ConsumerHeartbeatIntervalMs, kmsg.ConfigTypeInt, ms(d.ConsumerHeartbeatInterval), "group.consumer.heartbeat.interval.ms", "The interval KIP-848 members are told to heartbeat at."},
		{ConsumerSessionTimeoutMs, kmsg.ConfigTypeInt, ms(d.ConsumerSessionTimeout), "group.consumer.session.timeout.ms", "How long a KIP-848 member may go without a heartbeat before it is removed from the group."},
		{ShareAssignmentIntervalMs, kmsg.ConfigTypeInt, "1000", "group.share.assignment.interval.ms", intervalNotApplied},
		{ShareAutoOffsetReset, kmsg.ConfigTypeString, "latest", "share.auto.offset.reset", "Where a share group starts reading a partition it has no state for: earliest, latest, or by_duration:<ISO-8601 duration> (the first record at or after now minus the duration)."},
		{ShareDeliveryCountLimit, kmsg.ConfigTypeInt, strconv.Itoa(d.ShareDeliveryCountLimit), "group.share.delivery.count.limit", "How many times a record is delivered to share consumers before it is archived."},
		{ShareHeartbeatIntervalMs, kmsg.ConfigTypeInt, ms(d.ShareHeartbeatInterval), "group.share.heartbeat.interval.ms", "The interval share-group members are told to heartbeat at."},
		{ShareIsolationLevel, kmsg.ConfigTypeString, "read_uncommitted", "share.isolation.level", "Accepted and described; silt has no transactions yet, so both levels read the same records."},
		{SharePartitionMaxRecordLocks, kmsg.ConfigTypeInt, strconv.Itoa(d.SharePartitionMaxRecordLocks), "group.share.partition.max.record.locks", "How many records of a partition may be in flight (acquired, or released and not yet done) at once."},
		{ShareRecordLockDurationMs, kmsg.ConfigTypeInt, ms(d.ShareRecordLockDuration), "group.share.record.lock.duration.ms", "How long a share consumer holds a record it fetched before the record is delivered again."},
		{ShareRenewAcknowledgeEnable, kmsg.ConfigTypeBoolean, "true", "share.renew.acknowledge.enable", "Whether share consumers may renew their acquisition locks (KIP-1222)."},
		{ShareSessionTimeoutMs, kmsg.ConfigTypeInt, ms(d.ShareSessionTimeout), "group.share.session.timeout.ms", "How long a share-group member may go without a heartbeat before it is removed from the group."},
	}
	return defs
}

// ErrInvalid wraps every validation failure; its message is Kafka's
// wording, answered in error_message.
var ErrInvalid = errors.New("invalid group config")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Check validates one value for a group config (nil: deleting it, always
// fine for a known name).
func Check(d Defaults, name string, value *string) error {
	idx := slices.IndexFunc(Defs(d), func(x Def) bool { return x.Name == name })
	if idx < 0 {
		return invalid("Unknown group config name: %s", name)
	}
	if value == nil {
		return nil
	}
	v := *value
	inRange := func(lo, hi int64) error {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return invalid("Invalid value %s for configuration %s: Not a number of type INT", v, name)
		}
		if n < lo || n > hi {
			return invalid("%s must be in the range %d to %d inclusive.", name, lo, hi)
		}
		return nil
	}
	ms := func(lo, hi time.Duration) error { return inRange(lo.Milliseconds(), hi.Milliseconds()) }
	switch name {
	case ConsumerSessionTimeoutMs:
		return ms(d.ConsumerMinSessionTimeout, d.ConsumerMaxSessionTimeout)
	case ConsumerHeartbeatIntervalMs:
		return ms(d.ConsumerMinHeartbeatInterval, d.ConsumerMaxHeartbeatInterval)
	case ShareSessionTimeoutMs:
		return ms(d.ShareMinSessionTimeout, d.ShareMaxSessionTimeout)
	case ShareHeartbeatIntervalMs:
		return ms(d.ShareMinHeartbeatInterval, d.ShareMaxHeartbeatInterval)
	case ShareRecordLockDurationMs:
		return ms(d.ShareMinRecordLockDuration, d.ShareMaxRecordLockDuration)
	case ShareDeliveryCountLimit:
		return inRange(int64(d.ShareMinDeliveryCountLimit), int64(d.ShareMaxDeliveryCountLimit))
	case SharePartitionMaxRecordLocks:
		return inRange(int64(d.ShareMinPartitionMaxRecordLocks), int64(d.ShareMaxPartitionMaxRecordLocks))
	case ConsumerAssignmentIntervalMs, ShareAssignmentIntervalMs:
		return inRange(0, 1<<31-1)
	case ShareAutoOffsetReset:
		if _, err := ParseReset(v); err != nil {
			return invalid("Invalid value `%s` for configuration %s. %s", v, name, autoOffsetResetValuesForErrors)
		}
	case ShareIsolationLevel:
		if v != "read_committed" && v != "read_uncommitted" {
			return invalid("Invalid value %s for configuration %s: String must be one of: read_committed, read_uncommitted", v, name)
		}
	case ShareRenewAcknowledgeEnable:
		if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			return invalid("Invalid value %s for configuration %s: Expected value to be either true or false", v, name)
		}
	}
	return nil
}

// ResetKind is where a share group starts reading a partition it has no
// state for.
type ResetKind int8

const (
	ResetLatest ResetKind = iota
	ResetEarliest
	ResetByDuration
)

// Reset is a parsed share.auto.offset.reset.
type Reset struct {
	Kind ResetKind
	// Duration is how far back from now ResetByDuration starts.
	Duration time.Duration
}

// isoDuration is Java's Duration.parse format: PnDTnHnMn.nS, each part
// optional, at least one present.
var isoDuration = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d{1,9})?)S)?)?$`)

// ParseReset parses a share.auto.offset.reset value.
func ParseReset(v string) (Reset, error) {
	switch v {
	case "latest":
		return Reset{Kind: ResetLatest}, nil
	case "earliest":
		return Reset{Kind: ResetEarliest}, nil
	}
	iso, ok := strings.CutPrefix(v, "by_duration:")
	if !ok {
		return Reset{}, fmt.Errorf("share.auto.offset.reset %q: %s", v, autoOffsetResetValuesForErrors)
	}
	m := isoDuration.FindStringSubmatch(iso)
	if m == nil || iso == "P" || strings.HasSuffix(iso, "T") {
		return Reset{}, fmt.Errorf("share.auto.offset.reset %q: not an ISO-8601 duration", v)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
		if m[i+1] != "" {
			n, err := strconv.ParseInt(m[i+1], 10, 64)
			if err != nil {
				return Reset{}, fmt.Errorf("share.auto.offset.reset %q: %w", v, err)
			}
			d += time.Duration(n) * unit
		}
	}
	if m[4] != "" {
		secs, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			return Reset{}, fmt.Errorf("share.auto.offset.reset %q: %w", v, err)
		}
		d += time.Duration(secs * float64(time.Second))
	}
	return Reset{Kind: ResetByDuration, Duration: d}, nil
}

// Group is a group's effective settings.
type Group struct {
	ConsumerSessionTimeout    time.Duration
	ConsumerHeartbeatInterval time.Duration
	ShareSessionTimeout       time.Duration
	ShareHeartbeatInterval    time.Duration
	ShareRecordLockDuration   time.Duration
	ShareDeliveryCountLimit   int
	ShareMaxRecordLocks       int
	ShareAutoOffsetReset      Reset
}

// Effective returns a group's settings from the configs it set (as
// stored; an invalid stored value, which validation kept out, falls back
// to the default).
func Effective(d Defaults, set map[string]string) Group {
	g := Group{
		ConsumerSessionTimeout:    d.ConsumerSessionTimeout,
		ConsumerHeartbeatInterval: d.ConsumerHeartbeatInterval,
		ShareSessionTimeout:       d.ShareSessionTimeout,
		ShareHeartbeatInterval:    d.ShareHeartbeatInterval,
		ShareRecordLockDuration:   d.ShareRecordLockDuration,
		ShareDeliveryCountLimit:   d.ShareDeliveryCountLimit,
		ShareMaxRecordLocks:       d.SharePartitionMaxRecordLocks,
	}
	msInto := func(name string, dst *time.Duration) {
		if v, ok := set[name]; ok && Check(d, name, &v) == nil {
			n, _ := strconv.ParseInt(v, 10, 64)
			*dst = time.Duration(n) * time.Millisecond
		}
	}
	intInto := func(name string, dst *int) {
		if v, ok := set[name]; ok && Check(d, name, &v) == nil {
			*dst, _ = strconv.Atoi(v)
		}
	}
	msInto(ConsumerSessionTimeoutMs, &g.ConsumerSessionTimeout)
	msInto(ConsumerHeartbeatIntervalMs, &g.ConsumerHeartbeatInterval)
	msInto(ShareSessionTimeoutMs, &g.ShareSessionTimeout)
	msInto(ShareHeartbeatIntervalMs, &g.ShareHeartbeatInterval)
	msInto(ShareRecordLockDurationMs, &g.ShareRecordLockDuration)
	intInto(ShareDeliveryCountLimit, &g.ShareDeliveryCountLimit)
	intInto(SharePartitionMaxRecordLocks, &g.ShareMaxRecordLocks)
	if v, ok := set[ShareAutoOffsetReset]; ok {
		if r, err := ParseReset(v); err == nil {
			g.ShareAutoOffsetReset = r
		}
	}
	return g
}
