package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	"go.temporal.io/api/workflowservice/v1"
	tclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/internal/workerapp"
	"github.com/socflow/socflow/workflows"
)

// runHealth runs one HealthCheck of the instance on queue, as its schedule does, and
// returns its report.
func runHealth(t *testing.T, c tclient.Client, queue, instance string) workflows.HealthReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, tclient.StartWorkflowOptions{ID: fmt.Sprintf("%s-test-%d", workflows.HealthScheduleID(instance), time.Now().UnixNano()),
		TaskQueue: queue}, workflows.HealthCheckWorkflow, workflows.HealthCheckInput{Instance: instance})
	if err != nil {
		t.Fatal(err)
	}
	recordHistory(t, c, run)
	var rep workflows.HealthReport
	if err := run.Get(ctx, &rep); err != nil {
		t.Fatalf("health check: %v", err)
	}
	return rep
}

// component is the named component of a report (zero when absent).
func component(rep workflows.HealthReport, name string) workflows.ComponentHealth {
	for _, c := range rep.Components {
		if c.Name == name {
			return c
		}
	}
	return workflows.ComponentHealth{}
}

// healOf is the report's heal of a component (zero when none).
func healOf(rep workflows.HealthReport, name string) workflows.Heal {
	for _, h := range rep.Heals {
		if h.Component == name {
			return h
		}
	}
	return workflows.Heal{}
}

// instanceHealth is the SocflowHealth search attribute of the instance's workflow.
func instanceHealth(t *testing.T, c tclient.Client, id string) string {
	t.Helper()
	desc, err := c.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	var v string
	if p, ok := desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()[workflows.SearchAttrHealth.GetName()]; ok {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &v)
	}
	return v
}

