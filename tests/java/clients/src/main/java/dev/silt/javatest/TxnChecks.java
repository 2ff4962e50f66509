package dev.silt.javatest;

import static dev.silt.javatest.Env.check;
import static dev.silt.javatest.Env.equal;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;

/** Transactions: the transactional producer, read_committed, Streams exactly-once. */
final class TxnChecks {
    private TxnChecks() {}

    /** The values of a topic read from the beginning up to its end offsets at the isolation level. */
    static List<String> readValues(Env env, String topic, String isolation) {
        Properties p = env.consumerProps(null);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        try (KafkaConsumer<String, String> c = env.consumer(p)) {
            List<TopicPartition> tps = env.partitions(c, topic);
            c.assign(tps);
            c.seekToBeginning(tps);
            // read_committed consumers' endOffsets are the last stable offsets.
            Map<TopicPartition, Long> end = c.endOffsets(tps, Env.TIMEOUT);
            List<String> got = new ArrayList<>();
            long deadline = System.nanoTime() + Env.TIMEOUT.toNanos();
            while (true) {
                boolean done = true;
                for (TopicPartition tp : tps) {
                    done &= c.position(tp) >= end.get(tp);
                }
                if (done) {
                    return got;
                }
                check(System.nanoTime() < deadline, "read %s (%s) to %s: at %s", topic, isolation, end, got);
                c.poll(Duration.ofMillis(200)).forEach(r -> got.add(r.value()));
            }
        }
    }

    /**
     * A transactional producer commits records with a group's offsets
     * (sendOffsetsToTransaction), aborts records and offsets, commits
     * again; read_committed reads exactly the committed records, the
     * group's offset is the committed one.
     */
    static void producer(Env env) throws Exception {
        String topic = env.name("txn-out");
        String in = env.name("txn-in");
        String group = env.name("txn-group");
        env.createTopic(topic, 2);
        env.createTopic(in, 1);
        Properties p = env.producerProps();
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, env.name("txn-id"));
        TreeSet<String> committed = new TreeSet<>();
        int aborted = 0;
        try (KafkaProducer<String, String> pr = env.producer(p)) {
            pr.initTransactions();
            Object[][] txns = {{"committed1", 4, true, 3L}, {"aborted", 4, false, 99L}, {"committed2", 2, true, null}};
            for (Object[] tx : txns) {
                String label = (String) tx[0];
                int n = (Integer) tx[1];
                boolean commit = (Boolean) tx[2];
                pr.beginTransaction();
                for (int i = 0; i < n; i++) {
                    String v = label + "-" + i;
                    pr.send(new ProducerRecord<>(topic, i % 2, null, v)).get(60, TimeUnit.SECONDS);
                    if (commit) {
                        committed.add(v);
                    } else {
                        aborted++;
                    }
                }
                if (tx[3] != null) {
                    pr.sendOffsetsToTransaction(Map.of(new TopicPartition(in, 0), new OffsetAndMetadata((Long) tx[3])),
                        new ConsumerGroupMetadata(group));
                }
                if (commit) {
                    pr.commitTransaction();
                } else {
                    pr.abortTransaction();
                }
            }
        }
        equal(committed, new TreeSet<>(readValues(env, topic, "read_committed")), "read_committed values");
        equal(committed.size() + aborted, readValues(env, topic, "read_uncommitted").size(), "read_uncommitted records");
        Map<TopicPartition, OffsetAndMetadata> offs =
            AdminChecks.get(env.admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        OffsetAndMetadata o = offs.get(new TopicPartition(in, 0));
        check(o != null && o.offset() == 3, "offset of %s: %s, want 3", group, offs);
    }

    /** A Kafka Streams app with exactly_once_v2: every input record once in the output. */
    static void streamsExactlyOnce(Env env) throws Exception {
        String in = env.name("eos-in");
        String out = env.name("eos-out");
        env.createTopic(in, 2);
        env.createTopic(out, 2);
        int n = 40;
        try (KafkaProducer<String, String> pr = env.producer(env.producerProps())) {
            for (int i = 0; i < n; i++) {
                pr.send(new ProducerRecord<>(in, "k" + (i % 5), "word" + i));
            }
            pr.flush();
        }
        StreamsBuilder b = new StreamsBuilder();
        b.stream(in, Consumed.with(Serdes.String(), Serdes.String()))
            .mapValues(v -> v.toUpperCase())
            .to(out, Produced.with(Serdes.String(), Serdes.String()));
        Properties p = StreamsChecks.props(env, env.name("eos-app"));
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        KafkaStreams s = StreamsChecks.start(b, p);
        try {
            Env.eventually("every record in the output, read_committed",
                () -> readValues(env, out, "read_committed").size() >= n);
        } finally {
            s.close(Duration.ofSeconds(30));
        }
        List<String> got = readValues(env, out, "read_committed");
        equal(n, got.size(), "output records");
        equal(n, new TreeSet<>(got).size(), "distinct output values");
    }
}
