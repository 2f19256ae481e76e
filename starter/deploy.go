package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/google/uuid"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/workerapp"
	"github.com/socflow/socflow/workflows"
)

// loadSpec reads and validates an instance spec: a bad spec fails here, before any
// workflow history exists, with every problem named.
func loadSpec(path string) (opencti.Instance, error) {
	if path == "" {
		return opencti.Instance{}, errors.New("no spec file: pass -f instance.yaml")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return opencti.Instance{}, fmt.Errorf("cannot read the spec: %w", err)
	}
	inst, err := opencti.Load(data)
	if err != nil {
		return opencti.Instance{}, fmt.Errorf("invalid spec %s:\n%w", path, err)
	}
	return inst, nil
}

// specCommand parses a command's flags, -f among them (flags adds the others), and
// loads the spec -f names; it returns the spec and its path.
func specCommand(name string, args []string, flags func(*flag.FlagSet)) (opencti.Instance, string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	file := fs.String("f", "", "instance spec (YAML or JSON)")
	if flags != nil {
		flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		return opencti.Instance{}, "", err
	}
	inst, err := loadSpec(*file)
	return inst, *file, err
}

func cmdInput(args []string, out io.Writer) error {
	inst, _, err := specCommand("input", args, nil)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(workflows.DeployInput{Instance: inst})
}

// cmdDeploy deploys an instance through its OpenCTIInstance workflow with
// Update-With-Start: the workflow is started if it is not running (conflict policy
// USE_EXISTING) and the spec is sent as an ApplySpec change in the same call. On a new
// instance the change finds no difference and completes once the deploy has; on an
// instance that exists or is being deployed, the preview of the difference is printed
// first and the difference is applied as a change after whatever runs, never dropped.
func cmdDeploy(ctx context.Context, args []string, out io.Writer) error {
	var detach *bool
	var requestID *string
	var healthEvery *time.Duration
	inst, _, err := specCommand("deploy", args, func(fs *flag.FlagSet) {
		detach = fs.Bool("detach", false, "send and return without following progress")
		requestID = fs.String("request-id", "", "the change's request ID (default: a new one)")
		healthEvery = fs.Duration("health-every", workflows.DefaultHealthEvery, "interval of the health schedule a new instance creates (0: none)")
	})
	if err != nil {
		return err
	}
	if *requestID == "" {
		*requestID = uuid.NewString()
	}
	c, err := workerapp.Dial(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.InstanceWorkflowID(inst.Name)
	req := workflows.ApplySpecRequest{RequestID: *requestID, Spec: inst}
	existing := false
	if desc, err := c.DescribeWorkflowExecution(ctx, id, ""); err == nil &&
		desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		existing = true
		p, err := queryPreview(ctx, c, id, workflows.ApplySpecUpdate, req)
		if err != nil {
			return fmt.Errorf("cannot preview the change of %s: %w", id, err)
		}
		if p.Invalid != "" {
			return fmt.Errorf("instance %s runs (workflow %s) and this spec cannot be applied to it:\n%s", inst.Name, id, p.Invalid)
		}
		fmt.Fprintf(out, "instance %s exists (workflow %s): applying the difference as a change\n", inst.Name, id)
		printPreview(out, p)
	}
	start := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                workerapp.TaskQueueFromEnv(),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchAttrInstance.ValueSet(inst.Name), workflows.SearchAttrApp.ValueSet(workflows.AppOpenCTI)),
		StaticSummary: fmt.Sprintf("OpenCTI instance %s (%s)", inst.Name, inst.OpenCTI.Version),
	}, workflows.OpenCTIInstanceWorkflow, workflows.InstanceInput{Instance: inst, HealthEvery: cmp.Or(*healthEvery, -1)})
	h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{UpdateID: *requestID, UpdateName: workflows.ApplySpecUpdate,
			Args: []any{req}, WaitForStage: client.WorkflowUpdateStageAccepted},
	})
	if err != nil {
		return fmt.Errorf("cannot deploy %s: %s", inst.Name, workflows.ErrorReason(err))
	}
	run, err := start.Get(ctx)
	if err != nil {
		return fmt.Errorf("cannot start the workflow of %s: %w", inst.Name, err)
	}
	verb := "deploy of"
	if existing {
		verb = "change of"
	}
	fmt.Fprintf(out, "%s %s: workflow %s run %s (request %s)\n  Web UI: %s\n", verb, inst.Name, id, run.GetRunID(), *requestID, webUILink(id, run.GetRunID()))
	if *detach {
		return nil
	}
	return follow(ctx, c, inst.Name, h, existing, out)
}

