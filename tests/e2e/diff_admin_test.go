package e2e

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

type topicSpec struct {
	name              string
	partitions        int32
	replicationFactor int16
	configs           map[string]string
	assignment        map[int32][]int32
}

func createTopics(v int16, validateOnly bool, specs ...topicSpec) *kmsg.CreateTopicsRequest {
	r := req(kmsg.NewPtrCreateTopicsRequest(), v)
	r.TimeoutMillis = 30000
	r.ValidateOnly = validateOnly
	for _, sp := range specs {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = sp.name, sp.partitions, sp.replicationFactor
		for k, v := range sp.configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name = k
			if v != "<null>" {
				c.Value = kmsg.StringPtr(v)
			}
			t.Configs = append(t.Configs, c)
		}
		for p, rs := range sp.assignment {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = p, rs
			t.ReplicaAssignment = append(t.ReplicaAssignment, a)
		}
		r.Topics = append(r.Topics, t)
	}
	return r
}

func topicAdminCases(k, s *diffSide, px string, add func(diffCase)) {
	ctv := commonVersions(k, s, 19)
	fields := []string{"NumPartitions", "ReplicationFactor"}
	for _, v := range ctv {
		add(diffCase{name: fmt.Sprintf("CreateTopics v%d", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return createTopics(v, false, topicSpec{name: e.topic(fmt.Sprintf("new%d", v)), partitions: 2, replicationFactor: 1})
		}})
		add(diffCase{name: fmt.Sprintf("CreateTopics v%d existing topic", v), build: func(e diffEnv, _ any) kmsg.Request {
			return createTopics(v, false, topicSpec{name: e.topic("a"), partitions: 1, replicationFactor: 1})
		}})
	}
	for _, v := range from(ctv, 4) {
		add(diffCase{name: fmt.Sprintf("CreateTopics v%d default partitions and replication", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return createTopics(v, false, topicSpec{name: e.topic(fmt.Sprintf("defaults%d", v)), partitions: -1, replicationFactor: -1})
		}})
	}
	for _, v := range pick(ctv) {
		for _, c := range []struct {
			what string
			spec func(e diffEnv) topicSpec
		}{
			{"0 partitions", func(e diffEnv) topicSpec { return topicSpec{name: e.topic("p0"), partitions: 0, replicationFactor: 1} }},
			{"-5 partitions", func(e diffEnv) topicSpec {
				return topicSpec{name: e.topic("pneg"), partitions: -5, replicationFactor: 1}
			}},
			{"replication factor 0", func(e diffEnv) topicSpec { return topicSpec{name: e.topic("rf0"), partitions: 1, replicationFactor: 0} }},

			{"invalid name", func(e diffEnv) topicSpec { return topicSpec{name: "bad name!", partitions: 1, replicationFactor: 1} }},
			{"name '.'", func(e diffEnv) topicSpec { return topicSpec{name: ".", partitions: 1, replicationFactor: 1} }},
			{"name of 250 characters", func(e diffEnv) topicSpec {
				return topicSpec{name: strings.Repeat("x", 250), partitions: 1, replicationFactor: 1}
			}},
			{"empty name", func(e diffEnv) topicSpec { return topicSpec{name: "", partitions: 1, replicationFactor: 1} }},
			{"bad retention.ms", func(e diffEnv) topicSpec {
				return topicSpec{name: e.topic("badcfg"), partitions: 1, replicationFactor: 1, configs: map[string]string{"retention.ms": "soon"}}
			}},
			{"unknown config", func(e diffEnv) topicSpec {
				return topicSpec{name: e.topic("unkcfg"), partitions: 1, replicationFactor: 1, configs: map[string]string{"no.such.config": "1"}}
			}},
			{"bad cleanup.policy", func(e diffEnv) topicSpec {
				return topicSpec{name: e.topic("badpolicy"), partitions: 1, replicationFactor: 1, configs: map[string]string{"cleanup.policy": "shred"}}
			}},
			{"null config value", func(e diffEnv) topicSpec {
				return topicSpec{name: e.topic(fmt.Sprintf("nullcfg%d", v)), partitions: 1, replicationFactor: 1, configs: map[string]string{"retention.ms": "<null>"}}
			}},
			{"max.message.bytes negative", func(e diffEnv) topicSpec {
				return topicSpec{name: e.topic("negmax"), partitions: 1, replicationFactor: 1, configs: map[string]string{"max.message.bytes": "-1"}}
			}},
			{"partitions and a replica assignment", func(e diffEnv) topicSpec {
				return topicSpec{name: e.topic("assign"), partitions: 1, replicationFactor: 1, assignment: map[int32][]int32{0: {e.side.nodeID}}}
			}},
		} {
			add(diffCase{name: fmt.Sprintf("CreateTopics v%d %s", v, c.what), build: func(e diffEnv, _ any) kmsg.Request {
				return createTopics(v, false, c.spec(e))
			}})
		}
		add(diffCase{name: fmt.Sprintf("CreateTopics v%d replication factor 3 on one broker", v), deviation: devReplicationFactor,
			build: func(e diffEnv, _ any) kmsg.Request {
				return createTopics(v, false, topicSpec{name: e.topic(fmt.Sprintf("rf3v%d", v)), partitions: 1, replicationFactor: 3})
			}})
		add(diffCase{name: fmt.Sprintf("CreateTopics v%d validate only", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return createTopics(v, true, topicSpec{name: e.topic("validated"), partitions: 4, replicationFactor: 1})
		}})
		add(diffCase{name: fmt.Sprintf("CreateTopics v%d the same name twice", v), build: func(e diffEnv, _ any) kmsg.Request {
			sp := topicSpec{name: e.topic(fmt.Sprintf("twice%d", v)), partitions: 1, replicationFactor: 1}
			return createTopics(v, false, sp, sp)
		}})
		add(diffCase{name: fmt.Sprintf("CreateTopics v%d __consumer_offsets", v), build: func(e diffEnv, _ any) kmsg.Request {
			return createTopics(v, false, topicSpec{name: "__consumer_offsets", partitions: 1, replicationFactor: 1})
		}})
	}
	// The validated-only topic must not exist.
	add(diffCase{name: "Metadata after a validate-only CreateTopics", build: func(e diffEnv, _ any) kmsg.Request {
		r := req(kmsg.NewPtrMetadataRequest(), 12)
		r.Topics = metadataTopics(e.topic("validated"))
		return r
	}})

	// CreatePartitions.
	for _, v := range commonVersions(k, s, 37) {
		cp := func(e diffEnv, topic string, count int32, validateOnly bool) kmsg.Request {
			r := req(kmsg.NewPtrCreatePartitionsRequest(), v)
			r.TimeoutMillis, r.ValidateOnly = 30000, validateOnly
			t := kmsg.NewCreatePartitionsRequestTopic()
			t.Topic, t.Count = topic, count
			r.Topics = append(r.Topics, t)
			return r
		}
		add(diffCase{name: fmt.Sprintf("CreatePartitions v%d grow by one", v), build: func(e diffEnv, _ any) kmsg.Request {
			return cp(e, e.topic("grow"), int32(2+v), false)
		}})
		add(diffCase{name: fmt.Sprintf("CreatePartitions v%d same count", v), build: func(e diffEnv, _ any) kmsg.Request {
			return cp(e, e.topic("grow"), int32(2+v), false)
		}})
		add(diffCase{name: fmt.Sprintf("CreatePartitions v%d shrink", v), build: func(e diffEnv, _ any) kmsg.Request {
			return cp(e, e.topic("grow"), 1, false)
		}})
		add(diffCase{name: fmt.Sprintf("CreatePartitions v%d unknown topic", v), build: func(e diffEnv, _ any) kmsg.Request {
			return cp(e, e.topic("missing"), 3, false)
		}})
		add(diffCase{name: fmt.Sprintf("CreatePartitions v%d validate only", v), build: func(e diffEnv, _ any) kmsg.Request {
			return cp(e, e.topic("grow"), 40, true)
		}})
	}
	add(diffCase{name: "Metadata after CreatePartitions", settle: true, compare: compareMetadataTopics(func() []string { return []string{px + "-grow"} }),
		build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrMetadataRequest(), 12)
			r.Topics = metadataTopics(e.topic("grow"))
			return r
		}})

	// DeleteTopics.
	dtv := commonVersions(k, s, 20)
	deleteTopics := func(v int16, names ...string) *kmsg.DeleteTopicsRequest {
		r := req(kmsg.NewPtrDeleteTopicsRequest(), v)
		r.TimeoutMillis = 30000
		r.TopicNames = names
		for _, n := range names {
			t := kmsg.NewDeleteTopicsRequestTopic()
			t.Topic = kmsg.StringPtr(n)
			r.Topics = append(r.Topics, t)
		}
		return r
	}
	for _, v := range dtv {
		add(diffCase{name: fmt.Sprintf("DeleteTopics v%d", v), build: func(e diffEnv, _ any) kmsg.Request {
			return deleteTopics(v, e.topic(fmt.Sprintf("new%d", max(v, ctv[0]))))
		}})
		add(diffCase{name: fmt.Sprintf("DeleteTopics v%d unknown topic", v), build: func(e diffEnv, _ any) kmsg.Request {
			return deleteTopics(v, e.topic("missing"))
		}})
	}
	for _, v := range from(dtv, 6) {
		add(diffCase{name: fmt.Sprintf("DeleteTopics v%d by id", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrDeleteTopicsRequest(), v)
			t := kmsg.NewDeleteTopicsRequestTopic()
			t.TopicID = e.id("del")
			r.Topics = append(r.Topics, t)
			return r
		}})
		add(diffCase{name: fmt.Sprintf("DeleteTopics v%d unknown id", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrDeleteTopicsRequest(), v)
			t := kmsg.NewDeleteTopicsRequestTopic()
			t.TopicID = [16]byte{4, 4, 4}
			r.Topics = append(r.Topics, t)
			return r
		}})
	}
	add(diffCase{name: "Metadata after DeleteTopics", settle: true, build: func(e diffEnv, _ any) kmsg.Request {
		r := req(kmsg.NewPtrMetadataRequest(), 12)
		r.Topics = metadataTopics(e.topic(fmt.Sprintf("new%d", ctv[len(ctv)-1])))
		return r
	}})

	// DescribeCluster.
	for _, v := range commonVersions(k, s, 60) {
		add(diffCase{name: fmt.Sprintf("DescribeCluster v%d", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrDescribeClusterRequest(), v)
			r.EndpointType = 1
			return r
		}})
	}
}

