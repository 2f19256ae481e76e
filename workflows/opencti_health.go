package workflows

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/opencti"
)

// stepHealth is the step of a status the health checks set: waiting on a component
// that is down, or blocked on a service they gave up healing.
const stepHealth = "health"

// healthReadOptions: every read of a health check is one attempt with a short bound;
// the next check is the retry.
var healthReadOptions = workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}}

// healRestartOptions: a heal's restart is one attempt (a service that does not start
// is the next check's business, and counts against its limit), bounded by the
// worker's kill-delay.
var healRestartOptions = workflow.ActivityOptions{StartToCloseTimeout: opencti.WorkerKillDelay + time.Minute,
	HeartbeatTimeout: activities.PebbleCallTimeout, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}}

// healthProbeWindow is how long a health check's dependency probe polls: the state
// now, not a wait.
const healthProbeWindow = 2 * time.Second

// The heal policy's defaults (HealPolicy).
const (
	DefaultHealBurst       = 5
	DefaultHealRefillEvery = 2 * time.Minute
	DefaultHealLimit       = 5
	DefaultHealWindow      = 10 * time.Minute
)

// withDefaults fills the policy's unset fields.
func (p HealPolicy) withDefaults() HealPolicy {
	if p.Burst <= 0 {
		p.Burst = DefaultHealBurst
	}
	if p.RefillEvery <= 0 {
		p.RefillEvery = DefaultHealRefillEvery
	}
	if p.Limit <= 0 {
		p.Limit = DefaultHealLimit
	}
	if p.Window <= 0 {
		p.Window = DefaultHealWindow
	}
	return p
}

// checkHealth runs one health check of the instance: every read at once, each one
// attempt with a short bound — the four dependencies, the platform's /health on each
// node, the workers' services, the connectors, and the container's plan against the
// spec's (drift) — then judges each component, heals what it may (healInstance) and
// moves the status between active, waiting (a component down) and blocked (a service
// it gave up healing). It runs between changes, so it never races one.
func (w *instance) checkHealth(ctx workflow.Context, req CheckHealthRequest) HealthReport {
	inst := w.st.Spec
	rep := HealthReport{Instance: inst.Name, RequestID: req.RequestID, CheckedAt: workflow.Now(ctx)}
	if !w.st.Deployed {
		rep.Health, rep.Note = HealthUnknown, "not deployed yet"
		return rep
	}
	if missing := inst.Missing(); len(missing) > 0 {
		rep.Health, rep.Note = HealthDown, "nothing checked: "+missingText(missing)
		return rep
	}
	in := w.healthReadInput()
	reads := w.readHealth(ctx, in)
	w.checkConnectors(ctx)
	rep.Components, rep.Drift = judgeReads(reads, in.Services.Services, w.connectorComponents())
	rep.Health = worstHealth(rep.Components)
	w.healInstance(ctx, &rep, reads.Services.Result)
	w.st.Health = &rep
	w.settleHealth(ctx, rep)
	return rep
}

// judgeReads judges each component by what its read found — a dependency or the first
// node's platform that does not answer is down; a further node, a worker that is not
// active, a connector waiting and a drifted plan are degraded — in the report's order:
// dependencies, platforms, workers, connectors (as given), plans.
func judgeReads(reads activities.ReadOpenCTIHealthResult, workers []string, connectors []ComponentHealth) ([]ComponentHealth, []layer.Change) {
	var out []ComponentHealth
	var drift []layer.Change
	for _, r := range reads.Probes {
		c := ComponentHealth{Name: r.Name, Health: HealthOK, Latency: r.Took, Reason: r.Result.Warning}
		switch {
		case r.Error != "":
			c.Health, c.Reason = HealthDown, r.Error
		case !r.Result.Ready:
			c.Health, c.Reason = HealthDown, r.Result.Reason
		}
		out = append(out, c)
	}
	for i, r := range reads.Platforms {
		c := ComponentHealth{Name: r.Name, Health: HealthOK, Latency: r.Took}
		if reason := cmp.Or(r.Error, r.Result.Reason); reason != "" {
			// The first node down is the platform down; a further one only degrades it.
			c.Health, c.Reason = map[bool]string{true: HealthDown, false: HealthDegraded}[i == 0], reason
		}
		out = append(out, c)
	}
	services := reads.Services
	for _, name := range workers {
		c := ComponentHealth{Name: name, Health: HealthOK, Latency: services.Took}
		st, ok := services.Result.Services[name]
		switch {
		case services.Error != "":
			c.Health, c.Reason = HealthDegraded, "cannot read its state: "+services.Error
		case !ok || st.Current != "active":
			c.Health, c.Reason = HealthDegraded, serviceReason(st)
		}
		out = append(out, c)
	}
	out = append(out, connectors...)
	for _, r := range reads.Plans {
		c := ComponentHealth{Name: r.Name, Health: HealthOK, Latency: r.Took}
		if r.Error != "" {
			c.Health, c.Reason = HealthDegraded, "cannot compare the container's plan: "+r.Error
		} else if d := append(driftOf(r.Result.PebbleLayerChanges), r.Result.FileDrift...); len(d) > 0 {
			c.Health, c.Reason = HealthDegraded, "the container's plan differs from the spec's: "+describeDrift(d)
			if node, ok := strings.CutSuffix(r.Name, "/plan"); ok {
				for i := range d {
					if d[i].Service != "" {
						d[i].Service = node + "/" + d[i].Service
					}
				}
			}
			drift = append(drift, d...)
		}
		out = append(out, c)
	}
	return out, drift
}