// follow prints the deploy's progress (while the instance's deploy runs) and the
// instance's status as they change, until the change completes, then its outcome.
func follow(ctx context.Context, c client.Client, name string, h client.WorkflowUpdateHandle, existing bool, out io.Writer) error {
	done := make(chan error, 1)
	var res workflows.ChangeResult
	go func() { done <- h.Get(ctx, &res) }()
	p := &progress{out: out, start: time.Now()}
	p.poll(ctx, c, name)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			p.poll(ctx, c, name)
			if err != nil {
				return fmt.Errorf("deploy failed: %s\n  resume: fix the cause, then run the same deploy again (secrets, bucket and a running platform are kept)",
					failureReason(ctx, c, name, err))
			}
			var st workflows.InstanceStatus
			if v, err := c.QueryWorkflow(ctx, workflows.InstanceWorkflowID(name), "", workflows.StatusQuery); err == nil {
				_ = v.Get(&st)
			}
			fmt.Fprintf(out, "deployed %s: OpenCTI %s at %s (%s) in %s\n", name, st.Version, st.URL, st.Status.Kind, time.Since(p.start).Round(time.Millisecond))
			if existing {
				printChangeResult(out, res)
			}
			if st.Status.Kind == workflows.StatusBlocked {
				return fmt.Errorf("instance %s is blocked: %s", name, st.Status.Message)
			}
			return nil
		case <-tick.C:
			p.poll(ctx, c, name)
		case <-ctx.Done():
			return fmt.Errorf("stopped following (the deploy goes on in Temporal): %w", ctx.Err())
		}
	}
}

// failureReason is why a deploy's change did not complete: the instance workflow's own
// failure when it ended (its deploy failed), else the change's error.
func failureReason(ctx context.Context, c client.Client, name string, err error) string {
	id := workflows.InstanceWorkflowID(name)
	if desc, derr := c.DescribeWorkflowExecution(ctx, id, ""); derr == nil &&
		desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		if werr := c.GetWorkflow(ctx, id, "").Get(ctx, nil); werr != nil {
			return workflows.ErrorReason(werr)
		}
	}
	return workflows.ErrorReason(err)
}

// line prints text under key unless it is what key printed last.
func (p *progress) line(key, text string) {
	if p.seen == nil {
		p.seen = map[string]string{}
	}
	if p.seen[key] != text {
		p.seen[key] = text
		fmt.Fprintf(p.out, "[%6.1fs] %s\n", time.Since(p.start).Seconds(), text)
	}
}

// progress remembers what was printed, to print only changes.
type progress struct {
	out   io.Writer
	start time.Time
	seen  map[string]string
}

// poll prints what changed in the instance's status and, until the instance is
// deployed, in its deploy's.
func (p *progress) poll(ctx context.Context, c client.Client, name string) {
	var inst workflows.InstanceStatus
	v, err := c.QueryWorkflow(ctx, workflows.InstanceWorkflowID(name), "", workflows.StatusQuery)
	if err != nil || v.Get(&inst) != nil {
		return // not yet queryable (no worker picked it up yet); the next tick retries
	}
	if !inst.Deployed {
		if st, err := queryStatus(ctx, c, workflows.DeployWorkflowID(name), ""); err == nil {
			p.show(st)
		}
		return
	}
	p.showInstance(inst)
}

// showInstance prints what changed in an instance's status.
func (p *progress) showInstance(st workflows.InstanceStatus) {
	p.line("instance", "instance: "+st.Status.String())
}

