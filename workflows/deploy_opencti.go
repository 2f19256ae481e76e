package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/opencti"
)

// a is the nil receiver through which workflows name activities type-safely.
var a *activities.Activities

// DeployOpenCTI brings up one OpenCTI instance, in the charm's order: validate, ensure
// secrets, wait for the four dependencies, ensure the bucket, push the plan, start the
// platform, wait until healthy, add the health check, verify the platform's version and
// admin token, start the workers (VerifyBeforeWorkersChange).
func DeployOpenCTI(ctx workflow.Context, in DeployInput) (DeployResult, error) {
	d := &deploy{in: in}
	if err := d.setup(ctx); err != nil {
		return DeployResult{}, err
	}
	res, err := d.run(ctx)
	if err != nil {
		d.fail(ctx, err)
	}
	return res, err
}

func (d *deploy) run(ctx workflow.Context) (DeployResult, error) {
	inst := d.in.Instance.WithDefaults()
	d.enter(ctx, PhaseValidating)
	if err := inst.Validate(); err != nil {
		return DeployResult{}, temporal.NewNonRetryableApplicationError("cannot deploy: invalid spec:\n"+err.Error(), "InvalidSpec", nil)
	}
	if len(inst.Connectors) > 0 {
		// Connectors need the instance's records (users, CONNECTOR_IDs, removals),
		// which only the instance workflow keeps; a deploy alone would leave them
		// running with no one to remove them.
		return DeployResult{}, temporal.NewNonRetryableApplicationError("cannot deploy: invalid spec:\n  - connectors: are run by the instance workflow, "+
			"not by a deploy alone (fix: start "+OpenCTIInstanceWorkflow+" with this spec, as `starter deploy -f` does, or remove connectors and add them with AddConnector)", "InvalidSpec", nil)
	}

	d.enter(ctx, PhaseEnsuringSecrets)
	var sec activities.EnsureInstanceSecretsResult
	err := d.step(ctx, quickOptions, a.EnsureInstanceSecrets, activities.EnsureInstanceSecretsInput{
		Instance: inst.Name, InstanceSecrets: opencti.SecretTable.Given(&inst),
	}, &sec)
	if err != nil {
		return DeployResult{}, fmt.Errorf("cannot ensure instance secrets: %w", err)
	}

	d.enter(ctx, PhaseWaitingDeps)
	if err := d.waitDependencies(ctx, inst); err != nil {
		return DeployResult{}, err
	}

	if workflow.GetVersion(ctx, PrefixPreflightChange, workflow.DefaultVersion, PrefixPreflight) != workflow.DefaultVersion {
		d.enter(ctx, PhaseCheckingPrefix)
		err := d.step(ctx, quickOptions, a.CheckOpenSearchPrefix,
			activities.CheckOpenSearchPrefixInput{OpenSearch: *inst.Integrations.OpenSearch, Prefix: inst.Name}, nil)
		if err != nil {
			return DeployResult{}, wrapReason("cannot deploy", err)
		}
	}

	d.enter(ctx, PhaseEnsuringBucket)
	err = d.step(ctx, quickOptions, a.EnsureBucket, activities.EnsureBucketInput{S3: *inst.Integrations.S3}, nil)
	if err != nil {
		return DeployResult{}, fmt.Errorf("cannot ensure the s3 bucket: %w", err)
	}

	d.enter(ctx, PhasePushingPlan)
	var applied activities.ApplyOpenCTIPlanResult
	err = d.step(ctx, pebbleOptions, a.ApplyOpenCTIPlan, activities.ApplyOpenCTIPlanInput{Instance: inst, Secrets: sec.Secrets}, &applied)
	if err != nil {
		return DeployResult{}, wrapReason("cannot push the opencti plan", err)
	}

	d.enter(ctx, PhaseStartingPlatform)
	startedAt := workflow.Now(ctx)
	err = d.step(ctx, pebbleOptions, a.StartPebbleServices,
		activities.StartPebbleServicesInput{Pebble: inst.Pebble, Services: []string{opencti.PlatformService}, Watched: true}, nil)
	if err != nil {
		return DeployResult{}, fmt.Errorf("cannot start the platform: %w", err)
	}

	d.enter(ctx, PhaseWaitingPlatform)
	err = d.waitPlatform(ctx, activities.WaitOpenCTIHealthyInput{Instance: inst, HealthAccessKey: sec.Secrets.HealthAccessKey,
		PlatformDigest: applied.PlatformDigest, Since: startedAt})
	if err != nil {
		return DeployResult{}, d.stopFailedPlatform(ctx, inst, err)
	}

	d.enter(ctx, PhaseAddingHealthCheck)
	err = d.step(ctx, pebbleOptions, a.AddOpenCTIReadyCheck,
		activities.AddOpenCTIReadyCheckInput{Instance: inst, HealthAccessKey: sec.Secrets.HealthAccessKey}, nil)
	if err != nil {
		return DeployResult{}, fmt.Errorf("cannot add the platform health check: %w", err)
	}

	if len(inst.OpenCTI.Nodes) > 0 && workflow.GetVersion(ctx, PlatformNodesChange, workflow.DefaultVersion, PlatformNodes) != workflow.DefaultVersion {
		d.enter(ctx, PhaseStartingNodes)
		if _, err := bringNodesUp(ctx, &d.tr, string(PhaseStartingNodes), inst, sec.Secrets, false); err != nil {
			return DeployResult{}, err
		}
	}

	ver, err := d.verifyAndStartWorkers(ctx, inst, sec.Secrets)
	if err != nil {
		return DeployResult{}, err
	}

	d.enterStatus(ctx, PhaseDone, Status{Kind: StatusActive, Message: fmt.Sprintf("OpenCTI %s serving at %s", ver.Version, inst.OpenCTI.PublicURL)})
	d.logger.Info("OpenCTI deployed", "version", ver.Version, "url", inst.OpenCTI.PublicURL)
	return DeployResult{
		Instance: inst.Name, URL: inst.OpenCTI.PublicURL, Version: ver.Version, Timings: d.status.Timings,
		Warnings: d.warnings(), GeneratedSecrets: sec.Generated, Secrets: sec.Secrets,
	}, nil
}

