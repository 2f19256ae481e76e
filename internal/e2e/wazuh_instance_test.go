package e2e

import (
	"context"
	"net"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	tclient "go.temporal.io/sdk/client"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/codec"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/internal/wazuh"
	"github.com/socflow/socflow/workflows"
)

// startWazuhInstance starts the instance's WazuhInstance workflow (no health schedule:
// the test runs each check itself) and cancels it when the test ends.
func startWazuhInstance(t *testing.T, c tclient.Client, queue string, in workflows.WazuhInstanceInput) tclient.WorkflowRun {
	t.Helper()
	in.HealthEvery = -1
	run, err := c.ExecuteWorkflow(context.Background(), tclient.StartWorkflowOptions{
		ID: workflows.WazuhInstanceWorkflowID(in.Instance.Name), TaskQueue: queue,
	}, workflows.WazuhInstanceWorkflow, in)
	if err != nil {
		t.Fatalf("cannot start the wazuh instance: %v", err)
	}
	recordHistory(t, c, run)
	t.Cleanup(func() { endWazuhInstance(c, run) })
	return run
}

// endWazuhInstance cancels an instance's workflow and waits until it has ended, so its
// history can be recorded (recordHistory skips open runs).
func endWazuhInstance(c tclient.Client, run tclient.WorkflowRun) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.CancelWorkflow(ctx, run.GetID(), run.GetRunID()); err == nil {
		_ = run.Get(ctx, nil)
	}
}

// wazuhInstanceStatus queries a WazuhInstance's status.
func wazuhInstanceStatus(t *testing.T, c tclient.Client, name string) workflows.WazuhInstanceStatus {
	t.Helper()
	var st workflows.WazuhInstanceStatus
	v, err := c.QueryWorkflow(context.Background(), workflows.WazuhInstanceWorkflowID(name), "", workflows.StatusQuery)
	if err == nil {
		err = v.Get(&st)
	}
	if err != nil {
		t.Fatalf("status of wazuh/%s: %v", name, err)
	}
	return st
}

// waitWazuhInstance waits until the instance's status satisfies ok and returns it.
func waitWazuhInstance(t *testing.T, c tclient.Client, name, what string, ok func(workflows.WazuhInstanceStatus) bool) workflows.WazuhInstanceStatus {
	t.Helper()
	var st workflows.WazuhInstanceStatus
	waitFor(t, 3*time.Minute, what, func() bool {
		st = wazuhInstanceStatus(t, c, name)
		return ok(st)
	})
	return st
}

// applied reports whether the status lists request id as applied.
func applied(st workflows.WazuhInstanceStatus, id string) bool {
	return slices.ContainsFunc(st.Recent, func(o workflows.ChangeOutcome) bool { return o.RequestID == id && o.State == "applied" })
}

