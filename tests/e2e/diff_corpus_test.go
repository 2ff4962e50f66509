package e2e

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The differential corpus. APIs being built elsewhere right now are left
// out for now (SASL and ACLs, KIP-848); add them here, with
// cases for their errors, when they land. Cases run in
// order and may change state (create, delete, commit), identically on
// both sides.

// commonVersions are the versions of key both sides support, ascending.
func commonVersions(k, s *diffSide, key int16) []int16 {
	kv, kok := k.versions[key]
	sv, sok := s.versions[key]
	if !kok || !sok {
		return nil
	}
	var vs []int16
	for v := max(kv[0], sv[0]); v <= min(kv[1], sv[1]); v++ {
		vs = append(vs, v)
	}
	return vs
}

// pick returns the versions of vs at the given positions (first, middle,
// last, ...), deduplicated: old and new encodings without every one.
func pick(vs []int16) []int16 {
	if len(vs) <= 3 {
		return vs
	}
	return []int16{vs[0], vs[len(vs)/2], vs[len(vs)-1]}
}

func from(vs []int16, minV int16) []int16 {
	var out []int16
	for _, v := range vs {
		if v >= minV {
			out = append(out, v)
		}
	}
	return out
}

func upTo(vs []int16, maxV int16) []int16 {
	var out []int16
	for _, v := range vs {
		if v <= maxV {
			out = append(out, v)
		}
	}
	return out
}

// req sets a request's version.
func req[R kmsg.Request](r R, v int16) R {
	r.SetVersion(v)
	return r
}

// Deliberate deviations, each also written in its handler's header
// comment and in the README's API section.
const (
	devNullRecords = "a partition with null records gets INVALID_RECORD, and the request's other partitions are written; " +
		"Kafka leaves the whole request unanswered until the client's timeout"
	devReplicationFactor = "silt has no replicas (durability is the object store's), so any replication factor is accepted " +
		"and reported as 1; Kafka answers INVALID_REPLICATION_FACTOR above its broker count"
	devAutoCreateReady = "a topic Metadata auto-creates is answered ready (creation is one metastore transaction); " +
		"Kafka answers that request with UNKNOWN_TOPIC_OR_PARTITION and the topic is usable on a later one"
	devFetchSessions = "no incremental fetch sessions: a request to open one is answered with session id 0 (KIP-227's no session), " +
		"every agent serves every partition and a session would pin a client to one"
	devUnknownAlterOp = "an unknown IncrementalAlterConfigs operation answers INVALID_REQUEST; " +
		"Kafka fails it with UNKNOWN_SERVER_ERROR from an exception in its handler"
)

func diffCorpus(k, s *diffSide, px string) []diffCase {
	var cs []diffCase
	add := func(c diffCase) { cs = append(cs, c) }

	// ApiVersions: every version's error code, and an unknown version.
	for _, v := range commonVersions(k, s, 18) {
		add(diffCase{name: fmt.Sprintf("ApiVersions v%d", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrApiVersionsRequest(), v)
			r.ClientSoftwareName, r.ClientSoftwareVersion = "silt-diff", "1.0"
			return r
		}})
	}
	add(diffCase{name: "ApiVersions v3 with an invalid client software name", build: func(e diffEnv, _ any) kmsg.Request {
		r := req(kmsg.NewPtrApiVersionsRequest(), 3)
		r.ClientSoftwareName, r.ClientSoftwareVersion = "bad name!", "1.0"
		return r
	}})

	metadataCases(k, s, px, add)
	produceCases(k, s, add)
	fetchCases(k, s, add)
	listOffsetsCases(k, s, add)
	groupCases(k, s, add)
	topicAdminCases(k, s, px, add)
	configCases(k, s, add)
	deleteRecordsCases(k, s, add)
	txnCases(k, s, px, add)
	return cs
}

func metadataTopics(names ...string) []kmsg.MetadataRequestTopic {
	var ts []kmsg.MetadataRequestTopic
	for _, n := range names {
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(n)
		ts = append(ts, t)
	}
	return ts
}

