// Package workflows holds socflow's Temporal workflows: durable sequences that deploy and
// operate OpenCTI (and later Wazuh) by calling activities. This file is the contract the
// worker, the starter, tctl users and the replay tests share.
package workflows

import (
	"encoding/json"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/spec"
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
	// PhaseStartingNodes starts the platform's further nodes (opencti.nodes), one
	// after another, once the first is healthy.
	PhaseStartingNodes Phase = "starting-nodes"
	PhaseDone          Phase = "done"
	PhaseFailed        Phase = "failed"
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
func ErrorReason(err error) string { return activities.ErrorText(err) }

// OpenCTIInstanceWorkflow is the workflow type name of OpenCTIInstance, the entity
// workflow that deploys one instance and then applies its changes.
const OpenCTIInstanceWorkflow = "OpenCTIInstance"

// The changes of an instance. Each name is both an Update, whose validator rejects bad
// input before anything is recorded, and its Signal twin (tctl has no Updates), which
// takes the same JSON and reports bad input in the status instead.
const (
	// SetConfigUpdate changes settings of the opencti section (SetConfigRequest).
	SetConfigUpdate = "SetConfig"
	// SetIntegrationUpdate sets integration sections: new endpoints or credentials,
	// or an integration back after its removal (SetIntegrationRequest).
	SetIntegrationUpdate = "SetIntegration"
	// RemoveIntegrationUpdate removes an integration, as a broken relation does
	// (RemoveIntegrationRequest).
	RemoveIntegrationUpdate = "RemoveIntegration"
	// RotateSecretUpdate gives a generated secret a new value, or re-reads a given
	// secret's reference after its value changed (RotateSecretRequest).
	RotateSecretUpdate = "RotateSecret"
	// ApplySpecUpdate applies a whole spec: what differs from the applied one
	// (ApplySpecRequest); `starter deploy -f` sends it with the workflow's start.
	ApplySpecUpdate = "ApplySpec"
	// AddConnectorUpdate adds a connector, or replaces the one of the same name
	// (AddConnectorRequest).
	AddConnectorUpdate = "AddConnector"
	// RemoveConnectorUpdate removes a connector: its service stopped, its
	// registration deleted, its user deactivated (RemoveConnectorRequest).
	RemoveConnectorUpdate = "RemoveConnector"
	// UpgradeUpdate moves the instance to another OpenCTI version through an
	// UpgradeOpenCTI child, or with check only runs its pre-flight (UpgradeRequest).
	UpgradeUpdate = "Upgrade"
)

// ChangeNames are the instance's Update (and Signal) names, in the order the
// workflow takes in signals delivered together.
var ChangeNames = []string{SetConfigUpdate, SetIntegrationUpdate, RemoveIntegrationUpdate, RotateSecretUpdate, ApplySpecUpdate,
	AddConnectorUpdate, RemoveConnectorUpdate, UpgradeUpdate}

// DeployProgressSignal is the Signal a DeployOpenCTI run as OpenCTIInstance's child
// sends its parent at each change of its Status, so the instance's status shows the
// deploy's step, attempt and last error rather than only "deploying".
const DeployProgressSignal = "deploy-progress"

// HealthReadsQuery returns what a health check of the instance reads (HealthReads): the
// HealthCheck workflow reads a quiet instance itself, and asks it only when something is
// not ok — so a healthy fleet's checks write nothing to the instances' histories.
const HealthReadsQuery = "health-reads"

// HealthReads is the answer of HealthReadsQuery.
type HealthReads struct {
	// Quiet says a check that finds everything ok would change nothing in the instance:
	// deployed, active, nothing queued, every integration set, its last check ok,
	// nothing down, no heal escalated. The rest is set only when it is quiet.
	Quiet bool `json:"quiet"`
	// Input is every read of a check, as the instance makes them.
	Input activities.ReadOpenCTIHealthInput `json:"input,omitzero"`
	// Connectors are its connectors as its own periodic checks last found them.
	Connectors []ComponentHealth `json:"connectors,omitempty"`
}

// PreviewQuery returns the Preview of a change (PreviewRequest) on top of the applied
// spec and the changes queued before it, computed without touching anything.
const PreviewQuery = "preview"

// ConnectionQuery returns how an app related to the instance reaches its platform
// (activities.OpenCTIConnection: deployed, public URL, applied spec, admin token
// reference): a Wazuh instance whose integrations.opencti names this instance asks it
// through EnsureOpenCTIRelation, since a workflow cannot query another itself.
const ConnectionQuery = "connection"

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
	// ConnectorCheckEvery is how often the connectors are checked (0:
	// DefaultConnectorCheckEvery); tests set it low.
	ConnectorCheckEvery time.Duration `json:"connectorCheckEvery,omitempty"`
	// MigrationHangAfter is how long an upgrade's migration may show no migration line
	// and no init-lock refresh before it is judged hung and rolled back (0:
	// DefaultMigrationHangAfter); tests set it low.
	MigrationHangAfter time.Duration `json:"migrationHangAfter,omitempty"`
	// HealthEvery is the interval of the health schedule the instance creates once
	// deployed (0: DefaultHealthEvery; negative: the instance creates none, and
	// checks only when asked).
	HealthEvery time.Duration `json:"healthEvery,omitempty"`
	// Heal bounds the health checks' healing (zero fields: the defaults).
	Heal HealPolicy `json:"heal,omitzero"`
}