// TestWazuhInstanceKeyMismatch: on the real stack with the
// stand-ins, a WazuhInstance deploys master + worker (active); a worker whose cluster
// key is edited by hand stops being in the cluster, and the next health check blocks
// the instance naming the master's decrypt error; Reconcile re-applies the key, the
// worker joins and the instance is active again, the next check ok. Then an ApplySpec
// that drops the worker retires it: its manager's daemons stop (its API port closes).
func TestWazuhInstanceKeyMismatch(t *testing.T) {
	c := temporalClient(t)
	queue := inProcessWorker(t, c, t.TempDir())
	inst := newWazuhInstance(t, wazuhOpts{workers: 1})
	startWazuhInstance(t, c, queue, workflows.WazuhInstanceInput{Instance: inst})
	worker := inst.Nodes[1].Name
	st := waitWazuhInstance(t, c, inst.Name, "the instance active", func(s workflows.WazuhInstanceStatus) bool {
		return s.Status.Kind == workflows.StatusActive || s.Status.Kind == workflows.StatusBlocked
	})
	if st.Status.Kind != workflows.StatusActive || !st.Deployed || !slices.Contains(st.Joined, worker) {
		t.Fatalf("after the deploy: %+v", st)
	}

	// What deploys keep: the generated secrets' references, for the health reads.
	res, err := deployWazuhResultOf(t, c, inst.Name)
	if err != nil {
		t.Fatal(err)
	}
	if rep := wazuhHealth(t, c, queue, inst, res.Secrets); rep.Health != workflows.HealthOK {
		t.Fatalf("health of a fresh instance: %s (%+v)", rep.Health, rep.Components)
	}
	waitWazuhInstance(t, c, inst.Name, "the instance told of the ok check", func(s workflows.WazuhInstanceStatus) bool {
		return s.Health != nil && s.Health.Health == workflows.HealthOK && s.Status.Kind == workflows.StatusActive
	})

	conf := giveAnotherKey(t, inst, 1)
	waitFor(t, 30*time.Second, "a check finding the worker out of the cluster", func() bool {
		rep := wazuhHealth(t, c, queue, inst, res.Secrets)
		return component(rep, worker+"/cluster").Health == workflows.HealthDegraded
	})
	st = waitWazuhInstance(t, c, inst.Name, "the instance blocked", func(s workflows.WazuhInstanceStatus) bool {
		return s.Status.Kind == workflows.StatusBlocked
	})
	for _, want := range []string{worker + "/cluster", "Could not decrypt", "send Reconcile"} {
		if !strings.Contains(st.Status.Message, want) {
			t.Errorf("blocked status %q does not name %q", st.Status.Message, want)
		}
	}

	if err := c.SignalWorkflow(context.Background(), workflows.WazuhInstanceWorkflowID(inst.Name), "", workflows.ReconcileUpdate,
		workflows.ReconcileRequest{RequestID: "fix-key", Reason: "worker key edited by hand"}); err != nil {
		t.Fatal(err)
	}
	st = waitWazuhInstance(t, c, inst.Name, "the reconcile applied", func(s workflows.WazuhInstanceStatus) bool { return applied(s, "fix-key") })
	if st.Status.Kind != workflows.StatusActive || !slices.Contains(st.Joined, worker) {
		t.Fatalf("after Reconcile: %+v", st)
	}
	if got, _ := os.ReadFile(conf); strings.Contains(string(got), anotherKey) {
		t.Error("the reconcile left the hand-edited key")
	}
	if rep := wazuhHealth(t, c, queue, inst, res.Secrets); rep.Health != workflows.HealthOK {
		t.Errorf("health after the fix: %s (%+v)", rep.Health, rep.Components)
	}
	waitWazuhInstance(t, c, inst.Name, "the instance told of the ok check", func(s workflows.WazuhInstanceStatus) bool {
		return s.Health != nil && s.Health.Health == workflows.HealthOK && s.Status.Kind == workflows.StatusActive
	})

	one := inst
	one.Nodes = inst.Nodes[:1]
	if err := c.SignalWorkflow(context.Background(), workflows.WazuhInstanceWorkflowID(inst.Name), "", workflows.ApplySpecUpdate,
		workflows.WazuhApplySpecRequest{RequestID: "drop-worker", Spec: one}); err != nil {
		t.Fatal(err)
	}
	st = waitWazuhInstance(t, c, inst.Name, "the worker dropped", func(s workflows.WazuhInstanceStatus) bool { return applied(s, "drop-worker") })
	if st.Status.Kind != workflows.StatusActive || strings.Join(st.Nodes, ",") != inst.Nodes[0].Name {
		t.Errorf("after dropping the worker: %+v", st)
	}
	if o := st.Recent[len(st.Recent)-1]; !strings.Contains(o.Summary, "node "+worker+" removed") || !strings.Contains(o.Summary, "stopped "+worker+"/") {
		t.Errorf("the change's outcome: %+v", o)
	}
	waitFor(t, 30*time.Second, "the retired worker's API port closed", func() bool {
		conn, err := net.DialTimeout("tcp", inst.Nodes[1].APIAddr(), time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
}

// deployWazuhResultOf reads the result of the instance's last DeployWazuh run.
func deployWazuhResultOf(t *testing.T, c tclient.Client, name string) (workflows.DeployWazuhResult, error) {
	t.Helper()
	var res workflows.DeployWazuhResult
	err := c.GetWorkflow(context.Background(), workflows.WazuhDeployWorkflowID(name), "").Get(context.Background(), &res)
	return res, err
}

// TestReadmeWazuhInstanceCommands runs the README's WazuhInstance commands verbatim with
// the real starter, tctl and temporal binaries, changing only what is this machine's:
// tctl starts the instance with the starter's input, the starter's `instance` sends the
// same spec as a change once the deploy is recorded, Reconcile goes in through the
// starter (Update), tctl (Signal) and an ApplySpec through temporal (Update), and both
// tctl's query and the starter read the status, active, without the codec.
func TestReadmeWazuhInstanceCommands(t *testing.T) {
	st := stacktest.Get(t)
	c := temporalClient(t)
	queue := inProcessWorker(t, c, t.TempDir())
	inst := newWazuhInstance(t, wazuhOpts{workers: 1})
	dir := t.TempDir()
	writeJSON(t, dir, "wazuh.yaml", inst)
	codecURL, codecToken := workerCodecServer(t)
	cmds := readmeBlock(t, "### A Wazuh instance: changes, Reconcile and health",
		"starter input", "tctl start", "starter instance", "starter reconcile", "tctl signal", "starter input -change", "temporal update", "tctl query", "starter status")
	local := strings.NewReplacer(
		"127.0.0.1:7233", st.TemporalAddress,
		"--taskqueue socflow", "--taskqueue "+queue,
		"wazuh/soc", workflows.WazuhInstanceWorkflowID(inst.Name),
		"reconcile soc", "reconcile "+inst.Name, "status soc", "status "+inst.Name,
		"http://127.0.0.1:8089", codecURL,
	)
	_, must := readmeRunner(t, dir, local, cmds, "SOCFLOW_TASK_QUEUE="+queue, "CODEC_TOKEN="+codecToken)
	t.Cleanup(func() {
		_ = activities.DeleteSchedule(context.Background(), c, workflows.WazuhHealthScheduleID(inst.Name))
	})

	must(0)
	must(1)
	run := c.GetWorkflow(context.Background(), workflows.WazuhInstanceWorkflowID(inst.Name), "")
	recordHistory(t, c, run)
	t.Cleanup(func() { endWazuhInstance(c, run) })
	if out := must(2); !strings.Contains(out, "ApplySpec") || !strings.Contains(out, "applied ") || !strings.Contains(out, "workers joined: "+inst.Nodes[1].Name) {
		t.Errorf("starter wazuh instance did not apply the spec to the running instance:\n%s", out)
	}
	if out := must(3); !strings.Contains(out, "applied ") || !strings.Contains(out, "reconcile: certificates renewed") {
		t.Errorf("starter wazuh reconcile:\n%s", out)
	}
	must(4)
	waitWazuhInstance(t, c, inst.Name, "tctl's Reconcile applied", func(s workflows.WazuhInstanceStatus) bool { return applied(s, "tctl-1") })
	must(5)
	if out := must(6); !strings.Contains(out, "no difference") {
		t.Errorf("temporal's ApplySpec of the same spec:\n%s", out)
	}
	if out := must(7); strings.Contains(out, "encoding") || !strings.Contains(out, `"active"`) || !strings.Contains(out, "tctl-1") {
		t.Errorf("tctl's status query is not readable plain JSON, active, listing tctl-1:\n%s", out)
	}
	if out := must(8); !strings.Contains(out, "status: active") || !strings.Contains(out, "applied tctl-1 (signal): reconcile: worker key fixed") {
		t.Errorf("starter wazuh status:\n%s", out)
	}
}

// TestWazuhInstanceRenewsASyslogCertificate: a node serving an rsyslog certificate that
// expires within wazuh.CertRenewBefore is reported (the instance waits, naming the
// expiry and the fix); once the certificate is renewed where the spec refers to it, the
// next check finds the drift of the certificate files only, the instance reconciles by
// itself, rsyslog restarts on the new certificate and the next check is ok (active).
func TestWazuhInstanceRenewsASyslogCertificate(t *testing.T) {
	c := temporalClient(t)
	queue := inProcessWorker(t, c, t.TempDir())
	inst := newWazuhInstance(t, wazuhOpts{})
	serverCA, logsCA := stacktest.NewCA(t, "syslog-server-ca"), stacktest.NewCA(t, "logs-ca")
	cert, key, _ := serverCA.IssueFor(t, "localhost", true, 10*24*time.Hour)
	inst.Wazuh.Syslog = &wazuh.Syslog{Cert: spec.SecretRef("file:" + cert), Key: spec.SecretRef("file:" + key), CA: spec.SecretRef("file:" + logsCA.CertFile)}
	node := inst.Nodes[0].Name
	startWazuhInstance(t, c, queue, workflows.WazuhInstanceInput{Instance: inst})
	st := waitWazuhInstance(t, c, inst.Name, "the first deploy recorded", func(s workflows.WazuhInstanceStatus) bool { return len(s.Recent) > 0 })
	if st.Status.Kind != workflows.StatusActive {
		t.Fatalf("after the deploy: %+v", st)
	}
	res, err := deployWazuhResultOf(t, c, inst.Name)
	if err != nil {
		t.Fatal(err)
	}

	rep := wazuhHealth(t, c, queue, inst, res.Secrets)
	if cc := component(rep, node+"/syslog-cert"); cc.Health != workflows.HealthDegraded || !strings.Contains(cc.Reason, "(in 9 days)") {
		t.Fatalf("a certificate expiring in 10 days: %+v (report %s)", cc, rep.Health)
	}
	st = waitWazuhInstance(t, c, inst.Name, "the instance told of the expiry", func(s workflows.WazuhInstanceStatus) bool {
		return s.Status.Kind == workflows.StatusWaiting
	})
	if !strings.Contains(st.Status.Message, "expires at") || !strings.Contains(st.Status.Message, "renew it") {
		t.Errorf("waiting status %q does not name the expiry and the fix", st.Status.Message)
	}

	serverCA.IssueFor(t, "localhost", true, 365*24*time.Hour)
	rep = wazuhHealth(t, c, queue, inst, res.Secrets)
	if p := component(rep, "plan"); p.Health != workflows.HealthDegraded || !strings.Contains(p.Reason, "server.pem") {
		t.Fatalf("the renewed certificate is not reported as drift: %+v", p)
	}
	st = waitWazuhInstance(t, c, inst.Name, "the instance's own reconcile applied", func(s workflows.WazuhInstanceStatus) bool {
		return slices.ContainsFunc(s.Recent, func(o workflows.ChangeOutcome) bool { return o.Via == "health" && o.State == "applied" })
	})
	o := st.Recent[len(st.Recent)-1]
	if !strings.Contains(o.Summary, "certificates renewed in the store") || !strings.Contains(o.Summary, "restarted "+node+"/rsyslog") {
		t.Errorf("the renewal's outcome: %+v", o)
	}
	if rep := wazuhHealth(t, c, queue, inst, res.Secrets); rep.Health != workflows.HealthOK {
		t.Fatalf("health after the renewal: %s (%+v)", rep.Health, rep.Components)
	}
	waitWazuhInstance(t, c, inst.Name, "the instance active", func(s workflows.WazuhInstanceStatus) bool {
		return s.Status.Kind == workflows.StatusActive && s.Health != nil && s.Health.Health == workflows.HealthOK
	})
}

// workerCodecServer serves the codec with the key ring the test's workers seal payloads
// with (SOCFLOW_CODEC_KEYS: the stack's, or the replay suite's test ring while
// `make record-histories` runs), so the temporal CLI's input is readable by them.
func workerCodecServer(t *testing.T) (url, token string) {
	t.Helper()
	ring, err := codec.LoadKeyring(os.Getenv("SOCFLOW_CODEC_KEYS"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(codec.NewServer(codec.New(ring), codec.ServerOptions{Token: "e2e-token"}))
	t.Cleanup(srv.Close)
	return srv.URL, "e2e-token"
}
