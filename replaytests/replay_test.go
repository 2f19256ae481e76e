package replaytests

import (
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/socflow/socflow/internal/workerapp"
	"github.com/socflow/socflow/workflows"
)

// importantPath is an e2e test (internal/e2e) whose runs `make record-histories`
// records, and the first history set that has it: a path a GetVersion change added
// cannot be in the sets recorded before that change.
type importantPath struct {
	name  string
	since int // the set vN from which every set holds it
}

// importantPaths are the recordings every history set from their `since` on must hold
// for a workflow type. A new workflow path adds its e2e test here and its recordings in
// the same change.
var importantPaths = map[string][]importantPath{
	workflows.DeployOpenCTIWorkflow: {
		{"TestDeployHappyPath", 0},                          // deploy, and a redeploy that resumes (-2)
		{"TestDeployWaitsForDependencyThatComesUpLater", 0}, // Redis down at the start, up later
		{"TestDeployWrongRabbitMQPasswordFailsFast", 0},     // a permanent fault: fails at once
		{"TestDeploySurvivesWorkerKill9", 0},                // worker killed twice, resumed from history
		{"TestPlatformKilledMidInitFailsWithTheFix", 2},     // crash loop judged hopeless: platform stopped
		{"TestTwoInstancesShareRedisAndRabbitMQ", 2},        // two deploys, and a third refused by the prefix pre-flight
		{"TestDeployRetriesAStepUntilPebbleComesUp", 3},     // pushing-plan retried by the workflow until Pebble is up
		{"TestTwoPlatformNodesMigrateOnce", 7},              // a further node started once the first is healthy
	},
	workflows.OpenCTIInstanceWorkflow: {
		{"TestInstanceSetConfigWorkersStartsAndStopsOnlyTheExtraWorkers", 3}, // deploy child, workers 5 (start two), a repeated request, workers 3 (stop two)
		{"TestInstanceSetConfigLogLevelRestartsPlatformThenWorkers", 3},      // platform restarted, waited on, then the workers
		{"TestInstanceSetConfigRejectsBadInput", 3},                          // rejected updates leave no trace; a rejected signal is reported
		{"TestInstanceContinuesAsNewWithoutLosingAChange", 3},                // updates and signals across Continue-As-New (the first run)
		{"TestInstanceRedisPasswordChangeRestartsPlatformThenWorkers", 4},    // SetIntegration: platform restarted, health check re-added, workers follow
		{"TestInstanceRemovedIntegrationBlocksAndResumes", 4},                // RemoveIntegration blocks (workers stopped), SetIntegration resumes
		{"TestInstanceChangeDuringInitWaitsForHealthy", 4},                   // deploy progress signalled to the parent; a change queued during init
		{"TestInstanceBurstOfChangesAcrossContinueAsNew", 4},                 // previews and 5 concurrent clients' updates, Continue-As-New (first run)
		{"TestInstanceRejectsBadInputOfEveryChange", 4},                      // rejected updates and signals of every change, then a good one
		{"TestInstanceChangeSurvivesWorkerKill9", 4},                         // worker SIGKILLed during a platform restart, finished once by another
		{"TestInstanceConnectorsWithPycti", 5},                               // connectors: deploy's, added, checked (waiting/active), removed, back, rejected
		{"TestConnectorUserAddSurvivesWorkerKill9", 5},                       // worker SIGKILLed with userAdd unanswered; the retry finds the user
		{"TestUpgradeOpenCTIWithWorkersAndConnector", 6},                     // Upgrade changes: a check, a refused downgrade, the upgrade and its connectors
		{"TestTwoPlatformNodesMigrateOnce", 7},                               // a change and an upgrade on two platform nodes
		{"TestHealthCheckHealsAWorkerAndEscalatesABrokenOne", 8},             // health checks: heals, a heal limit reached (blocked), cleared
		{"TestHealthCheckDependencyDownWaitsThenRecovers", 8},                // waiting on a dependency down, active again
		{"TestHealthCheckReportsAndRepairsDrift", 8},                         // drift re-applied as a change
		{"TestReadmeHealthCommands", 8},                                      // the instance creates its health schedule
		{"TestInstanceStartsALostPlatformFirst", 8},                          // a restarted container's platform started alone, waited on, then the workers
	},
	workflows.HealthCheckWorkflow: {
		{"TestHealthCheckHealsAWorkerAndEscalatesABrokenOne", 8}, // ok, degraded and healed, escalated
		{"TestHealthCheckDependencyDownWaitsThenRecovers", 8},    // down, then ok
		{"TestHealthCheckReportsAndRepairsDrift", 8},             // drift
		{"TestWazuhHealthCheckFindsAWorkerWithAnotherKey", 10},   // a Wazuh instance: ok, a worker out of the cluster, ok again
		{"TestWazuhInstanceKeyMismatch", 11},                     // reports told to the WazuhInstance when they change
	},
	workflows.DeployWazuhWorkflow: {
		{"TestWazuhDeployMasterAndWorker", 10},               // master and worker, a redeploy that changes nothing, a factory reset repaired
		{"TestWazuhConfigRepoAndSyslog", 10},                 // repository synced, one component changed, unchanged ref
		{"TestWazuhUnknownHostKeyIsRefused", 10},             // a permanent refusal before anything is applied
		{"TestWazuhMalformedOssecConfFromTheRepository", 10}, // blocked on a bad ossec.conf, then fixed
		{"TestWazuhExporterScrapedByPrometheus", 11},         // the exporter started after the API users, kept on a redeploy
		{"TestWazuhOpenCTIIntegrationByInstance", 11},        // refused before the OpenCTI instance exists, then related to it
	},
	workflows.WazuhInstanceWorkflow: {
		{"TestWazuhInstanceKeyMismatch", 11},              // deploy child, blocked by a report, Reconcile (signal), a node retired
		{"TestWazuhInstanceRenewsASyslogCertificate", 11}, // waiting on an expiring certificate, its own Reconcile once renewed
		{"TestReadmeWazuhInstanceCommands", 11},           // started by tctl; ApplySpec and Reconcile by update and signal
	},
	workflows.UpgradeOpenCTIWorkflow: {
		{"TestUpgradeOpenCTIWithWorkersAndConnector", 6},     // pre-flight, stops, snapshot, migration, verify, workers' post-check
		{"TestUpgradeRollsBackAFailedMigration", 6},          // a failed migration rolled back from the snapshot
		{"TestUpgradeSurvivesWorkerKill9DuringMigration", 6}, // the worker SIGKILLed while the platform migrates
		{"TestTwoPlatformNodesMigrateOnce", 7},               // the further node stopped first, started after the migration
		{"TestUpgradeRollsBackAHungMigration", 7},            // a migration judged hung, rolled back
	},
}

