package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/opencti"
)

// The phases of an upgrade, as its status names them.
const (
	upgradePreflight       = "preflight"
	upgradeStopping        = "stopping"
	upgradePushingPlan     = "pushing-plan"
	upgradeStartingPlatorm = "starting-platform"
	upgradeMigrating       = "migrating"
	upgradeReadyCheck      = "adding-health-check"
	upgradeVerifying       = "verifying"
	upgradeStartingWorkers = "starting-workers"
	upgradeSnapshot        = "snapshot"
	upgradeRollingBack     = "rolling-back"
	upgradeCheckingWorkers = "checking-workers"
	upgradeStartingNodes   = "starting-nodes"
)

// snapshotOptions: a snapshot or a restore of a large instance takes as long as its
// data needs; the activity heartbeats every second with its progress, so a lost
// worker is noticed in half a minute and the retry waits for the same snapshot.
var snapshotOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 6 * time.Hour,
	HeartbeatTimeout:    30 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 10},
}

// preflightProbeWindow is how long a pre-flight probe of a dependency polls: the
// state now, not a wait.
const preflightProbeWindow = 5 * time.Second

// UpgradeOpenCTI upgrades one instance's platform and workers, the charm's `juju
// refresh` made a checked sequence: pre-flight (every finding at once, nothing
// changed when one is an error) → stop the connectors, the workers, then the platform
// (Pebble's kill-delay bounds a stop that hangs, then SIGKILL) → push the target's
// plan → start the platform and wait for its migrations as long as they take (never
// restarting a platform that migrates) → re-add its health check → verify it reports
// the target version → start the workers. The instance workflow runs it as its child
// and then brings its connectors up on the target's commands. Started without a spec
// (tctl), it forwards the request to the instance (forwardUpgrade).
func UpgradeOpenCTI(ctx workflow.Context, in UpgradeInput) (UpgradeResult, error) {
	if in.Spec == nil {
		return forwardUpgrade(ctx, in)
	}
	u := &upgrade{in: in, base: in.Spec.WithDefaults()}
	u.next = in.UpgradeTarget.Upgraded(u.base)
	if err := u.setup(ctx); err != nil {
		return UpgradeResult{}, err
	}
	res, err := u.run(ctx)
	outcome := res.Outcome
	if err != nil {
		u.tr.set(ctx, Status{Kind: StatusBlocked, Step: u.status.Status.Step, Message: "upgrade failed: " + operatorReason(err)})
		outcome = "failed"
	}
	countMetric(ctx, MetricUpgrades, map[string]string{MetricTagApp: AppOpenCTI, MetricTagOutcome: metricValue(outcome)})
	return res, err
}

// upgrade is the state of one UpgradeOpenCTI run; the status query reads it.
type upgrade struct {
	in         UpgradeInput
	base, next opencti.Instance
	status     UpgradeStatus
	tr         tracker
	logger     log.Logger
}

func (u *upgrade) setup(ctx workflow.Context) error {
	u.logger = log.With(workflow.GetLogger(ctx), "instance", u.base.Name)
	u.status = UpgradeStatus{Instance: u.base.Name, From: u.base.OpenCTI.Version, To: u.in.Version,
		Status: Status{Kind: StatusMaintenance, Message: "upgrade accepted"}}
	u.tr = tracker{st: &u.status.Status, keyed: true, upserted: StatusMaintenance, publish: u.publish, logger: u.logger}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (UpgradeStatus, error) { return u.status, nil }); err != nil {
		return fmt.Errorf("cannot register the status query: %w", err)
	}
	return workflow.UpsertTypedSearchAttributes(ctx, SearchAttrInstance.ValueSet(u.base.Name), SearchAttrApp.ValueSet(AppOpenCTI),
		SearchAttrStatus.ValueSet(string(StatusMaintenance)))
}

