package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/layer"
)

// wazuhHealthCheck is HealthCheck for a Wazuh instance: every read in one local
// activity (the indexer, each node's manager, filebeat and rsyslog, the workers'
// membership of the cluster with the cluster logs' reason when one is out, drift),
// judged and reported the way an OpenCTI instance's check is — result, status query,
// SocflowHealth and the Web UI's details. It heals nothing: what it finds is fixed by
// running the deploy again, which its note says.
func wazuhHealthCheck(ctx workflow.Context, in HealthCheckInput) (HealthReport, error) {
	run := workflow.GetInfo(ctx).WorkflowExecution
	rep := HealthReport{Instance: in.Instance, Health: HealthUnknown, RequestID: run.ID + "/" + run.RunID, CheckedAt: workflow.Now(ctx)}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (HealthReport, error) { return rep, nil }); err != nil {
		return rep, fmt.Errorf("cannot register the status query: %w", err)
	}
	var reads activities.ReadWazuhHealthResult
	if err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, healthReadLocalOptions), a.ReadWazuhHealth, *in.Wazuh).Get(ctx, &reads); err != nil {
		rep.Note = "the reads failed: " + ErrorReason(err)
		return rep, healthReported(ctx, rep, SearchAttrInstance.ValueSet(in.Instance), SearchAttrApp.ValueSet(AppWazuh))
	}
	rep.Components, rep.Drift = judgeWazuhReads(reads)
	rep.Health = worstHealth(rep.Components)
	if rep.Health != HealthOK {
		var not []string
		for _, c := range rep.Components {
			if c.Health != HealthOK {
				not = append(not, c.Name)
			}
		}
		rep.Note = fmt.Sprintf("not ok: %s; run the deploy again (starter wazuh deploy -f, or DeployWazuh with the same input) to re-apply the spec", strings.Join(not, ", "))
	}
	if workflow.GetVersion(ctx, WazuhHealthToInstanceChange, workflow.DefaultVersion, WazuhHealthToInstance) != workflow.DefaultVersion {
		tellWazuhInstance(ctx, rep)
	}
	return rep, healthReported(ctx, rep, SearchAttrInstance.ValueSet(in.Instance), SearchAttrApp.ValueSet(AppWazuh))
}

// tellWazuhInstance sends the report to the instance's WazuhInstance workflow when it
// runs one and its last recorded report differs in health or in the components not ok:
// a healthy instance's history does not grow with its checks. A deploy run without an
// instance workflow has no one to tell.
func tellWazuhInstance(ctx workflow.Context, rep HealthReport) {
	var st WazuhInstanceStatus
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, quietReadOptions), a.QueryWorkflow,
		activities.QueryWorkflowInput{WorkflowID: WazuhInstanceWorkflowID(rep.Instance), Query: StatusQuery}).Get(ctx, &st)
	if err != nil || st.Health != nil && healthSignature(*st.Health) == healthSignature(rep) {
		return
	}
	_ = workflow.SignalExternalWorkflow(ctx, WazuhInstanceWorkflowID(rep.Instance), "", HealthReportSignal, rep).Get(ctx, nil)
}

// healthSignature is what makes two reports differ for the instance: the health and
// the components not ok, by name (reasons carry log lines and times that always differ).
func healthSignature(rep HealthReport) string {
	sig := rep.Health
	for _, c := range rep.Components {
		if c.Health != HealthOK {
			sig += " " + c.Name + "=" + c.Health
		}
	}
	return sig
}

// judgeWazuhReads turns reads into components: down when what is wrong stops the
// cluster serving, degraded otherwise; drift adds a degraded "plan" component.
func judgeWazuhReads(reads activities.ReadWazuhHealthResult) ([]ComponentHealth, []layer.Change) {
	var cs []ComponentHealth
	for _, r := range reads.Components {
		h := HealthOK
		switch {
		case !r.OK && !r.Serving:
			h = HealthDown
		case !r.OK:
			h = HealthDegraded
		}
		cs = append(cs, ComponentHealth{Name: r.Name, Health: h, Latency: r.Latency, Reason: r.Reason})
	}
	if len(reads.Drift) > 0 {
		cs = append(cs, ComponentHealth{Name: "plan", Health: HealthDegraded, Reason: "differs from the spec: " + describeDrift(reads.Drift)})
	}
	return cs, reads.Drift
}
