// Package activities holds socflow's Temporal activities: idempotent steps that talk to
// one external system each (one file per system), with explicit timeouts and permanent
// faults returned as non-retryable errors of a stable type.
package activities

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/spec"
)

// Activities is registered once per worker; its methods are the activities. Workflows
// call them through a nil *Activities, so method names are unique across all systems.
type Activities struct {
	// Secrets resolves secret references and stores generated instance secrets.
	Secrets *secrets.Store
	// HTTP is used for RabbitMQ's management API, OpenCTI health and GraphQL; nil means
	// a client with DefaultCallTimeout.
	HTTP *http.Client
	// ProbeInterval is the pause between two attempts of a readiness probe (default
	// DefaultProbeInterval).
	ProbeInterval time.Duration
	// Temporal is the worker's client, for the activities that manage schedules (nil:
	// they fail as misconfigured).
	Temporal client.Client
}

// DefaultCallTimeout bounds one call to an external system, so a hung peer costs one
// attempt, not the whole activity.
const DefaultCallTimeout = 5 * time.Second

// DefaultProbeInterval is the pause between probe attempts: the time from a dependency
// (or the platform) becoming ready to the deploy moving on is at most this, and a probe
// of a local endpoint twice a second costs nothing next to a first boot.
const DefaultProbeInterval = 500 * time.Millisecond

// DefaultProbeWindow is how long one probe activity polls before it hands the latest
// reason back to the workflow, which records it and probes again.
const DefaultProbeWindow = 30 * time.Second

// Error types of permanent faults; workflows and tests branch on these, never on text.
const (
	ErrTypeAuthFailed        = "AuthFailed"        // credentials refused: a human must fix them
	ErrTypeVersionTooOld     = "VersionTooOld"     // below OpenCTI's documented minimum
	ErrTypeSecretUnavailable = "SecretUnavailable" // a reference points at nothing
	ErrTypeInvalidInput      = "InvalidInput"      // input the activity cannot act on
	ErrTypeHealthKeyRejected = "HealthKeyRejected" // OpenCTI answered 401 to the health key
	ErrTypeVersionMismatch   = "VersionMismatch"   // the platform runs another version than asked
	ErrTypeBadConfig         = "BadConfig"         // the target system refuses the configuration
	ErrTypeContainerOwned    = "ContainerOwned"    // the container runs another instance
	ErrTypePlatformFailed    = "PlatformFailed"    // the platform fails at every start; restarting cannot fix it
	ErrTypeForeignPlatform   = "ForeignPlatform"   // the running platform was started from another plan
	ErrTypeHostKeyRejected   = "HostKeyRejected"   // an SSH server offered a host key other than the pinned one
)

// permanent returns err as the OUTERMOST non-retryable error: the SDK only looks at the
// outermost error, so wrapping it again afterwards would make it retry. The message
// already carries err's text, so err is not attached again as a cause (it would repeat
// the same sentence in every failure the operator reads).
func permanent(errType string, err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), errType, nil)
}

// ProbeResult is what a readiness probe learned: ready or not, with the latest concrete
// reason an operator can act on.
type ProbeResult struct {
	// Dependency names what was probed (opensearch, rabbitmq, redis, s3, opencti).
	Dependency string `json:"dependency"`
	// Ready is true once the dependency answered as OpenCTI needs it.
	Ready bool `json:"ready"`
	// Reason is the latest reason it is not ready ("connection refused", "cluster red").
	Reason string `json:"reason,omitempty"`
	// Version is the dependency's version when known.
	Version string `json:"version,omitempty"`
	// Warning notes something acceptable but worth knowing (a version below the
	// documented minimum that the spec allows).
	Warning string `json:"warning,omitempty"`
	// Attempts counts the probe attempts of this activity run.
	Attempts int `json:"attempts"`
	// Migration are the signs of life of a platform that is migrating, with its port
	// closed (WaitOpenCTIHealthy only; nil otherwise).
	Migration *MigrationSigns `json:"migration,omitempty"`
}

// ProbeWindow bounds one probe activity run: zero means DefaultProbeWindow.
type ProbeWindow struct {
	// Window is how long to poll before returning a not-ready result.
	Window time.Duration `json:"window,omitempty"`
}

// attempt is one probe try: ready, or the reason it is not; a permanent error ends
// the probe at once.
type attempt func(ctx context.Context) (version string, err error)

// errPermanent marks an attempt error that no amount of waiting will fix.
type errPermanent struct {
	errType string
	err     error
}

func (e *errPermanent) Error() string { return e.err.Error() }
func (e *errPermanent) Unwrap() error { return e.err }

