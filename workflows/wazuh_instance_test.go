package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/wazuh"
)

// wazuhStatusAt queries a running WazuhInstance's status.
func wazuhStatusAt(t *testing.T, env *testsuite.TestWorkflowEnvironment) WazuhInstanceStatus {
	t.Helper()
	v, err := env.QueryWorkflow(StatusQuery)
	if err != nil {
		t.Fatalf("status query: %v", err)
	}
	var st WazuhInstanceStatus
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestWazuhInstanceBlockedOnAKeyMismatchThenActive walks the instance through the
// cluster-key story: the first deploy's worker cannot join (blocked, with the cluster
// logs and the fix, the workflow still running), a Reconcile once the key is put
// right deploys it (active), a health report of a worker out of the cluster blocks it
// again, an ok report makes it active; then an ApplySpec that drops the worker
// retires that node before the deploy.
func TestWazuhInstanceBlockedOnAKeyMismatchThenActive(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(DeployWazuh)
	fixed := false
	on := func(fn any) *testsuite.MockCallWrapper { return env.OnActivity(fn, mock.Anything, mock.Anything) }
	on(a.ReadWazuhCluster).Return(func(context.Context, activities.ReadWazuhClusterInput) (activities.ReadWazuhClusterResult, error) {
		nodes := []activities.WazuhClusterNode{{Name: "soc-0"}}
		if fixed {
			nodes = append(nodes, activities.WazuhClusterNode{Name: "soc-1"})
		}
		return activities.ReadWazuhClusterResult{Running: true, Nodes: nodes}, nil
	})
	var retired []int
	on(a.RetireWazuhNode).Return(func(_ context.Context, in activities.RetireWazuhNodeInput) (activities.RetireWazuhNodeResult, error) {
		retired = append(retired, in.Node)
		return activities.RetireWazuhNodeResult{Retired: []string{wazuh.ManagerService}, Stopped: []string{wazuh.FilebeatService}}, nil
	})
	wazuhMocks(env, nil, wazuh.DefaultVersion)
	inst := testWazuh()

	var seen []WazuhInstanceStatus
	at := func(d time.Duration, fn func()) { env.RegisterDelayedCallback(fn, d) }
	at(5*time.Minute, func() {
		seen = append(seen, wazuhStatusAt(t, env))
		fixed = true
		env.SignalWorkflow(ReconcileUpdate, ReconcileRequest{RequestID: "fix-key", Reason: "worker key fixed"})
	})
	at(10*time.Minute, func() {
		seen = append(seen, wazuhStatusAt(t, env))
		env.SignalWorkflow(HealthReportSignal, HealthReport{Instance: "soc", Health: HealthDegraded, RequestID: "check-1",
			Components: []ComponentHealth{{Name: "soc-1/cluster", Health: HealthDegraded, Reason: "not connected to the master; master: Could not decrypt message"}}})
	})
	at(11*time.Minute, func() {
		seen = append(seen, wazuhStatusAt(t, env))
		env.SignalWorkflow(HealthReportSignal, HealthReport{Instance: "soc", Health: HealthOK, RequestID: "check-2"})
	})
	at(12*time.Minute, func() {
		seen = append(seen, wazuhStatusAt(t, env))
		one := testWazuh()
		one.Nodes = one.Nodes[:1]
		env.SignalWorkflow(ApplySpecUpdate, WazuhApplySpecRequest{RequestID: "drop-worker", Spec: one})
		env.SignalWorkflow(ApplySpecUpdate, WazuhApplySpecRequest{RequestID: "other-name", Spec: func() wazuh.Instance { o := testWazuh(); o.Name = "other"; return o }()})
	})
	at(20*time.Minute, func() {
		seen = append(seen, wazuhStatusAt(t, env))
		env.CancelWorkflow()
	})
	env.ExecuteWorkflow(WazuhInstance, WazuhInstanceInput{Instance: inst, ClusterJoinLimit: time.Minute})
	if len(seen) != 5 {
		t.Fatalf("saw %d statuses, want 5", len(seen))
	}
	blocked := seen[0]
	for _, want := range []string{"soc-1 did not join", "Could not decrypt message", "cluster key", "send Reconcile"} {
		if blocked.Status.Kind != StatusBlocked || !strings.Contains(blocked.Status.Message, want) {
			t.Errorf("after the first deploy: %s %q, want blocked naming %q", blocked.Status.Kind, blocked.Status.Message, want)
		}
	}
	if blocked.Deployed {
		t.Error("a failed first deploy is not deployed")
	}
	if st := seen[1]; st.Status.Kind != StatusActive || !st.Deployed || strings.Join(st.Joined, ",") != "soc-1" || !strings.Contains(st.Status.Message, "workers joined: soc-1") {
		t.Errorf("after Reconcile: %+v", st)
	}
	if st := seen[2]; st.Status.Kind != StatusBlocked || !strings.Contains(st.Status.Message, "soc-1/cluster: not connected") || !strings.Contains(st.Status.Message, "send Reconcile") {
		t.Errorf("after a key-mismatch report: %s %q", st.Status.Kind, st.Status.Message)
	}
	if st := seen[3]; st.Status.Kind != StatusActive {
		t.Errorf("after an ok report: %s %q", st.Status.Kind, st.Status.Message)
	}
	last := seen[4]
	if strings.Join(last.Nodes, ",") != "soc-0" || last.Status.Kind != StatusActive {
		t.Errorf("after dropping the worker: %+v", last)
	}
	if len(retired) != 1 || retired[0] != 1 {
		t.Errorf("retired nodes %v, want [1]", retired)
	}
	var summaries []string
	for _, o := range last.Recent {
		summaries = append(summaries, o.State+" "+o.RequestID+": "+o.Summary)
	}
	got := strings.Join(summaries, "\n")
	for _, want := range []string{"failed deploy: first deploy of 2 node(s): worker(s) soc-1 did not join the master", "applied fix-key: reconcile: worker key fixed", "applied drop-worker: node soc-1 removed: restarted soc-0/wazuh, soc-0/filebeat; stopped soc-1/wazuh, soc-1/filebeat",
		`rejected other-name: ApplySpec: spec.name: is "other", not this instance's "soc"`} {
		if !strings.Contains(got, want) {
			t.Errorf("outcomes lack %q:\n%s", want, got)
		}
	}
}
