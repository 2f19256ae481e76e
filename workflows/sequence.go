package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// sequence is the state every deploy sequence shares, whatever the app: the status
// the status query reads, the step tracker, the logger and the parent to tell of
// progress. An app's deploy embeds it and adds its input and steps.
type sequence struct {
	status DeployStatus
	tr     tracker
	logger log.Logger
	// parent is the OpenCTIInstance that runs this deploy as its child, told of each
	// status change (DeployProgressChange); nil when there is none to tell.
	parent *workflow.Execution
	// told is the status the parent was last told.
	told Status
	// resume says how to resume after a failure, ending the Blocked message.
	resume string
	// app names the app in the deploy's metrics.
	app string
}

// setup registers the status query and sets the instance and app search attributes,
// so deploys started with tctl are findable too.
func (d *sequence) setup(ctx workflow.Context, instance, app string) error {
	d.logger = log.With(workflow.GetLogger(ctx), "instance", instance)
	d.app = app
	d.status = DeployStatus{Instance: instance, Status: Status{Kind: StatusMaintenance, Message: "deploy accepted"}}
	d.tr = tracker{st: &d.status.Status, lastReason: &d.status.LastReason, publish: d.publish, logger: d.logger}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (DeployStatus, error) { return d.status, nil }); err != nil {
		return fmt.Errorf("cannot register the status query: %w", err)
	}
	if p := workflow.GetInfo(ctx).ParentWorkflowExecution; p != nil &&
		workflow.GetVersion(ctx, DeployProgressChange, workflow.DefaultVersion, DeployProgress) != workflow.DefaultVersion {
		d.parent = p
	}
	// Set here too, not only by the starter, so deploys started with tctl are findable.
	attrs := []temporal.SearchAttributeUpdate{SearchAttrInstance.ValueSet(instance), SearchAttrApp.ValueSet(app)}
	if workflow.GetVersion(ctx, StepStatusChange, workflow.DefaultVersion, StepStatus) != workflow.DefaultVersion {
		d.tr.keyed, d.tr.upserted = true, StatusMaintenance
		attrs = append(attrs, SearchAttrStatus.ValueSet(string(StatusMaintenance)))
	}
	return workflow.UpsertTypedSearchAttributes(ctx, attrs...)
}

// step runs one short activity of the current phase through the shared retry helper,
// so that a retried step shows in the status with its attempt and last error.
func (d *sequence) step(ctx workflow.Context, opts workflow.ActivityOptions, fn, in, out any) error {
	return d.tr.runStep(ctx, string(d.status.Phase), opts, fn, in, out)
}

// enter closes the current phase and opens the next, in maintenance.
func (d *sequence) enter(ctx workflow.Context, p Phase) {
	d.enterStatus(ctx, p, d.maintenance(p))
}

// maintenance is the status while phase p is in progress.
func (d *sequence) maintenance(p Phase) Status {
	return Status{Kind: StatusMaintenance, Step: string(p), Message: phaseDoing[p]}
}

// phaseDoing says what each phase is doing, for the maintenance status.
var phaseDoing = map[Phase]string{
	PhaseValidating:        "validating the spec",
	PhaseEnsuringSecrets:   "ensuring the instance's secrets",
	PhaseWaitingDeps:       "probing opensearch, rabbitmq, redis and s3",
	PhaseCheckingPrefix:    "checking the index prefix against the other instances'",
	PhaseEnsuringBucket:    "ensuring the s3 bucket",
	PhasePushingPlan:       "pushing the pebble plan into the container",
	PhaseStartingPlatform:  "starting the platform",
	PhaseWaitingPlatform:   "waiting for the platform to answer /health",
	PhaseAddingHealthCheck: "adding the platform's health check",
	PhaseVerifying:         "verifying the platform's version and admin token",
	PhaseStartingWorkers:   "starting the workers",
	PhaseStartingNodes:     "starting the platform's further nodes, one after another",
	PhaseRelatingOpenCTI:   "taking the URL and a connector user's token from the OpenCTI instance",
	PhaseSyncingRepo:       "syncing the configuration repository",
	PhaseConfiguringNode:   "pushing ossec.conf, filebeat and rsyslog settings and the layer",
	PhaseStartingManager:   "reloading the manager (wazuh-control reload)",
	PhaseStartingShippers:  "starting filebeat and rsyslog",
	PhaseAPIUsers:          "reconciling the Wazuh API users",
	PhaseStartingExporter:  "starting the Prometheus exporter",
	PhaseWaitingCluster:    "waiting for the workers to join the master",
	PhaseSchedulingHealth:  "scheduling the health checks",
}

