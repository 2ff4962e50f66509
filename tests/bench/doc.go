// Package bench holds silt's benchmark report: `make bench` runs
// TestReport, which measures, in one run on one machine, the physical
// limit (raw PUT and GET of the object store MinIO and of a local
// directory), an in-memory Kafka (franz-go's kfake), `silt dev` and
// `silt agent` (Postgres + MinIO) under the same franz-go load, and
// prints one table of absolute figures, ratios and targets met or not
// (also written to results/latest.md).
//
// The report only runs when asked (-report, or SILT_BENCH_REPORT=1), so
// `go test ./...` compiles it and skips it:
//
//	go test -run '^TestReport$' -v -count=1 -timeout 30m ./tests/bench -args -report
//	go test -run '^TestReport$' -v -count=1 -timeout 60m ./tests/bench -args -report -full
//
// The load generator lives in tests/bench/loadgen (shared with `silt
// bench`); the silt process starter in tests/bench/siltproc.
package bench
