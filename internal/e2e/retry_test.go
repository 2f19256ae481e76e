package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/workflows"
)

// TestDeployRetriesAStepUntilPebbleComesUp deploys into a container whose Pebble is not
// up yet (its socket does not exist): the plan push is retried by the workflow, and
// while it is, the status query, SocflowStatus and `starter status` name the step, the
// attempt and the missing socket; once a Pebble starts on that path, the deploy completes.
func TestDeployRetriesAStepUntilPebbleComesUp(t *testing.T) {
	c := temporalClient(t)
	queue := inProcessWorker(t, c, t.TempDir())
	inst := newInstance(t, instanceOpts{initDelay: time.Second})
	dir := filepath.Join(t.TempDir(), "pebble-later")
	inst.Pebble.Socket = filepath.Join(dir, ".pebble.socket")

	run := startDeploy(t, c, queue, inst)
	st := waitStatus(t, c, run.GetID(), 2*time.Minute, "pushing-plan retried", func(s workflows.DeployStatus) bool {
		return s.Status.Step == string(workflows.PhasePushingPlan) && s.Status.Attempt >= 2
	})
	if st.Status.Kind != workflows.StatusWaiting || !strings.Contains(st.Status.LastError, inst.Pebble.Socket) ||
		!strings.Contains(st.Status.Message, "retrying pushing-plan (attempt") {
		t.Errorf("status while retrying %+v: want waiting, naming the step, the attempt and the socket", st.Status)
	}
	if !strings.Contains(st.LastReason, inst.Pebble.Socket) {
		t.Errorf("last reason %q does not name the socket", st.LastReason)
	}
	if got := socflowStatus(t, c, run); got != string(workflows.StatusWaiting) {
		t.Errorf("SocflowStatus %q while retrying, want waiting", got)
	}
	cmd := exec.Command(filepath.Join(bin, "socflow-starter"), "status", inst.Name)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "retrying pushing-plan: attempt") ||
		!strings.Contains(string(out), "last error: ") || !strings.Contains(string(out), inst.Pebble.Socket) {
		t.Errorf("starter status (%v) does not show the retried step:\n%s", err, out)
	}
	t.Logf("starter status while retrying:\n%s", out)
	// tctl has no codec: the status still reads as plain JSON, retry included.
	out, err = exec.Command(os.Getenv("SOCFLOW_TCTL_BIN"), "--address", stacktest.Get(t).TemporalAddress, "workflow", "query",
		"--workflow_id", run.GetID(), "--query_type", workflows.StatusQuery).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"attempt"`) || !strings.Contains(string(out), `"lastError"`) ||
		!strings.Contains(string(out), `"step": "pushing-plan"`) && !strings.Contains(string(out), `"step":"pushing-plan"`) {
		t.Errorf("tctl's status query (%v) does not show the retried step:\n%s", err, out)
	}
	t.Logf("tctl workflow query --query_type status while retrying:\n%s", out)

	stacktest.PebbleAt(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var res workflows.DeployResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("deploy failed after Pebble came up: %v", err)
	}
	v, err := c.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.StatusQuery)
	st = workflows.DeployStatus{}
	if err != nil || v.Get(&st) != nil {
		t.Fatalf("status query: %v", err)
	}
	if st.Status.Kind != workflows.StatusActive || st.Status.Retrying() {
		t.Errorf("final status %+v, want active", st.Status)
	}
	if got := socflowStatus(t, c, run); got != string(workflows.StatusActive) {
		t.Errorf("SocflowStatus %q at the end, want active", got)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 1 {
		t.Errorf("platform started %d times, want 1", n)
	}
}

// socflowStatus reads the run's SocflowStatus search attribute as the server holds it.
func socflowStatus(t testing.TB, c tclient.Client, run tclient.WorkflowRun) string {
	t.Helper()
	desc, err := c.DescribeWorkflowExecution(context.Background(), run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	p := desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()[workflows.SearchAttrStatus.GetName()]
	var v string
	if p != nil {
		if err := converter.GetDefaultDataConverter().FromPayload(p, &v); err != nil {
			t.Fatalf("cannot decode SocflowStatus: %v", err)
		}
	}
	return v
}