// HealPolicy bounds the healing of an instance's health checks: a token bucket over
// all its heals, and a limit per service after which the instance is Blocked instead
// of restarting it again.
type HealPolicy struct {
	// Burst is the bucket's size: how many heals may follow one another (default 5).
	Burst int `json:"burst,omitempty"`
	// RefillEvery is how long the bucket takes to regain one heal (default 2 min).
	RefillEvery time.Duration `json:"refillEvery,omitempty"`
	// Limit is how many heals of one service within Window block the instance (default 5).
	Limit int `json:"limit,omitempty"`
	// Window is that limit's window (default 10 min).
	Window time.Duration `json:"window,omitempty"`
}

// DeployConnectorsRequest is the request ID of the change that adds a deployed
// spec's connectors: the deploy runs the platform, then the instance applies the spec
// with its connectors as its first change.
const DeployConnectorsRequest = "deploy-connectors"

// DefaultConnectorCheckEvery is how often an instance with connectors checks their
// services and pings: pycti pings every 40 s, so a minute sees at least one.
const DefaultConnectorCheckEvery = time.Minute

// ConnectorPingStale is how old a connector's last ping may be before the instance
// waits on it: three of pycti's 40-second pings missed (the platform itself marks a
// connector inactive after five minutes).
const ConnectorPingStale = 2 * time.Minute

// AddConnectorRequest adds a connector to the instance, or replaces the definition of
// the connector of the same name.
type AddConnectorRequest struct {
	// RequestID identifies the change (see SetConfigRequest).
	RequestID string `json:"requestId,omitempty"`
	// Connector is the connector, as an entry of the spec's connectors list.
	Connector opencti.Connector `json:"connector"`
}

// UpgradeRequest upgrades the instance to a target version (or, with Check, runs
// only the pre-flight and reports its findings).
type UpgradeRequest struct {
	// RequestID identifies the change (see SetConfigRequest).
	RequestID string `json:"requestId,omitempty"`
	// TargetVersion is the release to upgrade to (6.x semantic, 7.x date versions).
	TargetVersion string `json:"targetVersion"`
	// PlatformCommand and WorkerCommand start the target's platform and workers
	// (empty: kept).
	PlatformCommand string `json:"platformCommand,omitempty"`
	WorkerCommand   string `json:"workerCommand,omitempty"`
	// ConnectorCommands are the connectors' commands on the target's pycti, by name.
	ConnectorCommands map[string]string `json:"connectorCommands,omitempty"`
	// Check runs only the pre-flight: nothing is changed (a dry run).
	Check bool `json:"check,omitempty"`
	// ReplyTo is the ID of a workflow to signal (UpgradeDoneSignal) with the result:
	// an UpgradeOpenCTI started by tctl waits for its instance's upgrade so.
	ReplyTo string `json:"replyTo,omitempty"`
}

// UpgradeOpenCTIWorkflow is the workflow type of UpgradeOpenCTI. An instance runs it
// as its child for an Upgrade change; started on its own (tctl, with {"instance":
// NAME, "targetVersion": V}) it sends the instance that change and returns its
// result: one implementation either way.
const UpgradeOpenCTIWorkflow = "UpgradeOpenCTI"

