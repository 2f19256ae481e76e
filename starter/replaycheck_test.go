package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/internal/workerapp"
	"github.com/socflow/socflow/workflows"
)

// TestReplayCheckOnRunningWorkflows runs replay-check against the stack's Temporal: a
// real deploy left waiting on dependencies that are down replays ("ok"); a workflow
// written by other code under the same type, and one of a type this build does not
// register, would break.
func TestReplayCheckOnRunningWorkflows(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack's Temporal")
	}
	st := stacktest.Get(t)
	quiet := log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	c := stacktest.TemporalClient(t, st.TemporalAddress, quiet)
	suffix := fmt.Sprint(time.Now().UnixNano())

	// A real deploy, served by socflow's worker wiring, that stays in waiting-dependencies.
	good := "replay-check-good-" + suffix
	secretDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- workerapp.Run(ctx, workerapp.Config{TaskQueue: good, SecretDir: secretDir, InflightDir: secretDir + "-inflight", ProbeInterval: 250 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}, c)
	}()
	t.Cleanup(func() { cancel(); <-done })
	inst := waitingInstance(t, "rc"+suffix[len(suffix)-9:])
	run, err := c.ExecuteWorkflow(context.Background(), tclient.StartWorkflowOptions{
		ID: workflows.DeployWorkflowID(inst.Name), TaskQueue: good,
	}, workflows.DeployOpenCTIWorkflow, workflows.DeployInput{Instance: inst})
	if err != nil {
		t.Fatal(err)
	}
	terminate(t, c, run.GetID())
	waitForPhase(t, c, run.GetID(), workflows.PhaseWaitingDeps)

	out := checkUntil(t, c, good, func(out string) bool { return strings.Contains(out, run.GetID()) })
	if !strings.Contains(out, run.GetID()+" (DeployOpenCTI, run "+run.GetRunID()+"): ok\n") {
		t.Errorf("the running deploy is not reported ok:\n%s", out)
	}

	// Another queue: a DeployOpenCTI written by different code (it sleeps first, where the
	// real one upserts its search attributes), and a workflow type this build lacks.
	bad := "replay-check-bad-" + suffix
	w := worker.New(c, bad, worker.Options{})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context, _ workflows.DeployInput) error {
		return workflow.Sleep(ctx, time.Hour)
	}, workflow.RegisterOptions{Name: workflows.DeployOpenCTIWorkflow})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	changed, err := c.ExecuteWorkflow(context.Background(), tclient.StartWorkflowOptions{ID: "replay-check-changed-" + suffix, TaskQueue: bad},
		workflows.DeployOpenCTIWorkflow, workflows.DeployInput{Instance: inst})
	if err != nil {
		t.Fatal(err)
	}
	terminate(t, c, changed.GetID())
	unknown, err := c.ExecuteWorkflow(context.Background(), tclient.StartWorkflowOptions{ID: "replay-check-unknown-" + suffix, TaskQueue: bad},
		"RetiredWorkflow", workflows.DeployInput{Instance: inst})
	if err != nil {
		t.Fatal(err)
	}
	terminate(t, c, unknown.GetID())

	checkUntil(t, c, bad, func(out string) bool { return strings.Count(out, "WOULD BREAK") == 2 })
	var buf bytes.Buffer
	if err := replayCheck(context.Background(), c, &buf, replayCheckOptions{TaskQueue: bad}); !errors.Is(err, errWouldBreak) {
		t.Errorf("replay-check returned %v, want errWouldBreak", err)
	}
	out = buf.String()
	for _, want := range []string{
		changed.GetID() + " (DeployOpenCTI, run " + changed.GetRunID() + "): WOULD BREAK: ",
		"nondeterministic workflow",
		unknown.GetID() + " (RetiredWorkflow, run " + unknown.GetRunID() + "): WOULD BREAK: this build registers no workflow type RetiredWorkflow",
		"2 running workflow(s) on task queue " + bad + " checked, 2 would break",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("replay-check output:\n%s", out)
}

// waitingInstance is a valid spec whose four dependencies point at ports nothing
// listens on: the deploy waits in waiting-dependencies with a real history.
func waitingInstance(t *testing.T, name string) opencti.Instance {
	t.Helper()
	port, mgmt := stacktest.FreePort(t), stacktest.FreePort(t)
	inst := opencti.Instance{
		Name:    name,
		OpenCTI: opencti.Settings{Version: "6.9.3", AdminPassword: "local-admin-password"},
		Pebble:  spec.Pebble{Socket: filepath.Join(t.TempDir(), ".pebble.socket")},
		Integrations: opencti.Integrations{
			OpenSearch: &spec.OpenSearch{URLs: []string{fmt.Sprintf("http://127.0.0.1:%d", port)}},
			RabbitMQ:   &spec.RabbitMQ{Host: "127.0.0.1", Port: port, ManagementPort: mgmt, Username: "u", Password: "local-password"},
			Redis:      &spec.Redis{Host: "127.0.0.1", Port: port, Password: "local-password"},
			S3: &spec.S3{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), Region: "us-east-1", Bucket: name + "-files",
				AccessKey: "local-access", SecretKey: "local-secret-key"},
		},
	}
	inst = inst.WithDefaults()
	if err := inst.Validate(); err != nil {
		t.Fatalf("test spec invalid: %v", err)
	}
	return inst
}

// checkUntil runs replayCheck until its output satisfies cond (visibility and the first
// workflow task take a moment), and returns that output.
func checkUntil(t *testing.T, c tclient.Client, queue string, cond func(string) bool) string {
	t.Helper()
	var out string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		var buf bytes.Buffer
		_ = replayCheck(context.Background(), c, &buf, replayCheckOptions{TaskQueue: queue})
		if out = buf.String(); cond(out) {
			return out
		}
	}
	t.Fatalf("replay-check on %s never showed what the test waits for; last output:\n%s", queue, out)
	return ""
}

func waitForPhase(t *testing.T, c tclient.Client, id string, p workflows.Phase) {
	t.Helper()
	var st workflows.DeployStatus
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if v, err := c.QueryWorkflow(context.Background(), id, "", workflows.StatusQuery); err == nil && v.Get(&st) == nil &&
			st.Phase == p && len(st.Dependencies) == 4 && st.Dependencies[0].Reason != "" {
			return
		}
	}
	t.Fatalf("deploy %s never reached %s with a reason; last status %+v", id, p, st)
}

// terminate ends a test's workflow when the test ends, so none is left running.
func terminate(t *testing.T, c tclient.Client, id string) {
	t.Cleanup(func() { _ = c.TerminateWorkflow(context.Background(), id, "", "replay-check test done") })
}
