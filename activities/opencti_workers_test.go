package activities_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

// Worker commands that print what pycti's worker prints: JSON lines on stdout.
const (
	notReachable = `echo "{\"level\":\"error\",\"message\":\"OpenCTI API is not reachable. Waiting for OpenCTI API to start or check your configuration...\"}"`
	connected    = `echo "{\"level\":\"info\",\"message\":\"Worker connected to OpenCTI\"}"`
	wrongVersion = `echo "{\"level\":\"error\",\"message\":\"Cannot query field connectorsForWorker\",\"name\":\"GRAPHQL_VALIDATION_FAILED\"}"`
)

// watchedWorkers plans the platform and two workers running the given shell scripts
// on a Pebble of their own and starts the platform and the workers named in start.
func watchedWorkers(t *testing.T, scripts map[string]string, start ...string) (spec.Pebble, *activities.Activities) {
	t.Helper()
	ctx := context.Background()
	p := spec.Pebble{Socket: stacktest.Pebble(t)}
	l := sleepLayer(t.TempDir(), 2, func(name string, svc *layer.Service) {
		if s, ok := scripts[name]; ok {
			svc.Command = "/bin/sh -c '" + s + "'"
		}
	})
	if _, err := applySleepers(ctx, p, l); err != nil {
		t.Fatal(err)
	}
	acts := &activities.Activities{}
	if _, err := acts.StartPebbleServices(ctx, activities.StartPebbleServicesInput{Pebble: p, Services: append([]string{"platform"}, start...)}); err != nil {
		t.Fatal(err)
	}
	return p, acts
}

// TestCheckOpenCTIWorkersWaitsOutAPlatformRestartAndAKilledWorker: worker-0 cannot
// reach the platform for a while (the platform restarting), worker-1 is down at first
// (killed; worker services do not restart on failure, so the check starts it). Neither says the workers are of the wrong version:
// the check watches again and reports nothing once both are quiet for a window. The
// chaos suite found the old check rolling upgrades back for a SIGKILL.
func TestCheckOpenCTIWorkersWaitsOutAPlatformRestartAndAKilledWorker(t *testing.T) {
	since := time.Now()
	p, acts := watchedWorkers(t, map[string]string{
		"worker-0": "for i in 1 2 3 4 5 6 7 8; do " + notReachable + "; sleep 0.3; done; " + connected + "; exec sleep 300",
	}, "worker-0")
	res, err := acts.CheckOpenCTIWorkers(context.Background(), activities.CheckOpenCTIWorkersInput{
		Pebble: p, Services: []string{"worker-0", "worker-1"}, Since: since, Window: time.Second, Patience: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failing) != 0 {
		t.Errorf("failing %v: a platform restart and a killed worker are not workers of the wrong version", res.Failing)
	}
	pc, err := client.New(&client.Config{Socket: p.Socket})
	if err != nil {
		t.Fatal(err)
	}
	infos, err := pc.Services(&client.ServicesOptions{Names: []string{"worker-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if w := infos[0]; w.Current != client.StatusActive {
		t.Errorf("worker-1 after the check: %+v, want it started again (worker services do not restart on failure)", w)
	}
}

// TestCheckOpenCTIWorkersReportsAWrongVersionAtOnce: a worker the platform answers with
// an error (another version's query) fails at once, whatever the others do.
func TestCheckOpenCTIWorkersReportsAWrongVersionAtOnce(t *testing.T) {
	since := time.Now()
	p, acts := watchedWorkers(t, map[string]string{
		"worker-0": "while true; do " + wrongVersion + "; sleep 0.3; done",
		"worker-1": "while true; do " + notReachable + "; sleep 0.3; done",
	}, "worker-0", "worker-1")
	res, err := acts.CheckOpenCTIWorkers(context.Background(), activities.CheckOpenCTIWorkersInput{
		Pebble: p, Services: []string{"worker-0", "worker-1"}, Since: since, Window: 10 * time.Second, Patience: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Failing["worker-0"]; !strings.Contains(got, "GRAPHQL_VALIDATION_FAILED") {
		t.Errorf("worker-0 reported as %q, want its GRAPHQL_VALIDATION_FAILED", got)
	}
	if _, ok := res.Failing["worker-1"]; ok {
		t.Errorf("worker-1, which only cannot reach the platform, reported as failing: %v", res.Failing)
	}
}

// TestCheckOpenCTIWorkersReportsAPlatformNeverReachedOncePatienceIsSpent: a worker that
// never reaches the platform (a wrong URL) is reported once the patience is spent.
func TestCheckOpenCTIWorkersReportsAPlatformNeverReachedOncePatienceIsSpent(t *testing.T) {
	since := time.Now()
	p, acts := watchedWorkers(t, map[string]string{
		"worker-0": "while true; do " + notReachable + "; sleep 0.3; done",
	}, "worker-0", "worker-1")
	res, err := acts.CheckOpenCTIWorkers(context.Background(), activities.CheckOpenCTIWorkersInput{
		Pebble: p, Services: []string{"worker-0", "worker-1"}, Since: since, Window: time.Second, Patience: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Failing["worker-0"]; !strings.Contains(got, "not reachable") || len(res.Failing) != 1 {
		t.Errorf("failing %v, want worker-0 alone, with its last error", res.Failing)
	}
}
