package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	tclient "go.temporal.io/sdk/client"

	"github.com/socflow/socflow/internal/benchreport"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/workflows"
)

// BenchmarkReconcile deploys one instance through OpenCTIInstance (in-process worker,
// production probe interval) and measures the reconcile latency of SetConfig changes
// sent one after the other, each from the moment the change is accepted — the Update
// sent with WaitForStage Accepted returns (validated, queued) — to
//   - applied: the Update's result returns (handle.Get);
//   - active: the status query reads active with nothing pending and the new config.
//
// One b.N iteration is one series on the same instance: SOCFLOW_BENCH_CHANGES (default
// 20) workers changes alternating 3 -> 4 -> 3 … (each starts or stops worker-3 and
// restarts nothing), then SOCFLOW_BENCH_RESTARTS (default 5) logLevel changes
// info <-> debug (each restarts the platform, waits until /health answers, then
// restarts the workers); the two kinds are reported separately, p50/p99/max over
// every change of every iteration. The stand-in platform stops in 100 ms and starts
// at once (its first boot, 1 s, is the deploy's and is not measured), so a logLevel
// figure is socflow's part of a restart, not a real platform's start time. Goals (p99
// to applied): a workers change < 1.5 s, a logLevel change < 6 s with the stand-in.
func BenchmarkReconcile(b *testing.B) {
	changes := benchCount(b, "SOCFLOW_BENCH_CHANGES", 20)
	restarts := benchCount(b, "SOCFLOW_BENCH_RESTARTS", 5)
	c, _, run := newInstanceRun(b, instanceOpts{initDelay: time.Second}, 0)
	id := run.GetID()
	benchWaitActive(b, c, id, 3*time.Minute, func(s workflows.InstanceStatus) bool { return s.Workers == 3 })

	workers, level := 3, opencti.LogInfo
	var up, down, l reconcileTimes // workers 3 -> 4, 4 -> 3, logLevel
	b.ResetTimer()
	for iter := range b.N {
		for i := range changes {
			n := 7 - workers // 3 -> 4 -> 3 …
			req := workflows.SetConfigRequest{RequestID: fmt.Sprintf("bench-%d-workers-%d", iter, i), Workers: &n}
			times, got := &up, func(r workflows.SetConfigResult) []string { return r.Started }
			if n == 3 {
				times, got = &down, func(r workflows.SetConfigResult) []string { return r.Stopped }
			}
			res := times.change(b, c, id, req, func(s workflows.InstanceStatus) bool { return s.Workers == n })
			if strings.Join(got(res), ",") != "worker-3" || len(res.Restarted) != 0 || len(res.Started)+len(res.Stopped) != 1 {
				b.Fatalf("workers %d -> %d: %+v, want only worker-3 started or stopped", workers, n, res)
			}
			workers = n
		}
		for i := range restarts {
			next := opencti.LogDebug
			if level == opencti.LogDebug {
				next = opencti.LogInfo
			}
			req := workflows.SetConfigRequest{RequestID: fmt.Sprintf("bench-%d-loglevel-%d", iter, i), LogLevel: next}
			res := l.change(b, c, id, req, func(s workflows.InstanceStatus) bool { return s.LogLevel == next })
			if len(res.Restarted) == 0 || res.Restarted[0] != opencti.PlatformService || len(res.Started)+len(res.Stopped) != 0 {
				b.Fatalf("logLevel %s -> %s: %+v, want the platform restarted first, nothing started or stopped", level, next, res)
			}
			level = next
		}
	}
	b.StopTimer()

	// A start waits for Pebble's one-second confirmation that the service stays up, a
	// stop does not: the workers figures are bimodal, so the table also splits them.
	w := reconcileTimes{
		accept:  append(slices.Clone(up.accept), down.accept...),
		applied: append(slices.Clone(up.applied), down.applied...),
		active:  append(slices.Clone(up.active), down.active...),
	}
	fmt.Printf("reconcile latency, %d series on one instance (ms; from the Update accepted)\n", b.N)
	fmt.Printf("  %-38s %5s %9s %9s %9s\n", "change -> reached", "n", "p50", "p99", "max")
	// Each series is a row of the table and, when it has a metric name, three figures
	// (p50, p99 with the series' goal if it has one, max); the times to acceptance are
	// only shown.
	var figs []benchreport.Figure
	for _, s := range []struct {
		metric, row string
		xs          []float64
		goal        *benchreport.Goal // of p99
	}{
		{"workers-applied", "workers 3<->4 -> applied", w.applied, &benchreport.Goal{Text: "< 1.5 s", Op: benchreport.Less, Bound: 1500}},
		{"workers-active", "workers 3<->4 -> active", w.active, nil},
		{"workers-start-applied", "  3 -> 4 (starts worker-3) -> applied", up.applied, nil},
		{"workers-stop-applied", "  4 -> 3 (stops worker-3) -> applied", down.applied, nil},
		{"loglevel-applied", "logLevel info<->debug -> applied", l.applied, &benchreport.Goal{Text: "< 6 s (stand-in)", Op: benchreport.Less, Bound: 6000}},
		{"loglevel-active", "logLevel info<->debug -> active", l.active, nil},
		{"", "(workers: sent -> accepted)", w.accept, nil},
		{"", "(logLevel: sent -> accepted)", l.accept, nil},
	} {
		if len(s.xs) == 0 {
			continue
		}
		p50, p99, most := pct(s.xs, 50), pct(s.xs, 99), pct(s.xs, 100)
		if s.metric != "" {
			figs = append(figs,
				benchreport.Figure{Name: s.metric + "-p50-ms", Value: p50, Unit: "ms"},
				benchreport.Figure{Name: s.metric + "-p99-ms", Value: p99, Unit: "ms", Goal: s.goal},
				benchreport.Figure{Name: s.metric + "-max-ms", Value: most, Unit: "ms"})
		}
		fmt.Printf("  %-38s %5d %9.1f %9.1f %9.1f\n", s.row, len(s.xs), p50, p99, most)
	}
	reportFigures(b, figs)
}

