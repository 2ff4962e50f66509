#!/usr/bin/env bash
# Runs every Go test with -race and prints a readable summary: each
# package's result, each top-level test's result, and the harness lines that
# say which real servers (Postgres, MinIO) the suites ran against. The full
# verbose log is kept in $SILT_TEST_LOG; on a failure its failing parts are
# printed too.
set -uo pipefail
cd "$(dirname "$0")/.."
log=${SILT_TEST_LOG:-$(mktemp -t silt-test.XXXXXX.log)}
timeout=${SILT_TEST_TIMEOUT:-25m}

# make test installed every server and client tool first: a test that
# finds one missing fails instead of skipping (harness.Strict).
export SILT_TEST_STRICT=1
echo "go test -race ./... (full log: $log)"
go test -race -count=1 -timeout "$timeout" -v ./... >"$log" 2>&1
rc=$?

# Harness lines once each, then results. Subtests are indented, so ^--- is
# only top-level tests.
grep -E '^harness: ' "$log" | sort -u
grep -E '^(--- (PASS|FAIL|SKIP)|ok  |FAIL|\?   )' "$log"

if [ $rc -ne 0 ]; then
  echo
  echo "=== failures (see $log for everything)"
  grep -nE -- '--- FAIL|^panic:|WARNING: DATA RACE|_test\.go:[0-9]+:|^FAIL' "$log" | head -300
  echo "=== last lines of the log"
  tail -80 "$log"
fi
exit $rc
