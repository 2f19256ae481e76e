package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/wazuh"
	"github.com/socflow/socflow/internal/workerapp"
	"github.com/socflow/socflow/workflows"
)

// cmdWazuh runs the Wazuh app's commands: instance, reconcile, deploy, input, health
// and status.
func cmdWazuh(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: starter wazuh instance|deploy|input|health -f wazuh.yaml, or starter wazuh status|reconcile NAME")
	}
	switch args[0] {
	case "instance":
		return cmdWazuhInstance(ctx, args[1:], out)
	case "reconcile":
		return cmdWazuhReconcile(ctx, args[1:], out)
	case "deploy":
		return cmdWazuhDeploy(ctx, args[1:], out)
	case "input":
		var change *bool
		inst, err := wazuhSpecCommand("wazuh input", args[1:], func(fs *flag.FlagSet) {
			change = fs.Bool("change", false, "print ApplySpec's input (for a running instance) instead of the workflows' start input")
		})
		if err != nil {
			return err
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if *change {
			return enc.Encode(workflows.WazuhApplySpecRequest{Spec: inst})
		}
		// DeployWazuh's and WazuhInstance's inputs share the "instance" field.
		return enc.Encode(workflows.DeployWazuhInput{Instance: inst})
	case "health":
		var asJSON *bool
		inst, err := wazuhSpecCommand("wazuh health", args[1:], func(fs *flag.FlagSet) {
			asJSON = fs.Bool("json", false, "print the report as JSON")
		})
		if err != nil {
			return err
		}
		c, err := workerapp.Dial(ctx, nil, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		id := fmt.Sprintf("%s-starter-%d", workflows.WazuhHealthScheduleID(inst.Name), time.Now().UnixNano())
		return runHealthCheck(ctx, c, out, id, workflows.HealthCheckInput{Instance: inst.Name, Wazuh: wazuhHealthRead(inst)}, *asJSON)
	case "status":
		if len(args) != 2 {
			return errors.New("usage: starter wazuh status NAME")
		}
		return cmdWazuhStatus(ctx, args[1], out)
	}
	return fmt.Errorf("unknown wazuh command %q: use instance, reconcile, deploy, input, health or status", args[0])
}

// wazuhHealthRead is what a health check of the deployed spec reads with: the secrets
// the spec gives, and where socflow's store keeps the ones it generated and the API
// password (the references a deploy of this spec used).
func wazuhHealthRead(inst wazuh.Instance) *activities.ReadWazuhHealthInput {
	sec := wazuh.SecretTable.Given(&inst)
	for _, it := range wazuh.SecretTable {
		if it.Generate != nil && it.Generated(&sec).IsZero() {
			*it.Generated(&sec) = secrets.Ref(inst.Name, it.Generate.Key)
		}
	}
	return &activities.ReadWazuhHealthInput{Instance: inst, Secrets: sec,
		APIPassword: secrets.Ref(inst.Name, activities.WazuhAPIPasswordKey("wazuh"))}
}

// wazuhSpecCommand parses -f (and flags' own) and loads the Wazuh spec it names: a bad
// spec fails here, before any history exists, with every problem named.
func wazuhSpecCommand(name string, args []string, flags func(*flag.FlagSet)) (wazuh.Instance, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	file := fs.String("f", "", "Wazuh instance spec (YAML or JSON)")
	if flags != nil {
		flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		return wazuh.Instance{}, err
	}
	if *file == "" {
		return wazuh.Instance{}, errors.New("no spec file: pass -f wazuh.yaml")
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		return wazuh.Instance{}, fmt.Errorf("cannot read the spec: %w", err)
	}
	inst, err := wazuh.Load(data)
	if err != nil {
		return wazuh.Instance{}, fmt.Errorf("invalid spec %s:\n%w", *file, err)
	}
	return inst, nil
}

// cmdWazuhDeploy starts DeployWazuh (or joins the one running for the instance) and
// prints its progress until it ends.
func cmdWazuhDeploy(ctx context.Context, args []string, out io.Writer) error {
	var detach *bool
	inst, err := wazuhSpecCommand("wazuh deploy", args, func(fs *flag.FlagSet) {
		detach = fs.Bool("detach", false, "start and return without following progress")
	})
	if err != nil {
		return err
	}
	c, err := workerapp.Dial(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.WazuhDeployWorkflowID(inst.Name)
	opts := wazuhStartOptions(id, inst)
	opts.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
	run, err := c.ExecuteWorkflow(ctx, opts, workflows.DeployWazuhWorkflow, workflows.DeployWazuhInput{Instance: inst})
	if err != nil {
		return fmt.Errorf("cannot deploy %s: %s", inst.Name, workflows.ErrorReason(err))
	}
	fmt.Fprintf(out, "deploy of wazuh %s: workflow %s run %s\n  Web UI: %s\n", inst.Name, id, run.GetRunID(), webUILink(id, run.GetRunID()))
	if *detach {
		return nil
	}
	p := &progress{out: out, start: time.Now()}
	done := make(chan error, 1)
	var res workflows.DeployWazuhResult
	go func() { done <- run.Get(ctx, &res) }()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if st, qerr := queryStatus(ctx, c, id, run.GetRunID()); qerr == nil {
				p.show(st)
			}
			if err != nil {
				return fmt.Errorf("deploy of wazuh %s failed: %s", inst.Name, workflows.ErrorReason(err))
			}
			fmt.Fprintf(out, "wazuh %s deployed: nodes %s", res.Instance, strings.Join(res.Nodes, ", "))
			if len(res.Joined) > 0 {
				fmt.Fprintf(out, " (workers joined: %s)", strings.Join(res.Joined, ", "))
			}
			fmt.Fprintln(out)
			return nil
		case <-tick.C:
			if st, err := queryStatus(ctx, c, id, run.GetRunID()); err == nil {
				p.show(st)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// wazuhStartOptions are the options the starter starts an instance's workflows with:
// on the worker's queue, a finished run's ID reused, findable by instance and app.
func wazuhStartOptions(id string, inst wazuh.Instance) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID: id, TaskQueue: workerapp.TaskQueueFromEnv(),
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchAttrInstance.ValueSet(inst.Name), workflows.SearchAttrApp.ValueSet(workflows.AppWazuh)),
		StaticSummary: fmt.Sprintf("Wazuh instance %s (%s, %d nodes)", inst.Name, inst.Wazuh.Version, len(inst.Nodes)),
	}
}

// cmdWazuhStatus prints where an instance stands: its WazuhInstance workflow's status
// when it runs one, else its last deploy's; exit 1 when blocked.
func cmdWazuhStatus(ctx context.Context, name string, out io.Writer) error {
	c, err := workerapp.Dial(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if ist, err := queryWazuhInstance(ctx, c, name); err == nil {
		printWazuhInstanceStatus(out, ist, time.Now())
		if ist.Status.Kind == workflows.StatusBlocked {
			return fmt.Errorf("wazuh %s is blocked: %s", name, ist.Status.Message)
		}
		return nil
	}
	st, err := queryStatus(ctx, c, workflows.WazuhDeployWorkflowID(name), "")
	if err != nil {
		return fmt.Errorf("cannot read the status of wazuh %s: %s", name, workflows.ErrorReason(err))
	}
	printStatus(out, st, time.Now())
	if st.Status.Kind == workflows.StatusBlocked {
		return fmt.Errorf("wazuh %s is blocked: %s", name, st.Status.Message)
	}
	return nil
}
