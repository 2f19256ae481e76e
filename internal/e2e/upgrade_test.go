package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	tclient "go.temporal.io/sdk/client"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/workflows"
)

// searchDo calls the stack's OpenSearch and returns the status and body.
func searchDo(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, stacktest.Get(t).OpenSearchURL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// upgradeTargetCommand is the stand-in's command line at another version, with a
// migration phase long enough to be seen.
func upgradeTargetCommand(inst opencti.Instance, version string) string {
	cmd := strings.Replace(inst.OpenCTI.PlatformCommand, "-version "+inst.OpenCTI.Version, "-version "+version, 1)
	return strings.Replace(cmd, "-migration-delay 0", "-migration-delay 4s", 1)
}

// writeMarker writes a document into the instance's domain objects, as data an
// upgrade must keep (or a rollback bring back).
func writeMarker(t *testing.T, inst opencti.Instance) {
	t.Helper()
	if code, body := searchDo(t, http.MethodPut, "/"+inst.Name+"_stix_domain_objects/_doc/socflow-upgrade-marker?refresh=true",
		map[string]any{"entity_type": "Note", "content": "written before the upgrade"}); code >= 300 {
		t.Fatalf("cannot write the marker document: %d %s", code, body)
	}
}

// checkData checks the marker document is there and the data's MigrationStatus is
// at version, after an upgrade (or its rollback).
func checkData(t *testing.T, inst opencti.Instance, version, after string) {
	t.Helper()
	if code, body := searchDo(t, http.MethodGet, "/"+inst.Name+"_stix_domain_objects/_doc/socflow-upgrade-marker", nil); code != http.StatusOK ||
		!strings.Contains(string(body), "written before the upgrade") {
		t.Errorf("the document written before the upgrade, after the %s: %d %s", after, code, body)
	}
	_, ms := searchDo(t, http.MethodPost, "/"+inst.Name+"_internal_objects/_search", map[string]any{"query": map[string]any{"match": map[string]any{"entity_type": "MigrationStatus"}}})
	if !strings.Contains(string(ms), `"platformVersion":"`+version+`"`) {
		t.Errorf("MigrationStatus after the %s: %s, want platformVersion %s", after, ms, version)
	}
}

// stopTimes are the spawn times of the stop changes of a Pebble after a change ID.
func stopTimes(t *testing.T, socket, after string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	for _, ch := range changesAfter(t, socket, after) {
		if ch.Kind == "stop" {
			out[ch.Summary] = ch.SpawnTime
		}
	}
	return out
}

// TestUpgradeOpenCTIWithWorkersAndConnector is issue 11's upgrade on the real stack:
// 6.9.28 with 3 workers and a pycti connector. The pre-flight alone (check) reports
// findings and changes nothing; a downgrade is refused before anything is recorded,
// every index template and the Pebble change list unchanged; the upgrade stops the
// connector, then the workers, then the platform, starts the platform on 7.260318.0
// (the status shows it migrating), verifies about.version, starts the workers, and
// brings the connector up on the target's pycti; the document written before is
// there after.
func TestUpgradeOpenCTIWithWorkersAndConnector(t *testing.T) {
	const from, to = "6.9.28", "7.260318.0"
	c, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: time.Second, version: from})
	fixture := pyctiConnector(t, inst, "fixture", opencti.ExternalImport, "identity")
	inst.Connectors = []opencti.Connector{fixture}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("connector output:\n%s", strings.Join(serviceLogs(t, fixture.Pebble.Socket, opencti.ConnectorService), ""))
		}
	})
	run := startInstanceWith(t, c, queue, inst)
	id := run.GetID()
	waitInstance(t, c, id, 4*time.Minute, "active with its connector", connectorsRunning(1))
	recordHistory(t, c, c.GetWorkflow(context.Background(), workflows.UpgradeWorkflowID(inst.Name), ""))

	writeMarker(t, inst)

	check, err := applyChange(t, c, id, workflows.UpgradeUpdate, workflows.UpgradeRequest{RequestID: "check", TargetVersion: to, Check: true})
	if err != nil || check.Upgrade == nil || check.Upgrade.Outcome != workflows.UpgradeChecked || opencti.Blocking(check.Upgrade.Findings) {
		t.Fatalf("pre-flight check: %+v %v", check, err)
	}
	t.Logf("pre-flight findings: %v", check.Upgrade.Findings)

	// A downgrade is refused before anything is recorded: templates and Pebble untouched.
	_, templatesBefore := searchDo(t, http.MethodGet, "/_index_template/"+inst.Name+"_*", nil)
	lastBefore := lastChange(t, inst.Pebble.Socket)
	if _, err := applyChange(t, c, id, workflows.UpgradeUpdate, workflows.UpgradeRequest{TargetVersion: "6.9.3"}); err == nil ||
		!strings.Contains(err.Error(), "targetVersion: 6.9.3 is older than the running 6.9.28: OpenCTI cannot downgrade its data") {
		t.Errorf("downgrade: %v", err)
	}
	if _, after := searchDo(t, http.MethodGet, "/_index_template/"+inst.Name+"_*", nil); !bytes.Equal(after, templatesBefore) {
		t.Error("the index templates changed on a refused downgrade")
	}
	if got := lastChange(t, inst.Pebble.Socket); got != lastBefore {
		t.Errorf("Pebble changed on a refused downgrade: %s, before %s", got, lastBefore)
	}

	connectorBefore := lastChange(t, fixture.Pebble.Socket)
	req := workflows.UpgradeRequest{RequestID: "upgrade", TargetVersion: to, PlatformCommand: upgradeTargetCommand(inst, to),
		WorkerCommand: inst.OpenCTI.WorkerCommand + " -version " + to}
	py7 := os.Getenv("SOCFLOW_PYCTI7_PYTHON")
	if py7 == "" {
		t.Fatal("SOCFLOW_PYCTI7_PYTHON is not set: run deploy/local/stack up, which installs the target's pycti")
	}
	req.ConnectorCommands = map[string]string{fixture.Name: strings.Replace(fixture.Command, os.Getenv("SOCFLOW_PYCTI_PYTHON"), py7, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	h, err := sendChange(ctx, c, id, workflows.UpgradeUpdate, "upgrade", req, tclient.WorkflowUpdateStageAccepted)
	if err != nil {
		t.Fatal(err)
	}
	// The child's status, polled while it runs: the phases it shows.
	var steps, progress []string
	done, polled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(polled)
		for {
			st, err := queryUpgrade(c, inst.Name)
			if err == nil && st.Status.Step != "" && !slices.Contains(steps, st.Status.Step) {
				steps = append(steps, st.Status.Step)
			}
			if err == nil && st.Status.Step == "migrating" && !slices.Contains(progress, st.Status.Message) {
				progress = append(progress, st.Status.Message)
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	var res workflows.ChangeResult
	err = h.Get(ctx, &res)
	close(done)
	<-polled
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	t.Logf("upgrade phases seen: %v; result %s", steps, res.Summary)
	if res.Upgrade == nil || res.Upgrade.Outcome != workflows.UpgradeUpgraded || res.Upgrade.To != to {
		t.Errorf("upgrade result %+v", res.Upgrade)
	}
	if !slices.Contains(steps, "migrating") {
		t.Errorf("the status never showed the platform migrating: %v", steps)
	}
	if !slices.ContainsFunc(progress, func(m string) bool {
		return strings.Contains(m, "refreshing its mappings") || strings.Contains(m, "migrations done")
	}) {
		t.Errorf("the migrating status never told the migration's progress from the platform's output: %q", progress)
	}
	t.Logf("migration progress shown: %q", progress)
	// Order: the connector, then the workers, then the platform stopped.
	cs, ps := stopTimes(t, fixture.Pebble.Socket, connectorBefore), stopTimes(t, inst.Pebble.Socket, lastBefore)
	var connStop, workersStop, platformStop time.Time
	for s, at := range cs {
		if strings.Contains(s, opencti.ConnectorService) {
			connStop = at
		}
	}
	for s, at := range ps {
		switch {
		case strings.Contains(s, "worker-0"):
			workersStop = at
		case strings.Contains(s, `"platform"`):
			platformStop = at
		}
	}
	if connStop.IsZero() || workersStop.IsZero() || platformStop.IsZero() || !connStop.Before(workersStop) || !workersStop.Before(platformStop) {
		t.Errorf("stops: connector %s, workers %s, platform %s (changes %v / %v); want in that order", connStop, workersStop, platformStop, cs, ps)
	}
	st := waitInstance(t, c, id, 3*time.Minute, "active on the target with its connector", connectorsRunning(1))
	if st.Version != to {
		t.Errorf("instance version after the upgrade: %s", st.Version)
	}
	if got := activeServices(t, inst.Pebble.Socket); !slices.Equal(got, []string{"platform", "worker-0", "worker-1", "worker-2"}) {
		t.Errorf("services after the upgrade: %v", got)
	}
	if plan, err := pebbleClient(t, fixture.Pebble.Socket).PlanBytes(nil); err != nil || !strings.Contains(string(plan), py7) {
		t.Errorf("the connector's plan after the upgrade does not run the target's pycti (%s): %v\n%s", py7, err, plan)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 2 {
		t.Errorf("platform started %d times, want 2 (deploy, upgrade)", n)
	}
	checkData(t, inst, to, "upgrade")
	// A downgrade of the upgraded instance is refused too, naming both versions.
	if _, err := applyChange(t, c, id, workflows.UpgradeUpdate, workflows.UpgradeRequest{TargetVersion: from}); err == nil ||
		!strings.Contains(err.Error(), fmt.Sprintf("%s is older than the running %s", from, to)) {
		t.Errorf("downgrade after the upgrade: %v", err)
	}
}

// queryUpgrade reads the status of an instance's upgrade child.
func queryUpgrade(c tclient.Client, name string) (workflows.UpgradeStatus, error) {
	var st workflows.UpgradeStatus
	v, err := c.QueryWorkflow(context.Background(), workflows.UpgradeWorkflowID(name), "", workflows.StatusQuery)
	if err == nil {
		err = v.Get(&st)
	}
	return st, err
}

// startUpgrade sends an Upgrade to the instance and returns once it is accepted.
func startUpgrade(t *testing.T, c tclient.Client, id string, req workflows.UpgradeRequest) tclient.WorkflowUpdateHandle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := sendChange(ctx, c, id, workflows.UpgradeUpdate, req.RequestID, req, tclient.WorkflowUpdateStageAccepted)
	if err != nil {
		t.Fatalf("Upgrade not accepted: %v", err)
	}
	return h
}

// changeResult waits for an accepted change's result.
func changeResult(t *testing.T, h tclient.WorkflowUpdateHandle, limit time.Duration) workflows.ChangeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var res workflows.ChangeResult
	if err := h.Get(ctx, &res); err != nil {
		t.Fatalf("change %s: %v", h.UpdateID(), err)
	}
	return res
}

// upgradeResult waits for an accepted Upgrade's result, which must be upgraded.
func upgradeResult(t *testing.T, h tclient.WorkflowUpdateHandle, limit time.Duration) workflows.ChangeResult {
	t.Helper()
	res := changeResult(t, h, limit)
	if res.Upgrade == nil || res.Upgrade.Outcome != workflows.UpgradeUpgraded {
		t.Fatalf("upgrade result: %+v", res)
	}
	return res
}

// TestUpgradeSurvivesWorkerKill9DuringMigration: the socflow worker is SIGKILLed while
// the platform migrates for 60 s (its port closed); the wait resumes on another worker
// and the platform is never restarted: it started once for the upgrade, and the
// upgrade completes on the target version.
func TestUpgradeSurvivesWorkerKill9DuringMigration(t *testing.T) {
	const from, to = "6.9.28", "7.260318.0"
	c := temporalClient(t)
	secretDir := t.TempDir()
	queue := fmt.Sprintf("e2e-upgrade-kill9-%d", time.Now().UnixNano())
	inst := newInstance(t, instanceOpts{initDelay: time.Second, version: from, workers: 1})
	w1 := startWorkerProcess(t, "worker-1", queue, secretDir)
	run := startInstanceWith(t, c, queue, inst)
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	recordHistory(t, c, c.GetWorkflow(context.Background(), workflows.UpgradeWorkflowID(inst.Name), ""))

	target := strings.Replace(upgradeTargetCommand(inst, to), "-migration-delay 4s", "-migration-delay 60s", 1)
	h := startUpgrade(t, c, id, workflows.UpgradeRequest{RequestID: "kill9-upgrade", TargetVersion: to, PlatformCommand: target,
		WorkerCommand: inst.OpenCTI.WorkerCommand + " -version " + to})
	waitQuery(t, c, workflows.UpgradeWorkflowID(inst.Name), 2*time.Minute, 100*time.Millisecond, "migrating", func(s workflows.UpgradeStatus) bool {
		return s.Status.Step == "migrating"
	})
	startsBefore := platformStarts(t, inst.Pebble.Socket)
	time.Sleep(5 * time.Second) // well inside the 60 s migration
	w1.kill9(t)
	t.Log("worker killed while the platform migrates")
	startWorkerProcess(t, "worker-2", queue, secretDir)
	res := upgradeResult(t, h, 5*time.Minute)
	if n := platformStarts(t, inst.Pebble.Socket); n != startsBefore {
		t.Errorf("the platform started %d times since the migration began, want 0 (it was restarted)", n-startsBefore)
	}
	if res.Upgrade.To != to {
		t.Errorf("upgrade result %+v", res.Upgrade)
	}
	st := waitInstance(t, c, id, time.Minute, "active", activeInstance)
	if st.Version != to {
		t.Errorf("version after the upgrade: %s", st.Version)
	}
}

// TestUpgradeKillsAHungPlatformStop: the running platform's stop hangs on SIGTERM, as
// real stops sometimes do for minutes; Pebble's kill-delay bounds the wait and
// SIGKILLs it, and the upgrade goes on to the target.
func TestUpgradeKillsAHungPlatformStop(t *testing.T) {
	const from, to = "6.9.28", "7.260318.0"
	c, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: time.Second, version: from, workers: 1, stopHang: true})
	run := startInstanceWith(t, c, queue, inst)
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	before := lastChange(t, inst.Pebble.Socket)
	began := time.Now()
	h := startUpgrade(t, c, id, workflows.UpgradeRequest{RequestID: "hung-stop", TargetVersion: to, PlatformCommand: upgradeTargetCommand(inst, to),
		WorkerCommand: inst.OpenCTI.WorkerCommand + " -version " + to})
	upgradeResult(t, h, 5*time.Minute)
	var stop *client.Change
	for _, ch := range changesAfter(t, inst.Pebble.Socket, before) {
		if ch.Kind == "stop" && strings.Contains(ch.Summary, `"platform"`) {
			stop = ch
		}
	}
	if stop == nil || stop.Status != "Done" || stop.ReadyTime.Sub(stop.SpawnTime) < opencti.PlatformKillDelay {
		t.Fatalf("the platform's stop: %+v; want one that lasted the kill-delay (%s), then SIGKILL", stop, opencti.PlatformKillDelay)
	}
	if n := logCount(t, inst.Pebble.Socket, opencti.PlatformService, "Platform stopped"); n != 0 {
		t.Errorf("the hung platform logged %d clean stops; it should have been killed", n)
	}
	t.Logf("upgrade with a hung stop took %s (stop %s)", time.Since(began).Round(time.Second), stop.ReadyTime.Sub(stop.SpawnTime).Round(time.Second))
}

