package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/canonical/pebble/client"
	"go.temporal.io/sdk/activity"

	"github.com/socflow/socflow/internal/spec"
)

// RestartPebbleServicesInput names the services to restart in one container.
type RestartPebbleServicesInput struct {
	// Pebble is the workload container's Pebble endpoint.
	Pebble spec.Pebble `json:"pebble"`
	// Services are restarted in one change, and only they: Pebble stops none of
	// their dependants and starts what they require only if it is not running.
	Services []string `json:"services"`
	// Since is when the workflow decided the restart (zero: unknown). An attempt that
	// finds no heartbeat from an earlier one looks for a restart change of these
	// services spawned since: the earlier attempt may have died between asking Pebble
	// and heartbeating the change.
	Since time.Time `json:"since,omitzero"`
	// Watched says the caller watches the services after the restart (the platform
	// wait reads its exits and their causes), so a start that exits at once and that
	// Pebble restarts is reported in Restarting instead of failing the restart, and a
	// retry leaves it to Pebble's backoff instead of restarting a second time — which
	// would kill the process Pebble restarted, maybe mid-initialisation.
	Watched bool `json:"watched,omitempty"`
}

// RestartPebbleServicesResult tells what this call restarted and what it started.
type RestartPebbleServicesResult struct {
	// Restarted were running (or in Pebble's backoff) and were stopped and started.
	Restarted []string `json:"restarted,omitempty"`
	// Started were not running and were only started.
	Started []string `json:"started,omitempty"`
	// Change is Pebble's change ID (`pebble tasks <id>` shows its steps).
	Change string `json:"change,omitempty"`
	// Restarting exited at once after the restart and Pebble restarts them (Watched only).
	Restarting []string `json:"restarting,omitempty"`
}

// RestartPebbleServices restarts the named services in one Pebble change and waits
// for it: SIGTERM, SIGKILL after each service's kill-delay, then a start that Pebble
// confirms once the process has stayed up for a second, in the plan's after/requires
// order. Inactive services are started instead and reported as such. The change ID is
// heartbeated, so a retry after a lost worker waits for that change instead of
// restarting the services a second time; give it a HeartbeatTimeout and a
// StartToClose above the longest kill-delay plus a minute.
func (a *Activities) RestartPebbleServices(ctx context.Context, in RestartPebbleServicesInput) (RestartPebbleServicesResult, error) {
	prev, ok := previousRestart(ctx, in.Services)
	// With no heartbeat, a restart of these services spawned since the workflow decided
	// it is an earlier attempt's (no one else restarts them through Pebble's API; its
	// own restarts after a failure make no change).
	if !ok && !in.Since.IsZero() {
		ep, err := a.pebble(in.Pebble)
		if err != nil {
			return prev, classify(err)
		}
		if prev.Change, err = ep.restartSpawnedSince(ctx, in.Services, in.Since); err != nil {
			return prev, classify(err)
		}
		prev.Restarted, ok = in.Services, prev.Change != ""
	}
	if ok {
		ep, err := a.pebble(in.Pebble)
		if err != nil {
			return prev, classify(err)
		}
		pending, change, err := ep.restartPending(ctx, prev.Change, in.Watched)
		if err != nil {
			return prev, classify(err)
		}
		if pending {
			return ep.waitRestart(ctx, prev, in.Watched)
		}
		if change != nil && startDidNotHold(change) {
			// The earlier attempt's restart ran, but a start did not hold (the process
			// killed or crashed within Pebble's one-second confirmation; Pebble then
			// holds the starts after it): start what is down, without stopping a
			// second time the services whose restart held.
			return ep.finishRestart(ctx, prev)
		}
	}
	var res RestartPebbleServicesResult
	ep, infos, err := a.serviceStates(ctx, "restart", in.Pebble, in.Services)
	if err != nil {
		return res, err
	}
	for _, name := range in.Services {
		switch info := infos[name]; {
		case info == nil:
			return res, permanent(ErrTypeInvalidInput, fmt.Errorf("cannot restart %s: no such service in the container's plan", name))
		case running(info):
			res.Restarted = append(res.Restarted, name)
		default:
			res.Started = append(res.Started, name)
		}
	}
	err = ep.call(ctx, func(pc *client.Client) (err error) {
		res.Change, err = pc.Restart(&client.ServiceOptions{Names: in.Services})
		return err
	})
	if err != nil {
		return res, classify(pebbleError("cannot restart "+strings.Join(in.Services, ", "), err))
	}
	recordHeartbeat(ctx, res)
	return ep.waitRestart(ctx, res, in.Watched)
}

