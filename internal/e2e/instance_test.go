package e2e

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	enumspb "go.temporal.io/api/enums/v1"
	tclient "go.temporal.io/sdk/client"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/workflows"
)

// startInstance starts OpenCTIInstance the way the starter does, records its first
// run's history and its deploy child's, and terminates it when the test ends.
func startInstance(t testing.TB, c tclient.Client, queue string, inst opencti.Instance, canAfter int) tclient.WorkflowRun {
	t.Helper()
	return startInstanceInput(t, c, queue, workflows.InstanceInput{Instance: inst, ContinueAsNewAfterEvents: canAfter})
}

// startInstanceInput is startInstance with the whole input given.
func startInstanceInput(t testing.TB, c tclient.Client, queue string, in workflows.InstanceInput) tclient.WorkflowRun {
	t.Helper()
	inst := in.Instance
	if in.HealthEvery == 0 {
		// Tests check health when they mean to: no schedule of their own, no heals
		// behind their back (a connector stopped by hand stays stopped).
		in.HealthEvery = -1
	}
	run, err := c.ExecuteWorkflow(context.Background(), tclient.StartWorkflowOptions{
		ID: workflows.InstanceWorkflowID(inst.Name), TaskQueue: queue,
	}, workflows.OpenCTIInstanceWorkflow, in)
	if err != nil {
		t.Fatalf("cannot start the instance workflow: %v", err)
	}
	recordHistory(t, c, run)
	// Its deploy child too: it signals its parent (DeployProgressChange).
	recordHistory(t, c, c.GetWorkflow(context.Background(), workflows.DeployWorkflowID(inst.Name), ""))
	terminateAtEnd(t, c, run.GetID())
	return run
}

// terminateAtEnd terminates the workflow when the test ends: an entity workflow never
// ends by itself, and a terminated history is closed, so it can be recorded and replayed.
// An instance's health schedule goes with it, once the instance can no longer make it.
func terminateAtEnd(t testing.TB, c tclient.Client, id string) {
	t.Cleanup(func() {
		_ = c.TerminateWorkflow(context.Background(), id, "", "test over")
		if name, ok := strings.CutPrefix(id, "opencti/"); ok {
			_ = activities.DeleteSchedule(context.Background(), c, workflows.HealthScheduleID(name))
		}
	})
}

// instanceOnWorker returns a fresh instance (o), not started, and a worker of its own
// in the test process serving queue, for tests that start the instance their own way.
func instanceOnWorker(t testing.TB, o instanceOpts) (c tclient.Client, queue string, inst opencti.Instance) {
	t.Helper()
	c = temporalClient(t)
	queue = inProcessWorker(t, c, t.TempDir())
	return c, queue, newInstance(t, o)
}

// newInstanceRun starts a fresh instance (o) through OpenCTIInstance on a worker of its
// own in the test process, continuing as new after canAfter events (0: the default).
func newInstanceRun(t testing.TB, o instanceOpts, canAfter int) (tclient.Client, opencti.Instance, tclient.WorkflowRun) {
	t.Helper()
	c, queue, inst := instanceOnWorker(t, o)
	return c, inst, startInstance(t, c, queue, inst, canAfter)
}

// activeInstanceRun is newInstanceRun waiting until the deploy made the instance active.
func activeInstanceRun(t testing.TB, o instanceOpts, canAfter int) (tclient.Client, opencti.Instance, tclient.WorkflowRun) {
	t.Helper()
	c, inst, run := newInstanceRun(t, o, canAfter)
	waitInstance(t, c, run.GetID(), 3*time.Minute, "active", activeInstance)
	return c, inst, run
}

// waitInstance polls the instance's status query until cond holds or limit passes.
func waitInstance(t testing.TB, c tclient.Client, id string, limit time.Duration, what string, cond func(workflows.InstanceStatus) bool) workflows.InstanceStatus {
	t.Helper()
	return waitQuery(t, c, id, limit, 200*time.Millisecond, what, cond)
}