// TestUpgradeRollsBackAFailedMigration: the target's migration legacy_token_migration
// fails (exit 1, the real lines), so the upgrade rolls back: the snapshot taken after
// everything stopped is restored (the document written before is there, the data's
// version is the old one again), the previous version runs and is verified, its
// worker runs, and the result says "rolled back" with the migration's error.
func TestUpgradeRollsBackAFailedMigration(t *testing.T) {
	const from, to = "6.9.28", "7.260318.0"
	c, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: time.Second, version: from, workers: 1})
	run := startInstanceWith(t, c, queue, inst)
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	recordHistory(t, c, c.GetWorkflow(context.Background(), workflows.UpgradeWorkflowID(inst.Name), ""))
	writeMarker(t, inst)
	failing := upgradeTargetCommand(inst, to) + " -fail-migration legacy_token_migration"
	h := startUpgrade(t, c, id, workflows.UpgradeRequest{RequestID: "failing-upgrade", TargetVersion: to, PlatformCommand: failing})
	u := changeResult(t, h, 6*time.Minute).Upgrade
	if u == nil || u.Outcome != workflows.UpgradeRolledBack || !strings.Contains(u.Reason, "legacy_token_migration") || u.Snapshot == "" {
		t.Fatalf("result of a failed migration: %+v", u)
	}
	t.Logf("rolled back: %s (snapshot %s)", u.Reason, u.Snapshot)
	st := waitInstance(t, c, id, time.Minute, "active again", activeInstance)
	if st.Version != from || st.Snapshot != u.Snapshot || !strings.Contains(st.LastReason, "rolled back") {
		t.Errorf("status after the rollback: version %s, snapshot %s, last reason %q", st.Version, st.Snapshot, st.LastReason)
	}
	checkData(t, inst, from, "rollback")
	if got := activeServices(t, inst.Pebble.Socket); !slices.Equal(got, []string{"platform", "worker-0"}) {
		t.Errorf("services after the rollback: %v", got)
	}
}

