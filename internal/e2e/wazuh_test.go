package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	tclient "go.temporal.io/sdk/client"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/internal/standin/wazuhstandin"
	"github.com/socflow/socflow/internal/wazuh"
	"github.com/socflow/socflow/workflows"
)

// wazuhOpts varies the test Wazuh instance.
type wazuhOpts struct {
	workers int  // worker nodes beside the master
	real    bool // the stand-ins' real timings (a manager start takes about 9 s)
}

// newWazuhInstance returns a valid Wazuh spec whose nodes each run in a private Pebble
// over a root of their own, with the manager stand-in installed as the image would
// have it (bin/wazuh-control, the stock ossec.conf) and the filebeat stand-in, shipping
// to the stack's real OpenSearch. The stand-ins' timings come from the environment the
// Pebbles inherit, so this sets it before starting them.
func newWazuhInstance(t *testing.T, o wazuhOpts) wazuh.Instance {
	t.Helper()
	st := stacktest.Get(t)
	if !o.real {
		for k, v := range map[string]string{
			wazuhstandin.EnvStartDelay: "300ms", wazuhstandin.EnvSettleDelay: "100ms", wazuhstandin.EnvAPIReadyDelay: "200ms",
			wazuhstandin.EnvClusterRetry: "500ms", wazuhstandin.EnvStopDelay: "100ms",
			"FILEBEAT_STANDIN_SCAN_FREQUENCY": "500ms", "FILEBEAT_STANDIN_FLUSH_TIMEOUT": "200ms",
		} {
			t.Setenv(k, v)
		}
	}
	stock, err := os.ReadFile("../wazuh/testdata/ossec-stock.conf")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("w%d", time.Now().UnixNano()%1e12)
	fbHome, err := filepath.Abs("../standin/filebeatstandin/testdata")
	if err != nil {
		t.Fatal(err)
	}
	inst := wazuh.Instance{
		Name:  name,
		Wazuh: wazuh.Settings{FilebeatCommand: bin + "/filebeat-standin -e --path.home " + fbHome},
		Integrations: wazuh.Integrations{Indexer: &spec.OpenSearch{URLs: []string{st.OpenSearchURL},
			AllowMissingModules: []string{"index-management"}}},
	}
	for k := 0; k <= o.workers; k++ {
		root := t.TempDir()
		home := filepath.Join(root, wazuh.DefaultHome)
		if err := wazuhstandin.Install(t, home); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, wazuh.OssecConf), stock, 0o640); err != nil {
			t.Fatal(err)
		}
		inst.Nodes = append(inst.Nodes, wazuh.Node{
			Pebble: spec.Pebble{Socket: stacktest.Pebble(t)}, Root: root,
			APIPort: freePort(t), AgentPort: freePort(t), EnrolmentPort: freePort(t), ClusterPort: freePort(t), SyslogPort: freePort(t),
		})
	}
	inst = inst.WithDefaults()
	if err := inst.Validate(); err != nil {
		t.Fatalf("test spec invalid: %v", err)
	}
	return inst
}

// startWazuhDeploy starts DeployWazuh the way `starter wazuh deploy` does, without a
// health schedule (every test's would run for ever after it).
func startWazuhDeploy(t *testing.T, c tclient.Client, queue string, inst wazuh.Instance) tclient.WorkflowRun {
	t.Helper()
	return startWazuhDeployEvery(t, c, queue, inst, -1)
}

// startWazuhDeployEvery is startWazuhDeploy with a health schedule every interval,
// deleted when the test ends.
func startWazuhDeployEvery(t *testing.T, c tclient.Client, queue string, inst wazuh.Instance, every time.Duration) tclient.WorkflowRun {
	t.Helper()
	if every > 0 {
		t.Cleanup(func() {
			_ = activities.DeleteSchedule(context.Background(), c, workflows.WazuhHealthScheduleID(inst.Name))
		})
	}
	run, err := c.ExecuteWorkflow(context.Background(), tclient.StartWorkflowOptions{
		ID: workflows.WazuhDeployWorkflowID(inst.Name), TaskQueue: queue,
	}, workflows.DeployWazuhWorkflow, workflows.DeployWazuhInput{Instance: inst, HealthEvery: every})
	if err != nil {
		t.Fatalf("cannot start the wazuh deploy: %v", err)
	}
	recordHistory(t, c, run)
	return run
}

