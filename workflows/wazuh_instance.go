package workflows

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/wazuh"
)

// WazuhInstance is one Wazuh instance's entity workflow (ID WazuhInstanceWorkflowID),
// on the instance machinery OpenCTIInstance uses (entity): it deploys the instance
// through DeployWazuh as a child, then applies its changes one at a time — ApplySpec
// (config, secrets, indexer, OpenCTI integration, nodes added or removed) and
// Reconcile — each as a DeployWazuh run, which restarts only what changed. A failed
// deploy or change leaves it Blocked with the reason and waiting for the change that
// fixes it, never ended. Its health schedule's checks send it their report when it
// differs from the last one: a worker that cannot join (another cluster key) blocks
// the instance with the cluster logs' words, a check that finds it fixed makes it
// Active again.
func WazuhInstance(ctx workflow.Context, in WazuhInstanceInput) error {
	w := &wazuhInstance{in: in}
	if err := w.setup(ctx); err != nil {
		return err
	}
	return w.run(ctx)
}

// wazuhInstance is the running state of WazuhInstance; st is what crosses Continue-As-New.
type wazuhInstance struct {
	entity
	in WazuhInstanceInput
	st WazuhInstanceState
	// reports is HealthReportSignal's channel, taken by the main loop only.
	reports workflow.ReceiveChannel
}

// stepDeploying is the status step of a deploy child; a health report's is stepHealth,
// and it replaces only a status it set itself, or an active one.
const stepDeploying = "deploying"

func (w *wazuhInstance) setup(ctx workflow.Context) error {
	if w.in.State != nil {
		w.st = *w.in.State
	} else {
		w.st = WazuhInstanceState{Spec: w.in.Instance.WithDefaults(), ChangeLog: ChangeLog{Status: Status{Kind: StatusMaintenance, Message: "instance accepted"}}}
	}
	name := w.st.Spec.Name
	w.entity = entity{log: &w.st.ChangeLog, names: WazuhChangeNames, continueAfter: w.in.ContinueAsNewAfterEvents, show: w.publish,
		check: func(name string, raw []byte) error {
			_, err := checkWazuhChange(name, raw, w.pendingSpec())
			return err
		}}
	if err := w.open(ctx, name); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (WazuhInstanceStatus, error) { return w.status(), nil }); err != nil {
		return fmt.Errorf("cannot register the status query: %w", err)
	}
	w.reports = workflow.GetSignalChannel(ctx, HealthReportSignal)
	return w.announce(ctx, name, AppWazuh)
}

func (w *wazuhInstance) run(ctx workflow.Context) error {
	if !w.st.Deployed && len(w.st.Queue) == 0 {
		// The first deploy is recorded like a change, so its failure is listed and a
		// Reconcile (or an ApplySpec with the fix) resumes it.
		w.st.Queue = []QueuedChange{{ID: "deploy", Via: "start", Kind: ApplySpecUpdate,
			Request: mustJSON(WazuhApplySpecRequest{RequestID: "deploy", Spec: w.st.Spec})}}
	}
	for {
		err := workflow.Await(ctx, func() bool { return w.busy() || w.reports.Len() > 0 || w.continueWanted(ctx) })
		if err != nil {
			return err
		}
		w.receiveSignals(ctx)
		if len(w.st.Queue) > 0 {
			// Queued until recorded, so validators judge later changes against it.
			w.apply(ctx, w.st.Queue[0])
			w.st.Queue = w.st.Queue[1:]
			continue
		}
		if w.reports.Len() > 0 {
			var rep HealthReport
			for w.reports.ReceiveAsync(&rep) {
				// Only the latest report says how the instance is now.
			}
			w.onHealth(ctx, rep)
			continue
		}
		if reqs := w.healthRequests(); len(reqs) > 0 {
			w.answerHealth(ctx, reqs)
			continue
		}
		if !w.continueWanted(ctx) {
			continue
		}
		if ready, err := w.readyToContinue(ctx); err != nil || !ready || w.reports.Len() > 0 {
			if err != nil {
				return err
			}
			continue
		}
		w.logger.Info("continuing as new", "historyLength", workflow.GetInfo(ctx).GetCurrentHistoryLength(), "runs", w.st.Runs)
		st, next := w.st, w.in
		next.State = &st
		return workflow.NewContinueAsNewError(ctx, WazuhInstanceWorkflow, next)
	}
}

// pendingSpec is the spec the queued changes leave: what a new change is judged against.
func (w *wazuhInstance) pendingSpec() wazuh.Instance {
	cur := w.st.Spec
	for _, c := range w.st.Queue {
		if ch, err := checkWazuhChange(c.Kind, c.Request, cur); err == nil {
			cur = ch.next(cur)
		}
	}
	return cur
}

