package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/socflow/socflow/internal/workerapp"
	"github.com/socflow/socflow/workflows"
)

// cmdWazuhInstance starts the instance's WazuhInstance workflow with the spec or, when
// it runs, applies the spec to it as an ApplySpec change; then it follows the
// instance's status until the deploy (or the change) is recorded, and prints it.
func cmdWazuhInstance(ctx context.Context, args []string, out io.Writer) error {
	var detach *bool
	var requestID *string
	inst, err := wazuhSpecCommand("wazuh instance", args, func(fs *flag.FlagSet) {
		detach = fs.Bool("detach", false, "start (or send the change) and return without following")
		requestID = fs.String("request-id", fmt.Sprintf("starter-%d", time.Now().UnixNano()), "the change's request ID when the instance runs (a repeat is applied once)")
	})
	if err != nil {
		return err
	}
	c, err := workerapp.Dial(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.WazuhInstanceWorkflowID(inst.Name)
	wait := "deploy" // the request ID of a new instance's first deploy
	if desc, err := c.DescribeWorkflowExecution(ctx, id, ""); err == nil &&
		desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		_, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: id, UpdateID: *requestID, UpdateName: workflows.ApplySpecUpdate,
			Args: []any{workflows.WazuhApplySpecRequest{RequestID: *requestID, Spec: inst}}, WaitForStage: client.WorkflowUpdateStageAccepted,
		})
		if err != nil {
			return fmt.Errorf("instance %s runs (workflow %s) and this spec cannot be applied to it: %s", inst.Name, id, workflows.ErrorReason(err))
		}
		fmt.Fprintf(out, "change of wazuh %s: ApplySpec %s accepted by workflow %s\n", inst.Name, *requestID, id)
		wait = *requestID
	} else {
		run, err := c.ExecuteWorkflow(ctx, wazuhStartOptions(id, inst), workflows.WazuhInstanceWorkflow, workflows.WazuhInstanceInput{Instance: inst})
		if err != nil {
			return fmt.Errorf("cannot start wazuh %s: %s", inst.Name, workflows.ErrorReason(err))
		}
		fmt.Fprintf(out, "instance wazuh %s: workflow %s run %s\n  Web UI: %s\n", inst.Name, id, run.GetRunID(), webUILink(id, run.GetRunID()))
	}
	if *detach {
		return nil
	}
	return followWazuhInstance(ctx, c, inst.Name, wait, out)
}

// followWazuhInstance prints the instance's status as it changes until the request is
// listed as applied, failed or rejected, then the instance's status.
func followWazuhInstance(ctx context.Context, c client.Client, name, requestID string, out io.Writer) error {
	p := &progress{out: out, start: time.Now()}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		if st, err := queryWazuhInstance(ctx, c, name); err == nil {
			p.line("status", st.Status.String())
			for _, o := range st.Recent {
				if o.RequestID != requestID {
					continue
				}
				fmt.Fprintf(out, "%s %s: %s\n", o.State, o.RequestID, o.Summary)
				printWazuhInstanceStatus(out, st, time.Now())
				if o.State != "applied" {
					return fmt.Errorf("wazuh %s: %s %s; the instance waits for the fix: see its status (starter wazuh status %s)", name, requestID, o.State, name)
				}
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("stopped following (the instance goes on in Temporal): %w", ctx.Err())
		}
	}
}

// cmdWazuhReconcile sends Reconcile to a running instance as an Update and prints its
// result: every node re-applied from the applied spec, only what differs restarted.
func cmdWazuhReconcile(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("wazuh reconcile", flag.ContinueOnError)
	requestID := fs.String("request-id", fmt.Sprintf("starter-%d", time.Now().UnixNano()), "the change's request ID (a repeat is applied once)")
	reason := fs.String("reason", "", "why, for the change's record")
	if len(args) == 0 {
		return errors.New("usage: starter wazuh reconcile NAME [-reason TEXT] [-request-id ID]")
	}
	name := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	c, err := workerapp.Dial(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.WazuhInstanceWorkflowID(name)
	fmt.Fprintf(out, "Reconcile on %s (request %s)\n", id, *requestID)
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateID: *requestID, UpdateName: workflows.ReconcileUpdate,
		Args: []any{workflows.ReconcileRequest{RequestID: *requestID, Reason: *reason}}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var res workflows.ChangeResult
	if err == nil {
		err = h.Get(ctx, &res)
	}
	if err != nil {
		return fmt.Errorf("Reconcile on %s not applied: %s", id, workflows.ErrorReason(err))
	}
	printChangeResult(out, res)
	return nil
}

// queryWazuhInstance reads a WazuhInstance's status query.
func queryWazuhInstance(ctx context.Context, c client.Client, name string) (workflows.WazuhInstanceStatus, error) {
	var st workflows.WazuhInstanceStatus
	v, err := c.QueryWorkflow(ctx, workflows.WazuhInstanceWorkflowID(name), "", workflows.StatusQuery)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

// printWazuhInstanceStatus prints an instance's status for `starter wazuh status`.
func printWazuhInstanceStatus(out io.Writer, st workflows.WazuhInstanceStatus, now time.Time) {
	printStatusModel(out, st.Status, now)
	fmt.Fprintf(out, "deployed: %t, Wazuh %s, nodes: %s", st.Deployed, st.Version, strings.Join(st.Nodes, ", "))
	if len(st.Joined) > 0 {
		fmt.Fprintf(out, " (workers joined: %s)", strings.Join(st.Joined, ", "))
	}
	fmt.Fprintln(out)
	if st.ConfigCommit != "" {
		fmt.Fprintf(out, "configuration repository commit: %s\n", st.ConfigCommit)
	}
	if h := st.Health; h != nil {
		fmt.Fprintf(out, "last health check: %s (%s)\n", h.Health, h.RequestID)
	}
	fmt.Fprintf(out, "pending changes: %d, runs: %d\n", st.Pending, st.Runs)
	for _, o := range st.Recent {
		fmt.Fprintf(out, "  %s %s (%s): %s\n", o.State, o.RequestID, o.Via, o.Summary)
	}
	if st.LastReason != "" {
		fmt.Fprintf(out, "last reason: %s\n", st.LastReason)
	}
}
