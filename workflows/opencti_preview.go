package workflows

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/spec"
)

// pendingState is the instance as it will be once the queued changes are applied:
// what a new change is validated against and previewed on top of.
type pendingState struct {
	// spec is the spec the queue leaves.
	spec opencti.Instance
	// pushed is the spec whose plan the container will have.
	pushed opencti.Instance
	// secrets are the secret references, rotations included.
	secrets opencti.InstanceSecrets
	// generations count the rotations of each generated secret.
	generations map[string]int
}

// pending folds the queued changes over the applied state. It is pure, so the
// validators, the signal handler and the preview query all see the same.
func (w *instance) pending() pendingState {
	p := pendingState{spec: w.st.Spec, pushed: *w.st.Pushed, secrets: w.st.Secrets, generations: maps.Clone(w.st.Generations)}
	for _, q := range w.st.Queue {
		if c, err := decodeChange(q.kind(), q.Request); err == nil {
			p.advance(c)
		}
	}
	return p
}

// advance applies one change to the pending state.
func (p *pendingState) advance(c change) {
	if r, ok := c.(RotateSecretRequest); ok && r.generates(p.spec) {
		if p.generations == nil {
			p.generations = map[string]int{}
		}
		p.generations[r.Secret]++
		p.secrets = withSecret(p.secrets, r.Secret, rotatedRef(p.spec.Name, r.Secret, p.generations[r.Secret]))
	}
	p.spec = c.next(p.spec)
	p.secrets = opencti.SecretTable.WithGiven(&p.spec, p.secrets)
	if len(p.spec.Missing()) == 0 {
		p.pushed = p.spec
	}
}

// rotatedRef is the reference RotateInstanceSecret stores generation gen of a
// generated secret under; a preview shows it as changed without knowing its value.
func rotatedRef(instance, field string, gen int) spec.SecretRef {
	row, _ := secretRow(field)
	return secrets.Ref(instance, activities.RotatedKey(row.Generate.Key, gen))
}

// withSecret returns refs with the generated secret of field pointing at ref.
func withSecret(refs opencti.InstanceSecrets, field string, ref spec.SecretRef) opencti.InstanceSecrets {
	if row, ok := secretRow(field); ok && row.Generated != nil {
		*row.Generated(&refs) = ref
	}
	return refs
}

// previewFix lists what the preview query takes.
const previewFix = "send exactly one of setConfig, setIntegration, removeIntegration, rotateSecret, applySpec, addConnector, removeConnector, upgrade, holding that change's JSON, " +
	`e.g. {"setConfig": {"workers": 5}}`

// preview is the preview query: what the change in raw would do if applied after
// the queued changes, computed from plans with secret stand-ins (no I/O).
func (w *instance) preview(raw json.RawMessage) (Preview, error) {
	req, err := spec.DecodeJSON[PreviewRequest](raw, previewFix)
	if err != nil {
		return Preview{}, fmt.Errorf("preview: %w", err)
	}
	name, body, err := req.change()
	if err != nil {
		return Preview{}, err
	}
	p := w.pending()
	out := Preview{Kind: name, Pending: len(w.st.Queue)}
	c, err := checkChange(name, body, p.spec)
	if c != nil {
		out.Summary = c.summary(p.spec)
	}
	if err != nil {
		out.Invalid = err.Error()
		return out, nil
	}
	if !w.st.Deployed {
		out.Notes = append(out.Notes, "the deploy has not finished: the change is applied once it has")
	}
	if r, ok := c.(UpgradeRequest); ok {
		return previewUpgrade(out, r, p.spec), nil
	}
	if r, ok := c.(RotateSecretRequest); ok && !r.generates(p.spec) {
		out.Notes = append(out.Notes, fmt.Sprintf("%s is read again when applied: the services that use it restart only if its value changed", r.Secret))
	}
	owed := OwedActions{}
	if len(w.st.Queue) == 0 {
		owed = w.st.Owed
	}
	next := p
	next.advance(c)
	if missing := next.spec.Missing(); len(missing) > 0 {
		out.Blocked = missingText(missing)
		out.Stop = slices.DeleteFunc(opencti.WorkerServices(*p.pushed.OpenCTI.Workers), func(s string) bool { return slices.Contains(owed.Start, s) })
		out.Unchanged = []string{opencti.PlatformService}
		return out, nil
	}
	ch, planned, err := previewLayerChanges(p, next)
	if err != nil {
		out.Invalid = err.Error()
		return out, nil
	}
	act := decide(ch, planned, owed)
	out.Changed, out.Stop, out.Start = act.changed, act.stop, act.start
	if act.restartPlatform {
		out.Restart = append(out.Restart, opencti.PlatformService)
	}
	out.Restart = append(out.Restart, act.workers...)
	for _, s := range planned {
		if !slices.Contains(out.Restart, s) && !slices.Contains(out.Start, s) && !slices.Contains(out.Stop, s) {
			out.Unchanged = append(out.Unchanged, s)
		}
	}
	w.connectorPreview(&out, next.spec)
	return out, nil
}

// previewLayerChanges diffs the plans of two pending states the way pushing the
// second reports it (services only, values masked), and lists its services.
func previewLayerChanges(from, to pendingState) (activities.PebbleLayerChanges, []string, error) {
	old, err := opencti.PreviewPlan(from.pushed, from.secrets)
	if err != nil {
		return activities.PebbleLayerChanges{}, nil, err
	}
	next, err := opencti.PreviewPlan(to.spec, to.secrets)
	if err != nil {
		return activities.PebbleLayerChanges{}, nil, err
	}
	planned := opencti.Services(to.spec)
	return serviceChanges(old.Layer, next.Layer), planned, nil
}

// serviceChanges is what pushing next over old reports, by layer.Diff of their
// services with OpenCTI's secret mask.
func serviceChanges(old, next layer.Layer) activities.PebbleLayerChanges {
	var ch activities.PebbleLayerChanges
	for _, c := range layer.Diff(layer.Layer{Services: old.Services}, layer.Layer{Services: next.Services}, opencti.Mask) {
		switch c.Kind {
		case layer.Added:
			ch.Added = append(ch.Added, c.Service)
		case layer.Removed:
			ch.Removed = append(ch.Removed, c.Service)
		case layer.Changed:
			ch.Changed = append(ch.Changed, c)
		}
	}
	return ch
}

// change returns the one change a preview request names, with its JSON.
func (r PreviewRequest) change() (string, json.RawMessage, error) {
	var name string
	var req any
	for _, c := range []struct {
		name string
		set  bool
		req  any
	}{
		{SetConfigUpdate, r.SetConfig != nil, r.SetConfig}, {SetIntegrationUpdate, r.SetIntegration != nil, r.SetIntegration},
		{RemoveIntegrationUpdate, r.RemoveIntegration != nil, r.RemoveIntegration}, {RotateSecretUpdate, r.RotateSecret != nil, r.RotateSecret},
		{ApplySpecUpdate, r.ApplySpec != nil, r.ApplySpec},
		{AddConnectorUpdate, r.AddConnector != nil, r.AddConnector}, {RemoveConnectorUpdate, r.RemoveConnector != nil, r.RemoveConnector},
		{UpgradeUpdate, r.Upgrade != nil, r.Upgrade},
	} {
		if !c.set {
			continue
		}
		if name != "" {
			return "", nil, fmt.Errorf("preview: names both %s and %s (fix: %s)", name, c.name, previewFix)
		}
		name, req = c.name, c.req
	}
	if name == "" {
		return "", nil, fmt.Errorf("preview: names no change (fix: %s)", previewFix)
	}
	body, err := json.Marshal(req)
	return name, body, err
}
