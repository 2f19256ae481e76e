package workflows

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/spec"
)

// The steps of a reconcile's connectors, as the status names them.
const (
	stepRemovingConnector = "removing-connector"
	stepConnectorUser     = "ensuring-connector-user"
	stepPushingConnector  = "pushing-connector"
	stepStartingConnector = "starting-connector"
	stepConnectorUsers    = "deactivating-connector-users"
	// stepConnectors is the step of a status waiting on connectors that do not run.
	stepConnectors = "connectors"
)

func (r AddConnectorRequest) requestID() string { return r.RequestID }

func (r AddConnectorRequest) validate(base opencti.Instance) error {
	if err := opencti.ValidateConnector("connector.", r.Connector); err != nil {
		return err
	}
	return checkConnectors(base, r.next(base))
}

func (r AddConnectorRequest) next(base opencti.Instance) opencti.Instance {
	out := base.WithDefaults()
	cn := r.Connector
	out.Connectors = slices.Clone(out.Connectors)
	if i := slices.IndexFunc(out.Connectors, func(c opencti.Connector) bool { return c.Name == cn.Name }); i >= 0 {
		out.Connectors[i] = cn
	} else {
		out.Connectors = append(out.Connectors, cn)
	}
	return out.WithDefaults()
}

func (r AddConnectorRequest) summary(base opencti.Instance) string {
	if d := specDiff(base, r.next(base)); d != "" {
		return d
	}
	return "connector " + r.Connector.Name + " unchanged"
}

func (r RemoveConnectorRequest) requestID() string { return r.RequestID }

func (r RemoveConnectorRequest) validate(base opencti.Instance) error {
	names := strings.Join(base.ConnectorNames(), ", ")
	if names == "" {
		names = "none"
	}
	switch _, ok := base.Connector(r.Name); {
	case r.Name == "":
		return problem("name", "is required", "name the connector to remove (connectors: "+names+")")
	case !ok:
		return problem("name", fmt.Sprintf("is not a connector of this instance (got %q)", r.Name), "use one of the instance's connectors: "+names)
	}
	return nil
}

func (r RemoveConnectorRequest) next(base opencti.Instance) opencti.Instance {
	out := base.WithDefaults()
	out.Connectors = slices.DeleteFunc(slices.Clone(out.Connectors), func(c opencti.Connector) bool { return c.Name == r.Name })
	if len(out.Connectors) == 0 {
		out.Connectors = nil
	}
	return out
}

func (r RemoveConnectorRequest) summary(base opencti.Instance) string {
	return specDiff(base, r.next(base))
}

// checkConnectors validates the spec a connector change leaves and refuses a type
// change of a kept connector: its user's group follows the type it was created with
// (Administrators for INTERNAL_EXPORT_FILE), and a user's groups are not moved.
func checkConnectors(base, next opencti.Instance) error {
	var c spec.Checker
	for i, cn := range next.Connectors {
		if was, ok := base.Connector(cn.Name); ok && was.Type != cn.Type {
			c.Add(fmt.Sprintf("connectors[%d].type", i), fmt.Sprintf("changes %s -> %s: connector-%s stays in the group of its first type (%s)",
				was.Type, cn.Type, cn.Name, opencti.ConnectorGroup(was.Type)), "keep the type, or add the connector under another name")
		}
	}
	if err := c.Err(); err != nil {
		return err
	}
	return checkNext(next)
}

// connectorDiff says how the connectors of next differ from base's: each added,
// removed or changed (its changed fields named).
func connectorDiff(base, next opencti.Instance) []string {
	var parts []string
	for _, cn := range base.Connectors {
		if _, ok := next.Connector(cn.Name); !ok {
			parts = append(parts, "connector "+cn.Name+" removed")
		}
	}
	for _, cn := range next.Connectors {
		was, ok := base.Connector(cn.Name)
		if !ok {
			parts = append(parts, fmt.Sprintf("connector %s added (%s)", cn.Name, cn.Type))
			continue
		}
		var fields []string
		bv, nv := reflect.ValueOf(was), reflect.ValueOf(cn)
		for _, f := range reflect.VisibleFields(bv.Type()) {
			if !reflect.DeepEqual(bv.FieldByIndex(f.Index).Interface(), nv.FieldByIndex(f.Index).Interface()) {
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				fields = append(fields, name)
			}
		}
		if len(fields) > 0 {
			parts = append(parts, "connector "+cn.Name+" changed ("+strings.Join(fields, ", ")+")")
		}
	}
	return parts
}