// enterStatus closes the current phase and opens p with status s, and publishes both
// (search attributes in one upsert, the Web UI's details).
func (d *sequence) enterStatus(ctx workflow.Context, p Phase, s Status) {
	now := workflow.Now(ctx)
	if n := len(d.status.Timings); n > 0 {
		if last := d.status.Timings[n-1]; last.End.IsZero() {
			recordPhase(ctx, d.app, last.Phase, now.Sub(last.Start))
		}
		d.status.Timings[n-1].End = now
	}
	switch p {
	case PhaseDone:
		countMetric(ctx, MetricDeploys, map[string]string{MetricTagApp: d.app, MetricTagOutcome: "succeeded"})
	case PhaseFailed:
		countMetric(ctx, MetricDeploys, map[string]string{MetricTagApp: d.app, MetricTagOutcome: "failed"})
	}
	if p != PhaseDone && p != PhaseFailed {
		d.status.Timings = append(d.status.Timings, PhaseTiming{Phase: p, Start: now})
	}
	d.status.Phase = p
	d.logger.Info("deploy phase", "phase", p, "status", s.Kind)
	d.tr.set(ctx, s, SearchAttrPhase.ValueSet(string(p)))
}

// publish shows the status, the phase and the latest reasons on the Web UI's workflow page.
func (d *sequence) publish(ctx workflow.Context) {
	st := d.status.Status
	lines := []string{fmt.Sprintf("**%s** — **%s**: %s", d.status.Instance, st.Kind, st.Message), "",
		fmt.Sprintf("phase: `%s`", d.status.Phase)}
	if st.Retrying() {
		lines = append(lines, fmt.Sprintf("retrying `%s`: attempt %d at %s, last error: %s",
			st.Step, st.Attempt, st.NextAttemptAt.UTC().Format(time.TimeOnly+" UTC"), st.LastError))
	}
	lines = append(lines, "")
	for _, dep := range d.status.Dependencies {
		line := "- " + dep.Name + ": " + string(dep.State)
		if dep.Reason != "" {
			line += " — " + dep.Reason
		}
		lines = append(lines, line)
	}
	if d.status.Platform != "" {
		lines = append(lines, "- platform: "+d.status.Platform)
	}
	if d.status.Error != "" {
		lines = append(lines, "", "**failed:** "+d.status.Error)
	}
	workflow.SetCurrentDetails(ctx, strings.Join(lines, "\n"))
	if d.parent != nil && d.status.Status != d.told {
		// Fire and forget: a parent that is gone has no status to show.
		d.told = d.status.Status
		workflow.SignalExternalWorkflow(ctx, d.parent.ID, "", DeployProgressSignal, d.status.Status)
	}
}

// fail records err and blocks: the message is the reason, which names the fix, and how
// to resume.
func (d *sequence) fail(ctx workflow.Context, err error) {
	d.status.Error = err.Error()
	d.status.LastReason = err.Error()
	msg := operatorReason(err) + "; fix that, then " + d.resume
	if temporal.IsCanceledError(err) {
		msg = "the deploy was canceled; run it again to resume"
	}
	d.enterStatus(ctx, PhaseFailed, Status{Kind: StatusBlocked, Step: string(d.status.Phase), Message: msg})
	d.logger.Error("deploy failed", "error", err)
}

func (d *sequence) warnings() []string {
	var w []string
	for _, dep := range d.status.Dependencies {
		if dep.Warning != "" {
			w = append(w, dep.Name+": "+dep.Warning)
		}
	}
	return w
}
