package inflight_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/internal/inflight"
	"github.com/socflow/socflow/internal/stacktest"
)

// attemptResult is what the test activity saw of itself.
type attemptResult struct {
	Attempt   int32
	Journaled bool // its entry was in the running worker's journal
}

// journalRoot is the root the test activity looks for its own entry in.
var journalRoot string

// reportAttempt returns its attempt and whether the worker's journal lists it.
func reportAttempt(ctx context.Context) (attemptResult, error) {
	info := activity.GetInfo(ctx)
	res := attemptResult{Attempt: info.Attempt}
	for _, e := range journalEntries(journalRoot) {
		if e.WorkflowID == info.WorkflowExecution.ID && e.ActivityID == info.ActivityID && e.Attempt == info.Attempt {
			res.Journaled = true
		}
	}
	return res, nil
}

// oneAttempt runs reportAttempt with timeouts so long that only a recovery, not a
// timeout, can bring a lost attempt back within the test.
func oneAttempt(ctx workflow.Context) (attemptResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID:          "report",
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    10 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond},
	})
	var res attemptResult
	err := workflow.ExecuteActivity(ctx, reportAttempt).Get(ctx, &res)
	return res, err
}

// TestRecoverRetriesOnlyWhatADeadWorkerLeftStarted takes attempts the way a worker does
// (a raw poll, never answered) and journals them as a dead process (unlocked) and a live
// one (locked) would; Recover must fail the dead one's started attempt so it is retried
// now, leave the live one's alone, and drop entries Temporal no longer runs.
func TestRecoverRetriesOnlyWhatADeadWorkerLeftStarted(t *testing.T) {
	st := stacktest.Get(t)
	c := stacktest.TemporalClient(t, st.TemporalAddress, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	queue := fmt.Sprintf("inflight-%d", time.Now().UnixNano())
	root := t.TempDir()
	journalRoot = root
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	// Two workflows whose first attempts a "worker" takes and never answers.
	start := func(id string) client.WorkflowRun {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, oneAttempt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.TerminateWorkflow(context.Background(), run.GetID(), run.GetRunID(), "test over") })
		return run
	}
	dead, live := start(queue+"-dead"), start(queue+"-live")

	// Workflow tasks only: a worker without activities schedules the activities.
	wfWorker := worker.New(c, queue, worker.Options{LocalActivityWorkerOnly: true})
	wfWorker.RegisterWorkflow(oneAttempt)
	if err := wfWorker.Start(); err != nil {
		t.Fatal(err)
	}
	for taken := map[string]bool{}; len(taken) < 2; {
		resp, err := c.WorkflowService().PollActivityTaskQueue(ctx, &workflowservice.PollActivityTaskQueueRequest{
			Namespace: "default", TaskQueue: &taskqueuepb.TaskQueue{Name: queue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL}, Identity: "doomed-worker"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetActivityId() != "" {
			taken[resp.GetWorkflowExecution().GetWorkflowId()] = true
		}
	}

	// The dead process's journal: an unlocked lock file, its attempt, a stale attempt
	// of the same activity, a workflow that does not exist, and a torn write.
	deadDir := filepath.Join(root, "dead")
	writeEntry := func(dir, name string, e inflight.Entry) {
		b, _ := json.Marshal(e)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(deadDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deadDir, "lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	entry := func(run client.WorkflowRun, attempt int32) inflight.Entry {
		return inflight.Entry{Namespace: "default", WorkflowID: run.GetID(), RunID: run.GetRunID(), ActivityID: "report", ActivityType: "reportAttempt", Attempt: attempt}
	}
	writeEntry(deadDir, "1.json", entry(dead, 1))
	writeEntry(deadDir, "2.json", entry(dead, 7))
	writeEntry(deadDir, "3.json", inflight.Entry{Namespace: "default", WorkflowID: queue + "-never", ActivityID: "report", Attempt: 1})
	if err := os.WriteFile(filepath.Join(deadDir, "4.json"), []byte(`{"Namespace":"def`), 0o600); err != nil {
		t.Fatal(err)
	}

	// A live process's journal (this test's, locked) lists the other attempt.
	j, err := inflight.Open(root, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	liveDir := ""
	dirs, _ := os.ReadDir(root)
	for _, d := range dirs {
		if d.Name() != "dead" {
			liveDir = filepath.Join(root, d.Name())
		}
	}
	writeEntry(liveDir, "1.json", entry(live, 1))

	// A worker with a journal of its own takes the retries; then it recovers.
	wfWorker.Stop()
	own, err := inflight.Open(root, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	w := worker.New(c, queue, worker.Options{Interceptors: []interceptor.WorkerInterceptor{own.Interceptor()}})
	w.RegisterWorkflow(oneAttempt)
	w.RegisterActivity(reportAttempt)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	r, err := inflight.Recover(ctx, root, c, logger)
	if err != nil {
		t.Fatal(err)
	}
	if want := (inflight.Recovered{Failed: 1, Gone: 2}); r != want {
		t.Errorf("Recover = %+v, want %+v", r, want)
	}
	var res attemptResult
	if err := dead.Get(ctx, &res); err != nil {
		t.Fatalf("the dead worker's workflow did not finish: %v", err)
	}
	if res.Attempt != 2 || !res.Journaled {
		t.Errorf("the retry ran as %+v, want attempt 2, journaled by the worker that ran it", res)
	}
	if cause := retryCause(t, c, dead); cause != inflight.ErrorType {
		t.Errorf("attempt 2 retried after a %q, want the recovery's %s", cause, inflight.ErrorType)
	}
	if _, err := os.Stat(deadDir); !os.IsNotExist(err) {
		t.Errorf("the dead journal is still there after its recovery: %v", err)
	}
	for _, e := range journalEntries(root) {
		if e.WorkflowID != live.GetID() {
			t.Errorf("entry %+v left in a journal: finished attempts are removed", e)
		}
	}

	desc, err := c.DescribeWorkflowExecution(ctx, live.GetID(), live.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	if p := desc.GetPendingActivities(); len(p) != 1 || p[0].GetState() != enumspb.PENDING_ACTIVITY_STATE_STARTED || p[0].GetAttempt() != 1 {
		t.Errorf("the live worker's attempt was touched: pending %v, want attempt 1 still started", p)
	}
	if _, err := os.Stat(filepath.Join(liveDir, "1.json")); err != nil {
		t.Errorf("the live journal lost its entry: %v", err)
	}
}

// TestCloseRemovesTheJournal: a graceful stop leaves nothing to recover.
func TestCloseRemovesTheJournal(t *testing.T) {
	root := t.TempDir()
	j, err := inflight.Open(root, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if dirs, _ := os.ReadDir(root); len(dirs) != 0 {
		t.Errorf("journal root holds %v after Close, want nothing", dirs)
	}
}

// TestOpenNamesTheSetting: an unwritable root is refused with the variable that moves it.
func TestOpenNamesTheSetting(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := inflight.Open(filepath.Join(file, "inflight"), slog.Default())
	if err == nil || !strings.Contains(err.Error(), "SOCFLOW_INFLIGHT_DIR") {
		t.Errorf("Open under a file: %v, want an error naming SOCFLOW_INFLIGHT_DIR", err)
	}
}

// journalEntries reads every entry of every journal under root.
func journalEntries(root string) []inflight.Entry {
	files, _ := filepath.Glob(filepath.Join(root, "*", "*.json"))
	var out []inflight.Entry
	for _, f := range files {
		var e inflight.Entry
		if b, err := os.ReadFile(f); err == nil && json.Unmarshal(b, &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// retryCause is the failure type of the attempt before the activity's last one.
func retryCause(t *testing.T, c client.Client, run client.WorkflowRun) string {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := e.GetActivityTaskStartedEventAttributes(); a != nil {
			if f := a.GetLastFailure(); f != nil {
				return f.GetApplicationFailureInfo().GetType()
			}
			return "(no failure)"
		}
	}
	return "(no activity started)"
}

// TestRecoverRemovesJournalsLeftHalfOpen: a process that died between creating its
// hidden journal and locking it leaves an empty directory, removed after a minute; a
// younger one may be opening now and stays.
func TestRecoverRemovesJournalsLeftHalfOpen(t *testing.T) {
	root := t.TempDir()
	stale, fresh := filepath.Join(root, ".stale"), filepath.Join(root, ".fresh")
	for _, d := range []string{stale, fresh} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := inflight.Recover(context.Background(), root, nil, slog.Default()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("a half-opened journal two minutes old is still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a journal being opened now was removed: %v", err)
	}
}
