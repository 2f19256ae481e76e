package workflows

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/wazuh"
)

// DeployWazuh brings up one Wazuh server cluster, in the charm's order: validate,
// ensure the cluster key and agent password, take the URL and a connector user's token
// from the OpenCTI instance integrations.opencti names (if it names one), wait for the
// indexer, then node by node,
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
	// restarted are the services (re)started, as node/service.
	restarted []string
	// apiRefs are the API users' password references, once reconciled.
	apiRefs map[string]spec.SecretRef
}

func (d *wazuhDeploy) run(ctx workflow.Context) (DeployWazuhResult, error) {
	inst := d.in.Instance.WithDefaults()
	d.enter(ctx, PhaseValidating)
	if name := inst.OpenCTIInstance(); name != "" &&
		workflow.GetVersion(ctx, WazuhOpenCTIInstanceChange, workflow.DefaultVersion, WazuhOpenCTIInstance) == workflow.DefaultVersion {
		// A history from before the change: its validation refused the instance form.
		return DeployWazuhResult{}, temporal.NewNonRetryableApplicationError("cannot deploy: invalid spec:\nintegrations.opencti.instance: is not supported yet: socflow cannot take the connector token from an OpenCTI instance it runs (fix: give integrations.opencti.url and token (an OpenCTI user's API token) instead)", "InvalidSpec", nil)
	}
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

	var rel *WazuhOpenCTIRelation
	if inst.OpenCTIInstance() != "" {
		if inst, rel, err = d.relateOpenCTI(ctx, inst); err != nil {
			return DeployWazuhResult{}, err
		}
	}

	d.enter(ctx, PhaseWaitingDeps)
	if err := d.waitDependencies(ctx, wazuhProbes(inst)); err != nil {
		return DeployWazuhResult{}, err
	}

	res := DeployWazuhResult{Instance: inst.Name, Secrets: sec.Secrets, GeneratedSecrets: sec.Generated, OpenCTI: rel}
	for k, n := range inst.Nodes {
		res.Nodes = append(res.Nodes, n.Name)
		commit, err := d.bringUpNode(ctx, inst, k, sec.Secrets)
		if err != nil {
			return res, err
		}
		res.ConfigCommit = cmp.Or(res.ConfigCommit, commit)
	}

	login, err := d.reconcileAPIUsers(ctx, inst, &res)
	if err != nil {
		return res, err
	}
	// The exporter reads the API as user prometheus, which exists from here on.
	if inst.Wazuh.Exporter != nil && workflow.GetVersion(ctx, WazuhExporterChange, workflow.DefaultVersion, WazuhExporter) == WazuhExporter {
		if res.ExporterURL, err = d.startExporter(ctx, inst); err != nil {
			return res, err
		}
	}
	if len(inst.Nodes) > 1 {
		d.enter(ctx, PhaseWaitingCluster)
		if res.Joined, err = d.waitWorkersJoined(ctx, inst, login); err != nil {
			return res, err
		}
	}

	if every := cmp.Or(d.in.HealthEvery, DefaultHealthEvery); every > 0 {
		d.enter(ctx, PhaseSchedulingHealth)
		s := WazuhHealthSchedule(inst.Name, workflow.GetInfo(ctx).TaskQueueName, every,
			activities.ReadWazuhHealthInput{Instance: inst, Secrets: sec.Secrets, APIPassword: login.Password})
		if err := d.step(ctx, quickOptions, a.EnsureInstanceSchedule, s, nil); err != nil {
			return res, wrapReason("cannot create the health schedule", err)
		}
		res.HealthSchedule = s.ID
	}

	res.Restarted = d.restarted
	res.Timings, res.Warnings = d.status.Timings, d.warnings()
	d.enterStatus(ctx, PhaseDone, Status{Kind: StatusActive, Message: fmt.Sprintf("Wazuh %s: %d node(s) up, API users %s", res.Version, len(inst.Nodes), res.APIUsers)})
	res.Timings = d.status.Timings
	return res, nil
}

// relateOpenCTI takes the URL and a connector user's token from the OpenCTI instance
// socflow runs that integrations.opencti names (EnsureOpenCTIRelation, the charm's
// opencti-connector relation) and returns the instance with them in place of the
// name: every later step — the nodes' plans, the health schedule's drift read — then
// sees a plain url and token, and the history holds the token's reference only.
func (d *wazuhDeploy) relateOpenCTI(ctx workflow.Context, inst wazuh.Instance) (wazuh.Instance, *WazuhOpenCTIRelation, error) {
	name := inst.OpenCTIInstance()
	d.enter(ctx, PhaseRelatingOpenCTI)
	var got activities.EnsureOpenCTIRelationResult
	err := d.step(ctx, relationOptions, a.EnsureOpenCTIRelation, activities.EnsureOpenCTIRelationInput{
		Instance: name, WorkflowID: InstanceWorkflowID(name), Query: ConnectionQuery,
		User: inst.OpenCTIUser(), Email: inst.OpenCTIUserEmail(), For: "Wazuh instance " + inst.Name,
	}, &got)
	if err != nil {
		return inst, nil, wrapReason("cannot take the URL and a connector user's token from OpenCTI instance "+name, err)
	}
	rel := &WazuhOpenCTIRelation{Instance: name, URL: got.URL, User: inst.OpenCTIUser(), Token: got.Token, UserCreated: got.Created}
	return inst.WithOpenCTI(got.URL, got.Token), rel, nil
}

