package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	tclient "go.temporal.io/sdk/client"

	"github.com/socflow/socflow/internal/inflight"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/internal/workerapp"
	"github.com/socflow/socflow/workflows"
)

// fleetSize is how many instances TestThreeWorkersKillDrainAndRollout deploys and changes.
const fleetSize = 10

// TestThreeWorkersKillDrainAndRollout runs socflow as production does: three worker
// processes on one task queue, versioned as build b1 of a Worker Deployment, sharing one
// secret store. Ten instances deploy while worker-1 is SIGKILLed and then worker-2 is
// stopped gracefully, both mid-deploy with platforms initialising: worker-2 drains (it
// hands back its probes, completes what it holds, exits 0). A change to all ten is in
// flight when build b2 is rolled out (a worker started and made current) and the last
// b1 worker is drained; a second change runs on b2 alone. Then, in the real systems:
// every platform and worker service started exactly once, no secret written twice, each
// change applied once, every deploy workflow ran once and completed, no activity attempt
// was lost to a graceful stop, and every instance workflow moved to b2.
func TestThreeWorkersKillDrainAndRollout(t *testing.T) {
	c := temporalClient(t)
	address := stacktest.Get(t).TemporalAddress
	secretDir := t.TempDir()
	queue := fmt.Sprintf("e2e-fleet-%d", time.Now().UnixNano())
	deployment := queue // a Worker Deployment of its own: nothing else's current version moves
	build := func(id string) []string {
		return []string{"SOCFLOW_DEPLOYMENT_NAME=" + deployment, "SOCFLOW_BUILD_ID=" + id}
	}
	w1 := startWorkerProcessAt(t, address, "worker-1", queue, secretDir, build("b1")...)
	w2 := startWorkerProcessAt(t, address, "worker-2", queue, secretDir, build("b1")...)
	w3 := startWorkerProcessAt(t, address, "worker-3", queue, secretDir, build("b1")...)
	setCurrentVersion(t, address, deployment, "b1")

	insts := make([]opencti.Instance, fleetSize)
	runs := make([]tclient.WorkflowRun, fleetSize)
	for i := range insts {
		insts[i] = newInstance(t, instanceOpts{initDelay: 10 * time.Second})
		runs[i] = startInstance(t, c, queue, insts[i], 0)
	}

	// worker-1 dies, then worker-2 stops, while deploys are mid-way.
	waitInitialising(t, c, insts, 3)
	w1.kill9(t)
	t.Logf("worker-1 SIGKILLed with %d platforms initialising", initialising(t, c, insts))
	waitInitialising(t, c, insts, 3)
	w2Stopped, took := w2.stop(t)
	t.Logf("worker-2 drained and stopped in %s", took)
	for i := range insts {
		waitInstance(t, c, runs[i].GetID(), 5*time.Minute, "active after the kill and the stop", activeInstance)
	}

	// A change to all ten; build b2 rolls out and worker-3 (b1) drains while they run.
	four := 4
	changes := changeAll(t, c, runs, workflows.SetConfigRequest{RequestID: "workers-4", Workers: &four})
	w4 := startWorkerProcessAt(t, address, "worker-4", queue, secretDir, build("b2")...)
	rollout := readmeRollout(t, address, deployment)
	retry(t, "b2 listed with its pollers", func() (string, error) {
		out, err := rollout(0)
		if err == nil && !strings.Contains(out, " b2 ") {
			err = fmt.Errorf("b2 not listed yet")
		}
		return out, err
	})
	retry(t, "b2 made current", func() (string, error) { return rollout(1) })
	w3Stopped, took := w3.stop(t)
	t.Logf("worker-3 drained and stopped in %s", took)
	for i, res := range changes.wait(t) {
		if strings.Join(res.Started, ",") != "worker-3" || len(res.Restarted)+len(res.Stopped) != 0 {
			t.Errorf("%s workers 4: %+v, want worker-3 started and nothing else", insts[i].Name, res)
		}
	}
	three := 3
	for i, res := range changeAll(t, c, runs, workflows.SetConfigRequest{RequestID: "workers-3", Workers: &three}).wait(t) {
		if strings.Join(res.Stopped, ",") != "worker-3" || len(res.Restarted)+len(res.Started) != 0 {
			t.Errorf("%s workers 3: %+v, want worker-3 stopped and nothing else", insts[i].Name, res)
		}
	}

	// Exactly once, in the real systems.
	for i, inst := range insts {
		if n := platformStarts(t, inst.Pebble.Socket); n != 1 {
			t.Errorf("%s: platform started %d times, want 1", inst.Name, n)
		}
		for _, svc := range []string{"worker-0", "worker-1", "worker-2", "worker-3"} {
			if n := workerStarts(t, inst.Pebble.Socket, svc); n != 1 {
				t.Errorf("%s: %s started %d times, want 1", inst.Name, svc, n)
			}
		}
		ents, err := os.ReadDir(filepath.Join(secretDir, inst.Name))
		if err != nil || len(ents) != 3 {
			t.Errorf("%s: secret store holds %d entries (%v), want the 3 generated once", inst.Name, len(ents), err)
		}
		for id, events := range updateEvents(t, c, runs[i]) {
			if strings.Join(events, ",") != "WorkflowExecutionUpdateAccepted,WorkflowExecutionUpdateCompleted" {
				t.Errorf("%s: update %s has events %v, want accepted and completed once", inst.Name, id, events)
			}
		}
		desc, err := c.DescribeWorkflowExecution(context.Background(), runs[i].GetID(), "")
		if err != nil {
			t.Fatal(err)
		}
		v := desc.GetWorkflowExecutionInfo().GetVersioningInfo()
		if v.GetDeploymentVersion().GetBuildId() != "b2" || v.GetBehavior() != enumspb.VERSIONING_BEHAVIOR_AUTO_UPGRADE {
			t.Errorf("%s: versioning %v, want auto-upgrade on build b2 after the rollout", inst.Name, v)
		}
	}
	requireEachDeployRanOnce(t, c, queue, insts)
	if out, err := rollout(2); err != nil || !strings.Contains(out, "b1") || !strings.Contains(out, "DrainageStatus") {
		t.Errorf("README describe-version of the old build: %v\n%s", err, out)
	}
	drained := drainedActivities(t, c, insts, runs, map[string]time.Time{w2.identity(): w2Stopped, w3.identity(): w3Stopped})
	if drained[w2.identity()] == 0 {
		t.Errorf("worker-2 completed no activity after its SIGTERM: it was stopped with nothing in flight, the drain is untested")
	}
	t.Logf("activities completed while draining: worker-2 %d, worker-3 %d", drained[w2.identity()], drained[w3.identity()])
	w4.stop(t)
}

