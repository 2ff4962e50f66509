package main

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/siltdata/silt/agent"
	"github.com/siltdata/silt/groupconfig"
)

// groupOptions are the group coordinators' broker settings: the defaults
// of the KIP-848 and share-group configs (a group's own configs, set with
// any Kafka admin client, override them within Kafka's bounds) and the
// consumer-group assignors and migration policy.
type groupOptions struct {
	consumerSessionTimeout    time.Duration
	consumerHeartbeatInterval time.Duration
	consumerAssignors         string
	migrationPolicy           string
	shareSessionTimeout       time.Duration
	shareHeartbeatInterval    time.Duration
	shareRecordLockDuration   time.Duration
	shareDeliveryCountLimit   int
	shareMaxRecordLocks       int
}

// addGroupFlags registers the group flags.
func (g *groupOptions) addGroupFlags(fs *flag.FlagSet, str func(p *string, name, def, help string)) {
	d := groupconfig.KafkaDefaults()
	gd := agent.DefaultConfig().Group
	fs.DurationVar(&g.consumerSessionTimeout, "group-consumer-session-timeout", d.ConsumerSessionTimeout,
		"how long a KIP-848 consumer may go without a heartbeat before it leaves its group (group.consumer.session.timeout.ms); groups may set consumer.session.timeout.ms")
	fs.DurationVar(&g.consumerHeartbeatInterval, "group-consumer-heartbeat-interval", d.ConsumerHeartbeatInterval,
		"how often KIP-848 consumers are told to heartbeat (group.consumer.heartbeat.interval.ms): shorter hands partitions over sooner")
	str(&g.consumerAssignors, "group-consumer-assignors", strings.Join(gd.ConsumerAssignors, ","),
		"server-side assignors KIP-848 consumers may ask for, the first being the default (group.consumer.assignors): uniform, range")
	str(&g.migrationPolicy, "group-consumer-migration-policy", gd.MigrationPolicy,
		"converting groups with members between the classic and the consumer protocol (group.consumer.migration.policy): bidirectional, upgrade, downgrade or disabled")
	fs.DurationVar(&g.shareSessionTimeout, "group-share-session-timeout", d.ShareSessionTimeout,
		"how long a share consumer may go without a heartbeat before it leaves its group (group.share.session.timeout.ms)")
	fs.DurationVar(&g.shareHeartbeatInterval, "group-share-heartbeat-interval", d.ShareHeartbeatInterval,
		"how often share consumers are told to heartbeat (group.share.heartbeat.interval.ms)")
	fs.DurationVar(&g.shareRecordLockDuration, "group-share-record-lock-duration", d.ShareRecordLockDuration,
		"how long a share consumer holds a record it fetched before it is delivered again (group.share.record.lock.duration.ms); groups may set share.record.lock.duration.ms")
	fs.IntVar(&g.shareDeliveryCountLimit, "group-share-delivery-count-limit", d.ShareDeliveryCountLimit,
		"deliveries of a record to share consumers before it is archived (group.share.delivery.count.limit)")
	fs.IntVar(&g.shareMaxRecordLocks, "group-share-partition-max-record-locks", d.SharePartitionMaxRecordLocks,
		"records of a partition a share group may have in flight at once (group.share.partition.max.record.locks): the bound of its state in the metastore")
}

