package wazuh

import (
	"strings"
	"testing"

	"github.com/socflow/socflow/internal/golden"
	"github.com/socflow/socflow/internal/layer"
)

func TestExporterPlanGolden(t *testing.T) {
	in := loadFull(t)
	l, err := ExporterPlan(in, "prom-pass")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "exporter-master.txt", renderPlan(t, Plan{Layer: l}))
}

func TestExporterDefaultsAndChecks(t *testing.T) {
	in, err := Load([]byte("name: soc\nwazuh: {exporter: {}}\nnodes: [{pebble: {socket: /run/w/.pebble.socket}}, {pebble: {socket: /run/w1/.pebble.socket}}]\nintegrations: {indexer: {urls: [http://127.0.0.1:9200]}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	in = in.WithDefaults()
	if e := in.Wazuh.Exporter; e.Port != DefaultExporterPort || e.Command != DefaultExporterCommand {
		t.Errorf("defaults: %+v", e)
	}
	if got := ExporterMetricsURL(in); got != "http://127.0.0.1:5000/metrics" {
		t.Errorf("metrics URL %q", got)
	}
	l, err := ExporterPlan(in, "p")
	if err != nil {
		t.Fatal(err)
	}
	svc := l.Services[ExporterService]
	want := map[string]string{"WAZUH_API_HOST": "127.0.0.1", "WAZUH_API_PORT": "55000", "WAZUH_API_USERNAME": "prometheus",
		"WAZUH_API_PASSWORD": "p", "EXPORTER_PORT": "5000", "WAZUH_PROTOCOL": "https", InstanceEnv: "soc"}
	for k, v := range want {
		if svc.Environment[k] != v {
			t.Errorf("%s=%q, want %q", k, svc.Environment[k], v)
		}
	}
	if len(svc.Environment) != len(want) {
		t.Errorf("environment %v has more than %v", svc.Environment, want)
	}
	if c := l.Checks[ExporterCheck]; c.HTTP == nil || c.HTTP.URL != "http://127.0.0.1:5000/metrics" {
		t.Errorf("check %+v", c)
	}
	// The plan holds only the exporter: the wazuh layer keeps its own services.
	if len(l.Services) != 1 {
		t.Errorf("services %v", l.Services)
	}

	// Without an exporter, or without a password, there is no plan.
	off := in
	off.Wazuh.Exporter = nil
	if _, err := ExporterPlan(off, "p"); err == nil || ExporterMetricsURL(off) != "" {
		t.Error("planned an exporter the spec does not ask for")
	}
	if _, err := ExporterPlan(in, ""); err == nil {
		t.Error("planned an exporter without a password")
	}
}

func TestExporterValidation(t *testing.T) {
	_, err := Load([]byte("name: soc\nwazuh: {exporter: {port: 70000, command: \" \"}}\nnodes: [{pebble: {socket: /run/w/.pebble.socket}}]\nintegrations: {indexer: {urls: [http://127.0.0.1:9200]}}\n"))
	if err == nil {
		t.Fatal("an exporter on port 70000 with a blank command was accepted")
	}
	for _, want := range []string{"wazuh.exporter.port: must be between 1 and 65535", "wazuh.exporter.command: must not be empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestExporterMaskHidesOnlyThePassword(t *testing.T) {
	old := layer.Layer{Services: map[string]layer.Service{ExporterService: {Command: "x", Environment: map[string]string{ExporterPasswordEnv: "old-secret", "EXPORTER_PORT": "5000"}}}}
	next := layer.Layer{Services: map[string]layer.Service{ExporterService: {Command: "x", Environment: map[string]string{ExporterPasswordEnv: "new-secret", "EXPORTER_PORT": "5001"}}}}
	s := ""
	for _, c := range layer.Diff(old, next, ExporterMask) {
		s += c.String()
	}
	if strings.Contains(s, "secret") || !strings.Contains(s, "5001") {
		t.Errorf("diff %q shows the password or hides the port", s)
	}
}