// reconcileTimes collects one kind of change's latencies, in milliseconds.
type reconcileTimes struct {
	accept, applied, active []float64
}

// change sends req as an Update, waits until it is accepted, then for its result, then
// for the status to read active with nothing pending and done(status) (the new config),
// and records the times.
func (r *reconcileTimes) change(b *testing.B, c tclient.Client, id string, req workflows.SetConfigRequest, done func(workflows.InstanceStatus) bool) workflows.SetConfigResult {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sent := time.Now()
	h, err := sendChange(ctx, c, id, workflows.SetConfigUpdate, "", req, tclient.WorkflowUpdateStageAccepted)
	if err != nil {
		b.Fatalf("SetConfig %s not accepted: %v", req.RequestID, err)
	}
	accepted := time.Now()
	var res workflows.SetConfigResult
	if err := h.Get(ctx, &res); err != nil {
		b.Fatalf("SetConfig %s not applied: %v", req.RequestID, err)
	}
	applied := time.Now()
	benchWaitActive(b, c, id, time.Minute, done)
	active := time.Now()
	ms := func(d time.Duration) float64 { return d.Seconds() * 1000 }
	r.accept = append(r.accept, ms(accepted.Sub(sent)))
	r.applied = append(r.applied, ms(applied.Sub(accepted)))
	r.active = append(r.active, ms(active.Sub(accepted)))
	return res
}

// benchWaitActive polls the status query every 5 ms, not waitInstance's 200 ms (that
// would be most of a workers change's latency), until the instance is active with
// nothing pending and cond holds.
func benchWaitActive(b *testing.B, c tclient.Client, id string, limit time.Duration, cond func(workflows.InstanceStatus) bool) {
	b.Helper()
	waitQuery(b, c, id, limit, 5*time.Millisecond, "active with the change", func(s workflows.InstanceStatus) bool {
		return activeInstance(s) && cond(s)
	})
}

// benchCount reads a count from the environment variable name (def if unset; 0 skips
// that kind of change).
func benchCount(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		b.Fatalf("%s: want a count such as %d (got %q)", name, def, v)
	}
	return n
}
