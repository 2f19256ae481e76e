package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	tclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/internal/benchreport"
)

// s2sSteps is how many activities one workflow of BenchmarkScheduleToStart runs, one
// after the other, as a deploy's steps do.
const s2sSteps = 20

// s2sConfigs are the dev server settings BenchmarkScheduleToStart compares: each names
// one suspected source of the dev server's ≈ 47 ms schedule-to-start and removes it.
var s2sConfigs = []struct {
	name, why string
	args      []string
}{
	{"default", "temporal server start-dev as the stack runs it (SQLite file)", nil},
	{"poll-rps", "history's transfer queue reads at 20/s per shard (history.transferProcessorMaxPollRPS)",
		[]string{"--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000"}},
	{"sqlite-wal", "SQLite's default rollback journal with synchronous=FULL: an fsync per commit",
		[]string{"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"}},
	{"one-partition", "four task queue partitions, a task added where no poller waits",
		[]string{"--dynamic-config-value", "matching.numTaskqueueReadPartitions=1", "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1"}},
	{"eager", "eager activities (the SDK asks, the server's system.enableActivityEagerExecution is off)",
		[]string{"--dynamic-config-value", "system.enableActivityEagerExecution=true"}},
	{"all", "all of the above", []string{
		"--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
		"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
		"--dynamic-config-value", "matching.numTaskqueueReadPartitions=1", "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
		"--dynamic-config-value", "system.enableActivityEagerExecution=true"}},
}

// BenchmarkScheduleToStart finds where the dev server's schedule-to-start per task
// comes from (issue 15): for each of s2sConfigs it starts a private dev server (the
// stack's binary, a SQLite file of its own) with that setting, runs b.N workflows of
// s2sSteps no-op activities on an in-process worker, and reads from the histories the
// activities' and workflow tasks' schedule-to-start and the time per step. A local
// activity variant (no task at all per step) runs on the default server as the floor.
// SOCFLOW_BENCH_S2S narrows the configurations (comma-separated names).
func BenchmarkScheduleToStart(b *testing.B) {
	only := os.Getenv("SOCFLOW_BENCH_S2S")
	var figs []benchreport.Figure
	fig := func(name string, v float64) {
		figs = append(figs, benchreport.Figure{Name: name, Value: v, Unit: "ms"})
	}
	fmt.Printf("schedule-to-start per task on a private dev server, %d workflows of %d sequential no-op activities each (ms)\n", b.N, s2sSteps)
	fmt.Printf("  %-14s %9s %9s %9s %9s %9s  %s\n", "config", "act p50", "act p99", "wft p50", "wft p99", "step p50", "what it removes")
	for _, cfg := range s2sConfigs {
		if only != "" && !strings.Contains(","+only+",", ","+cfg.name+",") {
			continue
		}
		s := s2sRun(b, cfg.args, false)
		fmt.Printf("  %-14s %9.1f %9.1f %9.1f %9.1f %9.1f  %s\n", cfg.name, pct(s.act, 50), pct(s.act, 99), pct(s.wft, 50), pct(s.wft, 99), pct(s.step, 50), cfg.why)
		fig(cfg.name+"-activity-s2s-p50-ms", pct(s.act, 50))
		fig(cfg.name+"-workflow-task-s2s-p50-ms", pct(s.wft, 50))
		fig(cfg.name+"-step-p50-ms", pct(s.step, 50))
		if cfg.name == "default" {
			l := s2sRun(b, nil, true)
			fmt.Printf("  %-14s %9s %9s %9.1f %9.1f %9.1f  %s\n", "local", "-", "-", pct(l.wft, 50), pct(l.wft, 99), pct(l.step, 50),
				"local activities on the default server: no activity task at all")
			fig("local-step-p50-ms", pct(l.step, 50))
		}
	}
	reportFigures(b, figs)
}

// s2sTimes are one configuration's figures in milliseconds: each activity's and each
// workflow task's schedule-to-start, and each workflow's wall time per step.
type s2sTimes struct {
	act, wft, step []float64
}

// s2sRun starts a private dev server with args, runs b.N step workflows on it (with
// local activities if local) and reads their histories.
func s2sRun(b *testing.B, args []string, local bool) s2sTimes {
	b.Helper()
	srv := &restartableServer{addr: fmt.Sprintf("127.0.0.1:%d", freePort(b)), db: filepath.Join(b.TempDir(), "temporal.db"), args: args}
	srv.start(b)
	defer srv.stop(b)
	c := srv.srv.Client()
	queue := fmt.Sprintf("s2s-%d", time.Now().UnixNano())
	defer s2sWorker(b, c, queue)()
	var t s2sTimes
	for i := range b.N {
		run, err := c.ExecuteWorkflow(context.Background(), tclient.StartWorkflowOptions{ID: fmt.Sprintf("%s-%d", queue, i), TaskQueue: queue}, "S2SSteps", local)
		if err != nil {
			b.Fatal(err)
		}
		if err := run.Get(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
		events := historyEvents(b, c, run.GetID(), run.GetRunID())
		scheduled := map[int64]time.Time{}
		for _, e := range events {
			at := e.GetEventTime().AsTime()
			switch e.GetEventType() {
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
				scheduled[e.GetEventId()] = at
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
				t.act = append(t.act, ms(at.Sub(scheduled[e.GetActivityTaskStartedEventAttributes().GetScheduledEventId()])))
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
				t.wft = append(t.wft, ms(at.Sub(scheduled[e.GetWorkflowTaskStartedEventAttributes().GetScheduledEventId()])))
			}
		}
		wall := events[len(events)-1].GetEventTime().AsTime().Sub(events[0].GetEventTime().AsTime())
		t.step = append(t.step, ms(wall)/s2sSteps)
	}
	return t
}

// s2sWorker runs the step workflow and its no-op activity on queue; call the returned
// func to stop it.
func s2sWorker(tb testing.TB, c tclient.Client, queue string) (stop func()) {
	tb.Helper()
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(s2sWorkflow, workflow.RegisterOptions{Name: "S2SSteps"})
	w.RegisterActivity(s2sNoop)
	if err := w.Start(); err != nil {
		tb.Fatal(err)
	}
	return w.Stop
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// s2sWorkflow runs s2sSteps no-op activities one after the other, as local activities
// if local.
func s2sWorkflow(ctx workflow.Context, local bool) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
	for range s2sSteps {
		f := workflow.ExecuteActivity(ctx, s2sNoop)
		if local {
			f = workflow.ExecuteLocalActivity(ctx, s2sNoop)
		}
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// s2sNoop does nothing: the time around it is Temporal's.
func s2sNoop(context.Context) error { return nil }
