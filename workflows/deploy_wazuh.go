package workflows

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/wazuh"
)

// DeployWazuh brings up one Wazuh server cluster, in the charm's order: validate,
// ensure the cluster key and agent password, wait for the indexer, then node by node,
// master first: sync the configuration repository, push ossec.conf, authd.pass,
// filebeat.yml and the rsyslog certificates with the layer, reload the manager and
// (re)start filebeat and rsyslog, restarting only what changed; then reconcile the API
// users on the master and wait until every worker has joined it.
func DeployWazuh(ctx workflow.Context, in DeployWazuhInput) (DeployWazuhResult, error) {
	d := &wazuhDeploy{in: in}
	d.resume = "run the same deploy again (secrets, stored API passwords and running nodes are kept)"
	if err := d.setup(ctx, in.Instance.Name, AppWazuh); err != nil {
		return DeployWazuhResult{}, err
	}
	res, err := d.run(ctx)
	if err != nil {
		d.fail(ctx, err)
	}
	return res, err
}

// wazuhDeploy is the state of one DeployWazuh run.
type wazuhDeploy struct {
	sequence
	in DeployWazuhInput
}

func (d *wazuhDeploy) run(ctx workflow.Context) (DeployWazuhResult, error) {
	inst := d.in.Instance.WithDefaults()
	d.enter(ctx, PhaseValidating)
	if err := inst.Validate(); err != nil {
		return DeployWazuhResult{}, temporal.NewNonRetryableApplicationError("cannot deploy: invalid spec:\n"+err.Error(), "InvalidSpec", nil)
	}

	d.enter(ctx, PhaseEnsuringSecrets)
	var sec activities.EnsureWazuhSecretsResult
	err := d.step(ctx, quickOptions, a.EnsureWazuhSecrets, activities.EnsureWazuhSecretsInput{
		Instance: inst.Name, Given: wazuh.SecretTable.Given(&inst),
	}, &sec)
	if err != nil {
		return DeployWazuhResult{}, fmt.Errorf("cannot ensure instance secrets: %w", err)
	}

	d.enter(ctx, PhaseWaitingDeps)
	if err := d.waitDependencies(ctx, wazuhProbes(inst)); err != nil {
		return DeployWazuhResult{}, err
	}

	res := DeployWazuhResult{Instance: inst.Name, Secrets: sec.Secrets, GeneratedSecrets: sec.Generated}
	for k, n := range inst.Nodes {
		res.Nodes = append(res.Nodes, n.Name)
		commit, err := d.bringUpNode(ctx, inst, k, sec.Secrets)
		if err != nil {
			return res, err
		}
		res.ConfigCommit = cmp.Or(res.ConfigCommit, commit)
	}

	res.Timings, res.Warnings = d.status.Timings, d.warnings()
	d.enterStatus(ctx, PhaseDone, Status{Kind: StatusActive, Message: fmt.Sprintf("Wazuh %s: %d node(s) up", inst.Wazuh.Version, len(inst.Nodes))})
	res.Timings = d.status.Timings
	return res, nil
}