// enter closes the current phase and opens the next, in maintenance, saying what it does.
func (u *upgrade) enter(ctx workflow.Context, phase, doing string) {
	now := workflow.Now(ctx)
	if n := len(u.status.Timings); n > 0 {
		u.status.Timings[n-1].End = now
	}
	u.status.Timings = append(u.status.Timings, PhaseTiming{Phase: Phase(phase), Start: now})
	u.logger.Info("upgrade phase", "phase", phase)
	u.tr.set(ctx, Status{Kind: StatusMaintenance, Step: phase, Message: fmt.Sprintf("upgrading %s -> %s: %s", u.status.From, u.status.To, doing)},
		SearchAttrPhase.ValueSet("upgrade/"+phase))
}

// result is the upgrade's result with the given outcome, timings closed.
func (u *upgrade) result(ctx workflow.Context, outcome string) UpgradeResult {
	if n := len(u.status.Timings); n > 0 && u.status.Timings[n-1].End.IsZero() {
		u.status.Timings[n-1].End = workflow.Now(ctx)
	}
	return UpgradeResult{Instance: u.base.Name, From: u.status.From, To: u.status.To, Outcome: outcome,
		Snapshot: u.status.Snapshot, Findings: u.status.Findings, Timings: u.status.Timings}
}

func (u *upgrade) run(ctx workflow.Context) (UpgradeResult, error) {
	u.enter(ctx, upgradePreflight, "checking versions, data, dependencies, disk, encryption key and health")
	u.status.Findings = opencti.PreflightUpgrade(u.base, u.in.Version, u.facts(ctx))
	if u.in.Check {
		u.tr.set(ctx, Status{Kind: StatusActive, Step: upgradePreflight, Message: "pre-flight done: " + findingsLine(u.status.Findings)})
		return u.result(ctx, UpgradeChecked), nil
	}
	if opencti.Blocking(u.status.Findings) {
		// A result, not an error: the instance (or tctl's caller) reads its findings.
		u.tr.set(ctx, Status{Kind: StatusBlocked, Step: upgradePreflight, Message: "upgrade refused by the pre-flight, nothing was changed: " +
			findingsLine(u.status.Findings)})
		return u.result(ctx, UpgradeRefused), nil
	}

	inst := u.base
	u.enter(ctx, upgradeStopping, "stopping the connectors, the workers, then the platform (further nodes first)")
	for _, cn := range inst.Connectors {
		err := u.tr.runStep(ctx, upgradeStopping, pebbleOptions, a.StopPebbleServices,
			activities.StopPebbleServicesInput{Pebble: cn.Pebble, Services: []string{opencti.ConnectorService}}, nil)
		if err != nil {
			return u.result(ctx, ""), fmt.Errorf("cannot stop connector %s: %w", cn.Name, err)
		}
	}
	// The platform last, so no worker or connector crash-loops against a stopped
	// one; Pebble ends a stop that hangs after the platform's kill-delay (SIGKILL).
	if err := u.stopPlatform(ctx, inst); err != nil {
		return u.result(ctx, ""), u.startAgain(ctx, err)
	}

	// With everything stopped the snapshot is consistent; what follows may change
	// the data, so from here a failure rolls back to it.
	snapshot := strings.ToLower(fmt.Sprintf("%s-upgrade-%s-to-%s-%s", inst.Name, u.status.From, u.status.To, workflow.GetInfo(ctx).WorkflowExecution.RunID[:8]))
	u.enter(ctx, upgradeSnapshot, "taking snapshot "+snapshot+" of the instance's indices and templates")
	var snap activities.SnapshotResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, snapshotOptions), a.SnapshotInstance,
		activities.SnapshotInput{OpenSearch: *inst.Integrations.OpenSearch, Prefix: inst.Name, Snapshot: snapshot}).Get(ctx, &snap)
	if err != nil {
		return u.result(ctx, ""), u.startAgain(ctx, wrapReason("cannot snapshot the instance before migrating it (nothing was migrated)", err))
	}
	u.status.Snapshot = snap.Repository + "/" + snap.Snapshot
	u.logger.Info("snapshot taken", "snapshot", u.status.Snapshot, "indices", len(snap.Indices), "templates", snap.Templates)

	if err := u.migrate(ctx); err != nil {
		return u.rollback(ctx, err)
	}
	res := u.result(ctx, UpgradeUpgraded)
	u.tr.set(ctx, Status{Kind: StatusActive, Message: fmt.Sprintf("upgraded %s -> %s (snapshot %s)", u.status.From, u.status.To, u.status.Snapshot)})
	return res, nil
}