// TestUpgradeRollsBackWhenWorkersDoNotWork: the target's platform migrates and
// answers, but the request kept the 6.9.28 workers, which against 7.x stay alive and
// fail every call (opencti.md §8); the post-check sees their errors and the upgrade
// rolls back, naming the worker's error and the fix.
func TestUpgradeRollsBackWhenWorkersDoNotWork(t *testing.T) {
	const from, to = "6.9.28", "7.260318.0"
	c, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: time.Second, version: from, workers: 1})
	run := startInstanceWith(t, c, queue, inst)
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	h := startUpgrade(t, c, id, workflows.UpgradeRequest{RequestID: "old-workers", TargetVersion: to, PlatformCommand: upgradeTargetCommand(inst, to)})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var res workflows.ChangeResult
	if err := h.Get(ctx, &res); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if u := res.Upgrade; u == nil || u.Outcome != workflows.UpgradeRolledBack ||
		!strings.Contains(u.Reason, "the workers run but do not work against "+to) || !strings.Contains(u.Reason, "GRAPHQL_VALIDATION_FAILED") {
		t.Fatalf("upgrade with the old workers: %+v", res.Upgrade)
	}
	t.Logf("rolled back: %s", res.Upgrade.Reason)
	if st := waitInstance(t, c, id, time.Minute, "active", activeInstance); st.Version != from {
		t.Errorf("version after the rollback: %s", st.Version)
	}
}