// UpgradeDoneSignal carries an Upgrade change's ChangeResult to the workflow named by
// the request's ReplyTo.
const UpgradeDoneSignal = "upgrade-done"

// UpgradeWorkflowID is the workflow ID of an instance's upgrade child.
func UpgradeWorkflowID(instance string) string { return "opencti-upgrade-" + instance }

// UpgradeInput is the input of UpgradeOpenCTI.
type UpgradeInput struct {
	// Instance is the instance's name.
	Instance string `json:"instance"`
	// UpgradeTarget is the version and the commands of that version.
	opencti.UpgradeTarget
	// Check runs only the pre-flight.
	Check bool `json:"check,omitempty"`
	// Spec and Secrets are the instance's applied spec and secret references, set
	// by the instance workflow; without Spec the workflow forwards the request to
	// the instance (tctl).
	Spec    *opencti.Instance       `json:"spec,omitempty"`
	Secrets opencti.InstanceSecrets `json:"secrets,omitzero"`
	// HangAfter is how long the migration may show no sign of life before it is
	// judged hung and rolled back (0: DefaultMigrationHangAfter); set by the instance
	// from InstanceInput.MigrationHangAfter.
	HangAfter time.Duration `json:"hangAfter,omitempty"`
}

// The outcomes of an upgrade.
const (
	// UpgradeUpgraded: the instance runs the target version.
	UpgradeUpgraded = "upgraded"
	// UpgradeChecked: only the pre-flight ran (check).
	UpgradeChecked = "checked"
	// UpgradeRefused: the pre-flight found errors; nothing changed.
	UpgradeRefused = "refused"
	// UpgradeRolledBack: the upgrade failed after it changed something; the
	// snapshot was restored and the previous version runs again (Reason says why).
	UpgradeRolledBack = "rolled back"
)

// UpgradeResult says what an upgrade did and why.
type UpgradeResult struct {
	// Instance, From and To name the instance and the versions.
	Instance string `json:"instance"`
	From     string `json:"from"`
	To       string `json:"to"`
	// Outcome is upgraded, checked, refused or rolled back.
	Outcome string `json:"outcome"`
	// Reason is why it was rolled back.
	Reason string `json:"reason,omitempty"`
	// Snapshot names the snapshot taken before the migration (repository/name).
	Snapshot string `json:"snapshot,omitempty"`
	// Findings are the pre-flight's findings, errors first.
	Findings []opencti.Finding `json:"findings,omitempty"`
	// Timings are the upgrade's phases with their start and end.
	Timings []PhaseTiming `json:"timings,omitempty"`
}

// UpgradeStatus is what UpgradeOpenCTI's status query returns.
type UpgradeStatus struct {
	// Instance, From and To name the instance and the versions.
	Instance string `json:"instance"`
	From     string `json:"from"`
	To       string `json:"to"`
	// Status is the shared status model; Step the upgrade's phase.
	Status Status `json:"status"`
	// Findings are the pre-flight's findings once it ran.
	Findings []opencti.Finding `json:"findings,omitempty"`
	// Snapshot names the snapshot once it is taken (repository/name).
	Snapshot string `json:"snapshot,omitempty"`
	// Timings are the phases so far.
	Timings []PhaseTiming `json:"timings,omitempty"`
}

// RemoveConnectorRequest removes one connector from the instance.
type RemoveConnectorRequest struct {
	// RequestID identifies the change (see SetConfigRequest).
	RequestID string `json:"requestId,omitempty"`
	// Name is the connector's name.
	Name string `json:"name"`
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
	// PublicURL is the new APP__BASE_URL (opencti.publicURL).
	PublicURL string `json:"publicURL,omitempty"`
	// BasePath is the new APP__BASE_PATH (opencti.basePath); "" removes it.
	BasePath *string `json:"basePath,omitempty"`
	// AdminEmail is the new initial admin's login (opencti.adminEmail).
	AdminEmail string `json:"adminEmail,omitempty"`
}

