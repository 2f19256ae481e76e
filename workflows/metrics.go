package workflows

import (
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
)

// socflow's own metrics, served beside the SDK's on the worker's Prometheus endpoint
// (worker -metrics, default 127.0.0.1:9464). Workflows emit them through
// workflow.GetMetricsHandler, which stays silent while a history is replayed, so a
// worker that restarts or takes over a workflow counts nothing twice; emitting adds no
// command to a history, so no GetVersion guards it. The names are the handler's: the
// Prometheus naming scope adds _total to counters and _seconds to timers (histograms).
// Every metric also carries the SDK's tags (namespace, task_queue, workflow_type, …).
const (
	// MetricDeploys counts finished deploys by app and outcome (succeeded, failed).
	MetricDeploys = "socflow_deploys"
	// MetricChanges counts an instance's changes by app, kind (the change's name) and
	// outcome (applied, failed, refused by an upgrade's pre-flight, rejected as bad
	// input).
	MetricChanges = "socflow_changes"
	// MetricUpgrades counts finished upgrades by app and outcome (upgraded, checked,
	// refused, rolled_back, failed).
	MetricUpgrades = "socflow_upgrades"
	// MetricPhaseDuration times each deploy phase by app and phase, from entering it to
	// entering the next.
	MetricPhaseDuration = "socflow_phase_duration"
	// MetricProbeLatency times each attempt of a dependency probe by dependency and
	// outcome (ready, not_ready); activities emit it.
	MetricProbeLatency = activities.MetricProbeLatency
	// MetricHeals counts what health checks did by app and action (restarted,
	// restart_failed, escalated, rate_limited, reapplied).
	MetricHeals = "socflow_heals"
	// MetricInstanceStatus is 1 for an instance's current status and 0 for the other
	// three, by app, instance and status: sum by (status) counts instances by status.
	MetricInstanceStatus = "socflow_instance_status"
)

// The tag keys socflow's metrics carry beside the SDK's; a metric always carries the
// same keys, which Prometheus requires of one name.
const (
	// MetricTagApp is the app (opencti, wazuh).
	MetricTagApp = "app"
	// MetricTagOutcome is how a deploy, change, upgrade or probe attempt ended.
	MetricTagOutcome = "outcome"
	// MetricTagKind is a change's name (SetConfig, ApplySpec, …).
	MetricTagKind = "kind"
	// MetricTagPhase is a deploy phase.
	MetricTagPhase = "phase"
	// MetricTagDependency is a probed dependency (opensearch, rabbitmq, redis, s3, …).
	MetricTagDependency = "dependency"
	// MetricTagAction is what a heal did.
	MetricTagAction = "action"
	// MetricTagInstance is an instance's name; not "instance", which Prometheus gives
	// every scraped series (the worker's address) and would rename to exported_instance.
	MetricTagInstance = "socflow_instance"
	// MetricTagStatus is a status kind (maintenance, waiting, blocked, active).
	MetricTagStatus = "status"
)

// metricStatusKinds are the four kinds, each one series of MetricInstanceStatus.
var metricStatusKinds = []StatusKind{StatusMaintenance, StatusWaiting, StatusBlocked, StatusActive}

// countMetric adds one to a counter with the given tags; replay emits nothing.
func countMetric(ctx workflow.Context, name string, tags map[string]string) {
	workflow.GetMetricsHandler(ctx).WithTags(tags).Counter(name).Inc(1)
}

// metricValue makes an outcome or action a label value: lower case, no spaces
// ("rolled back" reads rolled_back), "unknown" when empty.
func metricValue(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.ReplaceAll(strings.ToLower(s), " ", "_")
}

// recordPhase times a closed deploy phase.
func recordPhase(ctx workflow.Context, app string, p Phase, d time.Duration) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{MetricTagApp: app, MetricTagPhase: string(p)}).
		Timer(MetricPhaseDuration).Record(d)
}

// recordInstanceStatus sets the instance's status gauges: 1 for kind, 0 for the others,
// so a status left shows 0 at once rather than a stale 1. It is set at every status an
// instance publishes, so a worker that took the instance over re-asserts it at the next.
func recordInstanceStatus(ctx workflow.Context, app, instance string, kind StatusKind) {
	h := workflow.GetMetricsHandler(ctx)
	for _, k := range metricStatusKinds {
		v := 0.0
		if k == kind {
			v = 1
		}
		h.WithTags(map[string]string{MetricTagApp: app, MetricTagInstance: instance, MetricTagStatus: string(k)}).
			Gauge(MetricInstanceStatus).Update(v)
	}
}
