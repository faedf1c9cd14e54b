# kbr: back up and restore Apache Kafka with Temporal workflows.
#   make run    build kbr, start ZooKeeper and Kafka and `kbr server`, back up a demo topic
#   make test   start the test stack and run every test against it
#   make bench  throughput and memory against raw franz-go and kcat (see below)
SHELL := /bin/bash
GO ?= go
BIN := bin/kbr
# `kbr version` prints it; without git (a source tarball) the build says "(devel)".
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
DATA_DIR ?= ./kbr-data

# Packages that do not compile the Temporal server run with the race detector.
RACE_PKGS := ./internal/backupset/... ./internal/config/... ./internal/kdata/... ./internal/kmeta/... \
	./internal/zkmeta/... ./internal/hostops/... ./internal/metaarchive/... ./internal/kclient/... ./internal/lock/... ./internal/secret/... ./internal/errtext/... ./internal/secretscan/... \
	./internal/schemareg/... ./internal/kbatch/... ./internal/kraftlog/... ./internal/pool/... ./internal/restoreplan/... ./internal/catalog/... ./internal/names/... \
	./internal/tasks/... ./internal/metrics/... ./deploy/demofill/... ./deploy/production/... ./deploy/systemd/... ./storage ./storage/all ./storage/internal/... ./storage/decorate/... ./storage/localdir/... ./workflows/... ./activities/...
# The storage backends' conformance suites stream 2 GiB files through real servers: no race
# detector there (it triples their time), one package at a time (the servers share 2 cores).
STORAGE_PKGS := ./storage/hdfs/... ./storage/nfs/... ./storage/cifs/... ./storage/sftp/... ./storage/obs/...

# Fuzz targets, package:Target, each run for FUZZTIME by `make fuzz` (part of
# `make test`); `go test` alone runs them on their corpus in testdata/fuzz.
# A failing input is written to that package's testdata/fuzz/<Target>/:
# commit it with the fix, as the regression test.
FUZZ_TARGETS := ./internal/backupset:FuzzSegmentReader ./internal/backupset:FuzzUnmarshalManifest \
	./internal/metaarchive:FuzzReadArchive ./internal/config:FuzzConfigLoaders
FUZZTIME ?= 5s

# The linters `make vet` runs, at pinned versions: each is `go install`ed from the Go module
# proxy once per machine into $(TOOLS_DIR)/<name>-<version>/ (default ~/.cache/kbr/tools, beside
# the MinIO and Temporal builds of deploy/), so a fresh machine builds them on its first
# `make vet` (about 30 s) and a version bump builds the new one. `make tools` only installs them.
KBR_CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/kbr
TOOLS_DIR ?= $(KBR_CACHE_DIR)/tools
STATICCHECK_VERSION := v0.8.2
WORKFLOWCHECK_VERSION := v0.6.0
STATICCHECK := $(abspath $(TOOLS_DIR))/staticcheck-$(STATICCHECK_VERSION)/staticcheck
WORKFLOWCHECK := $(abspath $(TOOLS_DIR))/workflowcheck-$(WORKFLOWCHECK_VERSION)/workflowcheck

.PHONY: build run stop test test-deps test-unit vet tools fmt fuzz
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/kbr

# The demo needs only ZooKeeper and the ZooKeeper-mode Kafka cluster. kbr builds (CPU) while
# Maven fetches the Kafka jars (network), so a cold `make run` waits for the longer of the two.
run:
	@$(MAKE) --no-print-directory -j2 build stack-up-kafka
	deploy/demo.sh $(BIN) $(DATA_DIR)

stop:
	deploy/demo.sh --stop $(DATA_DIR)

# gofmt; go.mod and go.sum tidy; go vet; staticcheck (its default checks) on every package, the
# fault build too; workflowcheck on the workflows (a finding is real non-determinism to fix, or a
# false positive to mark with //workflowcheck:ignore and a comment saying why it is deterministic).
vet: tools
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags kbrfault ./activities/...
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags kbrfault ./activities/...
	$(WORKFLOWCHECK) -show-pos ./workflows/...

tools: $(STATICCHECK) $(WORKFLOWCHECK)

# From / so that kbr's go.mod does not pick the tools' dependencies.
$(STATICCHECK):
	@mkdir -p $(@D)
	cd / && GOBIN=$(@D) GOFLAGS=-mod=mod $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(WORKFLOWCHECK):
	@mkdir -p $(@D)
	cd / && GOBIN=$(@D) GOFLAGS=-mod=mod $(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)

test-unit:
	$(GO) test -race -count=1 $(RACE_PKGS)

# Debian packages the tests need beyond the stack's: systemd (systemd-analyze) and postgresql.
test-deps:
	deploy/packages.sh

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		echo "fuzz $$name in $$pkg for $(FUZZTIME)"; \
		out=$$($(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg" 2>&1) || { echo "$$out"; echo "fuzz $$name failed"; exit 1; }; \
		case "$$out" in *"no fuzz tests to fuzz"*) echo "$$out"; echo "no fuzz target $$name in $$pkg"; exit 1;; esac; \
		echo "$$out" | grep -v '^fuzz: elapsed' || true; \
	done

test: stack-up test-deps vet
	$(GO) test -race -count=1 $(RACE_PKGS)
	$(MAKE) --no-print-directory fuzz
	$(GO) test -count=1 -p 1 -timeout 30m $(STORAGE_PKGS)
	$(GO) test -count=1 -timeout 40m ./cmd/... ./internal/embedded/... ./test/...

# Local test stack (ZooKeeper + Kafka 3.9.1 ZooKeeper-mode cluster + Kafka 4.1.1 KRaft node).
.PHONY: stack-up stack-up-kafka stack-down stack-clean stack-status bench

stack-up:
	deploy/stack.sh up

stack-up-kafka:
	deploy/stack.sh up --kafka-only

stack-down:
	deploy/stack.sh down

stack-clean:
	deploy/stack.sh clean

stack-status:
	deploy/stack.sh status

# Throughput benchmark against the running stack (prints figures, never fails on time):
#   make bench                                # 1 GiB source topic
#   make bench BENCH_FLAGS='-size 256MiB'     # quick run; go run ./bench -h lists the flags
#   KBR_CPUPROFILE=bench/results/cpu make bench   # also profile kdata export/restore in-process
# Figures: stdout and bench/results/latest.json.
BENCH_FLAGS ?=
STORAGE_BENCH_FLAGS ?=

bench:
	go run ./bench/storagebench $(STORAGE_BENCH_FLAGS)
	@command -v kcat >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y kcat || { $$SUDO apt-get update && $$SUDO apt-get install -y kcat; }; }
	go run ./bench $(BENCH_FLAGS)
