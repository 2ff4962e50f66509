package dev.silt.javatest;

import static dev.silt.javatest.Env.check;
import static dev.silt.javatest.Env.equal;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.StateRestoreListener;

/**
 * Log compaction as Kafka Streams uses it: a KTable's changelog is a
 * compacted topic, and a restarted instance without local state rebuilds the
 * table from it. Runs only when named: the broker must compact promptly
 * (silt with --compaction-age 0s and a short --janitor-interval).
 */
final class CompactionChecks {
    private CompactionChecks() {}

    static final int KEYS = 20;
    static final int UPDATES = 2000;

    /**
     * A count per key over many updates per key; the changelog is compacted
     * by the broker while the app is down (offsets with gaps, one record per
     * key left); a fresh instance restores exactly those records and
     * continues every count.
     */
    static void streamsCompactedRestore(Env env) throws Exception {
        String in = env.name("ktable-in");
        String out = env.name("ktable-out");
        String app = env.name("ktable-app");
        env.createTopic(in, 1);
        env.createTopic(out, 1);
        Map<String, Long> want = new HashMap<>();
        try (KafkaProducer<String, String> pr = env.producer(env.producerProps())) {
            for (int i = 0; i < UPDATES; i++) {
                String k = "key" + (i % KEYS);
                want.merge(k, 1L, Long::sum);
                pr.send(new ProducerRecord<>(in, k, "v" + i));
            }
            pr.flush();
        }
        StreamsBuilder b = new StreamsBuilder();
        b.stream(in, Consumed.with(Serdes.String(), Serdes.String()))
            .groupByKey()
            .count(Materialized.as("counts"))
            .toStream()
            .to(out, Produced.with(Serdes.String(), Serdes.Long()));
        KafkaStreams s = StreamsChecks.start(b, props(env, app));
        try {
            Env.eventually("the first instance's counts", () -> StreamsChecks.lastCounts(env, out, UPDATES).equals(want));
        } finally {
            s.close(Duration.ofSeconds(30));
        }

        // Every update went to the changelog (the cache is off); the broker
        // compacts it down to the latest count of each key.
        TopicPartition changelog = new TopicPartition(app + "-counts-changelog", 0);
        long[] kept = new long[1];
        Env.eventually("the changelog compacted to one record per key", () -> {
            kept[0] = countRecords(env, changelog);
            return kept[0] == KEYS;
        });

        // More input, and a fresh state directory: the new instance restores
        // the table from the compacted changelog and continues the counts.
        try (KafkaProducer<String, String> pr = env.producer(env.producerProps())) {
            for (int i = 0; i < KEYS; i++) {
                String k = "key" + i;
                want.merge(k, 1L, Long::sum);
                pr.send(new ProducerRecord<>(in, k, "again" + i)).get(60, TimeUnit.SECONDS);
            }
        }
        AtomicLong restored = new AtomicLong(-1);
        KafkaStreams s2 = new KafkaStreams(b.build(), props(env, app));
        s2.setGlobalStateRestoreListener(new StateRestoreListener() {
            @Override
            public void onRestoreStart(TopicPartition tp, String store, long start, long end) {}

            @Override
            public void onBatchRestored(TopicPartition tp, String store, long batchEnd, long n) {}

            @Override
            public void onRestoreEnd(TopicPartition tp, String store, long total) {
                restored.set(total);
            }
        });
        s2.start();
        try {
            Env.eventually("the counts continued after a restore from the compacted changelog",
                () -> StreamsChecks.lastCounts(env, out, UPDATES + KEYS).equals(want));
        } finally {
            s2.close(Duration.ofSeconds(30));
        }
        equal((long) KEYS, restored.get(), "records restored from the compacted changelog");
    }

    static Properties props(Env env, String app) throws Exception {
        Properties p = StreamsChecks.props(env, app);
        // Every update reaches the changelog, and the broker cleans it as
        // soon as a little of it is dirty.
        p.put("statestore.cache.max.bytes", "0");
        p.put(StreamsConfig.topicPrefix("min.cleanable.dirty.ratio"), "0.01");
        return p;
    }

    /** The records of tp from its start to its end offset. */
    static long countRecords(Env env, TopicPartition tp) {
        Properties p = env.consumerProps(null);
        try (var c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long end = c.endOffsets(List.of(tp), Env.TIMEOUT).get(tp);
            check(end >= UPDATES, "the changelog ends at %d, want at least %d", end, UPDATES);
            long n = 0;
            long deadline = System.nanoTime() + Env.TIMEOUT.toNanos();
            while (c.position(tp) < end) {
                check(System.nanoTime() < deadline, "read the changelog to %d of %d", c.position(tp), end);
                n += c.poll(Duration.ofMillis(200)).count();
            }
            return n;
        }
    }
}
