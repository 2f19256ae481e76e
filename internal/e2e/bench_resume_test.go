package e2e

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	enumspb "go.temporal.io/api/enums/v1"
	tclient "go.temporal.io/sdk/client"

	"github.com/socflow/socflow/internal/benchreport"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/workflows"
)

// BenchmarkResume measures how long a deploy stalls after its worker is SIGKILLed: b.N
// deploys, each killed while it waits for the platform's first boot (a probe in
// flight, the longest wait of a deploy) and a new worker process started at once.
// Resume latency is the time from the new worker's start to the first activity it
// runs for the deploy (the probe, failed from the dead worker's journal by the new one
// and retried; package inflight). Beside it, the deploy's Temporal load: its workflow
// tasks and activity task attempts, against the same deploy with no kill, measured
// first in the same run. Goals: resume p50 and p99 < 3 s, with that load at most 10 %
// above the unkilled deploy's.
func BenchmarkResume(b *testing.B) {
	c := temporalClient(b)
	secretDir := b.TempDir()
	queue := fmt.Sprintf("e2e-resume-%d", time.Now().UnixNano())
	w := startWorkerProcess(b, "worker-0", queue, secretDir)

	// The baseline: the same deploy on the same worker, not killed.
	inst := newInstance(b, instanceOpts{initDelay: 40 * time.Second})
	base := resumeLoad(b, c, deployAndWait(b, c, queue, inst, nil), w.identity())

	var resume, wfTasks, actTasks, beats, calls []float64
	b.ResetTimer()
	for i := range b.N {
		before := serverCalls(b)
		var started time.Time
		run := deployAndWait(b, c, queue, newInstance(b, instanceOpts{initDelay: 40 * time.Second}), func(inst opencti.Instance, run tclient.WorkflowRun) {
			waitStatus(b, c, run.GetID(), 2*time.Minute, "waiting for the platform's first boot", func(s workflows.DeployStatus) bool {
				if s.Phase != workflows.PhaseWaitingPlatform {
					return false
				}
				p := services(b, inst.Pebble.Socket)[opencti.PlatformService]
				return p != nil && p.Current == client.StatusActive
			})
			time.Sleep(2 * time.Second) // into the probe's window, past its first heartbeat
			w.kill9(b)
			started = time.Now()
			w = startWorkerProcess(b, fmt.Sprintf("worker-%d", i+1), queue, secretDir)
		})
		after := serverCalls(b)
		beats = append(beats, after.heartbeats-before.heartbeats)
		calls = append(calls, after.total-before.total)
		l := resumeLoad(b, c, run, w.identity())
		if l.firstRun.IsZero() {
			b.Fatalf("the new worker ran no activity of the deploy")
		}
		if len(crashRetried(b, c, run)) == 0 {
			b.Errorf("the new worker did not fail the probe its predecessor left started: it waited for the heartbeat timeout")
		}
		resume = append(resume, l.firstRun.Sub(started).Seconds())
		wfTasks = append(wfTasks, float64(l.workflowTasks))
		actTasks = append(actTasks, float64(l.activityAttempts))
	}
	b.StopTimer()
	resumeGoal := &benchreport.Goal{Text: "< 3 s", Op: benchreport.Less, Bound: 3}
	loadGoal := func(baseline int) *benchreport.Goal {
		return &benchreport.Goal{Text: fmt.Sprintf("≤ +10 %% of the same deploy not killed (%d)", baseline), Op: benchreport.AtMost, Bound: 1.1 * float64(baseline)}
	}
	reportFigures(b, []benchreport.Figure{
		{Name: "resume-p50-s", Value: pct(resume, 50), Unit: "s", Goal: resumeGoal},
		{Name: "resume-p99-s", Value: pct(resume, 99), Unit: "s", Goal: resumeGoal},
		{Name: "workflow-tasks/deploy", Value: pct(wfTasks, 50), Unit: "tasks", Goal: loadGoal(base.workflowTasks)},
		{Name: "activity-attempts/deploy", Value: pct(actTasks, 50), Unit: "attempts", Goal: loadGoal(base.activityAttempts)},
		{Name: "heartbeats/deploy", Value: pct(beats, 50), Unit: "heartbeats"},
		{Name: "worker-calls/deploy", Value: pct(calls, 50), Unit: "calls"},
	})
	fmt.Printf("resume after SIGKILL (%d deploys, killed waiting for the platform): p50 %.2f s, p99 %.2f s (goal < 3 s)\n"+
		"  Temporal load per deploy (p50): %.0f workflow tasks, %.0f activity task attempts (not killed: %d and %d), %.0f heartbeats,"+
		" %.0f worker calls to the frontend (task completions, failures and heartbeats)\n",
		b.N, pct(resume, 50), pct(resume, 99), pct(wfTasks, 50), pct(actTasks, 50), base.workflowTasks, base.activityAttempts, pct(beats, 50), pct(calls, 50))
}