// compareMetadataTopics compares, by name, the topics the request named
// (other tests create topics on the shared brokers): error code, partition
// count and the internal flag, and that every partition has a leader.
func compareMetadataTopics(names func() []string) func(k, s kmsg.Response) []string {
	return func(k, s kmsg.Response) []string {
		summary := func(r kmsg.Response) map[string]string {
			m := map[string]string{}
			for _, t := range r.(*kmsg.MetadataResponse).Topics {
				name := ""
				if t.Topic != nil {
					name = *t.Topic
				}
				leaders := true
				for _, p := range t.Partitions {
					leaders = leaders && p.Leader >= 0 && p.ErrorCode == 0
				}
				m[name] = fmt.Sprintf("error %s, %d partitions, internal %v, leaders %v", show("ErrorCode", t.ErrorCode), len(t.Partitions), t.IsInternal, leaders)
			}
			return m
		}
		km, sm := summary(k), summary(s)
		var diffs []string
		for _, name := range names() {
			if km[name] != sm[name] {
				diffs = append(diffs, fmt.Sprintf("topic %s: kafka %q, silt %q", name, km[name], sm[name]))
			}
		}
		if len(diffs) == 0 && len(km) > 0 && len(sm) == 0 {
			diffs = append(diffs, "silt lists no topics")
		}
		return diffs
	}
}