// TestReadmeUpgradeCommands runs the README's upgrade block verbatim with the real
// starter, tctl and temporal, changing only the address, task queue, instance, IDs
// and the platform's and workers' command lines (the stand-in's in place of the
// rock's): a check by the starter and by an UpgradeOpenCTI tctl starts (forwarded to
// the instance, its result plain JSON), the upgrade by the starter, the upgrade's
// status read by tctl without the codec, and a downgrade refused by temporal.
func TestReadmeUpgradeCommands(t *testing.T) {
	const from, to = "6.9.28", "7.260318.0"
	st := stacktest.Get(t)
	c, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: time.Second, version: from, workers: 1})
	run := startInstanceWith(t, c, queue, inst)
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	checkID := "upgrade-" + inst.Name + "-check"
	terminateAtEnd(t, c, checkID)
	cmds := readmeBlock(t, "## Upgrading an instance", "check", "tctl run", "upgrade", "query", "downgrade")
	local := strings.NewReplacer(
		"127.0.0.1:7233", st.TemporalAddress,
		"--taskqueue socflow", "--taskqueue "+queue,
		"opencti/demo", id,
		"opencti-upgrade-demo", workflows.UpgradeWorkflowID(inst.Name),
		"upgrade-demo-check", checkID,
		`"instance": "demo"`, `"instance": "`+inst.Name+`"`,
		" demo ", " "+inst.Name+" ",
		`platformCommand="node build/back.js"`, `platformCommand="`+upgradeTargetCommand(inst, to)+`"`,
		`workerCommand="python3 worker.py"`, `workerCommand="`+inst.OpenCTI.WorkerCommand+" -version "+to+`"`,
		"http://127.0.0.1:8089", "http://"+os.Getenv("SOCFLOW_CODEC_ADDR"),
	)
	runCmd, must := readmeRunner(t, t.TempDir(), local, cmds, "SOCFLOW_TASK_QUEUE="+queue)

	if out := must(0); !strings.Contains(out, "upgrade "+from+" -> "+to+": checked") || !strings.Contains(out, "warning: rabbitmq") {
		t.Errorf("starter upgrade --check:\n%s", out)
	}
	if out := must(1); !strings.Contains(out, `"outcome":"checked"`) || strings.Contains(out, "binary/encrypted") {
		t.Errorf("tctl's UpgradeOpenCTI check did not return the plain result:\n%s", out)
	}
	if out := must(2); !strings.Contains(out, "upgrade "+from+" -> "+to+": upgraded") || !strings.Contains(out, "snapshot") {
		t.Errorf("starter upgrade:\n%s", out)
	}
	if out := must(3); strings.Contains(out, "encoding") || !strings.Contains(out, `"to":"`+to+`"`) || !strings.Contains(out, `"snapshot":"`) {
		t.Errorf("tctl's status query of the upgrade is not plain JSON naming the target and the snapshot:\n%s", out)
	}
	if out, err := runCmd(cmds[4]); err == nil || !strings.Contains(out, "targetVersion: "+from+" is older than the running "+to) {
		t.Errorf("temporal's downgrade: exit %v, want a rejection:\n%s", err, out)
	}
	if s := waitInstance(t, c, id, time.Minute, "active", activeInstance); s.Version != to {
		t.Errorf("instance version after the README's upgrade: %s", s.Version)
	}
}

