package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/socflow/socflow/internal/workerapp"
	"github.com/socflow/socflow/workflows"
)

// configArgs is what `starter config set` was asked to do.
type configArgs struct {
	name      string
	signal    bool
	requestID string
	change    map[string]any // the SetConfig JSON object
}

// parseConfigArgs reads `set NAME key=value… [--signal] [--request-id ID]`. Values are
// sent as given (a number for an integer, else a string): the workflow's validator is
// the one judge of a change, so the starter and tctl get the same field-named errors.
func parseConfigArgs(args []string) (configArgs, error) {
	const use = "usage: starter config set NAME key=value... [--signal] [--request-id ID]   (keys: workers, logLevel)"
	var ca configArgs
	if len(args) < 1 || args[0] != "set" {
		return ca, errors.New(use)
	}
	ca.change = map[string]any{}
	for i := 1; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--signal" || arg == "-signal":
			ca.signal = true
		case arg == "--request-id" || arg == "-request-id":
			if i+1 >= len(args) {
				return ca, errors.New("--request-id needs a value\n" + use)
			}
			i++
			ca.requestID = args[i]
		case strings.HasPrefix(arg, "--request-id="):
			ca.requestID = strings.TrimPrefix(arg, "--request-id=")
		case strings.HasPrefix(arg, "-"):
			return ca, fmt.Errorf("unknown flag %s\n%s", arg, use)
		case ca.name == "":
			ca.name = arg
		default:
			k, v, ok := strings.Cut(arg, "=")
			if !ok || k == "" {
				return ca, fmt.Errorf("%q is not key=value\n%s", arg, use)
			}
			if n, err := strconv.Atoi(v); err == nil {
				ca.change[k] = n
			} else {
				ca.change[k] = v
			}
		}
	}
	if ca.name == "" || len(ca.change) == 0 {
		return ca, errors.New(use)
	}
	if ca.requestID == "" {
		ca.requestID = uuid.NewString()
	}
	ca.change["requestId"] = ca.requestID
	return ca, nil
}

// cmdConfig sends a SetConfig change to an instance's workflow, as an Update (the
// result comes back, or the rejection) or, with --signal, as its Signal twin (then it
// follows the instance's status until the change is applied or rejected).
func cmdConfig(ctx context.Context, args []string, out io.Writer) error {
	ca, err := parseConfigArgs(args)
	if err != nil {
		return err
	}
	c, err := workerapp.Dial(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.InstanceWorkflowID(ca.name)
	fmt.Fprintf(out, "SetConfig %s on %s (request %s)\n", describeChange(ca.change), id, ca.requestID)
	if ca.signal {
		return signalConfig(ctx, c, id, ca, out)
	}
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateID: ca.requestID, UpdateName: workflows.SetConfigUpdate,
		Args: []any{ca.change}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var res workflows.SetConfigResult
	if err == nil {
		err = h.Get(ctx, &res)
	}
	if err != nil {
		return fmt.Errorf("SetConfig on %s not applied: %s", id, workflows.ErrorReason(err))
	}
	printConfigResult(out, res)
	return nil
}

// signalConfig sends the Signal and waits until the instance's status lists the
// request as applied, failed or rejected.
func signalConfig(ctx context.Context, c client.Client, id string, ca configArgs, out io.Writer) error {
	if err := c.SignalWorkflow(ctx, id, "", workflows.SetConfigUpdate, ca.change); err != nil {
		return fmt.Errorf("cannot signal %s: %w", id, err)
	}
	fmt.Fprintln(out, "signal sent; waiting for the instance to apply it")
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		var st workflows.InstanceStatus
		if v, err := c.QueryWorkflow(ctx, id, "", workflows.StatusQuery); err == nil && v.Get(&st) == nil {
			for _, o := range st.Recent {
				if o.RequestID != ca.requestID {
					continue
				}
				if o.State != "applied" {
					return fmt.Errorf("SetConfig on %s %s: %s", id, o.State, o.Summary)
				}
				fmt.Fprintf(out, "applied %s: %s\n", o.RequestID, o.Summary)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting (the change stays queued in %s): %w", id, ctx.Err())
		case <-tick.C:
		}
	}
}

// describeChange is the change on one line, keys in a stable order.
func describeChange(change map[string]any) string {
	var parts []string
	for _, k := range []string{"workers", "logLevel"} {
		if v, ok := change[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(change)) {
		if k != "workers" && k != "logLevel" && k != "requestId" {
			parts = append(parts, fmt.Sprintf("%s=%v", k, change[k]))
		}
	}
	return strings.Join(parts, " ")
}

// printConfigResult prints what a change changed (values masked) and what was
// restarted, started and stopped.
func printConfigResult(out io.Writer, res workflows.SetConfigResult) {
	fmt.Fprintf(out, "applied %s: %s\n", res.RequestID, res.Summary)
	for _, ch := range res.Changed {
		var env []string
		for _, e := range ch.Env {
			env = append(env, fmt.Sprintf("%s %s -> %s", e.Key, e.Old, e.New))
		}
		line := fmt.Sprintf("  changed %s: %s", ch.Service, strings.Join(ch.Fields, ", "))
		if len(env) > 0 {
			line += " (" + strings.Join(env, "; ") + ")"
		}
		fmt.Fprintln(out, line)
	}
	for _, p := range []struct {
		verb  string
		names []string
	}{{"restarted", res.Restarted}, {"started", res.Started}, {"stopped", res.Stopped}} {
		if len(p.names) > 0 {
			fmt.Fprintf(out, "  %s: %s\n", p.verb, strings.Join(p.names, ", "))
		}
	}
	if len(res.Restarted)+len(res.Started)+len(res.Stopped) == 0 {
		fmt.Fprintln(out, "  nothing to restart, start or stop")
	}
}
