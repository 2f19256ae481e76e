package workflows

import (
	"encoding/json"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
)

// Bounds on what the instance's state keeps, so it rides Continue-As-New in a small payload.
const (
	// keptResults is how many change results (by request ID) are kept for deduplication.
	keptResults = 500
	// keptOutcomes is how many recent outcomes the status lists.
	keptOutcomes = 20
)

// OpenCTIInstance is one OpenCTI instance's entity workflow (ID InstanceWorkflowID): it
// deploys the instance through DeployOpenCTI as a child workflow, then applies config
// changes (the SetConfig Update and its Signal twin) one at a time, in arrival order, as
// minimal reconciles, and continues as new when the history grows, carrying its state.
func OpenCTIInstance(ctx workflow.Context, in InstanceInput) error {
	w := &instance{in: in}
	if err := w.setup(ctx); err != nil {
		return err
	}
	return w.run(ctx)
}

// instance is the running state of OpenCTIInstance; st is what crosses Continue-As-New.
type instance struct {
	entity
	in InstanceInput
	st InstanceState
}

func (w *instance) setup(ctx workflow.Context) error {
	if w.in.State != nil {
		w.st = *w.in.State
	} else {
		w.st = InstanceState{Spec: w.in.Instance.WithDefaults(), ChangeLog: ChangeLog{Status: Status{Kind: StatusMaintenance, Message: "instance accepted"}}}
		if len(w.st.Spec.Connectors) > 0 {
			// The deploy runs the platform; the connectors follow it as the first
			// change, applied (and recorded, and resumable) like any other.
			w.st.Spec.Connectors = nil
			w.st.Queue = []QueuedChange{{ID: DeployConnectorsRequest, Via: "deploy", Kind: ApplySpecUpdate,
				Request: mustJSON(ApplySpecRequest{RequestID: DeployConnectorsRequest, Spec: w.in.Instance})}}
		}
	}
	if w.st.Pushed == nil {
		// States carried before Pushed existed: the applied spec is the pushed one.
		pushed := w.st.Spec
		w.st.Pushed = &pushed
	}
	name := w.st.Spec.Name
	w.entity = entity{log: &w.st.ChangeLog, names: ChangeNames, continueAfter: w.in.ContinueAsNewAfterEvents, replyTo: w.replyTo, show: w.publish,
		check: func(name string, raw []byte) error { _, err := checkChange(name, raw, w.pending().spec); return err }}
	if err := w.open(ctx, name); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (InstanceStatus, error) { return w.status(), nil }); err != nil {
		return fmt.Errorf("cannot register the status query: %w", err)
	}
	if err := workflow.SetQueryHandler(ctx, PreviewQuery, w.preview); err != nil {
		return fmt.Errorf("cannot register the preview query: %w", err)
	}
	if err := workflow.SetQueryHandler(ctx, HealthReadsQuery, w.healthReads); err != nil {
		return fmt.Errorf("cannot register the health-reads query: %w", err)
	}
	if err := workflow.SetQueryHandler(ctx, ConnectionQuery, w.connection); err != nil {
		return fmt.Errorf("cannot register the connection query: %w", err)
	}
	return w.announce(ctx, name, AppOpenCTI)
}

func (w *instance) run(ctx workflow.Context) error {
	if !w.st.Deployed {
		if err := w.deploy(ctx); err != nil {
			return err
		}
	}
	for {
		w.ensureHealthSchedule(ctx)
		wake := func() bool {
			return w.busy() || w.continueWanted(ctx)
		}
		if w.checksConnectors() {
			woke, err := workflow.AwaitWithTimeout(ctx, w.connectorCheckEvery(), wake)
			if err != nil {
				return err
			}
			if !woke {
				w.checkConnectors(ctx)
				continue
			}
		} else if err := workflow.Await(ctx, wake); err != nil {
			return err
		}
		w.receiveSignals(ctx)
		if len(w.st.Queue) > 0 {
			// The change stays queued until it is recorded, so that while it is applied
			// the validators and the preview (pending) count it, and a repeat waits for it.
			w.apply(ctx, w.st.Queue[0])
			w.st.Queue = w.st.Queue[1:]
			continue
		}
		if reqs := w.healthRequests(); len(reqs) > 0 {
			w.answerHealth(ctx, reqs)
			continue
		}
		if !w.continueWanted(ctx) {
			continue
		}
		// Continue-As-New: every signal delivered has been taken in above; let every
		// update handler return its result, so no change is lost or left unanswered.
		if ready, err := w.readyToContinue(ctx); err != nil || !ready {
			if err != nil {
				return err
			}
			continue
		}
		w.logger.Info("continuing as new", "historyLength", workflow.GetInfo(ctx).GetCurrentHistoryLength(), "runs", w.st.Runs)
		// The next run keeps every setting of this one's input (check intervals, hang
		// bound, …) and takes the state.
		st, next := w.st, w.in
		next.State = &st
		return workflow.NewContinueAsNewError(ctx, OpenCTIInstanceWorkflow, next)
	}
}

