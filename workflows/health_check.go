package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// HealthAnswerLimit is how long a HealthCheck waits for its instance's report: an
// instance answers between changes, so one busy with a long change (an upgrade) is
// reported unknown, not waited on.
const HealthAnswerLimit = 2 * time.Minute

// HealthCheck is one health check of one instance, as the instance's schedule starts it
// every minute (or tctl and temporal, with {"instance": NAME}): it asks the instance
// (CheckHealthSignal), which checks, heals and answers (HealthDoneSignal), and shows the
// report — as its result, its status query, the SocflowHealth search attribute and its
// details in the Web UI. The instance does the work, so heals are serialised with its
// changes and counted against its budget.
func HealthCheck(ctx workflow.Context, in HealthCheckInput) (HealthReport, error) {
	if in.Instance == "" {
		return HealthReport{}, temporal.NewNonRetryableApplicationError(
			"instance: is required (fix: start with {\"instance\": \"<name>\"})", "InvalidInput", nil)
	}
	rep := HealthReport{Instance: in.Instance, Health: HealthUnknown, Note: "asking " + InstanceWorkflowID(in.Instance)}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (HealthReport, error) { return rep, nil }); err != nil {
		return rep, fmt.Errorf("cannot register the status query: %w", err)
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchAttrInstance.ValueSet(in.Instance), SearchAttrApp.ValueSet(AppOpenCTI)); err != nil {
		return rep, err
	}
	run := workflow.GetInfo(ctx).WorkflowExecution
	req := CheckHealthRequest{RequestID: run.ID + "/" + run.RunID, ReplyTo: run.ID}
	if err := workflow.SignalExternalWorkflow(ctx, InstanceWorkflowID(in.Instance), "", CheckHealthSignal, req).Get(ctx, nil); err != nil {
		rep.Note = fmt.Sprintf("cannot ask %s: %s (is the instance running?)", InstanceWorkflowID(in.Instance), ErrorReason(err))
		return rep, healthReported(ctx, rep)
	}
	var answer HealthReport
	if answered, _ := workflow.GetSignalChannel(ctx, HealthDoneSignal).ReceiveWithTimeout(ctx, HealthAnswerLimit, &answer); answered {
		rep = answer
	} else {
		rep.Note = fmt.Sprintf("%s did not answer within %s: it is busy with a change (see its status)", InstanceWorkflowID(in.Instance), HealthAnswerLimit)
	}
	return rep, healthReported(ctx, rep)
}

// healthReported records the report on the run: the SocflowHealth attribute and the
// Web UI's details (a table of the components).
func healthReported(ctx workflow.Context, rep HealthReport) error {
	lines := []string{fmt.Sprintf("**%s** — health **%s**", rep.Instance, rep.Health)}
	if rep.Note != "" {
		lines = append(lines, "", rep.Note)
	}
	if len(rep.Components) > 0 {
		lines = append(lines, "", "| component | health | latency | reason |", "|---|---|---|---|")
		for _, c := range rep.Components {
			lines = append(lines, fmt.Sprintf("| %s | %s | %s | %s |", c.Name, c.Health, c.Latency.Round(time.Millisecond), strings.ReplaceAll(c.Reason, "|", "/")))
		}
	}
	for _, h := range rep.Heals {
		line := fmt.Sprintf("- heal %s: %s — %s", h.Component, h.Action, h.Reason)
		if h.Error != "" {
			line += " (failed: " + h.Error + ")"
		}
		lines = append(lines, line)
	}
	workflow.SetCurrentDetails(ctx, strings.Join(lines, "\n"))
	return workflow.UpsertTypedSearchAttributes(ctx, SearchAttrHealth.ValueSet(rep.Health))
}
