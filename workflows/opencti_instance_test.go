package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/opencti"
)

// fakeContainer answers ApplyOpenCTIPlan like the real activity: it diffs the plan of
// the pushed spec (secret stand-ins for values) with the previous push.
type fakeContainer struct {
	prev *opencti.Plan
}

func (f *fakeContainer) apply(_ context.Context, in activities.ApplyOpenCTIPlanInput) (activities.ApplyOpenCTIPlanResult, error) {
	p, err := opencti.PreviewPlan(in.Instance, in.Secrets)
	if err != nil {
		return activities.ApplyOpenCTIPlanResult{}, err
	}
	res := activities.ApplyOpenCTIPlanResult{Services: opencti.Services(in.Instance)}
	if f.prev != nil {
		res.PebbleLayerChanges = serviceChanges(f.prev.Layer, p.Layer)
	}
	f.prev = &p
	return res, nil
}

// newInstanceEnv is a test environment for OpenCTIInstance whose activities answer as
// a healthy stack does; a stop takes stopTakes[0] (default: no time).
func newInstanceEnv(t *testing.T, calls *callLog, stopTakes ...time.Duration) *testsuite.TestWorkflowEnvironment {
	env, _ := newConnectorEnv(t, calls, stopTakes...)
	return env
}

// newConnectorEnv is newInstanceEnv with the fake platform its connector activities use.
func newConnectorEnv(t *testing.T, calls *callLog, stopTakes ...time.Duration) (*testsuite.TestWorkflowEnvironment, *fakeConnectors) {
	env := newEnv(t)
	fc := fakeConnectorMocks(env, calls)
	env.RegisterWorkflow(OpenCTIInstance)
	happyMocks(env, calls, "apply", "start")
	env.OnActivity(a.StartPebbleServices, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.StartPebbleServicesInput) (activities.StartPebbleServicesResult, error) {
			calls.add("start:" + strings.Join(in.Services, ","))
			return activities.StartPebbleServicesResult{Started: in.Services}, nil
		})
	f := &fakeContainer{}
	env.OnActivity(a.ApplyOpenCTIPlan, mock.Anything, mock.Anything).Return(f.apply)
	env.OnActivity(a.EnsureInstanceSchedule, mock.Anything, mock.Anything).Return(activities.EnsureScheduleResult{Created: true}, nil)
	env.OnActivity(a.StopPebbleServices, mock.Anything, mock.Anything).After(append(stopTakes, 0)[0]).Return(
		func(_ context.Context, in activities.StopPebbleServicesInput) (activities.StopPebbleServicesResult, error) {
			calls.add("stop:" + strings.Join(in.Services, ","))
			return activities.StopPebbleServicesResult{Stopped: in.Services}, nil
		})
	env.OnActivity(a.RestartPebbleServices, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RestartPebbleServicesInput) (activities.RestartPebbleServicesResult, error) {
			calls.add("restart:" + strings.Join(in.Services, ",") + connectorAt(in.Pebble))
			if connectorAt(in.Pebble) != "" && !fc.startedIn(in.Pebble) {
				return activities.RestartPebbleServicesResult{Started: in.Services}, nil
			}
			return activities.RestartPebbleServicesResult{Restarted: in.Services}, nil
		})
	return env, fc
}

// update sends a SetConfig update and returns its result or rejection.
func update(env *testsuite.TestWorkflowEnvironment, at time.Duration, id string, arg any, done func(SetConfigResult, error)) {
	updateNamed(env, SetConfigUpdate, at, id, arg, done)
}

// updateNamed sends the change update of the given name at a workflow time.
func updateNamed(env *testsuite.TestWorkflowEnvironment, name string, at time.Duration, id string, arg any, done func(ChangeResult, error)) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { done(SetConfigResult{}, err) },
			OnComplete: func(v any, err error) {
				r, _ := v.(SetConfigResult)
				done(r, err)
			},
		}, arg)
	}, at)
}

