package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/wazuh"
)

// These unit tests pin DeployWazuh's sequencing and its refusals with mocked
// activities; the real paths run against the stand-ins in internal/e2e (TestWazuh*).

func testWazuh() wazuh.Instance {
	return wazuh.Instance{
		Name: "soc",
		Nodes: []wazuh.Node{{Pebble: spec.Pebble{Socket: "/tmp/w0.socket"}, ClusterPort: 1516},
			{Pebble: spec.Pebble{Socket: "/tmp/w1.socket"}, ClusterPort: 1526, APIPort: 55010, AgentPort: 1524, EnrolmentPort: 1525, SyslogPort: 6524}},
		Integrations: wazuh.Integrations{Indexer: &spec.OpenSearch{URLs: []string{"http://127.0.0.1:9200"}}},
	}
}

// wazuhMocks answers every activity as a healthy cluster would, the master listing
// the nodes in joined (nil: both).
func wazuhMocks(env *testsuite.TestWorkflowEnvironment, joined []string, version string) {
	on := func(fn any) *testsuite.MockCallWrapper { return env.OnActivity(fn, mock.Anything, mock.Anything) }
	on(a.EnsureWazuhSecrets).Return(activities.EnsureWazuhSecretsResult{}, nil)
	on(a.ProbeOpenSearch).Return(activities.ProbeResult{Dependency: "indexer", Ready: true, Version: "2.19.3"}, nil)
	on(a.ApplyWazuhPlan).Return(activities.ApplyWazuhPlanResult{Restart: []string{wazuh.ManagerService, wazuh.FilebeatService}}, nil)
	on(a.ReloadWazuhManager).Return(activities.ReloadWazuhManagerResult{}, nil)
	on(a.RestartPebbleServices).Return(activities.RestartPebbleServicesResult{}, nil)
	on(a.StartPebbleServices).Return(activities.StartPebbleServicesResult{}, nil)
	on(a.ReadWazuhAPICert).Return(activities.ReadWazuhAPICertResult{PEM: "cert"}, nil)
	on(a.ReconcileWazuhAPIUsers).Return(activities.ReconcileWazuhAPIUsersResult{State: activities.WazuhUsersFresh}, nil)
	on(a.ReadWazuhManagerInfo).Return(activities.ReadWazuhManagerInfoResult{Version: version}, nil)
	on(a.EnsureInstanceSchedule).Return(activities.EnsureScheduleResult{Created: true}, nil)
	if joined == nil {
		joined = []string{"soc-0", "soc-1"}
	}
	var nodes []activities.WazuhClusterNode
	for _, n := range joined {
		nodes = append(nodes, activities.WazuhClusterNode{Name: n})
	}
	on(a.ReadWazuhCluster).Return(activities.ReadWazuhClusterResult{Running: true, Nodes: nodes}, nil)
	on(a.ReadWazuhClusterLog).Return(func(_ context.Context, in activities.ReadWazuhNodeInput) (activities.ReadWazuhClusterLogResult, error) {
		if in.Node == 0 {
			return activities.ReadWazuhClusterLogResult{Errors: []string{"ERROR: [Master] [Main] Could not decrypt message from 127.0.0.1: Error 3025 - Could not decrypt message (InvalidToken). Check the cluster key is correct"}}, nil
		}
		return activities.ReadWazuhClusterLogResult{Errors: []string{"ERROR: [Worker soc-1] [Main] The master closed the connection"}}, nil
	})
}

func runWazuhDeploy(t *testing.T, env *testsuite.TestWorkflowEnvironment, in DeployWazuhInput) (DeployWazuhResult, DeployStatus, error) {
	t.Helper()
	env.RegisterWorkflow(DeployWazuh)
	var st DeployStatus
	env.SetOnTimerScheduledListener(func(string, time.Duration) {})
	env.ExecuteWorkflow(DeployWazuh, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("the deploy did not complete")
	}
	v, err := env.QueryWorkflow(StatusQuery)
	if err == nil {
		_ = v.Get(&st)
	}
	var res DeployWazuhResult
	if err := env.GetWorkflowError(); err != nil {
		return res, st, err
	}
	return res, st, env.GetWorkflowResult(&res)
}

