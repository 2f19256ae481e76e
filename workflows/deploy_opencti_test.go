package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/spec"
)

// These unit tests pin the deploy's sequencing with mocked activities; the same paths
// run for real against the local stack in internal/e2e.

func testInstance() opencti.Instance {
	workers := 2
	return opencti.Instance{
		Name:    "unit",
		OpenCTI: opencti.Settings{Version: "6.9.3", Workers: &workers, AdminPassword: "pw"},
		Pebble:  spec.Pebble{Socket: "/tmp/pebble.socket"},
		Integrations: opencti.Integrations{
			OpenSearch: &spec.OpenSearch{URLs: []string{"http://127.0.0.1:9200"}},
			RabbitMQ:   &spec.RabbitMQ{Host: "127.0.0.1", Username: "u", Password: "p"},
			Redis:      &spec.Redis{Host: "127.0.0.1"},
			S3:         &spec.S3{Endpoint: "http://127.0.0.1:9000", AccessKey: "a", SecretKey: "s"},
		},
	}
}

var refs = opencti.InstanceSecrets{AdminToken: "store:unit/admin-token", HealthAccessKey: "store:unit/health-access-key", EncryptionKey: "store:unit/encryption-key"}

// happyMocks registers every activity answering as a healthy stack would, except those
// named in skip (the test mocks them itself); the order of calls is recorded so tests
// can assert the sequence.
func happyMocks(env *testsuite.TestWorkflowEnvironment, calls *callLog, skip ...string) {
	on := func(name string, fn any) *testsuite.MockCallWrapper {
		if slices.Contains(skip, name) {
			return nil
		}
		return env.OnActivity(fn, mock.Anything, mock.Anything)
	}
	rec := func(name string) func(mock.Arguments) {
		return func(mock.Arguments) { calls.add(name) }
	}
	if m := on("secrets", a.EnsureInstanceSecrets); m != nil {
		m.Return(activities.EnsureInstanceSecretsResult{Secrets: refs}, nil).Run(rec("secrets"))
	}
	for _, p := range []struct {
		name string
		fn   any
	}{{"opensearch", a.ProbeOpenSearch}, {"rabbitmq", a.ProbeRabbitMQ}, {"redis", a.ProbeRedis}, {"s3", a.ProbeS3}} {
		if m := on(p.name, p.fn); m != nil {
			m.Return(activities.ProbeResult{Dependency: p.name, Ready: true, Version: "1"}, nil).Run(rec("probe"))
		}
	}
	if m := on("prefix", a.CheckOpenSearchPrefix); m != nil {
		m.Return(activities.CheckOpenSearchPrefixResult{}, nil).Run(rec("prefix"))
	}
	if m := on("bucket", a.EnsureBucket); m != nil {
		m.Return(activities.EnsureBucketResult{}, nil).Run(rec("bucket"))
	}
	if m := on("apply", a.ApplyOpenCTIPlan); m != nil {
		m.Return(activities.ApplyOpenCTIPlanResult{}, nil).Run(rec("apply"))
	}
	if m := on("start", a.StartPebbleServices); m != nil {
		m.Return(activities.StartPebbleServicesResult{}, nil).Run(func(args mock.Arguments) {
			calls.add("start:" + strings.Join(args.Get(1).(activities.StartPebbleServicesInput).Services, ","))
		})
	}
	if m := on("healthy", a.WaitOpenCTIHealthy); m != nil {
		m.Return(activities.ProbeResult{Ready: true}, nil).Run(rec("healthy"))
	}
	if m := on("check", a.AddOpenCTIReadyCheck); m != nil {
		m.Return(nil).Run(rec("check"))
	}
	if m := on("verify", a.VerifyOpenCTI); m != nil {
		m.Return(activities.VerifyOpenCTIResult{Version: "6.9.3"}, nil).Run(rec("verify"))
	}
}

// callLog records mocked activity calls; mocks run on the test environment's activity
// goroutines (the four probes at once), so it locks.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(c string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
}

func (l *callLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(DeployOpenCTI)
	env.RegisterActivity(a)
	return env
}

