package activities

import (
	"context"

	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
)

// ApplyPebbleLayer lets the external tests, which may import the stack helpers that
// this package's own tests cannot, drive the app-neutral core of ApplyOpenCTIPlan.
func ApplyPebbleLayer(ctx context.Context, p spec.Pebble, label string, l layer.Layer,
	owns func(name string, svc layer.Service) bool, mask layer.Mask) (PebbleLayerChanges, error) {
	ep, err := (&Activities{}).pebble(p)
	if err != nil {
		return PebbleLayerChanges{}, classify(err)
	}
	ch, err := ep.applyLayer(ctx, pebbleLayer{label: label, layer: l, owns: owns, mask: mask})
	return ch, classify(err)
}

// PebblePlan reads the container's combined plan.
func PebblePlan(ctx context.Context, p spec.Pebble) (layer.Layer, error) {
	return pebbleEndpoint{spec: p}.plan(ctx)
}

// IsRetired exposes isRetired.
var IsRetired = isRetired