// apply runs one change: the spec it leaves is deployed by a DeployWazuh child, after
// the nodes it drops are retired. A failure blocks the instance with the reason; the
// applied spec stays the last one that deployed, so a Reconcile retries the change.
func (w *wazuhInstance) apply(ctx workflow.Context, c QueuedChange) {
	res := ChangeResult{RequestID: c.ID, Kind: c.Kind}
	base := w.st.Spec
	ch, err := checkWazuhChange(c.Kind, c.Request, base)
	switch {
	case c.Via == "start":
		res.Summary = fmt.Sprintf("first deploy of %d node(s)", len(base.Nodes))
	case ch != nil:
		res.Summary = ch.summary(base)
	}
	if err == nil {
		next := ch.next(base)
		if err = w.retireDropped(ctx, base, next, &res); err == nil {
			err = w.deploy(ctx, c, next, &res)
		}
	}
	if err != nil {
		w.failed(ctx, c, res, err, "fix the cause, then send Reconcile (starter wazuh reconcile "+w.st.Spec.Name+") or an ApplySpec with the fix")
		return
	}
	w.applied(ctx, c, res, w.settled())
}

// retireDropped retires, one after another, the nodes base has and next does not
// (matched by name): their services are taken out of the plan and stopped before the
// deploy, so the master stops listing them once they disconnect.
func (w *wazuhInstance) retireDropped(ctx workflow.Context, base, next wazuh.Instance, res *ChangeResult) error {
	for k, n := range base.Nodes {
		if slices.ContainsFunc(next.Nodes, func(m wazuh.Node) bool { return m.Name == n.Name }) {
			continue
		}
		w.tr.set(ctx, Status{Kind: StatusMaintenance, Step: "retiring-node", Message: "retiring node " + n.Name + ": its services stopped, its files kept"})
		var out activities.RetireWazuhNodeResult
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, managerOptions), a.RetireWazuhNode,
			activities.RetireWazuhNodeInput{Instance: base, Node: k}).Get(ctx, &out)
		if err != nil {
			return wrapReason("cannot retire node "+n.Name, err)
		}
		for _, s := range append(out.Retired, out.Stopped...) {
			res.Stopped = append(res.Stopped, n.Name+"/"+s)
		}
	}
	return nil
}

// deploy runs DeployWazuh with spec as a child under the deploy's own ID (the workflow
// tctl users start), following its progress, and records what it did.
func (w *wazuhInstance) deploy(ctx workflow.Context, c QueuedChange, next wazuh.Instance, res *ChangeResult) error {
	name := next.Name
	id := WazuhDeployWorkflowID(name)
	w.tr.set(ctx, Status{Kind: StatusMaintenance, Step: stepDeploying, Message: fmt.Sprintf("applying %s: deploying (workflow %s)", c.ID, id)})
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            id,
		TypedSearchAttributes: temporal.NewSearchAttributes(SearchAttrInstance.ValueSet(name), SearchAttrApp.ValueSet(AppWazuh)),
		StaticSummary:         fmt.Sprintf("Deploy Wazuh %s (%s) for %s: %s", name, next.Wazuh.Version, WazuhInstanceWorkflowID(name), c.ID),
	})
	child := workflow.ExecuteChildWorkflow(cctx, DeployWazuhWorkflow, DeployWazuhInput{Instance: next,
		ClusterJoinLimit: w.in.ClusterJoinLimit, HealthEvery: w.in.HealthEvery})
	w.followChild(ctx, child, "applying "+c.ID+": deploying (workflow "+id+")", stepDeploying)
	var out DeployWazuhResult
	if err := child.Get(ctx, &out); err != nil {
		return err
	}
	w.st.Deployed, w.st.Spec, w.st.Secrets = true, next, out.Secrets
	w.st.Version, w.st.Joined, w.st.ConfigCommit = out.Version, out.Joined, out.ConfigCommit
	res.Restarted = out.Restarted
	res.Rotated = out.GeneratedSecrets
	return nil
}

// settled is the status of a deployed instance with nothing in progress.
func (w *wazuhInstance) settled() Status {
	msg := fmt.Sprintf("Wazuh %s: %d node(s) up", w.st.Version, len(w.st.Spec.Nodes))
	if len(w.st.Joined) > 0 {
		msg += ", workers joined: " + strings.Join(w.st.Joined, ", ")
	}
	return Status{Kind: StatusActive, Message: msg}
}

