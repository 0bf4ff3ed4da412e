# secretslab: `make lab` for a ready lab, `make test` for the tests. See README.md.
SHELL := /bin/bash
GO ?= go
BIN := bin/secretslab
BACKEND ?= auto
HA ?=
# VAULT_SEAL=transit (with HA=1): the Raft nodes auto-unseal with a KMS Vault's transit key
VAULT_SEAL ?=
ARTIFACTS_DIR ?= $(CURDIR)/artifacts
GOTEST_FLAGS ?= -timeout 40m -count=1

REPORT_DIR ?= $(CURDIR)/reports/out
LABELS ?=
# VERSIONS=candidate picks a version set of versions/versions.yaml (default: pinned)
VERSIONS ?=
export VERSIONS

.PHONY: all build cli bookstore lab lab-down lab-status test test-ha test-autounseal test-candidate test-upgrade test-unit conformance upgrade-check bench versions clean

all: build

cli:
	$(GO) build -o $(BIN) ./cmd/secretslab

bookstore:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/bookstore ./fixtures/bookstore/app

## build: the CLI, then every component binary at its pinned version (cached after the first run)
build: cli
	$(BIN) build

## lab: a lab with chapter 05 set up (bookstore, Vault, the swap), left running, and a guided tour
##      (BACKEND=embedded|kind|auto, HA=1 for Vault Raft HA)
lab: cli bookstore
	$(BIN) lab up --backend $(BACKEND) $(if $(HA),--ha) --tour --bookstore-binary bin/bookstore

## lab-down: stop everything `make lab` started
lab-down: cli
	$(BIN) lab down

lab-status: cli
	$(BIN) lab status

## test: unit tests and the embedded end-to-end tests (real etcd, kube-apiserver, ESO, Vault, Postgres),
##       then the scenarios again on Vault HA (3 Raft nodes: failover, lease-storm), then auto-unseal
##       on a transit-sealed HA Vault, then on the candidate version set, diffed against the first run
test: build
	rm -rf $(ARTIFACTS_DIR) && mkdir -p $(ARTIFACTS_DIR)
	set -a && eval "$$($(BIN) build --env)" && \
	  ARTIFACTS_DIR=$(ARTIFACTS_DIR) REPORT_DIR=$(ARTIFACTS_DIR)/report BACKEND=embedded $(GO) test $(GOTEST_FLAGS) ./...
	$(MAKE) --no-print-directory test-ha
	$(MAKE) --no-print-directory test-autounseal
	$(MAKE) --no-print-directory test-candidate
	$(MAKE) --no-print-directory test-upgrade

## test-candidate: every scenario on the embedded backend with the candidate version set (what the
##                 module proxy builds of it), then `report diff` against artifacts/report (the
##                 pinned run of `make test`): fails on a failed check or a regression
CANDIDATE_SET ?= candidate
test-candidate: cli
	rm -rf $(ARTIFACTS_DIR)/candidate && mkdir -p $(ARTIFACTS_DIR)/candidate
	set -a && VERSIONS=$(CANDIDATE_SET) && eval "$$($(BIN) build --env)" && \
	  ARTIFACTS_DIR=$(ARTIFACTS_DIR)/candidate REPORT_DIR=$(ARTIFACTS_DIR)/candidate/report BACKEND=embedded \
	  $(GO) test $(GOTEST_FLAGS) -run '^TestConformance$$' ./e2e
	$(BIN) report diff --out $(ARTIFACTS_DIR)/candidate/diff $(ARTIFACTS_DIR)/report/report.json $(ARTIFACTS_DIR)/candidate/report/report.json

## test-ha: the scenarios and the planted-failover cleanup test on embedded Vault HA
test-ha: build
	rm -rf $(ARTIFACTS_DIR)/ha && mkdir -p $(ARTIFACTS_DIR)/ha
	set -a && eval "$$($(BIN) build --env)" && \
	  ARTIFACTS_DIR=$(ARTIFACTS_DIR)/ha REPORT_DIR=$(ARTIFACTS_DIR)/ha/report BACKEND=embedded HA=1 \
	  $(GO) test $(GOTEST_FLAGS) -run '^(TestConformance|TestPlantedFailoverFailureCleansUp)$$' ./e2e

## test-autounseal: the auto-unseal scenario on embedded Vault HA with seal "transit" (a second
##                  Vault's transit engine plays the KMS): a full restart with no unseal call, the
##                  KMS stopped and back
test-autounseal: build
	rm -rf $(ARTIFACTS_DIR)/autounseal && mkdir -p $(ARTIFACTS_DIR)/autounseal
	set -a && eval "$$($(BIN) build --env)" && \
	  ARTIFACTS_DIR=$(ARTIFACTS_DIR)/autounseal REPORT_DIR=$(ARTIFACTS_DIR)/autounseal/report BACKEND=embedded HA=1 VAULT_SEAL=transit \
	  $(GO) test $(GOTEST_FLAGS) -run '^TestConformance$$' ./e2e -args --labels scenario=auto-unseal

