package activities_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	"sigs.k8s.io/yaml"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

// sleepLayer is an app of a platform and n workers that sleep, each writing its pid
// to <dir>/<name>.pid at start, so a test sees which process is new; SECRET is the
// app's only secret.
func sleepLayer(dir string, workers int, edit func(name string, svc *layer.Service)) layer.Layer {
	l := layer.Layer{Summary: "sleepers", Services: map[string]layer.Service{}}
	names := []string{"platform"}
	for i := range workers {
		names = append(names, fmt.Sprintf("worker-%d", i))
	}
	for _, name := range names {
		svc := layer.Service{
			Override:  layer.OverrideReplace,
			Startup:   layer.StartupDisabled,
			Command:   fmt.Sprintf(`/bin/sh -c 'echo $$ > %s; exec sleep 300'`, filepath.Join(dir, name+".pid")),
			KillDelay: layer.Duration(2 * time.Second),
			Environment: map[string]string{
				"OWNER": "demo", "LEVEL": "info", "SECRET": "s3cret-" + name,
			},
		}
		if name != "platform" {
			svc.After, svc.Requires = []string{"platform"}, []string{"platform"}
		}
		if edit != nil {
			edit(name, &svc)
		}
		l.Services[name] = svc
	}
	return l
}

// applySleepers pushes l as the "sleepers" layer, which owns the services whose OWNER
// is demo and masks SECRET.
func applySleepers(ctx context.Context, p spec.Pebble, l layer.Layer) (activities.PebbleLayerChanges, error) {
	return activities.ApplyPebbleLayer(ctx, p, "sleepers", l,
		func(_ string, svc layer.Service) bool { return svc.Environment["OWNER"] == "demo" },
		func(_, key, value string) string {
			if key == "SECRET" {
				return "<secret>"
			}
			return value
		})
}

// pids reads the pid each service wrote at its last start.
func pids(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".pid")] = strings.TrimSpace(string(b))
	}
	return out
}

// changeCount counts the Pebble changes, so a test sees that an apply started none.
func changeCount(t *testing.T, socket string) int {
	t.Helper()
	return len(pebbleChanges(t, socket))
}