// killService sends SIGKILL to a service's process and waits until Pebble sees it gone.
func killService(t *testing.T, socket, service string) {
	t.Helper()
	pc := pebbleClient(t, socket)
	if err := pc.SendSignal(&client.SendSignalOptions{Signal: "SIGKILL", Services: []string{service}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		infos, err := pc.Services(&client.ServicesOptions{Names: []string{service}})
		if err == nil && len(infos) == 1 && infos[0].Current != client.StatusActive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still active 30 s after SIGKILL", service)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// serviceStarts counts the start and restart changes of a service in a Pebble since a change ID.
func serviceStarts(t *testing.T, socket, after, service string) int {
	t.Helper()
	n := 0
	for _, ch := range changesAfter(t, socket, after) {
		if (ch.Kind == "start" || ch.Kind == "restart") && strings.Contains(ch.Summary, `"`+service+`"`) {
			n++
		}
	}
	return n
}

// TestHealthCheckHealsAWorkerAndEscalatesABrokenOne is issue 12 on the real stack: an
// instance whose every component answers is ok (and says so on its workflow's
// SocflowHealth); a worker SIGKILLed is reported degraded and restarted by the next
// check, which the one after finds ok; a worker that dies at every start is restarted
// until the heal limit, then the instance is Blocked naming it with its last output,
// and further checks restart it no more (no restart storm); once it runs again (fixed
// by hand) the instance is ok and Active.
func TestHealthCheckHealsAWorkerAndEscalatesABrokenOne(t *testing.T) {
	c, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: time.Second, workers: 2})
	broken := filepath.Join(t.TempDir(), "broken")
	inst.OpenCTI.WorkerCommand += " -broken-while " + broken
	const limit = 3
	run := startInstanceInput(t, c, queue, workflows.InstanceInput{Instance: inst, HealthEvery: -1,
		Heal: workflows.HealPolicy{Limit: limit, Burst: 20}})
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)

	rep := runHealth(t, c, queue, inst.Name)
	var names []string
	for _, cp := range rep.Components {
		names = append(names, cp.Name)
	}
	want := []string{"opensearch", "rabbitmq", "redis", "s3", "platform", "worker-0", "worker-1", "plan"}
	if rep.Health != workflows.HealthOK || !slices.Equal(names, want) || len(rep.Heals) != 0 {
		t.Fatalf("healthy instance: %+v; want ok with components %v and no heal", rep, want)
	}
	if h := instanceHealth(t, c, id); h != workflows.HealthOK {
		t.Errorf("SocflowHealth of the instance: %q", h)
	}

	killService(t, inst.Pebble.Socket, "worker-0")
	rep = runHealth(t, c, queue, inst.Name)
	if rep.Health != workflows.HealthDegraded || component(rep, "worker-0").Health != workflows.HealthDegraded ||
		healOf(rep, "worker-0").Action != "restarted" || healOf(rep, "worker-0").Error != "" {
		t.Fatalf("after SIGKILL of worker-0: %+v; want degraded and worker-0 restarted", rep)
	}
	if rep = runHealth(t, c, queue, inst.Name); rep.Health != workflows.HealthOK {
		t.Fatalf("after the heal: %+v; want ok", rep)
	}

	// A worker that dies at every start.
	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	before := lastChange(t, inst.Pebble.Socket)
	killService(t, inst.Pebble.Socket, "worker-1")
	for i := range limit {
		rep = runHealth(t, c, queue, inst.Name)
		if h := healOf(rep, "worker-1"); h.Action != "restarted" {
			t.Fatalf("check %d of the broken worker: %+v; want worker-1 restarted", i+1, rep)
		}
		waitService(t, inst.Pebble.Socket, "worker-1", func(s client.ServiceStatus) bool { return s != client.StatusActive })
	}
	rep = runHealth(t, c, queue, inst.Name)
	if h := healOf(rep, "worker-1"); h.Action != "escalated" || !strings.Contains(h.Reason, fmt.Sprintf("worker-1 restarted %d times", limit)) {
		t.Fatalf("check after %d heals: %+v; want worker-1 escalated", limit, rep)
	}
	st := waitInstance(t, c, id, 30*time.Second, "blocked on worker-1", func(s workflows.InstanceStatus) bool {
		return s.Status.Kind == workflows.StatusBlocked && strings.Contains(s.Status.Message, "worker-1 restarted")
	})
	if !strings.Contains(st.Status.Message, "ModuleNotFoundError") {
		t.Errorf("blocked status does not carry the worker's last output: %s", st.Status.Message)
	}
	runHealth(t, c, queue, inst.Name)
	runHealth(t, c, queue, inst.Name)
	if n := serviceStarts(t, inst.Pebble.Socket, before, "worker-1"); n != limit {
		t.Errorf("worker-1 was started %d times since it broke, want exactly %d (the heal limit): a restart storm", n, limit)
	}

	// Fixed by hand: the instance is ok and active again.
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	if _, err := pebbleClient(t, inst.Pebble.Socket).Start(&client.ServiceOptions{Names: []string{"worker-1"}}); err != nil {
		t.Fatal(err)
	}
	waitService(t, inst.Pebble.Socket, "worker-1", func(s client.ServiceStatus) bool { return s == client.StatusActive })
	if rep = runHealth(t, c, queue, inst.Name); rep.Health != workflows.HealthOK {
		t.Errorf("after the fix: %+v", rep)
	}
	waitInstance(t, c, id, 30*time.Second, "active again", activeInstance)
}