func activeInstance(s workflows.InstanceStatus) bool {
	return s.Deployed && s.Status.Kind == workflows.StatusActive && s.Pending == 0
}

// sendChange sends the named change as an Update (with updateID, "" for the SDK's
// own) and waits until it reaches stage; the handle's Get gives its result.
func sendChange(ctx context.Context, c tclient.Client, id, name, updateID string, arg any, stage tclient.WorkflowUpdateStage) (tclient.WorkflowUpdateHandle, error) {
	return c.UpdateWorkflow(ctx, tclient.UpdateWorkflowOptions{
		WorkflowID: id, UpdateID: updateID, UpdateName: name, Args: []any{arg}, WaitForStage: stage,
	})
}

// applyChange sends the named change as an Update and waits for its result.
func applyChange(t testing.TB, c tclient.Client, id, name string, arg any) (workflows.ChangeResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var res workflows.ChangeResult
	h, err := sendChange(ctx, c, id, name, "", arg, tclient.WorkflowUpdateStageCompleted)
	if err != nil {
		return res, err
	}
	return res, h.Get(ctx, &res)
}

// setConfig sends the SetConfig update and waits for its result.
func setConfig(t testing.TB, c tclient.Client, id string, arg any) (workflows.SetConfigResult, error) {
	t.Helper()
	return applyChange(t, c, id, workflows.SetConfigUpdate, arg)
}

// pebbleChanges returns the kinds and summaries of the container's Pebble changes after
// the change ID after ("" for all), oldest first.
func pebbleChanges(t testing.TB, socket, after string) []string {
	t.Helper()
	var out []string
	for _, ch := range changesAfter(t, socket, after) {
		out = append(out, changeLine(ch))
	}
	return out
}

// changeLine is how the tests show a Pebble change: "<id> <kind>: <summary>".
func changeLine(ch *client.Change) string { return ch.ID + " " + ch.Kind + ": " + ch.Summary }

// changesAfter returns the container's Pebble changes after the change ID after,
// oldest first, with their times.
func changesAfter(t testing.TB, socket, after string) []*client.Change {
	t.Helper()
	all, err := pebbleClient(t, socket).Changes(&client.ChangesOptions{Selector: client.ChangesAll})
	if err != nil {
		t.Fatal(err)
	}
	num := func(id string) int { n, _ := strconv.Atoi(id); return n }
	slices.SortFunc(all, func(a, b *client.Change) int { return num(a.ID) - num(b.ID) })
	return slices.DeleteFunc(all, func(ch *client.Change) bool { return num(ch.ID) <= num(after) })
}

// lastChange is the ID of the container's latest Pebble change.
func lastChange(t *testing.T, socket string) string {
	all := pebbleChanges(t, socket, "")
	if len(all) == 0 {
		return ""
	}
	id, _, _ := strings.Cut(all[len(all)-1], " ")
	return id
}

