package activities

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/canonical/pebble/client"

	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/spec"
)

// ApplyOpenCTIPlanInput is the validated instance and its secret references.
type ApplyOpenCTIPlanInput struct {
	// Instance is the defaulted, validated spec.
	Instance opencti.Instance `json:"instance"`
	// Secrets are the instance's generated-secret references.
	Secrets opencti.InstanceSecrets `json:"secrets"`
	// Node says Instance is one of opencti.nodes as it runs it (Instance.OnNode):
	// its plan is the platform alone (opencti.NodePlan).
	Node bool `json:"node,omitempty"`
	// DryRun computes what the apply would change and pushes nothing: a health check's
	// drift detection (the container's plan against the one the spec gives now).
	DryRun bool `json:"dryRun,omitempty"`
}

// ApplyOpenCTIPlanResult says what was pushed, without any secret value.
type ApplyOpenCTIPlanResult struct {
	// Services are the services of the layer, platform first.
	Services []string `json:"services"`
	// Files are the paths pushed into the container.
	Files []string `json:"files,omitempty"`
	// PlatformDigest identifies the platform definition that was applied; the
	// platform wait compares it with what the running platform was started from.
	PlatformDigest string `json:"platformDigest,omitempty"`
	// PebbleLayerChanges says which services the apply added, removed (retired, to
	// be stopped), changed or left unchanged, with their digests; its fields sit
	// beside the ones above in JSON, all omitempty, so results recorded before it
	// existed decode with no changes.
	PebbleLayerChanges
	// FileDrift are the plan's files whose content in the container is not the planned
	// one (a dry run only), told from the spec to the container: changed, or removed.
	FileDrift []layer.Change `json:"fileDrift,omitempty"`
}

// ApplyOpenCTIPlan resolves the secrets, computes the OpenCTI plan and pushes its files and
// layer (combined under the "opencti" label) into the workload container's Pebble,
// reporting which services it added, removed, changed or left unchanged. It starts,
// stops and restarts nothing: a changed layer takes effect when services are
// (re)started, so re-applying never restarts a running platform behind the
// workflow's back, and the workflow restarts only what the result names.
func (a *Activities) ApplyOpenCTIPlan(ctx context.Context, in ApplyOpenCTIPlanInput) (ApplyOpenCTIPlanResult, error) {
	ep, err := a.pebble(in.Instance.Pebble)
	if err != nil {
		return ApplyOpenCTIPlanResult{}, classify(err)
	}
	in2, err := a.planInput(in.Instance, in.Secrets)
	if err != nil {
		return ApplyOpenCTIPlanResult{}, classify(err)
	}
	p, err := opencti.NewPlan(in2)
	if err != nil {
		return ApplyOpenCTIPlanResult{}, permanent(ErrTypeInvalidInput, err)
	}
	res := ApplyOpenCTIPlanResult{Services: opencti.Services(in.Instance),
		PlatformDigest: p.PlatformDigest}
	if in.Node {
		p, res.Services = opencti.NodePlan(p), []string{opencti.PlatformService}
	}
	instance := in.Instance.Name
	pl := pebbleLayer{
		label: opencti.LayerLabel,
		layer: p.Layer,
		// ensureOwner has refused any other instance's container, so a platform or
		// worker without an owner is one planned before socflow named it.
		owns: func(name string, svc layer.Service) bool {
			o := serviceOwner(name, svc)
			return o == instance || o == "" && (name == opencti.PlatformService || strings.HasPrefix(name, "worker-"))
		},
		mask:   opencti.Mask,
		dryRun: in.DryRun,
	}
	if !in.DryRun {
		if err := a.pushOpenCTIFiles(ctx, ep, in.Instance, p, &res); err != nil {
			return res, err
		}
	} else if res.FileDrift, err = ep.fileDrift(ctx, p.Files); err != nil {
		return res, classify(err)
	}
	res.PebbleLayerChanges, err = ep.applyLayer(ctx, pl)
	if err != nil {
		return res, classify(err)
	}
	return res, nil
}

// pushOpenCTIFiles makes the plan's directories and pushes its files and the owner
// marker, after checking the container is this instance's: before anything changes, as
// replacing another instance's layer would make its platform boot as this one.
func (a *Activities) pushOpenCTIFiles(ctx context.Context, ep pebbleEndpoint, inst opencti.Instance, p opencti.Plan, res *ApplyOpenCTIPlanResult) error {
	if err := ep.ensureOwner(ctx, inst.Name, ownerMarkerPath(inst), serviceOwner); err != nil {
		return classify(err)
	}
	files, err := ep.pushFiles(ctx, p.Dirs, append(p.Files, ownerMarker(inst)))
	res.Files = append(res.Files, files...)
	return err
}

// ownerMarker is the file that records, inside the container, which instance owns
// it; the layer's SOCFLOW_INSTANCE says the same to `pebble plan` readers.
func ownerMarker(inst opencti.Instance) layer.File {
	return layer.File{Path: ownerMarkerPath(inst), Content: []byte(inst.Name + "\n"), Perm: 0o644}
}

func ownerMarkerPath(inst opencti.Instance) string {
	return path.Join(inst.OpenCTI.PlatformDir, ".socflow-instance")
}

// serviceOwner is the instance a service of a container's plan belongs to: its
// SOCFLOW_INSTANCE, or for a platform planned before socflow set that, its index
// prefix (which socflow always set to the instance name).
func serviceOwner(name string, svc layer.Service) string {
	if o := svc.Environment[opencti.InstanceEnv]; o != "" {
		return o
	}
	if name == opencti.PlatformService {
		return svc.Environment["ELASTICSEARCH__INDEX_PREFIX"]
	}
	return ""
}

// AddOpenCTIReadyCheckInput names the instance whose ready-level health check to add.
type AddOpenCTIReadyCheckInput struct {
	// Instance is the defaulted, validated spec.
	Instance opencti.Instance `json:"instance"`
	// HealthAccessKey refers to the key the check URL carries.
	HealthAccessKey spec.SecretRef `json:"healthAccessKey"`
}

// AddOpenCTIReadyCheck adds the ready-level HTTP check on the platform's health URL,
// only once the platform is healthy (as the charm does), so Pebble's view of readiness
// starts true rather than flapping through first boot.
func (a *Activities) AddOpenCTIReadyCheck(ctx context.Context, in AddOpenCTIReadyCheckInput) error {
	ep, err := a.pebble(in.Instance.Pebble)
	if err != nil {
		return classify(err)
	}
	key, err := a.resolve("opencti.healthAccessKey", in.HealthAccessKey)
	if err != nil {
		return classify(err)
	}
	layer, err := opencti.ReadyCheck(opencti.Input{Instance: in.Instance, Secrets: opencti.Secrets{HealthAccessKey: key}}).YAML()
	if err != nil {
		return permanent(ErrTypeInvalidInput, fmt.Errorf("cannot render the health check layer: %w", err))
	}
	err = ep.call(ctx, func(pc *client.Client) error {
		return pc.AddLayer(&client.AddLayerOptions{Combine: true, Label: opencti.LayerLabel, LayerData: layer})
	})
	return classify(pebbleError("cannot add the platform health check", err))
}

// planInput resolves every secret the plan needs, by OpenCTI's secret table; the
// values never leave the activity.
func (a *Activities) planInput(inst opencti.Instance, s opencti.InstanceSecrets) (opencti.Input, error) {
	v, err := opencti.SecretTable.Resolve(&inst, &s, a.resolve)
	if err != nil {
		return opencti.Input{}, err
	}
	return opencti.Input{Instance: inst, Secrets: v}, nil
}
