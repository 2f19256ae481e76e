package opencti

import (
	"slices"
	"strings"
	"testing"

	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
)

const testLoki = "https://loki.example.com:3100/loki/api/v1/push"

// TestLogTargetsLeaveServiceDigestsAlone: a running instance whose spec gains
// logs.loki gets a log target in every layer (platform and workers, a further node's
// platform, each connector) and not one service restarted, since no digest moves.
func TestLogTargetsLeaveServiceDigestsAlone(t *testing.T) {
	without, err := NewPlan(input(t, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	with, err := NewPlan(input(t, func(i *Instance) { i.Logs = &spec.Logs{Loki: testLoki} }, nil))
	if err != nil {
		t.Fatal(err)
	}
	if without.Layer.LogTargets != nil {
		t.Errorf("a spec without logs has log targets: %+v", without.Layer.LogTargets)
	}
	if with.PlatformDigest != without.PlatformDigest {
		t.Error("logs.loki changed the platform's digest")
	}
	for name, svc := range without.Layer.Services {
		if with.Layer.Services[name].Digest() != svc.Digest() {
			t.Errorf("logs.loki changed %s's digest", name)
		}
	}
	if d := layer.Diff(without.Layer, with.Layer, nil); len(d) != 0 {
		t.Errorf("logs.loki is a change to restart for: %v", d)
	}
	tg := with.Layer.LogTargets[layer.LokiTarget]
	if tg.Type != layer.LogTargetLoki || tg.Location != testLoki || tg.Override != layer.OverrideMerge ||
		!slices.Equal(tg.Services, []string{PlatformService, "worker-0", "worker-1", "worker-2"}) ||
		tg.Labels["socflow_app"] != "opencti" || tg.Labels["socflow_instance"] == "" {
		t.Errorf("log target %+v", tg)
	}
	if got := NodePlan(with).Layer.LogTargets[layer.LokiTarget]; !slices.Equal(got.Services, []string{PlatformService}) || got.Location != testLoki {
		t.Errorf("a further node's log target %+v, want its platform alone", got)
	}
}

func TestConnectorLayerForwardsToLoki(t *testing.T) {
	inst := input(t, func(i *Instance) { i.Logs = &spec.Logs{Loki: testLoki} }, nil).Instance
	l := ConnectorPlan(ConnectorInput{Instance: inst, Connector: Connector{Name: "mitre", Type: "EXTERNAL_IMPORT", Command: "python3 main.py"}, Token: "t", ID: "id"})
	tg := l.LogTargets[layer.LokiTarget]
	if !slices.Equal(tg.Services, []string{ConnectorService}) || tg.Labels["socflow_connector"] != "mitre" {
		t.Errorf("connector log target %+v", tg)
	}
}

func TestLogsLokiIsValidated(t *testing.T) {
	inst := input(t, nil, nil).Instance
	inst.Logs = &spec.Logs{Loki: "https://loki:3100"}
	if err := inst.Validate(); err == nil || !strings.Contains(err.Error(), "logs.loki") {
		t.Errorf("Validate: %v, want logs.loki named", err)
	}
}