// SetIntegrationRequest sets one or more integration sections, each replacing the
// applied one whole (as the spec's section would), defaults applied.
type SetIntegrationRequest struct {
	// RequestID identifies the change (see SetConfigRequest).
	RequestID string `json:"requestId,omitempty"`
	// OpenSearch is the new integrations.opensearch section.
	OpenSearch *spec.OpenSearch `json:"opensearch,omitempty"`
	// RabbitMQ is the new integrations.rabbitmq section.
	RabbitMQ *spec.RabbitMQ `json:"rabbitmq,omitempty"`
	// Redis is the new integrations.redis section.
	Redis *spec.Redis `json:"redis,omitempty"`
	// S3 is the new integrations.s3 section.
	S3 *spec.S3 `json:"s3,omitempty"`
}

// RemoveIntegrationRequest removes one integration: the instance is then blocked,
// its workers stopped and its platform left as it is, until SetIntegration brings
// the integration back.
type RemoveIntegrationRequest struct {
	// RequestID identifies the change (see SetConfigRequest).
	RequestID string `json:"requestId,omitempty"`
	// Integration is opensearch, rabbitmq, redis or s3.
	Integration string `json:"integration"`
}

// RotateSecretRequest rotates one secret of the instance, named by its spec field.
type RotateSecretRequest struct {
	// RequestID identifies the change (see SetConfigRequest).
	RequestID string `json:"requestId,omitempty"`
	// Secret is the secret's spec field, e.g. opencti.adminToken (a generated one gets
	// a new value) or integrations.redis.password (its reference is read again).
	Secret string `json:"secret"`
}

// ApplySpecRequest applies a whole spec as one change.
type ApplySpecRequest struct {
	// RequestID identifies the change (see SetConfigRequest).
	RequestID string `json:"requestId,omitempty"`
	// Spec is the wanted spec; its name, Pebble endpoint and version must be the
	// applied ones.
	Spec opencti.Instance `json:"spec"`
}

// ChangeResult says what a change did: what changed (environment values masked) and
// which services were restarted, started and stopped.
type ChangeResult struct {
	// RequestID is the change's request ID.
	RequestID string `json:"requestId"`
	// Kind is the change's name (SetConfig, SetIntegration, …; "" in results recorded
	// before there were other kinds: SetConfig).
	Kind string `json:"kind,omitempty"`
	// Summary is the change on one line, e.g. "workers 3 -> 5".
	Summary string `json:"summary"`
	// Changed are the services whose definition changed, with their changed keys.
	Changed []layer.Change `json:"changed,omitempty"`
	// Restarted, Started and Stopped are the services the reconcile acted on.
	Restarted []string `json:"restarted,omitempty"`
	Started   []string `json:"started,omitempty"`
	Stopped   []string `json:"stopped,omitempty"`
	// Rotated names the secrets that got a new value.
	Rotated []string `json:"rotated,omitempty"`
	// UsersCreated, UsersReactivated and UsersDeactivated are the connector users
	// (connector-<name>) the change added, reactivated and deactivated; a deactivated
	// user no connector of the spec keeps may have been made by hand.
	UsersCreated     []string `json:"usersCreated,omitempty"`
	UsersReactivated []string `json:"usersReactivated,omitempty"`
	UsersDeactivated []string `json:"usersDeactivated,omitempty"`
	// Unregistered are the connectors whose registration on the platform was deleted.
	Unregistered []string `json:"unregistered,omitempty"`
	// Upgrade is what an Upgrade change's child did.
	Upgrade *UpgradeResult `json:"upgrade,omitempty"`
	// Blocked is what still keeps the instance from running after the change (e.g.
	// "missing integration(s): s3"); "" when it runs.
	Blocked string `json:"blocked,omitempty"`
	// Error is why the change could not be applied ("" when it was).
	Error string `json:"error,omitempty"`
}

// SetConfigResult is the result of SetConfig, kept for callers written before the
// other changes existed.
type SetConfigResult = ChangeResult

// PreviewRequest names one change to preview: exactly one field is set.
type PreviewRequest struct {
	// SetConfig, SetIntegration, RemoveIntegration, RotateSecret and ApplySpec are
	// the requests of the changes of the same names.
	SetConfig         *SetConfigRequest         `json:"setConfig,omitempty"`
	SetIntegration    *SetIntegrationRequest    `json:"setIntegration,omitempty"`
	RemoveIntegration *RemoveIntegrationRequest `json:"removeIntegration,omitempty"`
	RotateSecret      *RotateSecretRequest      `json:"rotateSecret,omitempty"`
	ApplySpec         *ApplySpecRequest         `json:"applySpec,omitempty"`
	AddConnector      *AddConnectorRequest      `json:"addConnector,omitempty"`
	RemoveConnector   *RemoveConnectorRequest   `json:"removeConnector,omitempty"`
	Upgrade           *UpgradeRequest           `json:"upgrade,omitempty"`
}

