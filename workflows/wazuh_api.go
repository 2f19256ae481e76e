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
	// APIUsers says in what state the API users were found (fresh, factory-reset, in-sync).
	APIUsers string `json:"apiUsers,omitempty"`
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