// startAgain is the compensation of a failure before anything was migrated: the
// previous version's plan is still in the container, so its platform and workers are
// started again (the instance restarts the connectors at its next change); cause is
// returned with what was done.
func (u *upgrade) startAgain(ctx workflow.Context, cause error) error {
	if temporal.IsCanceledError(cause) {
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	reason := ErrorReason(cause)
	u.enter(ctx, upgradeRollingBack, "the upgrade failed before migrating ("+reason+"); starting "+u.status.From+" again")
	if err := u.startPlatform(ctx, u.base, "", upgradeRollingBack, "starting "+u.status.From+" again"); err != nil {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s; and %s could not be started again: %s (start it by hand: pebble start platform, then the workers)",
			reason, u.status.From, ErrorReason(err)), "RollbackFailed", nil)
	}
	return temporal.NewNonRetryableApplicationError(reason+" (nothing was migrated; "+u.status.From+" runs again)", "UpgradeFailed", nil)
}

// stopPlatform stops the workers, the further nodes' platforms, then the first
// node's platform.
func (u *upgrade) stopPlatform(ctx workflow.Context, inst opencti.Instance) error {
	step := u.status.Status.Step
	err := u.tr.runStep(ctx, step, pebbleOptions, a.StopPebbleServices,
		activities.StopPebbleServicesInput{Pebble: inst.Pebble, Services: opencti.WorkerServices(*inst.OpenCTI.Workers)}, nil)
	if err != nil {
		return fmt.Errorf("cannot stop the workers: %w", err)
	}
	if u.withNodes(ctx) {
		if _, err := stopNodes(ctx, &u.tr, step, inst.OpenCTI.Nodes); err != nil {
			return err
		}
	}
	err = u.tr.runStep(ctx, step, pebbleOptions, a.StopPebbleServices,
		activities.StopPebbleServicesInput{Pebble: inst.Pebble, Services: []string{opencti.PlatformService}}, nil)
	if err != nil {
		return fmt.Errorf("cannot stop the platform: %w", err)
	}
	return nil
}

// withNodes says whether the instance has further nodes for this run to stop and start
// (PlatformNodesChange).
func (u *upgrade) withNodes(ctx workflow.Context) bool {
	return len(u.base.OpenCTI.Nodes) > 0 && workflow.GetVersion(ctx, PlatformNodesChange, workflow.DefaultVersion, PlatformNodes) != workflow.DefaultVersion
}

// migrate pushes the target's plan, starts its platform, waits while it migrates,
// re-adds its health check, verifies its version and starts its workers.
func (u *upgrade) migrate(ctx workflow.Context) error {
	next, refs := u.next, u.in.Secrets
	u.enter(ctx, upgradePushingPlan, "pushing the plan of "+u.in.Version)
	var applied activities.ApplyOpenCTIPlanResult
	err := u.tr.runStep(ctx, upgradePushingPlan, pebbleOptions, a.ApplyOpenCTIPlan, activities.ApplyOpenCTIPlanInput{Instance: next, Secrets: refs}, &applied)
	if err != nil {
		return wrapReason("cannot push the plan of "+u.in.Version, err)
	}
	u.enter(ctx, upgradeStartingPlatorm, "starting the platform "+u.in.Version)
	return u.startPlatform(ctx, next, applied.PlatformDigest, upgradeMigrating, "the platform migrates its data; its port stays closed until it is done")
}