// connectorComponents are the connectors as the instance's own connector checks last
// found them.
func (w *instance) connectorComponents() []ComponentHealth {
	var out []ComponentHealth
	for _, cs := range w.connectorStatuses() {
		c := ComponentHealth{Name: connectorService(cs.Name), Health: HealthOK, Reason: cs.Reason}
		if cs.State == ConnectorWaiting {
			c.Health = HealthDegraded
		} else if !cs.LastPing.IsZero() {
			c.Reason = "last ping " + cs.CheckedAt.Sub(cs.LastPing).Round(time.Second).String() + " before the check"
		}
		out = append(out, c)
	}
	return out
}

// healthReads answers HealthReadsQuery.
func (w *instance) healthReads() (HealthReads, error) {
	quiet := w.st.Deployed && w.st.Status.Kind == StatusActive && len(w.st.Queue) == 0 && len(w.st.Spec.Missing()) == 0 &&
		w.st.Health != nil && w.st.Health.Health == HealthOK && len(w.st.Heals.Escalated) == 0 && len(w.st.DownSince) == 0
	if !quiet {
		return HealthReads{}, nil
	}
	return HealthReads{Quiet: true, Input: w.healthReadInput(), Connectors: w.connectorComponents()}, nil
}

// healthReadInput is every read of a health check: the four dependencies, the
// platform's /health on each node, the workers' services, and the container's plan
// against the spec's on each node (drift).
func (w *instance) healthReadInput() activities.ReadOpenCTIHealthInput {
	inst, refs := w.st.Spec, w.st.Secrets
	var in activities.ReadOpenCTIHealthInput
	for _, p := range dependencyProbes(inst) {
		in.Probes = append(in.Probes, activities.NewProbeCall(p.name, p.input(healthProbeWindow)))
	}
	in.Platforms = []activities.Named[activities.CheckOpenCTIHealthInput]{{Name: opencti.PlatformService,
		Input: activities.CheckOpenCTIHealthInput{Instance: inst, HealthAccessKey: refs.HealthAccessKey}}}
	for _, n := range inst.OpenCTI.Nodes {
		in.Platforms = append(in.Platforms, activities.Named[activities.CheckOpenCTIHealthInput]{Name: nodeService(n),
			Input: activities.CheckOpenCTIHealthInput{Instance: inst.OnNode(n), HealthAccessKey: refs.HealthAccessKey}})
	}
	in.Services = activities.ReadPebbleServicesInput{Pebble: inst.Pebble, Services: opencti.WorkerServices(*inst.OpenCTI.Workers), LogLines: 5}
	pushed := *w.st.Pushed
	in.Plans = []activities.Named[activities.ApplyOpenCTIPlanInput]{{Name: "plan",
		Input: activities.ApplyOpenCTIPlanInput{Instance: pushed, Secrets: refs, DryRun: true}}}
	for _, n := range pushed.OpenCTI.Nodes {
		in.Plans = append(in.Plans, activities.Named[activities.ApplyOpenCTIPlanInput]{Name: n.Name + "/plan",
			Input: activities.ApplyOpenCTIPlanInput{Instance: pushed.OnNode(n), Secrets: refs, Node: true, DryRun: true}})
	}
	return in
}

// healthReadLocalOptions: the reads of a check are one local activity, one attempt (the
// next check is the retry), bounded above the slowest read's own bound (a Pebble call).
var healthReadLocalOptions = workflow.LocalActivityOptions{StartToCloseTimeout: activities.PebbleCallTimeout + 15*time.Second,
	RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}}

