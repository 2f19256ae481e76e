package e2e

import (
	"context"
	"fmt"
	"maps"
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
//   - the stage gap of every transition: an activity's completion -> the start of the
//     next one the workflow scheduled after it (gap-A->B), with the two the README
//     names: gap-deps (last dependency probe -> next step) and gap-workers (platform
//     healthy -> workers' start);
//   - overhead: deploy wall time minus the platform's own critical path (its log lines
//     "Starting platform" -> "API ready"), as a share of the wall time, in seconds, and
//     as a ratio to its floor: Pebble's one-second start confirmation for each start
//     outside the platform's boot plus one Temporal round trip per sequential step
//     outside it, the round trip measured in the same run by a trivial workflow of
//     sequential no-op activities on the same server.
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
	var gapDeps, gapWorkers, overhead, overheadS, floors, walls []float64
	transitions := map[string][]float64{}
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
		gapDeps = append(gapDeps, ms(m.gapDeps))
		gapWorkers = append(gapWorkers, ms(m.gapWorkers))
		for name, gaps := range m.transitions {
			transitions[name] = append(transitions[name], gaps...)
		}
		o := m.wall - m.critical
		overhead = append(overhead, 100*o.Seconds()/m.wall.Seconds())
		overheadS = append(overheadS, o.Seconds())
		// The floor: one second per Pebble start, one round trip (measured now) per step.
		floors = append(floors, float64(m.starts)+float64(m.steps)*roundTrip(b, c)/1000)
		walls = append(walls, m.wall.Seconds())
		runs = append(runs, benchreport.Point{Run: i, GapsMS: map[string]float64{"gap-deps": gapDeps[i], "gap-workers": gapWorkers[i]},
			Overhead: overhead[i], OverheadUnit: "%"})
	}
	b.StopTimer()
	gapGoal := &benchreport.Goal{Text: "< 250 ms", Op: benchreport.Less, Bound: 250}
	ratios := make([]float64, len(floors))
	for i := range floors {
		ratios[i] = overheadS[i] / floors[i]
	}
	figs := []benchreport.Figure{
		{Name: "gap-deps-p50-ms", Value: pct(gapDeps, 50), Unit: "ms"},
		{Name: "gap-deps-p99-ms", Value: pct(gapDeps, 99), Unit: "ms", Goal: gapGoal},
		{Name: "gap-workers-p50-ms", Value: pct(gapWorkers, 50), Unit: "ms"},
		{Name: "gap-workers-p99-ms", Value: pct(gapWorkers, 99), Unit: "ms", Goal: gapGoal},
		{Name: "overhead-p50-%", Value: pct(overhead, 50), Unit: "%", Goal: &benchreport.Goal{Text: "< 5 % of wall", Op: benchreport.Less, Bound: 5}},
		{Name: "overhead-p50-s", Value: pct(overheadS, 50), Unit: "s"},
		{Name: "overhead-floor-p50-s", Value: pct(floors, 50), Unit: "s"},
		{Name: "overhead-to-floor-p50", Value: pct(ratios, 50), Unit: "×"},
		{Name: "wall-p50-s", Value: pct(walls, 50), Unit: "s"},
	}
	for _, name := range slices.Sorted(maps.Keys(transitions)) {
		figs = append(figs,
			benchreport.Figure{Name: "gap-" + name + "-p50-ms", Value: pct(transitions[name], 50), Unit: "ms"},
			benchreport.Figure{Name: "gap-" + name + "-p99-ms", Value: pct(transitions[name], 99), Unit: "ms", Goal: gapGoal})
	}
	reportFigures(b, figs, runs...)
	fmt.Printf("deploys: %d, stand-in first boot %s\n  dependency ready -> next step: p50 %.1f ms, p99 %.1f ms\n"+
		"  platform healthy -> workers started: p50 %.1f ms, p99 %.1f ms\n  orchestration overhead: p50 %.2f %% of wall %.1f s, %.2f s, %.2f× its floor of %.2f s\n",
		b.N, initDelay, pct(gapDeps, 50), pct(gapDeps, 99), pct(gapWorkers, 50), pct(gapWorkers, 99), pct(overhead, 50), pct(walls, 50),
		pct(overheadS, 50), pct(ratios, 50), pct(floors, 50))
}

type deployTimes struct {
	gapDeps, gapWorkers, wall, critical time.Duration
	// transitions are the stage gaps in ms by "A->B": A's completion to B's start,
	// B being scheduled after A completed and before any other activity did.
	transitions map[string][]float64
	// starts and steps are what the overhead's floor counts outside the platform's
	// boot: Pebble starts (a one-second confirmation each) and sequential steps (one
	// Temporal round trip each: workflow tasks that scheduled activities).
	starts, steps int
}