// connectorActions are what a reconcile does to the connectors, in this order.
type connectorActions struct {
	// remove are connectors that leave their container (removed from the spec, or
	// moved to another container), as they were pushed.
	remove []opencti.Connector
	// ensure are the spec's connectors with no user ensured yet.
	ensure []string
	// push are the spec's connectors whose plan differs from the one pushed.
	push []string
	// start are the spec's connectors whose service is owed a (re)start: those pushed
	// and those an earlier change left owed.
	start []string
}

// decideConnectors compares the spec's connectors with the records of what was
// pushed: the one rule the reconcile and Preview share.
func decideConnectors(next opencti.Instance, records map[string]ConnectorRecord) connectorActions {
	var act connectorActions
	for _, name := range sortedKeys(records) {
		rec := records[name]
		if cn, ok := next.Connector(name); rec.Plan != nil && (!ok || cn.Pebble != rec.Connector.Pebble) {
			act.remove = append(act.remove, rec.Connector)
		}
	}
	for _, cn := range next.Connectors {
		rec, ok := records[cn.Name]
		if !ok {
			act.ensure = append(act.ensure, cn.Name)
		}
		moved := ok && rec.Plan != nil && cn.Pebble != rec.Connector.Pebble
		if !ok || rec.Plan == nil || moved || !reflect.DeepEqual(*rec.Plan, opencti.ConnectorPreview(next, cn)) {
			act.push = append(act.push, cn.Name)
		}
		if slices.Contains(act.push, cn.Name) || rec.Owed {
			act.start = append(act.start, cn.Name)
		}
	}
	return act
}

// connectorService names a connector's service in results and previews: its layer's
// label, since every connector's service is named connector.
func connectorService(name string) string { return opencti.ConnectorLayer(name) }

