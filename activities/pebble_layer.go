package activities

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/canonical/pebble/client"
	"sigs.k8s.io/yaml"

	"github.com/socflow/socflow/internal/layer"
)

// PebbleLayerChanges says how pushing a layer changed the services it defines,
// compared with the container's plan just before, so a reconcile restarts only
// what changed; it carries no secret value (environment values pass the app's mask).
type PebbleLayerChanges struct {
	// Added are services the container's plan did not define (or held retired).
	Added []string `json:"added,omitempty"`
	// Removed are services the app planned before and plans no longer, plus retired
	// ones that still run: each is kept retired in the plan (see retire) and must be
	// stopped.
	Removed []string `json:"removed,omitempty"`
	// Changed are services whose definition differs, naming the changed Pebble keys
	// and environment variables, values masked.
	Changed []layer.Change `json:"changed,omitempty"`
	// Unchanged are services defined exactly as before.
	Unchanged []string `json:"unchanged,omitempty"`
	// Digests holds each pushed service's layer.Service Digest, by service name.
	Digests map[string]string `json:"digests,omitempty"`
}

// pebbleLayer is one app's layer to push and how to read the container's plan for it.
type pebbleLayer struct {
	// label is the layer's label; the layer is combined into the one of that label.
	label string
	// layer holds the app's services (and checks, if any).
	layer layer.Layer
	// owns reports whether a service of the container's plan that the new layer no
	// longer names belongs to the app, so that its absence is a removal; nil means
	// only the layer's own services are compared.
	owns func(name string, svc layer.Service) bool
	// mask is the app's secret mask for environment values (nil: hide all).
	mask layer.Mask
	// dryRun diffs and pushes nothing.
	dryRun bool
}

// retiredDescription marks a service the app no longer plans. Pebble 1.26 cannot
// drop a service from a plan: its API's only layer action is "add", a layer may not
// hold a null service, and a combined plan must define "command" for every service,
// so `override: replace` with an empty definition is refused. A removed service is
// therefore kept with its last command, startup disabled and this description,
// and socflow neither starts it nor counts it as planned again until a layer
// names it.
const retiredDescription = "Retired by socflow: no longer planned, kept because Pebble cannot remove a service from its plan; never started by socflow."

// applyLayer diffs the layer against the container's current plan, then combines it
// into the layer of its label, retiring the app's services it no longer names. It
// starts, stops and restarts nothing: the caller acts on the changes it returns. A
// second apply of the same layer reports every service unchanged.
func (ep pebbleEndpoint) applyLayer(ctx context.Context, pl pebbleLayer) (PebbleLayerChanges, error) {
	var ch PebbleLayerChanges
	current, err := ep.plan(ctx)
	if err != nil {
		return ch, err
	}
	old := map[string]layer.Service{}
	var retired []string
	for name, svc := range current.Services {
		_, planned := pl.layer.Services[name]
		switch {
		case !planned && (pl.owns == nil || !pl.owns(name, svc)):
		case isRetired(svc):
			if !planned {
				retired = append(retired, name)
			}
		default:
			old[name] = asRun(svc)
		}
	}
	next := make(map[string]layer.Service, len(pl.layer.Services))
	for name, svc := range pl.layer.Services {
		next[name] = asRun(svc)
	}
	push := pl.layer
	push.Services = maps.Clone(pl.layer.Services)
	touched := map[string]bool{}
	for _, c := range layer.Diff(layer.Layer{Services: old}, layer.Layer{Services: next}, pl.mask) {
		touched[c.Service] = true
		switch c.Kind {
		case layer.Added:
			ch.Added = append(ch.Added, c.Service)
		case layer.Removed:
			ch.Removed = append(ch.Removed, c.Service)
			push.Services[c.Service] = retire(current.Services[c.Service])
		case layer.Changed:
			ch.Changed = append(ch.Changed, c)
		}
	}
	if len(pl.layer.Services) > 0 {
		ch.Digests = make(map[string]string, len(pl.layer.Services))
	}
	for _, name := range slices.Sorted(maps.Keys(pl.layer.Services)) {
		if !touched[name] {
			ch.Unchanged = append(ch.Unchanged, name)
		}
		ch.Digests[name] = pl.layer.Services[name].Digest()
	}
	// A retired service that still runs was removed by an apply whose caller did not
	// get to stop it (a crash between the two): report it again until it is stopped.
	if len(retired) > 0 {
		infos, err := ep.services(ctx, retired)
		if err != nil {
			return ch, err
		}
		for _, name := range retired {
			if running(infos[name]) {
				ch.Removed = append(ch.Removed, name)
			}
		}
		slices.Sort(ch.Removed)
	}
	if pl.dryRun {
		return ch, nil
	}
	if tg, ok := current.LogTargets[layer.LokiTarget]; ok && len(pl.layer.Services) > 0 && pl.layer.LogTargets[layer.LokiTarget].Location == "" {
		// The spec dropped logs.loki. Pebble cannot remove a log target either, so the
		// target is replaced by one that forwards no service.
		push.LogTargets = map[string]layer.LogTarget{layer.LokiTarget: {Override: layer.OverrideReplace, Type: tg.Type, Location: tg.Location}}
	}
	data, err := push.YAML()
	if err != nil {
		return ch, &errPermanent{ErrTypeInvalidInput, fmt.Errorf("cannot render the %s layer: %w", pl.label, err)}
	}
	err = ep.call(ctx, func(pc *client.Client) error {
		return pc.AddLayer(&client.AddLayerOptions{Combine: true, Label: pl.label, LayerData: data})
	})
	if err != nil {
		return ch, pebbleError("cannot add the "+pl.label+" layer", err)
	}
	return ch, nil
}

// plan reads and parses the container's current (combined) plan.
func (ep pebbleEndpoint) plan(ctx context.Context) (layer.Layer, error) {
	var raw []byte
	err := ep.call(ctx, func(pc *client.Client) (err error) {
		raw, err = pc.PlanBytes(&client.PlanOptions{})
		return err
	})
	if err != nil {
		return layer.Layer{}, pebbleError("cannot read the container's plan", err)
	}
	var current layer.Layer
	if err := yaml.Unmarshal(raw, &current); err != nil {
		return layer.Layer{}, fmt.Errorf("cannot parse the container's plan: %w", err)
	}
	return current, nil
}

// asRun is a service as far as the process it runs is concerned: override says
// how a layer combines, not what runs, so it never makes a service changed.
func asRun(svc layer.Service) layer.Service {
	svc.Override = ""
	return svc
}

// isRetired reports a service that an earlier apply retired.
func isRetired(svc layer.Service) bool {
	return svc.Description == retiredDescription && svc.Startup == layer.StartupDisabled
}

// retire is the definition that keeps a removed service in the plan: its last
// command (Pebble requires one, and it exists in the container), never started on
// Pebble's own, marked for the next apply and for `pebble plan` readers.
func retire(svc layer.Service) layer.Service {
	svc.Override = layer.OverrideReplace
	svc.Startup = layer.StartupDisabled
	svc.Description = retiredDescription
	return svc
}
