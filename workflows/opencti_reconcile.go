package workflows

import (
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/opencti"
)

// The steps of a reconcile, as the status names them.
const (
	stepApplyingPlan     = "applying-plan"
	stepStoppingServices = "stopping-services"
	stepRestarting       = "restarting-platform"
	stepWaitingPlatform  = "waiting-platform"
	stepRestartWorkers   = "restarting-workers"
	stepStartingServices = "starting-services"
)

// apply runs one change's reconcile in maintenance, records its result and returns
// the status to active (or blocked, naming the failure and how to retry).
func (w *instance) apply(ctx workflow.Context, c QueuedChange) {
	res, err := w.reconcile(ctx, c)
	if err != nil {
		res.Error = operatorReason(err)
		w.st.LastReason = c.ID + ": " + res.Error
		w.logger.Error("change failed", "requestId", c.ID, "error", res.Error)
		w.record(c, res)
		w.tr.set(ctx, Status{Kind: StatusBlocked, Step: w.st.Status.Step, Message: fmt.Sprintf(
			"change %s (%s) failed: %s; fix the cause and send the change again with a new request id", c.ID, res.Summary, res.Error)})
		return
	}
	w.logger.Info("change applied", "requestId", c.ID, "result", res.describe())
	w.record(c, res)
	w.tr.set(ctx, w.active())
}

// reconcile applies the smallest correct change for c: push the new plan, stop the
// services it removed, restart the platform if its definition changed and wait until
// it is healthy again (never acting on a platform that initialises: the deploy has
// finished before any change runs), restart the workers whose definition changed, then
// start the services it added.
func (w *instance) reconcile(ctx workflow.Context, c QueuedChange) (SetConfigResult, error) {
	next := c.Request.applyTo(w.st.Spec)
	res := SetConfigResult{RequestID: c.ID, Summary: c.Request.summary(w.st.Spec)}
	step := func(name, doing string) {
		w.tr.set(ctx, Status{Kind: StatusMaintenance, Step: name, Message: fmt.Sprintf("applying %s (%s): %s", c.ID, res.Summary, doing)})
	}

	step(stepApplyingPlan, "pushing the new pebble plan")
	var applied activities.ApplyOpenCTIPlanResult
	err := w.tr.runStep(ctx, stepApplyingPlan, pebbleOptions, a.ApplyOpenCTIPlan,
		activities.ApplyOpenCTIPlanInput{Instance: next, Secrets: w.st.Secrets}, &applied)
	if err != nil {
		return res, wrapReason("cannot push the opencti plan", err)
	}
	platformChanged := false
	var workers []string
	for _, ch := range applied.Changed {
		switch {
		case ch.Service == "":
			continue // a check: takes effect without a restart
		case ch.Service == opencti.PlatformService:
			platformChanged = true
		case !slices.Contains(applied.Removed, ch.Service):
			workers = append(workers, ch.Service)
		}
		res.Changed = append(res.Changed, ch)
	}
	slices.Sort(workers)

	if len(applied.Removed) > 0 {
		step(stepStoppingServices, "stopping "+strings.Join(applied.Removed, ", "))
		var stopped activities.StopPebbleServicesResult
		err := w.tr.runStep(ctx, stepStoppingServices, pebbleOptions, a.StopPebbleServices,
			activities.StopPebbleServicesInput{Pebble: next.Pebble, Services: applied.Removed}, &stopped)
		if err != nil {
			return res, fmt.Errorf("cannot stop %s: %w", strings.Join(applied.Removed, ", "), err)
		}
		res.Stopped = stopped.Stopped
	}

	if platformChanged {
		step(stepRestarting, "restarting the platform")
		since := workflow.Now(ctx)
		if err := w.restart(ctx, next, []string{opencti.PlatformService}, &res); err != nil {
			return res, err
		}
		step(stepWaitingPlatform, "waiting for the restarted platform to answer /health")
		err := waitPlatformHealthy(ctx, activities.WaitOpenCTIHealthyInput{Instance: next, HealthAccessKey: w.st.Secrets.HealthAccessKey,
			PlatformDigest: applied.PlatformDigest, Since: since}, "cannot apply "+c.ID,
			func(ctx workflow.Context, pr activities.ProbeResult, err error) {
				if err == nil && !pr.Ready {
					w.st.LastReason = "platform: " + pr.Reason
					w.tr.set(ctx, Status{Kind: StatusWaiting, Step: stepWaitingPlatform, Message: "waiting for the restarted platform: " + pr.Reason})
				}
			})
		if err != nil {
			return res, err
		}
	}
	if len(workers) > 0 {
		step(stepRestartWorkers, "restarting "+strings.Join(workers, ", "))
		if err := w.restart(ctx, next, workers, &res); err != nil {
			return res, err
		}
	}
	if len(applied.Added) > 0 {
		step(stepStartingServices, "starting "+strings.Join(applied.Added, ", "))
		var started activities.StartPebbleServicesResult
		err := w.tr.runStep(ctx, stepStartingServices, pebbleOptions, a.StartPebbleServices,
			activities.StartPebbleServicesInput{Pebble: next.Pebble, Services: applied.Added}, &started)
		if err != nil {
			return res, fmt.Errorf("cannot start %s: %w", strings.Join(applied.Added, ", "), err)
		}
		res.Started = append(res.Started, started.Started...)
	}
	w.st.Spec = next
	return res, nil
}

// restart restarts services through RestartPebbleServices with server retries
// (restartOptions), so a retry after a lost worker waits for the heartbeated change
// instead of restarting them twice; it adds what was restarted or started to res.
func (w *instance) restart(ctx workflow.Context, inst opencti.Instance, services []string, res *SetConfigResult) error {
	var r activities.RestartPebbleServicesResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, restartOptions), a.RestartPebbleServices,
		activities.RestartPebbleServicesInput{Pebble: inst.Pebble, Services: services}).Get(ctx, &r)
	if err != nil {
		return wrapReason("cannot restart "+strings.Join(services, ", "), err)
	}
	res.Restarted = append(res.Restarted, r.Restarted...)
	res.Started = append(res.Started, r.Started...)
	return nil
}

// describe is the result on one line: the change, and what was restarted, started and
// stopped (or that nothing needed to be).
func (r SetConfigResult) describe() string {
	var acts []string
	for _, p := range []struct {
		verb  string
		names []string
	}{{"restarted", r.Restarted}, {"started", r.Started}, {"stopped", r.Stopped}} {
		if len(p.names) > 0 {
			acts = append(acts, p.verb+" "+strings.Join(p.names, ", "))
		}
	}
	if len(acts) == 0 {
		acts = append(acts, "nothing to restart")
	}
	return r.Summary + ": " + strings.Join(acts, "; ")
}
