package activities_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

// runRestart executes RestartPebbleServices as a worker would and decodes its result.
func runRestart(t *testing.T, p spec.Pebble, services ...string) (activities.RestartPebbleServicesResult, error) {
	t.Helper()
	return restartIn(t, probeEnv(t), p, services...)
}

// restartIn is runRestart in a given environment (one holding heartbeat details).
func restartIn(t *testing.T, env *testsuite.TestActivityEnvironment, p spec.Pebble, services ...string) (activities.RestartPebbleServicesResult, error) {
	t.Helper()
	return restartSince(t, env, time.Time{}, p, services...)
}

// restartSince is restartIn with the input's Since.
func restartSince(t *testing.T, env *testsuite.TestActivityEnvironment, since time.Time, p spec.Pebble, services ...string) (activities.RestartPebbleServicesResult, error) {
	t.Helper()
	var res activities.RestartPebbleServicesResult
	v, err := env.ExecuteActivity(nilActs.RestartPebbleServices, activities.RestartPebbleServicesInput{Pebble: p, Services: services, Since: since})
	if err != nil {
		return res, err
	}
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

// changedPids names the services whose pid differs between two readings.
func changedPids(before, after map[string]string) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(after)) {
		if before[name] != after[name] {
			out = append(out, name)
		}
	}
	return out
}

func TestRestartPebbleServicesRestartsOnlyThoseNamed(t *testing.T) {
	ctx := context.Background()
	socket := stacktest.Pebble(t)
	p := spec.Pebble{Socket: socket}
	dir := t.TempDir()
	if _, err := applySleepers(ctx, p, sleepLayer(dir, 3, nil)); err != nil {
		t.Fatal(err)
	}
	all := []string{"platform", "worker-0", "worker-1", "worker-2"}
	if _, err := (&activities.Activities{}).StartPebbleServices(ctx, activities.StartPebbleServicesInput{Pebble: p, Services: all}); err != nil {
		t.Fatal(err)
	}
	before := pids(t, dir)
	decided := time.Now()

	res, err := runRestart(t, p, "worker-1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Restarted, []string{"worker-1"}) || res.Started != nil || res.Change == "" {
		t.Errorf("result %+v", res)
	}
	after := pids(t, dir)
	if got := changedPids(before, after); !slices.Equal(got, []string{"worker-1"}) {
		t.Errorf("new processes for %v, want only worker-1", got)
	}
	changes := pebbleChanges(t, socket)
	last := changes[len(changes)-1]
	if last.ID != res.Change || last.Kind != "restart" || !strings.Contains(last.Summary, `"worker-1"`) ||
		strings.Contains(last.Summary, "platform") || strings.Contains(last.Summary, "worker-0") || last.Status != "Done" {
		t.Errorf("last change %+v", last)
	}

	t.Log("a retry that finds the first attempt's change waits for it instead of restarting again")
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Activities{})
	env.SetHeartbeatDetails(res)
	again, err := restartIn(t, env, p, "worker-1")
	if err != nil {
		t.Fatal(err)
	}
	if again.Change != res.Change || !slices.Equal(again.Restarted, res.Restarted) {
		t.Errorf("resumed result %+v, want %+v", again, res)
	}
	if got := changedPids(after, pids(t, dir)); got != nil {
		t.Errorf("the resumed restart restarted %v", got)
	}
	if n := len(pebbleChanges(t, socket)); n != len(changes) {
		t.Errorf("the resumed restart made %d changes", n-len(changes))
	}

	t.Log("an attempt without a heartbeat finds the restart spawned since the workflow decided it")
	found, err := restartSince(t, probeEnv(t), decided, p, "worker-1")
	if err != nil {
		t.Fatal(err)
	}
	if found.Change != res.Change || changedPids(after, pids(t, dir)) != nil || len(pebbleChanges(t, socket)) != len(changes) {
		t.Errorf("a retry after a lost heartbeat restarted again: %+v (first %+v)", found, res)
	}
	if again, err := restartSince(t, probeEnv(t), time.Now(), p, "worker-1"); err != nil || again.Change == res.Change {
		t.Errorf("a restart decided after the last one did not restart: %+v %v", again, err)
	}
	after = pids(t, dir)

	t.Log("an inactive service is started, and said so")
	if _, err := (&activities.Activities{}).StopPebbleServices(ctx, activities.StopPebbleServicesInput{Pebble: p, Services: []string{"worker-2"}}); err != nil {
		t.Fatal(err)
	}
	after = pids(t, dir)
	res, err = runRestart(t, p, "worker-2", "worker-0")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Restarted, []string{"worker-0"}) || !slices.Equal(res.Started, []string{"worker-2"}) {
		t.Errorf("result %+v", res)
	}
	if got := changedPids(after, pids(t, dir)); !slices.Equal(got, []string{"worker-0", "worker-2"}) {
		t.Errorf("new processes for %v, want worker-0 and worker-2", got)
	}

	t.Log("restarting the platform leaves the workers that require it running")
	after = pids(t, dir)
	if _, err := runRestart(t, p, "platform"); err != nil {
		t.Fatal(err)
	}
	if got := changedPids(after, pids(t, dir)); !slices.Equal(got, []string{"platform"}) {
		t.Errorf("new processes for %v, want only platform", got)
	}
}

