package agent

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/topicconfig"
)

// topicConfig is a topic's effective settings under this agent's cluster
// defaults.
func (a *Agent) topicConfig(configs map[string]string) topicconfig.Config {
	return topicconfig.Parse(configs, a.cfg.TopicDefaults)
}

// validateTopicConfigs validates a whole set of explicitly set configs;
// the error is INVALID_CONFIG with Kafka's wording.
func validateTopicConfigs(configs map[string]string) error {
	if err := topicconfig.ValidateAll(configs); err != nil {
		return kafkaErr(kerr.InvalidConfig, "%s", err.Error())
	}
	return nil
}

// describedConfig is one config as DescribeConfigs and CreateTopics
// report it.
type describedConfig struct {
	name     string
	value    string
	source   kmsg.ConfigSource
	def      topicconfig.Def
	synonyms []describedSynonym
}

type describedSynonym struct {
	name, value string
	source      kmsg.ConfigSource
}

// describeTopicConfigs reports a topic's configs: every known one when
// names is nil, else the named known ones. Explicitly set configs are
// DYNAMIC_TOPIC_CONFIG; the rest come from the broker default:
// DEFAULT_CONFIG when it is Kafka's, STATIC_BROKER_CONFIG when silt's
// flags set it (--default-retention, as server.properties would).
// Synonyms list the topic value (when set) then the broker default it
// falls back to, Kafka's precedence order.
func describeTopicConfigs(set map[string]string, names []string, defaults topicconfig.Defaults) []describedConfig {
	defs := topicconfig.All()
	if names != nil {
		defs = nil
		seen := make(map[string]bool, len(names))
		for _, n := range names {
			if d, ok := topicconfig.Lookup(n); ok && !seen[n] {
				seen[n] = true
				defs = append(defs, d)
			}
		}
	}
	out := make([]describedConfig, 0, len(defs))
	for _, d := range defs {
		def, source := defaults.Default(d.Name), kmsg.ConfigSourceDefaultConfig
		if def != d.Default {
			source = kmsg.ConfigSourceStaticBrokerConfig
		}
		c := describedConfig{name: d.Name, value: def, source: source, def: d}
		if v, ok := set[d.Name]; ok {
			c.value, c.source = v, kmsg.ConfigSourceDynamicTopicConfig
			c.synonyms = append(c.synonyms, describedSynonym{d.Name, v, kmsg.ConfigSourceDynamicTopicConfig})
		}
		c.synonyms = append(c.synonyms, describedSynonym{d.Synonym, def, source})
		out = append(out, c)
	}
	return out
}

// isListConfig reports whether APPEND and SUBTRACT apply to a config.
func isListConfig(name string) bool {
	d, _ := topicconfig.Lookup(name)
	return d.Type == kmsg.ConfigTypeList
}