// stopFailedPlatform stops a platform whose wait ended in a failure no restart can
// fix, so Pebble does not restart it forever, and returns the wait's error with
// what was done (StopFailedPlatformChange).
func (d *deploy) stopFailedPlatform(ctx workflow.Context, inst opencti.Instance, waitErr error) error {
	var app *temporal.ApplicationError
	if !errors.As(waitErr, &app) || app.Type() != activities.ErrTypePlatformFailed {
		return waitErr
	}
	if workflow.GetVersion(ctx, StopFailedPlatformChange, workflow.DefaultVersion, StopFailedPlatform) == workflow.DefaultVersion {
		return waitErr
	}
	err := d.step(ctx, pebbleOptions, a.StopPebbleServices,
		activities.StopPebbleServicesInput{Pebble: inst.Pebble, Services: []string{opencti.PlatformService}}, nil)
	if err != nil {
		return temporal.NewNonRetryableApplicationError(app.Message()+"; and cannot stop the platform: "+ErrorReason(err), app.Type(), nil)
	}
	return temporal.NewNonRetryableApplicationError(app.Message()+" (socflow stopped the platform so Pebble stops restarting it)", app.Type(), nil)
}

// verifyAndStartWorkers verifies the platform's version and admin token, then starts
// the workers, so workers never start against a platform of the wrong version. Deploys
// begun before VerifyBeforeWorkersChange started the workers first, and keep that order
// when they replay.
func (d *deploy) verifyAndStartWorkers(ctx workflow.Context, inst opencti.Instance, sec opencti.InstanceSecrets) (activities.VerifyOpenCTIResult, error) {
	if workflow.GetVersion(ctx, VerifyBeforeWorkersChange, workflow.DefaultVersion, VerifyBeforeWorkers) == workflow.DefaultVersion {
		if err := d.startWorkers(ctx, inst); err != nil {
			return activities.VerifyOpenCTIResult{}, err
		}
		return d.verify(ctx, inst, sec)
	}
	ver, err := d.verify(ctx, inst, sec)
	if err != nil {
		return ver, err
	}
	return ver, d.startWorkers(ctx, inst)
}

// verify checks through GraphQL that the platform runs the requested version and
// accepts the admin token.
func (d *deploy) verify(ctx workflow.Context, inst opencti.Instance, sec opencti.InstanceSecrets) (activities.VerifyOpenCTIResult, error) {
	d.enter(ctx, PhaseVerifying)
	var ver activities.VerifyOpenCTIResult
	err := d.step(ctx, graphqlOptions, a.VerifyOpenCTI, activities.VerifyOpenCTIInput{Instance: inst, AdminToken: sec.AdminToken}, &ver)
	if err != nil {
		return ver, fmt.Errorf("cannot verify the platform: %w", err)
	}
	return ver, nil
}

