package openctistandin

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/minio/minio-go/v7"
)

// OpenCTI's error types (config/errors.js), the errors[0].name of an error log
// line and of a GraphQL error; supervisors and pycti branch on them.
const (
	// DatabaseErrorName is a backing service that failed (search, RabbitMQ, Redis).
	DatabaseErrorName = "DATABASE_ERROR"
	// ConfigurationErrorName is a refused configuration or data state.
	ConfigurationErrorName = "CONFIGURATION_ERROR"
	// LockErrorName is a lock that could not be taken in time.
	LockErrorName = "LOCK_ERROR"
	// UnsupportedErrorName is a refused operation, such as a downgrade.
	UnsupportedErrorName = "UNSUPPORTED_ERROR"
)

// Error is an OpenCTI typed error: a Name from the constants above, OpenCTI's
// message word for word, and the attributes OpenCTI attaches.
type Error struct {
	// Name is the error type (DATABASE_ERROR, ...).
	Name string
	// Message is OpenCTI's text, so runbooks written for it apply.
	Message string
	// Data holds extra attributes (currentVersion, participantIds, ...).
	Data map[string]any
	// Cause is the underlying client error, if any.
	Cause error
	// kind lets callers use errors.Is with the package's sentinels.
	kind error
}

// Error returns the message, with the cause when there is one.
func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Name, e.Message, e.Cause)
	}
	return e.Name + ": " + e.Message
}

// Unwrap exposes the cause and the sentinel.
func (e *Error) Unwrap() []error {
	var out []error
	for _, err := range []error{e.Cause, e.kind} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// attributes are what OpenCTI logs beside the name: genre and HTTP status first.
func (e *Error) attributes() map[string]any {
	genre, status := "TECHNICAL", 500
	switch e.Name {
	case ConfigurationErrorName, UnsupportedErrorName:
		genre = "BUSINESS"
	}
	attrs := map[string]any{"genre": genre, "http_status": status}
	for k, v := range e.Data {
		attrs[k] = v
	}
	return attrs
}

func newError(name, message string, cause error, kind error, data map[string]any) *Error {
	return &Error{Name: name, Message: message, Cause: cause, kind: kind, Data: data}
}

// DependencyError reports a failed start-up check; Dependency is the product
// name ("RabbitMQ", "Redis", "Search engine", "File storage", "Python") so callers
// can tell which backing service refused.
type DependencyError struct {
	// Dependency names the service that failed its check.
	Dependency string
	// Err is what OpenCTI reports: a DATABASE_ERROR *Error, or for file storage
	// the raw S3 error as OpenCTI passes it through.
	Err error
}

// Error names the dependency first, since that is what an operator acts on.
func (e *DependencyError) Error() string {
	return fmt.Sprintf("cannot use %s: %v", e.Dependency, e.Err)
}

// Unwrap exposes the reported error.
func (e *DependencyError) Unwrap() error { return e.Err }

// ErrIndexAlreadyExists marks a first boot that found indices of a previous,
// interrupted first boot: like OpenCTI, the stand-in stays broken until they are wiped.
var ErrIndexAlreadyExists = errors.New("index already exists: a previous initialization was interrupted, wipe the indices")

// ErrDataTooRecent marks a refused downgrade: the stored platformVersion is newer than this binary.
var ErrDataTooRecent = errors.New("cannot start on platform data written by a newer version")

// ErrLockHeld marks a start that could not take platform_init_lock within the retry time.
var ErrLockHeld = errors.New("cannot acquire platform_init_lock: held by another platform node")

// ErrInvalidToken marks an APP__ADMIN__TOKEN that is not a UUID.
var ErrInvalidToken = errors.New("cannot use APP__ADMIN__TOKEN: not a UUID")

// errorEntries flattens err into OpenCTI's "errors" log attribute: the typed
// error first, then its causes, so errors[0].name is what a supervisor reads.
func errorEntries(err error) []map[string]any {
	var out []map[string]any
	for err != nil {
		var de *DependencyError
		if errors.As(err, &de) && de == err {
			err = de.Err
			continue
		}
		if e, ok := err.(*Error); ok {
			out = append(out, map[string]any{"name": e.Name, "message": e.Message, "attributes": e.attributes()})
			err = e.Cause
			continue
		}
		out = append(out, map[string]any{"name": rawName(err), "message": err.Error()})
		break
	}
	return out
}

// rawName is the name a raw client error carries in node: an S3 error its code,
// anything else "Error".
func rawName(err error) string {
	if resp := minio.ToErrorResponse(err); resp.Code != "" {
		return resp.Code
	}
	return "Error"
}

// logFailure writes OpenCTI's one error line for a failed start: message is the
// platform-level text, errors[] the typed error and its causes.
func logFailure(log *slog.Logger, message string, err error) {
	log.Error(message, "errors", errorEntries(err))
}
