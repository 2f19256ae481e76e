package openctistandin

import (
	"errors"
	"fmt"
)

// DependencyError reports a failed start-up check; Dependency is the product
// name ("RabbitMQ", "Redis", "Search engine", "File Storage") so callers can tell
// which backing service refused.
type DependencyError struct {
	// Dependency names the service that failed its check.
	Dependency string
	// Err is the client's error (connection refused, ACCESS_REFUSED, 403, ...).
	Err error
}

// Error names the dependency first, since that is what an operator acts on.
func (e *DependencyError) Error() string {
	return fmt.Sprintf("cannot use %s: %v", e.Dependency, e.Err)
}

// Unwrap exposes the client error.
func (e *DependencyError) Unwrap() error { return e.Err }

// ErrIndexAlreadyExists marks a first boot that found indices of a previous,
// interrupted first boot: like OpenCTI, the stand-in stays broken until they are wiped.
var ErrIndexAlreadyExists = errors.New("index already exists: a previous initialization was interrupted, wipe the indices")

// ErrDataTooRecent marks a refused downgrade: the stored platform_version is newer than this binary.
var ErrDataTooRecent = errors.New("cannot start on platform data written by a newer version")

// ErrLockHeld marks a start that could not take platform_init_lock within the wait.
var ErrLockHeld = errors.New("cannot acquire platform_init_lock: held by another platform node")
