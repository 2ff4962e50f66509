// Command silt is silt's one binary: a Kafka-compatible broker whose log
// lives in object storage.
//
//	silt dev     one local agent with embedded defaults (SQLite + a directory)
//	silt agent   a production agent (Postgres or SQLite metastore, S3 bucket)
//	silt bench   load a cluster and report throughput and latency
//	silt storage what is stored, per topic and in objects
//	silt user    SASL/SCRAM users in the metastore
//	silt version the build's version
//	silt help    usage
//
// Every flag can also be set from an environment variable (SILT_ plus the
// flag name in upper case with '-' as '_'); a flag on the command line wins.
// Invalid configuration exits with status 2 before anything starts.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses. 2 is what the flag package and most Unix tools use for
// usage errors, so scripts can tell bad configuration from a crash.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status, so tests can
// drive every subcommand in process.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "dev", "agent":
		opts, err := parseOptions(cmd, rest, os.LookupEnv, stderr)
		if err != nil {
			if errors.Is(err, errHelp) {
				return exitOK
			}
			fmt.Fprintf(stderr, "silt %s: %v\n", cmd, err)
			return exitUsage
		}
		// The first SIGINT/SIGTERM starts a graceful shutdown; stopping the
		// notification right after lets a second signal kill the process
		// the default way when a shutdown hangs.
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return serve(ctx, stop, opts, stdout, stderr)
	case "bench":
		return runBench(rest, os.Stdin, stdout, stderr)
	case "storage":
		return runStorage(rest, stdout, stderr)
	case "user":
		return runUser(rest, os.Stdin, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "silt %s\n", version())
		return exitOK
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && (rest[0] == "dev" || rest[0] == "agent") {
			_, _ = parseOptions(rest[0], []string{"-h"}, func(string) (string, bool) { return "", false }, stdout)
			return exitOK
		}
		usage(stdout)
		return exitOK
	default:
		fmt.Fprintf(stderr, "silt: unknown command %q\n\n", cmd)
		usage(stderr)
		return exitUsage
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `silt is a Kafka-compatible streaming platform whose log lives in object storage.

Usage:
  silt dev [flags]     run one local agent: SQLite metastore and a local
                       bucket directory under --data-dir, Kafka on 127.0.0.1:9092
  silt agent [flags]   run a production agent: --metastore postgres://... and
                       --bucket s3://bucket/prefix?endpoint=...&region=... are required
  silt bench [flags]   load any Kafka cluster with franz-go and print throughput, latency and ratios (silt bench -h)
  silt storage [flags] what is stored, per topic and in objects (--metastore URL, or --data-dir of silt dev)
  silt user create|delete|list
                       manage SASL/SCRAM users in the metastore (the first user of a secured cluster)
  silt version         print the version
  silt help [command]  print this help, or a command's flags

Every flag can also be set from its environment variable (shown in the
command's help); a flag on the command line wins over the environment.
`)
}
