package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/socflow/socflow/internal/benchreport"
	"github.com/socflow/socflow/workflows"
)

// checksPerDay is how many health checks the default schedule (every minute) starts in
// a day.
const checksPerDay = float64(24*time.Hour) / float64(workflows.DefaultHealthEvery)

// BenchmarkHealthHistory measures the history a healthy instance's scheduled health
// checks write per day (issue 15): an instance deployed through OpenCTIInstance with its
// schedule every 3 s; SOCFLOW_BENCH_CHECKS (default 20) scheduled checks are let run,
// and the bytes of their HealthCheck histories and the instance workflow's growth over
// them (Temporal's own HistorySizeBytes) are scaled to the default one check a minute.
// A quiet, healthy instance is checked without asking it (two local activities in the
// HealthCheck run), so its own history should not grow at all. b.N is ignored.
func BenchmarkHealthHistory(b *testing.B) {
	n := benchCount(b, "SOCFLOW_BENCH_CHECKS", 20)
	c := temporalClient(b)
	queue := inProcessWorker(b, c, b.TempDir())
	inst := newInstance(b, instanceOpts{initDelay: time.Second, workers: 1})
	run := startInstanceInput(b, c, queue, workflows.InstanceInput{Instance: inst, HealthEvery: 3 * time.Second})
	waitInstance(b, c, run.GetID(), 3*time.Minute, "active", activeInstance)
	b.Cleanup(func() {
		_ = c.ScheduleClient().GetHandle(context.Background(), workflows.HealthScheduleID(inst.Name)).Delete(context.Background())
	})
	size := func(id, runID string) (bytes, events int64) {
		d, err := c.DescribeWorkflowExecution(context.Background(), id, runID)
		if err != nil {
			b.Fatal(err)
		}
		i := d.GetWorkflowExecutionInfo()
		return i.GetHistorySizeBytes(), i.GetHistoryLength()
	}
	completed := healthRuns(inst.Name) + " AND ExecutionStatus = 'Completed'"
	count := func() int { return countWorkflows(b, c, completed) }
	// The first check may have started before the instance was active: start counting
	// after one completed.
	waitFor(b, time.Minute, "a first scheduled health check", func() bool { return count() > 0 })
	first := count()
	instBytes0, instEvents0 := size(run.GetID(), "")
	b.ResetTimer()
	waitFor(b, time.Duration(n)*10*time.Second, fmt.Sprintf("%d more scheduled health checks", n), func() bool { return count() >= first+n })
	b.StopTimer()
	instBytes1, instEvents1 := size(run.GetID(), "")
	k := count() - first
	var checkBytes, checkEvents int64
	seen := 0
	var token []byte
	for {
		page, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: completed, NextPageToken: token})
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range page.GetExecutions() {
			bytes, events := size(e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())
			checkBytes += bytes
			checkEvents += events
			seen++
		}
		if token = page.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	perCheck := float64(checkBytes) / float64(seen)
	instPerCheck := float64(instBytes1-instBytes0) / float64(k)
	perDay := (perCheck + instPerCheck) * checksPerDay
	reportFigures(b, []benchreport.Figure{
		{Name: "check-history-bytes", Value: perCheck, Unit: "B"},
		{Name: "instance-growth-bytes/check", Value: instPerCheck, Unit: "B"},
		{Name: "history-MiB/instance/day", Value: perDay / (1 << 20), Unit: "MiB",
			Goal: &benchreport.Goal{Text: "< 10 MiB (a day of checks every minute)", Op: benchreport.Less, Bound: 10}},
	})
	fmt.Printf("health check history: %d checks every 3 s; each HealthCheck run %.0f bytes in %.1f events; the instance's own history grew %d bytes in %d events over them\n"+
		"  per instance per day at one check a minute (%.0f checks): %.2f MiB (HealthCheck runs %.2f MiB, instance %.2f MiB)\n",
		seen, perCheck, float64(checkEvents)/float64(seen), instBytes1-instBytes0, instEvents1-instEvents0,
		checksPerDay, perDay/(1<<20), perCheck*checksPerDay/(1<<20), instPerCheck*checksPerDay/(1<<20))
}