// waitInitialising waits until at least n platforms run with their deploys not done.
func waitInitialising(t *testing.T, c tclient.Client, insts []opencti.Instance, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for initialising(t, c, insts) < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d of %d platforms were initialising within 3 min", n, len(insts))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// initialising counts the instances whose platform runs but whose deploy is not done.
func initialising(t *testing.T, c tclient.Client, insts []opencti.Instance) int {
	n := 0
	for _, inst := range insts {
		p := services(t, inst.Pebble.Socket)[opencti.PlatformService]
		if p == nil || p.Current != "active" {
			continue
		}
		var st workflows.InstanceStatus
		v, err := c.QueryWorkflow(context.Background(), workflows.InstanceWorkflowID(inst.Name), "", workflows.StatusQuery)
		if err == nil && v.Get(&st) == nil && !st.Deployed {
			n++
		}
	}
	return n
}

// pendingChanges are SetConfig updates sent to several instances at once.
type pendingChanges []tclient.WorkflowUpdateHandle

// changeAll sends req to every run's instance at once and returns once each accepted it.
func changeAll(t *testing.T, c tclient.Client, runs []tclient.WorkflowRun, req workflows.SetConfigRequest) pendingChanges {
	t.Helper()
	out := make(pendingChanges, len(runs))
	var wg sync.WaitGroup
	errs := make([]error, len(runs))
	for i, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out[i], errs[i] = sendChange(ctx, c, run.GetID(), workflows.SetConfigUpdate, req.RequestID, req, tclient.WorkflowUpdateStageAccepted)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: %s not accepted: %v", runs[i].GetID(), req.RequestID, err)
		}
	}
	return out
}

// wait returns each change's result, in order.
func (p pendingChanges) wait(t *testing.T) []workflows.SetConfigResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out := make([]workflows.SetConfigResult, len(p))
	for i, h := range p {
		if err := h.Get(ctx, &out[i]); err != nil {
			t.Fatalf("%s: change %s: %v", h.WorkflowID(), h.UpdateID(), err)
		}
	}
	return out
}

// stop sends SIGTERM and requires a drain: the worker exits 0 within its stop timeout
// (plus slack for a loaded machine), having logged its stop. It returns when the SIGTERM
// was sent and how long the stop took.
func (w *workerProcess) stop(t *testing.T) (time.Time, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("cannot stop %s: %v", w.name, err)
	}
	select {
	case <-w.done:
	case <-time.After(workerapp.StopTimeout + 10*time.Second):
		t.Fatalf("%s still running %s after SIGTERM (stop timeout %s)", w.name, time.Since(start), workerapp.StopTimeout)
	}
	if code := w.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("%s exited %d after SIGTERM, want 0: %v", w.name, code, w.cmd.ProcessState)
	}
	if b, _ := os.ReadFile(w.log); !strings.Contains(string(b), `"msg":"socflow worker stopped"`) {
		t.Errorf("%s did not log its stop:\n%s", w.name, b)
	}
	return start, time.Since(start).Round(10 * time.Millisecond)
}

