package workflows

import (
	"encoding/json"
	"fmt"
	"slices"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/internal/opencti"
)

func (r UpgradeRequest) requestID() string { return r.RequestID }

// target is the request's version and commands.
func (r UpgradeRequest) target() opencti.UpgradeTarget {
	return opencti.UpgradeTarget{Version: r.TargetVersion, PlatformCommand: r.PlatformCommand, WorkerCommand: r.WorkerCommand,
		ConnectorCommands: r.ConnectorCommands}
}

func (r UpgradeRequest) validate(base opencti.Instance) error {
	if missing := base.Missing(); len(missing) > 0 {
		return problem("(instance)", "is blocked: "+missingText(missing)+"; an upgrade needs every integration",
			"send SetIntegration with the missing section(s) first, then the upgrade")
	}
	return opencti.ValidateTarget(base, r.target())
}

func (r UpgradeRequest) next(base opencti.Instance) opencti.Instance {
	if r.Check {
		return base.WithDefaults()
	}
	return r.target().Upgraded(base)
}

func (r UpgradeRequest) summary(base opencti.Instance) string {
	if r.Check {
		return fmt.Sprintf("check an upgrade %s -> %s", base.OpenCTI.Version, r.TargetVersion)
	}
	return fmt.Sprintf("upgrade %s -> %s", base.OpenCTI.Version, r.TargetVersion)
}

// upgrade applies an Upgrade change: UpgradeOpenCTI runs as a child (the platform and
// workers; or only its pre-flight), then the instance brings its connectors up on
// the target's commands, as any reconcile does (each owed a start: the upgrade
// stopped them).
func (w *instance) upgrade(ctx workflow.Context, c QueuedChange, r UpgradeRequest, res ChangeResult) (ChangeResult, error) {
	base := w.st.Spec
	name := base.Name
	w.tr.set(ctx, Status{Kind: StatusMaintenance, Step: "upgrading", Message: fmt.Sprintf("applying %s (%s) (workflow %s)", c.ID, res.Summary, UpgradeWorkflowID(name))})
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: UpgradeWorkflowID(name),
		// A cancelled upgrade rolls back: the instance waits for that, and closing the
		// instance asks the child to cancel (roll back) rather than killing it midway.
		WaitForCancellation:   true,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		TypedSearchAttributes: temporal.NewSearchAttributes(SearchAttrInstance.ValueSet(name), SearchAttrApp.ValueSet(AppOpenCTI)),
		StaticSummary:         fmt.Sprintf("%s for %s", res.Summary, InstanceWorkflowID(name)),
	})
	spec := base
	var up UpgradeResult
	err := workflow.ExecuteChildWorkflow(cctx, UpgradeOpenCTIWorkflow, UpgradeInput{Instance: name, UpgradeTarget: r.target(),
		Check: r.Check, Spec: &spec, Secrets: w.st.Secrets, HangAfter: w.in.MigrationHangAfter}).Get(ctx, &up)
	if up.Outcome != "" {
		res.Upgrade = &up
	}
	if err != nil || !r.Check && up.Outcome != UpgradeRefused {
		// The child stopped the connectors (the platform and workers it restarts
		// itself): each is owed a start, by the connector step below or, after a
		// failure, by the next change.
		for _, n := range sortedKeys(w.st.Connectors) {
			rec := w.st.Connectors[n]
			rec.Owed = true
			w.st.Connectors[n] = rec
		}
	}
	if err != nil {
		return res, wrapReason(res.Summary, err)
	}
	if up.Outcome == UpgradeRefused {
		return res, temporal.NewNonRetryableApplicationError("upgrade refused by the pre-flight, nothing was changed:\n"+findingsText(up.Findings),
			ErrTypePreflightFailed, nil)
	}
	if r.Check {
		return res, nil
	}
	w.st.Snapshot = up.Snapshot
	next := r.next(base)
	if up.Outcome == UpgradeRolledBack {
		// The previous version runs again on the restored data.
		next = base
		w.st.LastReason = fmt.Sprintf("%s: upgrade to %s rolled back: %s", c.ID, r.TargetVersion, up.Reason)
	} else {
		w.st.Version = up.To
	}
	// The container has next's plan and runs it: record it before the connectors,
	// so a failure there leaves the instance on the version it runs.
	w.st.Pushed, w.st.Spec = &next, next
	if err := w.reconcileConnectors(ctx, next, w.st.Secrets, &res, w.stepper(ctx, c.ID, res.Summary)); err != nil {
		return res, err
	}
	// Every service stopped and started again: the platform, the workers, then the
	// connectors reconcileConnectors started.
	connectors := slices.Concat(res.Restarted, res.Started)
	res.Restarted = slices.Concat([]string{opencti.PlatformService}, opencti.WorkerServices(*next.OpenCTI.Workers), connectors)
	res.Started = nil
	return res, nil
}

// reply tells the workflow an Upgrade request named in ReplyTo (an UpgradeOpenCTI
// started by tctl) the change's recorded result.
func (w *instance) reply(ctx workflow.Context, c QueuedChange) {
	w.replyTo(ctx, c.kind(), c.Request, w.st.Results[c.ID])
}

// replyTo sends res to the ReplyTo of an Upgrade request in raw, if it names one:
// applied, rejected or a repeat, its sender always hears back. Fire and forget: if
// the sender is gone, no one waits.
func (w *instance) replyTo(ctx workflow.Context, name string, raw []byte, res ChangeResult) {
	if name != UpgradeUpdate {
		return
	}
	if to := replyToOf(raw); to != "" {
		workflow.SignalExternalWorkflow(ctx, to, "", UpgradeDoneSignal, res)
	}
}

// replyToOf reads the replyTo of a request whose JSON may be bad.
func replyToOf(raw []byte) string {
	var r struct {
		ReplyTo string `json:"replyTo"`
	}
	_ = json.Unmarshal(raw, &r)
	return r.ReplyTo
}

// previewUpgrade is what an Upgrade would do: every service stopped, the platform
// started on the target and migrated, then the workers and connectors.
func previewUpgrade(out Preview, r UpgradeRequest, base opencti.Instance) Preview {
	if r.Check {
		out.Notes = append(out.Notes, "only the pre-flight runs: nothing is changed")
		out.Unchanged = opencti.Services(base)
		return out
	}
	out.Restart = opencti.Services(base)
	for _, cn := range base.Connectors {
		out.Restart = append(out.Restart, connectorService(cn.Name))
	}
	out.Notes = append(out.Notes, "the pre-flight runs first and refuses the upgrade, changing nothing, on any error",
		"connectors and workers stop before the platform; the platform migrates with its port closed, then workers and connectors start on "+r.TargetVersion)
	return out
}