func configResource(typ kmsg.ConfigResourceType, name string, keys ...string) kmsg.DescribeConfigsRequestResource {
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName = typ, name
	r.ConfigNames = keys
	return r
}

// compareConfigs compares error codes and the named configs' values,
// read-only flags and sources.
func compareConfigs(keys ...string) func(k, s kmsg.Response) []string {
	return func(k, s kmsg.Response) []string {
		diffs := compareFields(k, s, []string{"ErrorCode"})
		summary := func(r kmsg.Response) map[string]string {
			m := map[string]string{}
			for _, res := range r.(*kmsg.DescribeConfigsResponse).Resources {
				for _, c := range res.Configs {
					m[c.Name] = fmt.Sprintf("%s (source %d, read-only %v, sensitive %v)", show("", c.Value), c.Source, c.ReadOnly, c.IsSensitive)
				}
			}
			return m
		}
		km, sm := summary(k), summary(s)
		for _, key := range keys {
			if km[key] != sm[key] {
				diffs = append(diffs, fmt.Sprintf("%s: kafka %q, silt %q", key, km[key], sm[key]))
			}
		}
		return diffs
	}
}

func configCases(k, s *diffSide, add func(diffCase)) {
	dcv := commonVersions(k, s, 32)
	keys := []string{"retention.ms", "cleanup.policy", "max.message.bytes", "retention.bytes", "message.timestamp.type", "compression.type", "segment.bytes"}
	for _, v := range dcv {
		add(diffCase{name: fmt.Sprintf("DescribeConfigs v%d topic, named keys", v), compare: compareConfigs(keys...), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrDescribeConfigsRequest(), v)
			r.Resources = append(r.Resources, configResource(kmsg.ConfigResourceTypeTopic, e.topic("cfg"), keys...))
			return r
		}})
		add(diffCase{name: fmt.Sprintf("DescribeConfigs v%d unknown topic", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrDescribeConfigsRequest(), v)
			r.Resources = append(r.Resources, configResource(kmsg.ConfigResourceTypeTopic, e.topic("missing")))
			return r
		}})
	}
	for _, v := range pick(dcv) {
		add(diffCase{name: fmt.Sprintf("DescribeConfigs v%d all configs of a compacted topic", v), compare: compareConfigs(keys...), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrDescribeConfigsRequest(), v)
			r.Resources = append(r.Resources, configResource(kmsg.ConfigResourceTypeTopic, e.topic("c")))
			return r
		}})
		add(diffCase{name: fmt.Sprintf("DescribeConfigs v%d broker", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrDescribeConfigsRequest(), v)
			r.Resources = append(r.Resources, configResource(kmsg.ConfigResourceTypeBroker, fmt.Sprint(e.side.nodeID), "log.retention.hours"))
			return r
		}})
		add(diffCase{name: fmt.Sprintf("DescribeConfigs v%d invalid broker id", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrDescribeConfigsRequest(), v)
			r.Resources = append(r.Resources, configResource(kmsg.ConfigResourceTypeBroker, "not-a-number"))
			return r
		}})
		add(diffCase{name: fmt.Sprintf("DescribeConfigs v%d empty topic name", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrDescribeConfigsRequest(), v)
			r.Resources = append(r.Resources, configResource(kmsg.ConfigResourceTypeTopic, ""))
			return r
		}})
	}

	alter := func(v int16, validateOnly bool, topic string, kv ...string) *kmsg.AlterConfigsRequest {
		r := req(kmsg.NewPtrAlterConfigsRequest(), v)
		r.ValidateOnly = validateOnly
		res := kmsg.NewAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		for i := 0; i+1 < len(kv); i += 2 {
			c := kmsg.NewAlterConfigsRequestResourceConfig()
			c.Name, c.Value = kv[i], kmsg.StringPtr(kv[i+1])
			res.Configs = append(res.Configs, c)
		}
		r.Resources = append(r.Resources, res)
		return r
	}
	for _, v := range commonVersions(k, s, 33) {
		add(diffCase{name: fmt.Sprintf("AlterConfigs v%d", v), build: func(e diffEnv, _ any) kmsg.Request {
			return alter(v, false, e.topic("cfg"), "retention.ms", fmt.Sprint(7200000+int(v)))
		}})
		add(diffCase{name: fmt.Sprintf("AlterConfigs v%d bad value", v), build: func(e diffEnv, _ any) kmsg.Request {
			return alter(v, false, e.topic("cfg"), "retention.ms", "later")
		}})
		add(diffCase{name: fmt.Sprintf("AlterConfigs v%d unknown key", v), build: func(e diffEnv, _ any) kmsg.Request {
			return alter(v, false, e.topic("cfg"), "no.such.key", "1")
		}})
		add(diffCase{name: fmt.Sprintf("AlterConfigs v%d unknown topic", v), build: func(e diffEnv, _ any) kmsg.Request {
			return alter(v, false, e.topic("missing"), "retention.ms", "1000")
		}})
		add(diffCase{name: fmt.Sprintf("AlterConfigs v%d validate only", v), build: func(e diffEnv, _ any) kmsg.Request {
			return alter(v, true, e.topic("cfg"), "retention.ms", "1")
		}})
	}
	add(diffCase{name: "DescribeConfigs after AlterConfigs", settle: true, compare: compareConfigs(keys...), build: func(e diffEnv, _ any) kmsg.Request {
		r := req(kmsg.NewPtrDescribeConfigsRequest(), dcv[len(dcv)-1])
		r.Resources = append(r.Resources, configResource(kmsg.ConfigResourceTypeTopic, e.topic("cfg"), keys...))
		return r
	}})

	incr := func(v int16, topic string, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) *kmsg.IncrementalAlterConfigsRequest {
		r := req(kmsg.NewPtrIncrementalAlterConfigsRequest(), v)
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		res.Configs = ops
		r.Resources = append(r.Resources, res)
		return r
	}
	op := func(name string, o kmsg.IncrementalAlterConfigOp, value string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op = name, o
		if value != "<null>" {
			c.Value = kmsg.StringPtr(value)
		}
		return c
	}
	for _, v := range commonVersions(k, s, 44) {
		for _, c := range []struct {
			what string
			ops  []kmsg.IncrementalAlterConfigsRequestResourceConfig
		}{
			{"set", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op("retention.ms", kmsg.IncrementalAlterConfigOpSet, "5400000")}},
			{"delete", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op("retention.ms", kmsg.IncrementalAlterConfigOpDelete, "<null>")}},
			{"append to cleanup.policy", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op("cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, "compact")}},
			{"subtract from cleanup.policy", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op("cleanup.policy", kmsg.IncrementalAlterConfigOpSubtract, "compact")}},
			{"append to a non-list config", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op("retention.ms", kmsg.IncrementalAlterConfigOpAppend, "5")}},
			{"bad value", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op("max.message.bytes", kmsg.IncrementalAlterConfigOpSet, "big")}},
			{"unknown op", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op("retention.ms", kmsg.IncrementalAlterConfigOp(9), "5")}},
			{"unknown key", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op("no.such.key", kmsg.IncrementalAlterConfigOpSet, "5")}},
			{"the same key twice", []kmsg.IncrementalAlterConfigsRequestResourceConfig{
				op("retention.ms", kmsg.IncrementalAlterConfigOpSet, "1000"), op("retention.ms", kmsg.IncrementalAlterConfigOpSet, "2000")}},
		} {
			dev := ""
			if c.what == "unknown op" {
				dev = devUnknownAlterOp
			}
			add(diffCase{name: fmt.Sprintf("IncrementalAlterConfigs v%d %s", v, c.what), deviation: dev, build: func(e diffEnv, _ any) kmsg.Request {
				return incr(v, e.topic("cfg"), c.ops...)
			}})
		}
		add(diffCase{name: fmt.Sprintf("IncrementalAlterConfigs v%d unknown topic", v), build: func(e diffEnv, _ any) kmsg.Request {
			return incr(v, e.topic("missing"), op("retention.ms", kmsg.IncrementalAlterConfigOpSet, "1000"))
		}})
		add(diffCase{name: fmt.Sprintf("DescribeConfigs after IncrementalAlterConfigs v%d", v), settle: true, compare: compareConfigs(keys...), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrDescribeConfigsRequest(), dcv[len(dcv)-1])
			r.Resources = append(r.Resources, configResource(kmsg.ConfigResourceTypeTopic, e.topic("cfg"), keys...))
			return r
		}})
	}
}