func TestInstanceDeploysThenAppliesMinimalChanges(t *testing.T) {
	var calls callLog
	env := newInstanceEnv(t, &calls)
	five, three := 5, 3
	results := map[string]SetConfigResult{}
	errs := map[string]error{}
	rec := func(id string) func(SetConfigResult, error) {
		return func(r SetConfigResult, err error) { results[id], errs[id] = r, err }
	}
	inst := testInstance()
	inst.OpenCTI.Workers = &three
	update(env, time.Minute, "u1", SetConfigRequest{RequestID: "r1", Workers: &five}, rec("u1"))
	update(env, 2*time.Minute, "u2", SetConfigRequest{RequestID: "r1", Workers: &five}, rec("u2")) // repeated request ID
	update(env, 3*time.Minute, "u3", SetConfigRequest{Workers: &three}, rec("u3"))
	update(env, 4*time.Minute, "u4", SetConfigRequest{LogLevel: opencti.LogDebug}, rec("u4"))
	bad := -1
	update(env, 5*time.Minute, "bad1", SetConfigRequest{Workers: &bad}, rec("bad1"))
	update(env, 5*time.Minute, "bad2", map[string]any{"workers": "five"}, rec("bad2"))
	update(env, 5*time.Minute, "bad3", SetConfigRequest{LogLevel: "verbose"}, rec("bad3"))
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SetConfigUpdate, json.RawMessage(`{"workers": "five"}`))
	}, 6*time.Minute)
	var st InstanceStatus
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(StatusQuery)
		if err != nil || v.Get(&st) != nil {
			t.Errorf("status query: %v", err)
		}
		env.CancelWorkflow()
	}, 7*time.Minute)
	env.ExecuteWorkflow(OpenCTIInstance, InstanceInput{Instance: inst})

	got := calls.list()
	deployEnd := -1
	for i, c := range got {
		if c == "start:worker-0,worker-1,worker-2" {
			deployEnd = i
		}
	}
	want := []string{"start:worker-3,worker-4", "stop:worker-3,worker-4", "restart:platform", "healthy", "check", "restart:worker-0,worker-1,worker-2"}
	if deployEnd < 0 || strings.Join(got[deployEnd+1:], " ") != strings.Join(want, " ") {
		t.Fatalf("calls %v\nwant after the deploy: %v", got, want)
	}
	if r := results["u1"]; errs["u1"] != nil || strings.Join(r.Started, ",") != "worker-3,worker-4" || len(r.Restarted) != 0 {
		t.Errorf("workers 5: %+v %v", r, errs["u1"])
	}
	if r := results["u2"]; errs["u2"] != nil || r.RequestID != "r1" || strings.Join(r.Started, ",") != "worker-3,worker-4" {
		t.Errorf("repeated r1 did not return the first result: %+v %v", r, errs["u2"])
	}
	if r := results["u3"]; strings.Join(r.Stopped, ",") != "worker-3,worker-4" || r.RequestID != "u3" {
		t.Errorf("workers 3: %+v", r)
	}
	if r := results["u4"]; strings.Join(r.Restarted, ",") != "platform,worker-0,worker-1,worker-2" || len(r.Changed) != 4 {
		t.Errorf("logLevel debug: %+v", r)
	}
	for id, field := range map[string]string{"bad1": "opencti.workers", "bad2": "workers", "bad3": "opencti.logLevel"} {
		if errs[id] == nil || !strings.Contains(errs[id].Error(), field) {
			t.Errorf("%s: error %v, want a rejection naming %s", id, errs[id], field)
		}
	}
	if st.Status.Kind != StatusActive || st.Workers != 3 || st.LogLevel != opencti.LogDebug || st.Pending != 0 {
		t.Errorf("status %+v", st)
	}
	last := st.Recent[len(st.Recent)-1]
	if last.Via != "signal" || last.State != "rejected" || !strings.Contains(last.Summary, "workers") {
		t.Errorf("rejected signal not in the status: %+v", st.Recent)
	}
}