// Preview is what a change would do if applied after the changes queued now, like
// `terraform plan`: the services whose definition changes (environment keys named,
// secret values masked), and what the reconcile would restart, start, stop and leave.
type Preview struct {
	// Kind and Summary name the change, as its result would.
	Kind    string `json:"kind"`
	Summary string `json:"summary"`
	// Invalid is why the change would be rejected ("" when it would be accepted).
	Invalid string `json:"invalid,omitempty"`
	// Changed are the services whose definition changes, with their changed keys.
	Changed []layer.Change `json:"changed,omitempty"`
	// Restart, Start and Stop are what the reconcile would restart (the platform
	// first), start and stop; Unchanged are the services it leaves alone. A
	// connector's service is named by its layer, connector-<name>.
	Restart   []string `json:"restart,omitempty"`
	Start     []string `json:"start,omitempty"`
	Stop      []string `json:"stop,omitempty"`
	Unchanged []string `json:"unchanged,omitempty"`
	// Blocked is set when the instance would be blocked after the change.
	Blocked string `json:"blocked,omitempty"`
	// Notes say what only the apply can know (a re-read secret may not have changed).
	Notes []string `json:"notes,omitempty"`
	// Pending is the number of changes queued before this one.
	Pending int `json:"pending"`
}

// ChangeOutcome is one change as the instance's status lists it: applied, failed or
// rejected (a signal whose input was invalid).
type ChangeOutcome struct {
	// RequestID is the change's request ID ("" for a rejected signal without one).
	RequestID string `json:"requestId,omitempty"`
	// Kind is the change's name.
	Kind string `json:"kind,omitempty"`
	// Via is "update" or "signal".
	Via string `json:"via"`
	// State is "applied", "failed" or "rejected".
	State string `json:"state"`
	// Summary says what changed and what was restarted, or why it was not applied.
	Summary string `json:"summary"`
}

// InstanceState is all OpenCTIInstance knows, carried whole over Continue-As-New.
type InstanceState struct {
	// ChangeLog is the status and the changes, as every app's instance keeps them.
	ChangeLog
	// Deployed is set once the deploy child finished successfully.
	Deployed bool `json:"deployed,omitempty"`
	// Spec is the applied spec (defaulted); an integration removed by
	// RemoveIntegration is absent from it.
	Spec opencti.Instance `json:"spec"`
	// Pushed is the spec whose plan the container has: the applied spec, except
	// while an integration is missing (nil in states carried before it existed).
	Pushed *opencti.Instance `json:"pushed,omitempty"`
	// Secrets are the references of the instance's secrets, from the deploy and
	// later rotations.
	Secrets opencti.InstanceSecrets `json:"secrets"`
	// Generations counts the rotations of each generated secret, by spec field.
	Generations map[string]int `json:"generations,omitempty"`
	// Version and URL are what the deploy verified.
	Version string `json:"version,omitempty"`
	URL     string `json:"url,omitempty"`
	// Owed are the actions a failed change left undone after its plan was pushed: the
	// container already has the new definitions, so the next change's plan reports
	// them unchanged, and its reconcile does these too. Workers stopped because an
	// integration is missing are owed a start.
	Owed OwedActions `json:"owed,omitzero"`
	// Connectors are the connectors whose user socflow ensured, by name: what was
	// pushed into their containers and whether a (re)start is still owed.
	Connectors map[string]ConnectorRecord `json:"connectors,omitempty"`
	// ConnectorChecks are the latest check of each connector, by name.
	ConnectorChecks map[string]activities.ConnectorCheck `json:"connectorChecks,omitempty"`
	// Snapshot is the snapshot the last upgrade took (repository/name).
	Snapshot string `json:"snapshot,omitempty"`
	// Health is the last health check's report.
	Health *HealthReport `json:"health,omitempty"`
	// Heals is the heal budget and each service's recent heals.
	Heals HealState `json:"heals,omitzero"`
	// DownSince is when each component the last checks found down was first found so.
	DownSince map[string]time.Time `json:"downSince,omitempty"`
	// HealthScheduled says the instance created its health schedule.
	HealthScheduled bool `json:"healthScheduled,omitempty"`
}