// deploy runs DeployOpenCTI as a child workflow under the deploy's own ID (the same
// workflow tctl users start) and waits for it: only once it finished may a change touch
// the platform, which is never restarted while it initialises.
func (w *instance) deploy(ctx workflow.Context) error {
	name := w.st.Spec.Name
	if err := w.st.Spec.Validate(); err != nil {
		return temporal.NewNonRetryableApplicationError("cannot deploy: invalid spec:\n"+err.Error(), "InvalidSpec", nil)
	}
	w.tr.set(ctx, Status{Kind: StatusMaintenance, Step: "deploying", Message: "deploying (workflow " + DeployWorkflowID(name) + ")"})
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: DeployWorkflowID(name),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			SearchAttrInstance.ValueSet(name), SearchAttrApp.ValueSet(AppOpenCTI)),
		StaticSummary: fmt.Sprintf("Deploy OpenCTI %s (%s) for %s", name, w.st.Spec.OpenCTI.Version, InstanceWorkflowID(name)),
	})
	// Signals sent during the deploy are validated (and a bad one reported) at once;
	// good ones wait in the queue until the deploy has finished.
	platform := w.in.Instance
	platform.Connectors = nil
	child := workflow.ExecuteChildWorkflow(cctx, DeployOpenCTIWorkflow, DeployInput{Instance: platform})
	w.followChild(ctx, child, "deploying (workflow "+DeployWorkflowID(name)+")", "deploying")
	var res DeployResult
	if err := child.Get(ctx, &res); err != nil {
		reason := ErrorReason(err)
		w.st.LastReason = "deploy: " + reason
		w.tr.set(ctx, Status{Kind: StatusBlocked, Step: "deploying", Message: "the deploy failed: " + reason +
			"; fix that, then start this instance's workflow again"})
		w.logger.Error("deploy failed", "error", err)
		return fmt.Errorf("cannot deploy %s: %w", name, err)
	}
	w.st.Deployed, w.st.Secrets, w.st.Version, w.st.URL = true, res.Secrets, res.Version, res.URL
	w.tr.set(ctx, w.settled())
	return nil
}

// settled is the status of a deployed instance with nothing in progress: active, or
// blocked while an integration is missing (the charm's words).
func (w *instance) settled() Status {
	if missing := w.st.Spec.Missing(); len(missing) > 0 {
		return Status{Kind: StatusBlocked, Message: blockedMessage(missing)}
	}
	if s, ok := w.healthStatus(); ok {
		return s
	}
	if waiting := w.waitingConnectors(); waiting != "" {
		return Status{Kind: StatusWaiting, Step: stepConnectors, Message: waiting + "; see their logs: pebble logs connector"}
	}
	return Status{Kind: StatusActive, Message: fmt.Sprintf("OpenCTI %s serving at %s", w.st.Version, w.st.URL)}
}

// missingText is what the charm's status says when integrations are missing.
func missingText(missing []string) string {
	return "missing integration(s): " + strings.Join(missing, ", ")
}

// blockedMessage is the blocked status of an instance with missing integrations.
func blockedMessage(missing []string) string {
	return missingText(missing) + "; workers stopped, platform left as it is; send SetIntegration with the section to resume"
}

// status is what the status query returns.
func (w *instance) status() InstanceStatus {
	s := InstanceStatus{Instance: w.st.Spec.Name, Status: w.st.Status, Deployed: w.st.Deployed, Version: w.st.Version,
		URL: w.st.URL, LogLevel: w.st.Spec.OpenCTI.LogLevel, Pending: len(w.st.Queue), LastReason: w.st.LastReason,
		Recent: w.st.Recent, Runs: w.st.Runs, Missing: w.st.Spec.Missing(), Connectors: w.connectorStatuses(), Snapshot: w.st.Snapshot, Health: w.st.Health}
	if w.st.Spec.OpenCTI.Workers != nil {
		s.Workers = *w.st.Spec.OpenCTI.Workers
	}
	return s
}

// connection is the ConnectionQuery answer: the applied spec (its public URL, the
// URL the deploy verified unless a change moved it) and the admin token the instance
// runs with now, so a related app's user is ensured with the token a rotation
// left, not one derived from the name.
func (w *instance) connection() (activities.OpenCTIConnection, error) {
	return activities.OpenCTIConnection{Instance: w.st.Spec.Name, Deployed: w.st.Deployed, URL: w.st.Spec.OpenCTI.PublicURL,
		Spec: w.st.Spec, AdminToken: w.st.Secrets.AdminToken}, nil
}

// publish shows the status, the pending changes and the latest outcomes on the Web UI's
// workflow page.
func (w *instance) publish(ctx workflow.Context) {
	st := w.st.Status
	lines := []string{fmt.Sprintf("**%s** — **%s**: %s", w.st.Spec.Name, st.Kind, st.Message), ""}
	if st.Retrying() {
		lines = append(lines, fmt.Sprintf("retrying `%s`: attempt %d, last error: %s", st.Step, st.Attempt, st.LastError), "")
	}
	for _, c := range w.connectorStatuses() {
		line := fmt.Sprintf("connector `%s` (%s): %s", c.Name, c.Type, c.State)
		if c.Reason != "" {
			line += ", " + c.Reason
		}
		lines = append(lines, "- "+line)
	}
	workflow.SetCurrentDetails(ctx, strings.Join(w.publishLog(lines), "\n"))
}

// mustJSON encodes a value that always encodes (a request built by the workflow).
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
