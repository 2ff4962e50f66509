package dev.silt.javatest;

import static dev.silt.javatest.Env.check;
import static dev.silt.javatest.Env.equal;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.RoundRobinAssignor;
import org.apache.kafka.clients.consumer.StickyAssignor;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;

/** Producer and consumer checks. */
final class Checks {
    private Checks() {}

    /**
     * An idempotent producer (acks=all) with every codec: keyed records
     * with headers over 3 partitions, read back whole and in order, each
     * key on one partition.
     */
    static void producerCodecs(Env env) throws Exception {
        for (String codec : List.of("none", "gzip", "snappy", "lz4", "zstd")) {
            String topic = env.name("codec-" + codec);
            env.createTopic(topic, 3);
            Properties p = env.producerProps();
            p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
            int n = 300;
            Map<String, Integer> keyPartition = new HashMap<>();
            try (KafkaProducer<String, String> pr = env.producer(p)) {
                List<Future<RecordMetadata>> fs = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    RecordHeaders h = new RecordHeaders();
                    h.add("seq", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                    h.add("codec", codec.getBytes(StandardCharsets.UTF_8));
                    String value = "value-" + i + "-" + codec + "-" + "x".repeat(i % 50);
                    fs.add(pr.send(new ProducerRecord<>(topic, null, "key-" + (i % 17), value, h)));
                }
                pr.flush();
                for (int i = 0; i < n; i++) {
                    RecordMetadata md = fs.get(i).get(60, TimeUnit.SECONDS);
                    Integer prev = keyPartition.putIfAbsent("key-" + (i % 17), md.partition());
                    check(prev == null || prev == md.partition(), "%s: key-%d went to partitions %d and %d", codec, i % 17, prev, md.partition());
                    check(md.hasOffset() && md.offset() >= 0, "%s: record %d has no offset", codec, i);
                }
            }
            List<ConsumerRecord<String, String>> got = env.readAll(topic, n);
            Map<Integer, Long> nextOffset = new HashMap<>();
            Map<String, Integer> lastSeqOfKey = new HashMap<>();
            for (ConsumerRecord<String, String> r : got) {
                long want = nextOffset.getOrDefault(r.partition(), 0L);
                equal(want, r.offset(), codec + ": offset in partition " + r.partition());
                nextOffset.put(r.partition(), want + 1);
                int seq = Integer.parseInt(header(r, "seq"));
                equal("key-" + (seq % 17), r.key(), codec + ": key of record " + seq);
                equal("value-" + seq + "-" + codec + "-" + "x".repeat(seq % 50), r.value(), codec + ": value of record " + seq);
                equal(codec, header(r, "codec"), codec + ": codec header");
                equal(keyPartition.get(r.key()), r.partition(), codec + ": partition of " + r.key());
                Integer last = lastSeqOfKey.put(r.key(), seq);
                check(last == null || last < seq, "%s: %s out of order (%d after %d)", codec, r.key(), seq, last);
            }
        }
    }

    static String header(ConsumerRecord<?, ?> r, String key) {
        Header h = r.headers().lastHeader(key);
        check(h != null, "record at %s-%d has no header %s", r.topic(), r.offset(), key);
        return new String(h.value(), StandardCharsets.UTF_8);
    }

    /** A null key, a null value (tombstone) and an empty value survive. */
    static void producerNullKeyValue(Env env) throws Exception {
        String topic = env.name("nulls");
        env.createTopic(topic, 1);
        try (KafkaProducer<String, String> pr = env.producer(env.producerProps())) {
            pr.send(new ProducerRecord<>(topic, 0, null, "no-key")).get(60, TimeUnit.SECONDS);
            pr.send(new ProducerRecord<>(topic, 0, "tomb", null)).get(60, TimeUnit.SECONDS);
            pr.send(new ProducerRecord<>(topic, 0, "empty", "")).get(60, TimeUnit.SECONDS);
        }
        List<ConsumerRecord<String, String>> got = env.readAll(topic, 3);
        equal(null, got.get(0).key(), "key of record 0");
        equal("no-key", got.get(0).value(), "value of record 0");
        equal("tomb", got.get(1).key(), "key of record 1");
        equal(null, got.get(1).value(), "value of record 1");
        equal("", got.get(2).value(), "value of record 2");
        equal(0, got.get(2).headers().toArray().length, "headers of record 2");
    }

