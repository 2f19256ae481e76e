package workflows

import (
	"errors"
	"fmt"

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
	if err := d.waitDependencies(ctx, dependencyProbes(inst)); err != nil {
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

// deploy is the state of one DeployOpenCTI run: the shared sequence machinery and
// the run's input.
type deploy struct {
	sequence
	in DeployInput
}

func (d *deploy) setup(ctx workflow.Context) error {
	d.resume = "run the same deploy again (secrets, bucket and a running platform are kept)"
	return d.sequence.setup(ctx, d.in.Instance.Name, AppOpenCTI)
}