// activitySpan is one activity of a history: its type and when it was scheduled,
// started (its last attempt) and completed.
type activitySpan struct {
	name                          string
	wfTask                        int64 // the workflow task completion that scheduled it
	scheduled, started, completed time.Time
}

// measure reads the deploy's history and the platform's log timestamps.
func measure(tb testing.TB, c tclient.Client, run tclient.WorkflowRun, socket string) deployTimes {
	tb.Helper()
	events := historyEvents(tb, c, run.GetID(), run.GetRunID())
	spans := map[int64]*activitySpan{} // by scheduled event id
	var order []*activitySpan
	for _, e := range events {
		t := e.GetEventTime().AsTime()
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			a := e.GetActivityTaskScheduledEventAttributes()
			sp := &activitySpan{name: a.GetActivityType().GetName(), wfTask: a.GetWorkflowTaskCompletedEventId(), scheduled: t}
			spans[e.GetEventId()] = sp
			order = append(order, sp)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			spans[e.GetActivityTaskStartedEventAttributes().GetScheduledEventId()].started = t
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			spans[e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()].completed = t
		}
	}
	var lastProbeDone, healthDone, bucketStarted, workersStarted time.Time
	startsSeen := 0
	for _, sp := range order {
		switch {
		case sp.name == "EnsureBucket":
			bucketStarted = sp.started
		case sp.name == "StartPebbleServices":
			if startsSeen++; startsSeen == 2 {
				workersStarted = sp.started
			}
		case sp.name == "WaitOpenCTIHealthy":
			healthDone = sp.completed
		case strings.HasPrefix(sp.name, "Probe") && sp.completed.After(lastProbeDone):
			lastProbeDone = sp.completed
		}
	}
	if bucketStarted.IsZero() || workersStarted.IsZero() || healthDone.IsZero() {
		tb.Fatalf("history lacks the steps to measure (%d events)", len(events))
	}
	wall := events[len(events)-1].GetEventTime().AsTime().Sub(events[0].GetEventTime().AsTime())
	bootStart, bootReady := platformBoot(tb, socket)
	m := deployTimes{
		gapDeps: bucketStarted.Sub(lastProbeDone), gapWorkers: workersStarted.Sub(healthDone),
		wall: wall, critical: bootReady.Sub(bootStart), transitions: map[string][]float64{},
	}
	outsideBoot := func(t time.Time) bool { return t.Before(bootStart) || t.After(bootReady) }
	stepTasks := map[int64]bool{}
	for _, sp := range order {
		// The step before: the activity whose completion came last before this one
		// was scheduled.
		var prev *activitySpan
		for _, p := range order {
			if !p.completed.IsZero() && !p.completed.After(sp.scheduled) && (prev == nil || p.completed.After(prev.completed)) {
				prev = p
			}
		}
		if prev != nil && !sp.started.IsZero() {
			name := prev.name + "->" + sp.name
			m.transitions[name] = append(m.transitions[name], ms(sp.started.Sub(prev.completed)))
		}
		if outsideBoot(sp.scheduled) {
			stepTasks[sp.wfTask] = true
			// The platform's own start is confirmed while it boots: only starts that
			// end outside the boot cost their second.
			if sp.name == "StartPebbleServices" && outsideBoot(sp.completed) {
				m.starts++
			}
		}
	}
	m.steps = len(stepTasks)
	return m
}

// platformBoot is when the platform itself started and became ready, from its own log
// lines as Pebble recorded them.
func platformBoot(tb testing.TB, socket string) (start, ready time.Time) {
	tb.Helper()
	pc, err := client.New(&client.Config{Socket: socket})
	if err != nil {
		tb.Fatal(err)
	}
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
	return start, ready
}

// roundTrip is one Temporal round trip per sequential step on c's server, in ms: a
// trivial workflow of s2sSteps sequential no-op activities (BenchmarkScheduleToStart's)
// on a worker of its own, its wall time divided by its steps.
func roundTrip(tb testing.TB, c tclient.Client) float64 {
	tb.Helper()
	queue := fmt.Sprintf("roundtrip-%d", time.Now().UnixNano())
	defer s2sWorker(tb, c, queue)()
	run, err := c.ExecuteWorkflow(context.Background(), tclient.StartWorkflowOptions{ID: queue, TaskQueue: queue}, "S2SSteps", false)
	if err != nil {
		tb.Fatal(err)
	}
	if err := run.Get(context.Background(), nil); err != nil {
		tb.Fatal(err)
	}
	events := historyEvents(tb, c, run.GetID(), run.GetRunID())
	return ms(events[len(events)-1].GetEventTime().AsTime().Sub(events[0].GetEventTime().AsTime())) / s2sSteps
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
