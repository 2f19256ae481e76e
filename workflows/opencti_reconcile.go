package workflows

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/layer"
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
	stepRotating         = "rotating-secret"
	stepReadyCheck       = "updating-health-check"
	stepNodes            = "reconciling-nodes"
)

// apply runs one change's reconcile in maintenance, records its result and returns
// the status to active (blocked while an integration is missing, or naming the
// failure and how to retry).
func (w *instance) apply(ctx workflow.Context, c QueuedChange) {
	res, err := w.reconcile(ctx, c)
	defer w.reply(ctx, c)
	if err != nil && res.Upgrade != nil && res.Upgrade.Outcome == UpgradeRefused {
		// Refused by its pre-flight: nothing changed, the instance serves as before.
		res.Error = operatorReason(err)
		w.st.LastReason = c.ID + ": " + res.Error
		w.record(c, res)
		w.countChange(ctx, c.kind(), "refused")
		w.tr.set(ctx, w.settled())
		return
	}
	if err != nil {
		w.failed(ctx, c, res, err, "fix the cause and send a change (a new request id): what this one left undone is done with it")
		return
	}
	w.applied(ctx, c, res, w.settled())
}

// stepper returns the function a change's steps report with: the status names the
// step and says, in maintenance, what the change (id, summary) is doing.
func (w *instance) stepper(ctx workflow.Context, id, summary string) func(name, doing string) {
	return func(name, doing string) {
		w.tr.set(ctx, Status{Kind: StatusMaintenance, Step: name, Message: fmt.Sprintf("applying %s (%s): %s", id, summary, doing)})
	}
}

// kind is the change's name; changes queued before there were other kinds are SetConfig.
func (c QueuedChange) kind() string {
	if c.Kind == "" {
		return SetConfigUpdate
	}
	return c.Kind
}

