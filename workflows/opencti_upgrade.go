package workflows

import (
	"fmt"
	"slices"

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
		WorkflowID:            UpgradeWorkflowID(name),
		TypedSearchAttributes: temporal.NewSearchAttributes(SearchAttrInstance.ValueSet(name), SearchAttrApp.ValueSet(AppOpenCTI)),
		StaticSummary:         fmt.Sprintf("%s for %s", res.Summary, InstanceWorkflowID(name)),
	})
	spec := base
	var up UpgradeResult
	err := workflow.ExecuteChildWorkflow(cctx, UpgradeOpenCTIWorkflow, UpgradeInput{Instance: name, UpgradeTarget: r.target(),
		Check: r.Check, Spec: &spec, Secrets: w.st.Secrets}).Get(ctx, &up)
	if up.Outcome != "" {
		res.Upgrade = &up
	}
	if err != nil {
		return res, wrapReason(res.Summary, err)
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
	// The container has next's plan; the connectors were stopped.
	w.st.Pushed = &next
	for _, n := range sortedKeys(w.st.Connectors) {
		rec := w.st.Connectors[n]
		rec.Owed = true
		w.st.Connectors[n] = rec
	}
	step := func(name, doing string) {
		w.tr.set(ctx, Status{Kind: StatusMaintenance, Step: name, Message: fmt.Sprintf("applying %s (%s): %s", c.ID, res.Summary, doing)})
	}
	if err := w.reconcileConnectors(ctx, next, w.st.Secrets, &res, step); err != nil {
		return res, err
	}
	w.st.Spec = next
	// Every service stopped and started again: the platform, the workers, then the
	// connectors reconcileConnectors started.
	connectors := slices.Concat(res.Restarted, res.Started)
	res.Restarted = slices.Concat([]string{opencti.PlatformService}, opencti.WorkerServices(*next.OpenCTI.Workers), connectors)
	res.Started = nil
	return res, nil
}

// reply tells the workflow an Upgrade request named in ReplyTo (an UpgradeOpenCTI
// started by tctl) the change's result; fire and forget: if it is gone, no one waits.
func (w *instance) reply(ctx workflow.Context, c QueuedChange) {
	if c.kind() != UpgradeUpdate {
		return
	}
	ch, err := decodeChange(c.kind(), c.Request)
	if r, ok := ch.(UpgradeRequest); err == nil && ok && r.ReplyTo != "" {
		workflow.SignalExternalWorkflow(ctx, r.ReplyTo, "", UpgradeDoneSignal, w.st.Results[c.ID])
	}
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