// relationOptions: asking the OpenCTI instance and ensuring the user are a few calls
// of DefaultCallTimeout each; a platform that is restarting for one of its own changes
// answers again within minutes, so transient faults are retried that long.
var relationOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    time.Minute,
	ScheduleToCloseTimeout: 5 * time.Minute,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 20 * time.Second},
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
		d.restarted = append(d.restarted, node.Name+"/"+wazuh.ManagerService)
	}

	d.enterNode(ctx, PhaseStartingShippers, node)
	shippers := inst.Shippers()
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
		for _, s := range restart {
			d.restarted = append(d.restarted, node.Name+"/"+s)
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
	need := slices.Clone(fromPlan)
	for _, c := range wazuh.RepoComponents(inst, k) {
		if slices.Contains(changedComponents, c.Name) {
			need = append(need, c.Service)
		}
	}
	return wazuh.StartOrdered(need...)
}

// WazuhHealthSchedule is the schedule of a Wazuh instance's health checks: HealthCheck
// with the deployed spec every interval on queue, overlap SKIP; each deploy updates it
// to the spec it deployed.
func WazuhHealthSchedule(instance, queue string, every time.Duration, read activities.ReadWazuhHealthInput) activities.Schedule {
	return activities.Schedule{ID: WazuhHealthScheduleID(instance), Every: every, Workflow: HealthCheckWorkflow, WorkflowID: WazuhHealthScheduleID(instance),
		Arg: HealthCheckInput{Instance: instance, Wazuh: &read}, TaskQueue: queue, Note: "health checks of Wazuh instance " + instance + " (socflow)",
		SearchAttributes: map[string]string{SearchAttrInstance.GetName(): instance, SearchAttrApp.GetName(): AppWazuh}}
}

// wazuhAPIUsers are the API users socflow keeps on the master: the charm's three.
var wazuhAPIUsers = []activities.WazuhAPIUser{
	{Name: "wazuh", Role: activities.WazuhRoleAdministrator},
	{Name: "wazuh-wui", Role: activities.WazuhRoleAdministrator},
	{Name: "prometheus", Role: activities.WazuhRoleReadonly},
}

// reconcileAPIUsers pins the master's API certificate, brings the API users to the
// stored passwords (rotating the factory ones, restoring them after a reset) and reads
// the manager's version; it returns the administrator's login for later reads.
func (d *wazuhDeploy) reconcileAPIUsers(ctx workflow.Context, inst wazuh.Instance, res *DeployWazuhResult) (activities.WazuhAPILogin, error) {
	d.enter(ctx, PhaseAPIUsers)
	master := inst.Master()
	var cert activities.ReadWazuhAPICertResult
	if err := d.step(ctx, pebbleOptions, a.ReadWazuhAPICert, activities.ReadWazuhNodeInput{Instance: inst, Node: 0}, &cert); err != nil {
		return activities.WazuhAPILogin{}, wrapReason("cannot read the master's API certificate", err)
	}
	url := master.APIURL()
	var users activities.ReconcileWazuhAPIUsersResult
	err := d.step(ctx, apiOptions, a.ReconcileWazuhAPIUsers, activities.ReconcileWazuhAPIUsersInput{
		Instance: inst.Name, URL: url, APICert: cert.PEM, Users: wazuhAPIUsers,
	}, &users)
	if err != nil {
		return activities.WazuhAPILogin{}, wrapReason("cannot reconcile the wazuh API users", err)
	}
	res.APIUsers = users.State
	d.apiRefs = users.Refs
	login := activities.WazuhAPILogin{URL: url, APICert: cert.PEM, User: "wazuh", Password: users.Refs["wazuh"]}
	var info activities.ReadWazuhManagerInfoResult
	if err := d.step(ctx, apiOptions, a.ReadWazuhManagerInfo, activities.ReadWazuhManagerInfoInput{Instance: inst.Name, WazuhAPILogin: login}, &info); err != nil {
		return login, wrapReason("cannot read the manager's version", err)
	}
	res.Version = info.Version
	if info.Version != inst.Wazuh.Version {
		return login, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the master runs Wazuh %s, not wazuh.version %s: set wazuh.version to what the image runs, or run the image of %s",
			info.Version, inst.Wazuh.Version, inst.Wazuh.Version), activities.ErrTypeVersionMismatch, nil)
	}
	return login, nil
}

