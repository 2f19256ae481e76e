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