// history is one recorded history file.
type history struct {
	path, set, name, workflowType string
	events                        *historypb.History
}

// loadHistories reads every testdata/<set>/*.json; a set is the workflow version its
// histories were recorded with (v0: before the first GetVersion change, v1: ...).
func loadHistories(t *testing.T) []history {
	t.Helper()
	var hs []history
	err := filepath.WalkDir("testdata", func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || filepath.Ext(path) != ".json" {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		if err != nil {
			t.Errorf("%s: cannot decode the history: %v", path, err)
			return nil
		}
		if len(h.GetEvents()) == 0 || h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes() == nil {
			t.Errorf("%s: history does not begin with WorkflowExecutionStarted", path)
			return nil
		}
		started := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
		rel, _ := filepath.Rel("testdata", path)
		hs = append(hs, history{
			path: path, set: filepath.Dir(rel), name: strings.TrimSuffix(filepath.Base(path), ".json"),
			workflowType: started.GetWorkflowType().GetName(), events: h,
		})
		return nil
	})
	if err != nil {
		t.Fatalf("cannot read testdata: %v", err)
	}
	if len(hs) == 0 {
		t.Fatal("no recorded histories in testdata/: run `make record-histories`")
	}
	return hs
}

// TestReplayRecordedHistories replays every recorded history against the current
// workflow code, registered as the worker registers it and decoded with the production
// DataConverter. A failure means a change would break workflows running today: guard it
// with workflow.GetVersion (README, "Changing a workflow safely").
func TestReplayRecordedHistories(t *testing.T) {
	hs := loadHistories(t)
	replayer, err := workerapp.NewReplayer()
	if err != nil {
		t.Fatal(err)
	}
	// The SDK logs a non-determinism as a "Workflow panic"; the failure below says it once.
	logger := log.NewStructuredLogger(slog.New(slog.DiscardHandler))
	for _, h := range hs {
		t.Run(h.set+"/"+h.name, func(t *testing.T) {
			if !slices.Contains(workerapp.WorkflowTypes(), h.workflowType) {
				t.Fatalf("%s: workflow type %q is not registered by the worker (workerapp.RegisterWorkflows)", h.path, h.workflowType)
			}
			if err := replayer.ReplayWorkflowHistory(logger, h.events); err != nil {
				t.Fatalf("%s no longer replays: %v\n(a change to %s alters its command sequence: guard it with workflow.GetVersion)",
					h.path, err, h.workflowType)
			}
		})
	}
}

// TestEveryWorkflowTypeHasHistories fails when a registered workflow type, or one of
// its important paths, has no recording: replay can only prove what was recorded.
func TestEveryWorkflowTypeHasHistories(t *testing.T) {
	hs := loadHistories(t)
	bySet := map[string]map[string][]string{} // set -> type -> names
	for _, h := range hs {
		if bySet[h.set] == nil {
			bySet[h.set] = map[string][]string{}
		}
		bySet[h.set][h.workflowType] = append(bySet[h.set][h.workflowType], h.name)
	}
	for _, typ := range workerapp.WorkflowTypes() {
		paths, ok := importantPaths[typ]
		if !ok {
			t.Errorf("workflow type %s has no entry in importantPaths: name the e2e tests whose deploys cover it", typ)
		}
		found := false
		for set, types := range bySet {
			if len(types[typ]) == 0 {
				continue
			}
			found = true
			n, err := strconv.Atoi(strings.TrimPrefix(set, "v"))
			if err != nil || !strings.HasPrefix(set, "v") {
				t.Errorf("testdata/%s: a history set is named v<N>", set)
				continue
			}
			for _, p := range paths {
				// A test's first recording is <Test>, the children it records <Test>-N.
				recorded := slices.ContainsFunc(types[typ], func(name string) bool { return name == p.name || strings.HasPrefix(name, p.name+"-") })
				if n >= p.since && !recorded {
					t.Errorf("testdata/%s has no %s history of %s: run `make record-histories HISTORY_SET=%s`", set, typ, p.name, set)
				}
			}
		}
		if !found {
			t.Errorf("workflow type %s has no recorded history in testdata/: run `make record-histories`", typ)
		}
	}
}

// TestHistoriesEndClosed keeps open (mid-run) recordings out of testdata: a closed
// history proves the whole run replays, an open one only its beginning.
func TestHistoriesEndClosed(t *testing.T) {
	for _, h := range loadHistories(t) {
		switch last := h.events.GetEvents()[len(h.events.GetEvents())-1].GetEventType(); last {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
		default:
			t.Errorf("%s ends with %s, not a closed run", h.path, last)
		}
	}
}