// nodeFile reads a file of node k's container.
func nodeFile(t *testing.T, inst wazuh.Instance, k int, p string) string {
	t.Helper()
	b, err := os.ReadFile(inst.Nodes[k].Path(p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWazuhDeployMasterAndWorker(t *testing.T) {
	c := temporalClient(t)
	queue := inProcessWorker(t, c, t.TempDir())
	inst := newWazuhInstance(t, wazuhOpts{workers: 1})

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var res workflows.DeployWazuhResult
	if err := startWazuhDeployEvery(t, c, queue, inst, time.Hour).Get(ctx, &res); err != nil {
		t.Fatalf("deploy failed: %v", err)
	}
	if res.HealthSchedule != workflows.WazuhHealthScheduleID(inst.Name) {
		t.Errorf("health schedule %q", res.HealthSchedule)
	}
	if len(res.GeneratedSecrets) != 2 {
		t.Errorf("generated %v, want the agent password and the cluster key", res.GeneratedSecrets)
	}
	if !slices.Equal(res.Joined, []string{inst.Nodes[1].Name}) || res.APIUsers != "fresh" || res.Version != "4.11.0" {
		t.Errorf("joined %v, API users %q, version %q; want the worker joined, fresh users, 4.11.0", res.Joined, res.APIUsers, res.Version)
	}
	master, worker := nodeFile(t, inst, 0, "/var/ossec/etc/ossec.conf"), nodeFile(t, inst, 1, "/var/ossec/etc/ossec.conf")
	for _, want := range []string{"<node_type>master</node_type>", "<disabled>no</disabled>"} {
		if !strings.Contains(master, want) {
			t.Errorf("master's ossec.conf lacks %s", want)
		}
	}
	if !strings.Contains(worker, "<node_type>worker</node_type>") || !strings.Contains(worker, fmt.Sprintf("<node>127.0.0.1:%d</node>", inst.Nodes[0].ClusterPort)) {
		t.Errorf("worker's ossec.conf does not point at the master:\n%s", worker)
	}
	for k := range inst.Nodes {
		svc := services(t, inst.Nodes[k].Pebble.Socket)
		if s := svc[wazuh.FilebeatService]; s == nil || s.Current != "active" {
			t.Errorf("node %d: filebeat not active: %+v", k, s)
		}
		resp, err := http.Get(fmt.Sprintf("https://127.0.0.1:%d/", inst.Nodes[k].APIPort))
		if err == nil {
			resp.Body.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("node %d: the API does not answer over its own TLS: %v", k, err)
		}
	}

	// The master's start alert reaches the indexer through filebeat.
	st := stacktest.Get(t)
	waitFor(t, time.Minute, "the start alert in the indexer", func() bool {
		resp, err := http.Get(st.OpenSearchURL + "/wazuh-alerts-4.x-*/_search?q=cluster.node:" + inst.Nodes[0].Name + "&size=0")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Hits struct {
				Total struct{ Value int } `json:"total"`
			} `json:"hits"`
		}
		return json.NewDecoder(resp.Body).Decode(&body) == nil && body.Hits.Total.Value > 0
	})

	// A second deploy finds nothing to change: no reload, no restart.
	before := logCount(t, inst.Nodes[0].Pebble.Socket, wazuh.ManagerService, "Completed.")
	var again workflows.DeployWazuhResult
	if err := startWazuhDeploy(t, c, queue, inst).Get(ctx, &again); err != nil {
		t.Fatalf("redeploy failed: %v", err)
	}
	if after := logCount(t, inst.Nodes[0].Pebble.Socket, wazuh.ManagerService, "Completed."); after != before {
		t.Errorf("the redeploy reloaded the unchanged master (%d reloads, then %d)", before, after)
	}
	if len(again.GeneratedSecrets) != 0 || again.APIUsers != "in-sync" {
		t.Errorf("the redeploy generated %v, found the API users %q", again.GeneratedSecrets, again.APIUsers)
	}

	// A restarted manager is back to its factory users: the next reconcile finds that
	// state and sets the stored passwords back.
	ctl := exec.Command(inst.Nodes[0].Path("/var/ossec/bin/wazuh-control"), "restart")
	if out, err := ctl.CombinedOutput(); err != nil {
		t.Fatalf("wazuh-control restart: %v\n%s", err, out)
	}
	var reset workflows.DeployWazuhResult
	if err := startWazuhDeploy(t, c, queue, inst).Get(ctx, &reset); err != nil {
		t.Fatalf("deploy after the restart failed: %v", err)
	}
	if reset.APIUsers != "factory-reset" || !slices.Equal(reset.Joined, []string{inst.Nodes[1].Name}) {
		t.Errorf("after the restart: API users %q, joined %v", reset.APIUsers, reset.Joined)
	}
}

// TestReadmeWazuhCommands runs the README's Wazuh commands verbatim with the real
// starter, tctl and temporal binaries, changing only what is this machine's (address,
// task queue, instance name): the starter deploys and prints progress and status, its
// input feeds tctl's and temporal's runs of DeployWazuh, which complete, and tctl reads
// the status query as plain JSON.
func TestReadmeWazuhCommands(t *testing.T) {
	st := stacktest.Get(t)
	queue := inProcessWorker(t, temporalClient(t), t.TempDir())
	inst := newWazuhInstance(t, wazuhOpts{})
	dir := t.TempDir()
	writeJSON(t, dir, "wazuh.yaml", inst)
	cmds := readmeBlock(t, "### Deploying Wazuh with the starter, tctl and temporal", "starter deploy", "starter status", "starter input", "run", "execute", "query")
	local := strings.NewReplacer(
		"127.0.0.1:7233", st.TemporalAddress,
		"--taskqueue socflow", "--taskqueue "+queue, "--task-queue socflow", "--task-queue "+queue,
		"wazuh-deploy-soc", workflows.WazuhDeployWorkflowID(inst.Name),
		"wazuh status soc", "wazuh status "+inst.Name,
		"http://127.0.0.1:8089", "http://"+os.Getenv("SOCFLOW_CODEC_ADDR"),
	)
	_, must := readmeRunner(t, dir, local, cmds, "SOCFLOW_TASK_QUEUE="+queue)
	c := temporalClient(t)
	t.Cleanup(func() {
		_ = activities.DeleteSchedule(context.Background(), c, workflows.WazuhHealthScheduleID(inst.Name))
	})

	if out := must(0); !strings.Contains(out, "phase: reconciling-api-users") || !strings.Contains(out, "wazuh "+inst.Name+" deployed") {
		t.Errorf("starter wazuh deploy did not show its progress and outcome:\n%s", out)
	}
	if out := must(1); !strings.Contains(out, "done") || !strings.Contains(out, "active") {
		t.Errorf("starter wazuh status does not show the deploy done and active:\n%s", out)
	}
	if _, err := c.ScheduleClient().GetHandle(context.Background(), workflows.WazuhHealthScheduleID(inst.Name)).Describe(context.Background()); err != nil {
		t.Errorf("the deploy created no health schedule: %v", err)
	}
	must(2)
	if out := must(3); !strings.Contains(strings.ToLower(out), "completed") {
		t.Errorf("tctl workflow run did not report completion:\n%s", out)
	}
	if out := must(4); !strings.Contains(strings.ToLower(out), "completed") {
		t.Errorf("temporal workflow execute did not report completion:\n%s", out)
	}
	if out := must(5); strings.Contains(out, "encoding") || !strings.Contains(out, `"done"`) || !strings.Contains(out, "API users in-sync") {
		t.Errorf("tctl's status query is not readable plain JSON, done with the users in sync:\n%s", out)
	}

	health := readmeBlock(t, "### Wazuh health checks", "starter health", "temporal trigger", "tctl trigger", "list")
	sched := workflows.WazuhHealthScheduleID(inst.Name)
	hlocal := strings.NewReplacer("127.0.0.1:7233", st.TemporalAddress, "health-wazuh-soc", sched, "'soc'", "'"+inst.Name+"'")
	_, hmust := readmeRunner(t, dir, hlocal, health, "SOCFLOW_TASK_QUEUE="+queue)
	if out := hmust(0); !strings.Contains(out, inst.Name+": ok") || !strings.Contains(out, inst.Nodes[0].Name+"/manager") {
		t.Errorf("starter wazuh health:\n%s", out)
	}
	before := countRuns(t, c, inst.Name)
	hmust(1)
	waitFor(t, time.Minute, "temporal's triggered HealthCheck", func() bool { return countRuns(t, c, inst.Name) > before })
	before = countRuns(t, c, inst.Name)
	hmust(2)
	waitFor(t, time.Minute, "tctl's triggered HealthCheck", func() bool { return countRuns(t, c, inst.Name) > before })
	waitFor(t, 30*time.Second, "an ok check listed", func() bool {
		out := hmust(3)
		return strings.Contains(out, workflows.HealthCheckWorkflow)
	})
}

// TestWazuhDeployAtRealTimings deploys one node with the stand-ins at the real
// manager's and filebeat's timings (a reload takes about 9 s, the API opens after its
// daemon): socflow's waits cope with the real slowness, not only the shortened one.
func TestWazuhDeployAtRealTimings(t *testing.T) {
	queue := inProcessWorker(t, temporalClient(t), t.TempDir())
	inst := newWazuhInstance(t, wazuhOpts{real: true})
	start := time.Now()
	res, err := deployWazuh(t, queue, inst)
	if err != nil {
		t.Fatalf("deploy failed: %v", err)
	}
	if res.APIUsers != "fresh" || res.Version != "4.11.0" {
		t.Errorf("API users %q, version %q", res.APIUsers, res.Version)
	}
	// Not a timing assertion: proof that the real start delay was in force.
	if took := time.Since(start); took < 8*time.Second {
		t.Errorf("deploy took %s: the stand-in did not run at its real timings", took)
	}
}

// wazuhHealth runs one HealthCheck of a deployed Wazuh instance, as its schedule would.
func wazuhHealth(t *testing.T, c tclient.Client, queue string, inst wazuh.Instance, sec wazuh.InstanceSecrets) workflows.HealthReport {
	t.Helper()
	in := workflows.HealthCheckInput{Instance: inst.Name, Wazuh: &activities.ReadWazuhHealthInput{Instance: inst, Secrets: sec,
		APIPassword: secrets.Ref(inst.Name, activities.WazuhAPIPasswordKey("wazuh"))}}
	run, err := c.ExecuteWorkflow(context.Background(), tclient.StartWorkflowOptions{
		ID: workflows.WazuhHealthScheduleID(inst.Name) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36), TaskQueue: queue,
	}, workflows.HealthCheckWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	recordHistory(t, c, run)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var rep workflows.HealthReport
	if err := run.Get(ctx, &rep); err != nil {
		t.Fatalf("health check failed: %v", err)
	}
	return rep
}

// giveAnotherKey edits node k's cluster key by hand, behind socflow's back, and restarts
// its manager, as an operator editing one node would: the master cannot decrypt it.
// It returns the edited ossec.conf's path.
func giveAnotherKey(t *testing.T, inst wazuh.Instance, k int) string {
	t.Helper()
	conf := inst.Nodes[k].Path("/var/ossec/etc/ossec.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`<key>[0-9a-f]{32}</key>`)
	if err := os.WriteFile(conf, key.ReplaceAll(b, []byte("<key>"+anotherKey+"</key>")), 0o640); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(inst.Nodes[k].Path("/var/ossec/bin/wazuh-control"), "restart").CombinedOutput(); err != nil {
		t.Fatalf("wazuh-control restart: %v\n%s", err, out)
	}
	return conf
}

// anotherKey is the cluster key giveAnotherKey writes.
const anotherKey = "ffffffffffffffffffffffffffffffff"

// TestWazuhHealthCheckFindsAWorkerWithAnotherKey: a health check of a deployed cluster
// is ok; a worker whose cluster key was changed by hand is reported out of the cluster
// with the master's reason (it cannot decrypt the worker's messages) and the drift; a
// deploy fixes it and the next check is ok again.
func TestWazuhHealthCheckFindsAWorkerWithAnotherKey(t *testing.T) {
	c := temporalClient(t)
	queue := inProcessWorker(t, c, t.TempDir())
	inst := newWazuhInstance(t, wazuhOpts{workers: 1})
	res, err := deployWazuh(t, queue, inst)
	if err != nil {
		t.Fatalf("deploy failed: %v", err)
	}
	if rep := wazuhHealth(t, c, queue, inst, res.Secrets); rep.Health != workflows.HealthOK {
		t.Fatalf("health of a fresh deploy: %s (%+v, drift %v)", rep.Health, rep.Components, rep.Drift)
	}

	giveAnotherKey(t, inst, 1)
	var rep workflows.HealthReport
	waitFor(t, 30*time.Second, "the worker reported out of the cluster", func() bool {
		rep = wazuhHealth(t, c, queue, inst, res.Secrets)
		return component(rep, inst.Nodes[1].Name+"/cluster").Health == workflows.HealthDegraded
	})
	cl := component(rep, inst.Nodes[1].Name+"/cluster")
	if !strings.Contains(cl.Reason, "not joined") || !strings.Contains(cl.Reason, "Could not decrypt") {
		t.Errorf("the cluster component does not name the key mismatch: %q", cl.Reason)
	}
	if p := component(rep, "plan"); p.Health != workflows.HealthDegraded || !strings.Contains(p.Reason, "ossec.conf") {
		t.Errorf("the hand edit is not reported as drift: %+v", p)
	}

	if _, err := deployWazuh(t, queue, inst); err != nil {
		t.Fatalf("the fixing deploy failed: %v", err)
	}
	if rep := wazuhHealth(t, c, queue, inst, res.Secrets); rep.Health != workflows.HealthOK {
		t.Errorf("health after the fix: %s (%+v)", rep.Health, rep.Components)
	}
}
