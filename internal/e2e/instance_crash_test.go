package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	tclient "go.temporal.io/sdk/client"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/workflows"
)

// TestInstanceChangeSurvivesWorkerKill9: kill -9 the worker in the middle of a
// reconcile → the change completes exactly once.
//
// Why: a change is an accepted Update whose reconcile restarts a running platform; a
// worker can die at any point of it. The new worker must resume the reconcile from the
// history, and the server's retry of RestartPebbleServices must wait for the restart
// change the dead worker heartbeated instead of restarting the platform a second time
// (restartOptions). So the worker runs as a process of its own; the test sends a
// logLevel change (platform, then workers restarted) as an Update it only waits to be
// accepted, SIGKILLs the worker while the status names the platform's restart (with
// Pebble's restart change of the platform under way, when the kill catches it there)
// or its health wait, starts a second worker on the same queue and waits for the
// update's result. Then: Pebble holds one restart change of the platform, then one of
// the workers, with exactly one stop of each service; each process (platform, workers)
// started exactly once more; the result lists each service restarted once; the status
// lists the request once, applied, with the new log level; and the same request ID
// again returns the same result and leaves Pebble untouched.
func TestInstanceChangeSurvivesWorkerKill9(t *testing.T) {
	c := temporalClient(t)
	secretDir := t.TempDir()
	queue := fmt.Sprintf("e2e-instance-kill9-%d", time.Now().UnixNano())
	// A platform stop of 3 s keeps Pebble's restart change running long enough for the
	// kill to land in it.
	inst := newInstance(t, instanceOpts{initDelay: time.Second, stopDelay: 3 * time.Second})
	start := time.Now()
	since := func() time.Duration { return time.Since(start).Round(100 * time.Millisecond) }

	w1 := startWorkerProcess(t, "worker-1", queue, secretDir)
	run := startInstance(t, c, queue, inst, 0)
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	t.Logf("%s: instance active", since())
	if n := platformStarts(t, inst.Pebble.Socket); n != 1 {
		t.Fatalf("platform started %d times by the deploy, want 1", n)
	}
	before := lastChange(t, inst.Pebble.Socket)

	const reqID = "kill9-debug"
	req := workflows.SetConfigRequest{RequestID: reqID, LogLevel: opencti.LogDebug}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	handle, err := sendChange(ctx, c, id, workflows.SetConfigUpdate, "", req, tclient.WorkflowUpdateStageAccepted)
	if err != nil {
		t.Fatalf("SetConfig logLevel debug not accepted: %v", err)
	}
	t.Logf("%s: update %s accepted", since(), handle.UpdateID())

	st := waitQuery(t, c, id, 2*time.Minute, 20*time.Millisecond, "restarting-platform or waiting-platform", func(s workflows.InstanceStatus) bool {
		return s.Status.Step == "restarting-platform" || s.Status.Step == "waiting-platform"
	})
	where := st.Status.Step
	if where == "restarting-platform" {
		// Kill while Pebble runs the platform's restart, if the kill can catch it there:
		// the retry must then wait for that change rather than restart again.
		if ch := waitPlatformRestartChange(t, inst.Pebble.Socket, before, 3*time.Second); ch != nil {
			where += fmt.Sprintf(", pebble change %s %q %s", ch.ID, ch.Summary, ch.Status)
		}
	}
	where += ", " + restartHeartbeat(c, id)
	w1.kill9(t)
	t.Logf("%s: worker-1 killed (%s)", since(), where)
	startWorkerProcess(t, "worker-2", queue, secretDir)

	var res workflows.SetConfigResult
	if err := handle.Get(ctx, &res); err != nil {
		t.Fatalf("SetConfig failed after the worker kill: %v", err)
	}
	t.Logf("%s: update done: %+v", since(), res)

	if got := strings.Join(res.Restarted, ","); got != "platform,worker-0,worker-1,worker-2" || len(res.Started) != 0 || len(res.Stopped) != 0 {
		t.Errorf("result %+v: want the platform, then the three workers restarted once each, nothing started or stopped", res)
	}
	if res.RequestID != reqID || res.Error != "" {
		t.Errorf("result %+v: want request %s applied", res, reqID)
	}
	changes := pebbleChanges(t, inst.Pebble.Socket, before)
	t.Logf("pebble changes after the change:\n%s", strings.Join(changes, "\n"))
	// A restart is a stop and a start in one change; the workers' change also holds a
	// start of the platform they require, which Pebble skips as it is running. So the
	// stops count the restarts, and the processes' own start lines count the starts.
	stops := pebbleStops(t, inst.Pebble.Socket, before)
	for _, svc := range []string{"platform", "worker-0", "worker-1", "worker-2"} {
		if stops[svc] != 1 {
			t.Errorf("%s stopped %d times by pebble after the change, want exactly 1", svc, stops[svc])
		}
	}
	if len(stops) != 4 {
		t.Errorf("pebble stopped %v after the change; want only the platform and worker-0..2, once each", stops)
	}
	var restarts []string
	for _, ch := range changes {
		if strings.Contains(ch, " restart: ") {
			restarts = append(restarts, ch)
		}
	}
	if len(restarts) != 2 || !strings.HasSuffix(restarts[0], `Restart service "platform"`) || !strings.Contains(restarts[1], `"worker-0"`) {
		t.Errorf("pebble changes %q: want one restart of the platform, then one of the workers", changes)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 2 {
		t.Errorf("platform process started %d times, want 2 (the deploy, the one restart)", n)
	}
	for _, w := range opencti.WorkerServices(3) {
		if n := workerStarts(t, inst.Pebble.Socket, w); n != 2 {
			t.Errorf("%s process started %d times, want 2 (the deploy, the one restart)", w, n)
		}
	}

	st = waitInstance(t, c, id, 30*time.Second, "active", activeInstance)
	if st.LogLevel != opencti.LogDebug {
		t.Errorf("status log level %q, want debug", st.LogLevel)
	}
	var outcomes []workflows.ChangeOutcome
	for _, o := range st.Recent {
		if o.RequestID == reqID {
			outcomes = append(outcomes, o)
		}
	}
	if len(outcomes) != 1 || outcomes[0].State != "applied" || outcomes[0].Via != "update" {
		t.Errorf("recent %+v: want %s listed exactly once, applied by update", st.Recent, reqID)
	}
	if got := activeServices(t, inst.Pebble.Socket); strings.Join(got, ",") != "platform,worker-0,worker-1,worker-2" {
		t.Errorf("active services %v", got)
	}

	// The same request again: the first result, and nothing done.
	mark := lastChange(t, inst.Pebble.Socket)
	again, err := setConfig(t, c, id, req)
	if err != nil || !reflect.DeepEqual(again, res) {
		t.Errorf("repeated request: %+v %v, want the first result %+v", again, err, res)
	}
	if ch := pebbleChanges(t, inst.Pebble.Socket, mark); len(ch) != 0 {
		t.Errorf("a repeated request changed the container: %q", ch)
	}
	st = waitInstance(t, c, id, 10*time.Second, "active", activeInstance)
	if n := len(st.Recent); n != 1 {
		t.Errorf("recent after the repeat %+v, want only the one change", st.Recent)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 2 {
		t.Errorf("platform process started %d times after the repeat, want 2", n)
	}
	stopAllAndRequireNoProcs(t, inst, secretDir)
}

// waitPlatformRestartChange returns the first Pebble change after the change ID after
// that stops the platform and is not finished, once it appears within limit; nil when
// none did (the activity had not got that far, or the change already finished).
func waitPlatformRestartChange(t *testing.T, socket, after string, limit time.Duration) *client.Change {
	t.Helper()
	pc := pebbleClient(t, socket)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for _, id := range changeIDs(t, socket, after) {
			ch, err := pc.Change(id)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Ready {
				continue
			}
			for _, task := range ch.Tasks {
				if task.Kind == "stop" && task.Summary == fmt.Sprintf("Stop service %q", opencti.PlatformService) {
					return ch
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// changeIDs are the IDs of the container's Pebble changes after the change ID after.
func changeIDs(t *testing.T, socket, after string) []string {
	t.Helper()
	var ids []string
	for _, ch := range pebbleChanges(t, socket, after) {
		id, _, _ := strings.Cut(ch, " ")
		ids = append(ids, id)
	}
	return ids
}

// pebbleStops counts, per service, the stop tasks of the container's Pebble changes
// after the change ID after: what Pebble was asked to stop, whichever change (and
// whichever worker's activity) asked.
func pebbleStops(t *testing.T, socket, after string) map[string]int {
	t.Helper()
	pc := pebbleClient(t, socket)
	stops := map[string]int{}
	for _, id := range changeIDs(t, socket, after) {
		ch, err := pc.Change(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range ch.Tasks {
			if name, ok := strings.CutPrefix(task.Summary, "Stop service "); ok && task.Kind == "stop" {
				stops[strings.Trim(name, `"`)]++
			}
		}
	}
	return stops
}

// restartHeartbeat says whether the server holds a heartbeat of the pending
// RestartPebbleServices activity at this moment, for the log of where the kill landed.
func restartHeartbeat(c tclient.Client, id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return "describe: " + err.Error()
	}
	var acts []string
	for _, pa := range desc.GetPendingActivities() {
		s := pa.GetActivityType().GetName() + " " + pa.GetState().String()
		if len(pa.GetHeartbeatDetails().GetPayloads()) > 0 {
			s += " (heartbeated)"
		}
		acts = append(acts, s)
	}
	slices.Sort(acts)
	if len(acts) == 0 {
		return "no pending activity"
	}
	return "pending: " + strings.Join(acts, ", ")
}

// restartPebble restarts a test's private Pebble daemon in its directory, as a
// container restart does: its services are stopped with it, and the new daemon has no
// plan (layers added over the API are not kept).
func restartPebble(t *testing.T, socket string) {
	t.Helper()
	dir := filepath.Dir(socket)
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		env, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "environ"))
		cmd, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if slices.Contains(strings.Split(string(env), "\x00"), "PEBBLE="+dir) && strings.Contains(string(cmd), "run\x00--create-dirs") {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			for range 300 {
				if syscall.Kill(pid, 0) != nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	_ = os.Remove(socket)
	if got := stacktest.PebbleAt(t, dir); got != socket {
		t.Fatalf("restarted pebble at %s, want %s", got, socket)
	}
}

// TestInstanceStartsALostPlatformFirst: the instance's container restarts and its
// Pebble has no plan left; the next change pushes the plan again and starts the
// platform alone, waits until it answers /health, re-adds its check, and only then
// starts the workers — the instance is active only once the platform serves.
func TestInstanceStartsALostPlatformFirst(t *testing.T) {
	c, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: time.Second, workers: 2})
	run := startInstanceWith(t, c, queue, inst)
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	restarted := time.Now()
	restartPebble(t, inst.Pebble.Socket)
	if svcs := services(t, inst.Pebble.Socket); len(svcs) != 0 {
		t.Fatalf("the restarted container still has services: %v", svcs)
	}
	res, err := applyChange(t, c, id, workflows.ApplySpecUpdate, workflows.ApplySpecRequest{RequestID: "after-restart", Spec: inst})
	if err != nil || strings.Join(res.Started, ",") != "platform,worker-0,worker-1" {
		t.Fatalf("change after the container restarted: %+v %v", res, err)
	}
	ready := logTimes(t, inst.Pebble.Socket, opencti.PlatformService, "API ready")
	if len(ready) != 1 {
		t.Fatalf("the platform served %d times since the restart, want once", len(ready))
	}
	for _, ch := range changesAfter(t, inst.Pebble.Socket, "0") {
		if ch.Kind == "start" && strings.Contains(ch.Summary, "worker-") && ch.SpawnTime.After(restarted) && !ch.SpawnTime.After(ready[0]) {
			t.Errorf("workers started at %v, before the platform served at %v", ch.SpawnTime, ready[0])
		}
	}
	if checks := pebbleChecks(t, inst.Pebble.Socket); !slices.Contains(checks, opencti.HealthCheck) {
		t.Errorf("checks after the change: %v, want the platform's health check back", checks)
	}
	waitInstance(t, c, id, 10*time.Second, "active", activeInstance)
}

// pebbleChecks names the checks of a container's plan.
func pebbleChecks(t *testing.T, socket string) []string {
	t.Helper()
	infos, err := pebbleClient(t, socket).Checks(&client.ChecksOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range infos {
		names = append(names, c.Name)
	}
	return names
}
