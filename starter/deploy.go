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

func cmdInput(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("input", flag.ContinueOnError)
	file := fs.String("f", "", "instance spec (YAML or JSON)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	inst, err := loadSpec(*file)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(workflows.DeployInput{Instance: inst})
}

func cmdDeploy(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
	file := fs.String("f", "", "instance spec (YAML or JSON)")
	detach := fs.Bool("detach", false, "start and return without following progress")
	if err := fs.Parse(args); err != nil {
		return err
	}
	inst, err := loadSpec(*file)
	if err != nil {
		return err
	}
	c, err := workerapp.Dial(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.DeployWorkflowID(inst.Name)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: workerapp.TaskQueueFromEnv(),
		// A deploy already running for this instance is followed, not duplicated.
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchAttrInstance.ValueSet(inst.Name), workflows.SearchAttrApp.ValueSet(workflows.AppOpenCTI)),
		StaticSummary: fmt.Sprintf("Deploy OpenCTI %s (%s)", inst.Name, inst.OpenCTI.Version),
	}, workflows.DeployOpenCTIWorkflow, workflows.DeployInput{Instance: inst})
	if err != nil {
		return fmt.Errorf("cannot start the deploy of %s: %w", inst.Name, err)
	}
	fmt.Fprintf(out, "deploy of %s: workflow %s run %s\n  Web UI: %s\n", inst.Name, id, run.GetRunID(), webUILink(id, run.GetRunID()))
	if *detach {
		return nil
	}
	return follow(ctx, c, run, out)
}

// follow prints each change of the deploy's status until it ends, then its outcome.
func follow(ctx context.Context, c client.Client, run client.WorkflowRun, out io.Writer) error {
	done := make(chan error, 1)
	var res workflows.DeployResult
	go func() { done <- run.Get(ctx, &res) }()
	p := &progress{out: out, start: time.Now()}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			p.poll(ctx, c, run)
			if err != nil {
				return fmt.Errorf("deploy failed: %s\n  resume: fix the cause, then run the same deploy again (secrets, bucket and a running platform are kept)", workflows.ErrorReason(err))
			}
			fmt.Fprintf(out, "deployed %s: OpenCTI %s at %s in %s\n", res.Instance, res.Version, res.URL, time.Since(p.start).Round(time.Millisecond))
			for _, w := range res.Warnings {
				fmt.Fprintf(out, "  warning: %s\n", w)
			}
			return nil
		case <-tick.C:
			p.poll(ctx, c, run)
		case <-ctx.Done():
			return fmt.Errorf("stopped following (the deploy goes on in Temporal): %w", ctx.Err())
		}
	}
}

// progress remembers what was printed, to print only changes.
type progress struct {
	out   io.Writer
	start time.Time
	seen  map[string]string
}

func (p *progress) poll(ctx context.Context, c client.Client, run client.WorkflowRun) {
	st, err := queryStatus(ctx, c, run.GetID(), run.GetRunID())
	if err != nil {
		return // not yet queryable (no worker picked it up yet); the next tick retries
	}
	p.show(st)
}

// show prints what changed in st since the last call: the status (a retried step
// prints once per attempt, with its last error), the phase, each dependency, the
// platform.
func (p *progress) show(st workflows.DeployStatus) {
	if p.seen == nil {
		p.seen = map[string]string{}
	}
	line := func(key, text string) {
		if p.seen[key] != text {
			p.seen[key] = text
			fmt.Fprintf(p.out, "[%6.1fs] %s\n", time.Since(p.start).Seconds(), text)
		}
	}
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

func cmdStatus(ctx context.Context, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: starter status NAME")
	}
	c, err := workerapp.Dial(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.DeployWorkflowID(args[0])
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return fmt.Errorf("no deploy found for instance %s (workflow %s): %w", args[0], id, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	fmt.Fprintf(out, "instance %s: workflow %s is %s\n  Web UI: %s\n", args[0], id,
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

// printStatus prints a deploy's status for `starter status`: the status and, while a
// step is retried, its attempt, last error and next attempt; the phase, dependencies,
// platform, last reason and phase timings.
func printStatus(out io.Writer, st workflows.DeployStatus, now time.Time) {
	if st.Status.Kind != "" {
		fmt.Fprintf(out, "status: %s\n", st.Status)
	}
	if s := st.Status; s.Retrying() {
		next := ""
		if wait := s.NextAttemptAt.Sub(now); wait > 0 {
			next = fmt.Sprintf(", next in %s", wait.Round(time.Second))
		}
		fmt.Fprintf(out, "  retrying %s: attempt %d%s\n  last error: %s\n", s.Step, s.Attempt, next, s.LastError)
	}
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
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history", strings.TrimRight(ui, "/"), ns, id, runID)
}
