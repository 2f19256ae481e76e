package workflows

import (
	"time"

	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/wazuh"
)

// The Wazuh app's part of the contract: workflow types, IDs, inputs and results. The
// task queue, status query, search attributes and phases' status model are shared
// with OpenCTI (api.go).

// DeployWazuhWorkflow is the workflow type of a Wazuh server deploy.
const DeployWazuhWorkflow = "DeployWazuh"

// AppWazuh is the SocflowApp search attribute of Wazuh workflows.
const AppWazuh = "wazuh"

// WazuhDeployWorkflowID is the ID of an instance's deploy: one deploy per instance at
// a time, and a re-run of a failed deploy resumes under the same ID.
func WazuhDeployWorkflowID(instance string) string { return "wazuh-deploy-" + instance }

// The phases a Wazuh deploy adds to the shared ones (validating, ensuring-secrets,
// waiting-dependencies, done, failed), in order; a node's phases repeat per node.
const (
	// PhaseRelatingOpenCTI takes the URL and a connector user's token from the OpenCTI
	// instance integrations.opencti names (only when it names one).
	PhaseRelatingOpenCTI Phase = "relating-opencti"
	// PhaseSyncingRepo fetches the configuration repository and copies what changed.
	PhaseSyncingRepo Phase = "syncing-config-repo"
	// PhaseConfiguringNode pushes a node's files and layer.
	PhaseConfiguringNode Phase = "configuring-node"
	// PhaseStartingManager runs wazuh-control reload on a node.
	PhaseStartingManager Phase = "starting-manager"
	// PhaseStartingShippers starts filebeat and rsyslog on a node.
	PhaseStartingShippers Phase = "starting-shippers"
	// PhaseAPIUsers reconciles the Wazuh API's users on the master.
	PhaseAPIUsers Phase = "reconciling-api-users"
	// PhaseStartingExporter pushes the master's prometheus layer and starts the exporter.
	PhaseStartingExporter Phase = "starting-exporter"
	// PhaseWaitingCluster waits for every worker to join the master.
	PhaseWaitingCluster Phase = "waiting-cluster"
	// PhaseSchedulingHealth creates or updates the instance's health schedule.
	PhaseSchedulingHealth Phase = "scheduling-health"
)

// DeployWazuhInput is the input of DeployWazuh.
type DeployWazuhInput struct {
	// Instance is the Wazuh instance spec; secret fields are references.
	Instance wazuh.Instance `json:"instance"`
	// ClusterJoinLimit bounds the wait for the workers to join the master (default
	// ClusterJoinLimit).
	ClusterJoinLimit time.Duration `json:"clusterJoinLimit,omitempty"`
	// HealthEvery is the interval of the health schedule the deploy creates or updates
	// (0: DefaultHealthEvery; negative: none).
	HealthEvery time.Duration `json:"healthEvery,omitempty"`
}

// DeployWazuhResult is what a finished Wazuh deploy reports (references, never secrets).
type DeployWazuhResult struct {
	// Instance is the instance's name.
	Instance string `json:"instance"`
	// Version is the manager version the master reported.
	Version string `json:"version,omitempty"`
	// Nodes are the nodes' names, master first.
	Nodes []string `json:"nodes"`
	// Joined are the workers the master lists as connected.
	Joined []string `json:"joined,omitempty"`
	// ConfigCommit is the configuration repository commit applied ("" without one).
	ConfigCommit string `json:"configCommit,omitempty"`
	// Restarted are the services the deploy (re)started, as node/service, in order.
	Restarted []string `json:"restarted,omitempty"`
	// APIUsers says in what state the API users were found (fresh, factory-reset, in-sync).
	APIUsers string `json:"apiUsers,omitempty"`
	// ExporterURL is where the exporter serves its metrics ("" without wazuh.exporter).
	ExporterURL string `json:"exporterURL,omitempty"`
	// HealthSchedule is the ID of the health schedule the deploy created or updated.
	HealthSchedule string `json:"healthSchedule,omitempty"`
	// Timings are the phases with their start and end.
	Timings []PhaseTiming `json:"timings"`
	// Warnings collect accepted oddities.
	Warnings []string `json:"warnings,omitempty"`
	// OpenCTI is what the OpenCTI instance integrations.opencti names handed over
	// (nil when the spec gives url and token, or no OpenCTI).
	OpenCTI *WazuhOpenCTIRelation `json:"opencti,omitempty"`
	// GeneratedSecrets names the secrets this deploy created (empty on redeploys).
	GeneratedSecrets []string `json:"generatedSecrets,omitempty"`
	// Secrets are the references of the instance's generated secrets.
	Secrets wazuh.InstanceSecrets `json:"secrets"`
}

// WazuhInstanceWorkflow is the workflow type of WazuhInstance, the entity workflow that
// deploys one Wazuh instance and then applies its changes and health reports.
const WazuhInstanceWorkflow = "WazuhInstance"

// WazuhInstanceWorkflowID is the workflow ID of a Wazuh instance's entity workflow.
func WazuhInstanceWorkflowID(instance string) string { return "wazuh/" + instance }

// ReconcileUpdate re-applies the applied spec to every node (ReconcileRequest): the fix
// once a node edited by hand, a certificate renewed in the files the spec refers to, or
// a cluster key mismatch is put right. Like every change it is also a Signal.
const ReconcileUpdate = "Reconcile"

