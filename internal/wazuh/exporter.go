package wazuh

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
)

// Names of the exporter's layer, shared with the activity that pushes it.
const (
	// ExporterLayerLabel is the Pebble layer of the exporter: the charm's optional
	// `prometheus` layer, apart from the `wazuh` layer so that turning the exporter on
	// or changing it never touches the manager's services.
	ExporterLayerLabel = "prometheus"
	// ExporterService runs the exporter in the foreground.
	ExporterService = "prometheus-exporter"
	// ExporterCheck reads /metrics: every read is a full collection through the API
	// (a login and nine reads), so it fails when the exporter cannot log in.
	ExporterCheck = "prometheus-exporter-up"
	// ExporterUser is the API user the exporter reads as, created with the readonly
	// role by the deploy's user reconcile.
	ExporterUser = "prometheus"
	// ExporterPasswordEnv is the exporter's password variable: the only secret of the
	// layer, masked in diffs and set by the activity from the secret store.
	ExporterPasswordEnv = "WAZUH_API_PASSWORD"
)

// ExporterCheckPeriod spaces the check's reads: each costs the API about ten
// requests of its 300 a minute (api.yaml's max_request_per_minute), shared with the
// Prometheus scrapes and socflow's own reads.
const ExporterCheckPeriod = 30 * time.Second

// ExporterNode is the node that runs the exporter: the master only. The charm runs
// one per unit, each reading its own API; socflow keeps one, on the master, because
// the API users are reconciled there (a worker's API answers its logins only through
// the master, so a worker's exporter adds a dependency on the cluster link without
// adding a view: the agents, the cluster's health and the configuration check the
// exporter reads are cluster-wide), and one target per instance is what Prometheus
// then scrapes. What is lost is each worker's own remoted and analysisd counters.
const ExporterNode = 0

// ExporterPlan is the exporter's layer for the master of a defaulted, validated
// instance; password is the prometheus API user's, resolved by the activity from the
// secret store, so it lives only in the container's plan, never in a history. It
// returns an error when the instance has no exporter.
func ExporterPlan(in Instance, password string) (layer.Layer, error) {
	e := in.Wazuh.Exporter
	if e == nil {
		return layer.Layer{}, fmt.Errorf("cannot plan the exporter of wazuh instance %s: wazuh.exporter is not set", in.Name)
	}
	if len(in.Nodes) == 0 {
		return layer.Layer{}, fmt.Errorf("cannot plan the exporter of wazuh instance %s: it has no nodes", in.Name)
	}
	if password == "" {
		return layer.Layer{}, fmt.Errorf("cannot plan the exporter of wazuh instance %s: the %s API user's password is empty", in.Name, ExporterUser)
	}
	n := in.Nodes[ExporterNode]
	l := layer.Layer{
		Summary:     "wazuh prometheus exporter of node " + n.Name,
		Description: "Written by socflow for Wazuh instance " + in.Name + "; changes made by hand are reverted at the next reconcile.",
		Services: map[string]layer.Service{
			ExporterService: {
				Summary:  "wazuh-prometheus-exporter: the node's API as Prometheus metrics on port " + strconv.Itoa(e.Port),
				Override: layer.OverrideReplace, Startup: layer.StartupEnabled,
				Command: e.Command,
				// The exporter's whole configuration is its environment.
				Environment: map[string]string{
					InstanceEnv:          in.Name,
					"WAZUH_PROTOCOL":     "https",
					"WAZUH_API_HOST":     n.Address,
					"WAZUH_API_PORT":     strconv.Itoa(n.APIPort),
					"WAZUH_API_USERNAME": ExporterUser,
					ExporterPasswordEnv:  password,
					"EXPORTER_PORT":      strconv.Itoa(e.Port),
				},
				// It reads the API, which the manager's reload brings up.
				After: []string{ManagerService},
			},
		},
		Checks: map[string]layer.Check{
			ExporterCheck: {
				Override: layer.OverrideReplace, Level: layer.LevelAlive,
				Period: layer.Duration(ExporterCheckPeriod), Timeout: layer.Duration(20 * time.Second), Threshold: 3,
				HTTP: &layer.HTTPCheck{URL: ExporterMetricsURL(in)},
			},
		},
	}
	return l.WithLoki(in.Logs.LokiURL(), spec.LogLabels("wazuh", in.Name, "socflow_node", n.Name)), nil
}

// ExporterMetricsURL is where the exporter of in serves its metrics, as the check,
// the health read and Prometheus reach it ("" without an exporter).
func ExporterMetricsURL(in Instance) string {
	e := in.Wazuh.Exporter
	if e == nil || len(in.Nodes) == 0 {
		return ""
	}
	return "http://" + net.JoinHostPort(in.Nodes[ExporterNode].Address, strconv.Itoa(e.Port)) + "/metrics"
}

// ExporterMask is what a diff of the exporter's layer may show of an environment
// value: everything but the password.
func ExporterMask(service, key, value string) string {
	if key == ExporterPasswordEnv {
		return layer.Hidden
	}
	return value
}