func TestRestartPebbleServicesRefusesUnknownServices(t *testing.T) {
	p := spec.Pebble{Socket: stacktest.Pebble(t)}
	_, err := runRestart(t, p, "socflow-no-such-service")
	requirePermanent(t, err, activities.ErrTypeInvalidInput, "socflow-no-such-service", "no such service")
	_, err = runRestart(t, p)
	requirePermanent(t, err, activities.ErrTypeInvalidInput, "none named")
}

// TestRestartPebbleServicesWatchedLeavesACrashLoopToPebble: a watched restart of a
// platform whose new process exits at once (a held init lock, a dependency down) is
// reported Restarting, not failed, and a retry — its result lost — finds that change
// and makes no second restart, which would kill the process Pebble restarts,
// possibly mid-initialisation. Unwatched, the same restart is an error naming the exit.
func TestRestartPebbleServicesWatchedLeavesACrashLoopToPebble(t *testing.T) {
	ctx := context.Background()
	p, dir, ok := gatedPebble(t)
	socket := p.Socket
	l := sleepLayer(dir, 0, func(_ string, svc *layer.Service) {
		svc.Command = fmt.Sprintf(`/bin/sh -c 'test -f %s || { echo init lock held; exit 1; }; exec sleep 300'`, ok)
	})
	if _, err := applySleepers(ctx, p, l); err != nil {
		t.Fatal(err)
	}
	if _, err := (&activities.Activities{}).StartPebbleServices(ctx, activities.StartPebbleServicesInput{Pebble: p, Services: []string{"platform"}}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(ok); err != nil {
		t.Fatal(err)
	}
	restart := func(env *testsuite.TestActivityEnvironment, watched bool) (activities.RestartPebbleServicesResult, error) {
		var res activities.RestartPebbleServicesResult
		v, err := env.ExecuteActivity(nilActs.RestartPebbleServices, activities.RestartPebbleServicesInput{
			Pebble: p, Services: []string{"platform"}, Since: time.Now(), Watched: watched})
		if err == nil {
			err = v.Get(&res)
		}
		return res, err
	}
	if _, err := restart(probeEnv(t), false); err == nil || !strings.Contains(err.Error(), "exited quickly") {
		t.Fatalf("unwatched restart of a process that exits at once: %v, want the exit", err)
	}
	res, err := restart(probeEnv(t), true)
	if err != nil || !slices.Equal(res.Restarting, []string{"platform"}) || res.Change == "" {
		t.Fatalf("watched restart: %+v, %v; want platform restarting, no error", res, err)
	}
	restarts := func() int { return len(restartChanges(t, socket)) }
	before := restarts()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Activities{})
	env.SetHeartbeatDetails(res) // the retry of an attempt whose result was lost
	again, err := restart(env, true)
	if err != nil || again.Change != res.Change || !slices.Equal(again.Restarting, []string{"platform"}) {
		t.Errorf("retry of the watched restart: %+v, %v; want the first change, platform restarting", again, err)
	}
	if n := restarts(); n != before {
		t.Errorf("the retry restarted the platform %d more times, want none: Pebble restarts it itself", n-before)
	}
}