// reconcile applies the smallest correct change for c: rotate the secret it names,
// then, with every integration present, push the new plan, stop the services it
// removed, restart the platform if its definition changed and wait until it is
// healthy again (never acting on a platform that initialises: the deploy has finished
// before any change runs), restart the workers whose definition changed (or all, when
// the platform's integration settings did: WorkersFollow), then start the services it
// added. With an integration missing, it stops the workers instead (block).
func (w *instance) reconcile(ctx workflow.Context, c QueuedChange) (ChangeResult, error) {
	base := w.st.Spec
	res := ChangeResult{RequestID: c.ID, Kind: c.kind()}
	// Validated when accepted, against the spec the queue would leave; checked again
	// in case a change before it failed and left another spec.
	ch, err := checkChange(c.kind(), c.Request, base)
	if ch != nil {
		res.Summary = ch.summary(base)
	}
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError(strings.ReplaceAll(err.Error(), "\n", "; "), "InvalidChange", nil)
	}
	if r, ok := ch.(UpgradeRequest); ok {
		return w.upgrade(ctx, c, r, res)
	}
	next := ch.next(base)
	secrets := opencti.SecretTable.WithGiven(&next, w.st.Secrets)
	// The state pending() folds the queue over changes only when the reconcile ends
	// (this change is still queued until then): the generations, and what was pushed
	// with which secrets once the plan is in the container, whether or not the rest
	// succeeds.
	gens := maps.Clone(w.st.Generations)
	var pushed *opencti.Instance
	defer func() {
		w.st.Generations = gens
		if pushed != nil {
			w.st.Pushed, w.st.Secrets = pushed, secrets
		}
	}()
	step := w.stepper(ctx, c.ID, res.Summary)

	if r, ok := ch.(RotateSecretRequest); ok && r.generates(base) {
		step(stepRotating, "generating a new "+r.Secret)
		gen := gens[r.Secret] + 1
		var rot activities.RotateInstanceSecretResult
		err := w.tr.runStep(ctx, stepRotating, quickOptions, a.RotateInstanceSecret,
			activities.RotateInstanceSecretInput{Instance: base.Name, Field: r.Secret, Generation: gen}, &rot)
		if err != nil {
			return res, wrapReason("cannot rotate "+r.Secret, err)
		}
		if gens == nil {
			gens = map[string]int{}
		}
		gens[r.Secret] = gen
		secrets = withSecret(secrets, r.Secret, rot.Ref)
		res.Rotated = []string{r.Secret}
	}
	if missing := next.Missing(); len(missing) > 0 {
		return w.block(ctx, next, secrets, missing, res, step)
	}

	step(stepApplyingPlan, "pushing the new pebble plan")
	var applied activities.ApplyOpenCTIPlanResult
	err = w.tr.runStep(ctx, stepApplyingPlan, pebbleOptions, a.ApplyOpenCTIPlan,
		activities.ApplyOpenCTIPlanInput{Instance: next, Secrets: secrets}, &applied)
	if err != nil {
		return res, wrapReason("cannot push the opencti plan", err)
	}
	pushed = &next
	act := decide(applied.PebbleLayerChanges, applied.Services, w.st.Owed)
	res.Changed = act.changed
	// Until each action is done, it is owed: a failure below leaves the rest to the
	// next change, since the container already has this plan.
	w.st.Owed = OwedActions{Restart: slices.Clone(act.workers), Start: act.start, Stop: act.stop}
	if act.restartPlatform {
		w.st.Owed.Restart = append([]string{opencti.PlatformService}, w.st.Owed.Restart...)
	}

	if len(act.stop) > 0 {
		step(stepStoppingServices, "stopping "+strings.Join(act.stop, ", "))
		if res.Stopped, err = w.stop(ctx, next, act.stop); err != nil {
			return res, err
		}
		w.st.Owed.Stop = nil
	}

	if act.restartPlatform {
		step(stepRestarting, "restarting the platform")
		since := workflow.Now(ctx)
		if err := w.restart(ctx, next, []string{opencti.PlatformService}, true, &res); err != nil {
			return res, err
		}
		step(stepWaitingPlatform, "waiting for the restarted platform to answer /health")
		if err := w.waitStarted(ctx, next, secrets, applied.PlatformDigest, since, c.ID); err != nil {
			return res, err
		}
		if workflow.GetVersion(ctx, ReadyCheckAfterRestartChange, workflow.DefaultVersion, ReadyCheckAfterRestart) != workflow.DefaultVersion {
			// The check's URL carries the port, base path and health key, any of
			// which the change may have moved.
			step(stepReadyCheck, "updating the platform's health check")
			err := w.tr.runStep(ctx, stepReadyCheck, pebbleOptions, a.AddOpenCTIReadyCheck,
				activities.AddOpenCTIReadyCheckInput{Instance: next, HealthAccessKey: secrets.HealthAccessKey}, nil)
			if err != nil {
				return res, fmt.Errorf("cannot update the platform health check: %w", err)
			}
		}
		w.st.Owed.Restart = slices.DeleteFunc(w.st.Owed.Restart, func(s string) bool { return s == opencti.PlatformService })
	}
	if len(base.OpenCTI.Nodes)+len(next.OpenCTI.Nodes) > 0 &&
		workflow.GetVersion(ctx, PlatformNodesChange, workflow.DefaultVersion, PlatformNodes) != workflow.DefaultVersion {
		if err := w.reconcileNodes(ctx, base, next, secrets, &res, step); err != nil {
			return res, err
		}
	}
	if len(act.workers) > 0 {
		step(stepRestartWorkers, "restarting "+strings.Join(act.workers, ", "))
		if err := w.restart(ctx, next, act.workers, false, &res); err != nil {
			return res, err
		}
		w.st.Owed.Restart = nil
	}
	if slices.Contains(act.start, opencti.PlatformService) &&
		workflow.GetVersion(ctx, PlatformFirstChange, workflow.DefaultVersion, PlatformFirst) != workflow.DefaultVersion {
		// The container lost its plan (a restarted Pebble keeps no layer added over its
		// API): the platform starts alone and is waited on, its check re-added, and only
		// then do the workers start — never beside an initialising platform.
		step(stepStartingServices, "starting the platform, which the container no longer ran")
		since := workflow.Now(ctx)
		var started activities.StartPebbleServicesResult
		err := w.tr.runStep(ctx, stepStartingServices, pebbleOptions, a.StartPebbleServices,
			activities.StartPebbleServicesInput{Pebble: next.Pebble, Services: []string{opencti.PlatformService}, Watched: true, Since: since}, &started)
		if err != nil {
			return res, fmt.Errorf("cannot start the platform: %w", err)
		}
		res.Started = append(res.Started, started.Started...)
		step(stepWaitingPlatform, "waiting for the started platform to answer /health")
		if err := w.waitStarted(ctx, next, secrets, applied.PlatformDigest, since, c.ID); err != nil {
			return res, err
		}
		err = w.tr.runStep(ctx, stepReadyCheck, pebbleOptions, a.AddOpenCTIReadyCheck,
			activities.AddOpenCTIReadyCheckInput{Instance: next, HealthAccessKey: secrets.HealthAccessKey}, nil)
		if err != nil {
			return res, fmt.Errorf("cannot add the platform health check: %w", err)
		}
		act.start = slices.DeleteFunc(act.start, func(s string) bool { return s == opencti.PlatformService })
	}
	if len(act.start) > 0 {
		step(stepStartingServices, "starting "+strings.Join(act.start, ", "))
		var started activities.StartPebbleServicesResult
		err := w.tr.runStep(ctx, stepStartingServices, pebbleOptions, a.StartPebbleServices,
			activities.StartPebbleServicesInput{Pebble: next.Pebble, Services: act.start, Since: workflow.Now(ctx)}, &started)
		if err != nil {
			return res, fmt.Errorf("cannot start %s: %w", strings.Join(act.start, ", "), err)
		}
		res.Started = append(res.Started, started.Started...)
	}
	w.st.Owed = OwedActions{}
	if workflow.GetVersion(ctx, ConnectorsChange, workflow.DefaultVersion, Connectors) != workflow.DefaultVersion {
		// Last, on a healthy platform; what it leaves undone is in the records.
		if err := w.reconcileConnectors(ctx, next, secrets, &res, step); err != nil {
			return res, err
		}
	} else if !reflect.DeepEqual(base.Connectors, next.Connectors) {
		// GetVersion answers once per run: a run that reconciled before connectors
		// existed cannot run them, and must not record them as applied.
		return res, temporal.NewNonRetryableApplicationError("connectors: this run of the instance's workflow began before socflow ran connectors, "+
			"so it cannot apply them (the rest of the change is applied): terminate it (tctl workflow terminate --workflow_id opencti/<name>) and start it again "+
			"with its spec (starter deploy -f), which redeploys without touching a running platform, then send the connector change", "ConnectorsUnsupportedInRun", nil)
	}
	w.st.Spec = next
	return res, nil
}

