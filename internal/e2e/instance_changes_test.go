package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	tclient "go.temporal.io/sdk/client"
	"sigs.k8s.io/yaml"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/workflows"
)

// The end-to-end tests of the instance's changes besides SetConfig (SetIntegration,
// RemoveIntegration, RotateSecret, ApplySpec), its Preview query, changes sent during
// the deploy, a burst of concurrent changes across Continue-As-New, and bad input of
// every change, on the real stack.

// previewOf asks the instance's preview query what a change would do.
func previewOf(t *testing.T, c tclient.Client, id string, req workflows.PreviewRequest) workflows.Preview {
	t.Helper()
	p, err := queryPreview(c, id, req)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// queryPreview is previewOf for goroutines other than the test's.
func queryPreview(c tclient.Client, id string, req workflows.PreviewRequest) (workflows.Preview, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var p workflows.Preview
	v, err := c.QueryWorkflow(ctx, id, "", workflows.PreviewQuery, req)
	if err != nil {
		return p, fmt.Errorf("preview query: %w", err)
	}
	if err := v.Get(&p); err != nil {
		return p, fmt.Errorf("preview query result: %w", err)
	}
	return p, nil
}

// instanceStatus is one status query of the instance.
func instanceStatus(t *testing.T, c tclient.Client, id string) workflows.InstanceStatus {
	t.Helper()
	return waitInstance(t, c, id, 10*time.Second, "any status", func(workflows.InstanceStatus) bool { return true })
}

// previewThenApply asks the preview of a change, then applies req as the named Update
// and waits for its result: the test fails when the change fails (what names it), and
// errs where the preview did not say what the change then did.
func previewThenApply(t *testing.T, c tclient.Client, id, what string, preview workflows.PreviewRequest, name string, req any) (workflows.Preview, workflows.ChangeResult) {
	t.Helper()
	p := previewOf(t, c, id, preview)
	res, err := applyChange(t, c, id, name, req)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Logf("%s: %+v", what, res)
	if d := previewMatches(p, res); d != "" {
		t.Errorf("%s: preview %+v differs from the result: %s", what, p, d)
	}
	return p, res
}

// previewMatches reports how a preview differs from the result of the same change
// ("" when it said what the change then did).
func previewMatches(p workflows.Preview, r workflows.ChangeResult) string {
	var diffs []string
	eq := func(what string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			diffs = append(diffs, fmt.Sprintf("%s: preview %v, result %v", what, a, b))
		}
	}
	eq("kind", p.Kind, r.Kind)
	eq("summary", p.Summary, r.Summary)
	eq("restart/restarted", slices.Clip(p.Restart), slices.Clip(r.Restarted))
	eq("start/started", slices.Clip(p.Start), slices.Clip(r.Started))
	eq("stop/stopped", slices.Clip(p.Stop), slices.Clip(r.Stopped))
	eq("blocked", p.Blocked, r.Blocked)
	if p.Invalid != "" {
		diffs = append(diffs, "preview says invalid: "+p.Invalid)
	}
	return strings.Join(diffs, "; ")
}

// firstIndex is the index of the first message containing s, or -1.
func firstIndex(msgs []string, s string) int {
	return slices.IndexFunc(msgs, func(m string) bool { return strings.Contains(m, s) })
}