// groupDefaults are the group-config defaults the flags set. Kafka's
// bounds stay, widened to hold a value set outside them (a test cluster
// with a short session timeout, say).
func (o options) groupDefaults() groupconfig.Defaults {
	g := o.groups
	d := groupconfig.KafkaDefaults()
	widen := func(v time.Duration, def, lo, hi *time.Duration) {
		*def, *lo, *hi = v, min(*lo, v), max(*hi, v)
	}
	widen(g.consumerSessionTimeout, &d.ConsumerSessionTimeout, &d.ConsumerMinSessionTimeout, &d.ConsumerMaxSessionTimeout)
	widen(g.consumerHeartbeatInterval, &d.ConsumerHeartbeatInterval, &d.ConsumerMinHeartbeatInterval, &d.ConsumerMaxHeartbeatInterval)
	widen(g.shareSessionTimeout, &d.ShareSessionTimeout, &d.ShareMinSessionTimeout, &d.ShareMaxSessionTimeout)
	widen(g.shareHeartbeatInterval, &d.ShareHeartbeatInterval, &d.ShareMinHeartbeatInterval, &d.ShareMaxHeartbeatInterval)
	widen(g.shareRecordLockDuration, &d.ShareRecordLockDuration, &d.ShareMinRecordLockDuration, &d.ShareMaxRecordLockDuration)
	d.ShareDeliveryCountLimit = g.shareDeliveryCountLimit
	d.ShareMinDeliveryCountLimit = min(d.ShareMinDeliveryCountLimit, g.shareDeliveryCountLimit)
	d.ShareMaxDeliveryCountLimit = max(d.ShareMaxDeliveryCountLimit, g.shareDeliveryCountLimit)
	d.SharePartitionMaxRecordLocks = g.shareMaxRecordLocks
	d.ShareMinPartitionMaxRecordLocks = min(d.ShareMinPartitionMaxRecordLocks, g.shareMaxRecordLocks)
	d.ShareMaxPartitionMaxRecordLocks = max(d.ShareMaxPartitionMaxRecordLocks, g.shareMaxRecordLocks)
	return d
}

// validateGroups checks the group flags before anything starts.
func (o options) validateGroups() []error {
	var errs []error
	g := o.groups
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"group-consumer-session-timeout", g.consumerSessionTimeout}, {"group-consumer-heartbeat-interval", g.consumerHeartbeatInterval},
		{"group-share-session-timeout", g.shareSessionTimeout}, {"group-share-heartbeat-interval", g.shareHeartbeatInterval},
		{"group-share-record-lock-duration", g.shareRecordLockDuration},
	} {
		if d.v < time.Millisecond {
			errs = append(errs, fmt.Errorf("%s %s: must be at least 1ms", o.name(d.flag), d.v))
		}
	}
	if g.consumerHeartbeatInterval >= g.consumerSessionTimeout {
		errs = append(errs, fmt.Errorf("%s %s: must be below %s %s", o.name("group-consumer-heartbeat-interval"), g.consumerHeartbeatInterval,
			o.name("group-consumer-session-timeout"), g.consumerSessionTimeout))
	}
	if g.shareHeartbeatInterval >= g.shareSessionTimeout {
		errs = append(errs, fmt.Errorf("%s %s: must be below %s %s", o.name("group-share-heartbeat-interval"), g.shareHeartbeatInterval,
			o.name("group-share-session-timeout"), g.shareSessionTimeout))
	}
	if g.shareDeliveryCountLimit < 1 || g.shareDeliveryCountLimit > 1000 {
		errs = append(errs, fmt.Errorf("%s %d: must be between 1 and 1000", o.name("group-share-delivery-count-limit"), g.shareDeliveryCountLimit))
	}
	if g.shareMaxRecordLocks < 1 || g.shareMaxRecordLocks > 1<<20 {
		errs = append(errs, fmt.Errorf("%s %d: must be between 1 and %d", o.name("group-share-partition-max-record-locks"), g.shareMaxRecordLocks, 1<<20))
	}
	as := strings.Split(g.consumerAssignors, ",")
	for _, a := range as {
		if !slices.Contains([]string{"uniform", "range"}, strings.TrimSpace(a)) {
			errs = append(errs, fmt.Errorf("%s %q: assignors are uniform and range", o.name("group-consumer-assignors"), g.consumerAssignors))
			break
		}
	}
	if !slices.Contains([]string{"bidirectional", "upgrade", "downgrade", "disabled"}, g.migrationPolicy) {
		errs = append(errs, fmt.Errorf("%s %q: one of bidirectional, upgrade, downgrade, disabled", o.name("group-consumer-migration-policy"), g.migrationPolicy))
	}
	return errs
}

// applyGroups maps the group flags onto the agent configuration.
func applyGroups(cfg *agent.Config, o options) {
	cfg.Group.Groups = o.groupDefaults()
	var as []string
	for _, a := range strings.Split(o.groups.consumerAssignors, ",") {
		as = append(as, strings.TrimSpace(a))
	}
	cfg.Group.ConsumerAssignors = as
	cfg.Group.MigrationPolicy = o.groups.migrationPolicy
}