func metadataCases(k, s *diffSide, px string, add func(diffCase)) {
	vs := commonVersions(k, s, 3)
	fixtures := func() []string { return []string{px + "-a", px + "-b", px + "-c", "__consumer_offsets"} }
	for _, v := range vs {
		add(diffCase{name: fmt.Sprintf("Metadata v%d all topics", v), compare: compareMetadataTopics(fixtures),
			build: func(e diffEnv, _ any) kmsg.Request {
				r := req(kmsg.NewPtrMetadataRequest(), v)
				if v > 0 {
					r.Topics = nil
				}
				return r
			}})
		add(diffCase{name: fmt.Sprintf("Metadata v%d fixture topics and __consumer_offsets", v), compare: compareMetadataTopics(fixtures),
			build: func(e diffEnv, _ any) kmsg.Request {
				r := req(kmsg.NewPtrMetadataRequest(), v)
				r.Topics = metadataTopics(e.topic("a"), e.topic("b"), e.topic("c"), "__consumer_offsets")
				return r
			}})
	}
	for _, v := range from(vs, 4) {
		add(diffCase{name: fmt.Sprintf("Metadata v%d unknown topic, no auto-creation", v),
			build: func(e diffEnv, _ any) kmsg.Request {
				r := req(kmsg.NewPtrMetadataRequest(), v)
				r.Topics = metadataTopics(e.topic("missing"))
				r.AllowAutoTopicCreation = false
				return r
			}})
	}
	for _, v := range pick(upTo(vs, 3)) {
		add(diffCase{name: fmt.Sprintf("Metadata v%d auto-creates an unknown topic", v), deviation: devAutoCreateReady,
			build: func(e diffEnv, _ any) kmsg.Request {
				r := req(kmsg.NewPtrMetadataRequest(), v)
				r.Topics = metadataTopics(e.topic(fmt.Sprintf("auto%d", v)))
				return r
			}})
	}
	for _, v := range pick(from(vs, 4)) {
		add(diffCase{name: fmt.Sprintf("Metadata v%d invalid topic name", v),
			build: func(e diffEnv, _ any) kmsg.Request {
				r := req(kmsg.NewPtrMetadataRequest(), v)
				r.Topics = metadataTopics("bad name!")
				r.AllowAutoTopicCreation = true
				return r
			}})
	}
	for _, v := range from(vs, 10) {
		add(diffCase{name: fmt.Sprintf("Metadata v%d unknown topic id", v),
			build: func(e diffEnv, _ any) kmsg.Request {
				r := req(kmsg.NewPtrMetadataRequest(), v)
				t := kmsg.NewMetadataRequestTopic()
				t.TopicID = [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
				r.Topics = []kmsg.MetadataRequestTopic{t}
				return r
			}})
		add(diffCase{name: fmt.Sprintf("Metadata v%d topic by id", v), fields: []string{"IsInternal", "Partition"},
			build: func(e diffEnv, _ any) kmsg.Request {
				r := req(kmsg.NewPtrMetadataRequest(), v)
				t := kmsg.NewMetadataRequestTopic()
				t.TopicID = e.id("a")
				r.Topics = []kmsg.MetadataRequestTopic{t}
				return r
			}})
	}
}

func produceTo(v int16, e diffEnv, topic string, partition int32, batch []byte) *kmsg.ProduceRequest {
	r := produceRequest(v, e.topic(topic), partition, batch)
	r.Topics[0].TopicID = e.id(topic)
	if v >= 13 {
		r.Topics[0].Topic = ""
	}
	return r
}

func rec(i int) diffRecord {
	return diffRecord{key: fmt.Sprintf("key%d", i), value: fmt.Sprintf("value%d", i), ts: diffBase + int64(i)}
}

func produceCases(k, s *diffSide, add func(diffCase)) {
	vs := commonVersions(k, s, 0)
	fields := []string{"BaseOffset", "LogStartOffset"}
	// Valid batches to b-0 at every version: the same base offsets.
	for i, v := range vs {
		add(diffCase{name: fmt.Sprintf("Produce v%d", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return produceTo(v, e, "b", 0, diffBatch(-1, -1, -1, rec(i), rec(i+1)))
		}})
	}
	for _, v := range pick(vs) {
		add(diffCase{name: fmt.Sprintf("Produce v%d unknown partition", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return produceTo(v, e, "b", 7, diffBatch(-1, -1, -1, rec(0)))
		}})
		add(diffCase{name: fmt.Sprintf("Produce v%d acks=2", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := produceTo(v, e, "b", 0, diffBatch(-1, -1, -1, rec(0)))
			r.Acks = 2
			return r
		}})
		add(diffCase{name: fmt.Sprintf("Produce v%d corrupt CRC", v), build: func(e diffEnv, _ any) kmsg.Request {
			b := diffBatch(-1, -1, -1, rec(0))
			b[len(b)-1] ^= 0xff
			return produceTo(v, e, "b", 0, b)
		}})
		add(diffCase{name: fmt.Sprintf("Produce v%d batch over max.message.bytes", v), build: func(e diffEnv, _ any) kmsg.Request {
			big := rec(0)
			big.value = strings.Repeat("x", 2000)
			return produceTo(v, e, "small", 0, diffBatch(-1, -1, -1, big))
		}})
		add(diffCase{name: fmt.Sprintf("Produce v%d keyless record to a compacted topic", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := rec(0)
			r.noKey = true
			return produceTo(v, e, "c", 0, diffBatch(-1, -1, -1, r))
		}})
		add(diffCase{name: fmt.Sprintf("Produce v%d keyed record to a compacted topic", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return produceTo(v, e, "c", 0, diffBatch(-1, -1, -1, rec(1)))
		}})
		add(diffCase{name: fmt.Sprintf("Produce v%d to __consumer_offsets", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := produceRequest(v, "__consumer_offsets", 0, diffBatch(-1, -1, -1, rec(0)))
			r.Topics[0].TopicID = e.side.topicIDs["__consumer_offsets"]
			return r
		}})
		add(diffCase{name: fmt.Sprintf("Produce v%d three bytes of records", v), build: func(e diffEnv, _ any) kmsg.Request {
			return produceTo(v, e, "b", 0, []byte{1, 2, 3})
		}})
		add(diffCase{name: fmt.Sprintf("Produce v%d truncated batch", v), build: func(e diffEnv, _ any) kmsg.Request {
			b := diffBatch(-1, -1, -1, rec(0), rec(1))
			return produceTo(v, e, "b", 0, b[:len(b)-5])
		}})
		add(diffCase{name: fmt.Sprintf("Produce v%d magic 1 batch", v), build: func(e diffEnv, _ any) kmsg.Request {
			b := diffBatch(-1, -1, -1, rec(0))
			b[16] = 1
			return produceTo(v, e, "b", 0, b)
		}})
		add(diffCase{name: fmt.Sprintf("Produce v%d two partitions, one unknown", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			r := produceTo(v, e, "a", 2, diffBatch(-1, -1, -1, rec(3)))
			p := kmsg.NewProduceRequestTopicPartition()
			p.Partition = 9
			p.Records = diffBatch(-1, -1, -1, rec(4))
			r.Topics[0].Partitions = append(r.Topics[0].Partitions, p)
			return r
		}})
	}
	// Kafka leaves this one unanswered until the request deadline: once.
	add(diffCase{name: fmt.Sprintf("Produce v%d null records", vs[len(vs)-1]), deviation: devNullRecords, build: func(e diffEnv, _ any) kmsg.Request {
		return produceTo(vs[len(vs)-1], e, "b", 0, nil)
	}})
	for _, v := range upTo(vs, 12) {
		add(diffCase{name: fmt.Sprintf("Produce v%d unknown topic", v), build: func(e diffEnv, _ any) kmsg.Request {
			return produceRequest(v, e.topic("missing"), 0, diffBatch(-1, -1, -1, rec(0)))
		}})
	}
	for _, v := range from(vs, 13) {
		add(diffCase{name: fmt.Sprintf("Produce v%d unknown topic id", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := produceRequest(v, "", 0, diffBatch(-1, -1, -1, rec(0)))
			r.Topics[0].TopicID = [16]byte{9, 9, 9}
			return r
		}})
	}
	// Idempotence: a producer id from InitProducerId, then in-order,
	// duplicate, gapped and stale-epoch batches.
	vs22 := commonVersions(k, s, 22)
	if len(vs22) > 0 {
		v := vs[len(vs)-1]
		initPID := func(e diffEnv) (any, error) {
			err := retryRetriable(func() (int16, error) {
				r, err := e.side.do(req(kmsg.NewPtrInitProducerIDRequest(), vs22[len(vs22)-1]))
				if err != nil {
					return 0, err
				}
				ir := r.(*kmsg.InitProducerIDResponse)
				e.side.pid, e.side.epoch = ir.ProducerID, ir.ProducerEpoch
				return ir.ErrorCode, nil
			})
			return nil, err
		}
		add(diffCase{name: "Idempotent produce sequence 0", prep: initPID, fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return produceTo(v, e, "grow", 0, diffBatch(e.side.pid, e.side.epoch, 0, rec(0), rec(1)))
		}})
		add(diffCase{name: "Idempotent produce sequence 2", fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return produceTo(v, e, "grow", 0, diffBatch(e.side.pid, e.side.epoch, 2, rec(2)))
		}})
		add(diffCase{name: "Idempotent produce duplicate of sequence 0", fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return produceTo(v, e, "grow", 0, diffBatch(e.side.pid, e.side.epoch, 0, rec(0), rec(1)))
		}})
		add(diffCase{name: "Idempotent produce sequence gap", build: func(e diffEnv, _ any) kmsg.Request {
			return produceTo(v, e, "grow", 0, diffBatch(e.side.pid, e.side.epoch, 9, rec(9)))
		}})
		add(diffCase{name: "Idempotent produce unknown producer id", build: func(e diffEnv, _ any) kmsg.Request {
			return produceTo(v, e, "grow", 0, diffBatch(e.side.pid+1000, 0, 5, rec(9)))
		}})
		add(diffCase{name: "Idempotent produce sequence 3 (continues)", fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return produceTo(v, e, "grow", 0, diffBatch(e.side.pid, e.side.epoch, 3, rec(3)))
		}})
		for _, iv := range vs22 {
			add(diffCase{name: fmt.Sprintf("InitProducerId v%d", iv), build: func(e diffEnv, _ any) kmsg.Request {
				return req(kmsg.NewPtrInitProducerIDRequest(), iv)
			}})
		}
	}
}