## conformance: every scenario on BACKEND (default here: kind), then the report in REPORT_DIR
##              (LABELS="scenario=swap[,scenario=revert]" filters; HA=1 runs Vault as 3 Raft nodes and the failover scenario;
##              VAULT_SEAL=transit with HA=1 auto-unseals them with a KMS Vault and runs auto-unseal, embedded only for now)
##              kind needs no component build (its charts bring the images); BACKEND=cluster runs on the
##              cluster in KUBECONFIG in namespaces named for the run (RUN_NAME), removes all it created and
##              checks the cluster's objects by UID; ALLOW_DISRUPTIVE=1 lets failover and lease-storm kill pods there
CONFORMANCE_BACKEND = $(if $(filter auto,$(BACKEND)),kind,$(BACKEND))
conformance: cli $(if $(filter kind cluster,$(CONFORMANCE_BACKEND)),,build)
	rm -rf $(ARTIFACTS_DIR) && mkdir -p $(ARTIFACTS_DIR)
	set -a && $(if $(filter kind cluster,$(CONFORMANCE_BACKEND)),true,eval "$$($(BIN) build --env)") && \
	  ARTIFACTS_DIR=$(ARTIFACTS_DIR) REPORT_DIR=$(REPORT_DIR) BACKEND=$(CONFORMANCE_BACKEND) HA=$(HA) VAULT_SEAL=$(VAULT_SEAL) \
	  $(GO) test $(GOTEST_FLAGS) -v -run '^TestConformance$$' ./e2e -args $(if $(LABELS),--labels "$(LABELS)")

## upgrade-check: pre-upgrade validation of FROM -> TO (version sets): a fresh run on each, FROM
##                upgraded in place to TO, the diffs and reports/upgrade-check/index.html
FROM ?= pinned
TO ?= candidate
upgrade-check: cli bookstore
	$(BIN) upgrade-check --from $(FROM) --to $(TO) --out $(CURDIR)/reports/upgrade-check -- \
	  --backend $(CONFORMANCE_BACKEND) $(if $(HA),--ha) --bookstore-binary bin/bookstore

## test-upgrade: the upgrade scenario on the embedded backend: the pinned set upgraded in place to
##               CANDIDATE_SET while the catalog runs (report in artifacts/upgrade/report)
test-upgrade: build
	rm -rf $(ARTIFACTS_DIR)/upgrade && mkdir -p $(ARTIFACTS_DIR)/upgrade
	set -a && eval "$$($(BIN) build --env)" && \
	  ARTIFACTS_DIR=$(ARTIFACTS_DIR)/upgrade REPORT_DIR=$(ARTIFACTS_DIR)/upgrade/report BACKEND=embedded UPGRADE_TO=$(CANDIDATE_SET) \
	  $(GO) test $(GOTEST_FLAGS) -run '^TestConformance$$' ./e2e -args --labels scenario=upgrade

## bench: measurements on the embedded backend with Vault HA, never timed assertions: failover
##        x BENCH_FAILOVERS with each Raft performance_multiplier of BENCH_MULTIPLIERS (0: Vault's
##        default), the lease storm at each N of BENCH_LEASES; each run its own lab and report
##        in BENCH_DIR/RUN, then one table (figure, min, median, max) on stdout and in
##        BENCH_DIR/bench.md (and bench.json). Fails when a run had a failed check.
BENCH_DIR ?= $(CURDIR)/reports/bench
BENCH_FAILOVERS ?= 3
BENCH_MULTIPLIERS ?= 0 1
BENCH_LEASES ?= 1000 5000
bench: cli bookstore build
	rm -rf $(BENCH_DIR) && mkdir -p $(BENCH_DIR)
	set -a && eval "$$($(BIN) build --env)" && set +a && status=0; \
	for m in $(BENCH_MULTIPLIERS); do \
	  $(BIN) conformance --backend embedded --ha --bookstore-binary bin/bookstore --labels scenario=failover \
	    --failovers $(BENCH_FAILOVERS) --raft-performance-multiplier $$m --out $(BENCH_DIR)/failover-pm$$m || status=1; \
	done; \
	for n in $(BENCH_LEASES); do \
	  $(BIN) conformance --backend embedded --ha --bookstore-binary bin/bookstore --labels scenario=lease-storm \
	    --leases $$n --out $(BENCH_DIR)/lease-storm-n$$n || status=1; \
	done; \
	$(BIN) report bench --out $(BENCH_DIR) $(BENCH_DIR)/*/report.json || status=1; \
	exit $$status

## test-unit: only the tests that need no component binaries
test-unit:
	$(GO) test -short $$($(GO) list ./... | grep -v /e2e)

versions: cli
	$(BIN) versions

clean:
	rm -rf bin $(ARTIFACTS_DIR)
