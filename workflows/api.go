// Package workflows holds socflow's Temporal workflows: durable sequences that deploy and
// operate OpenCTI (and later Wazuh) by calling activities. This file is the contract the
// worker, the starter, tctl users and the replay tests share.
package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/socflow/socflow/internal/layer"
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

// OpenCTIInstanceWorkflow is the workflow type name of OpenCTIInstance, the entity
// workflow that deploys one instance and then applies its config changes.
const OpenCTIInstanceWorkflow = "OpenCTIInstance"

// SetConfigUpdate names both the SetConfig Update and its Signal twin (tctl has no
// Updates); both take a SetConfigRequest as JSON.
const SetConfigUpdate = "SetConfig"

// InstanceWorkflowID is the workflow ID of an instance's entity workflow.
func InstanceWorkflowID(instance string) string { return "opencti/" + instance }

// InstanceInput is the input of OpenCTIInstance.
type InstanceInput struct {
	// Instance is the spec to deploy; secret fields are references or local literals.
	Instance opencti.Instance `json:"instance"`
	// State is the state a previous run carried over Continue-As-New (nil on the first run).
	State *InstanceState `json:"state,omitempty"`
	// ContinueAsNewAfterEvents continues as new once the history holds this many events
	// (0: only when the server suggests it); tests set it low.
	ContinueAsNewAfterEvents int `json:"continueAsNewAfterEvents,omitempty"`
}

// SetConfigRequest is one SetConfig change: the fields to set (absent: keep) and a
// request ID that makes a repeated request return the first result.
type SetConfigRequest struct {
	// RequestID identifies the change; empty: the update ID (or, for a signal, one the
	// workflow assigns).
	RequestID string `json:"requestId,omitempty"`
	// Workers is the new worker count (opencti.workers, 1..32).
	Workers *int `json:"workers,omitempty"`
	// LogLevel is the new platform and worker log level (opencti.logLevel).
	LogLevel opencti.LogLevel `json:"logLevel,omitempty"`
}

// SetConfigResult says what a SetConfig change did: what changed (environment values
// masked) and which services were restarted, started and stopped.
type SetConfigResult struct {
	// RequestID is the change's request ID.
	RequestID string `json:"requestId"`
	// Summary is the change on one line, e.g. "workers 3 -> 5".
	Summary string `json:"summary"`
	// Changed are the services whose definition changed, with their changed keys.
	Changed []layer.Change `json:"changed,omitempty"`
	// Restarted, Started and Stopped are the services the reconcile acted on.
	Restarted []string `json:"restarted,omitempty"`
	Started   []string `json:"started,omitempty"`
	Stopped   []string `json:"stopped,omitempty"`
	// Error is why the change could not be applied ("" when it was).
	Error string `json:"error,omitempty"`
}

// ChangeOutcome is one change as the instance's status lists it: applied, failed or
// rejected (a signal whose input was invalid).
type ChangeOutcome struct {
	// RequestID is the change's request ID ("" for a rejected signal without one).
	RequestID string `json:"requestId,omitempty"`
	// Via is "update" or "signal".
	Via string `json:"via"`
	// State is "applied", "failed" or "rejected".
	State string `json:"state"`
	// Summary says what changed and what was restarted, or why it was not applied.
	Summary string `json:"summary"`
}

// InstanceState is all OpenCTIInstance knows, carried whole over Continue-As-New.
type InstanceState struct {
	// Status is the shared status model.
	Status Status `json:"status"`
	// Deployed is set once the deploy child finished successfully.
	Deployed bool `json:"deployed,omitempty"`
	// Spec is the applied spec (defaulted).
	Spec opencti.Instance `json:"spec"`
	// Secrets are the references of the instance's secrets, from the deploy.
	Secrets opencti.InstanceSecrets `json:"secrets"`
	// Version and URL are what the deploy verified.
	Version string `json:"version,omitempty"`
	URL     string `json:"url,omitempty"`
	// LastReason is the latest reason something did not go as asked.
	LastReason string `json:"lastReason,omitempty"`
	// Results are the results of applied (or failed) changes by request ID, and
	// ResultOrder their IDs in order, oldest first (bounded).
	Results     map[string]SetConfigResult `json:"results,omitempty"`
	ResultOrder []string                   `json:"resultOrder,omitempty"`
	// Queue holds accepted changes not applied yet, in arrival order.
	Queue []QueuedChange `json:"queue,omitempty"`
	// Recent are the latest outcomes, oldest first (bounded), for the status.
	Recent []ChangeOutcome `json:"recent,omitempty"`
	// Owed are the actions a failed change left undone after its plan was pushed: the
	// container already has the new definitions, so the next change's plan reports
	// them unchanged, and its reconcile does these too.
	Owed OwedActions `json:"owed,omitzero"`
	// Signals counts SetConfig signals, to name those sent without a request ID.
	Signals int `json:"signals,omitempty"`
	// Runs counts the runs of this instance's workflow (1 + Continue-As-News).
	Runs int `json:"runs,omitempty"`
}

// OwedActions are services still to restart, start or stop for a pushed plan.
type OwedActions struct {
	// Restart are services whose pushed definition has not taken effect yet.
	Restart []string `json:"restart,omitempty"`
	// Start are added services not started yet.
	Start []string `json:"start,omitempty"`
	// Stop are removed services not stopped yet.
	Stop []string `json:"stop,omitempty"`
}

// QueuedChange is an accepted change waiting to be applied.
type QueuedChange struct {
	// ID is the request ID.
	ID string `json:"id"`
	// Via is "update" or "signal".
	Via string `json:"via"`
	// Request is the change.
	Request SetConfigRequest `json:"request"`
}

// InstanceStatus is what the status query of OpenCTIInstance returns.
type InstanceStatus struct {
	// Instance is the instance name.
	Instance string `json:"instance"`
	// Status is the shared status model.
	Status Status `json:"status"`
	// Deployed says whether the deploy child finished.
	Deployed bool `json:"deployed"`
	// Version and URL are what the deploy verified.
	Version string `json:"version,omitempty"`
	URL     string `json:"url,omitempty"`
	// Workers and LogLevel are the applied config.
	Workers  int              `json:"workers"`
	LogLevel opencti.LogLevel `json:"logLevel"`
	// Pending is the number of accepted changes not applied yet.
	Pending int `json:"pending"`
	// LastReason is the latest reason something did not go as asked.
	LastReason string `json:"lastReason,omitempty"`
	// Recent are the latest change outcomes, oldest first.
	Recent []ChangeOutcome `json:"recent,omitempty"`
	// Runs counts the runs of the workflow (1 + Continue-As-News).
	Runs int `json:"runs"`
}