func TestDeploySequenceFollowsTheCharm(t *testing.T) {
	env := newEnv(t)
	var log callLog
	happyMocks(env, &log)
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: testInstance()})
	calls := log.list()
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res DeployResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	want := []string{"secrets", "probe", "probe", "probe", "probe", "prefix", "bucket", "apply", "start:platform", "healthy", "check", "verify", "start:worker-0,worker-1"}
	if strings.Join(calls, " ") != strings.Join(want, " ") {
		t.Fatalf("calls\n got %v\nwant %v", calls, want)
	}
	if res.Version != "6.9.3" || res.Secrets != refs || len(res.Timings) != 11 {
		t.Fatalf("result %+v", res)
	}
	if got := res.Timings[len(res.Timings)-1].Phase; got != PhaseStartingWorkers {
		t.Errorf("last phase %s, want %s", got, PhaseStartingWorkers)
	}
}

// Deploys that began before VerifyBeforeWorkersChange keep the old order when they
// replay; replaytests/testdata/v0 proves it on real histories.
func TestDeployBeforeVerifyBeforeWorkersKeepsTheOldOrder(t *testing.T) {
	env := newEnv(t)
	var log callLog
	happyMocks(env, &log)
	env.OnGetVersion(VerifyBeforeWorkersChange, workflow.DefaultVersion, VerifyBeforeWorkers).Return(workflow.DefaultVersion)
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: testInstance()})
	calls := log.list()
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	want := "check start:worker-0,worker-1 verify"
	if got := strings.Join(calls[len(calls)-3:], " "); got != want {
		t.Fatalf("last calls %q, want %q", got, want)
	}
}

func TestDeployNeverStartsWorkersOnAPlatformOfTheWrongVersion(t *testing.T) {
	env := newEnv(t)
	var log callLog
	happyMocks(env, &log, "verify")
	env.OnActivity(a.VerifyOpenCTI, mock.Anything, mock.Anything).Return(activities.VerifyOpenCTIResult{},
		temporal.NewNonRetryableApplicationError("the platform runs OpenCTI 6.8.0, not 6.9.3", activities.ErrTypeVersionMismatch, nil))
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: testInstance()})
	calls := log.list()
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "6.8.0") {
		t.Fatalf("error %v, want the version mismatch", err)
	}
	for _, c := range calls {
		if strings.HasPrefix(c, "start:worker") {
			t.Fatalf("workers started although verification failed: %v", calls)
		}
	}
}

func TestDeployRejectsInvalidSpecBeforeAnyActivity(t *testing.T) {
	env := newEnv(t)
	inst := testInstance()
	inst.Integrations.S3 = nil
	zero := 0
	inst.OpenCTI.Workers = &zero
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: inst})
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != "InvalidSpec" || !app.NonRetryable() {
		t.Fatalf("error %v, want non-retryable InvalidSpec", err)
	}
	for _, want := range []string{"missing integration(s): s3", "opencti.workers"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}

func TestDeployKeepsProbingAndRecordsTheReason(t *testing.T) {
	env := newEnv(t)
	var log callLog
	happyMocks(env, &log, "redis")
	redisRounds := 0
	var windows []time.Duration
	// Redis is down for three rounds, then up.
	env.OnActivity(a.ProbeRedis, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ProbeRedisInput) (activities.ProbeResult, error) {
			redisRounds++
			windows = append(windows, in.Window)
			if redisRounds <= 3 {
				return activities.ProbeResult{Dependency: "redis", Reason: "connection refused", Attempts: 4}, nil
			}
			return activities.ProbeResult{Dependency: "redis", Ready: true, Version: "7.2", Attempts: 1}, nil
		})
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: testInstance()})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if redisRounds != 4 {
		t.Fatalf("redis probed %d rounds, want 4", redisRounds)
	}
	if windows[0] != 2*time.Second || windows[1] != 4*time.Second || windows[2] != 8*time.Second {
		t.Errorf("probe windows %v, want growing from 2s", windows)
	}
	v, _ := env.QueryWorkflow(StatusQuery)
	var st DeployStatus
	_ = v.Get(&st)
	if st.Dependencies[2].Probes != 13 || st.Dependencies[2].State != DepReady {
		t.Errorf("redis status %+v, want 13 probes and ready", st.Dependencies[2])
	}
	if st.LastReason != "redis: connection refused" {
		t.Errorf("last reason %q", st.LastReason)
	}
}

