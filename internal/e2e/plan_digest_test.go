package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/opencti"
)

// A redeploy whose plan differs from the one the running platform was started from
// (here: another log level) does not restart the platform behind the operator's back,
// and does not report success either: the wait sees, from socflow-reap's start line,
// that the running platform belongs to another plan, and says how to apply the new one.
func TestRedeployWithAnotherPlanIsRefusedWhileThePlatformRuns(t *testing.T) {
	c := temporalClient(t)
	queue := inProcessWorker(t, c, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	inst := newInstance(t, instanceOpts{initDelay: time.Second})
	if err := startDeploy(t, c, queue, inst).Get(ctx, nil); err != nil {
		t.Fatalf("first deploy failed: %v", err)
	}
	changed := inst
	changed.OpenCTI.LogLevel = opencti.LogDebug
	err := startDeploy(t, c, queue, changed).Get(ctx, nil)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrTypeForeignPlatform {
		t.Fatalf("redeploy with a changed plan: %v, want a %s failure", err, activities.ErrTypeForeignPlatform)
	}
	if !strings.Contains(app.Message(), "was started from plan") || !strings.Contains(app.Message(), "never restarts a running platform") {
		t.Errorf("refusal %q does not say which plan runs and what to do", app.Message())
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 1 {
		t.Errorf("platform started %d times, want 1: a deploy must not restart it", n)
	}
}
