package workerapp

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/workflows"
)

// registered is every workflow socflow's worker runs, under its type name. The worker,
// the replay suite (replaytests) and `starter replay-check` all register from this one
// list, so a workflow added here is replayed and checked without further wiring.
var registered = []struct {
	name string
	fn   any
}{
	{workflows.DeployOpenCTIWorkflow, workflows.DeployOpenCTI},
	{workflows.OpenCTIInstanceWorkflow, workflows.OpenCTIInstance},
	{workflows.UpgradeOpenCTIWorkflow, workflows.UpgradeOpenCTI},
	{workflows.HealthCheckWorkflow, workflows.HealthCheck},
	{workflows.DeployWazuhWorkflow, workflows.DeployWazuh},
	{workflows.WazuhInstanceWorkflow, workflows.WazuhInstance},
}

// RegisterWorkflows registers every socflow workflow under its type name on r: a
// worker.Worker or a worker.WorkflowReplayer.
func RegisterWorkflows(r worker.WorkflowRegistry) {
	for _, w := range registered {
		r.RegisterWorkflowWithOptions(w.fn, workflow.RegisterOptions{Name: w.name})
	}
}

// WorkflowTypes returns the type names of every workflow RegisterWorkflows registers,
// in registration order.
func WorkflowTypes() []string {
	names := make([]string, len(registered))
	for i, w := range registered {
		names[i] = w.name
	}
	return names
}

// NewReplayer returns a workflow replayer set up exactly like the worker: the same
// workflows under the same names and the production DataConverter, so a history that
// replays here replays on a worker of this build.
func NewReplayer() (worker.WorkflowReplayer, error) {
	conv, err := LoadConverters()
	if err != nil {
		return nil, err
	}
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{DataConverter: conv.Data, FailureConverter: conv.Failure})
	if err != nil {
		return nil, err
	}
	RegisterWorkflows(r)
	return r, nil
}
