package e2e

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/secrets"
)

// planBytes is the container's combined plan, as `pebble plan` prints it.
func planBytes(t *testing.T, socket string) []byte {
	t.Helper()
	pc, err := client.New(&client.Config{Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	b, err := pc.PlanBytes(&client.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A second instance deployed with the Pebble of a container another instance runs is
// refused before anything changes, naming both; the first instance's plan stays
// byte-for-byte what it was and its platform keeps running.
func TestDeployIntoAnotherInstancesContainerIsRefused(t *testing.T) {
	c := temporalClient(t)
	queue := inProcessWorker(t, c, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	demo := newInstance(t, instanceOpts{initDelay: time.Second})
	if err := startDeploy(t, c, queue, demo).Get(ctx, nil); err != nil {
		t.Fatalf("deploy of %s failed: %v", demo.Name, err)
	}
	before := planBytes(t, demo.Pebble.Socket)

	clash := newInstance(t, instanceOpts{initDelay: time.Second})
	clash.Pebble = demo.Pebble
	err := startDeploy(t, c, queue, clash).Get(ctx, nil)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrTypeContainerOwned {
		t.Fatalf("deploy of %s into %s's container: %v, want a %s failure", clash.Name, demo.Name, err, activities.ErrTypeContainerOwned)
	}
	for _, want := range []string{"cannot deploy " + clash.Name, "runs instance " + demo.Name, demo.Pebble.Socket,
		"give " + clash.Name + " its own container, or remove " + demo.Name + " first"} {
		if !strings.Contains(app.Message(), want) {
			t.Errorf("refusal %q does not say %q", app.Message(), want)
		}
	}
	if after := planBytes(t, demo.Pebble.Socket); !bytes.Equal(before, after) {
		t.Errorf("the refused deploy changed %s's plan:\nbefore\n%s\nafter\n%s", demo.Name, before, after)
	}
	if n := platformStarts(t, demo.Pebble.Socket); n != 1 {
		t.Errorf("%s's platform started %d times, want 1", demo.Name, n)
	}
	if svcs := services(t, demo.Pebble.Socket); svcs[opencti.PlatformService].Current != client.StatusActive {
		t.Errorf("%s's platform is %s after the refusal", demo.Name, svcs[opencti.PlatformService].Current)
	}
}

// Stopping the platform waits for its clean exit: SIGTERM, the stand-in's real stop
// time, exit 0, and nothing of the instance left running.
func TestStopPlatformWaitsForCleanExit(t *testing.T) {
	c := temporalClient(t)
	secretDir := t.TempDir()
	queue := inProcessWorker(t, c, secretDir)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const stopDelay = 3 * time.Second
	inst := newInstance(t, instanceOpts{initDelay: time.Second, stopDelay: stopDelay})
	if err := startDeploy(t, c, queue, inst).Get(ctx, nil); err != nil {
		t.Fatalf("deploy failed: %v", err)
	}

	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Activities{Secrets: &secrets.Store{Dir: secretDir}})
	began := time.Now()
	v, err := env.ExecuteActivity((*activities.Activities)(nil).StopPebbleServices,
		activities.StopPebbleServicesInput{Pebble: inst.Pebble, Services: append([]string{opencti.PlatformService}, opencti.WorkerServices(3)...)})
	if err != nil {
		t.Fatalf("stop: %v", err)
	}
	took := time.Since(began)
	var res activities.StopPebbleServicesResult
	if err := v.Get(&res); err != nil || len(res.Stopped) != 4 {
		t.Fatalf("stopped %+v (%v), want the platform and three workers", res, err)
	}
	if took < stopDelay {
		t.Errorf("stop returned after %s, before the platform's clean stop (%s) could finish", took, stopDelay)
	}
	out := platformLog(t, inst.Pebble.Socket)
	for _, want := range []string{"SIGTERM signal received, stopping OpenCTI", "[OPENCTI] Platform stopped", `"exit_code":0`} {
		if !strings.Contains(out, want) {
			t.Errorf("platform output lacks %q:\n%s", want, tail(out, 10))
		}
	}
	requireNoProcs(t, inst.Name, 5*time.Second)
}

// A platform whose stop hangs on SIGTERM (as real stops sometimes do for more than ten
// minutes) is SIGKILLed after its kill-delay, with its whole process group: the stop
// is bounded, and nothing is left.
func TestStopPlatformThatHangsIsKilledAfterTheBound(t *testing.T) {
	c := temporalClient(t)
	secretDir := t.TempDir()
	queue := inProcessWorker(t, c, secretDir)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	inst := newInstance(t, instanceOpts{initDelay: time.Second, stopHang: true})
	if err := startDeploy(t, c, queue, inst).Get(ctx, nil); err != nil {
		t.Fatalf("deploy failed: %v", err)
	}
	began := time.Now()
	stopAllAndRequireNoProcs(t, inst, secretDir)
	took := time.Since(began)
	if took < opencti.PlatformKillDelay || took > opencti.PlatformKillDelay+15*time.Second {
		t.Errorf("a hanging stop took %s, want the kill-delay %s and a little more", took, opencti.PlatformKillDelay)
	}
	out := platformLog(t, inst.Pebble.Socket)
	if !strings.Contains(out, "SIGTERM signal received, stopping OpenCTI") || strings.Contains(out, "[OPENCTI] Platform stopped") {
		t.Errorf("want a stop that began and never finished cleanly; output:\n%s", tail(out, 10))
	}
}

// platformLog is the platform service's whole output kept by Pebble.
func platformLog(t testing.TB, socket string) string {
	t.Helper()
	pc, err := client.New(&client.Config{Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	err = pc.Logs(&client.LogsOptions{Services: []string{opencti.PlatformService}, N: -1, WriteLog: func(e client.LogEntry) error {
		b.WriteString(e.Message)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