// pebbleChanges lists the daemon's changes, oldest first.
func pebbleChanges(t *testing.T, socket string) []*client.Change {
	t.Helper()
	pc, err := client.New(&client.Config{Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	changes, err := pc.Changes(&client.ChangesOptions{Selector: client.ChangesAll})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(changes, func(a, b *client.Change) int { return a.SpawnTime.Compare(b.SpawnTime) })
	return changes
}

func TestApplyPebbleLayerReportsWhatChanged(t *testing.T) {
	ctx := context.Background()
	socket := stacktest.Pebble(t)
	p := spec.Pebble{Socket: socket}
	dir := t.TempDir()
	a := &activities.Activities{}
	apply := func(l layer.Layer) activities.PebbleLayerChanges {
		t.Helper()
		ch, err := applySleepers(ctx, p, l)
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		return ch
	}
	all := func(n int) []string {
		out := []string{"platform"}
		for i := range n {
			out = append(out, fmt.Sprintf("worker-%d", i))
		}
		slices.Sort(out)
		return out
	}
	requireChanges := func(got, want activities.PebbleLayerChanges) {
		t.Helper()
		got.Digests = nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("changes:\n got %+v\nwant %+v", got, want)
		}
	}

	base := sleepLayer(dir, 3, nil)
	first := apply(base)
	if len(first.Digests) != 4 || first.Digests["worker-0"] != base.Services["worker-0"].Digest() {
		t.Errorf("digests %v", first.Digests)
	}
	requireChanges(first, activities.PebbleLayerChanges{Added: all(3)})
	if _, err := a.StartPebbleServices(ctx, activities.StartPebbleServicesInput{Pebble: p, Services: all(3)}); err != nil {
		t.Fatal(err)
	}
	running, changes := pids(t, dir), changeCount(t, socket)

	t.Log("the same layer again: everything unchanged, nothing restarted")
	second := apply(base)
	requireChanges(second, activities.PebbleLayerChanges{Unchanged: all(3)})
	if !reflect.DeepEqual(second.Digests, first.Digests) {
		t.Errorf("digests moved: %v then %v", first.Digests, second.Digests)
	}
	if got := pids(t, dir); !reflect.DeepEqual(got, running) {
		t.Errorf("pids %v, want %v", got, running)
	}
	if n := changeCount(t, socket); n != changes {
		t.Errorf("the apply made %d pebble changes", n-changes)
	}

	t.Log("one worker's secret changes: only it is reported, its key named, values masked")
	rotated := sleepLayer(dir, 3, func(name string, s *layer.Service) {
		if name == "worker-1" {
			s.Environment["SECRET"] = "r0tated"
		}
	})
	ch := apply(rotated)
	requireChanges(ch, activities.PebbleLayerChanges{
		Changed: []layer.Change{{Kind: layer.Changed, Service: "worker-1", Fields: []string{"environment"},
			Env: []layer.EnvChange{{Key: "SECRET", Kind: layer.Changed, Old: "<secret>", New: "<secret>"}}}},
		Unchanged: []string{"platform", "worker-0", "worker-2"},
	})
	if ch.Digests["worker-1"] == first.Digests["worker-1"] || ch.Digests["worker-0"] != first.Digests["worker-0"] {
		t.Errorf("digests %v after %v", ch.Digests, first.Digests)
	}
	b, _ := json.Marshal(ch)
	if strings.Contains(string(b), "s3cret") || strings.Contains(string(b), "r0tated") {
		t.Errorf("a secret value leaked: %s", b)
	}

	t.Log("a non-secret value is shown through the mask")
	ch = apply(sleepLayer(dir, 3, func(name string, s *layer.Service) {
		s.Environment["LEVEL"] = "debug"
		if name == "worker-1" {
			s.Environment["SECRET"] = "r0tated"
		}
	}))
	if len(ch.Changed) != 4 || !reflect.DeepEqual(ch.Changed[0].Env, []layer.EnvChange{{Key: "LEVEL", Kind: layer.Changed, Old: "info", New: "debug"}}) {
		t.Errorf("log level change: %+v", ch.Changed)
	}
	apply(rotated)

	t.Log("3 workers to 5: exactly two added")
	five := sleepLayer(dir, 5, func(name string, s *layer.Service) {
		if name == "worker-1" {
			s.Environment["SECRET"] = "r0tated"
		}
	})
	requireChanges(apply(five), activities.PebbleLayerChanges{Added: []string{"worker-3", "worker-4"}, Unchanged: all(3)})
	if _, err := a.StartPebbleServices(ctx, activities.StartPebbleServicesInput{Pebble: p, Services: []string{"worker-3", "worker-4"}}); err != nil {
		t.Fatal(err)
	}

	t.Log("5 workers back to 3: two removed and retired in the plan, reported until stopped")
	requireChanges(apply(rotated), activities.PebbleLayerChanges{Removed: []string{"worker-3", "worker-4"}, Unchanged: all(3)})
	plan, err := activities.PebblePlan(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if svc := plan.Services["worker-4"]; !activities.IsRetired(svc) || svc.Command == "" {
		t.Errorf("worker-4 in the plan: %+v", svc)
	}
	requireChanges(apply(rotated), activities.PebbleLayerChanges{Removed: []string{"worker-3", "worker-4"}, Unchanged: all(3)})
	if _, err := a.StopPebbleServices(ctx, activities.StopPebbleServicesInput{Pebble: p, Services: []string{"worker-3", "worker-4"}}); err != nil {
		t.Fatal(err)
	}
	requireChanges(apply(rotated), activities.PebbleLayerChanges{Unchanged: all(3)})

	t.Log("back to 4: the retired worker-3 is added again")
	requireChanges(apply(sleepLayer(dir, 4, func(name string, s *layer.Service) {
		if name == "worker-1" {
			s.Environment["SECRET"] = "r0tated"
		}
	})), activities.PebbleLayerChanges{Added: []string{"worker-3"}, Unchanged: all(3)})
}

// TestApplyPebbleLayerLeavesOtherServices checks that services the app does not own
// are neither compared nor retired.
func TestApplyPebbleLayerLeavesOtherServices(t *testing.T) {
	ctx := context.Background()
	p := spec.Pebble{Socket: stacktest.Pebble(t)}
	other := layer.Layer{Services: map[string]layer.Service{"sidecar": {Override: layer.OverrideReplace, Command: "sleep 300"}}}
	if _, err := activities.ApplyPebbleLayer(ctx, p, "other", other, nil, nil); err != nil {
		t.Fatal(err)
	}
	ch, err := applySleepers(ctx, p, sleepLayer(t.TempDir(), 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.Added, []string{"platform", "worker-0"}) || ch.Removed != nil || ch.Changed != nil {
		t.Errorf("changes %+v", ch)
	}
	plan, err := activities.PebblePlan(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if activities.IsRetired(plan.Services["sidecar"]) {
		t.Errorf("sidecar retired: %+v", plan.Services["sidecar"])
	}
}

// TestLogTargetAddedAndDroppedRestartsNothing pushes a layer, then the same layer with a
// Loki log target, then without it again, into a real Pebble: the services are
// unchanged each time (nothing to restart), the target forwards every service of the
// layer, and once dropped it forwards none (Pebble cannot remove it from the plan).
func TestLogTargetAddedAndDroppedRestartsNothing(t *testing.T) {
	ctx := context.Background()
	p := spec.Pebble{Socket: stacktest.Pebble(t)}
	l := sleepLayer(t.TempDir(), 2, nil)
	if _, err := applySleepers(ctx, p, l); err != nil {
		t.Fatal(err)
	}
	const loki = "http://127.0.0.1:3100/loki/api/v1/push"
	ch, err := applySleepers(ctx, p, l.WithLoki(loki, map[string]string{"socflow_instance": "demo"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Added)+len(ch.Removed)+len(ch.Changed) != 0 || len(ch.Unchanged) != 3 {
		t.Errorf("adding a log target changed services: %+v", ch)
	}
	tg := planOf(t, p.Socket).LogTargets[layer.LokiTarget]
	if tg.Location != loki || tg.Type != layer.LogTargetLoki || !slices.Equal(tg.Services, []string{"platform", "worker-0", "worker-1"}) ||
		tg.Labels["socflow_instance"] != "demo" {
		t.Fatalf("log target in the container's plan: %+v", tg)
	}
	ch, err = applySleepers(ctx, p, l)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Added)+len(ch.Removed)+len(ch.Changed) != 0 || len(ch.Unchanged) != 3 {
		t.Errorf("dropping the log target changed services: %+v", ch)
	}
	if tg := planOf(t, p.Socket).LogTargets[layer.LokiTarget]; len(tg.Services) != 0 {
		t.Errorf("a dropped log target still forwards %v", tg.Services)
	}
}

// planOf reads the container's combined plan.
func planOf(t *testing.T, socket string) layer.Layer {
	t.Helper()
	pc, err := client.New(&client.Config{Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := pc.PlanBytes(&client.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var l layer.Layer
	if err := yaml.Unmarshal(raw, &l); err != nil {
		t.Fatal(err)
	}
	return l
}