// startPlatform starts a platform whose plan is pushed, waits (in phase wait) until it
// is healthy, re-adds its health check, verifies its version and starts its workers.
func (u *upgrade) startPlatform(ctx workflow.Context, inst opencti.Instance, digest, wait, doing string) error {
	refs := u.in.Secrets
	since := workflow.Now(ctx)
	err := u.tr.runStep(ctx, u.status.Status.Step, pebbleOptions, a.StartPebbleServices,
		activities.StartPebbleServicesInput{Pebble: inst.Pebble, Services: []string{opencti.PlatformService}, Watched: true}, nil)
	if err != nil {
		return fmt.Errorf("cannot start the platform: %w", err)
	}
	u.enter(ctx, wait, doing)
	err = waitPlatformHealthy(ctx, activities.WaitOpenCTIHealthyInput{Instance: inst, HealthAccessKey: refs.HealthAccessKey,
		PlatformDigest: digest, Since: since}, "OpenCTI "+inst.OpenCTI.Version, u.in.HangAfter,
		func(ctx workflow.Context, pr activities.ProbeResult, err error) {
			if err == nil && !pr.Ready && pr.Reason != "" {
				u.tr.set(ctx, Status{Kind: StatusMaintenance, Step: wait, Message: doing + ": " + pr.Reason})
			}
		})
	if err != nil {
		return err
	}
	u.enter(ctx, upgradeReadyCheck, "re-adding the platform's health check")
	err = u.tr.runStep(ctx, upgradeReadyCheck, pebbleOptions, a.AddOpenCTIReadyCheck,
		activities.AddOpenCTIReadyCheckInput{Instance: inst, HealthAccessKey: refs.HealthAccessKey}, nil)
	if err != nil {
		return fmt.Errorf("cannot add the platform health check: %w", err)
	}
	u.enter(ctx, upgradeVerifying, "verifying the platform reports "+inst.OpenCTI.Version)
	err = u.tr.runStep(ctx, upgradeVerifying, graphqlOptions, a.VerifyOpenCTI, activities.VerifyOpenCTIInput{Instance: inst, AdminToken: refs.AdminToken}, nil)
	if err != nil {
		return fmt.Errorf("cannot verify the platform: %w", err)
	}
	if u.withNodes(ctx) {
		// Only now, the first node migrated and healthy on this version: a node
		// started earlier would take the init lock or migrate beside it.
		u.enter(ctx, upgradeStartingNodes, "starting the further nodes on "+inst.OpenCTI.Version+", one after another")
		if _, err := bringNodesUp(ctx, &u.tr, upgradeStartingNodes, inst, refs, true); err != nil {
			return err
		}
	}
	u.enter(ctx, upgradeStartingWorkers, "starting the workers of "+inst.OpenCTI.Version)
	workers := opencti.WorkerServices(*inst.OpenCTI.Workers)
	started := workflow.Now(ctx)
	err = u.tr.runStep(ctx, upgradeStartingWorkers, pebbleOptions, a.StartPebbleServices,
		activities.StartPebbleServicesInput{Pebble: inst.Pebble, Services: workers}, nil)
	if err != nil {
		return fmt.Errorf("cannot start the workers: %w", err)
	}
	// Running is not working: a worker of another version stays alive and fails
	// every call (opencti.md §8), so watch the workers' first polls. A worker down or
	// cut off from the platform is watched again, up to WorkerWatchPatience.
	u.enter(ctx, upgradeCheckingWorkers, "checking the workers work against "+inst.OpenCTI.Version)
	var check activities.CheckOpenCTIWorkersResult
	err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: activities.WorkerWatchPatience + upgradeWorkerWatch + time.Minute,
		HeartbeatTimeout: 30 * time.Second, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 3}}), a.CheckOpenCTIWorkers,
		activities.CheckOpenCTIWorkersInput{Pebble: inst.Pebble, Services: workers, Since: started, Window: upgradeWorkerWatch}).Get(ctx, &check)
	if err != nil {
		return fmt.Errorf("cannot check the workers: %w", err)
	}
	if len(check.Failing) > 0 {
		var lines []string
		for _, w := range sortedKeys(check.Failing) {
			lines = append(lines, w+": "+check.Failing[w])
		}
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("the workers run but do not work against %s (%s): give the workers of that version (workerCommand)",
			inst.OpenCTI.Version, strings.Join(lines, "; ")), "WorkersFailing", nil)
	}
	return nil
}