// planEnv is the environment of a service in the container's plan.
func planEnv(t *testing.T, socket, service string) map[string]string {
	t.Helper()
	var plan struct {
		Services map[string]struct {
			Environment map[string]string `json:"environment"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal(planBytes(t, socket), &plan); err != nil {
		t.Fatalf("cannot parse the plan: %v", err)
	}
	return plan.Services[service].Environment
}

// procEnv is the environment of a running process, from /proc.
func procEnv(t *testing.T, pid int) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range strings.Split(string(raw), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

// waitSocflowStatus polls the run's SocflowStatus search attribute until it is want.
func waitSocflowStatus(t *testing.T, c tclient.Client, run tclient.WorkflowRun, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := socflowStatus(t, c, run)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("SocflowStatus %q, want %q", got, want)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var workers3 = []string{"worker-0", "worker-1", "worker-2"}

// TestInstanceRedisPasswordChangeRestartsPlatformThenWorkers: the instance runs on a
// private Redis; its password is changed in Redis itself (CONFIG SET requirepass),
// then SetIntegration sends the redis section with the new password. The platform
// restarts once (its REDIS__PASSWORD changed, shown masked), and only once it is
// healthy again the workers restart (they follow the platform's integration
// settings); Pebble's change list holds exactly those two restarts; the platform
// process runs with the new password.
func TestInstanceRedisPasswordChangeRestartsPlatformThenWorkers(t *testing.T) {
	port := freePort(t)
	privateRedis(t, port)()
	c, inst, run := activeInstanceRun(t, instanceOpts{initDelay: time.Second, redisPort: port}, 0)
	id := run.GetID()
	if env := planEnv(t, inst.Pebble.Socket, opencti.PlatformService); env["REDIS__PASSWORD"] != os.Getenv("SOCFLOW_REDIS_PASSWORD") {
		t.Fatalf("the deployed plan's REDIS__PASSWORD is not the private Redis's first password")
	}
	before := lastChange(t, inst.Pebble.Socket)
	starts := platformStarts(t, inst.Pebble.Socket)

	// The new password, set in the real Redis: new connections need it from now on.
	newPassword := fmt.Sprintf("redis-b-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	rdb := redis.NewClient(&redis.Options{Addr: addr, Password: os.Getenv("SOCFLOW_REDIS_PASSWORD")})
	defer rdb.Close()
	if err := rdb.ConfigSet(ctx, "requirepass", newPassword).Err(); err != nil {
		t.Fatalf("CONFIG SET requirepass: %v", err)
	}
	withNew := redis.NewClient(&redis.Options{Addr: addr, Password: newPassword})
	defer withNew.Close()
	if err := withNew.Ping(ctx).Err(); err != nil {
		t.Fatalf("the new Redis password does not work: %v", err)
	}

	section := *inst.Integrations.Redis
	section.Password = spec.SecretRef(newPassword) // a literal: fine on the local stack
	_, res := previewThenApply(t, c, id, "SetIntegration redis", workflows.PreviewRequest{SetIntegration: &workflows.SetIntegrationRequest{Redis: &section}},
		workflows.SetIntegrationUpdate, workflows.SetIntegrationRequest{RequestID: "redis-password", Redis: &section})
	if got := strings.Join(res.Restarted, ","); got != "platform,worker-0,worker-1,worker-2" || len(res.Started) != 0 || len(res.Stopped) != 0 ||
		res.Blocked != "" || res.Kind != workflows.SetIntegrationUpdate {
		t.Errorf("result %+v: want the platform, then worker-0..2 restarted, nothing else", res)
	}
	var platformKeys []string
	for _, ch := range res.Changed {
		if ch.Service != opencti.PlatformService {
			continue
		}
		for _, e := range ch.Env {
			platformKeys = append(platformKeys, e.Key)
			if e.Key == "REDIS__PASSWORD" && (e.Old != "<secret>" || e.New != "<secret>") {
				t.Errorf("REDIS__PASSWORD shown as %q -> %q, want both masked as <secret>", e.Old, e.New)
			}
		}
	}
	if !slices.Contains(platformKeys, "REDIS__PASSWORD") {
		t.Errorf("changed %+v does not name the platform's REDIS__PASSWORD", res.Changed)
	}
	if strings.Contains(fmt.Sprintf("%+v", res), newPassword) {
		t.Errorf("the result shows the new password: %+v", res)
	}
	st := waitInstance(t, c, id, 30*time.Second, "active", activeInstance)
	if st.Status.Kind != workflows.StatusActive || len(st.Missing) != 0 {
		t.Errorf("status after the change %+v", st)
	}

	// Pebble: one restart of the platform, then one of the workers, nothing else.
	changes := changesAfter(t, inst.Pebble.Socket, before)
	var list []string
	for _, ch := range changes {
		list = append(list, changeLine(ch))
	}
	t.Logf("pebble changes after the change:\n%s", strings.Join(list, "\n"))
	if len(changes) != 2 || changes[0].Kind != "restart" || changes[0].Summary != `Restart service "platform"` ||
		changes[1].Kind != "restart" || !strings.Contains(changes[1].Summary, `"worker-0"`) || strings.Contains(changes[1].Summary, `"platform"`) {
		t.Errorf("pebble changes %q: want exactly one restart of the platform, then one of the workers", list)
	} else if changes[1].SpawnTime.Before(changes[0].ReadyTime) {
		t.Errorf("the workers' restart began at %s, before the platform's restart was done at %s", changes[1].SpawnTime, changes[0].ReadyTime)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != starts+1 {
		t.Errorf("platform started %d times, want %d (once more)", n, starts+1)
	}
	if env := planEnv(t, inst.Pebble.Socket, opencti.PlatformService); env["REDIS__PASSWORD"] != newPassword {
		t.Errorf("the plan's platform REDIS__PASSWORD is not the new password")
	}
	if env := procEnv(t, platformPID(t, inst.Name)); env["REDIS__PASSWORD"] != newPassword {
		t.Errorf("the running platform's REDIS__PASSWORD is not the new password")
	}
	if got := activeServices(t, inst.Pebble.Socket); strings.Join(got, ",") != "platform,worker-0,worker-1,worker-2" {
		t.Errorf("active services %v", got)
	}
}

// TestInstanceRemovedIntegrationBlocksAndResumes: RemoveIntegration s3 stops the
// workers and blocks the instance with the charm's words, leaving the platform running
// untouched; SetIntegration with the original section starts the workers again, and
// the platform is never restarted. The Preview asked before each change says what it
// then did.
func TestInstanceRemovedIntegrationBlocksAndResumes(t *testing.T) {
	c, inst, run := activeInstanceRun(t, instanceOpts{initDelay: time.Second}, 0)
	id := run.GetID()
	before := lastChange(t, inst.Pebble.Socket)
	starts := platformStarts(t, inst.Pebble.Socket)

	// workersOnly checks what a change (the removal, the restore) left once applied:
	// the SocflowStatus search attribute, the active services, Pebble's changes after
	// mark all doing kind (stop, start) to workers only, and the platform never restarted.
	workersOnly := func(what, mark, kind string, status workflows.StatusKind, active []string) {
		t.Helper()
		waitSocflowStatus(t, c, run, string(status))
		if got := activeServices(t, inst.Pebble.Socket); !slices.Equal(got, active) {
			t.Errorf("active services after the %s %v, want %v", what, got, active)
		}
		for _, ch := range pebbleChanges(t, inst.Pebble.Socket, mark) {
			if !strings.Contains(ch, " "+kind+": ") || strings.Contains(ch, `"platform"`) {
				t.Errorf("the %s did more than %s the workers: %q", what, kind, ch)
			}
		}
		if n := platformStarts(t, inst.Pebble.Socket); n != starts {
			t.Errorf("platform started %d times after the %s, want %d (untouched)", n, what, starts)
		}
	}

	preview, res := previewThenApply(t, c, id, "RemoveIntegration s3", workflows.PreviewRequest{RemoveIntegration: &workflows.RemoveIntegrationRequest{Integration: "s3"}},
		workflows.RemoveIntegrationUpdate, workflows.RemoveIntegrationRequest{RequestID: "remove-s3", Integration: "s3"})
	if res.Blocked != "missing integration(s): s3" || !slices.Equal(res.Stopped, workers3) || len(res.Restarted) != 0 || len(res.Started) != 0 || res.Error != "" {
		t.Errorf("removal result %+v: want blocked on s3 with worker-0..2 stopped, nothing else", res)
	}
	if !slices.Equal(preview.Unchanged, []string{opencti.PlatformService}) {
		t.Errorf("removal preview leaves %v unchanged, want the platform", preview.Unchanged)
	}
	st := waitInstance(t, c, id, 10*time.Second, "blocked", func(s workflows.InstanceStatus) bool { return s.Pending == 0 })
	if st.Status.Kind != workflows.StatusBlocked || !strings.HasPrefix(st.Status.Message, "missing integration(s): s3") || !slices.Equal(st.Missing, []string{"s3"}) {
		t.Errorf("status after the removal %+v: want blocked on missing s3", st)
	}
	workersOnly("removal", before, "stop", workflows.StatusBlocked, []string{opencti.PlatformService})

	mid := lastChange(t, inst.Pebble.Socket)
	_, res = previewThenApply(t, c, id, "SetIntegration s3", workflows.PreviewRequest{SetIntegration: &workflows.SetIntegrationRequest{S3: inst.Integrations.S3}},
		workflows.SetIntegrationUpdate, workflows.SetIntegrationRequest{RequestID: "restore-s3", S3: inst.Integrations.S3})
	if !slices.Equal(res.Started, workers3) || len(res.Restarted) != 0 || len(res.Stopped) != 0 || res.Blocked != "" || res.Error != "" {
		t.Errorf("restore result %+v: want worker-0..2 started, nothing else", res)
	}
	st = waitInstance(t, c, id, 10*time.Second, "active", activeInstance)
	if len(st.Missing) != 0 {
		t.Errorf("status after the restore %+v", st)
	}
	workersOnly("restore", mid, "start", workflows.StatusActive, append([]string{opencti.PlatformService}, workers3...))
}

// TestInstanceChangeDuringInitWaitsForHealthy: a change accepted while the deploy's
// platform still initialises waits for the deploy; the platform is then restarted once
// (after its first boot finished and the deploy closed), never during its init.
func TestInstanceChangeDuringInitWaitsForHealthy(t *testing.T) {
	c, inst, run := newInstanceRun(t, instanceOpts{initDelay: 20 * time.Second}, 0)
	id := run.GetID()
	waitStatus(t, c, workflows.DeployWorkflowID(inst.Name), 2*time.Minute, "waiting for the platform",
		func(s workflows.DeployStatus) bool { return s.Phase == workflows.PhaseWaitingPlatform })

	change := workflows.SetConfigRequest{LogLevel: opencti.LogDebug}
	preview := previewOf(t, c, id, workflows.PreviewRequest{SetConfig: &change})
	if !strings.Contains(strings.Join(preview.Notes, "\n"), "the deploy has not finished") {
		t.Errorf("preview during the deploy %+v does not note the deploy", preview)
	}
	change.RequestID = "debug-during-init"
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	h, err := sendChange(ctx, c, id, workflows.SetConfigUpdate, "", change, tclient.WorkflowUpdateStageAccepted)
	if err != nil {
		t.Fatalf("SetConfig during init not accepted: %v", err)
	}
	accepted := time.Now()
	st := instanceStatus(t, c, id)
	msgs := serviceLogs(t, inst.Pebble.Socket, opencti.PlatformService)
	if st.Deployed || st.Pending != 1 || firstIndex(msgs, "[OPENCTI] Starting platform") < 0 || firstIndex(msgs, "[OPENCTI] API ready") >= 0 {
		t.Fatalf("the change was not accepted while the platform initialised: status %+v, platform log %q", st, msgs)
	}

	var res workflows.ChangeResult
	if err := h.Get(ctx, &res); err != nil {
		t.Fatalf("SetConfig during init: %v", err)
	}
	t.Logf("accepted during init, result %s later: %+v", time.Since(accepted).Round(100*time.Millisecond), res)
	if got := strings.Join(res.Restarted, ","); got != "platform,worker-0,worker-1,worker-2" || len(res.Started) != 0 || len(res.Stopped) != 0 {
		t.Errorf("result %+v: want the platform restarted once, then the workers", res)
	}
	if d := previewMatches(preview, res); d != "" {
		t.Errorf("preview %+v differs from the result: %s", preview, d)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 2 {
		t.Errorf("platform started %d times, want 2 (the first boot, the change's restart)", n)
	}
	// The first boot finished before anything stopped the platform.
	msgs = serviceLogs(t, inst.Pebble.Socket, opencti.PlatformService)
	ready, stop := firstIndex(msgs, "[INIT] Platform initialization done"), firstIndex(msgs, "SIGTERM signal received")
	if ready < 0 || stop < 0 || stop < ready {
		t.Errorf("platform log: init done at line %d, first SIGTERM at line %d; want the stop after the init", ready, stop)
	}
	// The platform's only restart began after the deploy closed.
	desc, err := c.DescribeWorkflowExecution(ctx, workflows.DeployWorkflowID(inst.Name), "")
	if err != nil {
		t.Fatal(err)
	}
	info := desc.GetWorkflowExecutionInfo()
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("deploy child %s", info.GetStatus())
	}
	closed := info.GetCloseTime().AsTime()
	var restarts []string
	for _, ch := range changesAfter(t, inst.Pebble.Socket, "") {
		if ch.Kind == "restart" || ch.Kind == "stop" {
			restarts = append(restarts, ch.Summary)
			if ch.SpawnTime.Before(closed) {
				t.Errorf("pebble change %s %q began at %s, before the deploy closed at %s", ch.ID, ch.Summary, ch.SpawnTime, closed)
			}
		}
	}
	if len(restarts) != 2 || restarts[0] != `Restart service "platform"` {
		t.Errorf("restarts and stops %q: want one of the platform, then one of the workers", restarts)
	}
	st = waitInstance(t, c, id, 30*time.Second, "active", activeInstance)
	if st.LogLevel != opencti.LogDebug {
		t.Errorf("log level %q after the change, want debug", st.LogLevel)
	}
}

// burstChange is one change of the burst, as its client saw it.
type burstChange struct {
	id       string
	req      workflows.SetConfigRequest
	summary  string // what the change does, known when it is accepted
	preview  workflows.Preview
	res      workflows.ChangeResult
	logLevel bool
}

// TestInstanceBurstOfChangesAcrossContinueAsNew: 50 changes from 5 concurrent
// clients (10 rounds of one change each), with Continue-As-New after 10 events. Each
// client previews its change and has it accepted under one lock (so the preview is
// computed on top of exactly the queue the change joins), then waits for the result.
// Every change is applied exactly once, in the order accepted, and did what its
// preview said; the workflow continued as new during the burst; a repeated request ID
// returns its first result and changes nothing.
func TestInstanceBurstOfChangesAcrossContinueAsNew(t *testing.T) {
	c, inst, run := newInstanceRun(t, instanceOpts{initDelay: time.Second}, 10)
	id := run.GetID()
	// The deploy's events alone pass the threshold: the first run continues as new once
	// the instance is active.
	waitInstance(t, c, id, 3*time.Minute, "active in its second run", func(s workflows.InstanceStatus) bool {
		return activeInstance(s) && s.Runs == 2
	})
	before := lastChange(t, inst.Pebble.Socket)
	began := time.Now()

	const clients, each = 5, 10
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var (
		mu       sync.Mutex
		accepted []*burstChange // in the order accepted
		workers  = 3            // as the accepted changes leave them
		level    = opencti.LogInfo
	)
	// send is one client's change k: preview and acceptance under the lock, then the
	// wait for its result outside it.
	send := func(g, k int) {
		bc := &burstChange{id: fmt.Sprintf("burst-%d-%d", g, k)}
		mu.Lock()
		seq := len(accepted)
		// Every 12th change flips the log level (restarting the platform and the
		// workers); the others flip the workers between 3 and 4.
		if seq%12 == 11 {
			next := map[opencti.LogLevel]opencti.LogLevel{opencti.LogInfo: opencti.LogDebug, opencti.LogDebug: opencti.LogInfo}[level]
			bc.req = workflows.SetConfigRequest{LogLevel: next}
			bc.summary = fmt.Sprintf("logLevel %s -> %s", level, next)
			bc.logLevel = true
		} else {
			next := 7 - workers
			bc.req = workflows.SetConfigRequest{Workers: &next}
			bc.summary = fmt.Sprintf("workers %d -> %d", workers, next)
		}
		prev := bc.req
		p, err := queryPreview(c, id, workflows.PreviewRequest{SetConfig: &prev})
		if err != nil {
			mu.Unlock()
			t.Errorf("%s: %v", bc.id, err)
			return
		}
		bc.preview = p
		bc.req.RequestID = bc.id
		h, err := sendChange(ctx, c, id, workflows.SetConfigUpdate, "", bc.req, tclient.WorkflowUpdateStageAccepted)
		if err != nil {
			mu.Unlock()
			t.Errorf("%s: not accepted: %v", bc.id, err)
			return
		}
		accepted = append(accepted, bc)
		if bc.logLevel {
			level = bc.req.LogLevel
		} else {
			workers = *bc.req.Workers
		}
		mu.Unlock()
		if err := h.Get(ctx, &bc.res); err != nil {
			t.Errorf("%s: %v", bc.id, err)
		}
	}
	// The clients meet after each of their changes: the queue then drains and the run
	// continues as new, while the next round's first changes arrive, so the burst
	// crosses Continue-As-New about ten times (without the meeting, five clients keep
	// the queue from ever draining, and the run continues only after the burst).
	var wg sync.WaitGroup
	for k := range each {
		for g := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				send(g, k)
			}()
		}
		wg.Wait()
	}
	t.Logf("%d changes applied in %s", len(accepted), time.Since(began).Round(100*time.Millisecond))
	if len(accepted) != clients*each {
		t.Fatalf("%d changes accepted, want %d", len(accepted), clients*each)
	}

	done := time.Now()
	// The run that applied the last change continues as new once its handlers finished.
	st := waitInstance(t, c, id, 30*time.Second, "active", activeInstance)
	for deadline := time.Now().Add(20 * time.Second); st.Runs <= 2 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		st = instanceStatus(t, c, id)
	}
	var during []string
	crossed := 0
	for _, r := range runStarts(t, c, id) {
		if r.After(began) {
			during = append(during, fmt.Sprintf("%+.1fs", r.Sub(done).Seconds()))
			if r.Before(done) {
				crossed++
			}
		}
	}
	t.Logf("runs: %d; runs begun since the burst began, relative to its end: %v", st.Runs, during)
	if crossed < 2 {
		t.Errorf("%d run(s) began during the burst, want at least 2: the burst did not cross Continue-As-New", crossed)
	}
	seen := map[string]bool{}
	wantChanges, logLevels, mismatches := 0, 0, 0
	for i, bc := range accepted {
		r := bc.res
		if r.RequestID != bc.id || seen[bc.id] || r.Error != "" {
			t.Errorf("change %d %s: result %+v (seen before: %v)", i, bc.id, r, seen[bc.id])
		}
		seen[bc.id] = true
		// The summary says what the change did to the spec the changes accepted
		// before it left: it was applied after them.
		if r.Summary != bc.summary {
			t.Errorf("change %d %s: summary %q, want %q (applied out of order?)", i, bc.id, r.Summary, bc.summary)
		}
		var verb, names string
		switch {
		case bc.logLevel:
			logLevels++
			verb, names = "restarted", "platform,"+strings.Join(opencti.WorkerServices(workersAfter(accepted, i)), ",")
			wantChanges += 2
		case *bc.req.Workers == 4:
			verb, names = "started", "worker-3"
			wantChanges++
		default:
			verb, names = "stopped", "worker-3"
			wantChanges++
		}
		for v, got := range map[string][]string{"restarted": r.Restarted, "started": r.Started, "stopped": r.Stopped} {
			want := map[bool]string{true: names}[v == verb]
			if strings.Join(got, ",") != want {
				t.Errorf("change %d %s (%s): %s %v, want %q", i, bc.id, bc.summary, v, got, want)
			}
		}
		// Each change's preview, asked under the lock just before it was accepted, says
		// what the change then did (the change being applied counts: it stays queued
		// until recorded).
		if d := previewMatches(bc.preview, r); d != "" {
			mismatches++
			t.Errorf("change %d %s (%s): preview (pending %d) differs from the result: %s", i, bc.id, bc.summary, bc.preview.Pending, d)
		}
	}
	if mismatches > 0 {
		t.Errorf("%d of %d previews differ from their results", mismatches, len(accepted))
	}
	last := accepted[len(accepted)-1]
	wantWorkers := workersAfter(accepted, len(accepted))
	if st.Workers != wantWorkers {
		t.Errorf("status workers %d, want %d (the last accepted workers change)", st.Workers, wantWorkers)
	}
	if want := map[bool]opencti.LogLevel{false: opencti.LogInfo, true: opencti.LogDebug}[logLevels%2 == 1]; st.LogLevel != want {
		t.Errorf("status log level %s, want %s", st.LogLevel, want)
	}
	// The status lists the latest changes in the order they were applied: the order
	// accepted.
	var recent, wantRecent []string
	for _, o := range st.Recent {
		recent = append(recent, o.RequestID)
	}
	for _, bc := range accepted[len(accepted)-len(st.Recent):] {
		wantRecent = append(wantRecent, bc.id)
	}
	if len(st.Recent) == 0 || !slices.Equal(recent, wantRecent) || recent[len(recent)-1] != last.id {
		t.Errorf("recent %v, want the last accepted in order %v", recent, wantRecent)
	}
	if st.Runs <= 2 {
		t.Errorf("runs %d: with Continue-As-New after 10 events the workflow should have continued as new at least twice", st.Runs)
	}
	// Exactly once: Pebble holds one change per service started, one per stop, and two
	// per log level change (the platform's restart, then the workers').
	var acts []string
	for _, ch := range changesAfter(t, inst.Pebble.Socket, before) {
		if ch.Kind == "start" || ch.Kind == "stop" || ch.Kind == "restart" {
			acts = append(acts, changeLine(ch))
		}
	}
	if len(acts) != wantChanges {
		t.Errorf("pebble holds %d start/stop/restart changes after the burst, want %d:\n%s", len(acts), wantChanges, strings.Join(acts, "\n"))
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 1+logLevels {
		t.Errorf("platform started %d times, want %d (the deploy and one per log level change)", n, 1+logLevels)
	}
	want := "platform," + strings.Join(opencti.WorkerServices(wantWorkers), ",")
	if got := activeServices(t, inst.Pebble.Socket); strings.Join(got, ",") != want {
		t.Errorf("active services %v, want %s", got, want)
	}

	// The first request again, in the latest run: its first result, nothing done.
	mark := lastChange(t, inst.Pebble.Socket)
	first := accepted[0]
	again, err := applyChange(t, c, id, workflows.SetConfigUpdate, first.req)
	if err != nil || !reflect.DeepEqual(again, first.res) {
		t.Errorf("repeated request %s: %+v %v, want its first result %+v", first.id, again, err, first.res)
	}
	if ch := pebbleChanges(t, inst.Pebble.Socket, mark); len(ch) != 0 {
		t.Errorf("a repeated request changed the container: %q", ch)
	}
}

// runStarts are the start times of the workflow's runs, from the server's visibility.
func runStarts(t *testing.T, c tclient.Client, id string) []time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []time.Time
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = %q", id), NextPageToken: token,
		})
		if err != nil {
			t.Fatalf("cannot list the runs of %s: %v", id, err)
		}
		for _, e := range resp.GetExecutions() {
			out = append(out, e.GetStartTime().AsTime())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// workersAfter is the worker count the first n accepted changes leave.
func workersAfter(accepted []*burstChange, n int) int {
	for i := n - 1; i >= 0; i-- {
		if !accepted[i].logLevel {
			return *accepted[i].req.Workers
		}
	}
	return 3
}

// updateEvents maps each update ID in the run's history to its events' types.
func updateEvents(t *testing.T, c tclient.Client, run tclient.WorkflowRun) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, e := range historyEvents(t, c, run.GetID(), run.GetRunID()) {
		if id := updateIDOf(e); id != "" {
			out[id] = append(out[id], e.GetEventType().String())
		}
	}
	return out
}

// updateIDOf is the update ID of an update event ("" for other events).
func updateIDOf(e *historypb.HistoryEvent) string {
	switch e.GetEventType() {
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED:
		return e.GetWorkflowExecutionUpdateAdmittedEventAttributes().GetRequest().GetMeta().GetUpdateId()
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
		return e.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest().GetMeta().GetUpdateId()
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED:
		return e.GetWorkflowExecutionUpdateRejectedEventAttributes().GetRejectedRequest().GetMeta().GetUpdateId()
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
		return e.GetWorkflowExecutionUpdateCompletedEventAttributes().GetMeta().GetUpdateId()
	}
	return ""
}

// TestInstanceRejectsBadInputOfEveryChange: bad input of every change, sent as an
// Update, is rejected naming the field and leaves nothing in the history; sent as a
// Signal, it is listed as rejected in the status, naming the field, and the workflow
// keeps running and still applies a good change.
func TestInstanceRejectsBadInputOfEveryChange(t *testing.T) {
	c, inst, run := activeInstanceRun(t, instanceOpts{initDelay: time.Second}, 0)
	id := run.GetID()
	before := lastChange(t, inst.Pebble.Socket)

	type badInput struct {
		name, json, field string
	}
	bad := []badInput{
		{workflows.SetConfigUpdate, `{"workers": -1}`, "opencti.workers: must be at least 1 (got -1)"},
		{workflows.SetConfigUpdate, `{"workers": "five"}`, "workers: must be a whole number (got a JSON string)"},
		{workflows.SetConfigUpdate, `{}`, "(input): changes nothing"},
		{workflows.SetIntegrationUpdate, `{"mongodb": {}}`, "mongodb: is not a field"},
		{workflows.SetIntegrationUpdate, `{"redis": {"port": "six"}}`, "redis.port: must be a whole number (got a JSON string)"},
		{workflows.SetIntegrationUpdate, `{"redis": {"port": 70000}}`, "integrations.redis.port"},
		{workflows.RemoveIntegrationUpdate, `{"integration": "mongodb"}`, "integration: is not an integration of OpenCTI"},
		{workflows.RemoveIntegrationUpdate, `{"integration": 3}`, "integration: must be a string"},
		{workflows.RotateSecretUpdate, `{"secret": "nope"}`, "secret: is not a secret of an OpenCTI instance"},
		{workflows.RotateSecretUpdate, `{"secret": "opencti.encryptionKey"}`, "secret: opencti.encryptionKey cannot be rotated"},
		{workflows.ApplySpecUpdate, `{"spec": {"name": "other"}}`, "spec.name: is \"other\""},
		{workflows.ApplySpecUpdate, `{"spec": "all of it"}`, "spec: must be"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var updateIDs []string
	for i, b := range bad {
		updateID := fmt.Sprintf("bad-update-%d", i)
		updateIDs = append(updateIDs, updateID)
		h, err := sendChange(ctx, c, id, b.name, updateID, json.RawMessage(b.json), tclient.WorkflowUpdateStageCompleted)
		if err == nil {
			var res workflows.ChangeResult
			err = h.Get(ctx, &res)
		}
		if err == nil || !strings.Contains(err.Error(), b.field) || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("%s %s: %v, want a rejection naming %q with the fix", b.name, b.json, err, b.field)
		}
	}
	events := updateEvents(t, c, run)
	for _, u := range updateIDs {
		if len(events[u]) > 0 {
			t.Errorf("rejected update %s left %v in the history", u, events[u])
		}
	}
	if ch := pebbleChanges(t, inst.Pebble.Socket, before); len(ch) != 0 {
		t.Errorf("rejected updates changed the container: %q", ch)
	}

	// The same inputs as signals, each with a request ID to find it by.
	for i, b := range bad {
		var doc map[string]any
		if err := json.Unmarshal([]byte(b.json), &doc); err != nil {
			t.Fatal(err)
		}
		doc["requestId"] = fmt.Sprintf("bad-signal-%d", i)
		if err := c.SignalWorkflow(ctx, id, "", b.name, doc); err != nil {
			t.Fatalf("signal %s: %v", b.name, err)
		}
	}
	st := waitInstance(t, c, id, 30*time.Second, "every bad signal listed", func(s workflows.InstanceStatus) bool {
		n := 0
		for _, o := range s.Recent {
			if strings.HasPrefix(o.RequestID, "bad-signal-") {
				n++
			}
		}
		return n == len(bad)
	})
	for i, b := range bad {
		reqID := fmt.Sprintf("bad-signal-%d", i)
		j := slices.IndexFunc(st.Recent, func(o workflows.ChangeOutcome) bool { return o.RequestID == reqID })
		if o := st.Recent[j]; o.State != "rejected" || o.Via != "signal" || o.Kind != b.name || !strings.Contains(o.Summary, b.field) {
			t.Errorf("signal %s %s: outcome %+v, want rejected naming %q", b.name, b.json, o, b.field)
		}
	}
	if !strings.Contains(st.LastReason, "signal rejected") || st.Status.Kind != workflows.StatusActive || st.Pending != 0 {
		t.Errorf("status after the bad signals %+v: want active, the last reason naming a rejected signal", st)
	}
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil || desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("workflow not running after bad input: %v %v", desc.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	if ch := pebbleChanges(t, inst.Pebble.Socket, before); len(ch) != 0 {
		t.Errorf("rejected signals changed the container: %q", ch)
	}

	// Still takes a good change; its update is in the history (the check above can see one).
	four := 4
	h, err := sendChange(ctx, c, id, workflows.SetConfigUpdate, "good-update", workflows.SetConfigRequest{Workers: &four}, tclient.WorkflowUpdateStageCompleted)
	var res workflows.ChangeResult
	if err == nil {
		err = h.Get(ctx, &res)
	}
	if err != nil || strings.Join(res.Started, ",") != "worker-3" {
		t.Errorf("a good change after bad ones: %+v %v", res, err)
	}
	events = updateEvents(t, c, run)
	if got := strings.Join(events["good-update"], ","); got != "WorkflowExecutionUpdateAccepted,WorkflowExecutionUpdateCompleted" {
		t.Errorf("the good update's history events: %q", got)
	}
	for _, u := range updateIDs {
		if len(events[u]) > 0 {
			t.Errorf("rejected update %s left %v in the history", u, events[u])
		}
	}
}