// TestUpgradeResumesAfterThePlatformIsKilledMidMigration: the platform itself is
// SIGKILLed half way through its migrations (opencti.md §8); Pebble restarts it, the
// restart inside the init lock's TTL fails with LOCK_ERROR, a later one resumes the
// remaining migrations, and the upgrade — which waits through it, never restarting
// the platform itself — completes on the target with every migration recorded once.
func TestUpgradeResumesAfterThePlatformIsKilledMidMigration(t *testing.T) {
	const from, to = "6.9.28", "7.260318.0"
	c, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: time.Second, version: from, workers: 1})
	run := startInstanceWith(t, c, queue, inst)
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	writeMarker(t, inst)
	// Slow migrations (2 s each) so the kill lands between two of them.
	// A start retries a held lock for 1 s only, so the restart inside the dead
	// process's lock (its child lingers 2 s, then the TTL's 3 s) fails with LOCK_ERROR
	// as the real one does (26 s of retries against 60 s + 60 s).
	target := strings.NewReplacer("-migration-delay 4s", "-migration-delay 1s -migration-step-delay 2s", "-lock-retry 3s", "-lock-retry 1s").
		Replace(upgradeTargetCommand(inst, to))
	h := startUpgrade(t, c, id, workflows.UpgradeRequest{RequestID: "platform-killed", TargetVersion: to, PlatformCommand: target,
		WorkerCommand: inst.OpenCTI.WorkerCommand + " -version " + to})
	deadline := time.Now().Add(2 * time.Minute)
	for logCount(t, inst.Pebble.Socket, opencti.PlatformService, "Saving current configuration") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the migrations never began")
		}
		time.Sleep(100 * time.Millisecond)
	}
	starts := platformStarts(t, inst.Pebble.Socket)
	kill9(t, platformPID(t, inst.Name))
	t.Log("platform killed after its second migration")
	res := upgradeResult(t, h, 5*time.Minute)
	if n := platformStarts(t, inst.Pebble.Socket); n < starts+1 {
		t.Errorf("the platform did not start again after the kill (%d starts, %d before)", n, starts)
	}
	if n := logCount(t, inst.Pebble.Socket, opencti.PlatformService, "Platform version updated to "+to); n != 1 {
		t.Errorf("the migration completed %d times, want once", n)
	}
	locked := logCount(t, inst.Pebble.Socket, opencti.PlatformService, "LOCK_ERROR")
	if locked == 0 {
		t.Error("no restart met the dead platform's init lock (LOCK_ERROR)")
	}
	t.Logf("upgraded after the kill: %s; starts that met the lock: %d", res.Summary, locked)
	checkData(t, inst, to, "upgrade")
}

