package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

// fakeTemporal answers the two calls EnsureOpenCTIRelation makes of the worker's
// Temporal client as a server would for one workflow: absent, in a status, or running
// with a connection answer.
type fakeTemporal struct {
	client.Client
	absent bool
	status enumspb.WorkflowExecutionStatus
	conn   activities.OpenCTIConnection
}

func (f fakeTemporal) DescribeWorkflowExecution(_ context.Context, id, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	if f.absent {
		return nil, serviceerror.NewNotFound("workflow not found for ID: " + id)
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{Status: f.status}}, nil
}

func (f fakeTemporal) QueryWorkflow(context.Context, string, string, string, ...any) (converter.EncodedValue, error) {
	return jsonValue{f.conn}, nil
}

// jsonValue is a query answer as the client decodes it.
type jsonValue struct{ v any }

func (j jsonValue) HasValue() bool { return true }
func (j jsonValue) Get(ptr any) error {
	b, err := json.Marshal(j.v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, ptr)
}

// TestEnsureOpenCTIRelationRefusesAnUnavailableInstance checks that an OpenCTI
// instance socflow does not run, whose workflow is not running, or that is not
// deployed is a permanent OpenCTIInstanceUnavailable naming why and the fix, and that a
// deployed one goes on to its platform (whose absence here is a retryable fault).
func TestEnsureOpenCTIRelationRefusesAnUnavailableInstance(t *testing.T) {
	running := enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	deployed := activities.OpenCTIConnection{Instance: "demo", Deployed: true, URL: "http://localhost:1",
		Spec: opencti.Instance{Name: "demo", OpenCTI: opencti.Settings{Port: stacktest.FreePort(t)}}, AdminToken: spec.SecretRef("literal-token")}
	for _, tt := range []struct {
		name      string
		temporal  fakeTemporal
		permanent string // "": not OpenCTIInstanceUnavailable
	}{
		{"not run by socflow", fakeTemporal{absent: true}, "socflow runs no such instance (no workflow opencti/demo); deploy it first"},
		{"terminated", fakeTemporal{status: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED}, "is not running (it is Terminated); deploy the instance again"},
		{"deploying", fakeTemporal{status: running, conn: activities.OpenCTIConnection{Instance: "demo"}}, "not deployed yet; wait until `starter status demo` says it is active"},
		{"deployed", fakeTemporal{status: running, conn: deployed}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &activities.Activities{Secrets: &secrets.Store{Dir: t.TempDir()}, Temporal: tt.temporal}
			_, err := a.EnsureOpenCTIRelation(context.Background(), activities.EnsureOpenCTIRelationInput{Instance: "demo",
				WorkflowID: "opencti/demo", Query: "connection", User: "wazuh-soc", Email: "wazuh.soc@opencti.local", For: "Wazuh instance soc"})
			var app *temporal.ApplicationError
			unavailable := errors.As(err, &app) && app.Type() == activities.ErrTypeOpenCTIInstanceUnavailable && app.NonRetryable()
			switch {
			case tt.permanent != "" && (!unavailable || !strings.Contains(err.Error(), tt.permanent) || !strings.Contains(err.Error(), "Wazuh instance soc")):
				t.Errorf("error %v, want a permanent %s saying %q", err, activities.ErrTypeOpenCTIInstanceUnavailable, tt.permanent)
			case tt.permanent == "" && (err == nil || unavailable || (app != nil && app.NonRetryable())):
				t.Errorf("error %v, want a retryable fault of the absent platform", err)
			}
		})
	}
}