// HealState is the instance's heal budget (a token bucket) and its recent heals.
type HealState struct {
	// Tokens are the heals left at At.
	Tokens float64 `json:"tokens"`
	// At is when Tokens was counted (zero: the bucket is full).
	At time.Time `json:"at,omitzero"`
	// Recent are each service's heals within the policy's window, oldest first.
	Recent map[string][]time.Time `json:"recent,omitempty"`
	// Escalated are the services the instance gave up healing, with why.
	Escalated map[string]string `json:"escalated,omitempty"`
}

// ConnectorRecord is what the instance keeps of one connector it runs.
type ConnectorRecord struct {
	// UserID is the platform's id of connector-<name>.
	UserID string `json:"userId"`
	// Token and ConnectorID refer to the user's API token and the CONNECTOR_ID.
	Token       spec.SecretRef `json:"token"`
	ConnectorID spec.SecretRef `json:"connectorId"`
	// Connector is the definition last pushed (zero before the first push): its
	// container is where a removal stops it.
	Connector opencti.Connector `json:"connector"`
	// Plan is the layer last pushed, secrets as placeholders (opencti.ConnectorPreview):
	// a change pushes the connector again only when its plan differs.
	Plan *layer.Layer `json:"plan,omitempty"`
	// Owed says the pushed definition has not taken effect: its service still has
	// to be (re)started.
	Owed bool `json:"owed,omitempty"`
	// StartedAt is when socflow last (re)started it: only a ping after it shows the
	// new process works (the registration and its last ping outlive a process).
	StartedAt time.Time `json:"startedAt,omitzero"`
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
	// Kind is the change's name ("" in states recorded before there were other
	// kinds: SetConfig).
	Kind string `json:"kind,omitempty"`
	// Request is the change's request as accepted, in JSON.
	Request json.RawMessage `json:"request"`
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
	// Missing names the integrations removed and not set again.
	Missing []string `json:"missing,omitempty"`
	// Pending is the number of accepted changes not applied yet.
	Pending int `json:"pending"`
	// LastReason is the latest reason something did not go as asked.
	LastReason string `json:"lastReason,omitempty"`
	// Recent are the latest change outcomes, oldest first.
	Recent []ChangeOutcome `json:"recent,omitempty"`
	// Runs counts the runs of the workflow (1 + Continue-As-News).
	Runs int `json:"runs"`
	// Connectors are the spec's connectors with their state.
	Connectors []ConnectorStatus `json:"connectors,omitempty"`
	// Snapshot is the snapshot the last upgrade took (repository/name).
	Snapshot string `json:"snapshot,omitempty"`
	// Health is the last health check's report.
	Health *HealthReport `json:"health,omitempty"`
}

// The states of a connector in the instance's status.
const (
	// ConnectorPending: not started yet, or not checked since it was.
	ConnectorPending = "pending"
	// ConnectorRunning: its service is active, it is registered and pings.
	ConnectorRunning = "running"
	// ConnectorWaiting: its service is not active, or it does not register or ping;
	// the instance is waiting on it.
	ConnectorWaiting = "waiting"
)

// ConnectorStatus is one connector as the instance's status lists it.
type ConnectorStatus struct {
	// Name and Type are the connector's.
	Name string                `json:"name"`
	Type opencti.ConnectorType `json:"type"`
	// State is pending, running or waiting.
	State string `json:"state"`
	// Reason says why it is waiting.
	Reason string `json:"reason,omitempty"`
	// Service is its Pebble service's state at the last check (active, inactive,
	// backoff, error).
	Service string `json:"service,omitempty"`
	// Registered says the platform lists it (registerConnector).
	Registered bool `json:"registered"`
	// LastPing is its last ping the platform recorded.
	LastPing time.Time `json:"lastPing,omitzero"`
	// CheckedAt is when it was last checked.
	CheckedAt time.Time `json:"checkedAt,omitzero"`
}

// HealthCheckWorkflow is the workflow type of HealthCheck: one health check of one
// instance, started by the instance's schedule (HealthScheduleID), tctl or temporal.
const HealthCheckWorkflow = "HealthCheck"