// waitStarted waits until the platform started (or restarted) at since answers /health,
// the status waiting with its reason meanwhile.
func (w *instance) waitStarted(ctx workflow.Context, next opencti.Instance, secrets opencti.InstanceSecrets, digest string, since time.Time, id string) error {
	return waitPlatformHealthy(ctx, activities.WaitOpenCTIHealthyInput{Instance: next, HealthAccessKey: secrets.HealthAccessKey,
		PlatformDigest: digest, Since: since}, "cannot apply "+id, 0,
		func(ctx workflow.Context, pr activities.ProbeResult, err error) {
			if err == nil && !pr.Ready {
				w.st.LastReason = "platform: " + pr.Reason
				w.tr.set(ctx, Status{Kind: StatusWaiting, Step: stepWaitingPlatform, Message: "waiting for the restarted platform: " + pr.Reason})
			}
		})
}

// reconcileNodes brings the further nodes to next, once the first node serves: the
// platforms of nodes next no longer has are stopped, and each node of next gets its
// plan and is started, or restarted when the plan changed its platform, one after
// another, each waited for until healthy.
func (w *instance) reconcileNodes(ctx workflow.Context, base, next opencti.Instance, secrets opencti.InstanceSecrets, res *ChangeResult,
	step func(name, doing string)) error {
	gone := slices.DeleteFunc(slices.Clone(base.OpenCTI.Nodes), func(n opencti.Node) bool {
		return slices.ContainsFunc(next.OpenCTI.Nodes, func(m opencti.Node) bool { return m.Pebble == n.Pebble })
	})
	if len(gone) > 0 {
		step(stepNodes, "stopping the platform of the nodes the spec no longer has")
		stopped, err := stopNodes(ctx, &w.tr, stepNodes, gone)
		res.Stopped = append(res.Stopped, stopped...)
		if err != nil {
			return err
		}
	}
	if len(next.OpenCTI.Nodes) == 0 {
		return nil
	}
	step(stepNodes, "bringing the further nodes to this plan, one after another")
	up, err := bringNodesUp(ctx, &w.tr, stepNodes, next, secrets, false)
	res.Restarted = append(res.Restarted, up.restarted...)
	res.Started = append(res.Started, up.started...)
	return err
}