// upgradeWorkerWatch is how long the workers' first polls are watched after an
// upgrade: a worker polls the platform every few seconds.
const upgradeWorkerWatch = 10 * time.Second

// rollback is the upgrade's compensation once the migration may have touched the
// data: stop the target's platform, restore the snapshot (the instance's indices and
// templates, nothing else), push the previous version's plan, start it and verify it,
// start its workers. A cancelled upgrade rolls back too, on a disconnected context.
// When the rollback itself fails, the error names the exact manual steps.
func (u *upgrade) rollback(ctx workflow.Context, cause error) (UpgradeResult, error) {
	if temporal.IsCanceledError(cause) {
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	reason := ErrorReason(cause)
	base, refs := u.base, u.in.Secrets
	u.logger.Error("upgrade failed; rolling back", "error", reason, "snapshot", u.status.Snapshot)
	u.enter(ctx, upgradeRollingBack, "the upgrade failed ("+reason+"); restoring "+u.status.Snapshot+" and starting "+u.status.From)
	manual := func(step string, err error) (UpgradeResult, error) {
		repo, name, _ := strings.Cut(u.status.Snapshot, "/")
		return u.result(ctx, ""), temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"upgrade failed (%s) and its rollback failed at %s: %s. By hand: stop the platform (pebble stop platform, on every node); delete the indices %s_* "+
				"and restore the snapshot: POST _snapshot/%s/%s/_restore {\"indices\": \"%s_*,-%s%s\", \"include_aliases\": true}; "+
				"put back the templates saved in %s%s/_doc/%s; push the plan of %s (starter deploy -f with opencti.version %s) and start it (it starts the further nodes after the first)",
			reason, step, operatorReason(err), base.Name, repo, name, base.Name, base.Name, activities.SnapshotBackupSuffix, base.Name, activities.SnapshotBackupSuffix, name,
			u.status.From, u.status.From), "RollbackFailed", nil)
	}
	if err := u.stopPlatform(ctx, u.next); err != nil {
		return manual("stopping the platform", err)
	}
	_, name, _ := strings.Cut(u.status.Snapshot, "/")
	var restored activities.RestoreResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, snapshotOptions), a.RestoreInstance,
		activities.RestoreInput{OpenSearch: *base.Integrations.OpenSearch, Prefix: base.Name, Snapshot: name}).Get(ctx, &restored)
	if err != nil {
		return manual("restoring the snapshot", err)
	}
	var applied activities.ApplyOpenCTIPlanResult
	err = u.tr.runStep(ctx, upgradeRollingBack, pebbleOptions, a.ApplyOpenCTIPlan, activities.ApplyOpenCTIPlanInput{Instance: base, Secrets: refs}, &applied)
	if err != nil {
		return manual("pushing the plan of "+u.status.From, err)
	}
	if err := u.startPlatform(ctx, base, applied.PlatformDigest, upgradeRollingBack, "starting "+u.status.From+" on the restored data"); err != nil {
		return manual("starting "+u.status.From, err)
	}
	res := u.result(ctx, UpgradeRolledBack)
	res.Reason = reason
	u.tr.set(ctx, Status{Kind: StatusActive, Message: fmt.Sprintf("rolled back to %s: %s", u.status.From, reason)})
	return res, nil
}

// ErrTypePreflightFailed is the error type of an upgrade the pre-flight refused.
const ErrTypePreflightFailed = "PreflightFailed"