// identity is the worker's identity in histories: the SDK's default, pid@host@.
func (w *workerProcess) identity() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%d@%s@", w.cmd.Process.Pid, host)
}

// drainedActivities reads the deploys' and instances' histories and counts, per stopped
// worker identity, the activities it completed after its SIGTERM; it fails the test on
// any activity attempt a graceful stop cancelled (an attempt that ended "canceled" and
// was retried, or an activity that failed or was cancelled in the history).
func drainedActivities(t *testing.T, c tclient.Client, insts []opencti.Instance, runs []tclient.WorkflowRun, stopped map[string]time.Time) map[string]int {
	t.Helper()
	var ids []string
	for i, inst := range insts {
		ids = append(ids, workflows.DeployWorkflowID(inst.Name), runs[i].GetID())
	}
	out := map[string]int{}
	for _, id := range ids {
		started := map[int64]*historypb.HistoryEvent{}
		for _, e := range historyEvents(t, c, id, "") {
			switch e.GetEventType() {
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
				a := e.GetActivityTaskStartedEventAttributes()
				started[e.GetEventId()] = e
				if f := a.GetLastFailure(); f != nil && (f.GetCanceledFailureInfo() != nil || strings.Contains(f.GetMessage(), "canceled")) {
					t.Errorf("%s: an activity attempt before event %d was cancelled and retried: %s", id, e.GetEventId(), f.GetMessage())
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
				s := started[e.GetActivityTaskCompletedEventAttributes().GetStartedEventId()]
				who := s.GetActivityTaskStartedEventAttributes().GetIdentity()
				if at, ok := stopped[who]; ok && e.GetEventTime().AsTime().After(at) {
					out[who]++
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
				// A step's attempt that the SIGKILLed worker left started, failed by a
				// live sibling from its journal (package inflight) so the step is retried
				// now: the kill's, not the drain's.
				if f := e.GetActivityTaskFailedEventAttributes().GetFailure(); f.GetApplicationFailureInfo().GetType() != inflight.ErrorType {
					t.Errorf("%s: activity event %d %s: %s", id, e.GetEventId(), e.GetEventType(), f.GetMessage())
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
				t.Errorf("%s: activity event %d %s", id, e.GetEventId(), e.GetEventType())
			}
		}
	}
	return out
}

// setCurrentVersion makes deployment's build current with the temporal CLI, retrying
// while the server has not seen the build's pollers.
func setCurrentVersion(t *testing.T, address, deployment, buildID string) {
	t.Helper()
	retry(t, buildID+" made current", func() (string, error) {
		out, err := exec.Command(os.Getenv("SOCFLOW_TEMPORAL_BIN"), "worker", "deployment", "set-current-version",
			"--address", address, "--deployment-name", deployment, "--build-id", buildID, "--yes").CombinedOutput()
		return string(out), err
	})
}

// readmeRollout returns a runner of the README's rollout commands (section "Scaling
// workers and rolling out a new build") with the real temporal CLI, for this test's
// deployment, its builds b1 (the README's 0.1.0) and b2 (0.2.0).
func readmeRollout(t *testing.T, address, deployment string) func(i int) (string, error) {
	t.Helper()
	cmds := readmeBlock(t, "### Scaling workers and rolling out a new build", "describe", "set-current-version", "describe-version")
	local := strings.NewReplacer("socflow", deployment, "0.2.0", "b2", "0.1.0", "b1")
	run, _ := readmeRunner(t, t.TempDir(), local, cmds, "TEMPORAL_ADDRESS="+address)
	return func(i int) (string, error) { return run(cmds[i]) }
}

// retry runs f until it succeeds, for at most a minute, and fails the test with its
// last output if it never does.
func retry(t *testing.T, what string, f func() (string, error)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// requireEachDeployRanOnce lists the task queue's closed workflows: the ten deploys, each
// one execution that completed (a deploy run twice, failed or timed out shows here).
func requireEachDeployRanOnce(t *testing.T, c tclient.Client, queue string, insts []opencti.Instance) {
	t.Helper()
	runs := map[string][]enumspb.WorkflowExecutionStatus{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus != 'Running'", queue), NextPageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetExecutions() {
			runs[e.GetExecution().GetWorkflowId()] = append(runs[e.GetExecution().GetWorkflowId()], e.GetStatus())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	var want []string
	for _, inst := range insts {
		want = append(want, workflows.DeployWorkflowID(inst.Name))
	}
	var got []string
	for id, statuses := range runs {
		got = append(got, id)
		if len(statuses) != 1 || statuses[0] != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			t.Errorf("%s closed as %v, want one completed run", id, statuses)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("closed workflows on the queue %v, want the %d deploys %v", got, len(want), want)
	}
}
