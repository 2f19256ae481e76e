package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	tclient "go.temporal.io/sdk/client"
	"sigs.k8s.io/yaml"

	"github.com/socflow/socflow/deploy/observability"
	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/internal/wazuh"
	"github.com/socflow/socflow/internal/workerapp"
	"github.com/socflow/socflow/workflows"
)

// metricsClient dials the stack's Temporal with the production converters and the
// given metrics handler, as worker/main.go does with -metrics.
func metricsClient(t *testing.T, handler tclient.MetricsHandler) tclient.Client {
	t.Helper()
	opts := tclient.Options{HostPort: stacktest.Get(t).TemporalAddress, Logger: quietLogger(), MetricsHandler: handler}
	conv, err := workerapp.LoadConverters()
	if err != nil {
		t.Fatal(err)
	}
	conv.Apply(&opts)
	c, err := tclient.Dial(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// addScrapeTarget writes a file_sd file that makes the stack's Prometheus scrape target
// as job, with the test's label, and removes it when the test ends.
func addScrapeTarget(t *testing.T, dir, name, target string, labels map[string]string) {
	t.Helper()
	b, err := json.Marshal([]map[string]any{{"targets": []string{target}, "labels": labels}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".json")
	if err := os.WriteFile(file+".tmp", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(file) })
}

// finite reports whether any of the values is a number (not NaN, not ±Inf).
func finite(vals []string) bool {
	for _, v := range vals {
		if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return true
		}
	}
	return false
}

// atLeastOne reports whether the values sum to 1 or more.
func atLeastOne(vals []string) bool {
	sum := 0.0
	for _, v := range vals {
		f, _ := strconv.ParseFloat(v, 64)
		sum += f
	}
	return sum >= 1
}

// TestDashboardQueriesHaveData runs a worker of the code under test with its metrics
// endpoint, scraped by the stack's real Prometheus beside the OpenCTI stand-in's
// exporter and the Wazuh exporter stand-in; it deploys an OpenCTI instance, applies a
// change, has an upgrade refused, heals a killed worker and deploys a Wazuh cluster,
// then requires every panel query of deploy/observability/grafana/socflow.json to
// return a number from those targets only (each query's job selector narrowed to this
// test's label), and socflow's metrics to count what happened.
func TestDashboardQueriesHaveData(t *testing.T) {
	st := stacktest.Get(t)
	if st.PrometheusURL == "" || st.PrometheusTargets == "" {
		t.Fatal("the stack's Prometheus is not configured (SOCFLOW_PROMETHEUS_URL, SOCFLOW_PROMETHEUS_TARGETS): run make stack-up")
	}
	dash, err := observability.LoadDashboard("../../deploy/observability/grafana/socflow.json")
	if err != nil {
		t.Fatal(err)
	}

	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	handler, closeMetrics, err := workerapp.PrometheusMetrics(metricsAddr, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeMetrics() })
	c := metricsClient(t, handler)
	queue := inProcessWorker(t, c, t.TempDir())
	run := fmt.Sprintf("obs%d", time.Now().UnixNano()%1e9)
	scrape := func(job, target string) {
		addScrapeTarget(t, st.PrometheusTargets, run+"-"+job, target, map[string]string{"job": job, "socflow_e2e": run})
	}
	scrape("socflow-worker", metricsAddr)

	// OpenCTI through its instance workflow: a deploy, a change, a refused upgrade, a heal.
	inst := newInstance(t, instanceOpts{initDelay: time.Second, version: "6.9.28", workers: 1})
	inst.Integrations.OpenSearch.SnapshotRepository = ""
	id := startInstanceInput(t, c, queue, workflows.InstanceInput{Instance: inst, HealthEvery: -1}).GetID()
	scrape("opencti", fmt.Sprintf("127.0.0.1:%d", inst.OpenCTI.MetricsPort))
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	two := 2
	if _, err := setConfig(t, c, id, workflows.SetConfigRequest{RequestID: "two-workers", Workers: &two}); err != nil {
		t.Fatalf("SetConfig: %v", err)
	}
	if _, err := applyChange(t, c, id, workflows.UpgradeUpdate, workflows.UpgradeRequest{RequestID: "no-repo", TargetVersion: "7.260318.0"}); err == nil ||
		!strings.Contains(err.Error(), "refused by the pre-flight") {
		t.Fatalf("upgrade without a snapshot repository: %v, want refused", err)
	}
	waitInstance(t, c, id, time.Minute, "active", activeInstance)
	killService(t, inst.Pebble.Socket, "worker-0")
	if rep := runHealth(t, c, queue, inst.Name); healOf(rep, "worker-0").Action != "restarted" {
		t.Fatalf("health check after SIGKILL of worker-0: %+v, want it restarted", rep)
	}

	// Wazuh: a master and a worker, the exporter on the master.
	w := newWazuhInstance(t, wazuhOpts{workers: 1})
	w.Wazuh.Exporter = &wazuh.Exporter{Command: bin + "/wazuh-exporter-standin", Port: freePort(t)}
	w = w.WithDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	if err := startWazuhDeploy(t, c, queue, w).Get(ctx, nil); err != nil {
		t.Fatalf("wazuh deploy: %v", err)
	}
	scrape("wazuh-exporter", fmt.Sprintf("127.0.0.1:%d", w.Wazuh.Exporter.Port))

	// What happened is counted, from this worker's endpoint as Prometheus scraped it.
	sel := func(extra string) string { return `{job="socflow-worker", socflow_e2e="` + run + `"` + extra + `}` }
	counts := map[string]func([]string) bool{
		"socflow_deploys_total" + sel(`, app="opencti", outcome="succeeded"`):                             atLeastOne,
		"socflow_deploys_total" + sel(`, app="wazuh", outcome="succeeded"`):                               atLeastOne,
		"socflow_changes_total" + sel(`, app="opencti", kind="SetConfig", outcome="applied"`):             atLeastOne,
		"socflow_changes_total" + sel(`, app="opencti", kind="Upgrade", outcome="refused"`):               atLeastOne,
		"socflow_upgrades_total" + sel(`, app="opencti", outcome="refused"`):                              atLeastOne,
		"socflow_heals_total" + sel(`, app="opencti", action="restarted"`):                                atLeastOne,
		"socflow_instance_status" + sel(`, socflow_instance="`+inst.Name+`", status="active"`):            atLeastOne,
		"socflow_probe_latency_seconds_count" + sel(`, dependency="redis", outcome="ready"`):              atLeastOne,
		"socflow_phase_duration_seconds_count" + sel(`, app="opencti", phase="waiting-platform"`):         atLeastOne,
		"socflow_phase_duration_seconds_count" + sel(`, app="wazuh", phase="waiting-cluster"`):            atLeastOne,
		`nodejs_eventloop_lag_p90_seconds{job="opencti", socflow_e2e="` + run + `"}`:                      finite,
		`wazuh_validate_configuration_info{job="wazuh-exporter", socflow_e2e="` + run + `", status="OK"}`: finite,
		`socflow_instance_status` + sel(`, socflow_instance="`+inst.Name+`", status="blocked"`) + ` == 0`: finite,
	}
	for q, ok := range counts {
		waitFor(t, 90*time.Second, "Prometheus to answer "+q, func() bool { return ok(promQuery(t, st.PrometheusURL, q)) })
	}

	// Every panel's query has data from this test's targets.
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if !strings.Contains(tg.Expr, `job="`) {
				t.Errorf("panel %q: query %q selects no job, so it cannot be narrowed to this test's targets", p.Title, tg.Expr)
				continue
			}
			q := strings.ReplaceAll(tg.Expr, `job="`, `socflow_e2e="`+run+`", job="`)
			n++
			waitFor(t, 60*time.Second, fmt.Sprintf("panel %q to have data (%s)", p.Title, q), func() bool {
				return finite(promQuery(t, st.PrometheusURL, q))
			})
		}
	}
	if n < 15 {
		t.Errorf("only %d panel queries checked", n)
	}
}

