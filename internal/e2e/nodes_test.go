package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/workflows"
)

// withNode adds a further platform node, on its own Pebble and ports, to a test spec.
func withNode(t *testing.T, inst opencti.Instance, name string) opencti.Instance {
	t.Helper()
	inst.OpenCTI.Nodes = append(inst.OpenCTI.Nodes, opencti.Node{Name: name, Pebble: spec.Pebble{Socket: stacktest.Pebble(t)},
		Port: freePort(t), MetricsPort: freePort(t)})
	inst = inst.WithDefaults()
	if err := inst.Validate(); err != nil {
		t.Fatalf("test spec invalid: %v", err)
	}
	return inst
}

// logTimes are the times of the service's log messages that contain s, oldest first.
func logTimes(t *testing.T, socket, service, s string) []time.Time {
	t.Helper()
	var out []time.Time
	err := pebbleClient(t, socket).Logs(&client.LogsOptions{Services: []string{service}, N: -1, WriteLog: func(e client.LogEntry) error {
		if strings.Contains(e.Message, s) {
			out = append(out, e.Time)
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// platformStartTimes are the spawn times of the platform's start changes in a Pebble.
func platformStartTimes(t *testing.T, socket string) []time.Time {
	t.Helper()
	var out []time.Time
	for _, ch := range changesAfter(t, socket, "0") {
		if (ch.Kind == "start" || ch.Kind == "restart") && strings.Contains(ch.Summary, `"platform"`) {
			out = append(out, ch.SpawnTime)
		}
	}
	return out
}

// TestTwoPlatformNodesMigrateOnce is issue 11's several nodes on the real stack: an
// instance whose platform runs on two nodes (two containers, one data) deploys the
// first node, then the second once the first is healthy; a config change restarts
// both, the second after the first; an upgrade 6.9.28 -> 7.260318.0 stops the second
// node before the first, migrates on the first alone and starts the second only once
// the first is healthy on the target: the second never migrates (it finds the data up
// to date at each boot) and serves the target version after.
func TestTwoPlatformNodesMigrateOnce(t *testing.T) {
	const from, to = "6.9.28", "7.260318.0"
	c, secretDir := temporalClient(t), t.TempDir()
	queue := inProcessWorker(t, c, secretDir)
	inst := withNode(t, newInstance(t, instanceOpts{initDelay: 2 * time.Second, version: from, workers: 1}), "node-2")
	node := inst.OpenCTI.Nodes[0]
	run := startInstanceWith(t, c, queue, inst)
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	recordHistory(t, c, c.GetWorkflow(context.Background(), workflows.UpgradeWorkflowID(inst.Name), ""))

	initDone := logTimes(t, inst.Pebble.Socket, opencti.PlatformService, "[INIT] Platform initialization done")
	nodeStarts := platformStartTimes(t, node.Pebble.Socket)
	if len(initDone) != 1 || len(nodeStarts) != 1 || !nodeStarts[0].After(initDone[0]) {
		t.Fatalf("deploy: first node initialised at %v, second node started at %v; want the second started once, after", initDone, nodeStarts)
	}
	for _, on := range []opencti.Instance{inst, inst.OnNode(node)} {
		if v := aboutVersion(t, on, secretDir); v != from {
			t.Errorf("node on port %d serves %q, want %s", on.OpenCTI.Port, v, from)
		}
	}

	// A config change reaches both nodes.
	res, err := applyChange(t, c, id, workflows.SetConfigUpdate, workflows.SetConfigRequest{RequestID: "debug", LogLevel: opencti.LogDebug})
	if err != nil || !slices.Contains(res.Restarted, opencti.PlatformService) || !slices.Contains(res.Restarted, "node-2/platform") {
		t.Fatalf("SetConfig logLevel on two nodes: %+v %v", res, err)
	}

	writeMarker(t, inst)
	before := lastChange(t, node.Pebble.Socket)
	h := startUpgrade(t, c, id, workflows.UpgradeRequest{RequestID: "two-nodes", TargetVersion: to, PlatformCommand: upgradeTargetCommand(inst, to),
		WorkerCommand: inst.OpenCTI.WorkerCommand + " -version " + to})
	upgradeResult(t, h, 5*time.Minute)

	updated := logTimes(t, inst.Pebble.Socket, opencti.PlatformService, "[MIGRATION] Platform version updated to "+to)
	if len(updated) != 1 {
		t.Fatalf("the first node logged %d version updates, want 1", len(updated))
	}
	var nodeStop, nodeStart time.Time
	for _, ch := range changesAfter(t, node.Pebble.Socket, before) {
		switch {
		case ch.Kind == "stop" && nodeStop.IsZero():
			nodeStop = ch.SpawnTime
		case ch.Kind == "start" || ch.Kind == "restart":
			nodeStart = ch.SpawnTime
		}
	}
	firstStop := stopTimes(t, inst.Pebble.Socket, "0")
	var platformStop time.Time
	for summary, at := range firstStop {
		if strings.Contains(summary, `"platform"`) && at.After(platformStop) {
			platformStop = at
		}
	}
	if nodeStop.IsZero() || !nodeStop.Before(platformStop) {
		t.Errorf("the second node stopped at %v, the first at %v: want the second first", nodeStop, platformStop)
	}
	if nodeStart.IsZero() || !nodeStart.After(updated[0]) {
		t.Errorf("the second node started at %v, the first finished migrating at %v: want it after", nodeStart, updated[0])
	}
	if n := logCount(t, inst.Pebble.Socket, opencti.PlatformService, "migrations will be executed"); n != 1 {
		t.Errorf("the first node migrated %d times, want once", n)
	}
	if n := logCount(t, node.Pebble.Socket, opencti.PlatformService, "migrations will be executed"); n != 0 {
		t.Errorf("the second node migrated %d times, want never", n)
	}
	if n := logCount(t, node.Pebble.Socket, opencti.PlatformService, "[MIGRATION] Platform already up to date"); n < 3 {
		t.Errorf("the second node found the data up to date at %d boots, want every boot (3)", n)
	}
	if n := logCount(t, node.Pebble.Socket, opencti.PlatformService, "LOCK_ERROR"); n != 0 {
		t.Errorf("the second node met the init lock %d times: it was started while the first held it", n)
	}
	for _, on := range []opencti.Instance{inst, inst.OnNode(node)} {
		if v := aboutVersion(t, on, secretDir); v != to {
			t.Errorf("node on port %d serves %q after the upgrade, want %s", on.OpenCTI.Port, v, to)
		}
	}
	checkData(t, inst, to, "upgrade")
	rep := runHealth(t, c, queue, inst.Name)
	if rep.Health != workflows.HealthOK || component(rep, "node-2/platform").Health != workflows.HealthOK ||
		component(rep, "node-2/plan").Health != workflows.HealthOK {
		t.Errorf("health of the two nodes after the upgrade: %+v", rep)
	}
}

// aboutVersion is the version the platform at inst's port reports, asked with the
// instance's admin token from the worker's secret store.
func aboutVersion(t *testing.T, inst opencti.Instance, secretDir string) string {
	t.Helper()
	about, err := adminClient(t, inst, secretDir).About(context.Background())
	if err != nil {
		t.Fatalf("about on port %d: %v", inst.OpenCTI.Port, err)
	}
	return about.Version
}