// block applies a change that leaves an integration missing, as the charm does when
// a relation is broken: the workers are stopped so they do not crash-loop against a
// platform that cannot serve them, and owed a start for when the integration returns;
// the platform is left as it is (stopping it would gain nothing and its restart is
// the slowest step), and no plan is pushed, since none can be computed.
func (w *instance) block(ctx workflow.Context, next opencti.Instance, secrets opencti.InstanceSecrets, missing []string,
	res ChangeResult, step func(name, doing string)) (ChangeResult, error) {
	running := slices.DeleteFunc(opencti.WorkerServices(*w.st.Pushed.OpenCTI.Workers), func(s string) bool {
		return slices.Contains(w.st.Owed.Start, s)
	})
	if len(running) > 0 {
		step(stepStoppingServices, "stopping the workers: "+missingText(missing))
		var err error
		if res.Stopped, err = w.stop(ctx, next, running); err != nil {
			return res, err
		}
		w.st.Owed.Start = union(w.st.Owed.Start, running)
	}
	w.st.Spec, w.st.Secrets = next, secrets
	res.Blocked = missingText(missing)
	return res, nil
}

// actions are what a reconcile does after pushing a plan, in this order.
type actions struct {
	// stop are the services to stop.
	stop []string
	// restartPlatform says whether the platform restarts (and is waited for).
	restartPlatform bool
	// workers are the workers to restart, after the platform when it restarts.
	workers []string
	// start are the services to start.
	start []string
	// changed are the services whose definition changed (checks left out: they take
	// effect without a restart).
	changed []layer.Change
}

