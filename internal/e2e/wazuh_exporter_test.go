package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"

	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/internal/wazuh"
	"github.com/socflow/socflow/workflows"
)

// promQuery runs an instant query on the stack's Prometheus and returns the samples'
// values ("" when the result is empty).
func promQuery(t *testing.T, base, q string) []string {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&body) != nil || body.Status != "success" {
		return nil
	}
	var out []string
	for _, r := range body.Data.Result {
		out = append(out, fmt.Sprint(r.Value[1]))
	}
	return out
}

// TestWazuhExporterScrapedByPrometheus deploys a Wazuh master with the exporter on;
// the stack's real Prometheus scrapes it (up == 1, the API's info metric); a redeploy
// leaves it running; a manager restart (users back to the factory's) makes its reads
// fail (up == 0) and a restarted exporter exit on the refused login as the real one
// does (KeyError: 'data'); the next deploy restores the password and the exporter.
func TestWazuhExporterScrapedByPrometheus(t *testing.T) {
	st := stacktest.Get(t)
	c := temporalClient(t)
	queue := inProcessWorker(t, c, t.TempDir())
	inst := newWazuhInstance(t, wazuhOpts{})
	inst.Wazuh.Exporter = &wazuh.Exporter{Command: bin + "/wazuh-exporter-standin", Port: freePort(t)}
	inst = inst.WithDefaults()
	target := fmt.Sprintf("127.0.0.1:%d", inst.Wazuh.Exporter.Port)
	sock := inst.Nodes[0].Pebble.Socket

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var res workflows.DeployWazuhResult
	if err := startWazuhDeploy(t, c, queue, inst).Get(ctx, &res); err != nil {
		t.Fatalf("deploy failed: %v", err)
	}
	if res.ExporterURL != "http://"+target+"/metrics" {
		t.Errorf("exporter URL %q", res.ExporterURL)
	}
	if s := services(t, sock)[wazuh.ExporterService]; s == nil || s.Current != client.StatusActive {
		t.Fatalf("exporter not active: %+v", s)
	}

	// Prometheus scrapes the target this test adds.
	file := filepath.Join(st.PrometheusTargets, inst.Name+".json")
	targets := fmt.Sprintf(`[{"targets": [%q], "labels": {"socflow_instance": %q}}]`, target, inst.Name)
	if err := os.WriteFile(file+".tmp", []byte(targets), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(file) })
	sel := fmt.Sprintf(`{socflow_instance=%q}`, inst.Name)
	waitFor(t, time.Minute, "Prometheus to scrape the exporter (up == 1)", func() bool {
		v := promQuery(t, st.PrometheusURL, "up"+sel)
		return len(v) == 1 && v[0] == "1"
	})
	waitFor(t, 30*time.Second, "the API's info metric and the agents' status in Prometheus", func() bool {
		return len(promQuery(t, st.PrometheusURL, `wazuh_api_info{api_version="4.11.0",socflow_instance="`+inst.Name+`"}`)) == 1 &&
			len(promQuery(t, st.PrometheusURL, "wazuh_total_agents"+sel)) == 1
	})

	// A redeploy changes nothing: the exporter is not restarted.
	started := logCount(t, sock, wazuh.ExporterService, "Starting Wazuh prometheus exporter")
	if err := startWazuhDeploy(t, c, queue, inst).Get(ctx, &res); err != nil {
		t.Fatalf("redeploy failed: %v", err)
	}
	if n := logCount(t, sock, wazuh.ExporterService, "Starting Wazuh prometheus exporter"); n != started {
		t.Errorf("the redeploy restarted the unchanged exporter (%d starts, then %d)", started, n)
	}

	// The manager restarts: its users are the factory's, the prometheus user and its
	// password are gone. The running exporter's reads fail (500): up == 0.
	ctl := exec.Command(inst.Nodes[0].Path("/var/ossec/bin/wazuh-control"), "restart")
	if out, err := ctl.CombinedOutput(); err != nil {
		t.Fatalf("wazuh-control restart: %v\n%s", err, out)
	}
	waitFor(t, time.Minute, "up == 0 once the exporter's login is refused", func() bool {
		v := promQuery(t, st.PrometheusURL, "up"+sel)
		return len(v) == 1 && v[0] == "0"
	})
	// Started again, it exits at once on the refused login, as the real one does.
	pc, err := client.New(&client.Config{Socket: sock})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := pc.Restart(&client.ServiceOptions{Names: []string{wazuh.ExporterService}}); err == nil {
		_, _ = pc.WaitChange(id, &client.WaitChangeOptions{Timeout: 20 * time.Second})
	}
	waitFor(t, 30*time.Second, "the restarted exporter to exit with KeyError: 'data'", func() bool {
		s := services(t, sock)[wazuh.ExporterService]
		return s != nil && s.Current != client.StatusActive && logCount(t, sock, wazuh.ExporterService, "KeyError: 'data'") > 0
	})

	// The next deploy finds the reset, sets the stored passwords back and starts the
	// exporter: Prometheus sees it up again.
	if err := startWazuhDeploy(t, c, queue, inst).Get(ctx, &res); err != nil {
		t.Fatalf("deploy after the reset failed: %v", err)
	}
	if res.APIUsers != "factory-reset" {
		t.Errorf("API users %q after the reset", res.APIUsers)
	}
	waitFor(t, time.Minute, "up == 1 again", func() bool {
		v := promQuery(t, st.PrometheusURL, "up"+sel)
		return len(v) == 1 && v[0] == "1"
	})
	if !strings.HasPrefix(res.ExporterURL, "http://") {
		t.Errorf("exporter URL %q", res.ExporterURL)
	}

	// A spec without wazuh.exporter retires it: stopped, and kept out of the plan's
	// start-up, so a restarted Pebble does not start it again.
	inst.Wazuh.Exporter = nil
	if err := startWazuhDeploy(t, c, queue, inst).Get(ctx, &res); err != nil {
		t.Fatalf("deploy without the exporter failed: %v", err)
	}
	if s := services(t, sock)[wazuh.ExporterService]; s == nil || s.Current == client.StatusActive || s.Startup != client.StartupDisabled {
		t.Errorf("the exporter is not retired: %+v", s)
	}
	waitFor(t, time.Minute, "up == 0 once the exporter is retired", func() bool {
		v := promQuery(t, st.PrometheusURL, "up"+sel)
		return len(v) == 1 && v[0] == "0"
	})
}