// waitService polls a service's state until ok holds.
func waitService(t *testing.T, socket, service string, ok func(client.ServiceStatus) bool) {
	t.Helper()
	pc := pebbleClient(t, socket)
	deadline := time.Now().Add(30 * time.Second)
	for {
		infos, err := pc.Services(&client.ServicesOptions{Names: []string{service}})
		if err == nil && len(infos) == 1 && ok(infos[0].Current) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not in the wanted state after 30 s (%v)", service, infos)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestHealthCheckDependencyDownWaitsThenRecovers: the instance's Redis stops → the
// check reports down with "redis: … connection refused" and the instance Waiting,
// naming it and since when; Redis back → ok and Active, with no human action.
func TestHealthCheckDependencyDownWaitsThenRecovers(t *testing.T) {
	c := temporalClient(t)
	queue := inProcessWorker(t, c, t.TempDir())
	port := freePort(t)
	redis := &redisProcess{t: t, port: port}
	redis.start()
	inst := newInstance(t, instanceOpts{initDelay: time.Second, workers: 1, redisPort: port})
	run := startInstanceInput(t, c, queue, workflows.InstanceInput{Instance: inst, HealthEvery: -1})
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	if rep := runHealth(t, c, queue, inst.Name); rep.Health != workflows.HealthOK {
		t.Fatalf("before: %+v", rep)
	}

	redis.stop()
	rep := runHealth(t, c, queue, inst.Name)
	if r := component(rep, "redis"); rep.Health != workflows.HealthDown || r.Health != workflows.HealthDown || !strings.Contains(r.Reason, "refused") {
		t.Fatalf("redis down: %+v", rep)
	}
	st := waitInstance(t, c, id, 30*time.Second, "waiting on redis", func(s workflows.InstanceStatus) bool {
		return s.Status.Kind == workflows.StatusWaiting && strings.HasPrefix(s.Status.Message, "redis: ")
	})
	if !strings.Contains(st.Status.Message, "refused since ") {
		t.Errorf("waiting status: %q, want the reason and since when", st.Status.Message)
	}
	if h := instanceHealth(t, c, id); h != workflows.HealthDown {
		t.Errorf("SocflowHealth while redis is down: %q", h)
	}

	redis.start()
	deadline := time.Now().Add(2 * time.Minute)
	for rep = runHealth(t, c, queue, inst.Name); rep.Health != workflows.HealthOK; rep = runHealth(t, c, queue, inst.Name) {
		if time.Now().After(deadline) {
			t.Fatalf("redis back, still: %+v", rep)
		}
		time.Sleep(2 * time.Second)
	}
	waitInstance(t, c, id, 30*time.Second, "active again", activeInstance)
}

// redisProcess is a private redis-server a test stops and starts.
type redisProcess struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func (r *redisProcess) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", fmt.Sprint(r.port),
		"--requirepass", os.Getenv("SOCFLOW_REDIS_PASSWORD"), "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("cannot start redis-server: %v", err)
	}
	r.t.Cleanup(r.stop)
	waitPort(r.t, r.port)
}

func (r *redisProcess) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// TestHealthCheckReportsAndRepairsDrift: a worker's environment changed by hand in the
// container (`pebble add` of a layer) is drift: reported with the changed keys, a
// secret's values masked, and re-applied through the instance's change queue, after
// which the plan is the spec's again.
func TestHealthCheckReportsAndRepairsDrift(t *testing.T) {
	c, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: time.Second, workers: 1})
	run := startInstanceInput(t, c, queue, workflows.InstanceInput{Instance: inst, HealthEvery: -1})
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)

	const leaked = "a-token-typed-by-hand"
	edit := "services:\n  worker-0:\n    override: merge\n    environment:\n      WORKER_LOG_LEVEL: debug\n      OPENCTI_TOKEN: " + leaked + "\n"
	if err := pebbleClient(t, inst.Pebble.Socket).AddLayer(&client.AddLayerOptions{Combine: true, Label: opencti.LayerLabel, LayerData: []byte(edit)}); err != nil {
		t.Fatal(err)
	}
	rep := runHealth(t, c, queue, inst.Name)
	if rep.Health != workflows.HealthDegraded || len(rep.Drift) != 1 || rep.Drift[0].Service != "worker-0" {
		t.Fatalf("after the edit: %+v; want degraded with worker-0's drift", rep)
	}
	drift := rep.Drift[0].String()
	if !strings.Contains(drift, "WORKER_LOG_LEVEL info -> debug") || !strings.Contains(drift, "OPENCTI_TOKEN") || strings.Contains(fmt.Sprint(rep), leaked) {
		t.Errorf("drift %q: want the changed keys, the token masked", drift)
	}
	if h := healOf(rep, "plan"); !strings.HasPrefix(h.Action, "re-applying the plan") {
		t.Errorf("heal of the drift: %+v", rep.Heals)
	}
	st := waitInstance(t, c, id, time.Minute, "the drift re-applied", func(s workflows.InstanceStatus) bool {
		return activeInstance(s) && slices.ContainsFunc(s.Recent, func(o workflows.ChangeOutcome) bool {
			return strings.HasPrefix(o.RequestID, "heal-drift-") && o.State == "applied"
		})
	})
	t.Logf("drift repaired: %+v", st.Recent[len(st.Recent)-1])
	if rep = runHealth(t, c, queue, inst.Name); rep.Health != workflows.HealthOK || len(rep.Drift) != 0 {
		t.Errorf("after the re-apply: %+v", rep)
	}
}