func TestDeployWazuhMasterFirstThenUsersThenCluster(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	wazuhMocks(env, nil, wazuh.DefaultVersion)
	res, st, err := runWazuhDeploy(t, env, DeployWazuhInput{Instance: testWazuh()})
	if err != nil {
		t.Fatal(err)
	}
	if res.APIUsers != activities.WazuhUsersFresh || len(res.Joined) != 1 || res.Joined[0] != "soc-1" || st.Status.Kind != StatusActive || res.HealthSchedule != "health-wazuh-soc" {
		t.Errorf("result %+v, status %+v", res, st.Status)
	}
	var phases []Phase
	for _, p := range st.Timings {
		phases = append(phases, p.Phase)
	}
	want := []Phase{PhaseValidating, PhaseEnsuringSecrets, PhaseWaitingDeps,
		PhaseConfiguringNode, PhaseStartingManager, PhaseStartingShippers,
		PhaseConfiguringNode, PhaseStartingManager, PhaseStartingShippers,
		PhaseAPIUsers, PhaseWaitingCluster, PhaseSchedulingHealth}
	if strings.Join(phaseStrings(phases), " ") != strings.Join(phaseStrings(want), " ") {
		t.Errorf("phases %v, want %v", phases, want)
	}
}

func phaseStrings(ps []Phase) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

// TestDeployWazuhWorkerThatDoesNotJoinIsDiagnosed: a worker the master never lists
// fails the deploy, blocked, with both sides' cluster log errors and the fix.
func TestDeployWazuhWorkerThatDoesNotJoinIsDiagnosed(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	wazuhMocks(env, []string{"soc-0"}, wazuh.DefaultVersion)
	_, st, err := runWazuhDeploy(t, env, DeployWazuhInput{Instance: testWazuh(), ClusterJoinLimit: 10 * time.Second})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrTypeClusterJoin {
		t.Fatalf("deploy = %v, want %s", err, ErrTypeClusterJoin)
	}
	for _, want := range []string{"soc-1 did not join", "Could not decrypt message", "The master closed the connection", "cluster key"} {
		if !strings.Contains(st.Status.Message, want) {
			t.Errorf("blocked status %q lacks %q", st.Status.Message, want)
		}
	}
	if st.Status.Kind != StatusBlocked {
		t.Errorf("status %s, want blocked", st.Status.Kind)
	}
}

// TestDeployWazuhVersionMismatch: a master running another version than the spec's
// fails naming both and the fix.
func TestDeployWazuhVersionMismatch(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	wazuhMocks(env, nil, "4.10.1")
	_, _, err := runWazuhDeploy(t, env, DeployWazuhInput{Instance: testWazuh()})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrTypeVersionMismatch || !strings.Contains(err.Error(), "runs Wazuh 4.10.1, not wazuh.version 4.11.0") {
		t.Fatalf("deploy = %v, want a version mismatch naming both", err)
	}
}

// TestDeployWazuhRefusesAnInvalidSpec: nothing runs for a spec that does not validate.
func TestDeployWazuhRefusesAnInvalidSpec(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	in := testWazuh()
	in.Nodes = nil
	_, _, err := runWazuhDeploy(t, env, DeployWazuhInput{Instance: in})
	if err == nil || !strings.Contains(err.Error(), "nodes: must list at least one node") {
		t.Fatalf("deploy = %v, want the spec refused naming nodes", err)
	}
}

// TestDeployWazuhExporterAfterUsers: with wazuh.exporter set, the exporter starts on
// the master once the API users exist, with the prometheus user's password reference
// (never its value); without it, no exporter step runs.
func TestDeployWazuhExporterAfterUsers(t *testing.T) {
	for _, on := range []bool{true, false} {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		ref := spec.SecretRef("store:soc/wazuh-api-prometheus")
		env.OnActivity(a.ReconcileWazuhAPIUsers, mock.Anything, mock.Anything).Return(activities.ReconcileWazuhAPIUsersResult{
			State: activities.WazuhUsersFresh, Refs: map[string]spec.SecretRef{"wazuh": "store:soc/wazuh-api-wazuh", "prometheus": ref}}, nil)
		var got []activities.ApplyWazuhExporterInput
		env.OnActivity(a.ApplyWazuhExporter, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ApplyWazuhExporterInput) (activities.ApplyWazuhExporterResult, error) {
			got = append(got, in)
			return activities.ApplyWazuhExporterResult{MetricsURL: "http://127.0.0.1:5000/metrics"}, nil
		})
		wazuhMocks(env, nil, wazuh.DefaultVersion)
		inst := testWazuh()
		if on {
			inst.Wazuh.Exporter = &wazuh.Exporter{}
		}
		res, st, err := runWazuhDeploy(t, env, DeployWazuhInput{Instance: inst})
		if err != nil {
			t.Fatal(err)
		}
		var phases []string
		for _, p := range st.Timings {
			phases = append(phases, string(p.Phase))
		}
		joined := strings.Join(phases, " ")
		if !on {
			if len(got) != 0 || res.ExporterURL != "" || strings.Contains(joined, string(PhaseStartingExporter)) {
				t.Errorf("without wazuh.exporter: exporter applied %v, URL %q, phases %s", got, res.ExporterURL, joined)
			}
			continue
		}
		if len(got) != 1 || got[0].Password != ref || got[0].Instance.Wazuh.Exporter.Port != wazuh.DefaultExporterPort {
			t.Fatalf("exporter applied with %+v", got)
		}
		if res.ExporterURL != "http://127.0.0.1:5000/metrics" {
			t.Errorf("exporter URL %q", res.ExporterURL)
		}
		if !strings.Contains(joined, string(PhaseAPIUsers)+" "+string(PhaseStartingExporter)+" "+string(PhaseWaitingCluster)) {
			t.Errorf("phases %s: the exporter must start right after the API users", joined)
		}
	}
}