// decide turns what pushing a plan changed (ch), the plan's services (planned) and
// what an earlier change left undone (owed) into the reconcile's actions: the one
// rule the reconcile and Preview share.
func decide(ch activities.PebbleLayerChanges, planned []string, owed OwedActions) actions {
	isPlanned := func(s string) bool { return slices.Contains(planned, s) }
	var act actions
	act.stop = union(ch.Removed, slices.DeleteFunc(slices.Clone(owed.Stop), isPlanned))
	stopped := func(s string) bool { return slices.Contains(act.stop, s) }
	act.start = slices.DeleteFunc(union(ch.Added, slices.DeleteFunc(slices.Clone(owed.Start), func(s string) bool { return !isPlanned(s) })), stopped)
	starting := func(s string) bool { return slices.Contains(act.start, s) }
	act.restartPlatform = slices.Contains(owed.Restart, opencti.PlatformService)
	follow := false
	for _, c := range ch.Changed {
		switch {
		case c.Service == "":
			continue
		case c.Service == opencti.PlatformService:
			act.restartPlatform = true
			follow = follow || opencti.WorkersFollow(c)
		case !stopped(c.Service):
			act.workers = append(act.workers, c.Service)
		}
		act.changed = append(act.changed, c)
	}
	for _, s := range owed.Restart {
		if s != opencti.PlatformService && isPlanned(s) && !stopped(s) {
			act.workers = append(act.workers, s)
		}
	}
	if follow {
		for _, s := range planned {
			if s != opencti.PlatformService && !stopped(s) {
				act.workers = append(act.workers, s)
			}
		}
	}
	act.workers = slices.DeleteFunc(union(act.workers, nil), starting)
	return act
}

// union returns the sorted names in a or b, each once.
func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// stop stops services in the instance's container as the stopping-services step and
// returns those that were running.
func (w *instance) stop(ctx workflow.Context, inst opencti.Instance, services []string) ([]string, error) {
	var stopped activities.StopPebbleServicesResult
	err := w.tr.runStep(ctx, stepStoppingServices, pebbleOptions, a.StopPebbleServices,
		activities.StopPebbleServicesInput{Pebble: inst.Pebble, Services: services}, &stopped)
	if err != nil {
		return nil, fmt.Errorf("cannot stop %s: %w", strings.Join(services, ", "), err)
	}
	return stopped.Stopped, nil
}

// restart restarts services through RestartPebbleServices with server retries
// (restartOptions), so a retry after a lost worker waits for the heartbeated change
// instead of restarting them twice; it adds what was restarted or started to res.
// watched: the caller waits for the services afterwards (the platform's health), so a
// start that exits at once is left to Pebble's backoff and that wait.
func (w *instance) restart(ctx workflow.Context, inst opencti.Instance, services []string, watched bool, res *ChangeResult) error {
	var r activities.RestartPebbleServicesResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, restartOptions), a.RestartPebbleServices,
		activities.RestartPebbleServicesInput{Pebble: inst.Pebble, Services: services, Since: workflow.Now(ctx), Watched: watched}).Get(ctx, &r)
	if err != nil {
		return wrapReason("cannot restart "+strings.Join(services, ", "), err)
	}
	res.Restarted = append(res.Restarted, r.Restarted...)
	res.Started = append(res.Started, r.Started...)
	return nil
}

// describe is the result on one line: the change, and what was restarted, started and
// stopped (or that nothing needed to be).
func (r ChangeResult) describe() string {
	var acts []string
	for _, p := range []struct {
		verb  string
		names []string
	}{{"restarted", r.Restarted}, {"started", r.Started}, {"stopped", r.Stopped}, {"unregistered", r.Unregistered},
		{"created user", r.UsersCreated}, {"reactivated user", r.UsersReactivated}, {"deactivated user", r.UsersDeactivated}} {
		if len(p.names) > 0 {
			acts = append(acts, p.verb+" "+strings.Join(p.names, ", "))
		}
	}
	if len(acts) == 0 {
		acts = append(acts, "nothing to restart")
	}
	if len(r.Rotated) > 0 {
		acts = append([]string{"new value for " + strings.Join(r.Rotated, ", ")}, acts...)
	}
	if u := r.Upgrade; u != nil {
		what := u.Outcome
		if u.Reason != "" {
			what += ": " + u.Reason
		}
		if u.Snapshot != "" {
			what += " (snapshot " + u.Snapshot + ")"
		}
		acts = append([]string{what}, acts...)
	}
	if r.Blocked != "" {
		acts = append(acts, "blocked: "+r.Blocked)
	}
	return r.Summary + ": " + strings.Join(acts, "; ")
}
