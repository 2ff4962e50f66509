package dev.silt.javatest;

import static dev.silt.javatest.Env.check;
import static dev.silt.javatest.Env.equal;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;

/** Kafka Streams applications, at-least-once. */
final class StreamsChecks {
    private StreamsChecks() {}

    static Properties props(Env env, String app) throws Exception {
        Path state = Files.createTempDirectory("silt-streams-");
        state.toFile().deleteOnExit();
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, app);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, env.bootstrap);
        p.put(StreamsConfig.STATE_DIR_CONFIG, state.toString());
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "100");
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, "1");
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        p.put(StreamsConfig.consumerPrefix("session.timeout.ms"), "10000");
        p.put(StreamsConfig.consumerPrefix("heartbeat.interval.ms"), "1000");
        return p;
    }

    static KafkaStreams start(StreamsBuilder b, Properties p) throws Exception {
        KafkaStreams s = new KafkaStreams(b.build(), p);
        s.start();
        Env.eventually("the Streams app to run", () -> {
            check(s.state() != KafkaStreams.State.ERROR && s.state() != KafkaStreams.State.NOT_RUNNING, "app state %s", s.state());
            return s.state() == KafkaStreams.State.RUNNING;
        });
        return s;
    }

    /** mapValues and filter from one topic to another. */
    static void stateless(Env env) throws Exception {
        String in = env.name("streams-in");
        String out = env.name("streams-out");
        env.createTopic(in, 2);
        env.createTopic(out, 2);
        try (KafkaProducer<String, String> pr = env.producer(env.producerProps())) {
            for (int i = 0; i < 40; i++) {
                pr.send(new ProducerRecord<>(in, "k" + (i % 5), "word" + i));
            }
            pr.flush();
        }
        StreamsBuilder b = new StreamsBuilder();
        b.stream(in, Consumed.with(Serdes.String(), Serdes.String()))
            .filter((k, v) -> Integer.parseInt(v.substring(4)) % 2 == 0)
            .mapValues(v -> v.toUpperCase())
            .to(out, Produced.with(Serdes.String(), Serdes.String()));
        KafkaStreams s = start(b, props(env, env.name("stateless-app")));
        try {
            List<ConsumerRecord<String, String>> got = env.readAll(out, 20);
            Set<String> values = new java.util.TreeSet<>();
            for (ConsumerRecord<String, String> r : got) {
                check(r.value().startsWith("WORD"), "output value %s", r.value());
                int i = Integer.parseInt(r.value().substring(4));
                check(i % 2 == 0, "odd record %s passed the filter", r.value());
                equal("k" + (i % 5), r.key(), "key of " + r.value());
                values.add(r.value());
            }
            equal(20, values.size(), "distinct output values");
        } finally {
            s.close(Duration.ofSeconds(30));
        }
    }

    /**
     * groupByKey().count() into a state store backed by a changelog topic:
     * the counts reach the output, the changelog topic is created (compacted)
     * and holds the store's updates, and a restarted app restores from it.
     */
    static void stateful(Env env) throws Exception {
        String in = env.name("count-in");
        String out = env.name("count-out");
        String app = env.name("stateful-app");
        env.createTopic(in, 2);
        env.createTopic(out, 2);
        Map<String, Long> want = new HashMap<>();
        try (KafkaProducer<String, String> pr = env.producer(env.producerProps())) {
            for (int i = 0; i < 60; i++) {
                String k = "user" + (i % 6);
                want.merge(k, 1L, Long::sum);
                pr.send(new ProducerRecord<>(in, k, "click" + i));
            }
            pr.flush();
        }
        Properties p = props(env, app);
        // Emit every update, so the final count per key is the last output.
        p.put("statestore.cache.max.bytes", "0");
        StreamsBuilder b = new StreamsBuilder();
        b.stream(in, Consumed.with(Serdes.String(), Serdes.String()))
            .groupByKey()
            .count(Materialized.as("counts"))
            .toStream()
            .to(out, Produced.with(Serdes.String(), Serdes.Long()));
        KafkaStreams s = start(b, p);
        try {
            Env.eventually("the final counts", () -> lastCounts(env, out, 60).equals(want));
        } finally {
            s.close(Duration.ofSeconds(30));
        }
        String changelog = app + "-counts-changelog";
        Set<String> topics = AdminChecks.get(env.admin.listTopics().names());
        Env.contains(topics, changelog, "topics");
        org.apache.kafka.common.config.ConfigResource r =
            new org.apache.kafka.common.config.ConfigResource(org.apache.kafka.common.config.ConfigResource.Type.TOPIC, changelog);
        String policy = AdminChecks.get(env.admin.describeConfigs(List.of(r)).all()).get(r).get("cleanup.policy").value();
        equal("compact", policy, "cleanup.policy of the changelog");

        // More input, and a fresh state directory: the restarted app must
        // restore the counts from the changelog to continue them.
        try (KafkaProducer<String, String> pr = env.producer(env.producerProps())) {
            for (int i = 0; i < 6; i++) {
                String k = "user" + i;
                want.merge(k, 1L, Long::sum);
                pr.send(new ProducerRecord<>(in, k, "again" + i)).get(60, TimeUnit.SECONDS);
            }
        }
        s = start(b, props(env, app));
        try {
            Env.eventually("the counts continued after a restore from the changelog", () -> lastCounts(env, out, 66).equals(want));
        } finally {
            s.close(Duration.ofSeconds(30));
        }
    }

    /** The last count per key in the output, after at least n updates. */
    static Map<String, Long> lastCounts(Env env, String topic, int n) {
        Map<String, Long> last = new HashMap<>();
        try (var c = new org.apache.kafka.clients.consumer.KafkaConsumer<>(env.consumerProps(null),
                new org.apache.kafka.common.serialization.StringDeserializer(),
                new org.apache.kafka.common.serialization.LongDeserializer())) {
            var tps = c.partitionsFor(topic, Env.TIMEOUT).stream()
                .map(i -> new org.apache.kafka.common.TopicPartition(topic, i.partition())).toList();
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<org.apache.kafka.common.TopicPartition, Long> end = c.endOffsets(tps, Env.TIMEOUT);
            long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while (System.nanoTime() < deadline) {
                boolean done = true;
                for (var tp : tps) {
                    done &= c.position(tp) >= end.get(tp);
                }
                if (done) {
                    break;
                }
                c.poll(Duration.ofMillis(100)).forEach(r -> last.put(r.key(), r.value()));
            }
        }
        return last;
    }
}