// startExporter pushes the master's prometheus layer and (re)starts the exporter when
// its definition changed; the activity resolves the password from its reference.
func (d *wazuhDeploy) startExporter(ctx workflow.Context, inst wazuh.Instance) (string, error) {
	d.enterNode(ctx, PhaseStartingExporter, inst.Nodes[wazuh.ExporterNode])
	var ex activities.ApplyWazuhExporterResult
	err := d.step(ctx, exporterOptions, a.ApplyWazuhExporter, activities.ApplyWazuhExporterInput{
		Instance: inst, Password: d.apiRefs[wazuh.ExporterUser],
	}, &ex)
	if err != nil {
		return "", wrapReason("cannot start the prometheus exporter", err)
	}
	return ex.MetricsURL, nil
}

// exporterOptions: an apply pushes a layer, may restart the exporter and waits up to a
// minute for its first good /metrics, heartbeating while it waits.
var exporterOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    3 * time.Minute,
	HeartbeatTimeout:       30 * time.Second,
	ScheduleToCloseTimeout: 10 * time.Minute,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
}

// waitWorkersJoined waits until the master lists every worker. A worker still missing
// after ClusterJoinLimit is diagnosed from the cluster logs of both sides (a key the
// master cannot decrypt with is the usual cause) and the deploy fails with them.
func (d *wazuhDeploy) waitWorkersJoined(ctx workflow.Context, inst wazuh.Instance, login activities.WazuhAPILogin) ([]string, error) {
	deadline := workflow.Now(ctx).Add(cmp.Or(d.in.ClusterJoinLimit, ClusterJoinLimit))
	for {
		var cl activities.ReadWazuhClusterResult
		err := d.step(ctx, apiOptions, a.ReadWazuhCluster, activities.ReadWazuhClusterInput{Instance: inst.Name, WazuhAPILogin: login}, &cl)
		if err != nil {
			return nil, wrapReason("cannot read the cluster's nodes", err)
		}
		var joined, missing []string
		for _, n := range inst.Nodes[1:] {
			if slices.ContainsFunc(cl.Nodes, func(c activities.WazuhClusterNode) bool { return c.Name == n.Name }) {
				joined = append(joined, n.Name)
			} else {
				missing = append(missing, n.Name)
			}
		}
		if len(missing) == 0 {
			return joined, nil
		}
		if workflow.Now(ctx).After(deadline) {
			return joined, d.joinFailure(ctx, inst, missing)
		}
		d.tr.set(ctx, Status{Kind: StatusWaiting, Step: string(PhaseWaitingCluster), Message: "waiting for " + strings.Join(missing, ", ") + " to join the master"})
		if err := workflow.Sleep(ctx, 2*time.Second); err != nil {
			return joined, err
		}
	}
}

// joinFailure names the workers that did not join and what the cluster logs say.
func (d *wazuhDeploy) joinFailure(ctx workflow.Context, inst wazuh.Instance, missing []string) error {
	read := func(k int) string {
		var lg activities.ReadWazuhClusterLogResult
		if err := d.step(ctx, pebbleOptions, a.ReadWazuhClusterLog, activities.ReadWazuhNodeInput{Instance: inst, Node: k}, &lg); err != nil || len(lg.Errors) == 0 {
			return "no cluster errors logged"
		}
		return lg.Errors[len(lg.Errors)-1]
	}
	var why []string
	why = append(why, "master "+inst.Master().Name+": "+read(0))
	for k, n := range inst.Nodes {
		if slices.Contains(missing, n.Name) {
			why = append(why, "worker "+n.Name+": "+read(k))
		}
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("worker(s) %s did not join the master within %s (%s); a master that cannot decrypt a worker's messages has another cluster key: every node must run wazuh.clusterKey, so redeploy every node (or fix the key of a node configured by hand), then run the deploy again",
		strings.Join(missing, ", "), cmp.Or(d.in.ClusterJoinLimit, ClusterJoinLimit), strings.Join(why, "; ")), ErrTypeClusterJoin, nil)
}

// ClusterJoinLimit is how long a deploy waits for the workers to join: a worker
// retries every 10 s, so a minute and a half is several attempts.
const ClusterJoinLimit = 90 * time.Second

// ErrTypeClusterJoin is the error type of workers that do not join their master.
const ErrTypeClusterJoin = "ClusterJoin"

// apiOptions: the Wazuh API answers in milliseconds once up; the user reconcile may
// wait a second for token revocation. Retried a few minutes, then reported.
var apiOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    time.Minute,
	HeartbeatTimeout:       30 * time.Second,
	ScheduleToCloseTimeout: 5 * time.Minute,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 15 * time.Second},
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
