package agent

// IncrementalAlterConfigs: v0-v1.
//
// Behaviour:
//   - Topic resources: SET, DELETE (back to the default), APPEND and
//     SUBTRACT (list configs only, else INVALID_CONFIG), applied to the
//     topic's explicitly set configs; the result is validated as a whole
//     (INVALID_CONFIG with Kafka's message) and stored in one metastore
//     call. A config named twice in one resource is INVALID_REQUEST.
//     validate_only checks and stores nothing.
//   - Unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
//   - Group resources (GROUP_CONFIG): SET and DELETE of the group configs
//     (groupconfig: consumer.session.timeout.ms, share.auto.offset.reset,
//     ...), each validated with Kafka's bounds and messages
//     (INVALID_CONFIG); unknown names are INVALID_CONFIG.
//
// Authorization (when on): ALTER_CONFIGS on the topic
// (TOPIC_AUTHORIZATION_FAILED) or the cluster for broker resources
// (CLUSTER_AUTHORIZATION_FAILED), per resource.
//
// Differences from Kafka: broker configs cannot be altered (silt agents
// are configured at start); such resources answer INVALID_REQUEST. An
// unknown operation (not SET, DELETE, APPEND or SUBTRACT) answers
// INVALID_REQUEST, which says what is wrong; Kafka 4.4 fails it with
// UNKNOWN_SERVER_ERROR, from an exception in its handler (the
// differential test in tests/e2e keeps this listed).

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/topicconfig"
)

func (a *Agent) handleIncrementalAlterConfigs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := r.configAuthorized(kmsg.ACLOperationAlterConfigs, rr.ResourceType, rr.ResourceName)
		if err == nil {
			err = a.incrementalAlter(ctx, rr, req.ValidateOnly)
		}
		if err != nil {
			sr.ErrorCode = errorCode(err)
			sr.ErrorMessage = kmsg.StringPtr(errMessage(err))
			r.logError(sr.ErrorCode, err, "resource", rr.ResourceName)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

func (a *Agent) incrementalAlter(ctx context.Context, rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	if rr.ResourceType == kmsg.ConfigResourceTypeGroupConfig {
		return a.incrementalAlterGroup(ctx, rr, validateOnly)
	}
	if rr.ResourceType != kmsg.ConfigResourceTypeTopic {
		return kafkaErr(kerr.InvalidRequest, "silt cannot alter %s configs", rr.ResourceType)
	}
	seen := make(map[string]bool, len(rr.Configs))
	for _, c := range rr.Configs {
		if seen[c.Name] {
			return kafkaErr(kerr.InvalidRequest, "Error due to duplicate config keys")
		}
		seen[c.Name] = true
	}
	current, err := a.topicConfigs(ctx, rr.ResourceName)
	if err != nil {
		return err
	}
	next := maps.Clone(current)
	if next == nil {
		next = make(map[string]string)
	}
	for _, c := range rr.Configs {
		def, ok := topicconfig.Lookup(c.Name)
		if !ok {
			return kafkaErr(kerr.InvalidConfig, "Unknown topic config name: %s", c.Name)
		}
		value := ""
		if c.Value != nil {
			value = *c.Value
		}
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if c.Value == nil {
				return kafkaErr(kerr.InvalidRequest, "Null value not supported for topic configs: %s", c.Name)
			}
			next[c.Name] = value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(next, c.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if !isListConfig(c.Name) {
				return kafkaErr(kerr.InvalidConfig, "Config value append is not allowed for config key: %s", c.Name)
			}
			list := splitList(next, c.Name, a.cfg.TopicDefaults.Default(def.Name))
			for _, v := range topicconfig.SplitList(value) {
				if c.Op == kmsg.IncrementalAlterConfigOpAppend && !slices.Contains(list, v) {
					list = append(list, v)
				}
				if c.Op == kmsg.IncrementalAlterConfigOpSubtract {
					list = slices.DeleteFunc(list, func(x string) bool { return x == v })
				}
			}
			next[c.Name] = strings.Join(list, ",")
		default:
			return kafkaErr(kerr.InvalidRequest, "unknown operation %d for %s", c.Op, c.Name)
		}
	}
	if err := validateTopicConfigs(next); err != nil {
		return err
	}
	return a.storeTopicConfigs(ctx, rr.ResourceName, current, next, validateOnly)
}

// splitList is a list config's current elements (its default when unset).
func splitList(set map[string]string, name, def string) []string {
	v, ok := set[name]
	if !ok {
		v = def
	}
	return topicconfig.SplitList(v)
}

// storeTopicConfigs writes the difference between current and next.
func (a *Agent) storeTopicConfigs(ctx context.Context, topic string, current, next map[string]string, validateOnly bool) error {
	changes := make(map[string]*string)
	for k, v := range next {
		if old, ok := current[k]; !ok || old != v {
			changes[k] = &v
		}
	}
	for k := range current {
		if _, ok := next[k]; !ok {
			changes[k] = nil
		}
	}
	if validateOnly || len(changes) == 0 {
		return nil
	}
	a.topics.invalidate(topic)
	if err := a.store.AlterTopicConfigs(ctx, topic, changes); err != nil {
		return fmt.Errorf("alter configs of %q: %w", topic, err)
	}
	a.topics.invalidate(topic)
	a.logger.Info("topic configs altered", "topic", topic, "configs", next)
	return nil
}
