package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/canonical/pebble/client"
	"go.temporal.io/sdk/activity"

	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
)

// PebbleCallTimeout bounds one Pebble API call: Pebble's convenience methods ignore the
// context, and a hung API must cost an attempt, not the deploy (the charm raised its
// client timeout to 60 s after such hangs).
const PebbleCallTimeout = 30 * time.Second

// ensureOwner refuses a container whose plan or owner marker (a file holding the owning
// instance's name) belongs to another instance, naming both and the endpoint; a
// container with nothing of socflow in it, or with this instance's plan, is fine.
// ownerOf tells which instance a service of the plan belongs to ("" for none).
func (ep pebbleEndpoint) ensureOwner(ctx context.Context, instance, markerPath string, ownerOf func(name string, svc layer.Service) string) error {
	current, err := ep.plan(ctx)
	if err != nil {
		return err
	}
	owners := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(current.Services)) {
		if o := ownerOf(name, current.Services[name]); o != "" && o != instance {
			owners[o] = append(owners[o], name)
		}
	}
	marker, err := ep.pull(ctx, markerPath)
	if o := strings.TrimSpace(string(marker)); err == nil && o != "" && o != instance {
		owners[o] = append(owners[o], markerPath)
	}
	if len(owners) == 0 {
		return nil
	}
	var parts []string
	for _, o := range slices.Sorted(maps.Keys(owners)) {
		parts = append(parts, fmt.Sprintf("instance %s (%s)", o, strings.Join(owners[o], ", ")))
	}
	first := slices.Sorted(maps.Keys(owners))[0]
	return &errPermanent{ErrTypeContainerOwned, fmt.Errorf("cannot deploy %s into the container at %s: it runs %s; give %s its own container, or remove %s first",
		instance, ep.address(), strings.Join(parts, " and "), instance, first)}
}

// address names the endpoint for operators: its socket path or URL.
func (ep pebbleEndpoint) address() string {
	if ep.spec.URL != "" {
		return ep.spec.URL
	}
	return ep.spec.Socket
}

// pull reads one file of the container.
func (ep pebbleEndpoint) pull(ctx context.Context, path string) ([]byte, error) {
	var got bytes.Buffer
	err := ep.call(ctx, func(pc *client.Client) error {
		got.Reset()
		return pc.Pull(&client.PullOptions{Path: path, Target: &got})
	})
	return got.Bytes(), err
}

// fileDrift names the files whose content in the container is not the planned one:
// changed, or removed when the container no longer has it.
func (ep pebbleEndpoint) fileDrift(ctx context.Context, files []layer.File) ([]layer.Change, error) {
	var drifted []layer.Change
	for _, f := range files {
		got, err := ep.pull(ctx, f.Path)
		var missing bool
		if err != nil {
			// Pebble 1.26's client reports a missing file's pull as a malformed
			// answer, not as its not-found error: listing the path tells.
			lerr := ep.call(ctx, func(pc *client.Client) error {
				_, err := pc.ListFiles(&client.ListFilesOptions{Path: f.Path, Itself: true})
				return err
			})
			var ce *client.Error
			missing = errors.As(lerr, &ce) && ce.Kind == "not-found"
		}
		switch {
		case missing:
			drifted = append(drifted, layer.Change{Kind: layer.Removed, File: f.Path})
		case err != nil:
			return nil, pebbleError("cannot read "+f.Path+" in the container", err)
		case !bytes.Equal(got, f.Content):
			drifted = append(drifted, layer.Change{Kind: layer.Changed, File: f.Path, Fields: []string{"content"}})
		}
	}
	return drifted, nil
}

// pushFiles makes dirs and pushes files into the container, in order, returning the
// paths pushed; making a directory that exists is not an error, so it is idempotent.
func (ep pebbleEndpoint) pushFiles(ctx context.Context, dirs []layer.Dir, files []layer.File) ([]string, error) {
	for _, d := range dirs {
		err := ep.call(ctx, func(pc *client.Client) error {
			return pc.MakeDir(&client.MakeDirOptions{Path: d.Path, MakeParents: true, Permissions: d.Perm})
		})
		if err != nil && !isExists(err) {
			return nil, classify(pebbleError("cannot create "+d.Path+" in the container", err))
		}
	}
	var pushed []string
	for _, f := range files {
		err := ep.call(ctx, func(pc *client.Client) error {
			return pc.Push(&client.PushOptions{Source: bytes.NewReader(f.Content), Path: f.Path, MakeDirs: true, Permissions: f.Perm})
		})
		if err != nil {
			return pushed, classify(pebbleError("cannot push "+f.Path+" into the container", err))
		}
		pushed = append(pushed, f.Path)
	}
	return pushed, nil
}

