package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/spec"
)

// OpenCTIConnection is how an OpenCTI instance socflow runs is reached by an app
// related to it, as its instance workflow answers the connection query: references
// only, never a secret.
type OpenCTIConnection struct {
	// Instance is the OpenCTI instance's name.
	Instance string `json:"instance"`
	// Deployed says its deploy finished: before that its platform may not answer.
	Deployed bool `json:"deployed"`
	// URL is the platform's public URL (opencti.publicURL), the one the charm hands
	// to related apps.
	URL string `json:"url,omitempty"`
	// Spec is the applied spec: where the worker reaches the platform (its local URL).
	Spec opencti.Instance `json:"spec"`
	// AdminToken refers to the admin API token the instance runs with now (a rotation
	// or a spec-given token included, which is why it is asked, not derived).
	AdminToken spec.SecretRef `json:"adminToken"`
}

// EnsureOpenCTIRelationInput names an OpenCTI instance socflow runs and the user an
// app related to it gets there.
type EnsureOpenCTIRelationInput struct {
	// Instance is the OpenCTI instance's name.
	Instance string `json:"instance"`
	// WorkflowID and Query are how its instance workflow is asked for its
	// OpenCTIConnection (workflows.InstanceWorkflowID, workflows.ConnectionQuery): the
	// workflow passes them, since activities do not import the workflows' contract.
	WorkflowID string `json:"workflowId"`
	Query      string `json:"query"`
	// User and Email are the related app's user's name and login; it must not be a
	// connector-* user, which the OpenCTI instance deactivates unless its spec keeps it.
	User  string `json:"user"`
	Email string `json:"email"`
	// For names what asks, for the errors' fixes (e.g. "Wazuh instance soc").
	For string `json:"for,omitempty"`
}

// EnsureOpenCTIRelationResult is what the OpenCTI instance hands over: references only.
type EnsureOpenCTIRelationResult struct {
	// URL is the platform's public URL.
	URL string `json:"url"`
	// Token refers to the user's API token, kept in the secret store under the
	// OpenCTI instance.
	Token spec.SecretRef `json:"token"`
	// UserID is the platform's id of the user.
	UserID string `json:"userId"`
	// Created says this call added the user; Reactivated that it was inactive.
	Created     bool `json:"created,omitempty"`
	Reactivated bool `json:"reactivated,omitempty"`
}

// ErrTypeOpenCTIInstanceUnavailable is the error type of a named OpenCTI instance
// socflow does not run, or has not deployed yet: a human must deploy it or fix the name.
const ErrTypeOpenCTIInstanceUnavailable = "OpenCTIInstanceUnavailable"

// EnsureOpenCTIRelation is the charm's opencti-connector relation with an
// EXTERNAL_IMPORT consumer, on the OpenCTI side: it asks the OpenCTI instance's
// workflow how to reach its platform (through the worker's Temporal client; a query
// writes nothing to its history), then ensures the related app's user there in group
// Connectors the way a connector's user is ensured (ensurePlatformUser: idempotent,
// its token stored), and hands over the public URL and the token's reference. An
// instance socflow does not run, that is not running or not deployed yet fails at
// once, naming the fix.
func (a *Activities) EnsureOpenCTIRelation(ctx context.Context, in EnsureOpenCTIRelationInput) (EnsureOpenCTIRelationResult, error) {
	var res EnsureOpenCTIRelationResult
	if a.Temporal == nil {
		return res, permanent(ErrTypeBadConfig, errors.New("this worker has no Temporal client to ask the OpenCTI instance with"))
	}
	conn, err := a.openCTIConnection(ctx, in)
	if err != nil {
		return res, err
	}
	api, callCtx, cancel, err := a.adminAPI(ctx, conn.Spec, conn.AdminToken)
	if err != nil {
		return res, err
	}
	defer cancel()
	u, err := a.ensurePlatformUser(callCtx, api, conn.Spec.Name, platformUser{Name: in.User, Email: in.Email,
		Group: opencti.ConnectorGroup(opencti.ExternalImport)})
	if err != nil {
		return res, err
	}
	return EnsureOpenCTIRelationResult{URL: conn.URL, Token: u.Token, UserID: u.ID, Created: u.Created, Reactivated: u.Reactivated}, nil
}

// openCTIConnection asks the OpenCTI instance's running workflow for its connection,
// classifying what no retry can fix.
func (a *Activities) openCTIConnection(ctx context.Context, in EnsureOpenCTIRelationInput) (OpenCTIConnection, error) {
	var conn OpenCTIConnection
	who := cmp.Or(in.For, "the related app")
	unavailable := func(why, fix string) error {
		return permanent(ErrTypeOpenCTIInstanceUnavailable, fmt.Errorf("cannot relate %s to OpenCTI instance %s: %s; %s", who, in.Instance, why, fix))
	}
	callCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
	defer cancel()
	desc, err := a.Temporal.DescribeWorkflowExecution(callCtx, in.WorkflowID, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return conn, unavailable("socflow runs no such instance (no workflow "+in.WorkflowID+")",
			"deploy it first (starter deploy -f instance.yaml), or set integrations.opencti.instance to the name `starter status NAME` knows")
	case err != nil:
		return conn, fmt.Errorf("cannot describe %s: %w", in.WorkflowID, err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return conn, unavailable("its instance workflow "+in.WorkflowID+" is not running (it is "+st.String()+")",
			"deploy the instance again (starter deploy -f instance.yaml), or give integrations.opencti.url and token instead")
	}
	v, err := a.Temporal.QueryWorkflow(callCtx, in.WorkflowID, "", in.Query)
	if err != nil {
		return conn, fmt.Errorf("cannot query %s of %s: %w", in.Query, in.WorkflowID, err)
	}
	if err := v.Get(&conn); err != nil {
		return conn, permanent(ErrTypeInvalidInput, fmt.Errorf("cannot read the %s answer of %s: %w", in.Query, in.WorkflowID, err))
	}
	if !conn.Deployed {
		return conn, unavailable("it is not deployed yet",
			"wait until `starter status "+in.Instance+"` says it is active, then run this deploy again")
	}
	return conn, nil
}