// facts reads what the pre-flight judges, all at once and in parallel, each read
// once with short timeouts: the running version, the search engine's facts, the
// dependencies for the target, the encryption key (7.x) and the health now. A read
// that fails becomes a finding, not an error.
func (u *upgrade) facts(ctx workflow.Context) opencti.UpgradeFacts {
	inst, refs := u.base, u.in.Secrets
	once := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 2}})
	var f opencti.UpgradeFacts
	about := workflow.ExecuteActivity(once, a.VerifyOpenCTI, activities.VerifyOpenCTIInput{Instance: inst, AdminToken: refs.AdminToken})
	search := workflow.ExecuteActivity(once, a.ReadSearchUpgradeFacts, activities.ReadSearchUpgradeFactsInput{OpenSearch: *inst.Integrations.OpenSearch, Prefix: inst.Name})
	health := workflow.ExecuteActivity(once, a.CheckOpenCTIHealth, activities.CheckOpenCTIHealthInput{Instance: inst, HealthAccessKey: refs.HealthAccessKey})
	var nodeHealth []workflow.Future
	if u.withNodes(ctx) {
		for _, n := range inst.OpenCTI.Nodes {
			nodeHealth = append(nodeHealth, workflow.ExecuteActivity(once, a.CheckOpenCTIHealth,
				activities.CheckOpenCTIHealthInput{Instance: inst.OnNode(n), HealthAccessKey: refs.HealthAccessKey}))
		}
	}
	var key workflow.Future
	if v, err := opencti.ParseVersion(u.in.Version); err == nil && v.Major() >= 7 {
		key = workflow.ExecuteActivity(once, a.CheckInstanceSecret, activities.CheckInstanceSecretInput{Field: "opencti.encryptionKey", Ref: refs.EncryptionKey})
	}
	var deps []workflow.Future
	probes := dependencyProbes(inst)[:3] // opensearch, rabbitmq, redis: the ones with version minimums
	for _, p := range probes {
		deps = append(deps, workflow.ExecuteActivity(once, p.fn, p.input(preflightProbeWindow)))
	}

	var ver activities.VerifyOpenCTIResult
	if err := about.Get(ctx, &ver); err != nil {
		f.RunningError = ErrorReason(err)
	}
	f.Running = ver.Version
	var sf activities.SearchUpgradeFacts
	if err := search.Get(ctx, &sf); err != nil {
		f.SearchError = ErrorReason(err)
	}
	f.Data, f.SearchHealth, f.DiskNode, f.DiskUsedPercent, f.DiskFreeBytes = sf.DataVersion, sf.Health, sf.DiskNode, sf.DiskUsedPercent, sf.DiskFreeBytes
	f.FloodStage, f.FloodStagePercent, f.FloodStageFreeBytes = sf.FloodStage, sf.FloodStagePercent, sf.FloodStageFreeBytes
	f.SnapshotRepository = sf.SnapshotRepository
	var h activities.CheckOpenCTIHealthResult
	if err := health.Get(ctx, &h); err != nil {
		h.Reason = ErrorReason(err)
	}
	f.Health = h.Reason
	for i, fut := range nodeHealth {
		// Every node must serve now: an upgrade that starts them again cannot tell a
		// node it broke from one that was down before.
		var nh activities.CheckOpenCTIHealthResult
		if err := fut.Get(ctx, &nh); err != nil {
			nh.Reason = ErrorReason(err)
		}
		if nh.Reason != "" {
			f.Health = strings.TrimPrefix(f.Health+"; node "+inst.OpenCTI.Nodes[i].Name+": "+nh.Reason, "; ")
		}
	}
	if key != nil {
		var k activities.CheckInstanceSecretResult
		if err := key.Get(ctx, &k); err != nil {
			k.Problem = ErrorReason(err)
		}
		f.EncryptionKey = k.Problem
	}
	for i, fut := range deps {
		var pr activities.ProbeResult
		d := opencti.DependencyFact{Name: probes[i].name}
		switch err := fut.Get(ctx, &pr); {
		case err != nil:
			d.Problem = ErrorReason(err)
		case !pr.Ready:
			d.Problem = "not ready: " + pr.Reason
		}
		d.Version, d.Warning = pr.Version, pr.Warning
		f.Dependencies = append(f.Dependencies, d)
	}
	return f
}

