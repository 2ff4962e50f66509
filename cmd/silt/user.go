package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/siltdata/silt/auth/sasl"
	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/postgres"
	"github.com/siltdata/silt/metastore/sqlite"
)

// runUser is `silt user create|delete|list`: SCRAM credentials straight
// in the metastore, for the first user of a cluster whose listeners all
// require authentication (later users can be managed with any Kafka admin
// client, through AlterUserScramCredentials).
func runUser(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "create" && args[0] != "delete" && args[0] != "list") {
		fmt.Fprint(stderr, `Usage:
  silt user create --metastore URL --user NAME [--password-file FILE|-] [--mechanisms M,...] [--iterations N]
  silt user delete --metastore URL --user NAME [--mechanisms M,...]
  silt user list   --metastore URL

The password comes from --password-file ("-" for standard input) or
SILT_USER_PASSWORD. --metastore is the agents' (postgres://... or the
SQLite file, e.g. ./silt-data/metastore.db for silt dev); SILT_METASTORE
sets it too.
`)
		return exitUsage
	}
	cmd := args[0]
	fs := flag.NewFlagSet("silt user "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		store      = fs.String("metastore", os.Getenv("SILT_METASTORE"), "metastore `url` or SQLite file")
		user       = fs.String("user", "", "user `name`")
		passFile   = fs.String("password-file", "", "`file` holding the password (- for standard input); default SILT_USER_PASSWORD")
		mechs      = fs.String("mechanisms", sasl.ScramSHA256+","+sasl.ScramSHA512, "SCRAM `mechanisms`")
		iterations = fs.Int("iterations", sasl.DefaultIterations, "PBKDF2 `iterations` (4096-16384)")
	)
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if *store == "" || (cmd != "list" && *user == "") {
		fmt.Fprintf(stderr, "silt user %s: --metastore and --user are required\n", cmd)
		return exitUsage
	}
	var mechanisms []string
	for m := range strings.SplitSeq(*mechs, ",") {
		if m = strings.ToUpper(strings.TrimSpace(m)); m != sasl.ScramSHA256 && m != sasl.ScramSHA512 {
			fmt.Fprintf(stderr, "silt user %s: --mechanisms: %q is not SCRAM-SHA-256 or SCRAM-SHA-512\n", cmd, m)
			return exitUsage
		}
		mechanisms = append(mechanisms, m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := openMetastore(ctx, *store)
	if err != nil {
		fmt.Fprintf(stderr, "silt user %s: %v\n", cmd, err)
		return exitFailed
	}
	defer func() { _ = s.Close() }()
	creds, ok := s.(metastore.Credentials)
	if !ok {
		fmt.Fprintf(stderr, "silt user %s: the metastore holds no credentials\n", cmd)
		return exitFailed
	}
	switch cmd {
	case "create":
		password, err := readPassword(*passFile, "password-file", "SILT_USER_PASSWORD", stdin)
		if err != nil {
			fmt.Fprintf(stderr, "silt user create: %v\n", err)
			return exitUsage
		}
		for _, m := range mechanisms {
			c, err := sasl.NewScramCredential(m, *user, password, *iterations)
			if err == nil {
				err = creds.UpsertScramCredential(ctx, c)
			}
			if err != nil {
				fmt.Fprintf(stderr, "silt user create: %s: %v\n", m, err)
				return exitFailed
			}
		}
		fmt.Fprintf(stdout, "user %s: %s credentials set\n", *user, strings.Join(mechanisms, ", "))
	case "delete":
		deleted := 0
		for _, m := range mechanisms {
			err := creds.DeleteScramCredential(ctx, *user, m)
			if err != nil && !errors.Is(err, metastore.ErrUnknownCredential) {
				fmt.Fprintf(stderr, "silt user delete: %v\n", err)
				return exitFailed
			}
			if err == nil {
				deleted++
			}
		}
		if deleted == 0 {
			fmt.Fprintf(stderr, "silt user delete: user %s has no credentials\n", *user)
			return exitFailed
		}
		fmt.Fprintf(stdout, "user %s: deleted\n", *user)
	case "list":
		all, err := creds.ScramCredentials(ctx, nil)
		if err != nil {
			fmt.Fprintf(stderr, "silt user list: %v\n", err)
			return exitFailed
		}
		for _, c := range all {
			fmt.Fprintf(stdout, "%s\t%s\titerations=%d\n", c.User, c.Mechanism, c.Iterations)
		}
	}
	return exitOK
}

// readPassword reads the password from file ("-": stdin), given by the
// flag named flagName, or else from the environment variable envVar
// (SILT_USER_PASSWORD for silt user); one trailing newline is dropped.
func readPassword(file, flagName, envVar string, stdin io.Reader) (string, error) {
	var raw []byte
	switch file {
	case "":
		p, ok := os.LookupEnv(envVar)
		if !ok || p == "" {
			return "", fmt.Errorf("no password: use --%s or %s", flagName, envVar)
		}
		return p, nil
	case "-":
		b, err := io.ReadAll(io.LimitReader(stdin, 1<<16))
		if err != nil {
			return "", err
		}
		raw = b
	default:
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		raw = b
	}
	p := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
	if p == "" {
		return "", errors.New("the password is empty")
	}
	return p, nil
}

// openMetastore opens a Postgres URL or a SQLite file.
func openMetastore(ctx context.Context, target string) (metastore.Store, error) {
	kind, t, err := metastoreKind(target)
	if err != nil {
		return nil, err
	}
	if kind == "postgres" {
		return postgres.Open(ctx, t, nil)
	}
	return sqlite.Open(ctx, t, nil)
}