// isExists reports Pebble's answer to creating a directory that is already there.
func isExists(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Kind == "generic-file-error" && strings.Contains(ce.Message, "file exists")
}

// StartPebbleServicesInput names the services to start in one container.
type StartPebbleServicesInput struct {
	// Pebble is the workload container's Pebble endpoint.
	Pebble spec.Pebble `json:"pebble"`
	// Services are started in one change; Pebble honours their after/requires order.
	Services []string `json:"services"`
	// Watched says the caller watches the services after the start (the platform
	// wait reads its exits and their causes), so a service that exits at once and
	// that Pebble is restarting is reported in Restarting instead of failing the
	// start, and a retry leaves it to Pebble's backoff.
	Watched bool `json:"watched,omitempty"`
	// Since is when the workflow decided the start (zero: when this activity was
	// scheduled). A service found running that a start change spawned since then was
	// started by an earlier attempt whose result was lost, and is reported Started: a
	// workflow that retries the step as new activities needs it, since each of those
	// is scheduled after the lost start.
	Since time.Time `json:"since,omitzero"`
}

// StartPebbleServicesResult tells what this call started and what already ran.
type StartPebbleServicesResult struct {
	// Started are the services this call started.
	Started []string `json:"started,omitempty"`
	// AlreadyActive were running already and were left alone.
	AlreadyActive []string `json:"alreadyActive,omitempty"`
	// Restarting exited at once and Pebble restarts them (Watched only).
	Restarting []string `json:"restarting,omitempty"`
}

// StartPebbleServices starts the inactive ones of the given services and waits for the
// change. Active services are left alone: a retry after a crash must never restart a
// platform that may be initialising (killing it mid-init corrupts its indices).
func (a *Activities) StartPebbleServices(ctx context.Context, in StartPebbleServicesInput) (StartPebbleServicesResult, error) {
	var res StartPebbleServicesResult
	ep, infos, err := a.serviceStates(ctx, "start", in.Pebble, in.Services)
	if err != nil {
		return res, err
	}
	since := in.Since
	if since.IsZero() && activity.IsActivity(ctx) {
		since = activity.GetInfo(ctx).ScheduledTime // the first attempt's, on every retry
	}
	var toStart []string // Started less what an earlier attempt already started
	for _, name := range in.Services {
		info, ok := infos[name]
		switch {
		case !ok:
			return res, permanent(ErrTypeInvalidInput, fmt.Errorf("cannot start %s: no such service in the container's plan", name))
		case info.Current == client.StatusActive && ep.startedSince(ctx, name, since):
			// An earlier attempt of this call started it and its completion was lost
			// (its worker died, or the server restarted): the start is this call's.
			res.Started = append(res.Started, name)
		case info.Current == client.StatusActive:
			res.AlreadyActive = append(res.AlreadyActive, name)
		case info.Current == client.StatusBackoff && in.Watched:
			res.Restarting = append(res.Restarting, name)
		default:
			res.Started = append(res.Started, name)
			toStart = append(toStart, name)
		}
	}
	if len(toStart) == 0 {
		return res, nil
	}
	// One change per service, started together: Pebble confirms each start by watching
	// the process for a second, and in one change it does so service after service.
	type outcome struct {
		name string
		err  error
	}
	errs := make(chan outcome, len(toStart))
	for _, name := range toStart {
		go func() { errs <- outcome{name, ep.startAndWait(ctx, name)} }()
	}
	var failed []error
	var restarting []string
	for range toStart {
		o := <-errs
		switch {
		case o.err == nil:
		case in.Watched && errors.Is(o.err, errExitedAtOnce):
			restarting = append(restarting, o.name)
		default:
			failed = append(failed, o.err)
		}
	}
	if len(restarting) > 0 {
		res.Started = slices.DeleteFunc(res.Started, func(n string) bool { return slices.Contains(restarting, n) })
		res.Restarting = append(res.Restarting, restarting...)
		slices.Sort(res.Restarting)
	}
	if len(failed) > 0 {
		return res, classify(errors.Join(failed...))
	}
	return res, nil
}

// StopPebbleServicesInput names the services to stop in one container.
type StopPebbleServicesInput struct {
	// Pebble is the workload container's Pebble endpoint.
	Pebble spec.Pebble `json:"pebble"`
	// Services are stopped together; Pebble stops dependants first.
	Services []string `json:"services"`
}

