package workflows

import (
	"time"

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
	// GeneratedSecrets names the secrets this deploy created (empty on redeploys).
	GeneratedSecrets []string `json:"generatedSecrets,omitempty"`
	// Secrets are the references of the instance's generated secrets.
	Secrets wazuh.InstanceSecrets `json:"secrets"`
}
