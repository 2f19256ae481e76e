package observability

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/socflow/socflow/workflows"
)

// promtool finds the real promtool: $SOCFLOW_PROMTOOL, else on PATH, else Debian's
// /usr/bin/promtool; without it the test fails, since a skipped check proves nothing.
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SOCFLOW_PROMTOOL"); p != "" {
		return p
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/promtool"); err == nil {
		return "/usr/bin/promtool"
	}
	t.Fatal("promtool not found (set SOCFLOW_PROMTOOL, or install Debian's prometheus package: deploy/local/stack up does)")
	return ""
}

// run runs promtool with args in dir and fails the test with its output on an error.
func run(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPrometheusConfigIsValid(t *testing.T) {
	out := run(t, "prometheus", "check", "config", "prometheus.yml")
	if !strings.Contains(out, "SUCCESS: 1 rule files found") {
		t.Errorf("the config does not load the rules:\n%s", out)
	}
}

func TestAlertRulesAreValid(t *testing.T) {
	run(t, "prometheus", "check", "rules", "rules/socflow.rules.yml")
}

func TestAlertRulesPassTheirUnitTests(t *testing.T) {
	run(t, "prometheus", "test", "rules", "tests/socflow.test.yml")
}

// ruleFile is the part of a Prometheus rule file this test reads.
type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Alert string `json:"alert"`
			Expr  string `json:"expr"`
		} `json:"rules"`
	} `json:"groups"`
}

// ruleTests is the part of a promtool rule test file this test reads.
type ruleTests struct {
	Tests []struct {
		AlertRuleTest []struct {
			Alertname string            `json:"alertname"`
			ExpAlerts []json.RawMessage `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestEveryAlertHasAFiringAndAQuietCase: promtool passes a rule with no test at all,
// so this checks that each alert is tested both ways.
func TestEveryAlertHasAFiringAndAQuietCase(t *testing.T) {
	var rules ruleFile
	readYAML(t, "prometheus/rules/socflow.rules.yml", &rules)
	var tests ruleTests
	readYAML(t, "prometheus/tests/socflow.test.yml", &tests)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if !fires[r.Alert] {
				t.Errorf("alert %s has no case where it fires", r.Alert)
			}
			if !quiet[r.Alert] {
				t.Errorf("alert %s has no case where it does not fire", r.Alert)
			}
		}
	}
	for _, want := range []string{"SocflowWorkerDown", "SocflowNonDeterminism", "SocflowWorkflowTaskFailures", "SocflowInstanceBlocked",
		"SocflowDependencyDown", "OpenCTITargetMissing", "OpenCTINodeEventloopLag", "WazuhServerTargetMissing", "WazuhWorkerNotInCluster"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

// TestDashboardQueriesParse checks every panel query with promtool (as recording rules,
// the one offline PromQL parser it has) and that socflow's metrics all have a panel.
func TestDashboardQueriesParse(t *testing.T) {
	d, err := LoadDashboard("grafana/socflow.json")
	if err != nil {
		t.Fatal(err)
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	var all string
	n := 0
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 || p.Targets[0].Expr == "" {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			n++
			e, _ := json.Marshal(q.Expr)
			fmt.Fprintf(&rules, "      - record: dashboard:q%d\n        expr: %s\n", n, e)
			all += q.Expr + "\n"
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, ".", "check", "rules", path)
	for _, m := range []string{workflows.MetricDeploys, workflows.MetricChanges, workflows.MetricUpgrades, workflows.MetricPhaseDuration,
		workflows.MetricProbeLatency, workflows.MetricHeals, workflows.MetricInstanceStatus} {
		if !strings.Contains(all, m) {
			t.Errorf("no panel shows %s", m)
		}
	}
}