// CheckHealthSignal asks an instance workflow for a health check (CheckHealthRequest);
// the instance answers ReplyTo with HealthDoneSignal.
const CheckHealthSignal = "CheckHealth"

// HealthDoneSignal carries an instance's HealthReport to the workflow that asked.
const HealthDoneSignal = "HealthDone"

// SearchAttrHealth is an instance's last health (HealthOK, HealthDegraded, HealthDown),
// on its instance workflow and on each HealthCheck run: `SocflowHealth = 'down'` lists
// the instances to look at.
var SearchAttrHealth = temporal.NewSearchAttributeKeyKeyword("SocflowHealth")

// The health of an instance or of one of its components.
const (
	// HealthOK: everything answers and runs as planned.
	HealthOK = "ok"
	// HealthDegraded: it serves, but a worker, connector or node does not run, or
	// the container's plan drifted from the spec's.
	HealthDegraded = "degraded"
	// HealthDown: the platform or a dependency it cannot serve without does not answer.
	HealthDown = "down"
	// HealthUnknown: not checked (the instance did not answer in time).
	HealthUnknown = "unknown"
)

// HealthScheduleID is the ID of an instance's health schedule; the workflows it starts
// are named after it, with the schedule's timestamp appended.
func HealthScheduleID(instance string) string { return "health-" + instance }

// DefaultHealthEvery is how often an instance's schedule checks its health.
const DefaultHealthEvery = time.Minute

// HealthCheckInput is the input of HealthCheck.
type HealthCheckInput struct {
	// Instance is the instance's name.
	Instance string `json:"instance"`
	// Wazuh is set for a Wazuh instance (no instance workflow to ask yet): the spec as
	// deployed and the references reading it needs; the check reads and reports.
	Wazuh *activities.ReadWazuhHealthInput `json:"wazuh,omitempty"`
}

// WazuhHealthScheduleID is the ID of a Wazuh instance's health schedule, apart from an
// OpenCTI instance's of the same name.
func WazuhHealthScheduleID(instance string) string { return "health-wazuh-" + instance }

// CheckHealthRequest is CheckHealthSignal's payload.
type CheckHealthRequest struct {
	// RequestID identifies the check (the asking workflow's ID and run).
	RequestID string `json:"requestId"`
	// ReplyTo is the workflow ID to send HealthDoneSignal to ("": nobody).
	ReplyTo string `json:"replyTo,omitempty"`
}

// HealthReport is one health check's findings and what it healed.
type HealthReport struct {
	// Instance is the instance's name.
	Instance string `json:"instance"`
	// RequestID is the check's request.
	RequestID string `json:"requestId,omitempty"`
	// Health is the worst of the components' (HealthOK, HealthDegraded, HealthDown, HealthUnknown).
	Health string `json:"health"`
	// CheckedAt is when the instance ran the check.
	CheckedAt time.Time `json:"checkedAt,omitzero"`
	// Components are the dependencies, the platform (each node), the workers and the
	// connectors, each with its health, how long its read took and why it is not ok.
	Components []ComponentHealth `json:"components,omitempty"`
	// Drift is how the container's plan differs from the one the spec gives now
	// (secret values masked); empty when it does not.
	Drift []layer.Change `json:"drift,omitempty"`
	// Heals are what this check did about what it found.
	Heals []Heal `json:"heals,omitempty"`
	// Note says why nothing was healed, when something could have been.
	Note string `json:"note,omitempty"`
}

// ComponentHealth is one component in a HealthReport.
type ComponentHealth struct {
	// Name is the component: opensearch, rabbitmq, redis, s3, platform,
	// <node>/platform, worker-N, connector-<name>, plan.
	Name string `json:"name"`
	// Health is HealthOK, HealthDegraded or HealthDown.
	Health string `json:"health"`
	// Latency is how long reading it took.
	Latency time.Duration `json:"latency,omitempty"`
	// Reason is why it is not ok.
	Reason string `json:"reason,omitempty"`
}

// Heal is one thing a health check did.
type Heal struct {
	// Component is what it acted on.
	Component string `json:"component"`
	// Action is what it did: restarted, re-applying the plan, escalated, or
	// rate-limited (nothing done: the instance's heal budget is spent).
	Action string `json:"action"`
	// Reason is what it found.
	Reason string `json:"reason,omitempty"`
	// Error is why the action failed, if it did.
	Error string `json:"error,omitempty"`
}
