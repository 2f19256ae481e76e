// Package workflows holds socflow's Temporal workflows: durable sequences that deploy and
// operate OpenCTI (and later Wazuh) by calling activities. This file is the contract the
// worker, the starter, tctl users and the replay tests share.
package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/socflow/socflow/internal/opencti"
)

// TaskQueue is the task queue socflow's worker polls.
const TaskQueue = "socflow"

// DeployOpenCTIWorkflow is the workflow type name of DeployOpenCTI, for tctl, temporal
// and starters in other languages.
const DeployOpenCTIWorkflow = "DeployOpenCTI"

// StatusQuery returns the DeployStatus of a running or finished deploy.
const StatusQuery = "status"

// ErrTypeRetriesExhausted is the application error type of a short step that kept
// failing until its attempts or its overall time bound ran out.
const ErrTypeRetriesExhausted = "RetriesExhausted"

// AppOpenCTI is the SocflowApp search attribute value of OpenCTI workflows.
const AppOpenCTI = "opencti"

// Search attributes socflow sets, registered on the server by deploy/local/stack (and in
// production with `temporal operator search-attribute create`).
var (
	// SearchAttrInstance is the instance name, to list every workflow of one instance.
	SearchAttrInstance = temporal.NewSearchAttributeKeyKeyword("SocflowInstance")
	// SearchAttrApp is the application (opencti, wazuh).
	SearchAttrApp = temporal.NewSearchAttributeKeyKeyword("SocflowApp")
	// SearchAttrPhase is the current phase, to find deploys stuck in one phase.
	SearchAttrPhase = temporal.NewSearchAttributeKeyKeyword("SocflowPhase")
	// SearchAttrStatus is the status kind (maintenance, waiting, blocked, active), to
	// find every workflow a human must look at: `SocflowStatus = 'blocked'`.
	SearchAttrStatus = temporal.NewSearchAttributeKeyKeyword("SocflowStatus")
)

// DeployWorkflowID is the workflow ID of an instance's deploy: one deploy per instance
// at a time, and a re-run of a failed deploy resumes under the same ID.
func DeployWorkflowID(instance string) string { return "opencti-deploy-" + instance }

// DeployInput is the input of DeployOpenCTI.
type DeployInput struct {
	// Instance is the instance spec; secret fields are references or local literals.
	Instance opencti.Instance `json:"instance"`
}

// Phase is a step of the deploy sequence.
type Phase string

// The phases of DeployOpenCTI, in order (deploys begun before VerifyBeforeWorkersChange
// start the workers before verifying).
const (
	PhaseValidating        Phase = "validating"
	PhaseEnsuringSecrets   Phase = "ensuring-secrets"
	PhaseWaitingDeps       Phase = "waiting-dependencies"
	PhaseCheckingPrefix    Phase = "checking-prefix"
	PhaseEnsuringBucket    Phase = "ensuring-bucket"
	PhasePushingPlan       Phase = "pushing-plan"
	PhaseStartingPlatform  Phase = "starting-platform"
	PhaseWaitingPlatform   Phase = "waiting-platform"
	PhaseAddingHealthCheck Phase = "adding-health-check"
	PhaseVerifying         Phase = "verifying"
	PhaseStartingWorkers   Phase = "starting-workers"
	PhaseDone              Phase = "done"
	PhaseFailed            Phase = "failed"
)

// DependencyState is where one dependency's readiness stands.
type DependencyState string

// The states of a dependency.
const (
	DepWaiting DependencyState = "waiting"
	DepReady   DependencyState = "ready"
	DepFailed  DependencyState = "failed"
)

// DependencyStatus is one dependency's readiness as last probed.
type DependencyStatus struct {
	Name    string          `json:"name"`
	State   DependencyState `json:"state"`
	Reason  string          `json:"reason,omitempty"`
	Version string          `json:"version,omitempty"`
	Warning string          `json:"warning,omitempty"`
	Probes  int             `json:"probes"`
	ReadyAt time.Time       `json:"readyAt,omitzero"`
}

// PhaseTiming is when one phase started and ended (workflow time).
type PhaseTiming struct {
	Phase Phase     `json:"phase"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end,omitzero"`
}

// DeployStatus is what the status query returns: where the deploy is and why.
type DeployStatus struct {
	Instance     string             `json:"instance"`
	Phase        Phase              `json:"phase"`
	Dependencies []DependencyStatus `json:"dependencies"`
	Platform     string             `json:"platform,omitempty"`
	LastReason   string             `json:"lastReason,omitempty"`
	Timings      []PhaseTiming      `json:"timings"`
	Error        string             `json:"error,omitempty"`
	// Status is the shared status model: maintenance, waiting, blocked or active, the
	// step (the phase) and, while a step is retried, its attempt and last error.
	Status Status `json:"status"`
}

// DeployResult is what a finished deploy reports.
type DeployResult struct {
	Instance string `json:"instance"`
	// URL is the platform's public URL.
	URL string `json:"url"`
	// Version is the version the platform reported through GraphQL.
	Version string `json:"version"`
	// Timings are the phases with their start and end.
	Timings []PhaseTiming `json:"timings"`
	// Warnings collect accepted oddities (dependencies below documented minimums).
	Warnings []string `json:"warnings,omitempty"`
	// GeneratedSecrets names the secrets this deploy created (empty on redeploys).
	GeneratedSecrets []string `json:"generatedSecrets,omitempty"`
	// Secrets are the references of the instance's secrets (never values).
	Secrets opencti.InstanceSecrets `json:"secrets"`
}

// ErrorReason is the message an operator needs from a workflow or activity error: the
// application error's own text, without the SDK's wrapping; the workflow's status and
// the starter's report both use it, so they read the same.
func ErrorReason(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}
