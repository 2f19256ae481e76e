# socflow: `make demo` runs the main job, `make test` runs every test (CI runs exactly that).
SHELL := /bin/bash
STACK := deploy/local/stack
# Every target that talks to the stack loads its settings (addresses, credentials, binaries).
WITH_STACK := set -a; eval "$$($(STACK) env)"; set +a;
GO_TEST_FLAGS ?= -race -count=1 -timeout 40m

.PHONY: test chaos test-cluster stack-up-cluster demo demo-wazuh stack-up stack-down stack-status lint vet workflowcheck unit bench bench-fleet record-histories rocks-bin

## test: bring the local stack up (installing what is missing), then lint and run every test
## against it (the dev server), then the e2e core against the Temporal cluster (test-cluster)
test: stack-up lint
	@$(WITH_STACK) go test $(GO_TEST_FLAGS) ./...
	@$(MAKE) --no-print-directory test-cluster

## test-cluster: the e2e core against the stack's PostgreSQL-backed Temporal cluster (the
## profile SOCFLOW_TEMPORAL=cluster, brought up first): a deploy, changes, an upgrade, the
## worker crash tests, three workers with a SIGKILL, a drain and a versioned rollout, the
## CLI and codec paths and a health schedule, so nothing in socflow
## leans on what only the dev server does. CLUSTER_TESTS narrows or widens the set.
CLUSTER_TESTS ?= ^(TestDeployHappyPath|TestInstanceSetConfigWorkersStartsAndStopsOnlyTheExtraWorkers|TestInstanceSetConfigLogLevelRestartsPlatformThenWorkers|TestInstanceContinuesAsNewWithoutLosingAChange|TestUpgradeOpenCTIWithWorkersAndConnector|TestDeploySurvivesWorkerKill9|TestInstanceChangeSurvivesWorkerKill9|TestReadmeTctlAndTemporalCommands|TestHistoriesCarryNoSecret|TestReadmeHealthCommands|TestWazuhInstanceKeyMismatch|TestThreeWorkersKillDrainAndRollout)$$
test-cluster: stack-up-cluster
	@$(WITH_STACK) SOCFLOW_E2E_TEMPORAL=cluster go test $(GO_TEST_FLAGS) -run '$(CLUSTER_TESTS)' ./internal/e2e/

## chaos: CHAOS_RUNS (default 50) runs of a deploy, a change or an upgrade on the local
## stack, each with one fault at a random moment drawn from SOCFLOW_CHAOS_SEED (printed;
## default the clock), then the invariants read from Pebble, the stand-in's log, the
## secret store, MinIO, OpenSearch and every history; a table in the log and a JSON
## summary under $$SOCFLOW_STACK_DIR/chaos (SOCFLOW_CHAOS_OUT). `make test` runs 5 of them.
CHAOS_RUNS ?= 50
chaos: stack-up
	@$(WITH_STACK) SOCFLOW_CHAOS_RUNS=$(CHAOS_RUNS) go test -count=1 -v -timeout 180m -run '^TestChaos$$' ./internal/e2e/

## stack-up-cluster: the local stack plus the Temporal cluster profile (PostgreSQL, temporal-server)
stack-up-cluster:
	@SOCFLOW_TEMPORAL=cluster $(STACK) up

## demo: the main job — stack up (only the parts the demo needs: `stack up demo`), worker up,
## deploy a local OpenCTI through it with live progress
demo:
	@$(STACK) up demo
	@$(WITH_STACK) deploy/local/demo

## demo-wazuh: the same for Wazuh — a master and a worker, a configuration repository, rsyslog over TLS
demo-wazuh:
	@$(STACK) up demo-wazuh
	@$(WITH_STACK) deploy/local/demo wazuh

stack-up:
	@$(STACK) up

stack-down:
	@$(STACK) down

stack-status:
	@$(STACK) status

