package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
)

// statusKinds records the SocflowStatus values the workflow upserts, in order.
func statusKinds(env *testsuite.TestWorkflowEnvironment) *[]string {
	var kinds []string
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil).Run(func(args mock.Arguments) {
		if v, ok := args.Get(0).(temporal.SearchAttributes).GetKeyword(SearchAttrStatus); ok {
			kinds = append(kinds, v)
		}
	})
	return &kinds
}

func queryStatus(t *testing.T, env *testsuite.TestWorkflowEnvironment) DeployStatus {
	t.Helper()
	v, err := env.QueryWorkflow(StatusQuery)
	if err != nil {
		t.Fatalf("status query: %v", err)
	}
	var st DeployStatus
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

const noSocket = "cannot reach pebble at /tmp/later/.pebble.socket: dial unix /tmp/later/.pebble.socket: connect: no such file or directory"

// A short step that fails, here the plan push to a Pebble whose socket does not exist
// yet, is retried by the workflow with pebbleOptions' backoff (1 s, 2 s, 4 s), and the
// status names the step, the attempt and the last error while it waits.
func TestStepRetryShowsStepAttemptAndLastError(t *testing.T) {
	env := newEnv(t)
	var log callLog
	happyMocks(env, &log, "apply")
	kinds := statusKinds(env)
	t0 := env.Now()
	calls := 0
	var at []time.Duration
	env.OnActivity(a.ApplyOpenCTIPlan, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.ApplyOpenCTIPlanInput) (activities.ApplyOpenCTIPlanResult, error) {
			calls++
			at = append(at, env.Now().Sub(t0))
			if calls <= 3 {
				return activities.ApplyOpenCTIPlanResult{}, temporal.NewApplicationError(noSocket, "PebbleUnreachable")
			}
			return activities.ApplyOpenCTIPlanResult{PlatformDigest: "d"}, nil
		})
	var during []Status
	for _, d := range []time.Duration{2 * time.Second, 5 * time.Second} {
		env.RegisterDelayedCallback(func() { during = append(during, queryStatus(t, env).Status) }, d)
	}
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: testInstance()})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if calls != 4 {
		t.Fatalf("plan pushed %d times, want 4 (3 failures, then success)", calls)
	}
	// Attempts at 0, 1, 3 and 7 s: the backoff of pebbleOptions, run by the workflow.
	for i, want := range []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second} {
		if at[i] != want {
			t.Errorf("attempt %d at %s, want %s (all: %v)", i+1, at[i], want, at)
		}
	}
	for i, want := range []int{3, 4} {
		s := during[i]
		if s.Kind != StatusWaiting || s.Step != string(PhasePushingPlan) || s.Attempt != want || s.LastError != noSocket ||
			!strings.Contains(s.Message, "retrying pushing-plan (attempt") || !strings.Contains(s.Message, ".pebble.socket") {
			t.Errorf("status at query %d = %+v, want waiting on pushing-plan attempt %d with the socket error", i, s, want)
		}
	}
	final := queryStatus(t, env)
	if final.Status.Kind != StatusActive || final.Status.Retrying() || final.Phase != PhaseDone {
		t.Errorf("final status %+v, want active with no retry", final.Status)
	}
	if !strings.Contains(final.LastReason, ".pebble.socket") {
		t.Errorf("last reason %q does not keep the step's error", final.LastReason)
	}
	// maintenance, waiting while retrying (one upsert however many attempts), back to
	// maintenance, active.
	if got := strings.Join(*kinds, " "); got != "maintenance waiting maintenance active" {
		t.Errorf("SocflowStatus upserts %q", got)
	}
}