// findingsText is the findings, one per line.
func findingsText(fs []opencti.Finding) string {
	lines := make([]string, len(fs))
	for i, f := range fs {
		lines[i] = "  - " + f.String()
	}
	return strings.Join(lines, "\n")
}

// findingsLine says on one line how many errors and warnings the pre-flight found.
func findingsLine(fs []opencti.Finding) string {
	errs := 0
	for _, f := range fs {
		if f.Severity == opencti.FindingError {
			errs++
		}
	}
	if len(fs) == 0 {
		return "no findings: ready to upgrade"
	}
	verdict := "ready to upgrade"
	if errs > 0 {
		verdict = "the upgrade would be refused"
	}
	return fmt.Sprintf("%d error(s), %d warning(s): %s", errs, len(fs)-errs, verdict)
}

// publish shows the upgrade's status, phase and findings on the Web UI's page.
func (u *upgrade) publish(ctx workflow.Context) {
	st := u.status.Status
	lines := []string{fmt.Sprintf("**%s** %s -> %s — **%s**: %s", u.status.Instance, u.status.From, u.status.To, st.Kind, st.Message)}
	if st.Retrying() {
		lines = append(lines, fmt.Sprintf("retrying `%s`: attempt %d, last error: %s", st.Step, st.Attempt, st.LastError))
	}
	for _, f := range u.status.Findings {
		lines = append(lines, "- "+f.String())
	}
	workflow.SetCurrentDetails(ctx, strings.Join(lines, "\n"))
}

// forwardUpgrade is UpgradeOpenCTI started on its own (tctl, with {"instance": NAME,
// "targetVersion": V}): it sends the instance the Upgrade signal, naming itself as
// the one to tell, and returns the upgrade's result when the instance signals it —
// so there is one upgrade sequence, serialised with the instance's other changes.
func forwardUpgrade(ctx workflow.Context, in UpgradeInput) (UpgradeResult, error) {
	if in.Instance == "" {
		return UpgradeResult{}, temporal.NewNonRetryableApplicationError(
			"instance: is required (fix: start with {\"instance\": \"<name>\", \"targetVersion\": \"<version>\"})", "InvalidInput", nil)
	}
	run := workflow.GetInfo(ctx).WorkflowExecution
	self := run.ID
	t := in.UpgradeTarget
	// The run ID makes each run its own request: a second run under the same
	// workflow ID is a new upgrade, not a repeat of the first.
	req := UpgradeRequest{RequestID: self + "/" + run.RunID, TargetVersion: t.Version, PlatformCommand: t.PlatformCommand, WorkerCommand: t.WorkerCommand,
		ConnectorCommands: t.ConnectorCommands, Check: in.Check, ReplyTo: self}
	err := workflow.SignalExternalWorkflow(ctx, InstanceWorkflowID(in.Instance), "", UpgradeUpdate, req).Get(ctx, nil)
	if err != nil {
		return UpgradeResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("cannot send the upgrade to %s: %s (is the instance running?)",
			InstanceWorkflowID(in.Instance), ErrorReason(err)), "InstanceNotFound", nil)
	}
	var res ChangeResult
	workflow.GetSignalChannel(ctx, UpgradeDoneSignal).Receive(ctx, &res)
	out := UpgradeResult{Instance: in.Instance, To: in.Version}
	if res.Upgrade != nil {
		out = *res.Upgrade
	}
	if res.Error != "" {
		return out, temporal.NewNonRetryableApplicationError(res.Error, "UpgradeFailed", nil)
	}
	return out, nil
}