// waitPort waits until something listens on 127.0.0.1:port.
func waitPort(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on port %d: %v", port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReadmeHealthCommands runs README's "Health checks" block verbatim against an
// instance whose own schedule the block takes over: the starter creates (updates) the
// schedule, checks once and lists the fleet; temporal pauses, resumes and triggers it;
// tctl describes it and runs one HealthCheck, reading its plain result; temporal finds
// the instance's runs by SocflowHealth; the starter deletes the schedule.
func TestReadmeHealthCommands(t *testing.T) {
	st := stacktest.Get(t)
	c, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: time.Second, workers: 1})
	run := startInstanceInput(t, c, queue, workflows.InstanceInput{Instance: inst, HealthEvery: time.Hour})
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	sched := workflows.HealthScheduleID(inst.Name)
	var desc *tclient.ScheduleDescription
	waitFor(t, 30*time.Second, "the instance's schedule "+sched, func() bool {
		var err error
		desc, err = c.ScheduleClient().GetHandle(context.Background(), sched).Describe(context.Background())
		return err == nil
	})
	if every := desc.Schedule.Spec.Intervals; len(every) != 1 || every[0].Every != time.Hour {
		t.Errorf("schedule created by the instance: %+v, want every 1h", desc.Schedule.Spec)
	}

	cmds := readmeBlock(t, "## Health checks", "schedule", "check", "fleet", "pause", "unpause", "trigger", "describe", "tctl run", "list", "delete")
	tctlID := sched + "-tctl"
	terminateAtEnd(t, c, tctlID)
	local := strings.NewReplacer(
		"127.0.0.1:7233", st.TemporalAddress,
		"--taskqueue socflow", "--taskqueue "+queue,
		"health-demo-tctl", tctlID,
		"health-demo", sched,
		`"instance": "demo"`, `"instance": "`+inst.Name+`"`,
		"'demo'", "'"+inst.Name+"'",
		" demo", " "+inst.Name,
	)
	runCmd, must := readmeRunner(t, t.TempDir(), local, cmds, "SOCFLOW_TASK_QUEUE="+queue)
	if out := must(0); !strings.Contains(out, "every 1m0s (updated)") {
		t.Errorf("starter health schedule:\n%s", out)
	}
	if out := must(1); !strings.Contains(out, inst.Name+": ok") || !strings.Contains(out, "worker-0") {
		t.Errorf("starter health check:\n%s", out)
	}
	if out := must(2); !regexp.MustCompile(`(?m)^` + inst.Name + `\s+ok\s+active$`).MatchString(out) {
		t.Errorf("starter health (fleet) does not list %s ok and active:\n%s", inst.Name, out)
	}
	must(3)
	if d, err := c.ScheduleClient().GetHandle(context.Background(), sched).Describe(context.Background()); err != nil || !d.Schedule.State.Paused {
		t.Errorf("after temporal's pause: paused %v (%v)", d != nil && d.Schedule.State.Paused, err)
	}
	must(4)
	before := countRuns(t, c, inst.Name)
	must(5)
	waitFor(t, time.Minute, "the triggered HealthCheck", func() bool { return countRuns(t, c, inst.Name) > before })
	if out := must(6); !strings.Contains(out, workflows.HealthCheckWorkflow) || !strings.Contains(out, `"interval":"60s"`) {
		t.Errorf("tctl schedule describe:\n%s", out)
	}
	if out := must(7); !strings.Contains(out, `"health":"ok"`) || strings.Contains(out, "binary/encrypted") {
		t.Errorf("tctl's HealthCheck did not return the plain report:\n%s", out)
	}
	if out := must(8); !strings.Contains(out, workflows.HealthCheckWorkflow) {
		t.Errorf("temporal workflow list by SocflowHealth:\n%s", out)
	}
	if out := must(9); !strings.Contains(out, "deleted") {
		t.Errorf("starter health delete:\n%s", out)
	}
	if _, err := c.ScheduleClient().GetHandle(context.Background(), sched).Describe(context.Background()); err == nil {
		t.Errorf("schedule %s still there after the delete", sched)
	}
	if out, err := runCmd(cmds[9]); err != nil {
		t.Errorf("a second delete is not idempotent: %v\n%s", err, out)
	}
}