// show prints what changed in st since the last call: the status (a retried step
// prints once per attempt, with its last error), the phase, each dependency, the
// platform.
func (p *progress) show(st workflows.DeployStatus) {
	line := p.line
	line("phase", "phase: "+string(st.Phase))
	if st.Status.Kind != "" {
		line("status", "status: "+st.Status.String())
	}
	for _, d := range st.Dependencies {
		text := fmt.Sprintf("  %-10s %s", d.Name, d.State)
		if d.Version != "" {
			text += " (" + d.Version + ")"
		}
		if d.Reason != "" && d.State != workflows.DepReady {
			text += ": " + d.Reason
		}
		line("dep/"+d.Name, text)
	}
	if st.Platform != "" {
		line("platform", "  platform   "+st.Platform)
	}
}

func queryStatus(ctx context.Context, c client.Client, id, runID string) (workflows.DeployStatus, error) {
	var st workflows.DeployStatus
	v, err := c.QueryWorkflow(ctx, id, runID, workflows.StatusQuery)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

// cmdStatus prints where an instance stands: its OpenCTIInstance workflow's status
// (and, until it is deployed, its deploy's), or, for a deploy started on its own
// (tctl users start DeployOpenCTI), the deploy's. It exits non-zero when the instance
// is blocked or its deploy failed, so scripts can act on it.
func cmdStatus(ctx context.Context, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: starter status NAME")
	}
	name := args[0]
	c, err := workerapp.Dial(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.InstanceWorkflowID(name)
	if desc, err := c.DescribeWorkflowExecution(ctx, id, ""); err == nil {
		info := desc.GetWorkflowExecutionInfo()
		fmt.Fprintf(out, "instance %s: workflow %s is %s\n  Web UI: %s\n", name, id,
			strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"), webUILink(id, info.GetExecution().GetRunId()))
		if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			st, err := queryInstance(ctx, c, id)
			if err != nil {
				return err
			}
			printInstanceStatus(out, st, time.Now())
			if !st.Deployed {
				if dst, err := queryStatus(ctx, c, workflows.DeployWorkflowID(name), ""); err == nil {
					fmt.Fprintf(out, "deploy (workflow %s):\n", workflows.DeployWorkflowID(name))
					printStatus(out, dst, time.Now())
				}
			}
			if st.Status.Kind == workflows.StatusBlocked {
				return fmt.Errorf("instance %s is blocked: %s", name, st.Status.Message)
			}
			return nil
		}
		if werr := c.GetWorkflow(ctx, id, "").Get(ctx, nil); werr != nil {
			fmt.Fprintf(out, "the instance's workflow ended: %s\n", workflows.ErrorReason(werr))
		}
	}
	id = workflows.DeployWorkflowID(name)
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return fmt.Errorf("no workflow found for instance %s (neither %s nor %s): %w", name, workflows.InstanceWorkflowID(name), id, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	fmt.Fprintf(out, "deploy of %s: workflow %s is %s\n  Web UI: %s\n", name, id,
		strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"), webUILink(id, info.GetExecution().GetRunId()))
	st, err := queryStatus(ctx, c, id, "")
	if err != nil {
		return fmt.Errorf("cannot query the status of %s: %w", id, err)
	}
	printStatus(out, st, time.Now())
	if st.Error != "" {
		return fmt.Errorf("deploy failed: %s", st.Error)
	}
	return nil
}

// printInstanceStatus prints an instance's status for `starter status`: the status and
// a retried step, the applied config, missing integrations, queued changes and the
// latest outcomes.
func printInstanceStatus(out io.Writer, st workflows.InstanceStatus, now time.Time) {
	printStatusModel(out, st.Status, now)
	if st.Deployed {
		fmt.Fprintf(out, "OpenCTI %s at %s; workers %d, logLevel %s\n", st.Version, st.URL, st.Workers, st.LogLevel)
	}
	if len(st.Missing) > 0 {
		fmt.Fprintf(out, "missing integrations: %s\n", strings.Join(st.Missing, ", "))
	}
	fmt.Fprintf(out, "pending changes: %d; runs: %d\n", st.Pending, st.Runs)
	if st.LastReason != "" {
		fmt.Fprintf(out, "last reason: %s\n", st.LastReason)
	}
	for _, o := range st.Recent {
		fmt.Fprintf(out, "  %-8s %s %s (%s): %s\n", o.State, o.Kind, o.RequestID, o.Via, o.Summary)
	}
	if len(st.Connectors) > 0 {
		printConnectors(out, st.Connectors, now)
	}
}

// cmdPlan prints what `deploy -f` would do with a spec: on a running instance, the
// preview of the difference (nothing is sent); else that it would deploy it.
func cmdPlan(ctx context.Context, args []string, out io.Writer) error {
	inst, file, err := specCommand("plan", args, nil)
	if err != nil {
		return err
	}
	c, err := workerapp.Dial(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.InstanceWorkflowID(inst.Name)
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil || desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		fmt.Fprintf(out, "instance %s has no running workflow (%s): `starter deploy -f %s` would deploy it from scratch:\n"+
			"  OpenCTI %s, %d workers, platform in %s (Pebble %s)\n", inst.Name, id, file, inst.OpenCTI.Version,
			*inst.OpenCTI.Workers, inst.OpenCTI.PlatformDir, inst.Pebble)
		return nil
	}
	p, err := queryPreview(ctx, c, id, workflows.ApplySpecUpdate, workflows.ApplySpecRequest{Spec: inst})
	if err != nil {
		return fmt.Errorf("cannot preview %s: %w", id, err)
	}
	if p.Invalid != "" {
		return fmt.Errorf("this spec cannot be applied to %s:\n%s", inst.Name, p.Invalid)
	}
	printPreview(out, p)
	return nil
}

// printStatusModel prints the shared status model: the status and, while a step is
// retried, its attempt, last error and next attempt (nothing for a deploy recorded
// before the model existed, whose Kind is empty).
func printStatusModel(out io.Writer, s workflows.Status, now time.Time) {
	if s.Kind != "" {
		fmt.Fprintf(out, "status: %s\n", s)
	}
	if s.Retrying() {
		next := ""
		if wait := s.NextAttemptAt.Sub(now); wait > 0 {
			next = fmt.Sprintf(", next in %s", wait.Round(time.Second))
		}
		fmt.Fprintf(out, "  retrying %s: attempt %d%s\n  last error: %s\n", s.Step, s.Attempt, next, s.LastError)
	}
}

// printStatus prints a deploy's status for `starter status`: the status and, while a
// step is retried, its attempt, last error and next attempt; the phase, dependencies,
// platform, last reason and phase timings.
func printStatus(out io.Writer, st workflows.DeployStatus, now time.Time) {
	printStatusModel(out, st.Status, now)
	fmt.Fprintf(out, "phase: %s\n", st.Phase)
	for _, d := range st.Dependencies {
		fmt.Fprintf(out, "  %-10s %-8s %s %s\n", d.Name, d.State, d.Version, d.Reason)
	}
	if st.Platform != "" {
		fmt.Fprintf(out, "  platform   %s\n", st.Platform)
	}
	if st.LastReason != "" {
		fmt.Fprintf(out, "last reason: %s\n", st.LastReason)
	}
	for _, t := range st.Timings {
		d := "running"
		if !t.End.IsZero() {
			d = t.End.Sub(t.Start).Round(time.Millisecond).String()
		}
		fmt.Fprintf(out, "  %-22s %s\n", t.Phase, d)
	}
}

func webUILink(id, runID string) string {
	ui := os.Getenv("SOCFLOW_TEMPORAL_UI")
	if ui == "" {
		ui = "http://127.0.0.1:8233"
	}
	ns := os.Getenv("TEMPORAL_NAMESPACE")
	if ns == "" {
		ns = "default"
	}
	// The UI routes by path segment: an instance's ID (opencti/demo, wazuh/soc) is one.
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history", strings.TrimRight(ui, "/"), ns, url.PathEscape(id), runID)
}

// queryInstance reads an instance workflow's status query.
func queryInstance(ctx context.Context, c client.Client, id string) (workflows.InstanceStatus, error) {
	var st workflows.InstanceStatus
	v, err := c.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err == nil {
		err = v.Get(&st)
	}
	if err != nil {
		return st, fmt.Errorf("cannot query the status of %s: %w", id, err)
	}
	return st, nil
}