func fetchRequest(v int16, e diffEnv, topic string, partition int32, offset int64) *kmsg.FetchRequest {
	r := req(kmsg.NewPtrFetchRequest(), v)
	r.ReplicaID = -1
	r.MaxWaitMillis, r.MinBytes, r.MaxBytes = 0, 1, 1<<20
	r.SessionEpoch = -1
	t := kmsg.NewFetchRequestTopic()
	t.Topic = e.topic(topic)
	t.TopicID = e.id(topic)
	p := kmsg.NewFetchRequestTopicPartition()
	p.Partition, p.FetchOffset, p.PartitionMaxBytes = partition, offset, 1<<20
	p.CurrentLeaderEpoch, p.LastFetchedEpoch, p.LogStartOffset = -1, -1, -1
	t.Partitions = append(t.Partitions, p)
	r.Topics = append(r.Topics, t)
	return r
}

func fetchCases(k, s *diffSide, add func(diffCase)) {
	vs := commonVersions(k, s, 1)
	fields := []string{"HighWatermark", "LastStableOffset", "LogStartOffset"}
	for _, v := range vs {
		add(diffCase{name: fmt.Sprintf("Fetch v%d from offset 0", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return fetchRequest(v, e, "a", 0, 0)
		}})
		add(diffCase{name: fmt.Sprintf("Fetch v%d out of range", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return fetchRequest(v, e, "a", 0, 1000)
		}})
	}
	for _, v := range pick(vs) {
		add(diffCase{name: fmt.Sprintf("Fetch v%d at the high watermark", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return fetchRequest(v, e, "a", 1, 3)
		}})
		add(diffCase{name: fmt.Sprintf("Fetch v%d negative offset", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return fetchRequest(v, e, "a", 0, -5)
		}})
		add(diffCase{name: fmt.Sprintf("Fetch v%d unknown partition", v), build: func(e diffEnv, _ any) kmsg.Request {
			return fetchRequest(v, e, "a", 8, 0)
		}})
		add(diffCase{name: fmt.Sprintf("Fetch v%d read_committed", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			r := fetchRequest(v, e, "a", 0, 4)
			r.IsolationLevel = 1
			return r
		}})
	}
	for _, v := range upTo(vs, 12) {
		add(diffCase{name: fmt.Sprintf("Fetch v%d unknown topic", v), build: func(e diffEnv, _ any) kmsg.Request {
			return fetchRequest(v, e, "missing", 0, 0)
		}})
	}
	for _, v := range from(vs, 13) {
		add(diffCase{name: fmt.Sprintf("Fetch v%d unknown topic id", v), build: func(e diffEnv, _ any) kmsg.Request {
			r := fetchRequest(v, e, "a", 0, 0)
			r.Topics[0].TopicID = [16]byte{7, 7, 7}
			return r
		}})
	}
	for _, v := range pick(from(vs, 7)) {
		add(diffCase{name: fmt.Sprintf("Fetch v%d opening a fetch session", v), deviation: devFetchSessions,
			compare: func(k, s kmsg.Response) []string {
				kid, sid := k.(*kmsg.FetchResponse).SessionID, s.(*kmsg.FetchResponse).SessionID
				if (kid != 0) != (sid != 0) {
					return []string{fmt.Sprintf("session id: kafka %d, silt %d", kid, sid)}
				}
				return compareFields(k, s, []string{"ErrorCode"})
			},
			build: func(e diffEnv, _ any) kmsg.Request {
				r := fetchRequest(v, e, "a", 0, 0)
				r.SessionEpoch = 0 // asks for a new session
				return r
			}})
	}
	// OffsetForLeaderEpoch.
	for _, v := range commonVersions(k, s, 23) {
		add(diffCase{name: fmt.Sprintf("OffsetForLeaderEpoch v%d epoch 0", v), fields: []string{"EndOffset", "LeaderEpoch"}, build: func(e diffEnv, _ any) kmsg.Request {
			r := req(kmsg.NewPtrOffsetForLeaderEpochRequest(), v)
			r.ReplicaID = -1
			t := kmsg.NewOffsetForLeaderEpochRequestTopic()
			t.Topic = e.topic("a")
			for _, p := range []int32{0, 5} {
				pp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
				pp.Partition, pp.CurrentLeaderEpoch, pp.LeaderEpoch = p, -1, 0
				t.Partitions = append(t.Partitions, pp)
			}
			r.Topics = append(r.Topics, t)
			return r
		}})
	}
}