## lint: formatting, go vet and workflowcheck over the workflow code
lint: vet workflowcheck
	@out=$$(gofmt -l $$(git ls-files '*.go'; git ls-files --others --exclude-standard '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	@go vet ./...

workflowcheck:
	@$(WITH_STACK) [ -x "$$SOCFLOW_WORKFLOWCHECK_BIN" ] \
	  || { echo "workflowcheck is not installed (make demo leaves it out): run deploy/local/stack install"; exit 1; }; \
	  "$$SOCFLOW_WORKFLOWCHECK_BIN" -config workflows/workflowcheck.config.yaml ./workflows/...

## unit: only the tests that need no stack (fast feedback while editing)
unit:
	@go test -count=1 -short ./internal/spec/... ./internal/layer/... ./internal/opencti/... ./internal/wazuh/... ./rocks/... ./deploy/k8s/...

## rocks-bin: the Go binaries the rocks ship, built from this checkout into rocks/<rock>/bin
## (static, so they run on the rock's base whatever Go it has); then `rockcraft pack` there
rocks-bin:
	@CGO_ENABLED=0 go build -trimpath -o rocks/socflow-worker/bin/socflow-worker ./worker
	@CGO_ENABLED=0 go build -trimpath -o rocks/socflow-worker/bin/starter ./starter
	@CGO_ENABLED=0 go build -trimpath -o rocks/opencti/bin/socflow-reap ./internal/reaper/cmd/socflow-reap

## bench: deploy benchmark on the local stack (stage gaps, orchestration overhead) and
## reconcile benchmark (SetConfig accepted -> applied and active); BENCH_N deploys and
## reconcile series (default 5), SOCFLOW_BENCH_INIT_DELAY the stand-in's first boot (default
## 30s), SOCFLOW_BENCH_CHANGES workers changes (default 20) and SOCFLOW_BENCH_RESTARTS
## logLevel changes (default 5) per series; then the fleet health benchmark (largest fleet
## one worker health-checks every minute with p99 < 5 s, against a trivial workflow pair of
## the same shape): SOCFLOW_BENCH_FLEET the sizes tried (default 500,1000,1250,…,3000; one
## that passes the last goes on by half again up to SOCFLOW_BENCH_FLEET_LIMIT, 9000),
## SOCFLOW_BENCH_FLEET_MINUTES the sweep per size (default 1), SOCFLOW_BENCH_FLEET_SERVER=memory
## a dev server of its own without a database file; bench-fleet runs it alone. Last, the
## report of this run's figures with their goals (socflow-benchreport): a dated table at
## the top of docs/benchmarks.md's results, docs/benchmarks.json and docs/benchmarks.png
BENCH_N ?= 5
# The JSONL file the benchmarks record their figures in for the report, emptied as
# `make bench` starts: SOCFLOW_BENCH_OUT, else the recorder's own default (package
# internal/benchreport), under the stack's state.
BENCH_OUT := $${SOCFLOW_BENCH_OUT:-$$SOCFLOW_STACK_DIR/bench/current.jsonl}
bench: stack-up
	@$(WITH_STACK) rm -f "$(BENCH_OUT)"
	@# A benchmark that fails leaves the others' figures: the report is written anyway,
	@# then make fails with the first failure's status.
	@$(WITH_STACK) status=0; \
	  SOCFLOW_BENCH_OUT="$(BENCH_OUT)" go test -run '^$$' -bench 'BenchmarkDeploy|BenchmarkReconcile|BenchmarkUpgrade|BenchmarkResume|BenchmarkHealthHistory|BenchmarkScheduleToStart' -benchtime $(BENCH_N)x -timeout 60m ./internal/e2e/ || status=$$?; \
	  $(MAKE) --no-print-directory bench-fleet || { s=$$?; [ $$status -ne 0 ] || status=$$s; }; \
	  go run ./internal/benchreport/cmd/socflow-benchreport -in "$(BENCH_OUT)" || { s=$$?; [ $$status -ne 0 ] || status=$$s; }; \
	  exit $$status

bench-fleet: stack-up
	@$(WITH_STACK) SOCFLOW_BENCH_OUT="$(BENCH_OUT)" go test -run '^$$' -bench 'BenchmarkFleetHealth' -benchtime 1x -timeout 60m ./internal/e2e/

## record-histories: re-record the replay suite's histories from real deploys on the local
## stack into replaytests/testdata/$(HISTORY_SET) (one JSON file per deploy, named after
## its e2e test). HISTORY_SET names the workflow version the current code writes: bump it
## (v3: step-status, v5: connectors, v6: upgrades, v7: platform nodes and hung migrations, v8: health checks and platform-first, v9: one local activity per health check, v10: DeployWazuh, ...) when a GetVersion change adds a version, and keep the older sets until that
## version is retired. RECORD_TESTS narrows the e2e tests; files of tests that did not
## run are kept.
HISTORY_SET ?= v11
RECORD_TESTS ?= ^(TestDeployHappyPath|TestDeployWrongRabbitMQPasswordFailsFast|TestDeployWaitsForDependencyThatComesUpLater|TestDeploySurvivesWorkerKill9|TestPlatformKilledMidInitFailsWithTheFix|TestTwoInstancesShareRedisAndRabbitMQ|TestDeployRetriesAStepUntilPebbleComesUp|TestInstanceSetConfigWorkersStartsAndStopsOnlyTheExtraWorkers|TestInstanceSetConfigLogLevelRestartsPlatformThenWorkers|TestInstanceSetConfigRejectsBadInput|TestInstanceContinuesAsNewWithoutLosingAChange|TestInstanceRedisPasswordChangeRestartsPlatformThenWorkers|TestInstanceRemovedIntegrationBlocksAndResumes|TestInstanceChangeDuringInitWaitsForHealthy|TestInstanceBurstOfChangesAcrossContinueAsNew|TestInstanceRejectsBadInputOfEveryChange|TestInstanceChangeSurvivesWorkerKill9|TestInstanceConnectorsWithPycti|TestConnectorUserAddSurvivesWorkerKill9|TestUpgradeOpenCTIWithWorkersAndConnector|TestUpgradeRollsBackAFailedMigration|TestUpgradeSurvivesWorkerKill9DuringMigration|TestTwoPlatformNodesMigrateOnce|TestUpgradeRollsBackAHungMigration|TestHealthCheckHealsAWorkerAndEscalatesABrokenOne|TestHealthCheckDependencyDownWaitsThenRecovers|TestHealthCheckReportsAndRepairsDrift|TestReadmeHealthCommands|TestHealthScheduleSurvivesServerAndWorkerRestart|TestInstanceStartsALostPlatformFirst|TestWazuhDeployMasterAndWorker|TestWazuhConfigRepoAndSyslog|TestWazuhUnknownHostKeyIsRefused|TestWazuhMalformedOssecConfFromTheRepository|TestWazuhHealthCheckFindsAWorkerWithAnotherKey|TestWazuhInstanceKeyMismatch|TestWazuhInstanceRenewsASyslogCertificate|TestReadmeWazuhInstanceCommands|TestWazuhExporterScrapedByPrometheus|TestWazuhOpenCTIIntegrationByInstance)$$
record-histories: stack-up
	@set -e; dest=$(CURDIR)/replaytests/testdata/$(HISTORY_SET); tmp=$$(mktemp -d); \
	  $(WITH_STACK) SOCFLOW_CODEC_KEYS=$(CURDIR)/replaytests/codec-test-keys.json SOCFLOW_RECORD_HISTORIES=$$tmp go test -count=1 -timeout 30m -run '$(RECORD_TESTS)' ./internal/e2e/ \
	    || { echo "record-histories: e2e tests failed; nothing copied (partial recordings in $$tmp)"; exit 1; }; \
	  mkdir -p $$dest; cp $$tmp/*.json $$dest/; rm -rf $$tmp; \
	  ls -l $$dest/*.json
