package dev.silt.javatest;

import static dev.silt.javatest.Env.check;
import static dev.silt.javatest.Env.equal;

import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ListShareGroupOffsetsSpec;
import org.apache.kafka.clients.admin.ShareGroupDescription;
import org.apache.kafka.clients.admin.SharePartitionOffsetInfo;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * The group protocols of Kafka 4.x clients: KIP-848's consumer protocol
 * and KIP-932's share groups. These checks need kafka-clients 4.x; they
 * run only when named (see Main.optIn).
 */
final class GroupProtocolChecks {
    private GroupProtocolChecks() {}

    /**
     * KIP-848: two consumers with group.protocol=consumer share a
     * 4-partition topic under each server-side assignor (uniform, range):
     * two partitions each, every record read once, commits visible
     * through Admin, the group described as a CONSUMER group at one
     * epoch; when one leaves, the other gets every partition.
     */
    static void consumerProtocol(Env env) throws Exception {
        for (String assignor : List.of("uniform", "range")) {
            String topic = env.name("kip848-" + assignor);
            String group = env.name("kip848-group-" + assignor);
            env.createTopic(topic, 4);
            Checks.produceSpread(env, topic, 4, 40);
            Properties p = env.consumerProps(group);
            // The consumer protocol's session timeout and heartbeat
            // interval are the broker's: the client refuses these.
            p.remove(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG);
            p.remove(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG);
            p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
            p.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, assignor);
            try (KafkaConsumer<String, String> c1 = env.consumer(p); KafkaConsumer<String, String> c2 = env.consumer(p)) {
                c1.subscribe(List.of(topic));
                c2.subscribe(List.of(topic));
                Set<String> seen = new HashSet<>();
                long deadline = System.nanoTime() + Env.TIMEOUT.toNanos();
                while (seen.size() < 40 || c1.assignment().size() != 2 || c2.assignment().size() != 2) {
                    for (KafkaConsumer<String, String> c : List.of(c1, c2)) {
                        ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(100));
                        for (ConsumerRecord<String, String> r : rs) {
                            check(seen.add(r.partition() + "/" + r.offset()), "%s: record %d/%d read twice", assignor, r.partition(), r.offset());
                        }
                        if (!rs.isEmpty()) {
                            c.commitSync();
                        }
                    }
                    check(System.nanoTime() < deadline, "%s: read %d of 40; assignments %s and %s", assignor, seen.size(), c1.assignment(), c2.assignment());
                }
                Set<Integer> p1 = Checks.partitionsOf(c1.assignment());
                Set<Integer> p2 = Checks.partitionsOf(c2.assignment());
                Set<Integer> all = new TreeSet<>(p1);
                all.addAll(p2);
                equal(Set.of(0, 1, 2, 3), all, assignor + ": partitions assigned");
                if (assignor.equals("range")) {
                    check(Set.of(Set.of(0, 1), Set.of(2, 3)).contains(p1), "range gave %s and %s", p1, p2);
                }
                ConsumerGroupDescription d = env.admin.describeConsumerGroups(List.of(group))
                    .describedGroups().get(group).get(60, TimeUnit.SECONDS);
                equal(GroupType.CONSUMER, d.type(), assignor + ": group type");
                equal(GroupState.STABLE, d.groupState(), assignor + ": group state");
                equal(assignor, d.partitionAssignor(), assignor + ": assignor");
                equal(2, d.members().size(), assignor + ": members");
                check(d.groupEpoch().isPresent() && d.groupEpoch().equals(d.targetAssignmentEpoch()),
                    "%s: group epoch %s, assignment epoch %s", assignor, d.groupEpoch(), d.targetAssignmentEpoch());
                d.members().forEach(m -> check(m.memberEpoch().equals(d.groupEpoch()), "%s: member at epoch %s, group at %s", assignor, m.memberEpoch(), d.groupEpoch()));

                c1.close();
                deadline = System.nanoTime() + Env.TIMEOUT.toNanos();
                while (c2.assignment().size() != 4) {
                    c2.poll(Duration.ofMillis(100));
                    check(System.nanoTime() < deadline, "%s: after c1 left, c2 has %s", assignor, c2.assignment());
                }
            }
            Map<TopicPartition, OffsetAndMetadata> committed = env.admin.listConsumerGroupOffsets(group)
                .partitionsToOffsetAndMetadata().get(60, TimeUnit.SECONDS);
            for (int i = 0; i < 4; i++) {
                OffsetAndMetadata o = committed.get(new TopicPartition(topic, i));
                check(o != null && o.offset() == 10, "%s: committed offset of partition %d is %s, want 10", assignor, i, o);
            }
        }
    }

    /**
     * KIP-932: two share consumers (explicit acknowledgement) read a
     * 2-partition topic from the start (share.auto.offset.reset set on the
     * group through Admin): every record accepted exactly once, released
     * records delivered again with delivery count 2, rejected ones never
     * again; Admin describes the share group and its start offsets (at the
     * end of the log once all is done) and deletes it once empty.
     */
    static void shareConsumer(Env env) throws Exception {
        String topic = env.name("share");
        String group = env.name("share-group");
        env.createTopic(topic, 2);
        Checks.produceSpread(env, topic, 2, 60);
        ConfigResource res = new ConfigResource(ConfigResource.Type.GROUP, group);
        env.admin.incrementalAlterConfigs(Map.of(res, List.of(
            new AlterConfigOp(new ConfigEntry("share.auto.offset.reset", "earliest"), AlterConfigOp.OpType.SET))))
            .all().get(60, TimeUnit.SECONDS);
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, env.bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put("share.acknowledgement.mode", "explicit");
        Map<String, Integer> accepted = new HashMap<>();
        Set<String> rejected = new HashSet<>();
        Set<String> released = new HashSet<>();
        try (KafkaShareConsumer<String, String> c1 = new KafkaShareConsumer<>(p, new StringDeserializer(), new StringDeserializer());
             KafkaShareConsumer<String, String> c2 = new KafkaShareConsumer<>(p, new StringDeserializer(), new StringDeserializer())) {
            c1.subscribe(List.of(topic));
            c2.subscribe(List.of(topic));
            long deadline = System.nanoTime() + Env.TIMEOUT.toNanos();
            // k%10 == 3 is released once; k%20 == 7 rejected; the rest accepted.
            int wantAccepted = 0;
            for (int k = 0; k < 60; k++) {
                wantAccepted += k % 20 == 7 ? 0 : 1;
            }
            while (accepted.size() < wantAccepted) {
                for (KafkaShareConsumer<String, String> c : List.of(c1, c2)) {
                    ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(200));
                    for (ConsumerRecord<String, String> r : rs) {
                        int k = Integer.parseInt(r.key().substring(1));
                        short dc = r.deliveryCount().orElse((short) -1);
                        check(!rejected.contains(r.key()), "rejected %s delivered again", r.key());
                        if (k % 20 == 7) {
                            c.acknowledge(r, AcknowledgeType.REJECT);
                            rejected.add(r.key());
                        } else if (k % 10 == 3 && dc == 1) {
                            c.acknowledge(r, AcknowledgeType.RELEASE);
                            released.add(r.key());
                        } else {
                            if (k % 10 == 3) {
                                equal((short) 2, dc, "delivery count of released " + r.key());
                            }
                            c.acknowledge(r, AcknowledgeType.ACCEPT);
                            Integer prev = accepted.put(r.key(), accepted.getOrDefault(r.key(), 0) + 1);
                            check(prev == null, "%s accepted twice", r.key());
                        }
                    }
                    if (!rs.isEmpty()) {
                        c.commitSync();
                    }
                }
                check(System.nanoTime() < deadline, "accepted %d of %d", accepted.size(), wantAccepted);
            }
            equal(6, released.size(), "records released once (k3, k13, ... k53)");
            ShareGroupDescription d = env.admin.describeShareGroups(List.of(group))
                .describedGroups().get(group).get(60, TimeUnit.SECONDS);
            equal(GroupState.STABLE, d.groupState(), "share group state");
            equal(2, d.members().size(), "share group members");
            Map<TopicPartition, SharePartitionOffsetInfo> offs = env.admin
                .listShareGroupOffsets(Map.of(group, new ListShareGroupOffsetsSpec()))
                .partitionsToOffsetInfo(group).get(60, TimeUnit.SECONDS);
            for (int i = 0; i < 2; i++) {
                SharePartitionOffsetInfo o = offs.get(new TopicPartition(topic, i));
                // Kafka persists start offsets lazily, so it may still
                // report an earlier one; nothing is left to consume either
                // way.
                check(o != null && o.startOffset() >= 0 && o.startOffset() <= 30, "start offset of partition %d is %s", i, o);
                check(o.lag().equals(Optional.of(0L)), "lag of partition %d is %s, want 0", i, o.lag());
            }
        }
        long deadline = System.nanoTime() + Env.TIMEOUT.toNanos();
        while (true) {
            ShareGroupDescription d = env.admin.describeShareGroups(List.of(group))
                .describedGroups().get(group).get(60, TimeUnit.SECONDS);
            if (d.groupState() == GroupState.EMPTY) {
                break;
            }
            check(System.nanoTime() < deadline, "share group still %s after its consumers closed", d.groupState());
            Thread.sleep(100);
        }
        env.admin.deleteShareGroups(List.of(group)).all().get(60, TimeUnit.SECONDS);
    }
}