func deleteRecords(v int16, topic string, partition int32, offset int64) *kmsg.DeleteRecordsRequest {
	r := req(kmsg.NewPtrDeleteRecordsRequest(), v)
	r.TimeoutMillis = 30000
	t := kmsg.NewDeleteRecordsRequestTopic()
	t.Topic = topic
	p := kmsg.NewDeleteRecordsRequestTopicPartition()
	p.Partition, p.Offset = partition, offset
	t.Partitions = append(t.Partitions, p)
	r.Topics = append(r.Topics, t)
	return r
}

// deleteRecordsCases run last: they move b-0's log start, which the
// produce cases filled.
func deleteRecordsCases(k, s *diffSide, add func(diffCase)) {
	vs := commonVersions(k, s, 21)
	fields := []string{"LowWatermark"}
	for i, v := range vs {
		add(diffCase{name: fmt.Sprintf("DeleteRecords v%d up to offset %d", v, 2*(i+1)), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return deleteRecords(v, e.topic("b"), 0, int64(2*(i+1)))
		}})
		add(diffCase{name: fmt.Sprintf("DeleteRecords v%d below the log start", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return deleteRecords(v, e.topic("b"), 0, 1)
		}})
		add(diffCase{name: fmt.Sprintf("DeleteRecords v%d beyond the high watermark", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return deleteRecords(v, e.topic("b"), 0, 100_000)
		}})
		add(diffCase{name: fmt.Sprintf("DeleteRecords v%d offset -7", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return deleteRecords(v, e.topic("b"), 0, -7)
		}})
		add(diffCase{name: fmt.Sprintf("DeleteRecords v%d unknown partition", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return deleteRecords(v, e.topic("b"), 4, 0)
		}})
		add(diffCase{name: fmt.Sprintf("DeleteRecords v%d unknown topic", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return deleteRecords(v, e.topic("missing"), 0, 0)
		}})
		add(diffCase{name: fmt.Sprintf("DeleteRecords v%d compacted topic", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return deleteRecords(v, e.topic("c"), 0, 1)
		}})
	}
	lv := commonVersions(k, s, 2)
	add(diffCase{name: "ListOffsets earliest after DeleteRecords", fields: []string{"Offset", "Timestamp"}, build: func(e diffEnv, _ any) kmsg.Request {
		return listOffsets(lv[len(lv)-1], e, "b", 0, -2)
	}})
	fv := commonVersions(k, s, 1)
	add(diffCase{name: "Fetch below the log start after DeleteRecords", fields: []string{"HighWatermark", "LogStartOffset"}, build: func(e diffEnv, _ any) kmsg.Request {
		return fetchRequest(fv[len(fv)-1], e, "b", 0, 0)
	}})
	dv := vs[len(vs)-1]
	add(diffCase{name: fmt.Sprintf("DeleteRecords v%d up to the high watermark (-1)", dv), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
		return deleteRecords(dv, e.topic("b"), 0, -1)
	}})
	add(diffCase{name: "ListOffsets earliest after DeleteRecords to the end", fields: []string{"Offset"}, build: func(e diffEnv, _ any) kmsg.Request {
		return listOffsets(lv[len(lv)-1], e, "b", 0, -2)
	}})
	add(diffCase{name: "ListOffsets the same partition twice", fields: []string{"Offset"}, build: func(e diffEnv, _ any) kmsg.Request {
		r := listOffsets(lv[len(lv)-1], e, "b", 0, -2)
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Partition, p.Timestamp, p.CurrentLeaderEpoch = 0, -1, -1
		r.Topics[0].Partitions = append(r.Topics[0].Partitions, p)
		return r
	}})
}
