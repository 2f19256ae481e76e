package workflows

import "go.temporal.io/sdk/workflow"

// Change IDs of workflow.GetVersion guards: one per change to a workflow's command
// sequence, kept while any open workflow or retained history may still need the old
// branch (README, "Changing a workflow safely"). replaytests/testdata/v<N>/ holds the
// histories recorded at each version; both old and new must replay.

// VerifyBeforeWorkersChange guards verifying the platform (about.version and the admin
// token, VerifyOpenCTI) before the workers start instead of after, so workers never
// start against a platform of the wrong version. Deploys that began before the change
// (workflow.DefaultVersion) keep the old order: start workers, then verify.
const VerifyBeforeWorkersChange = "verify-before-workers"

// VerifyBeforeWorkers is the version of VerifyBeforeWorkersChange that verifies first.
const VerifyBeforeWorkers workflow.Version = 1

// StopFailedPlatformChange guards stopping the platform when its wait ends in a
// failure no restart can fix (indices left by an interrupted first boot, an invalid
// token, data too recent): left running, Pebble would restart it forever, and each
// start of a too-old binary rewrites the index templates. Deploys that began before
// it fail without stopping the platform.
const StopFailedPlatformChange = "stop-failed-platform"

// StopFailedPlatform is the version of StopFailedPlatformChange that stops it.
const StopFailedPlatform workflow.Version = 1

// PrefixPreflightChange guards the index-prefix pre-flight (CheckOpenSearchPrefix) after
// the dependency wait: OpenCTI matches "<prefix>*" for templates, so an instance whose
// prefix is a prefix of another's (demo and demo2) would rewrite the other's templates
// at every start. Deploys that began before it go straight on to the bucket.
const PrefixPreflightChange = "prefix-preflight"

// PrefixPreflight is the version of PrefixPreflightChange that checks the prefix.
const PrefixPreflight workflow.Version = 1

// StepStatusChange guards the status model's commands: the short steps (quickOptions,
// pebbleOptions, graphqlOptions) run with server retries off and are retried by the
// workflow with the same backoff and bound, a timer between attempts, so the status
// names the retried step, its attempt and last error; and the status kind is upserted
// as SocflowStatus. Deploys that began before it let the server retry and set no
// SocflowStatus (their status query still reports the model).
const StepStatusChange = "step-status"

// StepStatus is the version of StepStatusChange that retries in the workflow.
const StepStatus workflow.Version = 1

// ReadyCheckAfterRestartChange guards re-adding the platform's ready check after a
// reconcile restarted the platform: the check's URL carries the port, base path and
// health key, which a change may move. Instance workflows that began before it
// restart without touching the check.
const ReadyCheckAfterRestartChange = "ready-check-after-restart"

// ReadyCheckAfterRestart is the version of ReadyCheckAfterRestartChange that re-adds it.
const ReadyCheckAfterRestart workflow.Version = 1

// DeployProgressChange guards the signals a DeployOpenCTI child sends its
// OpenCTIInstance parent at each change of its status (DeployProgressSignal). Deploys
// that began before it send none; deploys without a parent never do.
const DeployProgressChange = "deploy-progress"

// DeployProgress is the version of DeployProgressChange that signals the parent.
const DeployProgress workflow.Version = 1

// ConnectorsChange guards the connector steps at the end of every reconcile (remove,
// ensure users, push, start, and deactivate the connector-* users the spec does not
// keep, the charm's rule). Instance workflows that began before it reconcile without
// them (their specs could hold no connectors).
const ConnectorsChange = "connectors"

// Connectors is the version of ConnectorsChange that reconciles connectors.
const Connectors workflow.Version = 1

// PlatformNodesChange guards the steps for opencti.nodes: the deploy, the upgrade and
// every reconcile bring the further nodes up one after another once the first node is
// healthy, and stop them before it. Workflows that began before it run one node (their
// specs could hold no nodes).
const PlatformNodesChange = "platform-nodes"

// PlatformNodes is the version of PlatformNodesChange that runs the further nodes.
const PlatformNodes workflow.Version = 1

// MigrationHangChange guards judging a migration hung (no migration line and no
// init-lock refresh for the hang bound) in the platform waits. Waits that began before
// it wait on such a platform until PlatformHealthLimit.
const MigrationHangChange = "migration-hang"

// MigrationHang is the version of MigrationHangChange that judges hangs.
const MigrationHang workflow.Version = 1

// HealthChecksChange guards the instance's health schedule, created once it is
// deployed. Instance workflows that began before it create none (and answer no
// CheckHealth request they are not sent).
const HealthChecksChange = "health-checks"

// HealthChecks is the version of HealthChecksChange that schedules health checks.
const HealthChecks workflow.Version = 1

// PlatformFirstChange guards starting a platform the container no longer runs (a
// restarted Pebble lost the plan) alone, waiting until it is healthy and re-adding its
// check before the workers start. Reconciles before it started it with the workers at once.
const PlatformFirstChange = "platform-first"

// PlatformFirst is the version of PlatformFirstChange that starts the platform first.
const PlatformFirst workflow.Version = 1

// HealthOneReadChange guards making a health check's reads in one local activity
// (ReadOpenCTIHealth). Checks before it made one activity per read.
const HealthOneReadChange = "health-one-read"

// HealthOneRead is the version of HealthOneReadChange that makes one local activity.
const HealthOneRead workflow.Version = 1

// HealthCheckReadsChange guards the HealthCheck workflow's own check of a quiet
// instance (readQuietInstance): before it, every check asked the instance.
const HealthCheckReadsChange = "health-check-reads"

// HealthCheckReads is the version of HealthCheckReadsChange that reads a quiet
// instance without it.
const HealthCheckReads workflow.Version = 1

// WazuhHealthToInstanceChange guards a Wazuh HealthCheck's telling the instance's
// WazuhInstance workflow its report (a local query, then a signal when the report
// differs from the instance's last). Checks before it only reported.
const WazuhHealthToInstanceChange = "wazuh-health-to-instance"

// WazuhHealthToInstance is the version of WazuhHealthToInstanceChange that tells.
const WazuhHealthToInstance workflow.Version = 1

// WazuhExporterChange guards the exporter step of DeployWazuh (ApplyWazuhExporter, the
// master's `prometheus` layer), taken after the API users are reconciled when the spec
// sets wazuh.exporter. Deploys that began before it run no exporter (their specs could
// not set one); the guard is asked only when the spec sets one, so every other deploy's
// commands are unchanged.
const WazuhExporterChange = "wazuh-exporter"

// WazuhExporter is the version of WazuhExporterChange that runs the exporter.
const WazuhExporter workflow.Version = 1

// WazuhOpenCTIInstanceChange guards DeployWazuh's relation with an OpenCTI instance
// socflow runs (integrations.opencti.instance): the EnsureOpenCTIRelation step after
// the secrets, whose URL and token reference the plan then uses. It is asked only when
// the spec names an instance, so url-and-token deploys write the same history as
// before; a history from before it (workflow.DefaultVersion) was refused at
// validation then, and is refused again the same way.
const WazuhOpenCTIInstanceChange = "wazuh-opencti-instance"

// WazuhOpenCTIInstance is the version of WazuhOpenCTIInstanceChange that relates the
// Wazuh instance to the named OpenCTI instance.
const WazuhOpenCTIInstance workflow.Version = 1
