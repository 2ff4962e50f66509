package agent

import (
	"context"
	"errors"
	"maps"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/groupconfig"
	"github.com/siltdata/silt/topicconfig"
)

// Group configs (the GROUP config resource, Kafka 4.x): DescribeConfigs,
// AlterConfigs and IncrementalAlterConfigs of resource type GROUP_CONFIG
// come here. Any agent answers them: the configs live in the metastore,
// and coordinators read them again at their next refresh.

// describeGroupConfigs reports a group's configs, every known one when
// names is nil: GROUP_CONFIG when the group set it, DEFAULT_CONFIG with
// the broker config as synonym otherwise (as Kafka shows them). A group
// need not exist: its name's configs are described.
func (a *Agent) describeGroupConfigs(ctx context.Context, name string, names []string) ([]describedConfig, error) {
	if strings.TrimSpace(name) == "" {
		return nil, kafkaErr(kerr.InvalidRequest, "group name must not be empty")
	}
	set, err := a.store.GroupConfigs(ctx, name)
	if err != nil {
		return nil, err
	}
	var out []describedConfig
	for _, d := range groupconfig.Defs(a.cfg.Group.Groups) {
		if names != nil && !containsString(names, d.Name) {
			continue
		}
		c := describedConfig{name: d.Name, value: d.Default, source: kmsg.ConfigSourceDefaultConfig,
			def: topicconfig.Def{Name: d.Name, Type: d.Type, Doc: d.Doc}}
		if v, ok := set[d.Name]; ok {
			c.value, c.source = v, kmsg.ConfigSourceGroupConfig
			c.synonyms = append(c.synonyms, describedSynonym{d.Name, v, kmsg.ConfigSourceGroupConfig})
		}
		c.synonyms = append(c.synonyms, describedSynonym{d.Synonym, d.Default, kmsg.ConfigSourceDefaultConfig})
		out = append(out, c)
	}
	return out, nil
}

// alterGroupConfigs applies changes (nil deletes) to a group's configs
// after validating each; replace drops every other set config
// (AlterConfigs). validateOnly stores nothing.
func (a *Agent) alterGroupConfigs(ctx context.Context, name string, changes map[string]*string, replace, validateOnly bool) error {
	if strings.TrimSpace(name) == "" {
		return kafkaErr(kerr.InvalidRequest, "group name must not be empty")
	}
	for k, v := range changes {
		if err := groupconfig.Check(a.cfg.Group.Groups, k, v); err != nil {
			msg := err.Error()
			if errors.Is(err, groupconfig.ErrInvalid) {
				msg = strings.TrimPrefix(msg, groupconfig.ErrInvalid.Error()+": ")
			}
			return kafkaErr(kerr.InvalidConfig, "%s", msg)
		}
	}
	if replace {
		current, err := a.store.GroupConfigs(ctx, name)
		if err != nil {
			return err
		}
		all := maps.Clone(changes)
		for k := range current {
			if _, ok := all[k]; !ok {
				all[k] = nil
			}
		}
		changes = all
	}
	if validateOnly || len(changes) == 0 {
		return nil
	}
	return a.store.AlterGroupConfigs(ctx, name, changes)
}

// incrementalAlterGroup is IncrementalAlterConfigs for a GROUP resource:
// SET and DELETE (group configs are not lists: APPEND and SUBTRACT answer
// INVALID_CONFIG).
func (a *Agent) incrementalAlterGroup(ctx context.Context, rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	changes := make(map[string]*string, len(rr.Configs))
	for _, c := range rr.Configs {
		if _, dup := changes[c.Name]; dup {
			return kafkaErr(kerr.InvalidRequest, "Error due to duplicate config keys")
		}
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if c.Value == nil {
				return kafkaErr(kerr.InvalidRequest, "Null value not supported for group configs: %s", c.Name)
			}
			changes[c.Name] = c.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			changes[c.Name] = nil
		default:
			return kafkaErr(kerr.InvalidConfig, "Config value append is not allowed for config key: %s", c.Name)
		}
	}
	return a.alterGroupConfigs(ctx, rr.ResourceName, changes, false, validateOnly)
}

// replaceGroupConfigs is AlterConfigs (legacy) for a GROUP resource.
func (a *Agent) replaceGroupConfigs(ctx context.Context, rr kmsg.AlterConfigsRequestResource, validateOnly bool) error {
	changes := make(map[string]*string, len(rr.Configs))
	for _, c := range rr.Configs {
		if _, dup := changes[c.Name]; dup {
			return kafkaErr(kerr.InvalidRequest, "Error due to duplicate config keys")
		}
		if c.Value == nil {
			return kafkaErr(kerr.InvalidRequest, "Null value not supported for group configs: %s", c.Name)
		}
		changes[c.Name] = c.Value
	}
	return a.alterGroupConfigs(ctx, rr.ResourceName, changes, true, validateOnly)
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
