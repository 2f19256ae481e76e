package workflows

import (
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/uber-go/tally/v4"
	sdktally "go.temporal.io/sdk/contrib/tally"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/socflow/socflow/activities"
)

// metricsEnv is newEnv with a tally test scope as the metrics handler, named as the
// worker's Prometheus endpoint names them (counters _total, timers _seconds).
func metricsEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, tally.TestScope) {
	scope := tally.NewTestScope("", nil)
	var s testsuite.WorkflowTestSuite
	s.SetMetricsHandler(sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope)))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(DeployOpenCTI)
	env.RegisterActivity(a)
	return env, scope
}

// counter sums the counter name over the series whose tags include want.
func counter(scope tally.TestScope, name string, want map[string]string) int64 {
	var n int64
	for _, c := range scope.Snapshot().Counters() {
		if c.Name() == name && hasTags(c.Tags(), want) {
			n += c.Value()
		}
	}
	return n
}

func hasTags(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestDeployEmitsOutcomeAndPhaseDurations(t *testing.T) {
	env, scope := metricsEnv(t)
	var log callLog
	happyMocks(env, &log)
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: testInstance()})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if n := counter(scope, MetricDeploys+"_total", map[string]string{MetricTagApp: AppOpenCTI, MetricTagOutcome: "succeeded"}); n != 1 {
		t.Errorf("succeeded deploys %d, want 1", n)
	}
	if n := counter(scope, MetricDeploys+"_total", map[string]string{MetricTagOutcome: "failed"}); n != 0 {
		t.Errorf("failed deploys %d, want 0", n)
	}
	phases := map[string]bool{}
	for _, h := range scope.Snapshot().Timers() {
		if h.Name() == MetricPhaseDuration+"_seconds" && h.Tags()[MetricTagApp] == AppOpenCTI {
			phases[h.Tags()[MetricTagPhase]] = true
		}
	}
	for _, p := range []Phase{PhaseValidating, PhaseWaitingDeps, PhaseWaitingPlatform, PhaseStartingWorkers} {
		if !phases[string(p)] {
			t.Errorf("no %s duration for phase %s (got %v)", MetricPhaseDuration, p, phases)
		}
	}
	if phases[string(PhaseDone)] {
		t.Errorf("done is not a phase with a duration: %v", phases)
	}
}

func TestFailedDeployIsCountedFailed(t *testing.T) {
	env, scope := metricsEnv(t)
	var log callLog
	happyMocks(env, &log, "verify")
	env.OnActivity(a.VerifyOpenCTI, mock.Anything, mock.Anything).Return(activities.VerifyOpenCTIResult{},
		temporal.NewNonRetryableApplicationError("the platform runs OpenCTI 6.8.0, not 6.9.3", activities.ErrTypeVersionMismatch, nil))
	env.ExecuteWorkflow(DeployOpenCTI, DeployInput{Instance: testInstance()})
	if err := env.GetWorkflowError(); err == nil {
		t.Fatal("the deploy succeeded")
	}
	if n := counter(scope, MetricDeploys+"_total", map[string]string{MetricTagOutcome: "failed"}); n != 1 {
		t.Errorf("failed deploys %d, want 1", n)
	}
	if n := counter(scope, MetricDeploys+"_total", map[string]string{MetricTagOutcome: "succeeded"}); n != 0 {
		t.Errorf("succeeded deploys %d, want 0", n)
	}
}

func TestMetricValue(t *testing.T) {
	for in, want := range map[string]string{"rolled back": "rolled_back", "": "unknown", "Upgraded": "upgraded"} {
		if got := metricValue(in); got != want {
			t.Errorf("metricValue(%q) = %q, want %q", in, got, want)
		}
	}
}