// readHealth makes the reads of a check: all in one local activity (ReadOpenCTIHealth),
// so that a check costs Temporal no activity task and no extra workflow task — what
// lets one worker check thousands of instances a minute (HealthOneReadChange); checks
// that began before it make one activity per read.
func (w *instance) readHealth(ctx workflow.Context, in activities.ReadOpenCTIHealthInput) activities.ReadOpenCTIHealthResult {
	if workflow.GetVersion(ctx, HealthOneReadChange, workflow.DefaultVersion, HealthOneRead) == workflow.DefaultVersion {
		return readHealthApart(ctx, w.st.Spec, in)
	}
	var res activities.ReadOpenCTIHealthResult
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, healthReadLocalOptions), a.ReadOpenCTIHealth, in).Get(ctx, &res)
	if err != nil {
		// Timed out or the worker failed it: every read is reported with that reason.
		return failedReads(in, ErrorReason(err))
	}
	return res
}

// readHealthApart makes each read as an activity of its own, all at once, timing each
// from its scheduling to its completion: checks recorded before HealthOneReadChange.
func readHealthApart(ctx workflow.Context, inst opencti.Instance, in activities.ReadOpenCTIHealthInput) activities.ReadOpenCTIHealthResult {
	once := workflow.WithActivityOptions(ctx, healthReadOptions)
	type pending struct {
		fut   workflow.Future
		start time.Time
		took  time.Duration
	}
	var all []*pending
	start := func(fn, arg any) *pending {
		p := &pending{fut: workflow.ExecuteActivity(once, fn, arg), start: workflow.Now(ctx)}
		all = append(all, p)
		return p
	}
	var probes, platforms, plans []*pending
	for _, p := range dependencyProbes(inst) {
		probes = append(probes, start(p.fn, p.input(healthProbeWindow)))
	}
	for _, p := range in.Platforms {
		platforms = append(platforms, start(a.CheckOpenCTIHealth, p.Input))
	}
	services := start(a.ReadPebbleServices, in.Services)
	for _, p := range in.Plans {
		plans = append(plans, start(a.ApplyOpenCTIPlan, p.Input))
	}
	sel := workflow.NewSelector(ctx)
	for _, p := range all {
		sel.AddFuture(p.fut, func(workflow.Future) { p.took = workflow.Now(ctx).Sub(p.start) })
	}
	for range all {
		sel.Select(ctx)
	}
	res := activities.ReadOpenCTIHealthResult{Services: readOf(ctx, "workers", services.fut, services.took, activities.ReadPebbleServicesResult{})}
	for i, p := range probes {
		res.Probes = append(res.Probes, readOf(ctx, in.Probes[i].Name, p.fut, p.took, activities.ProbeResult{}))
	}
	for i, p := range platforms {
		res.Platforms = append(res.Platforms, readOf(ctx, in.Platforms[i].Name, p.fut, p.took, activities.CheckOpenCTIHealthResult{}))
	}
	for i, p := range plans {
		res.Plans = append(res.Plans, readOf(ctx, in.Plans[i].Name, p.fut, p.took, activities.ApplyOpenCTIPlanResult{}))
	}
	return res
}

// readOf is a finished read activity's outcome.
func readOf[T any](ctx workflow.Context, name string, fut workflow.Future, took time.Duration, res T) activities.Read[T] {
	r := activities.Read[T]{Name: name, Took: took}
	if err := fut.Get(ctx, &res); err != nil {
		r.Error = ErrorReason(err)
		return r
	}
	r.Result = res
	return r
}

// failedReads reports every read of in as failed for one reason.
func failedReads(in activities.ReadOpenCTIHealthInput, reason string) activities.ReadOpenCTIHealthResult {
	res := activities.ReadOpenCTIHealthResult{Services: activities.Read[activities.ReadPebbleServicesResult]{Name: "workers", Error: reason}}
	for _, p := range in.Probes {
		res.Probes = append(res.Probes, activities.Read[activities.ProbeResult]{Name: p.Name, Error: reason})
	}
	for _, p := range in.Platforms {
		res.Platforms = append(res.Platforms, activities.Read[activities.CheckOpenCTIHealthResult]{Name: p.Name, Error: reason})
	}
	for _, p := range in.Plans {
		res.Plans = append(res.Plans, activities.Read[activities.ApplyOpenCTIPlanResult]{Name: p.Name, Error: reason})
	}
	return res
}