// A non-retryable error ends the step at once, and the status blocks with the reason.
func TestStepRetryStopsAtANonRetryableError(t *testing.T) {
	env := newEnv(t)
	var log callLog
	happyMocks(env, &log, "apply")
	kinds := statusKinds(env)
	calls := 0
	const owned = "cannot deploy unit into the container at /tmp/pebble.socket: it runs instance demo; give unit its own container, or remove demo first"
	env.OnActivity(a.ApplyOpenCTIPlan, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.ApplyOpenCTIPlanInput) (activities.ApplyOpenCTIPlanResult, error) {
			calls++
			return activities.ApplyOpenCTIPlanResult{}, temporal.NewNonRetryableApplicationError(owned, "ContainerOwned", nil)
		})
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: testInstance()})
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != "ContainerOwned" {
		t.Fatalf("error %v, want ContainerOwned", err)
	}
	if calls != 1 {
		t.Errorf("plan pushed %d times, want 1", calls)
	}
	st := queryStatus(t, env)
	if st.Status.Kind != StatusBlocked || st.Status.Step != string(PhasePushingPlan) ||
		!strings.Contains(st.Status.Message, owned) || !strings.Contains(st.Status.Message, "run the same deploy again") {
		t.Errorf("status %+v, want blocked in pushing-plan with the reason and how to resume", st.Status)
	}
	if got := strings.Join(*kinds, " "); got != "maintenance blocked" {
		t.Errorf("SocflowStatus upserts %q, want maintenance blocked", got)
	}
}

// A step that keeps failing ends when its overall bound runs out (quickOptions: 5 min,
// the server's ScheduleToClose before), with the last error and the attempts made.
func TestStepRetryEndsAtTheOverallBound(t *testing.T) {
	env := newEnv(t)
	var log callLog
	happyMocks(env, &log, "bucket")
	t0 := env.Now()
	calls := 0
	var last time.Duration
	env.OnActivity(a.EnsureBucket, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.EnsureBucketInput) (activities.EnsureBucketResult, error) {
			calls++
			last = env.Now().Sub(t0)
			return activities.EnsureBucketResult{}, errors.New("cannot reach s3 at http://127.0.0.1:9000: connection refused")
		})
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: testInstance()})
	err := env.GetWorkflowError()
	if !hasErrorType(err, ErrTypeRetriesExhausted) {
		t.Fatalf("error %v, want %s", err, ErrTypeRetriesExhausted)
	}
	// 1, 2, 4, 8, 16 s, then 20 s (MaximumInterval): attempts from 0 to 291 s; the
	// next, at 311 s, would pass the 5 min bound.
	if calls != 19 || last != 291*time.Second {
		t.Errorf("%d attempts, the last at %s; want 19, the last at 4m51s", calls, last)
	}
	for _, want := range []string{"ensuring-bucket: still failing after 19 attempts in 4m51s", "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if st := queryStatus(t, env); st.Status.Kind != StatusBlocked || st.Status.Step != string(PhaseEnsuringBucket) {
		t.Errorf("status %+v, want blocked in ensuring-bucket", st.Status)
	}
}

// graphqlOptions bounds by attempts (6), not by time.
func TestStepRetryEndsAtTheMaximumAttempts(t *testing.T) {
	env := newEnv(t)
	var log callLog
	happyMocks(env, &log, "verify")
	calls := 0
	env.OnActivity(a.VerifyOpenCTI, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.VerifyOpenCTIInput) (activities.VerifyOpenCTIResult, error) {
			calls++
			return activities.VerifyOpenCTIResult{}, errors.New("cannot query about.version: HTTP 502")
		})
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: testInstance()})
	err := env.GetWorkflowError()
	if calls != 6 || !hasErrorType(err, ErrTypeRetriesExhausted) || !strings.Contains(err.Error(), "verifying: still failing after 6 attempts") {
		t.Fatalf("%d attempts, error %v; want 6 and the attempts named", calls, err)
	}
}