// deployAndWait deploys inst on queue, calls during (if set) while it runs, and fails
// unless the deploy then completes.
func deployAndWait(tb testing.TB, c tclient.Client, queue string, inst opencti.Instance, during func(opencti.Instance, tclient.WorkflowRun)) tclient.WorkflowRun {
	tb.Helper()
	run := startDeploy(tb, c, queue, inst)
	if during != nil {
		during(inst, run)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := run.Get(ctx, nil); err != nil {
		tb.Fatalf("deploy of %s failed: %v", inst.Name, err)
	}
	return run
}

// deployLoad is what a deploy's history says of its Temporal load and of a worker.
type deployLoad struct {
	firstRun         time.Time // the first activity attempt the given worker started
	workflowTasks    int       // workflow tasks scheduled
	activityAttempts int       // activity attempts, retries included
}

// resumeLoad reads the deploy's history: its workflow tasks and activity attempts, and
// when the worker with identity first started one of its activities.
func resumeLoad(tb testing.TB, c tclient.Client, run tclient.WorkflowRun, identity string) deployLoad {
	tb.Helper()
	var l deployLoad
	for _, e := range historyEvents(tb, c, run.GetID(), run.GetRunID()) {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
			l.workflowTasks++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := e.GetActivityTaskStartedEventAttributes()
			l.activityAttempts += int(a.GetAttempt())
			if t := e.GetEventTime().AsTime(); a.GetIdentity() == identity && (l.firstRun.IsZero() || t.Before(l.firstRun)) {
				l.firstRun = t
			}
		}
	}
	return l
}

// frontendCalls counts the calls workers made to the Temporal frontend, from the
// server's own metrics (service_requests of namespace default): heartbeats, and every
// task completion, failure and heartbeat together. Polls, queries and history reads are
// left out: they are the benchmark's own, or idle long polls.
type frontendCalls struct{ heartbeats, total float64 }

// serverCalls scrapes the Temporal server's metrics (SOCFLOW_TEMPORAL_METRICS_URL,
// default the stack's dev server on 127.0.0.1:7236). Calls of other clients of the same
// server in the same seconds count too: run the benchmark alone.
func serverCalls(tb testing.TB) frontendCalls {
	tb.Helper()
	url := cmp.Or(os.Getenv("SOCFLOW_TEMPORAL_METRICS_URL"), "http://127.0.0.1:7236/metrics")
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatalf("cannot read the Temporal server's metrics at %s (set SOCFLOW_TEMPORAL_METRICS_URL): %v", url, err)
	}
	defer resp.Body.Close()
	var n frontendCalls
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "service_requests{") || !strings.Contains(line, `namespace="default"`) || !strings.Contains(line, `service_name="frontend"`) {
			continue
		}
		op := between(line, `operation="`, `"`)
		v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err != nil {
			continue
		}
		switch {
		case op == "RecordActivityTaskHeartbeat":
			n.heartbeats += v
			n.total += v
		case strings.HasPrefix(op, "Respond"):
			n.total += v
		}
	}
	return n
}

// between returns the text of s between the first from and the next to.
func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	v, _, _ := strings.Cut(rest, to)
	return v
}