func TestDeployStopsAtPermanentDependencyFault(t *testing.T) {
	env := newEnv(t)
	var log callLog
	happyMocks(env, &log, "rabbitmq")
	env.OnActivity(a.ProbeRabbitMQ, mock.Anything, mock.Anything).Return(activities.ProbeResult{},
		temporal.NewNonRetryableApplicationError("cannot log in to rabbitmq: ACCESS_REFUSED", activities.ErrTypeAuthFailed, nil))
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: testInstance()})
	calls := log.list()
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "rabbitmq: cannot log in to rabbitmq: ACCESS_REFUSED") {
		t.Fatalf("error %v, want the rabbitmq auth reason", err)
	}
	for _, c := range calls {
		if c == "apply" || strings.HasPrefix(c, "start:") {
			t.Fatalf("%s ran after a permanent dependency fault: %v", c, calls)
		}
	}
	v, _ := env.QueryWorkflow(StatusQuery)
	var st DeployStatus
	_ = v.Get(&st)
	if st.Phase != PhaseFailed || st.Dependencies[1].State != DepFailed {
		t.Errorf("status %+v", st)
	}
}

func TestDeployWaitsThroughPlatformInitialisation(t *testing.T) {
	env := newEnv(t)
	var log callLog
	happyMocks(env, &log, "healthy")
	rounds := 0
	env.OnActivity(a.WaitOpenCTIHealthy, mock.Anything, mock.Anything).Return(
		func(_ context.Context, _ activities.WaitOpenCTIHealthyInput) (activities.ProbeResult, error) {
			rounds++
			if rounds < 5 {
				return activities.ProbeResult{Reason: "platform is initialising (running, port not open yet)"}, nil
			}
			return activities.ProbeResult{Ready: true}, nil
		})
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: testInstance()})
	calls := log.list()
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	starts := 0
	for _, c := range calls {
		if c == "start:platform" {
			starts++
		}
	}
	if rounds != 5 || starts != 1 {
		t.Fatalf("health rounds %d, platform starts %d; want 5 and exactly 1", rounds, starts)
	}
}

// A platform that fails at every start (here: indices left by a killed first boot) is
// stopped, so Pebble stops restarting it, and the deploy fails with the fix.
func TestDeployStopsAPlatformThatFailsAtEveryStart(t *testing.T) {
	env := newEnv(t)
	var log callLog
	happyMocks(env, &log, "healthy")
	const reason = "platform fails at every start (1 exit): Fail initialize schema, index already exists; remove the instance's indices (unit_internal_objects-000001) and redeploy"
	env.OnActivity(a.WaitOpenCTIHealthy, mock.Anything, mock.Anything).Return(activities.ProbeResult{},
		temporal.NewNonRetryableApplicationError(reason, activities.ErrTypePlatformFailed, nil))
	env.OnActivity(a.StopPebbleServices, mock.Anything, mock.Anything).Return(activities.StopPebbleServicesResult{Stopped: []string{"platform"}}, nil).Run(
		func(args mock.Arguments) {
			log.add("stop:" + strings.Join(args.Get(1).(activities.StopPebbleServicesInput).Services, ","))
		})
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: testInstance()})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "remove the instance's indices (unit_internal_objects-000001)") ||
		!strings.Contains(err.Error(), "socflow stopped the platform") {
		t.Fatalf("error = %v, want the fix and the stop", err)
	}
	if calls := log.list(); calls[len(calls)-1] != "stop:platform" || slices.Contains(calls, "start:worker-0,worker-1") {
		t.Errorf("calls %v: want the platform stopped last and no worker started", calls)
	}
}

// Other failures (here a rejected health key) leave the platform as it is.
func TestDeployStopsThePlatformOnlyWhenRestartsCannotHelp(t *testing.T) {
	env := newEnv(t)
	var log callLog
	happyMocks(env, &log, "healthy")
	env.OnActivity(a.WaitOpenCTIHealthy, mock.Anything, mock.Anything).Return(activities.ProbeResult{},
		temporal.NewNonRetryableApplicationError("rejected", activities.ErrTypeHealthKeyRejected, nil))
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: testInstance()})
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "rejected") {
		t.Fatalf("error = %v", err)
	}
	for _, c := range log.list() {
		if strings.HasPrefix(c, "stop:") {
			t.Errorf("a platform that failed for another reason was stopped: %v", log.list())
		}
	}
}
