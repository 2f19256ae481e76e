package activities_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/spec"
)

// nilActs names activity methods the way workflows do, through a nil pointer.
var nilActs *activities.Activities

// probeEnv runs activities the way a worker does (heartbeats, error conversion),
// with a short probe interval so unreachable-port tests finish quickly.
func probeEnv(t *testing.T) *testsuite.TestActivityEnvironment {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Activities{
		Secrets:       &secrets.Store{Dir: t.TempDir()},
		ProbeInterval: 200 * time.Millisecond,
	})
	return env
}

// runProbe executes one probe activity and decodes its result.
func runProbe(t *testing.T, env *testsuite.TestActivityEnvironment, fn, in any) (activities.ProbeResult, error) {
	t.Helper()
	v, err := env.ExecuteActivity(fn, in)
	if err != nil {
		return activities.ProbeResult{}, err
	}
	var res activities.ProbeResult
	if err := v.Get(&res); err != nil {
		t.Fatalf("cannot decode the probe result: %v", err)
	}
	return res, nil
}

// requirePermanent asserts err carries a non-retryable ApplicationError of errType
// whose message contains every one of want.
func requirePermanent(t *testing.T, err error, errType string, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want a non-retryable %s", errType)
	}
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("error %v (%T) is not an ApplicationError", err, err)
	}
	if appErr.Type() != errType || !appErr.NonRetryable() {
		t.Fatalf("got type %q non-retryable=%v (%v), want non-retryable %q", appErr.Type(), appErr.NonRetryable(), err, errType)
	}
	t.Logf("%s: %s", errType, appErr.Error())
	for _, w := range want {
		if !strings.Contains(appErr.Error(), w) {
			t.Errorf("error %q does not mention %q", appErr.Error(), w)
		}
	}
}

// requireRetryable asserts err is an error Temporal would retry, mentioning want.
func requireRetryable(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatal("got no error, want a retryable one")
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NonRetryable() {
		t.Fatalf("error %v is non-retryable; want a retryable one", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not mention %q", err.Error(), want)
	}
}

// requireNotReady asserts a probe that ran out of its window with a reason that
// contains want, after more than one attempt.
func requireNotReady(t *testing.T, res activities.ProbeResult, err error, want ...string) {
	t.Helper()
	if err != nil {
		t.Fatalf("probe failed: %v; want a not-ready result", err)
	}
	if res.Ready {
		t.Fatalf("probe is ready: %+v", res)
	}
	if res.Attempts < 2 {
		t.Errorf("probe made %d attempts; want it to keep polling within its window", res.Attempts)
	}
	t.Logf("not ready after %d attempts: %s", res.Attempts, res.Reason)
	for _, w := range want {
		if !strings.Contains(res.Reason, w) {
			t.Errorf("reason %q does not mention %q", res.Reason, w)
		}
	}
}

// requireReady asserts a ready probe with a version and the expected warning
// ("" for none; otherwise a substring).
func requireReady(t *testing.T, res activities.ProbeResult, err error, warning string) {
	t.Helper()
	if err != nil {
		t.Fatalf("probe failed: %v", err)
	}
	if !res.Ready || res.Version == "" {
		t.Fatalf("probe result %+v; want ready with a version", res)
	}
	if warning == "" && res.Warning != "" {
		t.Errorf("unexpected warning %q", res.Warning)
	}
	if warning != "" && !strings.Contains(res.Warning, warning) {
		t.Errorf("warning %q does not mention %q", res.Warning, warning)
	}
}

// missingEnvRef is a secret reference to an environment variable that is not set.
func missingEnvRef(t *testing.T) spec.SecretRef {
	t.Helper()
	name := fmt.Sprintf("SOCFLOW_TEST_UNSET_%d", time.Now().UnixNano())
	if _, ok := os.LookupEnv(name); ok {
		t.Fatalf("%s is set", name)
	}
	return spec.SecretRef("env:" + name)
}

// unreachable is a local port nothing listens on.
const unreachable = "127.0.0.1:1"

// shortWindow lets a probe of an unreachable port make a few attempts and return.
const shortWindow = 1500 * time.Millisecond

// TestProbeHandsBackItsWaitWhenTheWorkerStops: a probe of a dependency that stays down
// would poll for its whole window (ten minutes here); once its worker begins a graceful
// stop it returns the latest reason at once, not ready and without error, so the
// workflow's next probe runs on a worker that stays and no attempt is lost to the stop.
func TestProbeHandsBackItsWaitWhenTheWorkerStops(t *testing.T) {
	env := probeEnv(t)
	stop := make(chan struct{})
	env.SetWorkerStopChannel(stop)
	time.AfterFunc(time.Second, func() { close(stop) })
	res, err := runProbe(t, env, nilActs.ProbeRedis, activities.ProbeRedisInput{
		Redis:       spec.Redis{Host: "127.0.0.1", Port: 1},
		ProbeWindow: activities.ProbeWindow{Window: 10 * time.Minute},
	})
	if err != nil {
		t.Fatalf("probe failed on the worker's stop: %v", err)
	}
	if res.Ready || res.Attempts < 2 || !strings.Contains(res.Reason, "refused") {
		t.Errorf("result %+v, want not ready after several attempts, naming the refused connection", res)
	}
}
