package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/opencti"
)

// probe is one dependency wait: the activity to run and its input for a given window.
type probe struct {
	name  string
	fn    any
	input func(window time.Duration) any
}

// dependencyProbes lists the four probes in a fixed order (status and tests rely on it).
func dependencyProbes(inst opencti.Instance) []probe {
	allow := inst.OpenCTI.AllowOldDependencies
	ig := inst.Integrations
	w := func(d time.Duration) activities.ProbeWindow { return activities.ProbeWindow{Window: d} }
	return []probe{
		{"opensearch", a.ProbeOpenSearch, func(d time.Duration) any {
			return activities.ProbeOpenSearchInput{OpenSearch: *ig.OpenSearch, AllowOldDependencies: allow, Requires: opencti.Requirement, IndexPrefix: inst.Name, ProbeWindow: w(d)}
		}},
		{"rabbitmq", a.ProbeRabbitMQ, func(d time.Duration) any {
			return activities.ProbeRabbitMQInput{RabbitMQ: *ig.RabbitMQ, AllowOldDependencies: allow, Requires: opencti.Requirement, ProbeWindow: w(d)}
		}},
		{"redis", a.ProbeRedis, func(d time.Duration) any {
			return activities.ProbeRedisInput{Redis: *ig.Redis, AllowOldDependencies: allow, Requires: opencti.Requirement, ProbeWindow: w(d)}
		}},
		{"s3", a.ProbeS3, func(d time.Duration) any { return activities.ProbeS3Input{S3: *ig.S3, ProbeWindow: w(d)} }},
	}
}

// waitDependencies probes the app's dependencies in parallel until all are ready. Each
// probe activity polls for a window and hands back its latest reason, which the status
// query and the Web UI show; a permanent fault (bad credentials, version too old) ends
// the wait at once and cancels the other probes.
func (d *sequence) waitDependencies(ctx workflow.Context, probes []probe) error {
	d.status.Dependencies = make([]DependencyStatus, len(probes))
	for i, p := range probes {
		d.status.Dependencies[i] = DependencyStatus{Name: p.name, State: DepWaiting}
	}
	d.publish(ctx)

	ctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	deadline := workflow.Now(ctx).Add(DependencyWaitLimit)
	errs := make([]error, len(probes))
	wg := workflow.NewWaitGroup(ctx)
	for i, p := range probes {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			if errs[i] = d.waitOne(ctx, &d.status.Dependencies[i], p, deadline); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait(ctx)
	// Report the real fault, not the cancellations it caused in the other probes.
	for i, err := range errs {
		if err != nil && !temporal.IsCanceledError(err) {
			return fmt.Errorf("cannot deploy: %s: %s", probes[i].name, ErrorReason(err))
		}
	}
	return errors.Join(errs...)
}

// dependenciesChanged publishes the dependencies' states, and the status: waiting,
// naming each dependency not ready with its reason, while any has reported one;
// otherwise maintenance.
func (d *sequence) dependenciesChanged(ctx workflow.Context) {
	var waiting []string
	for _, dep := range d.status.Dependencies {
		if dep.State == DepWaiting && dep.Reason != "" {
			waiting = append(waiting, dep.Name+" ("+dep.Reason+")")
		}
	}
	if len(waiting) == 0 {
		d.tr.set(ctx, d.maintenance(d.status.Phase))
		return
	}
	d.tr.set(ctx, Status{Kind: StatusWaiting, Step: string(d.status.Phase), Message: "waiting for " + strings.Join(waiting, ", ")})
}

// probeWindow grows from 2 s to activities.DefaultProbeWindow: the first reason reaches
// the status query within seconds, and a long wait still costs few history events.
func probeWindow(round int) time.Duration {
	w := 2 * time.Second << min(round, 4)
	return min(w, activities.DefaultProbeWindow)
}

func (d *sequence) waitOne(ctx workflow.Context, st *DependencyStatus, p probe, deadline time.Time) error {
	actx := workflow.WithActivityOptions(ctx, probeOptions)
	for round := 0; ; round++ {
		var res activities.ProbeResult
		err := workflow.ExecuteActivity(actx, p.fn, p.input(probeWindow(round))).Get(ctx, &res)
		if err != nil {
			if !temporal.IsCanceledError(err) {
				st.State, st.Reason = DepFailed, ErrorReason(err)
				d.status.LastReason = p.name + ": " + st.Reason
				d.publish(ctx)
			}
			return err
		}
		st.Probes += res.Attempts
		st.Reason, st.Version, st.Warning = res.Reason, res.Version, res.Warning
		if res.Ready {
			st.State, st.ReadyAt = DepReady, workflow.Now(ctx)
			d.dependenciesChanged(ctx)
			return nil
		}
		d.status.LastReason = p.name + ": " + res.Reason
		d.dependenciesChanged(ctx)
		if workflow.Now(ctx).After(deadline) {
			st.State = DepFailed
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("not ready after %s: %s", DependencyWaitLimit, res.Reason), "DependencyTimeout", nil)
		}
	}
}

