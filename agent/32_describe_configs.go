package agent

// DescribeConfigs: v0-v4.
//
// Behaviour:
//   - Topic resources: every known topic config (package topicconfig), or
//     the named ones (unknown names are left out, as Kafka does; no names,
//     null or empty, means all), with value, source (DYNAMIC_TOPIC_CONFIG
//     when set on the topic, STATIC_BROKER_CONFIG for a default silt's
//     flags set, such as --default-retention, else DEFAULT_CONFIG),
//     is_default (v0), synonyms when asked (v1+), type and documentation
//     (v3+). Unknown topic: UNKNOWN_TOPIC_OR_PARTITION; an invalid name
//     (empty, say): INVALID_TOPIC_EXCEPTION.
//   - Broker resources (this or any live node id, or "" for the cluster
//     default): a few read-only settings that describe the agent.
//   - Group resources (Kafka 4.x's GROUP_CONFIG): every group config
//     (package groupconfig), GROUP_CONFIG when the group set it, else
//     DEFAULT_CONFIG with the broker setting as synonym. Any group name
//     is described, existing or not; an empty one is INVALID_REQUEST.
//   - Other resource types: INVALID_REQUEST.
//
// Authorization (when on): DESCRIBE_CONFIGS on the topic
// (TOPIC_AUTHORIZATION_FAILED) or, for broker resources, on the cluster
// (CLUSTER_AUTHORIZATION_FAILED), per resource.
//
// Differences from Kafka: broker resources list a handful of configs, not
// Kafka's several hundred, and none of them can be altered.

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/topicconfig"
)

func (a *Agent) handleDescribeConfigs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var (
			configs []describedConfig
			err     error
			names   = rr.ConfigNames
		)
		if len(names) == 0 {
			names = nil // null and empty both mean every config, as in Kafka
		}
		switch err = r.configAuthorized(kmsg.ACLOperationDescribeConfigs, rr.ResourceType, rr.ResourceName); {
		case err != nil:
		case rr.ResourceType == kmsg.ConfigResourceTypeTopic:
			var set map[string]string
			if set, err = a.topicConfigs(ctx, rr.ResourceName); err == nil {
				configs = describeTopicConfigs(set, names, a.cfg.TopicDefaults)
			}
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker:
			configs, err = a.describeBroker(rr.ResourceName, names)
		case rr.ResourceType == kmsg.ConfigResourceTypeGroupConfig:
			configs, err = a.describeGroupConfigs(ctx, rr.ResourceName, names)
		default:
			err = kafkaErr(kerr.InvalidRequest, "resource type %s is not supported", rr.ResourceType)
		}
		if err != nil {
			sr.ErrorCode = errorCode(err)
			sr.ErrorMessage = kmsg.StringPtr(errMessage(err))
			r.logError(sr.ErrorCode, err, "resource", rr.ResourceName)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		readOnly := rr.ResourceType == kmsg.ConfigResourceTypeBroker
		for _, c := range configs {
			sc := kmsg.NewDescribeConfigsResponseResourceConfig()
			sc.Name, sc.Value, sc.ReadOnly = c.name, kmsg.StringPtr(c.value), readOnly
			sc.Source = c.source
			sc.IsDefault = c.source == kmsg.ConfigSourceDefaultConfig
			sc.ConfigType = c.def.Type
			if req.IncludeDocumentation && c.def.Doc != "" {
				sc.Documentation = kmsg.StringPtr(c.def.Doc)
			}
			if req.IncludeSynonyms {
				for _, s := range c.synonyms {
					ss := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
					ss.Name, ss.Value, ss.Source = s.name, kmsg.StringPtr(s.value), s.source
					sc.ConfigSynonyms = append(sc.ConfigSynonyms, ss)
				}
			}
			sr.Configs = append(sr.Configs, sc)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// topicConfigs reads a topic's explicitly set configs, from the store
// (not the cache: an admin reading back what it just altered elsewhere
// must see it).
func (a *Agent) topicConfigs(ctx context.Context, name string) (map[string]string, error) {
	// An impossible name is INVALID_TOPIC_EXCEPTION, as in Kafka, not
	// unknown.
	if err := metastore.ValidateTopicName(name); err != nil {
		return nil, err
	}
	t, err := a.store.Topic(ctx, name)
	if err != nil {
		return nil, err // the store's errors name the topic
	}
	return t.Configs, nil
}

// describeBroker reports the agent settings that clients and tools look
// for; all read-only (STATIC_BROKER_CONFIG).
func (a *Agent) describeBroker(name string, names []string) ([]describedConfig, error) {
	if name != "" {
		id, err := strconv.ParseInt(name, 10, 32)
		known := false
		for _, ag := range a.liveAgents() {
			known = known || err == nil && ag.NodeID == int32(id)
		}
		if !known {
			return nil, kafkaErr(kerr.InvalidRequest, "unknown broker id %s", name)
		}
	}
	static := func(n, v string, t kmsg.ConfigType) describedConfig {
		return describedConfig{name: n, value: v, source: kmsg.ConfigSourceStaticBrokerConfig,
			def:      topicconfig.Def{Name: n, Type: t},
			synonyms: []describedSynonym{{n, v, kmsg.ConfigSourceStaticBrokerConfig}}}
	}
	all := []describedConfig{
		static("auto.create.topics.enable", strconv.FormatBool(a.cfg.AutoCreateTopics), kmsg.ConfigTypeBoolean),
		static("broker.rack", a.cfg.Zone, kmsg.ConfigTypeString),
		static("default.replication.factor", "1", kmsg.ConfigTypeInt),
		static("log.cleanup.policy", a.cfg.TopicDefaults.Default("cleanup.policy"), kmsg.ConfigTypeList),
		static("log.retention.bytes", a.cfg.TopicDefaults.Default("retention.bytes"), kmsg.ConfigTypeLong),
		static("log.retention.ms", a.cfg.TopicDefaults.Default("retention.ms"), kmsg.ConfigTypeLong),
		static("message.max.bytes", a.cfg.TopicDefaults.Default("max.message.bytes"), kmsg.ConfigTypeInt),
		static("min.insync.replicas", "1", kmsg.ConfigTypeInt),
		static("num.partitions", strconv.Itoa(int(a.cfg.DefaultPartitions)), kmsg.ConfigTypeInt),
		static("queued.max.request.bytes", strconv.FormatInt(a.cfg.QueuedRequestBytes, 10), kmsg.ConfigTypeInt),
		static("socket.request.max.bytes", strconv.Itoa(int(a.cfg.MaxRequestBytes)), kmsg.ConfigTypeInt),
	}
	if names == nil {
		return all, nil
	}
	var out []describedConfig
	for _, c := range all {
		for _, n := range names {
			if c.name == n {
				out = append(out, c)
				break
			}
		}
	}
	return out, nil
}
