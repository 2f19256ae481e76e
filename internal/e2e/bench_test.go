package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	enumspb "go.temporal.io/api/enums/v1"
	tclient "go.temporal.io/sdk/client"

	"github.com/socflow/socflow/internal/benchreport"
)

// BenchmarkDeploy deploys a fresh instance b.N times on the local stack and reports
// how much time socflow itself adds to a deploy:
//   - gap-deps: last dependency probe completed -> next step (EnsureBucket) started;
//   - gap-workers: platform health probe completed -> workers' start began;
//   - overhead: deploy wall time minus the platform's own critical path (its log lines
//     "Starting platform" -> "API ready"), as a share of the wall time.
//
// SOCFLOW_BENCH_INIT_DELAY sets the stand-in's first-boot time (default 30s: a real
// first boot takes minutes, so a short one would mostly measure Pebble's fixed 1 s
// start confirmation per service). Goals: each stage gap's p99 < 250 ms, the
// overhead's p50 < 5 % of the wall time.
func BenchmarkDeploy(b *testing.B) {
	initDelay := 30 * time.Second
	if v := os.Getenv("SOCFLOW_BENCH_INIT_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("SOCFLOW_BENCH_INIT_DELAY: %v", err)
		}
		initDelay = d
	}
	c := temporalClient(b)
	queue := inProcessWorker(b, c, b.TempDir())
	var gapDeps, gapWorkers, overhead, walls []float64
	var runs []benchreport.Point
	b.ResetTimer()
	for i := range b.N {
		inst := newInstance(b, instanceOpts{initDelay: initDelay})
		run := startDeploy(b, c, queue, inst)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		err := run.Get(ctx, nil)
		cancel()
		if err != nil {
			b.Fatalf("deploy failed: %v", err)
		}
		m := measure(b, c, run, inst.Pebble.Socket)
		gapDeps = append(gapDeps, m.gapDeps.Seconds()*1000)
		gapWorkers = append(gapWorkers, m.gapWorkers.Seconds()*1000)
		overhead = append(overhead, 100*(m.wall-m.critical).Seconds()/m.wall.Seconds())
		walls = append(walls, m.wall.Seconds())
		runs = append(runs, benchreport.Point{Run: i, GapsMS: map[string]float64{"gap-deps": gapDeps[i], "gap-workers": gapWorkers[i]},
			Overhead: overhead[i], OverheadUnit: "%"})
	}
	b.StopTimer()
	gapGoal := &benchreport.Goal{Text: "< 250 ms", Op: benchreport.Less, Bound: 250}
	reportFigures(b, []benchreport.Figure{
		{Name: "gap-deps-p50-ms", Value: pct(gapDeps, 50), Unit: "ms"},
		{Name: "gap-deps-p99-ms", Value: pct(gapDeps, 99), Unit: "ms", Goal: gapGoal},
		{Name: "gap-workers-p50-ms", Value: pct(gapWorkers, 50), Unit: "ms"},
		{Name: "gap-workers-p99-ms", Value: pct(gapWorkers, 99), Unit: "ms", Goal: gapGoal},
		{Name: "overhead-p50-%", Value: pct(overhead, 50), Unit: "%", Goal: &benchreport.Goal{Text: "< 5 % of wall", Op: benchreport.Less, Bound: 5}},
		{Name: "wall-p50-s", Value: pct(walls, 50), Unit: "s"},
	}, runs...)
	fmt.Printf("deploys: %d, stand-in first boot %s\n  dependency ready -> next step: p50 %.1f ms, p99 %.1f ms\n"+
		"  platform healthy -> workers started: p50 %.1f ms, p99 %.1f ms\n  orchestration overhead: p50 %.2f %% of wall %.1f s\n",
		b.N, initDelay, pct(gapDeps, 50), pct(gapDeps, 99), pct(gapWorkers, 50), pct(gapWorkers, 99), pct(overhead, 50), pct(walls, 50))
}

type deployTimes struct {
	gapDeps, gapWorkers, wall, critical time.Duration
}

// measure reads the deploy's history and the platform's log timestamps.
func measure(tb testing.TB, c tclient.Client, run tclient.WorkflowRun, socket string) deployTimes {
	tb.Helper()
	events := historyEvents(tb, c, run.GetID(), run.GetRunID())
	typeOf := map[int64]string{} // scheduled event id -> activity type
	var lastProbeDone, healthDone, bucketStarted, workersStarted time.Time
	startsSeen := 0
	for _, e := range events {
		t := e.GetEventTime().AsTime()
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			typeOf[e.GetEventId()] = e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			switch typeOf[e.GetActivityTaskStartedEventAttributes().GetScheduledEventId()] {
			case "EnsureBucket":
				bucketStarted = t
			case "StartPebbleServices":
				if startsSeen++; startsSeen == 2 {
					workersStarted = t
				}
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			name := typeOf[e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()]
			if strings.HasPrefix(name, "Probe") && t.After(lastProbeDone) {
				lastProbeDone = t
			}
			if name == "WaitOpenCTIHealthy" {
				healthDone = t
			}
		}
	}
	if bucketStarted.IsZero() || workersStarted.IsZero() || healthDone.IsZero() {
		tb.Fatalf("history lacks the steps to measure (%d events)", len(events))
	}
	wall := events[len(events)-1].GetEventTime().AsTime().Sub(events[0].GetEventTime().AsTime())
	return deployTimes{
		gapDeps: bucketStarted.Sub(lastProbeDone), gapWorkers: workersStarted.Sub(healthDone),
		wall: wall, critical: platformCriticalPath(tb, socket),
	}
}

// platformCriticalPath is the time the platform itself took to become ready, from its
// own log lines as Pebble recorded them.
func platformCriticalPath(tb testing.TB, socket string) time.Duration {
	tb.Helper()
	pc, err := client.New(&client.Config{Socket: socket})
	if err != nil {
		tb.Fatal(err)
	}
	var start, ready time.Time
	err = pc.Logs(&client.LogsOptions{Services: []string{"platform"}, N: -1, WriteLog: func(e client.LogEntry) error {
		switch {
		case strings.Contains(e.Message, "Starting platform") && start.IsZero():
			start = e.Time
		case strings.Contains(e.Message, "API ready"):
			ready = e.Time
		}
		return nil
	}})
	if err != nil || start.IsZero() || ready.IsZero() {
		tb.Fatalf("cannot find the platform's start and ready lines: %v", err)
	}
	return ready.Sub(start)
}

// reportFigures gives go test each figure as a metric of its name, prints it with its
// goal and records the figures and per-run points for `make bench`'s report (package
// benchreport; nothing is recorded outside the stack's environment).
func reportFigures(b *testing.B, figs []benchreport.Figure, runs ...benchreport.Point) {
	b.Helper()
	fmt.Printf("%s: figures and goals\n", b.Name())
	for _, f := range figs {
		b.ReportMetric(f.Value, f.Name)
		fmt.Printf("  %s\n", f)
	}
	if err := benchreport.FromEnv().Record(benchreport.Record{Benchmark: b.Name(), Figures: figs, Points: runs}); err != nil {
		b.Errorf("the report will lack %s: %v", b.Name(), err)
	}
}

// pct returns the p-th percentile (nearest rank) of xs.
func pct(xs []float64, p int) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}