// StopPebbleServicesResult tells what this call stopped.
type StopPebbleServicesResult struct {
	// Stopped were running (or restarting) and are stopped now.
	Stopped []string `json:"stopped,omitempty"`
	// AlreadyStopped were not running.
	AlreadyStopped []string `json:"alreadyStopped,omitempty"`
}

// StopPebbleServices stops the named services and waits until Pebble reports them
// stopped: SIGTERM to each service's process group, then SIGKILL after the
// service's kill-delay, so a stop that hangs is bounded. Stopped services are left
// alone, so a retry is harmless.
func (a *Activities) StopPebbleServices(ctx context.Context, in StopPebbleServicesInput) (StopPebbleServicesResult, error) {
	var res StopPebbleServicesResult
	ep, infos, err := a.serviceStates(ctx, "stop", in.Pebble, in.Services)
	if err != nil {
		return res, err
	}
	for _, name := range in.Services {
		switch info := infos[name]; {
		case info == nil:
			res.AlreadyStopped = append(res.AlreadyStopped, name)
		case running(info):
			res.Stopped = append(res.Stopped, name)
		default:
			res.AlreadyStopped = append(res.AlreadyStopped, name)
		}
	}
	if len(res.Stopped) == 0 {
		return res, nil
	}
	var changeID string
	err = ep.call(ctx, func(pc *client.Client) (err error) {
		changeID, err = pc.Stop(&client.ServiceOptions{Names: res.Stopped})
		return err
	})
	if err != nil {
		return res, classify(pebbleError("cannot stop "+strings.Join(res.Stopped, ", "), err))
	}
	names := strings.Join(res.Stopped, ", ")
	change, err := ep.waitChange(ctx, changeID, "stop of "+names, "stopping "+names)
	if err != nil {
		return res, classify(err)
	}
	if change.Err != "" {
		return res, fmt.Errorf("cannot stop %s: %s", names, change.Err)
	}
	return res, nil
}

// serviceStates opens the endpoint and reads the state of the services a start or a
// stop is asked for; its errors are classified, ready to return.
func (a *Activities) serviceStates(ctx context.Context, verb string, p spec.Pebble, names []string) (pebbleEndpoint, map[string]*client.ServiceInfo, error) {
	if len(names) == 0 {
		return pebbleEndpoint{}, nil, permanent(ErrTypeInvalidInput, errors.New("cannot "+verb+" services: none named"))
	}
	ep, err := a.pebble(p)
	if err != nil {
		return ep, nil, classify(err)
	}
	infos, err := ep.services(ctx, names)
	if err != nil {
		return ep, nil, classify(err)
	}
	return ep, infos, nil
}

// isWaitTimeout is Pebble's answer to a change wait that ran out before the change.
func isWaitTimeout(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && strings.Contains(ce.Message, "timed out waiting for change")
}

// startAndWait starts one service and waits for Pebble to confirm it stayed up; a
// failed start carries the service's last output, which usually says why.
func (ep pebbleEndpoint) startAndWait(ctx context.Context, name string) error {
	var changeID string
	err := ep.call(ctx, func(pc *client.Client) (err error) {
		changeID, err = pc.Start(&client.ServiceOptions{Names: []string{name}})
		return err
	})
	if err != nil {
		return pebbleError("cannot start "+name, err)
	}
	var change *client.Change
	err = ep.call(ctx, func(pc *client.Client) (err error) {
		change, err = pc.WaitChange(changeID, &client.WaitChangeOptions{Timeout: PebbleCallTimeout - time.Second})
		return err
	})
	if err != nil {
		return fmt.Errorf("cannot wait for the start of %s: %w", name, err)
	}
	if change.Err != "" {
		err := fmt.Errorf("cannot start %s: %s; last output: %s", name, change.Err, ep.lastLogLines(ctx, []string{name}, 5))
		if exitedAtOnce(change) {
			return fmt.Errorf("%w: %w", errExitedAtOnce, err)
		}
		return err
	}
	return nil
}

// startedSince reports whether a start change of Pebble's started the service since the
// caller decided the start (with no Since, since this activity was first scheduled): an
// earlier attempt's start whose result never reached the workflow. Best effort: with no
// time to go by, or if Pebble's change list cannot be read, it reports none, and the
// service is reported already active as before.
func (ep pebbleEndpoint) startedSince(ctx context.Context, service string, since time.Time) bool {
	if since.IsZero() {
		return false
	}
	changes, err := ep.changesSince(ctx, "start", service, since)
	return err == nil && slices.ContainsFunc(changes, func(ch *client.Change) bool { return ch.Ready && ch.Err == "" })
}

