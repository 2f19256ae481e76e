package activities_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

// TestStartPebbleServicesRetryReportsTheLostStart: the first attempt of a start starts
// worker-1 and its completion is lost (its worker died, the server restarted); the retry
// finds worker-1 running and reports it Started — the start this call made — not
// AlreadyActive, while worker-0, running before the call, stays AlreadyActive. Nothing
// is started twice.
func TestStartPebbleServicesRetryReportsTheLostStart(t *testing.T) {
	p, dir, acts := platformAndWorker0(t)
	before := pids(t, dir)
	time.Sleep(10 * time.Millisecond) // the call is scheduled after those starts

	// The real activity under its own name, its first attempt's result lost on the way.
	lossy := func(ctx context.Context, in activities.StartPebbleServicesInput) (activities.StartPebbleServicesResult, error) {
		res, err := acts.StartPebbleServices(ctx, in)
		if err == nil && activity.GetInfo(ctx).Attempt == 1 {
			return res, errors.New("completion lost")
		}
		return res, err
	}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterActivityWithOptions(lossy, activity.RegisterOptions{Name: "StartPebbleServices"})
	env.ExecuteWorkflow(func(ctx workflow.Context) (activities.StartPebbleServicesResult, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Millisecond, MaximumAttempts: 2}})
		var res activities.StartPebbleServicesResult
		err := workflow.ExecuteActivity(ctx, "StartPebbleServices", activities.StartPebbleServicesInput{
			Pebble: p, Services: []string{"worker-0", "worker-1"}}).Get(ctx, &res)
		return res, err
	})
	var res activities.StartPebbleServicesResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Started, []string{"worker-1"}) || !slices.Equal(res.AlreadyActive, []string{"worker-0"}) {
		t.Errorf("result after the lost first attempt %+v, want worker-1 started and worker-0 already active", res)
	}
	after := pids(t, dir)
	if after["worker-0"] != before["worker-0"] || after["worker-1"] == "" {
		t.Errorf("pids before %v, after %v: want worker-0 untouched and worker-1 started", before, after)
	}
	starts := 0
	for _, ch := range pebbleChanges(t, p.Socket) {
		if ch.Kind == "start" && strings.Contains(ch.Summary, `"worker-1"`) {
			starts++
		}
	}
	if starts != 1 {
		t.Errorf("worker-1 started in %d changes, want 1", starts)
	}
}

// TestStartPebbleServicesStepRetryReportsTheLostStart: a workflow that retries a step
// itself schedules a new activity per attempt (attempt 1 each time, scheduled after the
// lost start); the workflow's Since still lets the retry report worker-1 as Started.
// The chaos suite found it: a server restart lost the result, the instance's retried
// step reported "nothing to do".
func TestStartPebbleServicesStepRetryReportsTheLostStart(t *testing.T) {
	ctx := context.Background()
	p, _, acts := platformAndWorker0(t)
	time.Sleep(10 * time.Millisecond) // the step is decided after those starts
	in := activities.StartPebbleServicesInput{Pebble: p, Services: []string{"worker-0", "worker-1"}, Since: time.Now()}
	if _, err := acts.StartPebbleServices(ctx, in); err != nil { // its result lost
		t.Fatal(err)
	}
	res, err := acts.StartPebbleServices(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Started, []string{"worker-1"}) || !slices.Equal(res.AlreadyActive, []string{"worker-0"}) {
		t.Errorf("step retry after the lost attempt: %+v, want worker-1 started and worker-0 already active", res)
	}
	in.Since = time.Time{} // outside an activity, with no Since: nothing to go by
	if res, err := acts.StartPebbleServices(ctx, in); err != nil || len(res.Started) != 0 {
		t.Errorf("with no Since: %+v, %v; want both already active", res, err)
	}
}

// platformAndWorker0 is a Pebble with the platform and two workers planned (sleepers
// writing their pids under dir), the platform and worker-0 started, worker-1 not.
func platformAndWorker0(t *testing.T) (spec.Pebble, string, *activities.Activities) {
	t.Helper()
	ctx := context.Background()
	p := spec.Pebble{Socket: stacktest.Pebble(t)}
	dir := t.TempDir()
	if _, err := applySleepers(ctx, p, sleepLayer(dir, 2, nil)); err != nil {
		t.Fatal(err)
	}
	acts := &activities.Activities{}
	if _, err := acts.StartPebbleServices(ctx, activities.StartPebbleServicesInput{Pebble: p, Services: []string{"platform", "worker-0"}}); err != nil {
		t.Fatal(err)
	}
	return p, dir, acts
}