// serviceReason says why a service is not active, with its last lines.
func serviceReason(st activities.ServiceState) string {
	if st.Current == "" {
		st.Current = "missing"
	}
	r := "service " + st.Current
	if !st.Since.IsZero() {
		r += " since " + st.Since.UTC().Format(time.TimeOnly)
	}
	if st.LastLines != "" {
		r += "; last output: " + st.LastLines
	}
	return r
}

// driftOf turns what a dry-run apply found into drift, told from the spec to the
// container (what was changed by hand): a service the apply would add was removed, one
// it would remove was added, and a changed value reads spec -> container.
func driftOf(ch activities.PebbleLayerChanges) []layer.Change {
	flip := map[layer.ChangeKind]layer.ChangeKind{layer.Added: layer.Removed, layer.Removed: layer.Added, layer.Changed: layer.Changed}
	var out []layer.Change
	for _, c := range ch.Changed {
		c.Env = slices.Clone(c.Env)
		for i, e := range c.Env {
			c.Env[i] = layer.EnvChange{Key: e.Key, Kind: flip[e.Kind], Old: e.New, New: e.Old}
		}
		out = append(out, c)
	}
	for _, s := range ch.Added {
		out = append(out, layer.Change{Kind: layer.Removed, Service: s})
	}
	for _, s := range ch.Removed {
		out = append(out, layer.Change{Kind: layer.Added, Service: s})
	}
	return out
}

// describeDrift is the drift on one line: each service and what differs in it.
func describeDrift(d []layer.Change) string {
	parts := make([]string, len(d))
	for i, c := range d {
		parts[i] = c.String()
	}
	return strings.Join(parts, "; ")
}

// worstHealth is the worst of the components' health.
func worstHealth(cs []ComponentHealth) string {
	rank := map[string]int{HealthOK: 0, HealthDegraded: 1, HealthDown: 2}
	worst := HealthOK
	for _, c := range cs {
		if rank[c.Health] > rank[worst] {
			worst = c.Health
		}
	}
	return worst
}

