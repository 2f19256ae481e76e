package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// The status model every socflow workflow shares (an OpenCTI deploy today, an instance
// entity or a Wazuh deploy later): the charm's four states, the step in progress and,
// while a step is retried, its attempt and last error. Nothing here knows an app.

// StatusKind is the state of a workflow's instance, as a charm reports it.
type StatusKind string

// The four states a status can be in.
const (
	// StatusMaintenance: socflow is working on the instance; the message says on what.
	StatusMaintenance StatusKind = "maintenance"
	// StatusWaiting: socflow waits for something outside its control (a dependency, the
	// platform, a step's next attempt); the message says for what and why.
	StatusWaiting StatusKind = "waiting"
	// StatusBlocked: the workflow stopped on a fault it cannot get past; the message says
	// what a human must do.
	StatusBlocked StatusKind = "blocked"
	// StatusActive: the work is done and the instance is serving.
	StatusActive StatusKind = "active"
)

// Status is where a workflow's instance stands: its state, a message for a human, the
// step it is on and, while that step is being retried, which attempt and why.
type Status struct {
	// Kind is maintenance, waiting, blocked or active.
	Kind StatusKind `json:"kind"`
	// Message is what is in progress (maintenance), what is awaited and why (waiting),
	// what a human must do (blocked) or what is serving (active).
	Message string `json:"message,omitempty"`
	// Step is the step in progress, or the step that failed when blocked.
	Step string `json:"step,omitempty"`
	// Attempt is the attempt of Step that is running or about to run; 2 or more while
	// the step is being retried, 0 otherwise.
	Attempt int `json:"attempt,omitempty"`
	// LastError is the reason the previous attempt of Step failed, while it is retried.
	LastError string `json:"lastError,omitempty"`
	// NextAttemptAt is when Attempt starts, while the workflow waits for it.
	NextAttemptAt time.Time `json:"nextAttemptAt,omitzero"`
}

// Retrying reports whether Step is being retried after a failed attempt.
func (s Status) Retrying() bool { return s.Attempt > 1 }

// String is the status on one line, as the starter prints it ("waiting: retrying …").
func (s Status) String() string {
	line := string(s.Kind)
	if s.Message != "" {
		line += ": " + s.Message
	}
	return line
}

// tracker keeps a workflow's Status: every change is published (the Web UI's current
// details, through publish), and, when keyed, a change of kind is mirrored into the
// SocflowStatus search attribute. Workflows that began before StepStatusChange are
// not keyed and run their short steps with server retries, as they did.
type tracker struct {
	st         *Status
	lastReason *string // the workflow's latest reason, if it keeps one; a retried step sets it
	keyed      bool
	upserted   StatusKind
	publish    func(workflow.Context)
	logger     log.Logger
	// gaugeApp and gaugeInstance, when set, name the instance whose MetricInstanceStatus
	// every status set updates (entity workflows only: a deploy's status is not the
	// instance's).
	gaugeApp, gaugeInstance string
}

// set replaces the status and publishes it, upserting extra search attributes with
// SocflowStatus in one command when its kind changed.
func (t *tracker) set(ctx workflow.Context, s Status, extra ...temporal.SearchAttributeUpdate) {
	*t.st = s
	if t.keyed && s.Kind != t.upserted {
		extra = append(extra, SearchAttrStatus.ValueSet(string(s.Kind)))
		t.upserted = s.Kind
	}
	if len(extra) > 0 {
		_ = workflow.UpsertTypedSearchAttributes(ctx, extra...)
	}
	if t.gaugeInstance != "" {
		recordInstanceStatus(ctx, t.gaugeApp, t.gaugeInstance, s.Kind)
	}
	t.publish(ctx)
}

// stepRetry is how a short step is bounded and retried, read from the activity options
// it always had (quickOptions, pebbleOptions, graphqlOptions), so that moving its
// retries from the server into the workflow changes nothing but what the status shows.
type stepRetry struct {
	initial, maxInterval time.Duration
	coefficient          float64
	maxAttempts          int
	bound                time.Duration // overall, from the first attempt's schedule (0: none)
	nonRetryable         []string
}

// stepRetryOf reads the retry policy and overall bound of opts, with the server's
// defaults for unset fields.
func stepRetryOf(opts workflow.ActivityOptions) stepRetry {
	r := stepRetry{initial: time.Second, coefficient: 2, bound: opts.ScheduleToCloseTimeout}
	if p := opts.RetryPolicy; p != nil {
		if p.InitialInterval > 0 {
			r.initial = p.InitialInterval
		}
		if p.BackoffCoefficient > 0 {
			r.coefficient = p.BackoffCoefficient
		}
		r.maxInterval, r.maxAttempts, r.nonRetryable = p.MaximumInterval, int(p.MaximumAttempts), p.NonRetryableErrorTypes
	}
	if r.maxInterval <= 0 {
		r.maxInterval = 100 * r.initial
	}
	return r
}