// changesSince lists Pebble's changes of a kind spawned at or after since, only those
// touching service when it is not empty, ready ones included.
func (ep pebbleEndpoint) changesSince(ctx context.Context, kind, service string, since time.Time) ([]*client.Change, error) {
	var changes []*client.Change
	err := ep.call(ctx, func(pc *client.Client) (err error) {
		changes, err = pc.Changes(&client.ChangesOptions{ServiceName: service, Selector: client.ChangesAll})
		return err
	})
	if err != nil {
		return nil, pebbleError("cannot list pebble changes", err)
	}
	return slices.DeleteFunc(changes, func(ch *client.Change) bool { return ch.Kind != kind || ch.SpawnTime.Before(since) }), nil
}

// errExitedAtOnce marks a start whose process exited within Pebble's okay delay and
// that Pebble will restart ("exited quickly with code 1, will restart").
var errExitedAtOnce = errors.New("exited at once, pebble restarts it")

// startDidNotHold reports a failed start or restart change whose process exited within
// Pebble's okay delay (killed or crashed), whatever Pebble does next.
func startDidNotHold(change *client.Change) bool {
	return strings.Contains(change.Err, "exited quickly")
}

// exitedAtOnce reports a start that did not hold and that Pebble restarts by itself
// after its backoff (on-failure: restart).
func exitedAtOnce(change *client.Change) bool {
	return startDidNotHold(change) && strings.Contains(change.Err, "will restart")
}

// pebbleError classifies Pebble's answers: a 4xx other than a transient one means the
// request itself is wrong (bad layer, unknown service) and retrying will not fix it.
// Errors already permanent keep their type.
func pebbleError(what string, err error) error {
	if err == nil {
		return nil
	}
	var perm *errPermanent
	if errors.As(err, &perm) {
		return &errPermanent{perm.errType, fmt.Errorf("%s: %w", what, err)}
	}
	var ce *client.Error
	if errors.As(err, &ce) && ce.StatusCode >= 400 && ce.StatusCode < 500 && ce.StatusCode != 408 && ce.StatusCode != 429 {
		return &errPermanent{ErrTypeBadConfig, fmt.Errorf("%s: pebble refused it: %w", what, err)}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// services reads the state of the named services.
func (ep pebbleEndpoint) services(ctx context.Context, names []string) (map[string]*client.ServiceInfo, error) {
	var infos []*client.ServiceInfo
	err := ep.call(ctx, func(pc *client.Client) (err error) {
		infos, err = pc.Services(&client.ServicesOptions{Names: names})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot read service status from pebble: %w", err)
	}
	m := make(map[string]*client.ServiceInfo, len(infos))
	for _, i := range infos {
		m[i.Name] = i
	}
	return m, nil
}

// logs returns up to n of the services' last log entries, oldest first.
func (ep pebbleEndpoint) logs(ctx context.Context, services []string, n int) ([]client.LogEntry, error) {
	var entries []client.LogEntry
	err := ep.call(ctx, func(pc *client.Client) error {
		return pc.Logs(&client.LogsOptions{Services: services, N: n, WriteLog: func(e client.LogEntry) error {
			entries = append(entries, e)
			return nil
		}})
	})
	if err != nil {
		return nil, fmt.Errorf("cannot read service logs from pebble: %w", err)
	}
	return entries, nil
}

// lastLogLines returns the services' last n log lines, one string, for error reasons
// that tell the operator what the process said before it died.
func (ep pebbleEndpoint) lastLogLines(ctx context.Context, services []string, n int) string {
	entries, err := ep.logs(ctx, services, n)
	if err != nil || len(entries) == 0 {
		return "(no output)"
	}
	lines := make([]string, 0, len(entries))
	for _, e := range entries {
		lines = append(lines, e.Service+": "+strings.TrimSpace(e.Message))
	}
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// running reports whether a planned service has a process, or will again by Pebble's
// own restart: active, or in its backoff between two starts.
func running(info *client.ServiceInfo) bool {
	return info != nil && (info.Current == client.StatusActive || info.Current == client.StatusBackoff)
}

// activeOrNot reports whether a service is active and, if not, a reason naming its state.
func activeOrNot(info *client.ServiceInfo) (bool, string) {
	if info == nil {
		return false, "not in the container's plan"
	}
	if info.Current == client.StatusActive {
		return true, ""
	}
	return false, fmt.Sprintf("%s since %s", info.Current, info.CurrentSince.UTC().Format(time.RFC3339))
}
