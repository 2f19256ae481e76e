package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/workerapp"
	"github.com/socflow/socflow/workflows"
)

const healthUse = `usage: starter health [--json]                        every instance's last health, worst first
       starter health check NAME [--json]             run one health check now and print its report
       starter health schedule NAME [--every 1m]      create (or change) the instance's health schedule
       starter health pause|resume|trigger|delete NAME`

// cmdHealth lists the fleet's health, runs one check, or manages an instance's health
// schedule (HealthScheduleID): every subcommand is idempotent.
func cmdHealth(ctx context.Context, args []string, out io.Writer) error {
	sub := "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	every := fs.Duration("every", workflows.DefaultHealthEvery, "the schedule's interval")
	var name string
	if sub != "list" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return errors.New(healthUse)
		}
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return errors.New(healthUse)
	}
	c, err := workerapp.Dial(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	h := c.ScheduleClient().GetHandle(ctx, workflows.HealthScheduleID(name))
	switch sub {
	case "list":
		return healthList(ctx, c, out, *asJSON)
	case "check":
		return healthCheck(ctx, c, out, name, *asJSON)
	case "schedule":
		created, err := activities.EnsureSchedule(ctx, c, workflows.HealthSchedule(name, workerapp.TaskQueueFromEnv(), *every))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "schedule %s: HealthCheck of %s every %s (%s)\n", workflows.HealthScheduleID(name), name, *every,
			map[bool]string{true: "created", false: "updated"}[created])
		return nil
	case "pause":
		err = h.Pause(ctx, client.SchedulePauseOptions{Note: "paused with starter health pause"})
	case "resume":
		err = h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: "resumed with starter health resume"})
	case "trigger":
		err = h.Trigger(ctx, client.ScheduleTriggerOptions{})
	case "delete":
		err = activities.DeleteSchedule(ctx, c, workflows.HealthScheduleID(name))
	default:
		return errors.New(healthUse)
	}
	if err != nil {
		return fmt.Errorf("cannot %s schedule %s: %w", sub, workflows.HealthScheduleID(name), err)
	}
	fmt.Fprintf(out, "schedule %s: %s\n", workflows.HealthScheduleID(name),
		map[string]string{"pause": "paused", "resume": "resumed", "trigger": "triggered", "delete": "deleted"}[sub])
	return nil
}

// fleetRow is one instance in `starter health`.
type fleetRow struct {
	Instance string `json:"instance"`
	Health   string `json:"health"`
	Status   string `json:"status"`
}

// healthList lists every running instance with its last health and status, from the
// visibility store's search attributes alone (one list call per page, no query per
// instance), worst first.
func healthList(ctx context.Context, c client.Client, out io.Writer, asJSON bool) error {
	var rows []fleetRow
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{NextPageToken: token,
			Query: fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflows.OpenCTIInstanceWorkflow)})
		if err != nil {
			return fmt.Errorf("cannot list the instances: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			fields := e.GetSearchAttributes().GetIndexedFields()
			attr := func(name string) string {
				var v string
				if p, ok := fields[name]; ok {
					_ = converter.GetDefaultDataConverter().FromPayload(p, &v)
				}
				return v
			}
			row := fleetRow{Instance: attr(workflows.SearchAttrInstance.GetName()), Health: attr(workflows.SearchAttrHealth.GetName()),
				Status: attr(workflows.SearchAttrStatus.GetName())}
			if row.Health == "" {
				row.Health = "not checked"
			}
			rows = append(rows, row)
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	rank := map[string]int{workflows.HealthDown: 0, workflows.HealthDegraded: 1, workflows.HealthUnknown: 2, "not checked": 3, workflows.HealthOK: 4}
	slices.SortFunc(rows, func(a, b fleetRow) int {
		if d := rank[a.Health] - rank[b.Health]; d != 0 {
			return d
		}
		return strings.Compare(a.Instance, b.Instance)
	})
	if asJSON {
		return json.NewEncoder(out).Encode(rows)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tHEALTH\tSTATUS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Instance, r.Health, r.Status)
	}
	return tw.Flush()
}

// healthCheck runs HealthCheck for one instance now and prints its report.
func healthCheck(ctx context.Context, c client.Client, out io.Writer, name string, asJSON bool) error {
	id := fmt.Sprintf("%s-starter-%d", workflows.HealthScheduleID(name), time.Now().UnixNano())
	return runHealthCheck(ctx, c, out, id, workflows.HealthCheckInput{Instance: name}, asJSON)
}

// runHealthCheck runs one HealthCheck under id and prints its report (JSON with
// asJSON); it fails unless the instance is ok, so scripts can act on the exit code.
func runHealthCheck(ctx context.Context, c client.Client, out io.Writer, id string, in workflows.HealthCheckInput, asJSON bool) error {
	name := in.Instance
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workerapp.TaskQueueFromEnv(),
		WorkflowExecutionTimeout: 10 * time.Minute}, workflows.HealthCheckWorkflow, in)
	if err != nil {
		return fmt.Errorf("cannot start the health check: %w", err)
	}
	var rep workflows.HealthReport
	if err := run.Get(ctx, &rep); err != nil {
		return fmt.Errorf("health check %s: %w", id, err)
	}
	if asJSON {
		return json.NewEncoder(out).Encode(rep)
	}
	printHealth(out, rep)
	if rep.Health != workflows.HealthOK {
		return fmt.Errorf("instance %s is %s", name, rep.Health)
	}
	return nil
}

// printHealth prints a report: the verdict, each component, and what was healed.
func printHealth(out io.Writer, rep workflows.HealthReport) {
	fmt.Fprintf(out, "%s: %s (checked %s)\n", rep.Instance, rep.Health, rep.CheckedAt.UTC().Format(time.TimeOnly))
	if rep.Note != "" {
		fmt.Fprintf(out, "  note: %s\n", rep.Note)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, c := range rep.Components {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Name, c.Health, c.Latency.Round(time.Millisecond), c.Reason)
	}
	_ = tw.Flush()
	for _, h := range rep.Heals {
		line := fmt.Sprintf("  heal %s: %s — %s", h.Component, h.Action, h.Reason)
		if h.Error != "" {
			line += " (failed: " + h.Error + ")"
		}
		fmt.Fprintln(out, line)
	}
}
