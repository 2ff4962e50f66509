package dev.silt.javatest;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/** What the checks share: the bootstrap address, a name prefix, one Admin. */
final class Env implements AutoCloseable {
    final String bootstrap;
    /** Unique per run, so checks can run again against the same broker. */
    final String prefix;
    final Admin admin;

    Env(String bootstrap) {
        this.bootstrap = bootstrap;
        this.prefix = "java-" + Long.toHexString(ThreadLocalRandom.current().nextLong() & 0xffffffffL);
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");
        this.admin = Admin.create(p);
    }

    @Override
    public void close() {
        admin.close(Duration.ofSeconds(10));
    }

    String name(String what) {
        return prefix + "-" + what;
    }

    void createTopic(String topic, int partitions) throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1)))
            .all().get(60, TimeUnit.SECONDS);
    }

    Properties producerProps() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        return p;
    }

    KafkaProducer<String, String> producer(Properties p) {
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    Properties consumerProps(String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");
        return p;
    }

    KafkaConsumer<String, String> consumer(Properties p) {
        return new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    }

    List<TopicPartition> partitions(KafkaConsumer<?, ?> c, String topic) {
        List<PartitionInfo> infos = c.partitionsFor(topic, TIMEOUT);
        return infos.stream().map(i -> new TopicPartition(topic, i.partition()))
            .sorted((a, b) -> Integer.compare(a.partition(), b.partition()))
            .collect(Collectors.toList());
    }

    /** Reads a topic from the beginning, without a group, until n records. */
    List<ConsumerRecord<String, String>> readAll(String topic, int n) {
        try (KafkaConsumer<String, String> c = consumer(consumerProps(null))) {
            List<TopicPartition> tps = partitions(c, topic);
            c.assign(tps);
            c.seekToBeginning(tps);
            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            while (got.size() < n) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("read " + got.size() + " of " + n + " records of " + topic);
                }
                c.poll(Duration.ofMillis(200)).forEach(got::add);
            }
            check(got.size() == n, "read %d records of %s, want %d", got.size(), topic, n);
            return got;
        }
    }

    static final Duration TIMEOUT = Main.TIMEOUT;

    static void check(boolean cond, String format, Object... args) {
        if (!cond) {
            throw new AssertionError(String.format(format, args));
        }
    }

    static void equal(Object want, Object got, String what) {
        if (!Objects.equals(want, got)) {
            throw new AssertionError(what + ": got " + got + ", want " + want);
        }
    }

    static <T> void contains(Collection<T> c, T v, String what) {
        if (!c.contains(v)) {
            throw new AssertionError(what + ": " + v + " not in " + c);
        }
    }

    /** Waits for cond, polling: the client API offers no event for these. */
    static void eventually(String what, ThrowingSupplier<Boolean> cond) throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        Exception last = null;
        while (System.nanoTime() < deadline) {
            try {
                if (cond.get()) {
                    return;
                }
                last = null;
            } catch (Exception e) {
                last = e;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("timed out waiting for " + what + (last != null ? ": " + Main.oneLine(last) : ""));
    }

    @FunctionalInterface
    interface ThrowingSupplier<T> {
        T get() throws Exception;
    }

    static <K, V> String show(Map<K, V> m) {
        return m.toString();
    }
}
