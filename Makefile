# silt — see README.md. Every target does what its name says.
SHELL := /bin/bash
GO    ?= go
# Where test dependencies built from source (the MinIO server) are cached,
# outside the repository so a fresh clone reuses them.
SILT_CACHE ?= $(HOME)/.cache/silt
export SILT_CACHE

.PHONY: run build test test-deps fuzz faults bench bench-full bench-micro soak lint clean

## run: start a single-node silt with embedded defaults on 127.0.0.1:9092
run: build
	exec bin/silt dev

## build: build bin/silt
build:
	$(GO) build -o bin/silt ./cmd/silt

## test-deps: install what the tests need (Postgres, MinIO, kcat, kafkajs, ...)
test-deps:
	./tests/install-deps.sh

## test: install test dependencies, then vet, run every test with -race,
## check the Terraform formatting and run each fuzz target briefly
test: test-deps
	$(GO) vet ./...
	@if command -v terraform >/dev/null; then TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive deploy/terraform && echo "terraform fmt: ok"; \
	  else echo "terraform fmt: skipped (terraform not installed)"; fi
	./tests/run.sh
	$(MAKE) fuzz FUZZTIME=10s

## fuzz: run every fuzz target (FUZZTIME each, default 2m)
FUZZTIME ?= 2m
fuzz:
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$spec/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "fuzz $$spec $$f ($(FUZZTIME))"; \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=5s $$spec || exit 1; \
	  done; \
	done

## faults: the fault suite (tests/faults): three agents on Postgres and MinIO
## under a checked workload while faults hit agents, Postgres, MinIO and the
## links between them, for DURATION (default 30m); FAULTS=a,b selects faults
## and CYCLES=n applies each n times (make faults FAULTS=coordinator-pause
## CYCLES=20); SEED=n repeats a run's choices; RACE=1 builds with -race.
## Writes the summary to tests/faults/results/latest.md (`make test` runs
## a short pass: every fault once).
FAULTS   ?=
CYCLES   ?= 0
SEED     ?= 0
DURATION ?= $(if $(filter-out 0,$(CYCLES)),0,30m)
faults: test-deps
	$(GO) test $(if $(RACE),-race) -run='^TestFaults$$' -v -count=1 -timeout=12h ./tests/faults -args \
	  -faults.duration=$(DURATION) -faults.cycles=$(CYCLES) -faults.seed=$(SEED) \
	  $(if $(FAULTS),-faults.only=$(FAULTS)) -faults.report=$(CURDIR)/tests/faults/results/latest.md

## bench: the benchmark report (~3 min): raw MinIO and filesystem limits, kfake,
## silt dev and silt agent under one load; writes tests/bench/results/latest.md;
## then the storage lifecycle's (~10 min: log compaction, replay after
## compaction, a 10,000-partition topic): tests/bench/results/lifecycle.md;
## and transactions (~2 min): tests/bench/results/transactions.md
bench: test-deps
	$(GO) test -run='^(TestReport|TestLifecycleReport|TestTxnReport)$$' -v -count=1 -timeout=60m ./tests/bench -args -report

## bench-full: the full report (30 s phases, 2 GiB cold replay; ~10 min)
bench-full: test-deps
	$(GO) test -run='^(TestReport|TestLifecycleReport|TestTxnReport)$$' -v -count=1 -timeout=90m ./tests/bench -args -report -full

## bench-micro: the Go micro benchmarks (segment codec, metastore, read path, ...)
bench-micro: test-deps
	$(GO) test -run='^$$' -bench=. -benchmem ./...

## soak: the retention soak (SOAK=10m of production, ~15 min): bucket bytes
## and index rows must stay flat; writes tests/soak/results/latest.md
SOAK ?= 10m
soak: test-deps
	$(GO) test -run='^TestRetentionSoak$$' -v -count=1 -timeout=60m ./tests/soak -args -soak -soak-duration=$(SOAK)

## lint: gofmt, go vet, terraform fmt and golangci-lint (.golangci.yml; the
## pinned version is built once into $(SILT_CACHE)/bin)
GOLANGCI_VERSION ?= v2.15.0
GOLANGCI := $(SILT_CACHE)/bin/golangci-lint
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	@if command -v terraform >/dev/null; then TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive deploy/terraform; fi
	@$(GOLANGCI) version 2>/dev/null | grep -q '$(patsubst v%,%,$(GOLANGCI_VERSION))' || \
	  (cd /tmp && GOBIN=$(SILT_CACHE)/bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION))
	$(GOLANGCI) run ./...

clean:
	rm -rf bin silt-data
