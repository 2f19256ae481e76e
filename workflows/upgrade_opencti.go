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
)

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
	if err != nil {
		u.tr.set(ctx, Status{Kind: StatusBlocked, Step: u.status.Status.Step, Message: "upgrade failed: " + operatorReason(err)})
	}
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
		Findings: u.status.Findings, Timings: u.status.Timings}
}

func (u *upgrade) run(ctx workflow.Context) (UpgradeResult, error) {
	u.enter(ctx, upgradePreflight, "checking versions, data, dependencies, disk, encryption key and health")
	u.status.Findings = opencti.PreflightUpgrade(u.base, u.in.Version, u.facts(ctx))
	if u.in.Check {
		u.tr.set(ctx, Status{Kind: StatusActive, Step: upgradePreflight, Message: "pre-flight done: " + findingsLine(u.status.Findings)})
		return u.result(ctx, UpgradeChecked), nil
	}
	if opencti.Blocking(u.status.Findings) {
		return u.result(ctx, UpgradeRefused), temporal.NewNonRetryableApplicationError(
			"upgrade refused by the pre-flight, nothing was changed:\n"+findingsText(u.status.Findings), ErrTypePreflightFailed, nil)
	}

	inst, next, refs := u.base, u.next, u.in.Secrets
	u.enter(ctx, upgradeStopping, "stopping the connectors, the workers, then the platform")
	for _, cn := range inst.Connectors {
		err := u.tr.runStep(ctx, upgradeStopping, pebbleOptions, a.StopPebbleServices,
			activities.StopPebbleServicesInput{Pebble: cn.Pebble, Services: []string{opencti.ConnectorService}}, nil)
		if err != nil {
			return u.result(ctx, ""), fmt.Errorf("cannot stop connector %s: %w", cn.Name, err)
		}
	}
	// The platform last, so no worker or connector crash-loops against a stopped
	// one; Pebble ends a stop that hangs after the platform's kill-delay (SIGKILL).
	for _, services := range [][]string{opencti.WorkerServices(*inst.OpenCTI.Workers), {opencti.PlatformService}} {
		err := u.tr.runStep(ctx, upgradeStopping, pebbleOptions, a.StopPebbleServices,
			activities.StopPebbleServicesInput{Pebble: inst.Pebble, Services: services}, nil)
		if err != nil {
			return u.result(ctx, ""), fmt.Errorf("cannot stop %s: %w", strings.Join(services, ", "), err)
		}
	}

	u.enter(ctx, upgradePushingPlan, "pushing the plan of "+u.in.Version)
	var applied activities.ApplyOpenCTIPlanResult
	err := u.tr.runStep(ctx, upgradePushingPlan, pebbleOptions, a.ApplyOpenCTIPlan, activities.ApplyOpenCTIPlanInput{Instance: next, Secrets: refs}, &applied)
	if err != nil {
		return u.result(ctx, ""), wrapReason("cannot push the plan of "+u.in.Version, err)
	}

	u.enter(ctx, upgradeStartingPlatorm, "starting the platform "+u.in.Version)
	since := workflow.Now(ctx)
	err = u.tr.runStep(ctx, upgradeStartingPlatorm, pebbleOptions, a.StartPebbleServices,
		activities.StartPebbleServicesInput{Pebble: next.Pebble, Services: []string{opencti.PlatformService}, Watched: true}, nil)
	if err != nil {
		return u.result(ctx, ""), fmt.Errorf("cannot start the platform: %w", err)
	}

	u.enter(ctx, upgradeMigrating, "the platform migrates its data; its port stays closed until it is done")
	err = waitPlatformHealthy(ctx, activities.WaitOpenCTIHealthyInput{Instance: next, HealthAccessKey: refs.HealthAccessKey,
		PlatformDigest: applied.PlatformDigest, Since: since}, "cannot upgrade",
		func(ctx workflow.Context, pr activities.ProbeResult, err error) {
			if err == nil && !pr.Ready && pr.Reason != "" {
				u.tr.set(ctx, Status{Kind: StatusMaintenance, Step: upgradeMigrating,
					Message: fmt.Sprintf("upgrading %s -> %s: migrating: %s", u.status.From, u.status.To, pr.Reason)})
			}
		})
	if err != nil {
		return u.result(ctx, ""), err
	}

	u.enter(ctx, upgradeReadyCheck, "re-adding the platform's health check")
	err = u.tr.runStep(ctx, upgradeReadyCheck, pebbleOptions, a.AddOpenCTIReadyCheck,
		activities.AddOpenCTIReadyCheckInput{Instance: next, HealthAccessKey: refs.HealthAccessKey}, nil)
	if err != nil {
		return u.result(ctx, ""), fmt.Errorf("cannot add the platform health check: %w", err)
	}

	u.enter(ctx, upgradeVerifying, "verifying the platform reports "+u.in.Version)
	err = u.tr.runStep(ctx, upgradeVerifying, graphqlOptions, a.VerifyOpenCTI, activities.VerifyOpenCTIInput{Instance: next, AdminToken: refs.AdminToken}, nil)
	if err != nil {
		return u.result(ctx, ""), fmt.Errorf("cannot verify the upgraded platform: %w", err)
	}

	u.enter(ctx, upgradeStartingWorkers, "starting the workers of "+u.in.Version)
	err = u.tr.runStep(ctx, upgradeStartingWorkers, pebbleOptions, a.StartPebbleServices,
		activities.StartPebbleServicesInput{Pebble: next.Pebble, Services: opencti.WorkerServices(*next.OpenCTI.Workers)}, nil)
	if err != nil {
		return u.result(ctx, ""), fmt.Errorf("cannot start the workers: %w", err)
	}
	res := u.result(ctx, UpgradeUpgraded)
	u.tr.set(ctx, Status{Kind: StatusActive, Message: fmt.Sprintf("upgraded %s -> %s", u.status.From, u.status.To)})
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
	var h activities.CheckOpenCTIHealthResult
	if err := health.Get(ctx, &h); err != nil {
		h.Reason = ErrorReason(err)
	}
	f.Health = h.Reason
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
	self := workflow.GetInfo(ctx).WorkflowExecution.ID
	t := in.UpgradeTarget
	req := UpgradeRequest{RequestID: self, TargetVersion: t.Version, PlatformCommand: t.PlatformCommand, WorkerCommand: t.WorkerCommand,
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