// onHealth records a health report. Not ok, it blocks an instance that was active (or
// blocked by an earlier report): down or a worker out of the cluster is Blocked, since
// no restart fixes another cluster key; anything else degraded is Waiting. Ok, it makes
// an instance the reports had set back Active. A status a failed change set is left:
// that change's fix comes first.
func (w *wazuhInstance) onHealth(ctx workflow.Context, rep HealthReport) {
	w.st.Health = &rep
	attr := SearchAttrHealth.ValueSet(rep.Health)
	mine := w.st.Status.Kind == StatusActive || w.st.Status.Step == stepHealth
	if !w.st.Deployed || !mine || rep.Health == HealthUnknown {
		w.publish(ctx)
		_ = workflow.UpsertTypedSearchAttributes(ctx, attr)
		return
	}
	if rep.Health == HealthOK {
		w.tr.set(ctx, w.settled(), attr)
		return
	}
	if files := renewedCerts(rep); len(files) > 0 {
		// Certificates renewed where the spec refers to them: push them now, before
		// the served ones expire, as any Reconcile would.
		id := "renew-" + rep.RequestID
		w.enqueue(ctx, QueuedChange{ID: id, Via: "health", Kind: ReconcileUpdate,
			Request: mustJSON(ReconcileRequest{RequestID: id, Reason: "certificates renewed in the store: " + strings.Join(files, ", ")})})
		_ = workflow.UpsertTypedSearchAttributes(ctx, attr)
		return
	}
	kind := StatusWaiting
	var why []string
	for _, c := range rep.Components {
		if c.Health == HealthOK {
			continue
		}
		if c.Health == HealthDown || strings.HasSuffix(c.Name, "/cluster") {
			kind = StatusBlocked
		}
		why = append(why, c.Name+": "+c.Reason)
	}
	w.st.LastReason = "health " + rep.Health + ": " + strings.Join(why, "; ")
	w.tr.set(ctx, Status{Kind: kind, Step: stepHealth, Message: fmt.Sprintf("health %s (check %s): %s; fix that, then send Reconcile (starter wazuh reconcile %s): it re-applies the spec to every node, the cluster key among it",
		rep.Health, rep.RequestID, strings.Join(why, "; "), w.st.Spec.Name)}, attr)
}

// renewedCerts are the certificate files a report finds differing from the spec's
// (renewed in the store, not pushed yet), when they are all the report finds wrong
// besides the served certificates' expiry; nil otherwise.
func renewedCerts(rep HealthReport) []string {
	var files []string
	for _, d := range rep.Drift {
		if !wazuh.IsCertFile(d.File) {
			return nil
		}
		files = append(files, d.File)
	}
	for _, c := range rep.Components {
		if c.Health != HealthOK && c.Name != "plan" && !strings.HasSuffix(c.Name, "/syslog-cert") {
			return nil
		}
	}
	return files
}

// answerHealth answers CheckHealth requests with the last report: a Wazuh instance's
// checks read the nodes themselves and send the instance what they found.
func (w *wazuhInstance) answerHealth(ctx workflow.Context, reqs []CheckHealthRequest) {
	for _, r := range reqs {
		rep := HealthReport{Instance: w.st.Spec.Name, Health: HealthUnknown, RequestID: r.RequestID, Note: "no health check has reported yet"}
		if w.st.Health != nil {
			rep = *w.st.Health
			rep.RequestID, rep.Note = r.RequestID, strings.TrimSuffix("the last check's report ("+w.st.Health.RequestID+"); "+rep.Note, "; ")
		}
		if r.ReplyTo != "" {
			workflow.SignalExternalWorkflow(ctx, r.ReplyTo, "", HealthDoneSignal, rep)
		}
	}
}

// status is what the status query returns.
func (w *wazuhInstance) status() WazuhInstanceStatus {
	s := WazuhInstanceStatus{Instance: w.st.Spec.Name, Status: w.st.Status, Deployed: w.st.Deployed, Version: w.st.Version,
		Joined: w.st.Joined, ConfigCommit: w.st.ConfigCommit, Pending: len(w.st.Queue), LastReason: w.st.LastReason,
		Recent: w.st.Recent, Runs: w.st.Runs, Health: w.st.Health}
	for _, n := range w.st.Spec.Nodes {
		s.Nodes = append(s.Nodes, n.Name)
	}
	return s
}

// publish shows the status, the nodes, the pending changes and the latest outcomes on
// the Web UI's workflow page.
func (w *wazuhInstance) publish(ctx workflow.Context) {
	st := w.st.Status
	lines := []string{fmt.Sprintf("**%s** — **%s**: %s", w.st.Spec.Name, st.Kind, st.Message), ""}
	if st.Retrying() {
		lines = append(lines, fmt.Sprintf("retrying `%s`: attempt %d, last error: %s", st.Step, st.Attempt, st.LastError), "")
	}
	for k, n := range w.st.Spec.Nodes {
		role := "worker"
		if k == 0 {
			role = "master"
		}
		lines = append(lines, fmt.Sprintf("- node `%s` (%s)", n.Name, role))
	}
	if h := w.st.Health; h != nil {
		lines = append(lines, fmt.Sprintf("health: %s (%s)", h.Health, h.RequestID))
	}
	workflow.SetCurrentDetails(ctx, strings.Join(w.publishLog(lines), "\n"))
}