// startWorkers starts the worker services of the pushed layer.
func (d *deploy) startWorkers(ctx workflow.Context, inst opencti.Instance) error {
	d.enter(ctx, PhaseStartingWorkers)
	err := d.step(ctx, pebbleOptions, a.StartPebbleServices,
		activities.StartPebbleServicesInput{Pebble: inst.Pebble, Services: opencti.WorkerServices(*inst.OpenCTI.Workers)}, nil)
	if err != nil {
		return fmt.Errorf("cannot start the workers: %w", err)
	}
	return nil
}

// deploy is the state of one DeployOpenCTI run; the status query reads it.
type deploy struct {
	in     DeployInput
	status DeployStatus
	tr     tracker
	logger log.Logger
	// parent is the OpenCTIInstance that runs this deploy as its child, told of each
	// status change (DeployProgressChange); nil when there is none to tell.
	parent *workflow.Execution
	// told is the status the parent was last told.
	told Status
}

func (d *deploy) setup(ctx workflow.Context) error {
	d.logger = log.With(workflow.GetLogger(ctx), "instance", d.in.Instance.Name)
	d.status = DeployStatus{Instance: d.in.Instance.Name, Status: Status{Kind: StatusMaintenance, Message: "deploy accepted"}}
	d.tr = tracker{st: &d.status.Status, lastReason: &d.status.LastReason, publish: d.publish, logger: d.logger}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (DeployStatus, error) { return d.status, nil }); err != nil {
		return fmt.Errorf("cannot register the status query: %w", err)
	}
	if p := workflow.GetInfo(ctx).ParentWorkflowExecution; p != nil &&
		workflow.GetVersion(ctx, DeployProgressChange, workflow.DefaultVersion, DeployProgress) != workflow.DefaultVersion {
		d.parent = p
	}
	// Set here too, not only by the starter, so deploys started with tctl are findable.
	attrs := []temporal.SearchAttributeUpdate{SearchAttrInstance.ValueSet(d.in.Instance.Name), SearchAttrApp.ValueSet(AppOpenCTI)}
	if workflow.GetVersion(ctx, StepStatusChange, workflow.DefaultVersion, StepStatus) != workflow.DefaultVersion {
		d.tr.keyed, d.tr.upserted = true, StatusMaintenance
		attrs = append(attrs, SearchAttrStatus.ValueSet(string(StatusMaintenance)))
	}
	return workflow.UpsertTypedSearchAttributes(ctx, attrs...)
}

// step runs one short activity of the current phase through the shared retry helper,
// so that a retried step shows in the status with its attempt and last error.
func (d *deploy) step(ctx workflow.Context, opts workflow.ActivityOptions, fn, in, out any) error {
	return d.tr.runStep(ctx, string(d.status.Phase), opts, fn, in, out)
}

// enter closes the current phase and opens the next, in maintenance.
func (d *deploy) enter(ctx workflow.Context, p Phase) {
	d.enterStatus(ctx, p, d.maintenance(p))
}

// maintenance is the status while phase p is in progress.
func (d *deploy) maintenance(p Phase) Status {
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
}

// enterStatus closes the current phase and opens p with status s, and publishes both
// (search attributes in one upsert, the Web UI's details).
func (d *deploy) enterStatus(ctx workflow.Context, p Phase, s Status) {
	now := workflow.Now(ctx)
	if n := len(d.status.Timings); n > 0 {
		d.status.Timings[n-1].End = now
	}
	if p != PhaseDone && p != PhaseFailed {
		d.status.Timings = append(d.status.Timings, PhaseTiming{Phase: p, Start: now})
	}
	d.status.Phase = p
	d.logger.Info("deploy phase", "phase", p, "status", s.Kind)
	d.tr.set(ctx, s, SearchAttrPhase.ValueSet(string(p)))
}

// publish shows the status, the phase and the latest reasons on the Web UI's workflow page.
func (d *deploy) publish(ctx workflow.Context) {
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
func (d *deploy) fail(ctx workflow.Context, err error) {
	d.status.Error = err.Error()
	d.status.LastReason = err.Error()
	msg := operatorReason(err) + "; fix that, then run the same deploy again (secrets, bucket and a running platform are kept)"
	if temporal.IsCanceledError(err) {
		msg = "the deploy was canceled; run it again to resume"
	}
	d.enterStatus(ctx, PhaseFailed, Status{Kind: StatusBlocked, Step: string(d.status.Phase), Message: msg})
	d.logger.Error("deploy failed", "error", err)
}

func (d *deploy) warnings() []string {
	var w []string
	for _, dep := range d.status.Dependencies {
		if dep.Warning != "" {
			w = append(w, dep.Name+": "+dep.Warning)
		}
	}
	return w
}
