package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
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
	if in.Wazuh != nil {
		return wazuhHealthCheck(ctx, in)
	}
	rep := HealthReport{Instance: in.Instance, Health: HealthUnknown, Note: "asking " + InstanceWorkflowID(in.Instance)}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (HealthReport, error) { return rep, nil }); err != nil {
		return rep, fmt.Errorf("cannot register the status query: %w", err)
	}
	run := workflow.GetInfo(ctx).WorkflowExecution
	asked := "" // why the instance is asked, when the check could not be made without it
	if workflow.GetVersion(ctx, HealthCheckReadsChange, workflow.DefaultVersion, HealthCheckReads) != workflow.DefaultVersion {
		quiet, why := readQuietInstance(ctx, in.Instance, run.ID+"/"+run.RunID)
		if why == "" {
			return quiet, healthReported(ctx, quiet, SearchAttrInstance.ValueSet(in.Instance), SearchAttrApp.ValueSet(AppOpenCTI))
		}
		asked = "asked the instance: " + why
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchAttrInstance.ValueSet(in.Instance), SearchAttrApp.ValueSet(AppOpenCTI)); err != nil {
		return rep, err
	}
	req := CheckHealthRequest{RequestID: run.ID + "/" + run.RunID, ReplyTo: run.ID}
	if err := workflow.SignalExternalWorkflow(ctx, InstanceWorkflowID(in.Instance), "", CheckHealthSignal, req).Get(ctx, nil); err != nil {
		rep.Note = fmt.Sprintf("cannot ask %s: %s (is the instance running?)", InstanceWorkflowID(in.Instance), ErrorReason(err))
		return rep, healthReported(ctx, rep)
	}
	var answer HealthReport
	if answered, _ := workflow.GetSignalChannel(ctx, HealthDoneSignal).ReceiveWithTimeout(ctx, HealthAnswerLimit, &answer); answered {
		rep = answer
		if asked != "" {
			rep.Note = strings.TrimSuffix(asked+"; "+rep.Note, "; ")
		}
	} else {
		rep.Note = fmt.Sprintf("%s did not answer within %s: it is busy with a change (see its status)", InstanceWorkflowID(in.Instance), HealthAnswerLimit)
	}
	return rep, healthReported(ctx, rep)
}

// quietReadOptions bound the query of the instance: one attempt (asking the instance
// is the fallback).
var quietReadOptions = workflow.LocalActivityOptions{StartToCloseTimeout: activities.DefaultCallTimeout + 5*time.Second,
	RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}}

// readQuietInstance checks a quiet instance without it (HealthCheckReadsChange): it
// reads what the instance would read (HealthReadsQuery) and judges it the same way, in
// two local activities. It returns the report when the instance is quiet and every
// component is ok; anything else — a component not ok, an instance waiting, blocked or
// busy, a failed query — is for the instance to check, heal and record, and it returns
// why instead.
func readQuietInstance(ctx workflow.Context, instance, requestID string) (HealthReport, string) {
	// QueryWorkflow returns the answer's JSON as it is: decoded here, into its type.
	var hr HealthReads
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, quietReadOptions), a.QueryWorkflow,
		activities.QueryWorkflowInput{WorkflowID: InstanceWorkflowID(instance), Query: HealthReadsQuery}).Get(ctx, &hr)
	switch {
	case err != nil:
		return HealthReport{}, "its health-reads query failed: " + ErrorReason(err)
	case !hr.Quiet:
		return HealthReport{}, "it is not quiet (a change, a wait, a block or a last check not ok)"
	}
	rep := HealthReport{Instance: instance, RequestID: requestID, CheckedAt: workflow.Now(ctx)}
	var reads activities.ReadOpenCTIHealthResult
	if err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, healthReadLocalOptions), a.ReadOpenCTIHealth, hr.Input).Get(ctx, &reads); err != nil {
		return rep, "the reads failed: " + ErrorReason(err)
	}
	rep.Components, rep.Drift = judgeReads(reads, hr.Input.Services.Services, hr.Connectors)
	if rep.Health = worstHealth(rep.Components); rep.Health != HealthOK {
		var not []string
		for _, c := range rep.Components {
			if c.Health != HealthOK {
				not = append(not, c.Name+" "+c.Health)
			}
		}
		return rep, strings.Join(not, ", ")
	}
	rep.Note = "checked without the instance: it is quiet and every component is ok"
	return rep, ""
}

// healthReported records the report on the run: the SocflowHealth attribute (with the
// other attributes given) and the Web UI's details (a table of the components).
func healthReported(ctx workflow.Context, rep HealthReport, attrs ...temporal.SearchAttributeUpdate) error {
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
	return workflow.UpsertTypedSearchAttributes(ctx, append(attrs, SearchAttrHealth.ValueSet(rep.Health))...)
}