// healInstance heals what the report found, only on an instance that is active or
// waiting on its health (never during a change, never a platform: a platform that does
// not answer may be initialising or migrating, and is left to the waits): a worker or
// connector whose service is not active is restarted; a drifted plan is re-applied as a
// change (ApplySpec of the applied spec), serialised with the others. Each heal takes a
// token of the instance's bucket; one service healed Limit times within Window is not
// restarted again: the instance is blocked with its last output.
func (w *instance) healInstance(ctx workflow.Context, rep *HealthReport, states activities.ReadPebbleServicesResult) {
	h := &w.st.Heals
	for _, c := range rep.Components {
		if _, was := h.Escalated[c.Name]; was && c.Health == HealthOK {
			// Running again (fixed by hand): counted afresh, healed again if it fails.
			delete(h.Escalated, c.Name)
			delete(h.Recent, c.Name)
		}
	}
	if k, step := w.st.Status.Kind, w.st.Status.Step; !(k == StatusActive || k == StatusWaiting && (step == stepHealth || step == stepConnectors)) {
		if rep.Health != HealthOK {
			rep.Note = "nothing healed: the instance is " + string(k) + " (" + w.st.Status.Message + ")"
		}
		return
	}
	pol := w.in.Heal.withDefaults()
	now := workflow.Now(ctx)
	w.refill(now, pol)
	for _, svc := range sortedKeys(h.Recent) {
		h.Recent[svc] = slices.DeleteFunc(h.Recent[svc], func(t time.Time) bool { return now.Sub(t) >= pol.Window })
		if len(h.Recent[svc]) == 0 {
			delete(h.Recent, svc)
		}
	}
	type target struct {
		component, reason string
		restart           func() activities.RestartPebbleServicesInput
	}
	var targets []target
	for _, c := range rep.Components {
		if c.Health == HealthOK {
			continue
		}
		switch {
		case strings.HasPrefix(c.Name, "worker-") && states.Services[c.Name].Current != "" && states.Services[c.Name].Current != "missing":
			name := c.Name
			targets = append(targets, target{name, c.Reason, func() activities.RestartPebbleServicesInput {
				return activities.RestartPebbleServicesInput{Pebble: w.st.Spec.Pebble, Services: []string{name}, Since: now}
			}})
		case strings.HasPrefix(c.Name, "connector-"):
			name := strings.TrimPrefix(c.Name, "connector-")
			cn, ok := w.st.Spec.Connector(name)
			if check, checked := w.st.ConnectorChecks[name]; !ok || !checked || check.Service == "active" {
				continue // registered or pinging late: a restart would not help
			}
			targets = append(targets, target{c.Name, c.Reason, func() activities.RestartPebbleServicesInput {
				return activities.RestartPebbleServicesInput{Pebble: cn.Pebble, Services: []string{opencti.ConnectorService}, Since: now}
			}})
		}
	}
	for _, t := range targets {
		if why, gave := h.Escalated[t.component]; gave {
			rep.Heals = append(rep.Heals, Heal{Component: t.component, Action: "escalated", Reason: why})
			continue
		}
		if n := len(h.Recent[t.component]); n >= pol.Limit {
			why := fmt.Sprintf("%s restarted %d times in %s: %s", t.component, n, pol.Window, t.reason)
			if h.Escalated == nil {
				h.Escalated = map[string]string{}
			}
			h.Escalated[t.component] = why
			rep.Heals = append(rep.Heals, Heal{Component: t.component, Action: "escalated", Reason: why})
			w.countHeal(ctx, "escalated")
			w.logger.Error("heal escalated", "component", t.component, "reason", why)
			continue
		}
		if h.Tokens < 1 {
			rep.Heals = append(rep.Heals, Heal{Component: t.component, Action: "rate-limited", Reason: t.reason})
			w.countHeal(ctx, "rate_limited")
			continue
		}
		h.Tokens--
		heal := Heal{Component: t.component, Action: "restarted", Reason: t.reason}
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, healRestartOptions), a.RestartPebbleServices, t.restart()).Get(ctx, nil)
		if err != nil {
			heal.Error = ErrorReason(err)
			w.countHeal(ctx, "restart_failed")
		} else {
			w.countHeal(ctx, "restarted")
		}
		if h.Recent == nil {
			h.Recent = map[string][]time.Time{}
		}
		h.Recent[t.component] = append(h.Recent[t.component], now)
		rep.Heals = append(rep.Heals, heal)
		w.logger.Warn("healed", "component", t.component, "reason", t.reason, "error", heal.Error)
	}
	if len(rep.Drift) > 0 {
		id := "heal-drift-" + now.UTC().Format("20060102T150405")
		switch {
		case slices.ContainsFunc(w.st.Queue, func(c QueuedChange) bool { return strings.HasPrefix(c.ID, "heal-drift-") }):
		case h.Tokens < 1:
			rep.Heals = append(rep.Heals, Heal{Component: "plan", Action: "rate-limited", Reason: describeDrift(rep.Drift)})
			w.countHeal(ctx, "rate_limited")
		default:
			h.Tokens--
			w.st.Queue = append(w.st.Queue, QueuedChange{ID: id, Via: "health", Kind: ApplySpecUpdate,
				Request: mustJSON(ApplySpecRequest{RequestID: id, Spec: w.st.Spec})})
			rep.Heals = append(rep.Heals, Heal{Component: "plan", Action: "re-applying the plan (change " + id + ")", Reason: describeDrift(rep.Drift)})
			w.countHeal(ctx, "reapplied")
		}
	}
}

// countHeal counts one heal (its action) in MetricHeals.
func (w *instance) countHeal(ctx workflow.Context, action string) {
	countMetric(ctx, MetricHeals, map[string]string{MetricTagApp: AppOpenCTI, MetricTagAction: action})
}

// refill adds the tokens earned since the bucket was last counted.
func (w *instance) refill(now time.Time, pol HealPolicy) {
	h := &w.st.Heals
	if h.At.IsZero() {
		h.Tokens, h.At = float64(pol.Burst), now
		return
	}
	h.Tokens = min(float64(pol.Burst), h.Tokens+float64(now.Sub(h.At))/float64(pol.RefillEvery))
	h.At = now
}

// settleHealth moves the status by the report: waiting on a dependency or platform that
// is down ("redis: connection refused since 10:42"), blocked on a service the checks gave
// up healing, and back to what it would be otherwise once neither holds. A status a
// change or a human must resolve (blocked by something else, maintenance) is left alone.
func (w *instance) settleHealth(ctx workflow.Context, rep HealthReport) {
	now := workflow.Now(ctx)
	down := map[string]time.Time{}
	for _, c := range rep.Components {
		if c.Health == HealthDown {
			since, ok := w.st.DownSince[c.Name]
			if !ok {
				since = now
			}
			down[c.Name] = since
		}
	}
	w.st.DownSince = down
	k, step := w.st.Status.Kind, w.st.Status.Step
	if !(k == StatusActive || step == stepHealth || k == StatusWaiting && step == stepConnectors) {
		return
	}
	if s := w.settled(); s != w.st.Status {
		w.tr.set(ctx, s)
	}
}