    /**
     * Two consumers of one group (classic protocol) under each assignor
     * share a 4-partition topic: 2 partitions each, disjoint, as the
     * assignor lays them out; every record read once; committed offsets
     * visible through Admin; the group's protocol named in DescribeGroups.
     */
    static void consumerAssignors(Env env) throws Exception {
        Map<String, String> assignors = new java.util.LinkedHashMap<>();
        assignors.put("range", RangeAssignor.class.getName());
        assignors.put("roundrobin", RoundRobinAssignor.class.getName());
        assignors.put("sticky", StickyAssignor.class.getName());
        assignors.put("cooperative-sticky", CooperativeStickyAssignor.class.getName());
        for (Map.Entry<String, String> a : assignors.entrySet()) {
            String name = a.getKey();
            String topic = env.name("assign-" + name);
            String group = env.name("group-" + name);
            env.createTopic(topic, 4);
            produceSpread(env, topic, 4, 40);
            Properties p = env.consumerProps(group);
            p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, a.getValue());
            try (KafkaConsumer<String, String> c1 = env.consumer(p); KafkaConsumer<String, String> c2 = env.consumer(p)) {
                c1.subscribe(List.of(topic));
                c2.subscribe(List.of(topic));
                Set<String> seen = new HashSet<>();
                long deadline = System.nanoTime() + Env.TIMEOUT.toNanos();
                while (true) {
                    for (KafkaConsumer<String, String> c : List.of(c1, c2)) {
                        ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(100));
                        for (ConsumerRecord<String, String> r : rs) {
                            check(seen.add(r.partition() + "/" + r.offset()), "%s: record %d/%d read twice", name, r.partition(), r.offset());
                        }
                        if (!rs.isEmpty()) {
                            c.commitSync();
                        }
                    }
                    if (seen.size() == 40 && c1.assignment().size() == 2 && c2.assignment().size() == 2) {
                        break;
                    }
                    check(System.nanoTime() < deadline, "%s: read %d of 40 records; assignments %s and %s", name, seen.size(), c1.assignment(), c2.assignment());
                }
                Set<Integer> p1 = partitionsOf(c1.assignment());
                Set<Integer> p2 = partitionsOf(c2.assignment());
                Set<Integer> all = new TreeSet<>(p1);
                all.addAll(p2);
                equal(Set.of(0, 1, 2, 3), all, name + ": partitions assigned");
                if (name.equals("range")) {
                    check(Set.of(Set.of(0, 1), Set.of(2, 3)).contains(p1), "range gave %s and %s", p1, p2);
                }
                if (name.equals("roundrobin")) {
                    check(Set.of(Set.of(0, 2), Set.of(1, 3)).contains(p1), "roundrobin gave %s and %s", p1, p2);
                }
                ConsumerGroupDescription d = env.admin.describeConsumerGroups(List.of(group))
                    .describedGroups().get(group).get(60, TimeUnit.SECONDS);
                equal(name, d.partitionAssignor(), "assignor in DescribeGroups");
                equal(2, d.members().size(), name + ": members in DescribeGroups");
                Set<Integer> described = new TreeSet<>();
                for (MemberDescription m : d.members()) {
                    described.addAll(partitionsOf(m.assignment().topicPartitions()));
                }
                equal(Set.of(0, 1, 2, 3), described, name + ": assignment in DescribeGroups");
            }
            Map<TopicPartition, OffsetAndMetadata> committed = env.admin.listConsumerGroupOffsets(group)
                .partitionsToOffsetAndMetadata().get(60, TimeUnit.SECONDS);
            for (int i = 0; i < 4; i++) {
                OffsetAndMetadata o = committed.get(new TopicPartition(topic, i));
                check(o != null && o.offset() == 10, "%s: committed offset of partition %d is %s, want 10", name, i, o);
            }
        }
    }

    static Set<Integer> partitionsOf(Set<TopicPartition> tps) {
        Set<Integer> s = new TreeSet<>();
        tps.forEach(tp -> s.add(tp.partition()));
        return s;
    }

    /** Produces n records round-robin over the partitions, explicitly. */
    static void produceSpread(Env env, String topic, int partitions, int n) throws Exception {
        try (KafkaProducer<String, String> pr = env.producer(env.producerProps())) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                fs.add(pr.send(new ProducerRecord<>(topic, i % partitions, "k" + i, "v" + i)));
            }
            for (Future<RecordMetadata> f : fs) {
                f.get(60, TimeUnit.SECONDS);
            }
        }
    }

    /**
     * Static membership (group.instance.id): a member that closes does not
     * leave, and its restart with the same instance id gets its partitions
     * back in the same generation, without a rebalance. Admin removes it.
     */
    static void consumerStaticMembership(Env env) throws Exception {
        String topic = env.name("static");
        String group = env.name("group-static");
        env.createTopic(topic, 2);
        produceSpread(env, topic, 2, 10);
        Properties p = env.consumerProps(group);
        p.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "static-1");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "30000");
        int generation;
        String memberId;
        try (KafkaConsumer<String, String> c = env.consumer(p)) {
            c.subscribe(List.of(topic));
            int read = pollUntil(c, 10);
            equal(10, read, "records read by the first incarnation");
            equal(2, c.assignment().size(), "partitions of the first incarnation");
            generation = c.groupMetadata().generationId();
            memberId = c.groupMetadata().memberId();
            equal("static-1", c.groupMetadata().groupInstanceId().orElse(null), "group instance id");
            c.commitSync();
        }
        ConsumerGroupDescription d = env.admin.describeConsumerGroups(List.of(group))
            .describedGroups().get(group).get(60, TimeUnit.SECONDS);
        equal(1, d.members().size(), "members after a static member closed");
        equal("static-1", d.members().iterator().next().groupInstanceId().orElse(null), "described instance id");
        try (KafkaConsumer<String, String> c = env.consumer(p)) {
            c.subscribe(List.of(topic));
            Env.eventually("the restarted static member's assignment", () -> {
                c.poll(Duration.ofMillis(100));
                return c.assignment().size() == 2;
            });
            equal(generation, c.groupMetadata().generationId(), "generation after the static member's restart");
            check(!memberId.equals(c.groupMetadata().memberId()), "the restarted member kept member id %s", memberId);
        }
        RemoveMembersFromConsumerGroupOptions o = new RemoveMembersFromConsumerGroupOptions(
            List.of(new org.apache.kafka.clients.admin.MemberToRemove("static-1")));
        env.admin.removeMembersFromConsumerGroup(group, o).all().get(60, TimeUnit.SECONDS);
        d = env.admin.describeConsumerGroups(List.of(group)).describedGroups().get(group).get(60, TimeUnit.SECONDS);
        equal(0, d.members().size(), "members after removing the static member");
    }

    static int pollUntil(KafkaConsumer<String, String> c, int n) {
        int read = 0;
        long deadline = System.nanoTime() + Env.TIMEOUT.toNanos();
        while (read < n && System.nanoTime() < deadline) {
            read += c.poll(Duration.ofMillis(200)).count();
        }
        return read;
    }

    /**
     * offsetsForTimes, beginning and end offsets, seek, seekToEnd, and
     * pause/resume on one partition with known timestamps.
     */
    static void consumerSeekPauseTimes(Env env) throws Exception {
        String topic = env.name("seek");
        env.createTopic(topic, 1);
        TopicPartition tp = new TopicPartition(topic, 0);
        long base = (System.currentTimeMillis() / 1000 - 3600) * 1000;
        try (KafkaProducer<String, String> pr = env.producer(env.producerProps())) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < 30; i++) {
                fs.add(pr.send(new ProducerRecord<>(topic, 0, base + i * 1000L, "k" + i, "v" + i)));
            }
            for (Future<RecordMetadata> f : fs) {
                f.get(60, TimeUnit.SECONDS);
            }
        }
        try (KafkaConsumer<String, String> c = env.consumer(env.consumerProps(null))) {
            c.assign(List.of(tp));
            Map<TopicPartition, OffsetAndTimestamp> t = c.offsetsForTimes(Map.of(tp, base + 10_500L), Env.TIMEOUT);
            check(t.get(tp) != null, "offsetsForTimes(base+10.5s) found nothing");
            equal(11L, t.get(tp).offset(), "offsetsForTimes(base+10.5s) offset");
            equal(base + 11_000L, t.get(tp).timestamp(), "offsetsForTimes(base+10.5s) timestamp");
            t = c.offsetsForTimes(Map.of(tp, base), Env.TIMEOUT);
            equal(0L, t.get(tp).offset(), "offsetsForTimes(base) offset");
            t = c.offsetsForTimes(Map.of(tp, base + 3_600_000L), Env.TIMEOUT);
            equal(null, t.get(tp), "offsetsForTimes after the last record");
            equal(0L, c.beginningOffsets(List.of(tp), Env.TIMEOUT).get(tp), "beginning offset");
            equal(30L, c.endOffsets(List.of(tp), Env.TIMEOUT).get(tp), "end offset");

            c.seek(tp, 15);
            ConsumerRecord<String, String> first = firstRecord(c);
            equal(15L, first.offset(), "first offset after seek(15)");
            equal("v15", first.value(), "value after seek(15)");
            equal(base + 15_000L, first.timestamp(), "timestamp of offset 15");

            c.seekToEnd(List.of(tp));
            equal(30L, c.position(tp, Env.TIMEOUT), "position after seekToEnd");

            c.seek(tp, 0);
            c.pause(List.of(tp));
            equal(Set.of(tp), c.paused(), "paused partitions");
            for (int i = 0; i < 3; i++) {
                equal(0, c.poll(Duration.ofMillis(200)).count(), "records polled while paused");
            }
            c.resume(List.of(tp));
            equal(0L, firstRecord(c).offset(), "first offset after resume");
        }
    }

    static ConsumerRecord<String, String> firstRecord(KafkaConsumer<String, String> c) {
        long deadline = System.nanoTime() + Env.TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(200));
            if (!rs.isEmpty()) {
                return rs.iterator().next();
            }
        }
        throw new AssertionError("no record within " + Env.TIMEOUT);
    }
}