func activeServices(t *testing.T, socket string) []string {
	var names []string
	for name, s := range services(t, socket) {
		if s.Current == client.StatusActive {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// TestInstanceSetConfigWorkersStartsAndStopsOnlyTheExtraWorkers: the instance deploys
// through its DeployOpenCTI child; SetConfig workers 5 starts exactly worker-3 and
// worker-4 and restarts nothing (Pebble's change list holds one start of those two, the
// platform started once); back to 3 stops exactly those two.
func TestInstanceSetConfigWorkersStartsAndStopsOnlyTheExtraWorkers(t *testing.T) {
	c, inst, run := newInstanceRun(t, instanceOpts{initDelay: time.Second}, 0)
	id := run.GetID()
	if id != "opencti/"+inst.Name {
		t.Errorf("workflow ID %q, want opencti/%s", id, inst.Name)
	}
	st := waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	if st.Workers != 3 || st.Version != "6.9.3" {
		t.Errorf("status after the deploy %+v", st)
	}
	if got := socflowStatus(t, c, run); got != string(workflows.StatusActive) {
		t.Errorf("SocflowStatus %q after the deploy, want active", got)
	}
	if _, err := c.DescribeWorkflowExecution(context.Background(), workflows.DeployWorkflowID(inst.Name), ""); err != nil {
		t.Errorf("no deploy child %s: %v", workflows.DeployWorkflowID(inst.Name), err)
	}
	before := lastChange(t, inst.Pebble.Socket)

	five := 5
	res, err := setConfig(t, c, id, workflows.SetConfigRequest{RequestID: "workers-5", Workers: &five})
	if err != nil {
		t.Fatalf("SetConfig workers 5: %v", err)
	}
	if strings.Join(res.Started, ",") != "worker-3,worker-4" || len(res.Restarted) != 0 || len(res.Stopped) != 0 || len(res.Changed) != 0 {
		t.Errorf("workers 5 result %+v: want worker-3 and worker-4 started, nothing else", res)
	}
	// StartPebbleServices starts each service in its own change (Pebble confirms the
	// starts of one change one after the other); Pebble's summary names the service
	// and counts what it requires (the running platform) as "1 more".
	changes := pebbleChanges(t, inst.Pebble.Socket, before)
	if len(changes) != 2 || !strings.Contains(strings.Join(changes, "\n"), `start: Start service "worker-3"`) ||
		!strings.Contains(strings.Join(changes, "\n"), `start: Start service "worker-4"`) {
		t.Errorf("pebble changes after workers 5: %q, want one start each of worker-3 and worker-4", changes)
	}
	for _, ch := range changes {
		if !strings.Contains(ch, " start: ") {
			t.Errorf("workers 5 did more than start the new workers: %q", ch)
		}
	}
	if got := activeServices(t, inst.Pebble.Socket); strings.Join(got, ",") != "platform,worker-0,worker-1,worker-2,worker-3,worker-4" {
		t.Errorf("active services %v", got)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 1 {
		t.Errorf("platform started %d times, want 1", n)
	}
	// The same request again returns the first result and applies nothing.
	mark := lastChange(t, inst.Pebble.Socket)
	again, err := setConfig(t, c, id, workflows.SetConfigRequest{RequestID: "workers-5", Workers: &five})
	if err != nil || strings.Join(again.Started, ",") != "worker-3,worker-4" {
		t.Errorf("repeated request: %+v %v, want the first result", again, err)
	}
	if ch := pebbleChanges(t, inst.Pebble.Socket, mark); len(ch) != 0 {
		t.Errorf("a repeated request changed the container: %q", ch)
	}

	before = lastChange(t, inst.Pebble.Socket)
	three := 3
	res, err = setConfig(t, c, id, workflows.SetConfigRequest{RequestID: "workers-3", Workers: &three})
	if err != nil {
		t.Fatalf("SetConfig workers 3: %v", err)
	}
	if strings.Join(res.Stopped, ",") != "worker-3,worker-4" || len(res.Restarted) != 0 || len(res.Started) != 0 {
		t.Errorf("workers 3 result %+v: want worker-3 and worker-4 stopped, nothing else", res)
	}
	for _, ch := range pebbleChanges(t, inst.Pebble.Socket, before) {
		if !strings.Contains(ch, "stop") || strings.Contains(ch, "platform") {
			t.Errorf("workers 3 did more than stop the extra workers: %q", ch)
		}
	}
	if got := activeServices(t, inst.Pebble.Socket); strings.Join(got, ",") != "platform,worker-0,worker-1,worker-2" {
		t.Errorf("active services %v", got)
	}
	st = waitInstance(t, c, id, 10*time.Second, "active with 3 workers", func(s workflows.InstanceStatus) bool { return activeInstance(s) && s.Workers == 3 })
	if n := len(st.Recent); n != 2 || st.Recent[0].State != "applied" || st.Recent[1].RequestID != "workers-3" {
		t.Errorf("recent changes %+v, want two applied", st.Recent)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 1 {
		t.Errorf("platform started %d times, want 1", n)
	}
}

// TestInstanceSetConfigLogLevelRestartsPlatformThenWorkers: a log-level change restarts
// the platform once, waits until it is healthy, then restarts the workers (their
// WORKER_LOG_LEVEL changed too), in that order in Pebble's change list.
func TestInstanceSetConfigLogLevelRestartsPlatformThenWorkers(t *testing.T) {
	c, inst, run := activeInstanceRun(t, instanceOpts{initDelay: time.Second}, 0)
	before := lastChange(t, inst.Pebble.Socket)

	res, err := setConfig(t, c, run.GetID(), map[string]any{"requestId": "debug", "logLevel": "debug"})
	if err != nil {
		t.Fatalf("SetConfig logLevel debug: %v", err)
	}
	if strings.Join(res.Restarted, ",") != "platform,worker-0,worker-1,worker-2" || len(res.Started) != 0 || len(res.Stopped) != 0 {
		t.Errorf("logLevel result %+v: want the platform, then the three workers restarted", res)
	}
	var platformEnv bool
	for _, ch := range res.Changed {
		for _, e := range ch.Env {
			if ch.Service == "platform" && e.Key == "APP__APP_LOGS__LOGS_LEVEL" && e.Old == "info" && e.New == "debug" {
				platformEnv = true
			}
		}
	}
	if !platformEnv {
		t.Errorf("result does not show the platform's APP__APP_LOGS__LOGS_LEVEL info -> debug: %+v", res.Changed)
	}
	changes := pebbleChanges(t, inst.Pebble.Socket, before)
	var restarts []string
	for _, ch := range changes {
		if strings.Contains(ch, "restart") {
			restarts = append(restarts, ch)
		}
	}
	if len(restarts) != 2 || !strings.Contains(restarts[0], "platform") || strings.Contains(restarts[0], "worker") ||
		!strings.Contains(restarts[1], "worker-0") || strings.Contains(restarts[1], "platform") {
		t.Errorf("pebble changes %q: want one restart of the platform, then one of the workers", changes)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 2 {
		t.Errorf("platform started %d times, want 2 (the deploy, the restart)", n)
	}
	st := waitInstance(t, c, run.GetID(), 10*time.Second, "active", activeInstance)
	if st.LogLevel != opencti.LogDebug {
		t.Errorf("status log level %q, want debug", st.LogLevel)
	}
}

// TestInstanceSetConfigRejectsBadInput: bad updates (negative workers, an unknown log
// level, a value of the wrong JSON type, an unknown field) are rejected naming the
// field, leave nothing in the history and the workflow running; a bad signal is
// reported in the status and the workflow keeps running.
func TestInstanceSetConfigRejectsBadInput(t *testing.T) {
	c, inst, run := activeInstanceRun(t, instanceOpts{initDelay: time.Second}, 0)
	before := lastChange(t, inst.Pebble.Socket)

	for _, tc := range []struct {
		arg   any
		field string
	}{
		{map[string]any{"workers": -1}, "opencti.workers: must be at least 1 (got -1)"},
		{map[string]any{"logLevel": "verbose"}, "opencti.logLevel: must be one of error, warn, info, debug"},
		{map[string]any{"workers": "five"}, "workers: must be a whole number"},
		{map[string]any{"workerz": 5}, "SetConfig: workerz: is not a field of this request"},
	} {
		_, err := setConfig(t, c, run.GetID(), tc.arg)
		if err == nil || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("SetConfig %v: error %v, want a rejection naming %q with the fix", tc.arg, err, tc.field)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.SignalWorkflow(ctx, run.GetID(), "", workflows.SetConfigUpdate, map[string]any{"workers": 0}); err != nil {
		t.Fatal(err)
	}
	st := waitInstance(t, c, run.GetID(), 30*time.Second, "the bad signal reported", func(s workflows.InstanceStatus) bool {
		return len(s.Recent) > 0 && s.Recent[len(s.Recent)-1].State == "rejected"
	})
	if r := st.Recent[len(st.Recent)-1]; r.Via != "signal" || !strings.Contains(r.Summary, "opencti.workers: must be at least 1 (got 0)") ||
		!strings.Contains(st.LastReason, "SetConfig signal rejected") || st.Status.Kind != workflows.StatusActive {
		t.Errorf("status after a bad signal %+v", st)
	}

	it := c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED:
			t.Errorf("a rejected update left %s in the history", e.GetEventType())
		}
	}
	desc, err := c.DescribeWorkflowExecution(ctx, run.GetID(), "")
	if err != nil || desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Errorf("workflow not running after bad input: %v %v", desc.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	if ch := pebbleChanges(t, inst.Pebble.Socket, before); len(ch) != 0 {
		t.Errorf("bad input changed the container: %q", ch)
	}
	// Still takes a good change.
	four := 4
	if res, err := setConfig(t, c, run.GetID(), workflows.SetConfigRequest{Workers: &four}); err != nil || strings.Join(res.Started, ",") != "worker-3" {
		t.Errorf("a good change after bad ones: %+v %v", res, err)
	}
}

// TestInstanceContinuesAsNewWithoutLosingAChange: with a low Continue-As-New threshold,
// a run of changes sent as updates and signals, alternately, is applied once each, in
// order, across several runs.
func TestInstanceContinuesAsNewWithoutLosingAChange(t *testing.T) {
	c, inst, run := activeInstanceRun(t, instanceOpts{initDelay: time.Second}, 40)
	id := run.GetID()
	const n = 8
	for i := range n {
		w := 3 + (i+1)%2 // 4, 3, 4, 3, ...
		req := workflows.SetConfigRequest{RequestID: "change-" + strconv.Itoa(i), Workers: &w}
		if i%2 == 0 {
			res, err := setConfig(t, c, id, req)
			if err != nil {
				t.Fatalf("change %d: %v", i, err)
			}
			if strings.Join(res.Started, ",") != "worker-3" {
				t.Errorf("change %d: %+v, want worker-3 started", i, res)
			}
			continue
		}
		if err := c.SignalWorkflow(context.Background(), id, "", workflows.SetConfigUpdate, req); err != nil {
			t.Fatal(err)
		}
		waitInstance(t, c, id, time.Minute, "change "+strconv.Itoa(i)+" applied", func(s workflows.InstanceStatus) bool {
			return len(s.Recent) > 0 && s.Recent[len(s.Recent)-1].RequestID == req.RequestID
		})
	}
	st := waitInstance(t, c, id, 30*time.Second, "active", activeInstance)
	if st.Runs < 2 {
		t.Errorf("the workflow ran %d run(s); with a threshold of 40 events it should have continued as new", st.Runs)
	}
	if len(st.Recent) != n {
		t.Fatalf("recent %+v, want %d changes", st.Recent, n)
	}
	for i, o := range st.Recent {
		if o.RequestID != "change-"+strconv.Itoa(i) || o.State != "applied" {
			t.Errorf("change %d: %+v", i, o)
		}
	}
	if got := activeServices(t, inst.Pebble.Socket); strings.Join(got, ",") != "platform,worker-0,worker-1,worker-2" {
		t.Errorf("active services %v", got)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 1 {
		t.Errorf("platform started %d times, want 1", n)
	}
	first, err := c.DescribeWorkflowExecution(context.Background(), id, run.GetRunID())
	if err != nil || first.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW {
		t.Errorf("first run: %v %v, want continued as new", first.GetWorkflowExecutionInfo().GetStatus(), err)
	}
}