// TestUpgradeRefusedLeavesTheInstanceServing: an upgrade the pre-flight refuses (no
// snapshot repository: nothing could be restored) changes nothing and leaves the
// instance active, its findings in the result; an UpgradeOpenCTI started on its own
// with a bad target hears the instance's rejection at once instead of waiting.
func TestUpgradeRefusedLeavesTheInstanceServing(t *testing.T) {
	const from, to = "6.9.28", "7.260318.0"
	c, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: time.Second, version: from, workers: 1})
	inst.Integrations.OpenSearch.SnapshotRepository = ""
	run := startInstanceWith(t, c, queue, inst)
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	before := lastChange(t, inst.Pebble.Socket)
	_, err := applyChange(t, c, id, workflows.UpgradeUpdate, workflows.UpgradeRequest{RequestID: "no-repo", TargetVersion: to})
	if err == nil || !strings.Contains(err.Error(), "refused by the pre-flight, nothing was changed") ||
		!strings.Contains(err.Error(), "snapshotRepository is not set") {
		t.Fatalf("upgrade without a snapshot repository: %v", err)
	}
	st := waitInstance(t, c, id, time.Minute, "active", activeInstance)
	if st.Version != from || lastChange(t, inst.Pebble.Socket) != before {
		t.Errorf("a refused upgrade changed something: version %s, status %s", st.Version, st.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fwd, err := c.ExecuteWorkflow(ctx, tclient.StartWorkflowOptions{ID: "upgrade-" + inst.Name + "-bad", TaskQueue: queue},
		workflows.UpgradeOpenCTIWorkflow, workflows.UpgradeInput{Instance: inst.Name, UpgradeTarget: opencti.UpgradeTarget{Version: "7.x"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fwd.Get(ctx, nil); err == nil || !strings.Contains(err.Error(), `targetVersion: must be a release number`) {
		t.Errorf("UpgradeOpenCTI with a bad target: %v, want the instance's rejection", err)
	}
}

// TestUpgradeRollsBackAHungMigration: the target's platform freezes at its second
// migration (-hang-migration: no more lines, its lock child stopped so the init lock
// expires, SIGTERM never handled). The wait tells it from a slow migration — no
// migration line and no init-lock refresh for the hang bound — and the upgrade rolls
// back: the frozen platform is killed after the kill-delay, the snapshot restored, the
// previous version started; the result names the hang.
func TestUpgradeRollsBackAHungMigration(t *testing.T) {
	const from, to = "6.9.28", "7.260318.0"
	c, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: time.Second, version: from, workers: 1})
	const hangAfter = 15 * time.Second
	run := startInstanceInput(t, c, queue, workflows.InstanceInput{Instance: inst, ConnectorCheckEvery: connectorCheckEvery, MigrationHangAfter: hangAfter})
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	recordHistory(t, c, c.GetWorkflow(context.Background(), workflows.UpgradeWorkflowID(inst.Name), ""))
	writeMarker(t, inst)
	before := lastChange(t, inst.Pebble.Socket)
	hanging := strings.Replace(upgradeTargetCommand(inst, to), "-migration-delay 4s", "-migration-delay 1s", 1) + " -hang-migration 2"
	h := startUpgrade(t, c, id, workflows.UpgradeRequest{RequestID: "hung-upgrade", TargetVersion: to, PlatformCommand: hanging,
		WorkerCommand: inst.OpenCTI.WorkerCommand + " -version " + to})
	u := changeResult(t, h, 6*time.Minute).Upgrade
	if u == nil || u.Outcome != workflows.UpgradeRolledBack || !strings.Contains(u.Reason, "hung while migrating") ||
		!strings.Contains(u.Reason, "1 of 5 migrations done") {
		t.Fatalf("result of a hung migration: %+v", u)
	}
	t.Logf("rolled back: %s", u.Reason)
	var kill *client.Change
	for _, ch := range changesAfter(t, inst.Pebble.Socket, before) {
		if ch.Kind == "stop" && strings.Contains(ch.Summary, `"platform"`) {
			kill = ch // the last stop of the platform: the frozen one's
		}
	}
	if kill == nil || kill.ReadyTime.Sub(kill.SpawnTime) < opencti.PlatformKillDelay {
		t.Errorf("the frozen platform's stop: %+v; want one that lasted the kill-delay (%s), then SIGKILL", kill, opencti.PlatformKillDelay)
	}
	st := waitInstance(t, c, id, time.Minute, "active again", activeInstance)
	if st.Version != from {
		t.Errorf("version after the rollback: %s", st.Version)
	}
	checkData(t, inst, from, "rollback")
}