// countRuns counts the instance's HealthCheck runs in visibility.
func countRuns(t testing.TB, c tclient.Client, instance string) int {
	t.Helper()
	return countWorkflows(t, c, healthRuns(instance))
}

// healthRuns is the visibility query for the instance's HealthCheck runs.
func healthRuns(instance string) string {
	return fmt.Sprintf("WorkflowType = '%s' AND SocflowInstance = '%s'", workflows.HealthCheckWorkflow, instance)
}

// countWorkflows counts the executions a visibility query finds.
func countWorkflows(t testing.TB, c tclient.Client, query string) int {
	t.Helper()
	resp, err := c.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{Query: query})
	if err != nil {
		t.Fatal(err)
	}
	return int(resp.GetCount())
}

// waitFor polls cond until it holds or limit passes.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestHealthScheduleSurvivesServerAndWorkerRestart: the schedule the instance creates
// is the server's: on a private dev server, it goes on starting health checks after
// the worker is replaced and after the server is stopped and started again on the same
// database; paused, it starts none; resumed, it starts them again.
func TestHealthScheduleSurvivesServerAndWorkerRestart(t *testing.T) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	srv := &restartableServer{addr: addr, db: filepath.Join(t.TempDir(), "temporal.db")}
	t.Cleanup(func() { srv.stop(t) })
	srv.start(t)
	c := stacktest.TemporalClient(t, addr, quietLogger())
	secretDir := t.TempDir()
	queue := fmt.Sprintf("e2e-health-restart-%d", time.Now().UnixNano())
	stopWorker := func() {}
	startWorker := func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- workerapp.Run(ctx, workerapp.Config{TaskQueue: queue, SecretDir: secretDir, InflightDir: secretDir + "-inflight", Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}, c)
		}()
		stopWorker = func() { cancel(); <-done }
	}
	startWorker()
	t.Cleanup(func() { stopWorker() })
	inst := newInstance(t, instanceOpts{initDelay: time.Second, workers: 1})
	run := startInstanceInput(t, c, queue, workflows.InstanceInput{Instance: inst, HealthEvery: 3 * time.Second})
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	checks := func() int { return countRuns(t, c, inst.Name) }
	more := func(what string) {
		t.Helper()
		n := checks()
		waitFor(t, time.Minute, what, func() bool { return checks() > n })
	}
	more("a scheduled health check")

	stopWorker()
	startWorker()
	more("a scheduled health check after the worker was replaced")

	srv.stop(t)
	time.Sleep(2 * time.Second)
	srv.start(t)
	more("a scheduled health check after the server restarted on its database")
	if h := instanceHealth(t, c, id); h != workflows.HealthOK {
		t.Errorf("SocflowHealth after the restarts: %q", h)
	}

	h := c.ScheduleClient().GetHandle(context.Background(), workflows.HealthScheduleID(inst.Name))
	if err := h.Pause(context.Background(), tclient.SchedulePauseOptions{Note: "test"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // a start decided before the pause may still land
	n := checks()
	time.Sleep(8 * time.Second)
	if got := checks(); got != n {
		t.Errorf("paused schedule started %d health checks", got-n)
	}
	if err := h.Unpause(context.Background(), tclient.ScheduleUnpauseOptions{Note: "test"}); err != nil {
		t.Fatal(err)
	}
	more("a scheduled health check after the schedule was resumed")
}