// wazuhChange is one decoded change of a Wazuh instance; each reduces to the spec it
// leaves, which one deploy applies.
type wazuhChange interface {
	// validate judges the change against base, naming the field and the fix.
	validate(base wazuh.Instance) error
	// next returns the spec after the change; base is never modified.
	next(base wazuh.Instance) wazuh.Instance
	// summary says on one line what the change does to base.
	summary(base wazuh.Instance) string
}

// checkWazuhChange decodes a change of the given name strictly and validates it
// against base: what the Update validators, the Signal twins and apply all run.
func checkWazuhChange(name string, raw []byte, base wazuh.Instance) (wazuhChange, error) {
	var (
		c   wazuhChange
		err error
	)
	switch name {
	case ApplySpecUpdate:
		c, err = spec.DecodeJSON[WazuhApplySpecRequest](raw, "send requestId (string) and spec (the Wazuh instance spec as JSON)")
	case ReconcileUpdate:
		c, err = spec.DecodeJSON[ReconcileRequest](raw, "send requestId (string) and reason (string), both optional")
	default:
		return nil, fmt.Errorf("%s is not a change of a Wazuh instance (changes: %s)", name, strings.Join(WazuhChangeNames, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := c.validate(base); err != nil {
		return c, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

func (r WazuhApplySpecRequest) validate(base wazuh.Instance) error {
	next := r.next(base)
	if err := next.Validate(); err != nil {
		return fmt.Errorf("invalid spec:\n%w", err)
	}
	var c spec.Checker
	if next.Name != base.Name {
		c.Add("spec.name", fmt.Sprintf("is %q, not this instance's %q", next.Name, base.Name), "send the spec to the workflow of its own instance, "+WazuhInstanceWorkflowID(next.Name))
	}
	if bm, nm := base.Master(), next.Master(); bm.Name != nm.Name || !reflect.DeepEqual(bm.Pebble, nm.Pebble) || bm.Root != nm.Root {
		c.Add("spec.nodes[0]", fmt.Sprintf("is node %s, not the master %s the instance runs", nm.Name, bm.Name),
			"keep the master first and as deployed (its agents and workers point at it); another master is another instance")
	}
	if next.Wazuh.Version != base.Wazuh.Version {
		c.Add("spec.wazuh.version", fmt.Sprintf("changes %s -> %s: the image decides the version", base.Wazuh.Version, next.Wazuh.Version),
			"keep wazuh.version "+base.Wazuh.Version+" until the containers run the new image")
	}
	for _, s := range wazuh.SecretTable {
		if s.Generate != nil && !s.Ref(&base).IsZero() && s.Ref(&next).IsZero() {
			c.Add("spec."+s.Field, "drops the reference the instance runs with, and socflow would generate another value",
				"keep the reference (point it at the new value, then send the spec again)")
		}
	}
	return c.Err()
}

func (r WazuhApplySpecRequest) next(base wazuh.Instance) wazuh.Instance { return r.Spec.WithDefaults() }

func (r WazuhApplySpecRequest) summary(base wazuh.Instance) string {
	if d := wazuhSpecDiff(base, r.next(base)); d != "" {
		return d
	}
	return "no difference"
}

func (r ReconcileRequest) validate(wazuh.Instance) error { return nil }

func (r ReconcileRequest) next(base wazuh.Instance) wazuh.Instance { return base }

func (r ReconcileRequest) summary(wazuh.Instance) string {
	if r.Reason != "" {
		return "reconcile: " + r.Reason
	}
	return "reconcile every node with the applied spec"
}

// wazuhSpecDiff says on one line how next differs from base: nodes added, removed or
// changed, then each setting and integration section (settingsDiff).
func wazuhSpecDiff(base, next wazuh.Instance) string {
	base, next = base.WithDefaults(), next.WithDefaults()
	var parts []string
	for _, n := range next.Nodes {
		k := slices.IndexFunc(base.Nodes, func(m wazuh.Node) bool { return m.Name == n.Name })
		switch {
		case k < 0:
			parts = append(parts, "node "+n.Name+" added")
		case !reflect.DeepEqual(base.Nodes[k], n):
			parts = append(parts, "node "+n.Name+" changed")
		}
	}
	for _, n := range base.Nodes {
		if !slices.ContainsFunc(next.Nodes, func(m wazuh.Node) bool { return m.Name == n.Name }) {
			parts = append(parts, "node "+n.Name+" removed")
		}
	}
	parts = append(parts, settingsDiff("wazuh.", base.Wazuh, next.Wazuh)...)
	parts = append(parts, settingsDiff("integrations.", base.Integrations, next.Integrations)...)
	return strings.Join(parts, ", ")
}
