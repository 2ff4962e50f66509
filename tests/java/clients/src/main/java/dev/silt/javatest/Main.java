package dev.silt.javatest;

import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Entry point of the Java test driver. One JVM runs many checks so the Go
 * tests pay the JVM's start-up once per suite, not once per check.
 *
 * <pre>
 *   java -cp CLASSPATH dev.silt.javatest.Main checks BOOTSTRAP [CHECK...]
 *   java -cp CLASSPATH dev.silt.javatest.Main cli
 * </pre>
 *
 * "checks" runs the named checks (all when none is named) and prints, for
 * each, "RUN name", then "PASS name seconds" or "FAIL name: message"
 * (message on one line), on stdout; client logs go to stderr. It exits 0
 * when every check passed. "cli" runs Kafka's command-line tools in this
 * JVM, one per request read from stdin (see Cli).
 */
public final class Main {
    private Main() {}

    /** Every check, in the order they run. */
    static Map<String, Check> checks() {
        Map<String, Check> m = new LinkedHashMap<>();
        m.put("producer-codecs", Checks::producerCodecs);
        m.put("producer-null-key-value", Checks::producerNullKeyValue);
        m.put("consumer-assignors", Checks::consumerAssignors);
        m.put("consumer-static-membership", Checks::consumerStaticMembership);
        m.put("consumer-seek-pause-times", Checks::consumerSeekPauseTimes);
        m.put("admin-topics", AdminChecks::topics);
        m.put("admin-configs", AdminChecks::configs);
        m.put("admin-list-offsets", AdminChecks::listOffsets);
        m.put("admin-groups", AdminChecks::groups);
        m.put("streams-stateless", StreamsChecks::stateless);
        m.put("streams-stateful", StreamsChecks::stateful);
        m.put("streams-compacted-restore", CompactionChecks::streamsCompactedRestore);
        m.put("transactional-producer", TxnChecks::producer);
        m.put("streams-exactly-once", TxnChecks::streamsExactlyOnce);
        m.put("consumer-protocol", GroupProtocolChecks::consumerProtocol);
        m.put("share-consumer", GroupProtocolChecks::shareConsumer);
        return m;
    }

    /**
     * Checks that run only when named: they need a broker configured for
     * them (streams-compacted-restore: one that compacts promptly) or
     * kafka-clients 4.x (consumer-protocol, share-consumer), while the
     * driver's default run is shared by every client line.
     */
    static final java.util.Set<String> optIn = java.util.Set.of("streams-compacted-restore", "consumer-protocol", "share-consumer");

    public static void main(String[] args) throws Exception {
        if (args.length >= 1 && args[0].equals("cli")) {
            System.exit(Cli.serve());
        }
        if (args.length < 2 || !args[0].equals("checks")) {
            System.err.println("usage: Main checks BOOTSTRAP [CHECK...] | Main cli");
            System.exit(2);
        }
        PrintStream out = System.out;
        // Client libraries must not write into the result stream.
        System.setOut(System.err);
        Map<String, Check> all = checks();
        List<String> names = new ArrayList<>();
        for (int i = 2; i < args.length; i++) {
            if (!all.containsKey(args[i])) {
                out.println("FAIL " + args[i] + ": no such check");
                out.flush();
                System.exit(1);
            }
            names.add(args[i]);
        }
        if (names.isEmpty()) {
            for (String n : all.keySet()) {
                if (!optIn.contains(n)) {
                    names.add(n);
                }
            }
        }
        boolean ok = true;
        try (Env env = new Env(args[1])) {
            for (String name : names) {
                out.println("RUN " + name);
                out.flush();
                long start = System.nanoTime();
                try {
                    all.get(name).run(env);
                    out.printf("PASS %s %.2f%n", name, (System.nanoTime() - start) / 1e9);
                } catch (Throwable e) {
                    ok = false;
                    e.printStackTrace(System.err);
                    out.println("FAIL " + name + ": " + oneLine(e));
                }
                out.flush();
            }
        }
        out.flush();
        // Non-daemon threads of a client that failed to close must not keep
        // the JVM (and the Go test) waiting.
        Runtime.getRuntime().halt(ok ? 0 : 1);
    }

    static String oneLine(Throwable e) {
        StringBuilder b = new StringBuilder();
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (b.length() > 0) {
                b.append(" <- ");
            }
            b.append(c.getClass().getSimpleName()).append(": ").append(c.getMessage());
            if (c.getCause() == c) {
                break;
            }
        }
        return b.toString().replace('\n', ' ');
    }

    /** One check; throws (AssertionError or any exception) to fail. */
    @FunctionalInterface
    interface Check {
        void run(Env env) throws Exception;
    }

    static final Duration TIMEOUT = Duration.ofSeconds(60);
}