// TestRestartPebbleServicesRetryFinishesARestartWhoseStartDidNotHold: a worker killed
// within Pebble's one-second start confirmation fails the restart change (and Pebble
// holds the starts after it); the retry starts what is down and reports the restart,
// instead of restarting both workers a second time. The chaos suite found it: a
// logLevel change whose worker-0 was killed mid-restart stopped each worker twice and
// reported them started, not restarted.
func TestRestartPebbleServicesRetryFinishesARestartWhoseStartDidNotHold(t *testing.T) {
	ctx := context.Background()
	p, dir, ok := gatedPebble(t)
	socket := p.Socket
	l := sleepLayer(dir, 2, func(name string, svc *layer.Service) {
		if name == "worker-0" {
			svc.Command = fmt.Sprintf(`/bin/sh -c 'test -f %s || { echo killed; exit 137; }; exec sleep 300'`, ok)
		}
		svc.OnFailure = layer.ActionIgnore // as the workers' services: Pebble does not restart them
	})
	if _, err := applySleepers(ctx, p, l); err != nil {
		t.Fatal(err)
	}
	workers := []string{"worker-0", "worker-1"}
	if _, err := (&activities.Activities{}).StartPebbleServices(ctx, activities.StartPebbleServicesInput{Pebble: p, Services: append([]string{"platform"}, workers...)}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(ok); err != nil { // worker-0's next process dies at once
		t.Fatal(err)
	}
	restart := func(env *testsuite.TestActivityEnvironment) (activities.RestartPebbleServicesResult, error) {
		var res activities.RestartPebbleServicesResult
		v, err := env.ExecuteActivity(nilActs.RestartPebbleServices, activities.RestartPebbleServicesInput{Pebble: p, Services: workers, Since: time.Now()})
		if err == nil {
			err = v.Get(&res)
		}
		return res, err
	}
	if _, err := restart(probeEnv(t)); err == nil {
		t.Fatal("a restart whose start of worker-0 exits at once succeeded; the test proves nothing")
	}
	before := restartChanges(t, socket)
	if err := os.WriteFile(ok, nil, 0o600); err != nil { // the kill was a one-off
		t.Fatal(err)
	}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Activities{})
	env.SetHeartbeatDetails(activities.RestartPebbleServicesResult{Restarted: workers, Change: before[len(before)-1]})
	res, err := restart(env)
	if err != nil || !slices.Equal(res.Restarted, workers) || len(res.Started) != 0 {
		t.Fatalf("retry: %+v, %v; want both workers reported restarted", res, err)
	}
	if after := restartChanges(t, socket); len(after) != len(before) {
		t.Errorf("the retry restarted the workers again (%d restart changes, was %d): worker-1's restart had held", len(after), len(before))
	}
	pc, err := client.New(&client.Config{Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	infos, err := pc.Services(&client.ServicesOptions{Names: workers})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		if i.Current != client.StatusActive {
			t.Errorf("%s after the retry: %s, want active", i.Name, i.Current)
		}
	}
}

// gatedPebble is a Pebble of its own, a directory for its services' files, and the
// path of a file (created) whose absence makes a gated service's next process exit at
// once: remove it to make a restart's start fail.
func gatedPebble(t *testing.T) (spec.Pebble, string, string) {
	t.Helper()
	p := spec.Pebble{Socket: stacktest.Pebble(t)}
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, dir, ok
}

// restartChanges lists the IDs of Pebble's restart changes, oldest first.
func restartChanges(t *testing.T, socket string) []string {
	t.Helper()
	var ids []string
	for _, ch := range pebbleChanges(t, socket) {
		if ch.Kind == "restart" {
			ids = append(ids, ch.ID)
		}
	}
	return ids
}
