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
			"change %s (%s) failed: %s; fix the cause and send a change (a new request id): what this one left undone is done with it",
			c.ID, res.Summary, res.Error)})
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
	// What this plan asks for, plus what a failed change before it left undone.
	owed := w.st.Owed
	planned := func(s string) bool { return slices.Contains(applied.Services, s) }
	stop := union(applied.Removed, slices.DeleteFunc(slices.Clone(owed.Stop), planned))
	start := slices.DeleteFunc(union(applied.Added, owed.Start), func(s string) bool { return slices.Contains(stop, s) })
	platformChanged := slices.Contains(owed.Restart, opencti.PlatformService)
	var workers []string
	for _, ch := range applied.Changed {
		switch {
		case ch.Service == "":
			continue // a check: takes effect without a restart
		case ch.Service == opencti.PlatformService:
			platformChanged = true
		case !slices.Contains(stop, ch.Service):
			workers = append(workers, ch.Service)
		}
		res.Changed = append(res.Changed, ch)
	}
	for _, s := range owed.Restart {
		if s != opencti.PlatformService && planned(s) && !slices.Contains(stop, s) && !slices.Contains(start, s) {
			workers = append(workers, s)
		}
	}
	workers = union(workers, nil)
	// Until each action is done, it is owed: a failure below leaves the rest to the
	// next change, since the container already has this plan.
	w.st.Owed = OwedActions{Restart: slices.Clone(workers), Start: start, Stop: stop}
	if platformChanged {
		w.st.Owed.Restart = append([]string{opencti.PlatformService}, w.st.Owed.Restart...)
	}

	if len(stop) > 0 {
		step(stepStoppingServices, "stopping "+strings.Join(stop, ", "))
		var stopped activities.StopPebbleServicesResult
		err := w.tr.runStep(ctx, stepStoppingServices, pebbleOptions, a.StopPebbleServices,
			activities.StopPebbleServicesInput{Pebble: next.Pebble, Services: stop}, &stopped)
		if err != nil {
			return res, fmt.Errorf("cannot stop %s: %w", strings.Join(stop, ", "), err)
		}
		res.Stopped = stopped.Stopped
		w.st.Owed.Stop = nil
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
		w.st.Owed.Restart = slices.DeleteFunc(w.st.Owed.Restart, func(s string) bool { return s == opencti.PlatformService })
	}
	if len(workers) > 0 {
		step(stepRestartWorkers, "restarting "+strings.Join(workers, ", "))
		if err := w.restart(ctx, next, workers, &res); err != nil {
			return res, err
		}
		w.st.Owed.Restart = nil
	}
	if len(start) > 0 {
		step(stepStartingServices, "starting "+strings.Join(start, ", "))
		var started activities.StartPebbleServicesResult
		err := w.tr.runStep(ctx, stepStartingServices, pebbleOptions, a.StartPebbleServices,
			activities.StartPebbleServicesInput{Pebble: next.Pebble, Services: start}, &started)
		if err != nil {
			return res, fmt.Errorf("cannot start %s: %w", strings.Join(start, ", "), err)
		}
		res.Started = append(res.Started, started.Started...)
	}
	w.st.Owed = OwedActions{}
	w.st.Spec = next
	return res, nil
}

// union returns the sorted names in a or b, each once.
func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
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
