package dev.silt.javatest;

import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import org.apache.kafka.common.utils.internals.Exit;

/**
 * Runs Kafka's command-line tools (kafka-topics, kafka-configs,
 * kafka-consumer-groups, the console producer and consumer) in this JVM,
 * one after another, as their scripts would run them (`java -cp ...
 * MainClass args`), so the Go tests pay the JVM's start-up once instead of
 * once per command.
 *
 * Each request is one line on stdin: space-separated base64 fields, the
 * main class, the tool's stdin, then its arguments. Each answer is one line
 * on stdout: the exit status, then the tool's stdout and stderr in base64.
 * A tool's Exit.exit(n) (Kafka's tools exit through it) ends the tool, not
 * the JVM: it throws, and the first status is the tool's, as it would be
 * the process's; what the tool prints while unwinding is dropped (some
 * tools catch the throw, print it and exit again). The shutdown hooks a
 * tool adds through Exit run when it ends, as at a JVM's exit: the console
 * producer flushes and closes its producer only there.
 */
final class Cli {
    private Cli() {}

    /** Thrown by the exit procedure to unwind a tool's main. */
    static final class ExitCalled extends RuntimeException {
        final int status;

        ExitCalled(int status) {
            super("exit " + status, null, false, false);
            this.status = status;
        }
    }

    /** The first Exit.exit status of the running tool, or null. */
    static Integer firstExit;

    static final PrintStream DISCARD = new PrintStream(java.io.OutputStream.nullOutputStream());

    /** Shutdown hooks the running tool added. */
    static final java.util.List<Runnable> hooks = new java.util.ArrayList<>();

    static void exitCalled(int status) {
        if (firstExit == null) {
            firstExit = status;
            System.setOut(DISCARD);
            System.setErr(DISCARD);
        }
        throw new ExitCalled(status);
    }

    static int serve() throws Exception {
        PrintStream answers = System.out;
        PrintStream stderr = System.err;
        InputStream requests = System.in;
        // Loggers initialised now hold stderr, not a tool's captured stdout.
        System.setOut(stderr);
        org.slf4j.LoggerFactory.getLogger(Cli.class);
        Exit.setExitProcedure((status, message) -> exitCalled(status));
        Exit.setHaltProcedure((status, message) -> exitCalled(status));
        Exit.setShutdownHookAdder((name, hook) -> hooks.add(hook));
        BufferedReader r = new BufferedReader(new InputStreamReader(requests, StandardCharsets.UTF_8));
        Base64.Decoder dec = Base64.getDecoder();
        Base64.Encoder enc = Base64.getEncoder();
        for (String line; (line = r.readLine()) != null; ) {
            if (line.isBlank()) {
                continue;
            }
            String[] f = line.trim().split(" ", -1);
            String main = new String(dec.decode(f[0]), StandardCharsets.UTF_8);
            byte[] stdin = dec.decode(f[1]);
            String[] args = new String[f.length - 2];
            for (int i = 2; i < f.length; i++) {
                args[i - 2] = new String(dec.decode(f[i]), StandardCharsets.UTF_8);
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            int status = 0;
            firstExit = null;
            try (PrintStream po = new PrintStream(out, true, StandardCharsets.UTF_8);
                 PrintStream pe = new PrintStream(err, true, StandardCharsets.UTF_8)) {
                System.setOut(po);
                System.setErr(pe);
                System.setIn(new ByteArrayInputStream(stdin));
                try {
                    Class.forName(main).getMethod("main", String[].class).invoke(null, (Object) args);
                } catch (InvocationTargetException e) {
                    status = exitStatus(e.getCause(), pe);
                } catch (ExitCalled e) {
                    status = e.status;
                } catch (Throwable e) {
                    e.printStackTrace(pe);
                    status = 1;
                } finally {
                    for (Runnable hook : hooks) {
                        try {
                            hook.run();
                        } catch (Throwable e) {
                            e.printStackTrace(pe);
                        }
                    }
                    hooks.clear();
                    if (firstExit != null) {
                        status = firstExit;
                    }
                    System.out.flush();
                    System.err.flush();
                    System.setOut(stderr);
                    System.setErr(stderr);
                }
            }
            answers.println(status + " " + enc.encodeToString(out.toByteArray()) + " " + enc.encodeToString(err.toByteArray()));
            answers.flush();
        }
        return 0;
    }

    static int exitStatus(Throwable t, PrintStream err) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof ExitCalled) {
                return ((ExitCalled) c).status;
            }
        }
        t.printStackTrace(err);
        return 1;
    }
}