// waitPlatform waits until the platform answers /health with 200, recording each
// reason it is not (initialising, dependency down, service crashed) on the way.
func (d *deploy) waitPlatform(ctx workflow.Context, in activities.WaitOpenCTIHealthyInput) error {
	return waitPlatformHealthy(ctx, in, "cannot deploy", 0, func(ctx workflow.Context, res activities.ProbeResult, err error) {
		switch {
		case err != nil:
			d.status.Platform = ErrorReason(err)
			d.publish(ctx)
		case res.Ready:
			d.status.Platform = "healthy"
			d.publish(ctx)
		default:
			d.status.Platform = res.Reason
			d.status.LastReason = "platform: " + res.Reason
			d.tr.set(ctx, Status{Kind: StatusWaiting, Step: string(PhaseWaitingPlatform), Message: "waiting for the platform: " + res.Reason})
		}
	})
}

// waitPlatformHealthy polls WaitOpenCTIHealthy until the platform answers /health with
// 200, handing report each probe's result (or its error) so the caller's status shows
// why it is not healthy yet; what prefixes the errors ("cannot deploy"). It never
// restarts the platform: a first boot or a migration is waited on up to
// PlatformHealthLimit. The deploy and the instance's reconciles share it.
//
// A migration with neither a new migration line nor an init-lock refresh for hangAfter
// (0: DefaultMigrationHangAfter) is hung, not slow: a working platform refreshes its
// lock all along, even through a long migration. That ends the wait with MigrationHung
// (MigrationHangChange), for the caller to roll back.
func waitPlatformHealthy(ctx workflow.Context, in activities.WaitOpenCTIHealthyInput, what string, hangAfter time.Duration,
	report func(workflow.Context, activities.ProbeResult, error)) error {
	actx := workflow.WithActivityOptions(ctx, probeOptions)
	deadline := workflow.Now(ctx).Add(PlatformHealthLimit)
	if hangAfter <= 0 {
		hangAfter = DefaultMigrationHangAfter
	}
	var hw hangWatch
	for round := 0; ; round++ {
		in.Window = probeWindow(round)
		var res activities.ProbeResult
		if err := workflow.ExecuteActivity(actx, a.WaitOpenCTIHealthy, in).Get(ctx, &res); err != nil {
			report(ctx, res, err)
			return wrapReason(what+": platform", err)
		}
		report(ctx, res, nil)
		if res.Ready {
			return nil
		}
		if quiet := hw.observe(workflow.Now(ctx), res.Migration); quiet >= hangAfter &&
			workflow.GetVersion(ctx, MigrationHangChange, workflow.DefaultVersion, MigrationHang) != workflow.DefaultVersion {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: platform hung while migrating: %s, then no migration line and no init-lock refresh for %s",
				what, res.Migration.Progress, quiet.Round(time.Second)), ErrTypeMigrationHung, nil)
		}
		if workflow.Now(ctx).After(deadline) {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: platform not healthy after %s: %s",
				what, PlatformHealthLimit, strings.TrimSpace(res.Reason)), "PlatformTimeout", nil)
		}
	}
}

// wrapReason prefixes an activity error's reason and keeps its application error type
// (so the workflow can branch on it) and its retryability.
func wrapReason(what string, err error) error {
	if temporal.IsCanceledError(err) {
		// A cancellation stays one, so compensations can tell it apart.
		return err
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		msg := what + ": " + app.Message()
		if app.NonRetryable() {
			return temporal.NewNonRetryableApplicationError(msg, app.Type(), nil)
		}
		return temporal.NewApplicationError(msg, app.Type())
	}
	return fmt.Errorf("%s: %s", what, err.Error())
}

// DefaultMigrationHangAfter is how long a migration may show no sign of life (no
// migration line, no init-lock refresh) before it is judged hung: the real platform
// refreshes its 60 s lock well within it.
const DefaultMigrationHangAfter = 5 * time.Minute

// ErrTypeMigrationHung is the error type of a wait that found the platform hung mid-migration.
const ErrTypeMigrationHung = "MigrationHung"

// hangWatch follows a migrating platform's signs of life across the wait's rounds.
type hangWatch struct {
	progress string
	ttl      time.Duration
	readAt   time.Time
	// lastSign is when the platform last showed life: a new migration line, or an
	// init-lock TTL higher than the last one less the time since (a refresh).
	lastSign time.Time
}

// observe records one round's signs and returns how long the platform has shown no
// sign of life; a round that is not migrating (nil) starts the watch over.
func (h *hangWatch) observe(now time.Time, s *activities.MigrationSigns) time.Duration {
	if s == nil {
		*h = hangWatch{}
		return 0
	}
	// Half a second of slack for the two reads' own timing.
	refreshed := s.LockTTL > 0 && s.LockTTL > h.ttl-s.ReadAt.Sub(h.readAt)+time.Second/2
	if h.lastSign.IsZero() || s.Progress != h.progress || refreshed {
		h.lastSign = now
	}
	h.progress, h.ttl, h.readAt = s.Progress, s.LockTTL, s.ReadAt
	return now.Sub(h.lastSign)
}
