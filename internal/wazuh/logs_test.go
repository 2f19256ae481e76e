package wazuh

import (
	"slices"
	"testing"

	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
)

// TestLogTargetsInEveryWazuhLayer: with logs.loki each node's layer forwards its
// manager, filebeat and rsyslog and the exporter's layer its exporter, labelled with the
// node; no service digest moves, so a running cluster restarts nothing for it.
func TestLogTargetsInEveryWazuhLayer(t *testing.T) {
	in := loadFull(t)
	base := readTestdata(t, "ossec-stock.conf")
	withLogs := in
	withLogs.Logs = &spec.Logs{Loki: "https://loki:3100/loki/api/v1/push"}
	if err := withLogs.Validate(); err != nil {
		t.Fatal(err)
	}
	for k := range in.Nodes {
		without, err := NodePlan(in, k, fullSecrets, base)
		if err != nil {
			t.Fatal(err)
		}
		with, err := NodePlan(withLogs, k, fullSecrets, base)
		if err != nil {
			t.Fatal(err)
		}
		if without.Layer.LogTargets != nil {
			t.Errorf("node %d without logs has log targets", k)
		}
		if d := layer.Diff(without.Layer, with.Layer, nil); len(d) != 0 {
			t.Errorf("node %d: logs.loki is a change: %v", k, d)
		}
		tg := with.Layer.LogTargets[layer.LokiTarget]
		var names []string
		for name := range with.Layer.Services {
			names = append(names, name)
		}
		slices.Sort(names)
		if !slices.Equal(tg.Services, names) || tg.Labels["socflow_node"] != in.Nodes[k].Name || tg.Labels["socflow_app"] != "wazuh" {
			t.Errorf("node %d log target %+v, want services %v", k, tg, names)
		}
	}
	l, err := ExporterPlan(withLogs, "prom-pass")
	if err != nil {
		t.Fatal(err)
	}
	if tg := l.LogTargets[layer.LokiTarget]; !slices.Equal(tg.Services, []string{ExporterService}) || tg.Override != layer.OverrideMerge {
		t.Errorf("exporter log target %+v", tg)
	}
}