func listOffsets(v int16, e diffEnv, topic string, partition int32, ts int64) *kmsg.ListOffsetsRequest {
	r := req(kmsg.NewPtrListOffsetsRequest(), v)
	r.ReplicaID = -1
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic = e.topic(topic)
	p := kmsg.NewListOffsetsRequestTopicPartition()
	p.Partition, p.Timestamp, p.CurrentLeaderEpoch, p.MaxNumOffsets = partition, ts, -1, 1
	t.Partitions = append(t.Partitions, p)
	r.Topics = append(r.Topics, t)
	return r
}

func listOffsetsCases(k, s *diffSide, add func(diffCase)) {
	vs := commonVersions(k, s, 2)
	fields := []string{"Offset", "Timestamp", "OldStyleOffsets"}
	for _, v := range vs {
		for _, c := range []struct {
			what string
			ts   int64
		}{
			{"latest", -1},
			{"earliest", -2},
			{"by timestamp", diffBase + 2500},
			{"by the first timestamp", diffBase},
			{"by a timestamp after every record", diffBase + 200_000},
		} {
			add(diffCase{name: fmt.Sprintf("ListOffsets v%d %s", v, c.what), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
				return listOffsets(v, e, "a", 0, c.ts)
			}})
		}
	}
	for _, v := range from(vs, 7) {
		add(diffCase{name: fmt.Sprintf("ListOffsets v%d max timestamp", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return listOffsets(v, e, "a", 0, -3)
		}})
	}
	for _, v := range from(vs, 8) {
		add(diffCase{name: fmt.Sprintf("ListOffsets v%d earliest local", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return listOffsets(v, e, "a", 0, -4)
		}})
	}
	for _, v := range pick(vs) {
		add(diffCase{name: fmt.Sprintf("ListOffsets v%d unknown partition", v), build: func(e diffEnv, _ any) kmsg.Request {
			return listOffsets(v, e, "a", 11, -1)
		}})
		add(diffCase{name: fmt.Sprintf("ListOffsets v%d unknown topic", v), build: func(e diffEnv, _ any) kmsg.Request {
			return listOffsets(v, e, "missing", 0, -1)
		}})
		add(diffCase{name: fmt.Sprintf("ListOffsets v%d empty partition by timestamp", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			return listOffsets(v, e, "del2", 0, diffBase)
		}})
		add(diffCase{name: fmt.Sprintf("ListOffsets v%d read_committed latest", v), fields: fields, build: func(e diffEnv, _ any) kmsg.Request {
			r := listOffsets(v, e, "a", 1, -1)
			r.IsolationLevel = 1
			return r
		}})
	}
}