// backoff is the wait after the failed attempt n (1-based), as the server computes it.
func (r stepRetry) backoff(n int) time.Duration {
	d := float64(r.initial)
	for range n - 1 {
		d *= r.coefficient
		if d >= float64(r.maxInterval) {
			return r.maxInterval
		}
	}
	return min(time.Duration(d), r.maxInterval)
}

// runStep runs one short activity of step (fn with in, result into out, nil for
// none). Keyed workflows run each attempt with server retries off and retry in the
// workflow, with opts' backoff and overall bound, so that before each wait the status
// names the step, the next attempt and the last error; a non-retryable error ends it
// at once. Unkeyed workflows (begun before StepStatusChange) let the server retry.
func (t *tracker) runStep(ctx workflow.Context, step string, opts workflow.ActivityOptions, fn, in, out any) error {
	if !t.keyed {
		return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), fn, in).Get(ctx, out)
	}
	r := stepRetryOf(opts)
	first := workflow.Now(ctx)
	before := *t.st
	for attempt := 1; ; attempt++ {
		o := opts
		o.RetryPolicy = &temporal.RetryPolicy{MaximumAttempts: 1}
		if r.bound > 0 {
			// The attempt may not outlive the step's bound, as with server retries.
			o.ScheduleToCloseTimeout = first.Add(r.bound).Sub(workflow.Now(ctx))
		}
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), fn, in).Get(ctx, out)
		if err == nil {
			if attempt > 1 {
				t.set(ctx, before)
			}
			return nil
		}
		if !r.retryable(err) {
			return err
		}
		exhausted := func(reason string) error {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: still failing after %d attempts in %s: %s",
				step, attempt, workflow.Now(ctx).Sub(first).Round(time.Second), reason), ErrTypeRetriesExhausted, nil)
		}
		if isScheduleToClose(err) {
			// The last attempt ran into the step's bound.
			return exhausted(cmp.Or(t.st.LastError, operatorReason(err)))
		}
		reason := operatorReason(err)
		wait := r.backoff(attempt)
		next := workflow.Now(ctx).Add(wait)
		if (r.maxAttempts > 0 && attempt >= r.maxAttempts) || (r.bound > 0 && !next.Before(first.Add(r.bound))) {
			return exhausted(reason)
		}
		if t.lastReason != nil {
			*t.lastReason = step + ": " + reason
		}
		t.logger.Warn("step failed; retrying", "step", step, "attempt", attempt, "wait", wait, "error", reason)
		t.set(ctx, Status{Kind: StatusWaiting, Step: step, Attempt: attempt + 1, LastError: reason, NextAttemptAt: next,
			Message: fmt.Sprintf("retrying %s (attempt %d): %s", step, attempt+1, reason)})
		if err := workflow.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// retryable reports whether the server would have retried err: not a non-retryable
// application error (or one of the policy's non-retryable types), not a cancellation.
func (r stepRetry) retryable(err error) bool {
	var app *temporal.ApplicationError
	if errors.As(err, &app) && (app.NonRetryable() || slices.Contains(r.nonRetryable, app.Type())) {
		return false
	}
	return !temporal.IsCanceledError(err)
}

// isScheduleToClose reports an attempt that ran out of the step's overall bound.
func isScheduleToClose(err error) bool {
	var timeout *temporal.TimeoutError
	return errors.As(err, &timeout) && timeout.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE
}

// operatorReason is err's text with each activity's SDK wrapping ("activity error
// (type: …, scheduledEventID: …)") replaced by its reason, keeping the workflow's own
// context ("cannot ensure the s3 bucket: …") around it.
func operatorReason(err error) string {
	var act *temporal.ActivityError
	if errors.As(err, &act) {
		return strings.Replace(err.Error(), act.Error(), ErrorReason(act), 1)
	}
	var child *temporal.ChildWorkflowExecutionError
	if errors.As(err, &child) {
		return strings.Replace(err.Error(), child.Error(), ErrorReason(child), 1)
	}
	// The workflow's own application errors: their message, without the SDK's
	// "(type: …, retryable: …)", which says nothing an operator acts on.
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Error() == err.Error() {
		return app.Message()
	}
	return err.Error()
}