func TestInstanceContinuesAsNewCarryingItsState(t *testing.T) {
	var calls callLog
	env := newInstanceEnv(t, &calls)
	four := 4
	var res SetConfigResult
	update(env, time.Minute, "u1", SetConfigRequest{Workers: &four}, func(r SetConfigResult, err error) { res = r })
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SetConfigUpdate, SetConfigRequest{RequestID: "s1", LogLevel: opencti.LogWarn})
	}, 2*time.Minute)
	// The test environment delivers a signal after its callback returns: suggest
	// Continue-As-New from a later callback, as a server would with the next task.
	env.RegisterDelayedCallback(func() { env.SetContinueAsNewSuggested(true) }, 2*time.Minute+time.Second)
	env.ExecuteWorkflow(OpenCTIInstance, InstanceInput{Instance: testInstance(), ContinueAsNewAfterEvents: 1000})
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("error %v, want continue as new", err)
	}
	var next InstanceInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Started, ",") != "worker-2,worker-3" {
		t.Errorf("change before continue-as-new: %+v", res)
	}
	st := next.State
	if st == nil || !st.Deployed || *st.Spec.OpenCTI.Workers != 4 || st.Spec.OpenCTI.LogLevel != opencti.LogWarn ||
		len(st.Queue) != 0 || st.Results["u1"].RequestID != "u1" || st.Results["s1"].RequestID != "s1" ||
		st.Secrets != refs || next.ContinueAsNewAfterEvents != 1000 || st.Runs != 1 {
		t.Errorf("carried state %+v", st)
	}
}

// A change that fails after its plan was pushed leaves its restarts owed: the next
// change (whose plan then reports nothing changed) does them.
func TestInstanceChangeAfterAFailedOneDoesWhatItLeftUndone(t *testing.T) {
	var calls callLog
	env := newEnv(t)
	env.RegisterWorkflow(OpenCTIInstance)
	happyMocks(env, &calls, "apply")
	fakeConnectorMocks(env, &calls)
	f := &fakeContainer{}
	env.OnActivity(a.ApplyOpenCTIPlan, mock.Anything, mock.Anything).Return(f.apply)
	env.OnActivity(a.EnsureInstanceSchedule, mock.Anything, mock.Anything).Return(activities.EnsureScheduleResult{Created: true}, nil)
	restarts := 0
	env.OnActivity(a.RestartPebbleServices, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RestartPebbleServicesInput) (activities.RestartPebbleServicesResult, error) {
			calls.add("restart:" + strings.Join(in.Services, ","))
			if restarts++; restarts == 1 {
				return activities.RestartPebbleServicesResult{}, temporal.NewNonRetryableApplicationError("cannot restart platform: boom", "Test", nil)
			}
			return activities.RestartPebbleServicesResult{Restarted: in.Services}, nil
		})
	var r1, r2 SetConfigResult
	var e1, e2 error
	update(env, time.Minute, "u1", SetConfigRequest{LogLevel: opencti.LogDebug}, func(r SetConfigResult, err error) { r1, e1 = r, err })
	var blocked InstanceStatus
	env.RegisterDelayedCallback(func() {
		v, _ := env.QueryWorkflow(StatusQuery)
		_ = v.Get(&blocked)
	}, 90*time.Second)
	update(env, 2*time.Minute, "u2", SetConfigRequest{LogLevel: opencti.LogDebug}, func(r SetConfigResult, err error) { r2, e2 = r, err })
	env.RegisterDelayedCallback(env.CancelWorkflow, 3*time.Minute)
	env.ExecuteWorkflow(OpenCTIInstance, InstanceInput{Instance: testInstance()})

	if e1 == nil || !strings.Contains(e1.Error(), "boom") || !strings.Contains(r1.Error, "boom") {
		t.Errorf("first change: %+v %v, want the restart's failure", r1, e1)
	}
	if blocked.Status.Kind != StatusBlocked || !strings.Contains(blocked.Status.Message, "boom") {
		t.Errorf("status after the failure %+v, want blocked with the reason", blocked.Status)
	}
	if e2 != nil || strings.Join(r2.Restarted, ",") != "platform,worker-0,worker-1" || len(r2.Changed) != 0 {
		t.Errorf("second change: %+v %v, want the owed restarts of the platform, then the workers", r2, e2)
	}
	got := calls.list()
	want := "restart:platform restart:platform healthy check restart:worker-0,worker-1"
	if n := len(got); n < 5 || strings.Join(got[n-5:], " ") != want {
		t.Errorf("calls %v, want them to end with %s", got, want)
	}
}
