package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/postgres"
	"github.com/siltdata/silt/metastore/sqlite"
)

// runStorage is `silt storage`: what the metastore says is stored, per
// topic and in objects, for capacity planning and cost (bytes stored, index
// rows, objects), without touching the bucket.
func runStorage(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("silt storage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ms := fs.String("metastore", os.Getenv("SILT_METASTORE"), "metastore `url` (postgres://... or a SQLite file path) [SILT_METASTORE]")
	dataDir := fs.String("data-dir", "", "a silt dev data `directory` (instead of --metastore)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	target := *ms
	if *dataDir != "" {
		target = filepath.Join(*dataDir, "metastore.db")
	}
	if target == "" {
		fmt.Fprintln(stderr, "silt storage: --metastore or --data-dir is required")
		return exitUsage
	}
	kind, path, err := metastoreKind(target)
	if err != nil {
		fmt.Fprintf(stderr, "silt storage: --metastore: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var store metastore.Backend
	if kind == "postgres" {
		store, err = postgres.Open(ctx, path, nil)
	} else {
		if _, serr := os.Stat(path); serr != nil {
			fmt.Fprintf(stderr, "silt storage: %v\n", serr)
			return exitFailed
		}
		store, err = sqlite.Open(ctx, path, nil)
	}
	if err != nil {
		fmt.Fprintf(stderr, "silt storage: open metastore %s: %v\n", redactURL(target), err)
		return exitFailed
	}
	defer func() { _ = store.Close() }()
	st, err := store.StorageStats(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "silt storage: %v\n", err)
		return exitFailed
	}
	printStorage(stdout, st)
	return exitOK
}

func printStorage(w io.Writer, st metastore.StorageStats) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "topic\tbytes\tindex rows\tnot yet compacted\trows per GiB\t")
	names := make([]string, 0, len(st.Topics))
	for n := range st.Topics {
		names = append(names, n)
	}
	slices.Sort(names)
	var total metastore.TopicStorage
	for _, n := range names {
		t := st.Topics[n]
		total.Bytes += t.Bytes
		total.Rows += t.Rows
		total.Uncompacted += t.Uncompacted
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t\n", n, humanBytes(t.Bytes), t.Rows, humanBytes(t.Uncompacted), rowsPerGiB(t))
	}
	fmt.Fprintf(tw, "(all topics)\t%s\t%d\t%s\t%s\t\n", humanBytes(total.Bytes), total.Rows, humanBytes(total.Uncompacted), rowsPerGiB(total))
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "objects\tcount\tbytes\t")
	for _, s := range []string{"committed", "pending", "dead"} {
		c := st.Segments[s]
		fmt.Fprintf(tw, "%s\t%d\t%s\t\n", s, c.Objects, humanBytes(c.Bytes))
	}
	fmt.Fprintf(tw, "of which compacted\t%d\t%s\t\n", st.CompactedSegments.Objects, humanBytes(st.CompactedSegments.Bytes))
	_ = tw.Flush()
	fmt.Fprintln(w, "\nbytes: record batches as producers sent them; object bytes: as stored (after silt's compression).")
	fmt.Fprintln(w, "dead objects are deleted once --reclaim-grace has passed; pending ones are uploads not yet committed.")
}

func rowsPerGiB(t metastore.TopicStorage) string {
	if t.Bytes == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(t.Rows)/(float64(t.Bytes)/(1<<30)))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