// healthStatus is the status the last health check calls for, if any: blocked on the
// services it gave up healing, else waiting on what is down.
func (w *instance) healthStatus() (Status, bool) {
	if len(w.st.Heals.Escalated) > 0 {
		var parts []string
		for _, c := range sortedKeys(w.st.Heals.Escalated) {
			parts = append(parts, w.st.Heals.Escalated[c])
		}
		return Status{Kind: StatusBlocked, Step: stepHealth, Message: strings.Join(parts, "; ") +
			"; fix the cause (its output above, pebble logs), then start it (pebble start) or send a change: socflow heals it again once it runs"}, true
	}
	if w.st.Health == nil || len(w.st.DownSince) == 0 {
		return Status{}, false
	}
	var parts []string
	for _, c := range w.st.Health.Components {
		if since, ok := w.st.DownSince[c.Name]; ok && c.Health == HealthDown {
			parts = append(parts, fmt.Sprintf("%s: %s since %s", c.Name, c.Reason, since.UTC().Format(time.TimeOnly)))
		}
	}
	if len(parts) == 0 {
		return Status{}, false
	}
	return Status{Kind: StatusWaiting, Step: stepHealth, Message: strings.Join(parts, "; ")}, true
}

// answerHealth runs one health check for every request taken in (one check answers all
// that arrived together), records it on the instance's search attributes and tells each
// asker.
func (w *instance) answerHealth(ctx workflow.Context, reqs []CheckHealthRequest) {
	was := ""
	if w.st.Health != nil {
		was = w.st.Health.Health
	}
	rep := w.checkHealth(ctx, reqs[0])
	// Since HealthOneReadChange the attribute is written only when it changes: one
	// visibility write fewer per check of a fleet that stays healthy.
	if rep.Health != was || workflow.GetVersion(ctx, HealthOneReadChange, workflow.DefaultVersion, HealthOneRead) == workflow.DefaultVersion {
		if err := workflow.UpsertTypedSearchAttributes(ctx, SearchAttrHealth.ValueSet(rep.Health)); err != nil {
			w.logger.Warn("cannot record the health search attribute", "error", err)
		}
	}
	w.logger.Info("health checked", "health", rep.Health, "heals", len(rep.Heals))
	for _, r := range reqs {
		if r.ReplyTo == "" {
			continue
		}
		out := rep
		out.RequestID = r.RequestID
		// Fire and forget: an asker that is gone has no report to show.
		workflow.SignalExternalWorkflow(ctx, r.ReplyTo, "", HealthDoneSignal, out)
	}
}

// ensureHealthSchedule creates (or updates) the instance's health schedule once it is
// deployed, on the instance's own task queue (HealthChecksChange).
func (w *instance) ensureHealthSchedule(ctx workflow.Context) {
	if w.st.HealthScheduled || w.in.HealthEvery < 0 || !w.st.Deployed ||
		workflow.GetVersion(ctx, HealthChecksChange, workflow.DefaultVersion, HealthChecks) == workflow.DefaultVersion {
		return
	}
	every := w.in.HealthEvery
	if every == 0 {
		every = DefaultHealthEvery
	}
	name := w.st.Spec.Name
	s := HealthSchedule(name, workflow.GetInfo(ctx).TaskQueueName, every)
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, quickOptions), a.EnsureInstanceSchedule, s).Get(ctx, nil)
	if err != nil {
		w.st.LastReason = "cannot create the health schedule: " + ErrorReason(err)
		w.logger.Warn("cannot create the health schedule", "error", ErrorReason(err))
		return
	}
	w.st.HealthScheduled = true
}

// HealthSchedule is the schedule of an instance's health checks: HealthCheck every
// interval on queue, overlap SKIP. The instance creates it; `starter health schedule`
// creates or changes it the same way.
func HealthSchedule(instance, queue string, every time.Duration) activities.Schedule {
	return activities.Schedule{ID: HealthScheduleID(instance), Every: every, Workflow: HealthCheckWorkflow, WorkflowID: HealthScheduleID(instance),
		Arg: HealthCheckInput{Instance: instance}, TaskQueue: queue, Note: "health checks of OpenCTI instance " + instance + " (socflow)",
		SearchAttributes: map[string]string{SearchAttrInstance.GetName(): instance, SearchAttrApp.GetName(): AppOpenCTI}}
}