// reconcileConnectors brings the connectors in line with next, the charm's steps made
// exact: a removed connector's service is stopped, retired and its registration
// deleted; each new connector's user is ensured (created once, reactivated when it
// returns); a connector whose plan changed is pushed and (re)started — the platform
// is healthy by now, so a connector never starts against one that initialises; and
// every connector-* user the spec does not keep is deactivated, hand-made ones too.
func (w *instance) reconcileConnectors(ctx workflow.Context, next opencti.Instance, refs opencti.InstanceSecrets,
	res *ChangeResult, step func(name, doing string)) error {
	act := decideConnectors(next, w.st.Connectors)
	for _, cn := range act.remove {
		step(stepRemovingConnector, "removing connector "+cn.Name)
		rec := w.st.Connectors[cn.Name]
		var rm activities.RemoveConnectorResult
		err := w.tr.runStep(ctx, stepRemovingConnector, pebbleOptions, a.RemoveConnector, activities.RemoveConnectorInput{
			Instance: next, AdminToken: refs.AdminToken, Connector: cn, ConnectorID: rec.ConnectorID}, &rm)
		if err != nil {
			return wrapReason("cannot remove connector "+cn.Name, err)
		}
		if rm.Stopped {
			res.Stopped = append(res.Stopped, connectorService(cn.Name))
		}
		if rm.Unregistered {
			res.Unregistered = append(res.Unregistered, cn.Name)
		}
		if _, kept := next.Connector(cn.Name); kept {
			// Moved to another container: its identity stays, its plan goes there.
			rec.Plan, rec.Connector = nil, opencti.Connector{}
			w.st.Connectors[cn.Name] = rec
		} else {
			delete(w.st.Connectors, cn.Name)
			delete(w.st.ConnectorChecks, cn.Name)
		}
	}
	for _, name := range act.ensure {
		cn, _ := next.Connector(name)
		step(stepConnectorUser, "ensuring the user of connector "+name)
		var u activities.EnsureConnectorUserResult
		err := w.tr.runStep(ctx, stepConnectorUser, graphqlOptions, a.EnsureConnectorUser, activities.EnsureConnectorUserInput{
			Instance: next, AdminToken: refs.AdminToken, Name: name, Type: cn.Type}, &u)
		if err != nil {
			return wrapReason("cannot ensure the user of connector "+name, err)
		}
		if u.Created {
			res.UsersCreated = append(res.UsersCreated, opencti.ConnectorUser(name))
		}
		if u.Reactivated {
			res.UsersReactivated = append(res.UsersReactivated, opencti.ConnectorUser(name))
		}
		if w.st.Connectors == nil {
			w.st.Connectors = map[string]ConnectorRecord{}
		}
		w.st.Connectors[name] = ConnectorRecord{UserID: u.UserID, Token: u.Token, ConnectorID: u.ConnectorID}
	}
	for _, name := range act.push {
		cn, _ := next.Connector(name)
		rec := w.st.Connectors[name]
		// Owed before the push: once the container has the plan, a retry's push
		// changes nothing, and the start must not be forgotten.
		rec.Owed = true
		w.st.Connectors[name] = rec
		step(stepPushingConnector, "pushing the plan of connector "+name)
		var ch activities.PebbleLayerChanges
		err := w.tr.runStep(ctx, stepPushingConnector, pebbleOptions, a.ApplyConnectorPlan, activities.ApplyConnectorPlanInput{
			Instance: next, Connector: cn, Token: rec.Token, ConnectorID: rec.ConnectorID}, &ch)
		if err != nil {
			return wrapReason("cannot push the plan of connector "+name, err)
		}
		for _, c := range ch.Changed {
			c.Service = connectorService(name)
			res.Changed = append(res.Changed, c)
		}
		plan := opencti.ConnectorPreview(next, cn)
		rec.Connector, rec.Plan = cn, &plan
		w.st.Connectors[name] = rec
	}
	for _, name := range act.start {
		cn, _ := next.Connector(name)
		step(stepStartingConnector, "starting connector "+name)
		var r activities.RestartPebbleServicesResult
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, restartOptions), a.RestartPebbleServices,
			activities.RestartPebbleServicesInput{Pebble: cn.Pebble, Services: []string{opencti.ConnectorService}, Since: workflow.Now(ctx)}).Get(ctx, &r)
		if err != nil {
			return wrapReason("cannot start connector "+name, err)
		}
		if len(r.Restarted) > 0 {
			res.Restarted = append(res.Restarted, connectorService(name))
		} else {
			res.Started = append(res.Started, connectorService(name))
		}
		rec := w.st.Connectors[name]
		rec.Owed, rec.StartedAt = false, workflow.Now(ctx)
		w.st.Connectors[name] = rec
		// Its last check says nothing of the new process.
		delete(w.st.ConnectorChecks, name)
	}
	step(stepConnectorUsers, "deactivating the users of connectors the spec does not keep")
	var off activities.DeactivateConnectorUsersResult
	err := w.tr.runStep(ctx, stepConnectorUsers, graphqlOptions, a.DeactivateConnectorUsers, activities.DeactivateConnectorUsersInput{
		Instance: next, AdminToken: refs.AdminToken, Keep: next.ConnectorNames()}, &off)
	if err != nil {
		return wrapReason("cannot deactivate the users of removed connectors", err)
	}
	res.UsersDeactivated = off.Deactivated
	return nil
}

// sortedKeys returns m's keys, sorted, so that iterating a map stays deterministic.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// connectorCheckEvery is how often this instance checks its connectors.
func (w *instance) connectorCheckEvery() time.Duration {
	if w.in.ConnectorCheckEvery > 0 {
		return w.in.ConnectorCheckEvery
	}
	return DefaultConnectorCheckEvery
}

// checksConnectors reports whether the instance checks connectors between changes:
// it runs some, none is owed a start, and nothing keeps it from running.
func (w *instance) checksConnectors() bool {
	return w.st.Deployed && len(w.st.Spec.Connectors) > 0 && len(w.st.Spec.Missing()) == 0 && len(w.st.Connectors) > 0
}

// checkConnectors reads every connector's service and pings (CheckConnectors, one
// attempt: the next check is the retry) and moves the status between active and
// waiting accordingly; a status someone must act on (blocked) is left alone.
func (w *instance) checkConnectors(ctx workflow.Context) {
	var in activities.CheckConnectorsInput
	in.Instance, in.AdminToken = w.st.Spec, w.st.Secrets.AdminToken
	for _, cn := range w.st.Spec.Connectors {
		if rec, ok := w.st.Connectors[cn.Name]; ok && rec.Plan != nil {
			in.Connectors = append(in.Connectors, activities.ConnectorToCheck{Name: cn.Name, Pebble: cn.Pebble, ConnectorID: rec.ConnectorID})
		}
	}
	if len(in.Connectors) == 0 {
		return
	}
	opts := workflow.ActivityOptions{StartToCloseTimeout: activities.DefaultCallTimeout + activities.PebbleCallTimeout,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}}
	var out activities.CheckConnectorsResult
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), a.CheckConnectors, in).Get(ctx, &out); err != nil {
		w.st.LastReason = "cannot check the connectors: " + operatorReason(err)
		w.logger.Warn("connector check failed", "error", operatorReason(err))
		return
	}
	if w.st.ConnectorChecks == nil {
		w.st.ConnectorChecks = map[string]activities.ConnectorCheck{}
	}
	for _, c := range out.Connectors {
		w.st.ConnectorChecks[c.Name] = c
	}
	if k := w.st.Status.Kind; k == StatusActive || (k == StatusWaiting && w.st.Status.Step == stepConnectors) {
		if s := w.settled(); s != w.st.Status {
			w.tr.set(ctx, s)
		}
	}
}