// previousRestart returns what an earlier attempt of this activity heartbeated, when
// it restarted the same services.
func previousRestart(ctx context.Context, services []string) (RestartPebbleServicesResult, bool) {
	var prev RestartPebbleServicesResult
	if !activity.IsActivity(ctx) || !activity.HasHeartbeatDetails(ctx) {
		return prev, false
	}
	if err := activity.GetHeartbeatDetails(ctx, &prev); err != nil || prev.Change == "" {
		return prev, false
	}
	was := slices.Sorted(slices.Values(slices.Concat(prev.Restarted, prev.Started)))
	return prev, slices.Equal(was, slices.Sorted(slices.Values(services)))
}

// restartSpawnedSince returns the ID of the latest restart change spawned at or after
// since whose summary starts with the first of services (Pebble names the first
// requested service and counts the rest, the services they require included), or "".
func (ep pebbleEndpoint) restartSpawnedSince(ctx context.Context, services []string, since time.Time) (string, error) {
	first := fmt.Sprintf("Restart service %q", services[0])
	changes, err := ep.changesSince(ctx, "restart", "", since)
	if err != nil {
		return "", err
	}
	var found *client.Change
	for _, c := range changes {
		rest, named := strings.CutPrefix(c.Summary, first)
		var more int
		counted := rest == "" || func() bool { _, err := fmt.Sscanf(rest, " and %d more", &more); return err == nil }()
		if named && counted && more >= len(services)-1 && (found == nil || c.SpawnTime.After(found.SpawnTime)) {
			found = c
		}
	}
	if found == nil {
		return "", nil
	}
	return found.ID, nil
}

// restartPending reports whether an earlier attempt's restart change is still worth
// waiting for: not when Pebble no longer knows it or it failed (its start did not
// hold), since then this attempt must restart again or finish it — unless the caller
// watches and Pebble restarts the services by itself, which waiting reports without a
// restart. It returns the change when Pebble knows it.
func (ep pebbleEndpoint) restartPending(ctx context.Context, id string, watched bool) (bool, *client.Change, error) {
	var change *client.Change
	err := ep.call(ctx, func(pc *client.Client) (err error) {
		change, err = pc.Change(id)
		return err
	})
	var ce *client.Error
	switch {
	case errors.As(err, &ce) && ce.StatusCode == 404:
		return false, nil, nil
	case err != nil:
		return false, nil, pebbleError("cannot read pebble change "+id, err)
	}
	return !change.Ready || change.Err == "" || (watched && exitedAtOnce(change)), change, nil
}

// finishRestart starts, one by one in the order asked, the services of an earlier
// attempt's restart that are down now, and reports that restart as this call's.
func (ep pebbleEndpoint) finishRestart(ctx context.Context, prev RestartPebbleServicesResult) (RestartPebbleServicesResult, error) {
	names := slices.Concat(prev.Restarted, prev.Started)
	infos, err := ep.services(ctx, names)
	if err != nil {
		return prev, classify(err)
	}
	for _, name := range names {
		if running(infos[name]) {
			continue
		}
		if err := ep.startAndWait(ctx, name); err != nil {
			return prev, classify(fmt.Errorf("cannot restart %s: %w", strings.Join(names, ", "), err))
		}
	}
	return prev, nil
}

// waitRestart waits for a restart change and returns res, or its failure carrying the
// services' last output, which usually says why their start did not hold; a watched
// restart whose start exited at once is left to Pebble's backoff and the caller's watch.
func (ep pebbleEndpoint) waitRestart(ctx context.Context, res RestartPebbleServicesResult, watched bool) (RestartPebbleServicesResult, error) {
	names := slices.Concat(res.Restarted, res.Started)
	change, err := ep.waitChange(ctx, res.Change, "restart of "+strings.Join(names, ", "), res)
	switch {
	case err != nil:
		return res, classify(err)
	case watched && exitedAtOnce(change):
		res.Restarting = names
		return res, nil
	case change.Err != "":
		return res, classify(fmt.Errorf("cannot restart %s: %s; last output: %s", strings.Join(names, ", "), change.Err, ep.lastLogLines(ctx, names, 5)))
	}
	return res, nil
}

// waitChange waits for a Pebble change in slices, so each call stays inside
// PebbleCallTimeout, heartbeating beat between them; Pebble finishes a stop after
// the kill-delay and its own grace at most, so the wait is bounded.
func (ep pebbleEndpoint) waitChange(ctx context.Context, id, what string, beat any) (*client.Change, error) {
	for {
		var change *client.Change
		err := ep.call(ctx, func(pc *client.Client) (err error) {
			change, err = pc.WaitChange(id, &client.WaitChangeOptions{Timeout: PebbleCallTimeout / 3})
			return err
		})
		if err == nil && change.Ready {
			return change, nil
		}
		if err != nil && !isWaitTimeout(err) {
			return nil, fmt.Errorf("cannot wait for the %s: %w", what, err)
		}
		recordHeartbeat(ctx, beat)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}