// bringUpNode configures node k and starts what its changes reach: the charm's steps
// 3 to 7 for one unit. It returns the configuration repository's commit ("" without one).
func (d *wazuhDeploy) bringUpNode(ctx workflow.Context, inst wazuh.Instance, k int, sec wazuh.InstanceSecrets) (string, error) {
	node := inst.Nodes[k]
	var synced activities.SyncConfigRepoResult
	if r := inst.Wazuh.ConfigRepo; r != nil {
		d.enterNode(ctx, PhaseSyncingRepo, node)
		var comps []activities.ConfigComponent
		for _, c := range wazuh.RepoComponents(inst, k) {
			comps = append(comps, activities.ConfigComponent{Name: c.Name, Dest: c.Dest})
		}
		err := d.step(ctx, repoOptions, a.SyncConfigRepo, activities.SyncConfigRepoInput{
			Instance: inst.Name, Pebble: node.Pebble, URL: r.URL, SSHKey: r.SSHKey, HostKey: r.HostKey,
			Components: comps, MarkerDir: wazuh.RepoMarkerDir(inst, k),
		}, &synced)
		if err != nil {
			return "", wrapReason("cannot sync the configuration repository into node "+node.Name, err)
		}
	}

	d.enterNode(ctx, PhaseConfiguringNode, node)
	var applied activities.ApplyWazuhPlanResult
	err := d.step(ctx, pebbleOptions, a.ApplyWazuhPlan, activities.ApplyWazuhPlanInput{Instance: inst, Node: k, Secrets: sec}, &applied)
	if err != nil {
		return synced.Commit, wrapReason("cannot configure node "+node.Name, err)
	}
	restarts := wazuhRestarts(inst, k, applied.Restart, synced.Applied)

	if slices.Contains(restarts, wazuh.ManagerService) {
		d.enterNode(ctx, PhaseStartingManager, node)
		err := d.step(ctx, managerOptions, a.ReloadWazuhManager, activities.ReloadWazuhManagerInput{Instance: inst, Node: k}, nil)
		if err != nil {
			return synced.Commit, wrapReason("cannot start the manager on node "+node.Name, err)
		}
	}

	d.enterNode(ctx, PhaseStartingShippers, node)
	shippers := []string{wazuh.FilebeatService}
	if inst.Wazuh.Syslog != nil {
		shippers = append(shippers, wazuh.RsyslogService)
	}
	var restart []string
	for _, s := range restarts {
		if s != wazuh.ManagerService && slices.Contains(shippers, s) {
			restart = append(restart, s)
		}
	}
	if len(restart) > 0 {
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, restartOptions), a.RestartPebbleServices,
			activities.RestartPebbleServicesInput{Pebble: node.Pebble, Services: restart, Since: workflow.Now(ctx)}).Get(ctx, nil)
		if err != nil {
			return synced.Commit, wrapReason("cannot restart "+fmt.Sprint(restart)+" on node "+node.Name, err)
		}
	}
	err = d.step(ctx, pebbleOptions, a.StartPebbleServices, activities.StartPebbleServicesInput{Pebble: node.Pebble, Services: shippers}, nil)
	if err != nil {
		return synced.Commit, wrapReason("cannot start "+fmt.Sprint(shippers)+" on node "+node.Name, err)
	}
	return synced.Commit, nil
}

// wazuhRestarts are the services node k must (re)start, in start order: those the
// plan's apply names and those reading a repository component that changed.
func wazuhRestarts(inst wazuh.Instance, k int, fromPlan, changedComponents []string) []string {
	need := map[string]bool{}
	for _, s := range fromPlan {
		need[s] = true
	}
	for _, c := range wazuh.RepoComponents(inst, k) {
		if slices.Contains(changedComponents, c.Name) {
			need[c.Service] = true
		}
	}
	var out []string
	for _, s := range wazuh.StartOrder {
		if need[s] {
			out = append(out, s)
		}
	}
	return out
}

// enterNode opens phase p for one node, naming the node in the status.
func (d *wazuhDeploy) enterNode(ctx workflow.Context, p Phase, n wazuh.Node) {
	d.enterStatus(ctx, p, Status{Kind: StatusMaintenance, Step: string(p), Message: phaseDoing[p] + " on node " + n.Name})
}

// wazuhProbes is the Wazuh server's one dependency: its indexer, OpenSearch-based.
func wazuhProbes(inst wazuh.Instance) []probe {
	return []probe{{"indexer", a.ProbeOpenSearch, func(d time.Duration) any {
		return activities.ProbeOpenSearchInput{OpenSearch: *inst.Integrations.Indexer, Requires: wazuh.Requirement,
			IndexPrefix: "wazuh", ProbeWindow: activities.ProbeWindow{Window: d}}
	}}}
}

// repoOptions: a sync dials the server, resolves the ref and fetches shallowly, each
// bounded by configrepo's own timeouts (15 s, 30 s, 2 min), then pushes the changed
// files; it heartbeats all along.
var repoOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    5 * time.Minute,
	HeartbeatTimeout:       30 * time.Second,
	ScheduleToCloseTimeout: 20 * time.Minute,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
}

// managerOptions: a reload runs wazuh-control (about ten seconds for the real
// manager's daemons) and waits for the API; it heartbeats while it waits, so a lost
// worker is noticed within the heartbeat timeout.
var managerOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    5 * time.Minute,
	HeartbeatTimeout:       30 * time.Second,
	ScheduleToCloseTimeout: 15 * time.Minute,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
}