// testWazuhWithOpenCTI is testWazuh naming the OpenCTI instance demo socflow runs.
func testWazuhWithOpenCTI() wazuh.Instance {
	in := testWazuh()
	in.Integrations.OpenCTI = &wazuh.OpenCTI{Instance: "demo"}
	return in
}

// TestDeployWazuhRelatesTheNamedOpenCTIInstance: a spec naming an OpenCTI instance asks
// that instance's workflow (through EnsureOpenCTIRelation) once, after the secrets and
// before anything touches a node, for the user wazuh-soc; every node is then planned
// with the URL and the token's reference it handed over, as a url-and-token spec is,
// and so is the health schedule's drift read.
func TestDeployWazuhRelatesTheNamedOpenCTIInstance(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	const url, token = "http://localhost:8080", spec.SecretRef("store:demo/wazuh-soc-token")
	var asked []activities.EnsureOpenCTIRelationInput
	env.OnActivity(a.EnsureOpenCTIRelation, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EnsureOpenCTIRelationInput) (activities.EnsureOpenCTIRelationResult, error) {
			asked = append(asked, in)
			return activities.EnsureOpenCTIRelationResult{URL: url, Token: token, UserID: "u1", Created: true}, nil
		})
	var planned []wazuh.Instance
	env.OnActivity(a.ApplyWazuhPlan, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ApplyWazuhPlanInput) (activities.ApplyWazuhPlanResult, error) {
			planned = append(planned, in.Instance)
			return activities.ApplyWazuhPlanResult{}, nil
		})
	var scheduled []activities.Schedule
	env.OnActivity(a.EnsureInstanceSchedule, mock.Anything, mock.Anything).Return(
		func(_ context.Context, s activities.Schedule) (activities.EnsureScheduleResult, error) {
			scheduled = append(scheduled, s)
			return activities.EnsureScheduleResult{Created: true}, nil
		})
	wazuhMocks(env, nil, wazuh.DefaultVersion)
	res, st, err := runWazuhDeploy(t, env, DeployWazuhInput{Instance: testWazuhWithOpenCTI()})
	if err != nil {
		t.Fatal(err)
	}
	want := activities.EnsureOpenCTIRelationInput{Instance: "demo", WorkflowID: "opencti/demo", Query: ConnectionQuery,
		User: "wazuh-soc", Email: "wazuh.soc@opencti.local", For: "Wazuh instance soc"}
	if len(asked) != 1 || asked[0] != want {
		t.Errorf("asked %+v, want once %+v", asked, want)
	}
	if len(planned) != 2 {
		t.Fatalf("%d nodes planned, want 2", len(planned))
	}
	for k, p := range planned {
		if o := p.Integrations.OpenCTI; o == nil || o.Instance != "" || o.URL != url || o.Token != token {
			t.Errorf("node %d planned with integrations.opencti %+v, want the URL and token handed over", k, o)
		}
	}
	if len(scheduled) != 1 {
		t.Fatalf("%d schedules, want 1", len(scheduled))
	}
	var hc HealthCheckInput
	if b, err := json.Marshal(scheduled[0].Arg); err != nil || json.Unmarshal(b, &hc) != nil || hc.Wazuh == nil {
		t.Fatalf("schedule arg %v is no Wazuh HealthCheckInput", scheduled[0].Arg)
	}
	if o := hc.Wazuh.Instance.Integrations.OpenCTI; o == nil || o.URL != url || o.Token != token {
		t.Errorf("the health schedule reads drift with integrations.opencti %+v, want the URL and token handed over", o)
	}
	if r := res.OpenCTI; r == nil || *r != (WazuhOpenCTIRelation{Instance: "demo", URL: url, User: "wazuh-soc", Token: token, UserCreated: true}) {
		t.Errorf("result's opencti %+v", r)
	}
	var phases []string
	for _, p := range st.Timings {
		phases = append(phases, string(p.Phase))
	}
	if got := strings.Join(phases[:4], " "); got != "validating ensuring-secrets relating-opencti waiting-dependencies" {
		t.Errorf("phases start %q, want the relation after the secrets, before the indexer and the nodes", got)
	}
}

