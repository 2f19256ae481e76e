package workflows

import "github.com/socflow/socflow/internal/codec"

// DeployStatus holds phases, dependency states and reasons, never a secret value (the
// activities' reasons name fields and hosts, not values): it travels unencrypted so an
// operator with only tctl can read `workflow query --query_type status`.
var _ codec.Clear = DeployStatus{}

// ClearPayload marks DeployStatus as readable without the codec server.
func (DeployStatus) ClearPayload() {}

// InstanceStatus holds states, config values that are never secrets (workers, log
// level) and reasons: like DeployStatus it travels unencrypted for tctl.
var _ codec.Clear = InstanceStatus{}

// ClearPayload marks InstanceStatus as readable without the codec server.
func (InstanceStatus) ClearPayload() {}

// Preview names services, environment keys and plain config values; secret values are
// "<secret>" and opencti.env's extra values hidden (opencti.Mask): it travels
// unencrypted so tctl users can preview a change.
var _ codec.Clear = Preview{}

// ClearPayload marks Preview as readable without the codec server.
func (Preview) ClearPayload() {}

// UpgradeStatus holds versions, phases, findings and a snapshot's name: like
// DeployStatus it travels unencrypted for tctl.
var _ codec.Clear = UpgradeStatus{}

// ClearPayload marks UpgradeStatus as readable without the codec server.
func (UpgradeStatus) ClearPayload() {}

// UpgradeResult holds the same as UpgradeStatus and the outcome: a tctl user who
// started UpgradeOpenCTI reads it without the codec.
var _ codec.Clear = UpgradeResult{}

// ClearPayload marks UpgradeResult as readable without the codec server.
func (UpgradeResult) ClearPayload() {}

// HealthReport names components, their states and reasons, drift with secret values
// masked, and the last lines of a service that does not run (what OpenCTI's workers and
// connectors log, never their tokens): it travels unencrypted so tctl users read a
// HealthCheck's result and status, and the fleet view reads it without the codec.
var _ codec.Clear = HealthReport{}

// ClearPayload marks HealthReport as readable without the codec server.
func (HealthReport) ClearPayload() {}

// DeployWazuhResult holds names, states and secret references, never values: a tctl
// user who started DeployWazuh reads it without the codec.
var _ codec.Clear = DeployWazuhResult{}

// ClearPayload marks DeployWazuhResult as readable without the codec server.
func (DeployWazuhResult) ClearPayload() {}

// WazuhInstanceStatus holds states, node names and reasons: like InstanceStatus it
// travels unencrypted for tctl.
var _ codec.Clear = WazuhInstanceStatus{}

// ClearPayload marks WazuhInstanceStatus as readable without the codec server.
func (WazuhInstanceStatus) ClearPayload() {}