// poll runs try every interval until it succeeds, fails permanently, the window ends or
// ctx is done; it heartbeats the latest reason so the Web UI and `describe` show it.
// Each try is bounded by DefaultCallTimeout.
func (a *Activities) poll(ctx context.Context, dependency string, window time.Duration, try attempt) (ProbeResult, error) {
	return a.pollWith(ctx, dependency, window, DefaultCallTimeout, try)
}

// heartbeatEvery keeps a probe's heartbeat fresh while one try is slower than the
// activity's heartbeat timeout allows (a /health that answers after 15 s).
const heartbeatEvery = 5 * time.Second

// pollWith is poll with another bound on each try.
func (a *Activities) pollWith(ctx context.Context, dependency string, window, callTimeout time.Duration, try attempt) (ProbeResult, error) {
	if window <= 0 {
		window = DefaultProbeWindow
	}
	interval := a.ProbeInterval
	if interval <= 0 {
		interval = DefaultProbeInterval
	}
	res := ProbeResult{Dependency: dependency}
	deadline := time.Now().Add(window)
	for {
		res.Attempts++
		callCtx, cancel := context.WithTimeout(ctx, callTimeout)
		stopBeat := beatWhile(callCtx, res)
		began := time.Now()
		version, err := try(callCtx)
		recordProbe(ctx, dependency, time.Since(began), err == nil)
		stopBeat()
		cancel()
		if err == nil {
			res.Ready, res.Reason, res.Version = true, "", version
			return res, nil
		}
		var perm *errPermanent
		if errors.As(err, &perm) {
			return res, permanent(perm.errType, err)
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		res.Reason = err.Error()
		recordHeartbeat(ctx, res)
		if time.Now().Add(interval).After(deadline) {
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-workerStopping(ctx):
			// A draining worker hands the wait back now, as if the window had ended:
			// the workflow records the reason and its next probe runs on a worker that
			// stays, instead of this one being cancelled at the stop timeout and
			// retried as a failed attempt.
			return res, nil
		case <-time.After(interval):
		}
	}
}

// workerStopping is closed once the worker running this activity begins a graceful
// stop (never, outside an activity).
func workerStopping(ctx context.Context) <-chan struct{} {
	if !activity.IsActivity(ctx) {
		return nil
	}
	return activity.GetWorkerStopChannel(ctx)
}

// beatWhile heartbeats the last result (or any progress details) every heartbeatEvery
// until stop is called, so one slow try does not look like a lost worker.
func beatWhile(ctx context.Context, last any) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				recordHeartbeat(ctx, last)
			}
		}
	}()
	return func() { close(done) }
}

// recordHeartbeat heartbeats when running as an activity; plain calls (tests, tools) skip it.
// MetricProbeLatency times each attempt of a dependency probe, tagged dependency and
// outcome (ready, not_ready); served as socflow_probe_latency_seconds (a histogram)
// beside the SDK's metrics. workflows.MetricProbeLatency names it for the contract.
const MetricProbeLatency = "socflow_probe_latency"

// recordProbe times one probe attempt in the activity's metrics handler (nothing
// outside an activity, as in the tests that call probes directly).
func recordProbe(ctx context.Context, dependency string, d time.Duration, ready bool) {
	if !activity.IsActivity(ctx) {
		return
	}
	outcome := "ready"
	if !ready {
		outcome = "not_ready"
	}
	activity.GetMetricsHandler(ctx).WithTags(map[string]string{"dependency": dependency, "outcome": outcome}).
		Timer(MetricProbeLatency).Record(d)
}

func recordHeartbeat(ctx context.Context, details ...any) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, details...)
	}
}

// resolve reads a secret reference, classifying a missing one as permanent: retrying
// does not make a file or variable appear on the worker.
func (a *Activities) resolve(field string, ref spec.SecretRef) (string, error) {
	v, err := a.Secrets.Resolve(ref)
	if err != nil {
		if errors.Is(err, secrets.ErrNotFound) {
			return "", &errPermanent{ErrTypeSecretUnavailable, errors.New(field + ": " + err.Error())}
		}
		return "", errors.New(field + ": " + err.Error())
	}
	return v, nil
}

// classify turns an internal error into the error an activity returns: permanent ones
// become non-retryable ApplicationErrors, the rest stay retryable.
func classify(err error) error {
	var perm *errPermanent
	if errors.As(err, &perm) {
		return permanent(perm.errType, err)
	}
	return err
}

func (a *Activities) httpClient() *http.Client {
	if a.HTTP != nil {
		return a.HTTP
	}
	return &http.Client{Timeout: DefaultCallTimeout}
}