// TestLogsLokiAddedToARunningInstanceRestartsNothing: an active instance whose spec
// gains logs.loki (ApplySpec) gets the log target in its container's plan, forwarding
// the platform and every worker, and neither the platform nor a worker starts again;
// dropping it again leaves the target forwarding nothing, still without a restart.
func TestLogsLokiAddedToARunningInstanceRestartsNothing(t *testing.T) {
	c, inst, run := activeInstanceRun(t, instanceOpts{initDelay: time.Second, workers: 2}, 0)
	sock := inst.Pebble.Socket
	starts := func() []int {
		return []int{platformStarts(t, sock), workerStarts(t, sock, "worker-0"), workerStarts(t, sock, "worker-1")}
	}
	before := starts()
	withLogs := inst
	withLogs.Logs = &spec.Logs{Loki: fmt.Sprintf("http://127.0.0.1:%d/loki/api/v1/push", freePort(t))}
	if _, err := applyChange(t, c, run.GetID(), workflows.ApplySpecUpdate, workflows.ApplySpecRequest{RequestID: "loki-on", Spec: withLogs}); err != nil {
		t.Fatalf("ApplySpec with logs.loki: %v", err)
	}
	plan := pebbleClient(t, sock)
	raw, err := plan.PlanBytes(nil)
	if err != nil {
		t.Fatal(err)
	}
	var l layer.Layer
	if err := yaml.Unmarshal(raw, &l); err != nil {
		t.Fatal(err)
	}
	tg := l.LogTargets[layer.LokiTarget]
	if tg.Location != withLogs.Logs.Loki || !slices.Equal(tg.Services, []string{"platform", "worker-0", "worker-1"}) || tg.Labels["socflow_instance"] != inst.Name {
		t.Fatalf("log target in the container's plan: %+v\n%s", tg, raw)
	}
	if _, err := applyChange(t, c, run.GetID(), workflows.ApplySpecUpdate, workflows.ApplySpecRequest{RequestID: "loki-off", Spec: inst}); err != nil {
		t.Fatalf("ApplySpec without logs.loki: %v", err)
	}
	if raw, err = plan.PlanBytes(nil); err != nil {
		t.Fatal(err)
	}
	l = layer.Layer{}
	if err := yaml.Unmarshal(raw, &l); err != nil {
		t.Fatal(err)
	}
	if tg := l.LogTargets[layer.LokiTarget]; len(tg.Services) != 0 {
		t.Errorf("the dropped log target still forwards %v", tg.Services)
	}
	waitInstance(t, c, run.GetID(), time.Minute, "active", activeInstance)
	if after := starts(); !slices.Equal(before, after) {
		t.Errorf("platform and worker starts %v before, %v after adding and dropping logs.loki: something restarted", before, after)
	}
}