// connectorStatuses are the spec's connectors as the status lists them, judged from
// their last check (connectorState).
func (w *instance) connectorStatuses() []ConnectorStatus {
	var out []ConnectorStatus
	for _, cn := range w.st.Spec.Connectors {
		s := ConnectorStatus{Name: cn.Name, Type: cn.Type, State: ConnectorPending}
		rec, pushed := w.st.Connectors[cn.Name]
		check, checked := w.st.ConnectorChecks[cn.Name]
		if pushed && rec.Plan != nil && !rec.Owed && checked {
			s.Service, s.Registered, s.LastPing, s.CheckedAt = check.Service, check.Registered, check.LastPing, check.CheckedAt
			s.State, s.Reason = connectorState(check, rec.StartedAt)
		}
		out = append(out, s)
	}
	return out
}

// connectorState judges one check: running when the service is active, registered
// and pinged within ConnectorPingStale of the check and since it was started;
// pending while a process started less than ConnectorPingStale ago has not pinged
// yet; waiting, with why, otherwise.
func connectorState(c activities.ConnectorCheck, started time.Time) (string, string) {
	sinceStart := c.CheckedAt.Sub(started)
	switch {
	case c.Service == "active" && c.LastPing.Before(started) && sinceStart < ConnectorPingStale:
		return ConnectorPending, "started " + sinceStart.Round(time.Second).String() + " ago, not registered or pinged since"
	case c.Service == "active" && c.LastPing.Before(started):
		return ConnectorWaiting, fmt.Sprintf("has not registered or pinged since socflow started it %s ago", sinceStart.Round(time.Second))
	case c.Service != "active":
		reason := "service " + c.Service
		if c.ServiceError != "" {
			reason += ": " + c.ServiceError
		}
		return ConnectorWaiting, reason
	case !c.Registered:
		return ConnectorWaiting, "not registered on the platform"
	case c.CheckedAt.Sub(c.LastPing) > ConnectorPingStale:
		return ConnectorWaiting, fmt.Sprintf("no ping since %s (%s before the check)", c.LastPing.Format(time.RFC3339), c.CheckedAt.Sub(c.LastPing).Round(time.Second))
	}
	return ConnectorRunning, ""
}

// waitingConnectors says which connectors do not run and why, "" when all do.
func (w *instance) waitingConnectors() string {
	var parts []string
	for _, s := range w.connectorStatuses() {
		if s.State == ConnectorWaiting {
			parts = append(parts, s.Name+" ("+s.Reason+")")
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "connector(s) not running: " + strings.Join(parts, ", ")
}

// connectorPreview adds to out what the reconcile would do to the connectors after
// a change leaving next: the same decision as the reconcile's (decideConnectors),
// over the records of what was pushed.
func (w *instance) connectorPreview(out *Preview, next opencti.Instance) {
	act := decideConnectors(next, w.st.Connectors)
	for _, cn := range act.remove {
		out.Stop = append(out.Stop, connectorService(cn.Name))
	}
	for _, cn := range next.Connectors {
		svc := connectorService(cn.Name)
		rec, ok := w.st.Connectors[cn.Name]
		switch {
		case !slices.Contains(act.start, cn.Name):
			out.Unchanged = append(out.Unchanged, svc)
		case !ok || rec.Plan == nil:
			out.Start = append(out.Start, svc)
		default:
			out.Restart = append(out.Restart, svc)
			plan := opencti.ConnectorPreview(next, cn)
			for _, c := range layer.Diff(*rec.Plan, plan, opencti.ConnectorMask) {
				c.Service = svc
				out.Changed = append(out.Changed, c)
			}
		}
	}
	if len(act.ensure) > 0 {
		out.Notes = append(out.Notes, "the user of connector "+strings.Join(act.ensure, ", ")+
			" is created (or reactivated when it returns) before it starts")
	}
}
