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
