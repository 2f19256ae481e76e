package workerapp

import (
	"slices"
	"testing"

	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/workflows"
)

// fakeRegistry records the names workflows are registered under.
type fakeRegistry struct{ names []string }

func (f *fakeRegistry) RegisterWorkflow(any) {}
func (f *fakeRegistry) RegisterWorkflowWithOptions(_ any, o workflow.RegisterOptions) {
	f.names = append(f.names, o.Name)
}
func (f *fakeRegistry) RegisterDynamicWorkflow(any, workflow.DynamicRegisterOptions) {}

func TestRegisterWorkflowsRegistersExactlyWorkflowTypes(t *testing.T) {
	var r fakeRegistry
	RegisterWorkflows(&r)
	if !slices.Equal(r.names, WorkflowTypes()) {
		t.Fatalf("registered %v, WorkflowTypes() says %v", r.names, WorkflowTypes())
	}
	if !slices.Contains(r.names, workflows.DeployOpenCTIWorkflow) {
		t.Errorf("%s is not registered", workflows.DeployOpenCTIWorkflow)
	}
	seen := map[string]bool{}
	for _, n := range r.names {
		if n == "" || seen[n] {
			t.Errorf("workflow type name %q empty or registered twice", n)
		}
		seen[n] = true
	}
	if _, err := NewReplayer(); err != nil {
		t.Fatalf("cannot build the replayer: %v", err)
	}
}