// TestDeployWazuhUnavailableOpenCTIInstanceBlocks: an OpenCTI instance socflow does
// not run (or has not deployed) fails the deploy at once, blocked with the activity's
// reason and fix, before any node is touched.
func TestDeployWazuhUnavailableOpenCTIInstanceBlocks(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	calls := 0
	env.OnActivity(a.EnsureOpenCTIRelation, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.EnsureOpenCTIRelationInput) (activities.EnsureOpenCTIRelationResult, error) {
			calls++
			return activities.EnsureOpenCTIRelationResult{}, temporal.NewNonRetryableApplicationError(
				"cannot relate Wazuh instance soc to OpenCTI instance demo: socflow runs no such instance (no workflow opencti/demo); deploy it first",
				activities.ErrTypeOpenCTIInstanceUnavailable, nil)
		})
	env.OnActivity(a.ApplyWazuhPlan, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.ApplyWazuhPlanInput) (activities.ApplyWazuhPlanResult, error) {
			t.Error("a node was configured although the OpenCTI instance is unavailable")
			return activities.ApplyWazuhPlanResult{}, nil
		})
	wazuhMocks(env, nil, wazuh.DefaultVersion)
	_, st, err := runWazuhDeploy(t, env, DeployWazuhInput{Instance: testWazuhWithOpenCTI()})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrTypeOpenCTIInstanceUnavailable || !app.NonRetryable() {
		t.Fatalf("deploy = %v, want a non-retryable %s", err, activities.ErrTypeOpenCTIInstanceUnavailable)
	}
	if calls != 1 {
		t.Errorf("EnsureOpenCTIRelation ran %d times, want once (a permanent fault is not retried)", calls)
	}
	if st.Status.Kind != StatusBlocked || !strings.Contains(st.Status.Message, "no workflow opencti/demo") || !strings.Contains(st.Status.Message, "deploy it first") {
		t.Errorf("status %s %q, want blocked with the reason and fix", st.Status.Kind, st.Status.Message)
	}
}

// TestDeployWazuhURLAndTokenDoNotAskOpenCTI: a url-and-token spec runs no relation
// step and asks no version of WazuhOpenCTIInstanceChange, so its history is what it
// was before the change.
func TestDeployWazuhURLAndTokenDoNotAskOpenCTI(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.OnActivity(a.EnsureOpenCTIRelation, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.EnsureOpenCTIRelationInput) (activities.EnsureOpenCTIRelationResult, error) {
			t.Error("EnsureOpenCTIRelation ran for a url-and-token spec")
			return activities.EnsureOpenCTIRelationResult{}, nil
		})
	env.OnGetVersion(WazuhOpenCTIInstanceChange, workflow.DefaultVersion, WazuhOpenCTIInstance).Return(
		func(string, workflow.Version, workflow.Version) workflow.Version {
			t.Error("a url-and-token deploy asked the version of " + WazuhOpenCTIInstanceChange)
			return WazuhOpenCTIInstance
		})
	wazuhMocks(env, nil, wazuh.DefaultVersion)
	in := testWazuh()
	in.Integrations.OpenCTI = &wazuh.OpenCTI{URL: "https://opencti.example.com", Token: "env:OPENCTI_TOKEN"}
	res, _, err := runWazuhDeploy(t, env, DeployWazuhInput{Instance: in})
	if err != nil {
		t.Fatal(err)
	}
	if res.OpenCTI != nil {
		t.Errorf("result's opencti %+v, want none", res.OpenCTI)
	}
}

// TestDeployWazuhOpenCTIInstanceBeforeTheChange: replaying a history from before
// WazuhOpenCTIInstanceChange (no marker: DefaultVersion), a spec naming an OpenCTI
// instance is refused at validation as it was then, with no activity run.
func TestDeployWazuhOpenCTIInstanceBeforeTheChange(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.OnGetVersion(WazuhOpenCTIInstanceChange, workflow.DefaultVersion, WazuhOpenCTIInstance).Return(workflow.DefaultVersion)
	ran := 0
	env.SetOnActivityStartedListener(func(*activity.Info, context.Context, converter.EncodedValues) { ran++ })
	_, _, err := runWazuhDeploy(t, env, DeployWazuhInput{Instance: testWazuhWithOpenCTI()})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != "InvalidSpec" || !strings.Contains(err.Error(), "integrations.opencti.instance: is not supported yet") {
		t.Fatalf("deploy = %v, want the old refusal", err)
	}
	if ran != 0 {
		t.Errorf("%d activities ran, want none", ran)
	}
}
