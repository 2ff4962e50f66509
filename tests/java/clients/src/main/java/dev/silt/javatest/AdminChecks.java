package dev.silt.javatest;

import static dev.silt.javatest.Env.check;
import static dev.silt.javatest.Env.equal;

import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.InvalidReplicationFactorException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/** Admin client checks. */
final class AdminChecks {
    private AdminChecks() {}

    static <T> T get(KafkaFuture<T> f) throws Exception {
        return f.get(60, TimeUnit.SECONDS);
    }

    /** The exception a failed future failed with. */
    static Throwable failure(KafkaFuture<?> f) throws Exception {
        try {
            f.get(60, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            return e.getCause();
        }
        throw new AssertionError("the request succeeded; want an error");
    }

    static void expect(Class<? extends Throwable> want, KafkaFuture<?> f, String what) throws Exception {
        Throwable got = failure(f);
        check(want.isInstance(got), "%s: got %s, want %s", what, Main.oneLine(got), want.getSimpleName());
    }

    /**
     * Create (with configs), list, describe, add partitions to and delete
     * topics, and the errors for a duplicate, bad arguments and an unknown
     * topic.
     */
    static void topics(Env env) throws Exception {
        String topic = env.name("admin-topic");
        get(env.admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1)
            .configs(Map.of("retention.ms", "12345678", "cleanup.policy", "delete")))).all());
        Set<String> names = get(env.admin.listTopics().names());
        Env.contains(names, topic, "listTopics");
        check(!names.contains("__consumer_offsets"), "listTopics without listInternal shows __consumer_offsets");
        Set<String> internal = get(env.admin.listTopics(new ListTopicsOptions().listInternal(true)).names());
        Env.contains(internal, "__consumer_offsets", "listTopics(listInternal)");

        TopicDescription d = get(env.admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
        equal(3, d.partitions().size(), "partitions described");
        check(!d.isInternal(), "%s described as internal", topic);
        check(d.topicId() != null, "no topic id");
        d.partitions().forEach(p -> check(p.leader() != null, "partition %d has no leader", p.partition()));

        expect(TopicExistsException.class, env.admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all(), "creating it again");
        expect(InvalidConfigurationException.class, env.admin.createTopics(List.of(new NewTopic(env.name("bad-config"), 1, (short) 1)
            .configs(Map.of("retention.ms", "soon")))).all(), "a bad config value");
        expect(org.apache.kafka.common.errors.InvalidPartitionsException.class,
            env.admin.createTopics(List.of(new NewTopic(env.name("zero"), 0, (short) 1))).all(), "0 partitions");
        expect(InvalidReplicationFactorException.class,
            env.admin.createTopics(List.of(new NewTopic(env.name("rf"), 1, (short) 0))).all(), "replication factor 0");

        get(env.admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all());
        d = get(env.admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
        equal(5, d.partitions().size(), "partitions after createPartitions(5)");
        expect(InvalidPartitionsException.class, env.admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(2))).all(), "shrinking to 2");

        get(env.admin.deleteTopics(List.of(topic)).all());
        Env.eventually("the deleted topic to leave listTopics", () -> !get(env.admin.listTopics().names()).contains(topic));
        expect(UnknownTopicOrPartitionException.class, env.admin.deleteTopics(List.of(topic)).all(), "deleting it again");
        expect(UnknownTopicOrPartitionException.class, env.admin.describeTopics(List.of(topic)).allTopicNames(), "describing it");
    }

    /** describeConfigs, incrementalAlterConfigs (set, delete) and the errors. */
    static void configs(Env env) throws Exception {
        String topic = env.name("admin-configs");
        get(env.admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1).configs(Map.of("retention.ms", "3600000")))).all());
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config c = get(env.admin.describeConfigs(List.of(r)).all()).get(r);
        ConfigEntry e = c.get("retention.ms");
        equal("3600000", e.value(), "retention.ms");
        equal(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, e.source(), "source of retention.ms");
        check(c.get("cleanup.policy") != null, "cleanup.policy not described");
        equal("delete", c.get("cleanup.policy").value(), "default cleanup.policy");

        get(env.admin.incrementalAlterConfigs(Map.of(r, List.of(
            new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
            new AlterConfigOp(new ConfigEntry("max.message.bytes", "2000000"), AlterConfigOp.OpType.SET)))).all());
        c = get(env.admin.describeConfigs(List.of(r)).all()).get(r);
        equal("7200000", c.get("retention.ms").value(), "retention.ms after SET");
        equal("2000000", c.get("max.message.bytes").value(), "max.message.bytes after SET");

        get(env.admin.incrementalAlterConfigs(Map.of(r, List.of(
            new AlterConfigOp(new ConfigEntry("retention.ms", null), AlterConfigOp.OpType.DELETE)))).all());
        c = get(env.admin.describeConfigs(List.of(r)).all()).get(r);
        check(c.get("retention.ms").source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG,
            "retention.ms still a topic config after DELETE: %s", c.get("retention.ms"));

        expect(InvalidConfigurationException.class, env.admin.incrementalAlterConfigs(Map.of(r, List.of(
            new AlterConfigOp(new ConfigEntry("retention.ms", "never"), AlterConfigOp.OpType.SET)))).all(), "a bad value");
        ConfigResource missing = new ConfigResource(ConfigResource.Type.TOPIC, env.name("no-such-topic"));
        expect(UnknownTopicOrPartitionException.class, env.admin.describeConfigs(List.of(missing)).all(), "describing an unknown topic");

        ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER,
            Integer.toString(get(env.admin.describeCluster().nodes()).iterator().next().id()));
        Config bc = get(env.admin.describeConfigs(List.of(broker)).all()).get(broker);
        check(!bc.entries().isEmpty(), "no broker configs described");
    }

    /** listOffsets: earliest, latest, by timestamp, max timestamp. */
    static void listOffsets(Env env) throws Exception {
        String topic = env.name("admin-offsets");
        env.createTopic(topic, 2);
        TopicPartition tp = new TopicPartition(topic, 0);
        long base = (System.currentTimeMillis() / 1000 - 7200) * 1000;
        try (KafkaProducer<String, String> pr = env.producer(env.producerProps())) {
            for (int i = 0; i < 10; i++) {
                // Timestamps rise except record 7, the partition's maximum.
                long ts = i == 7 ? base + 100_000 : base + i * 1000L;
                pr.send(new ProducerRecord<>(topic, 0, ts, "k", "v" + i));
            }
            pr.flush();
        }
        TopicPartition empty = new TopicPartition(topic, 1);
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> m;
        m = get(env.admin.listOffsets(Map.of(tp, OffsetSpec.earliest(), empty, OffsetSpec.earliest())).all());
        equal(0L, m.get(tp).offset(), "earliest");
        equal(0L, m.get(empty).offset(), "earliest of an empty partition");
        m = get(env.admin.listOffsets(Map.of(tp, OffsetSpec.latest(), empty, OffsetSpec.latest())).all());
        equal(10L, m.get(tp).offset(), "latest");
        equal(0L, m.get(empty).offset(), "latest of an empty partition");
        m = get(env.admin.listOffsets(Map.of(tp, OffsetSpec.forTimestamp(base + 2500))).all());
        equal(3L, m.get(tp).offset(), "forTimestamp(base+2.5s)");
        equal(base + 3000, m.get(tp).timestamp(), "timestamp of forTimestamp(base+2.5s)");
        m = get(env.admin.listOffsets(Map.of(tp, OffsetSpec.forTimestamp(base + 200_000))).all());
        equal(-1L, m.get(tp).offset(), "forTimestamp after every record");
        m = get(env.admin.listOffsets(Map.of(tp, OffsetSpec.maxTimestamp())).all());
        equal(7L, m.get(tp).offset(), "maxTimestamp offset");
        equal(base + 100_000, m.get(tp).timestamp(), "maxTimestamp");
    }

    /**
     * Groups: list, describe, list offsets, alter and reset (to earliest,
     * as kafka-consumer-groups --reset-offsets does through Admin), delete
     * offsets, delete the group, and the errors for a group with members.
     */
    static void groups(Env env) throws Exception {
        String topic = env.name("admin-groups");
        String group = env.name("admin-group");
        env.createTopic(topic, 2);
        Checks.produceSpread(env, topic, 2, 20);
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        try (KafkaConsumer<String, String> c = env.consumer(env.consumerProps(group))) {
            c.subscribe(List.of(topic));
            equal(20, Checks.pollUntil(c, 20), "records read");
            c.commitSync();
            Collection<ConsumerGroupListing> listed = get(env.admin.listConsumerGroups().all());
            check(listed.stream().anyMatch(l -> l.groupId().equals(group)), "listConsumerGroups lacks %s", group);
            ConsumerGroupDescription d = get(env.admin.describeConsumerGroups(List.of(group)).describedGroups().get(group));
            equal(1, d.members().size(), "members of the active group");
            check(!d.isSimpleConsumerGroup(), "an active consumer group described as simple");
            expect(GroupNotEmptyException.class, env.admin.deleteConsumerGroups(List.of(group)).all(), "deleting a group with members");
        }
        ConsumerGroupDescription d = get(env.admin.describeConsumerGroups(List.of(group)).describedGroups().get(group));
        equal(0, d.members().size(), "members after close");
        equal("Empty", d.state().toString(), "state after close");

        Map<TopicPartition, OffsetAndMetadata> offs = get(env.admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        equal(10L, offs.get(p0).offset(), "committed offset of partition 0");
        equal(10L, offs.get(p1).offset(), "committed offset of partition 1");

        get(env.admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(4, "moved"))).all());
        offs = get(env.admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        equal(4L, offs.get(p0).offset(), "partition 0 after alter");
        equal("moved", offs.get(p0).metadata(), "metadata after alter");
        equal(10L, offs.get(p1).offset(), "partition 1 after altering partition 0");

        // Reset to earliest: what kafka-consumer-groups --reset-offsets --to-earliest does.
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> earliest =
            get(env.admin.listOffsets(Map.of(p0, OffsetSpec.earliest(), p1, OffsetSpec.earliest())).all());
        Map<TopicPartition, OffsetAndMetadata> reset = new HashMap<>();
        earliest.forEach((tp, info) -> reset.put(tp, new OffsetAndMetadata(info.offset())));
        get(env.admin.alterConsumerGroupOffsets(group, reset).all());
        offs = get(env.admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        equal(0L, offs.get(p0).offset(), "partition 0 after reset to earliest");
        equal(0L, offs.get(p1).offset(), "partition 1 after reset to earliest");

        get(env.admin.deleteConsumerGroupOffsets(group, Set.of(p1)).all());
        offs = get(env.admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        check(offs.get(p1) == null, "partition 1 still has offset %s after deleteConsumerGroupOffsets", offs.get(p1));
        equal(0L, offs.get(p0).offset(), "partition 0 after deleting partition 1's offset");

        get(env.admin.deleteConsumerGroups(List.of(group)).all());
        Collection<ConsumerGroupListing> listed = get(env.admin.listConsumerGroups().all());
        check(listed.stream().noneMatch(l -> l.groupId().equals(group)), "%s listed after deletion", group);
        expect(org.apache.kafka.common.errors.GroupIdNotFoundException.class,
            env.admin.deleteConsumerGroups(List.of(group)).all(), "deleting it again");
        List<String> ids = listed.stream().map(ConsumerGroupListing::groupId).collect(Collectors.toList());
        check(!ids.contains(group), "group listed: %s", ids);
    }

    static final Duration T = Env.TIMEOUT;
}