// The status follows the deploy: maintenance, waiting with the reason while a
// dependency or the platform is not ready, maintenance again, active when done.
func TestStatusTransitions(t *testing.T) {
	env := newEnv(t)
	var log callLog
	happyMocks(env, &log, "redis", "healthy")
	kinds := statusKinds(env)
	redis, health := 0, 0
	// Each probe round takes a second of workflow time, so the status can be queried
	// between rounds.
	env.OnActivity(a.ProbeRedis, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ProbeRedisInput) (activities.ProbeResult, error) {
			if redis++; redis <= 2 {
				return activities.ProbeResult{Dependency: "redis", Reason: "connection refused"}, nil
			}
			return activities.ProbeResult{Dependency: "redis", Ready: true}, nil
		}).After(time.Second)
	env.OnActivity(a.WaitOpenCTIHealthy, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.WaitOpenCTIHealthyInput) (activities.ProbeResult, error) {
			if health++; health <= 2 {
				return activities.ProbeResult{Reason: "platform is initialising (running, port not open yet)"}, nil
			}
			return activities.ProbeResult{Ready: true}, nil
		}).After(time.Second)
	seen := map[time.Duration]Status{}
	for _, d := range []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 4500 * time.Millisecond} {
		env.RegisterDelayedCallback(func() { seen[d] = queryStatus(t, env).Status }, d)
	}
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: testInstance()})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	for d, want := range map[time.Duration]Status{
		500 * time.Millisecond:  {Kind: StatusMaintenance, Step: "waiting-dependencies", Message: "probing opensearch, rabbitmq, redis and s3"},
		1500 * time.Millisecond: {Kind: StatusWaiting, Step: "waiting-dependencies", Message: "waiting for redis (connection refused)"},
		4500 * time.Millisecond: {Kind: StatusWaiting, Step: "waiting-platform", Message: "waiting for the platform: platform is initialising (running, port not open yet)"},
	} {
		if seen[d] != want {
			t.Errorf("status at %s = %+v, want %+v", d, seen[d], want)
		}
	}
	if got := strings.Join(*kinds, " "); got != "maintenance waiting maintenance waiting maintenance active" {
		t.Errorf("SocflowStatus upserts %q", got)
	}
	st := queryStatus(t, env)
	if st.Status.Kind != StatusActive || !strings.Contains(st.Status.Message, "OpenCTI 6.9.3 serving at") {
		t.Errorf("final status %+v", st.Status)
	}
}

// Deploys begun before StepStatusChange replay as they ran: the server retries the
// short steps, and no SocflowStatus is upserted; the query still reports a status.
func TestStepRetryBeforeStepStatusChangeLeavesRetriesToTheServer(t *testing.T) {
	env := newEnv(t)
	var log callLog
	happyMocks(env, &log, "apply")
	kinds := statusKinds(env)
	env.OnGetVersion(StepStatusChange, workflow.DefaultVersion, StepStatus).Return(workflow.DefaultVersion)
	calls := 0
	env.OnActivity(a.ApplyOpenCTIPlan, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.ApplyOpenCTIPlanInput) (activities.ApplyOpenCTIPlanResult, error) {
			if calls++; calls <= 2 {
				return activities.ApplyOpenCTIPlanResult{}, errors.New(noSocket)
			}
			return activities.ApplyOpenCTIPlanResult{}, nil
		})
	var during Status
	env.RegisterDelayedCallback(func() { during = queryStatus(t, env).Status }, 2*time.Second)
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: testInstance()})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if calls != 3 {
		t.Errorf("plan pushed %d times, want 3 (retried by the server)", calls)
	}
	if during.Retrying() || during.Kind != StatusMaintenance || during.Step != string(PhasePushingPlan) {
		t.Errorf("status during server retries %+v, want maintenance in pushing-plan (the workflow cannot see them)", during)
	}
	if len(*kinds) != 0 {
		t.Errorf("SocflowStatus upserted %v by a deploy begun before %s", *kinds, StepStatusChange)
	}
}

func TestStepRetryBackoff(t *testing.T) {
	r := stepRetryOf(pebbleOptions)
	var got []time.Duration
	for n := 1; n <= 8; n++ {
		got = append(got, r.backoff(n))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("backoff %v, want %v seconds", got, want)
		}
	}
	if r.bound != 10*time.Minute {
		t.Errorf("bound %s, want pebbleOptions' ScheduleToClose", r.bound)
	}
}

// hasErrorType reports an application error of type typ anywhere in err's chain.
func hasErrorType(err error, typ string) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		var app *temporal.ApplicationError
		if !errors.As(err, &app) {
			return false
		}
		if app.Type() == typ {
			return true
		}
		err = app
	}
	return false
}