// WazuhChangeNames are a Wazuh instance's Update (and Signal) names, in the order the
// workflow takes in signals delivered together: ApplySpec (WazuhApplySpecRequest) and
// Reconcile.
var WazuhChangeNames = []string{ApplySpecUpdate, ReconcileUpdate}

// HealthReportSignal carries a Wazuh HealthCheck's HealthReport to the instance's
// workflow, sent only when the report differs from the one the instance last recorded,
// so a healthy instance's history does not grow with its checks.
const HealthReportSignal = "HealthReport"

// WazuhInstanceInput is the input of WazuhInstance.
type WazuhInstanceInput struct {
	// Instance is the spec to deploy; secret fields are references.
	Instance wazuh.Instance `json:"instance"`
	// State is the state a previous run carried over Continue-As-New (nil on the first run).
	State *WazuhInstanceState `json:"state,omitempty"`
	// ContinueAsNewAfterEvents continues as new once the history holds this many events
	// (0: only when the server suggests it); tests set it low.
	ContinueAsNewAfterEvents int `json:"continueAsNewAfterEvents,omitempty"`
	// ClusterJoinLimit bounds each deploy's wait for the workers to join (default
	// ClusterJoinLimit).
	ClusterJoinLimit time.Duration `json:"clusterJoinLimit,omitempty"`
	// HealthEvery is the interval of the health schedule each deploy keeps (0:
	// DefaultHealthEvery; negative: none).
	HealthEvery time.Duration `json:"healthEvery,omitempty"`
}

// WazuhInstanceState is all WazuhInstance knows, carried whole over Continue-As-New.
type WazuhInstanceState struct {
	// ChangeLog is the status and the changes, as every app's instance keeps them.
	ChangeLog
	// Deployed is set once a deploy of the instance succeeded.
	Deployed bool `json:"deployed,omitempty"`
	// Spec is the spec last applied successfully (defaulted), or the first one until then.
	Spec wazuh.Instance `json:"spec"`
	// Secrets are the references of the instance's generated secrets.
	Secrets wazuh.InstanceSecrets `json:"secrets"`
	// Version is the manager version the master reported.
	Version string `json:"version,omitempty"`
	// Joined are the workers the master listed at the last deploy.
	Joined []string `json:"joined,omitempty"`
	// ConfigCommit is the configuration repository commit last applied.
	ConfigCommit string `json:"configCommit,omitempty"`
	// Health is the last health report the instance was sent.
	Health *HealthReport `json:"health,omitempty"`
}

// WazuhApplySpecRequest is ApplySpec's input for a Wazuh instance: the whole spec,
// applied as one deploy (nodes added are brought up, nodes removed retired first).
type WazuhApplySpecRequest struct {
	// RequestID deduplicates the change (a repeat returns the first result).
	RequestID string `json:"requestId,omitempty"`
	// Spec is the instance spec, secret fields as references.
	Spec wazuh.Instance `json:"spec"`
}

// ReconcileRequest is Reconcile's input.
type ReconcileRequest struct {
	// RequestID deduplicates the change (a repeat returns the first result).
	RequestID string `json:"requestId,omitempty"`
	// Reason says why, for the change's record (optional).
	Reason string `json:"reason,omitempty"`
}

// WazuhInstanceStatus is what WazuhInstance's status query returns: states, names and
// reasons, never a secret, so it travels readable without the codec.
type WazuhInstanceStatus struct {
	// Instance is the instance name.
	Instance string `json:"instance"`
	// Status is the shared status model.
	Status Status `json:"status"`
	// Deployed says whether a deploy succeeded.
	Deployed bool `json:"deployed"`
	// Version is the manager version the master reported.
	Version string `json:"version,omitempty"`
	// Nodes are the applied spec's nodes, master first.
	Nodes []string `json:"nodes"`
	// Joined are the workers the master listed at the last deploy.
	Joined []string `json:"joined,omitempty"`
	// ConfigCommit is the configuration repository commit last applied.
	ConfigCommit string `json:"configCommit,omitempty"`
	// Pending is the number of accepted changes not applied yet.
	Pending int `json:"pending"`
	// LastReason is the latest reason something did not go as asked.
	LastReason string `json:"lastReason,omitempty"`
	// Recent are the latest change outcomes, oldest first.
	Recent []ChangeOutcome `json:"recent,omitempty"`
	// Runs counts the runs of the workflow (1 + Continue-As-News).
	Runs int `json:"runs"`
	// Health is the last health report the instance was sent.
	Health *HealthReport `json:"health,omitempty"`
}

// WazuhOpenCTIRelation is a Wazuh instance's relation with an OpenCTI instance socflow
// runs, as a deploy made it: references only, never the token.
type WazuhOpenCTIRelation struct {
	// Instance is the OpenCTI instance's name.
	Instance string `json:"instance"`
	// URL is its platform's public URL; hook_url is URL + /graphql.
	URL string `json:"url"`
	// User is the OpenCTI user kept for the Wazuh instance (group Connectors).
	User string `json:"user"`
	// Token refers to that user's API token (api_key), in the secret store.
	Token spec.SecretRef `json:"token"`
	// UserCreated says this deploy added the user (false on redeploys).
	UserCreated bool `json:"userCreated,omitempty"`
}
