package workflows

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/spec"
)

// fakeConnectors is the platform and the connector containers as the connector
// activities see them: users by name (active or not), and each container's service.
type fakeConnectors struct {
	mu      sync.Mutex
	env     *testsuite.TestWorkflowEnvironment
	active  map[string]bool      // user name -> active
	running map[string]bool      // connector name -> service active
	frozen  map[string]time.Time // connector name -> its last ping before it hung
	pushed  map[string]layer.Layer
}

// connectorAt names a connector's container in the call log ("" for the instance's).
func connectorAt(p spec.Pebble) string {
	if p.Socket == testInstance().Pebble.Socket {
		return ""
	}
	return "@" + p.Socket
}

// fakeConnectorMocks answers the connector activities from a fakeConnectors, logging
// each call that changes something.
func fakeConnectorMocks(env *testsuite.TestWorkflowEnvironment, calls *callLog) *fakeConnectors {
	fc := &fakeConnectors{env: env, active: map[string]bool{}, running: map[string]bool{}, frozen: map[string]time.Time{}, pushed: map[string]layer.Layer{}}
	env.OnActivity(a.EnsureConnectorUser, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EnsureConnectorUserInput) (activities.EnsureConnectorUserResult, error) {
			fc.mu.Lock()
			defer fc.mu.Unlock()
			user := opencti.ConnectorUser(in.Name)
			res := activities.EnsureConnectorUserResult{UserID: "id-" + user, Token: secrets.Ref(in.Instance.Name, user+"-token"),
				ConnectorID: secrets.Ref(in.Instance.Name, user+"-id")}
			active, exists := fc.active[user]
			res.Created, res.Reactivated = !exists, exists && !active
			fc.active[user] = true
			calls.add("ensure-user:" + in.Name)
			return res, nil
		})
	env.OnActivity(a.ApplyConnectorPlan, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ApplyConnectorPlanInput) (activities.PebbleLayerChanges, error) {
			fc.mu.Lock()
			defer fc.mu.Unlock()
			calls.add("push:" + in.Connector.Name + connectorAt(in.Connector.Pebble))
			old, next := fc.pushed[in.Connector.Pebble.Socket], opencti.ConnectorPreview(in.Instance, in.Connector)
			fc.pushed[in.Connector.Pebble.Socket] = next
			return serviceChanges(old, next), nil
		})
	env.OnActivity(a.RemoveConnector, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RemoveConnectorInput) (activities.RemoveConnectorResult, error) {
			fc.mu.Lock()
			defer fc.mu.Unlock()
			calls.add("remove:" + in.Connector.Name + connectorAt(in.Connector.Pebble))
			was := fc.running[in.Connector.Name]
			fc.running[in.Connector.Name] = false
			delete(fc.pushed, in.Connector.Pebble.Socket)
			return activities.RemoveConnectorResult{Stopped: was, Unregistered: was}, nil
		})
	env.OnActivity(a.DeactivateConnectorUsers, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DeactivateConnectorUsersInput) (activities.DeactivateConnectorUsersResult, error) {
			fc.mu.Lock()
			defer fc.mu.Unlock()
			var res activities.DeactivateConnectorUsersResult
			for _, user := range sortedKeys(fc.active) {
				if name := strings.TrimPrefix(user, "connector-"); fc.active[user] && !slices.Contains(in.Keep, name) {
					fc.active[user] = false
					res.Deactivated = append(res.Deactivated, user)
				}
			}
			return res, nil
		})
	env.OnActivity(a.CheckConnectors, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.CheckConnectorsInput) (activities.CheckConnectorsResult, error) {
			fc.mu.Lock()
			defer fc.mu.Unlock()
			var res activities.CheckConnectorsResult
			for _, c := range in.Connectors {
				now := fc.env.Now()
				check := activities.ConnectorCheck{Name: c.Name, Service: "inactive", CheckedAt: now}
				if fc.running[c.Name] {
					check.Service, check.Registered, check.LastPing = "active", true, now.Add(-10*time.Second)
					if at, hung := fc.frozen[c.Name]; hung {
						check.LastPing = at
					}
				}
				res.Connectors = append(res.Connectors, check)
			}
			return res, nil
		})
	return fc
}

// startedIn marks a restart in a connector's container: its connector runs and pings;
// it reports whether it was running.
func (fc *fakeConnectors) startedIn(p spec.Pebble) bool {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	name := strings.TrimSuffix(strings.TrimPrefix(p.Socket, "/tmp/"), ".socket")
	was := fc.running[name]
	fc.running[name] = true
	delete(fc.frozen, name)
	return was
}

// set changes a connector by hand: its service stopped (running false), or its process
// hung (pings stop at the environment's time).
func (fc *fakeConnectors) set(name string, running, hung bool) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.running[name] = running
	delete(fc.frozen, name)
	if hung {
		fc.frozen[name] = fc.env.Now()
	}
}

// addUser adds a user by hand, as an admin in the platform's UI does.
func (fc *fakeConnectors) addUser(name string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.active[name] = true
}

// testConnector is a connector of the test instance in a container of its own.
func testConnector(name string, typ opencti.ConnectorType, scope ...string) opencti.Connector {
	return opencti.Connector{Name: name, Type: typ, Scope: scope, Command: "python3 main.py",
		Pebble: spec.Pebble{Socket: "/tmp/" + name + ".socket"}, Config: map[string]any{"interval": float64(60)}}
}

// TestInstanceConnectors follows connectors through an instance's life: the deploy's
// connectors are added as its first change, after the platform (user ensured, plan
// pushed, service started), and a hand-made connector-ghost is deactivated there; an
// added connector is previewed and started; a change that does not touch a connector's
// plan leaves it alone, one that does (the log level it follows) restarts it; a
// stopped service and a hung process (pings stale) put the instance in Waiting with
// the connector's name, and it is active again once they run; a removal stops,
// unregisters and deactivates; adding it back reactivates the same user; bad connector
// changes are rejected naming the field.
func TestInstanceConnectors(t *testing.T) {
	var calls callLog
	env, fc := newConnectorEnv(t, &calls)
	fc.addUser("connector-ghost")
	inst := testInstance()
	inst.Connectors = []opencti.Connector{testConnector("mitre", opencti.ExternalImport)}
	export := testConnector("export", opencti.InternalExportFile, "application/pdf")

	at := func(d time.Duration, f func()) { env.RegisterDelayedCallback(f, d) }
	status := func() InstanceStatus {
		v, err := env.QueryWorkflow(StatusQuery)
		if err != nil {
			t.Fatal(err)
		}
		var st InstanceStatus
		_ = v.Get(&st)
		return st
	}
	preview := func(req string) Preview {
		v, err := env.QueryWorkflow(PreviewQuery, rawJSON(req))
		if err != nil {
			t.Fatal(err)
		}
		var p Preview
		_ = v.Get(&p)
		return p
	}
	var deployed InstanceStatus
	var deployCalls []string
	at(10*time.Minute, func() { deployed, deployCalls = status(), calls.list() })

	var addPreview Preview
	at(11*time.Minute, func() { addPreview = preview(`{"addConnector": {"connector": ` + string(mustJSON(export)) + `}}`) })
	results := map[string]ChangeResult{}
	errs := map[string]error{}
	send := func(d time.Duration, name, id string, req any) {
		updateNamed(env, name, d, id, req, func(r ChangeResult, err error) { results[id], errs[id] = r, err })
	}
	send(12*time.Minute, AddConnectorUpdate, "add-export", AddConnectorRequest{Connector: export})
	var beforeWorkers []string
	at(14*time.Minute, func() { beforeWorkers = calls.list() })
	workers := 3
	send(15*time.Minute, SetConfigUpdate, "workers-3", SetConfigRequest{Workers: &workers})
	var workersCalls []string
	var logPreview Preview
	at(17*time.Minute, func() {
		workersCalls = calls.list()[len(beforeWorkers):]
		logPreview = preview(`{"setConfig": {"logLevel": "debug"}}`)
	})
	send(18*time.Minute, SetConfigUpdate, "debug", SetConfigRequest{LogLevel: opencti.LogDebug})

	var running, stopped, hung, back InstanceStatus
	at(22*time.Minute, func() { running = status(); fc.set("mitre", false, false) })
	at(24*time.Minute, func() { stopped = status(); fc.set("mitre", true, false); fc.set("export", true, true) })
	at(28*time.Minute, func() { hung = status(); fc.set("export", true, false) })
	at(30*time.Minute, func() { back = status() })
	send(31*time.Minute, RemoveConnectorUpdate, "rm-mitre", RemoveConnectorRequest{Name: "mitre"})
	send(33*time.Minute, AddConnectorUpdate, "mitre-back", AddConnectorRequest{Connector: testConnector("mitre", opencti.ExternalImport)})
	retyped := export
	retyped.Type = opencti.InternalImportFile
	send(35*time.Minute, AddConnectorUpdate, "retype", AddConnectorRequest{Connector: retyped})
	shared := testConnector("other", opencti.ExternalImport)
	shared.Pebble = export.Pebble
	send(36*time.Minute, AddConnectorUpdate, "shared", AddConnectorRequest{Connector: shared})
	send(37*time.Minute, RemoveConnectorUpdate, "rm-ghost", RemoveConnectorRequest{Name: "ghost"})
	var final InstanceStatus
	at(40*time.Minute, func() { final = status(); env.CancelWorkflow() })

	env.ExecuteWorkflow(OpenCTIInstance, InstanceInput{Instance: inst})

	// The deploy's connectors: after the platform and its workers, as the first change.
	deployedConnectors := strings.Join(deployCalls[slices.Index(deployCalls, "ensure-user:mitre"):], " ")
	if !strings.HasPrefix(deployedConnectors, "ensure-user:mitre push:mitre@/tmp/mitre.socket restart:connector@/tmp/mitre.socket") ||
		slices.Index(deployCalls, "ensure-user:mitre") < slices.Index(deployCalls, "start:worker-0,worker-1") {
		t.Errorf("deploy calls %v: want the connector's user, plan and start after the workers", deployCalls)
	}
	if r := deployed.Recent; len(r) != 1 || r[0].RequestID != DeployConnectorsRequest || r[0].State != "applied" ||
		!strings.Contains(r[0].Summary, "started connector-mitre") || !strings.Contains(r[0].Summary, "created user connector-mitre") ||
		!strings.Contains(r[0].Summary, "deactivated user connector-ghost") {
		t.Errorf("after the deploy: %+v", deployed.Recent)
	}
	if c := deployed.Connectors; len(c) != 1 || c[0].Name != "mitre" || c[0].State != ConnectorRunning || !c[0].Registered || deployed.Status.Kind != StatusActive {
		t.Errorf("connectors after the deploy %+v, status %s", deployed.Connectors, deployed.Status)
	}

	if !slices.Equal(addPreview.Start, []string{"connector-export"}) || !slices.Contains(addPreview.Unchanged, "connector-mitre") ||
		len(addPreview.Restart) != 0 || addPreview.Summary != "connector export added (INTERNAL_EXPORT_FILE)" || len(addPreview.Notes) != 1 {
		t.Errorf("preview of AddConnector: %+v", addPreview)
	}
	if r := results["add-export"]; errs["add-export"] != nil || !slices.Equal(r.Started, []string{"connector-export"}) ||
		!slices.Equal(r.UsersCreated, []string{"connector-export"}) || len(r.UsersDeactivated) != 0 {
		t.Errorf("AddConnector: %+v %v", r, errs["add-export"])
	}
	for _, c := range workersCalls {
		if strings.Contains(c, "connector") || strings.HasPrefix(c, "push:") || strings.HasPrefix(c, "ensure-user:") {
			t.Errorf("a change of the workers touched a connector: %v", workersCalls)
		}
	}
	wantRestart := []string{"platform", "worker-0", "worker-1", "worker-2", "connector-mitre", "connector-export"}
	if !slices.Equal(logPreview.Restart, wantRestart) {
		t.Errorf("preview of the log level: restart %v, want %v", logPreview.Restart, wantRestart)
	}
	if r := results["debug"]; errs["debug"] != nil || !slices.Contains(r.Restarted, "connector-mitre") || !slices.Contains(r.Restarted, "connector-export") ||
		!slices.ContainsFunc(r.Changed, func(c layer.Change) bool { return c.Service == "connector-mitre" }) {
		t.Errorf("log level change: %+v %v", r, errs["debug"])
	}

	if running.Status.Kind != StatusActive || len(running.Connectors) != 2 {
		t.Errorf("running: %s %+v", running.Status, running.Connectors)
	}
	if stopped.Status.Kind != StatusWaiting || !strings.Contains(stopped.Status.Message, "mitre (service inactive)") ||
		stopped.Connectors[0].State != ConnectorWaiting || stopped.Connectors[1].State != ConnectorRunning {
		t.Errorf("a stopped connector: %s %+v", stopped.Status, stopped.Connectors)
	}
	if hung.Status.Kind != StatusWaiting || !strings.Contains(hung.Status.Message, "export (no ping since") || strings.Contains(hung.Status.Message, "mitre") {
		t.Errorf("a hung connector: %s %+v", hung.Status, hung.Connectors)
	}
	if back.Status.Kind != StatusActive {
		t.Errorf("connectors running again: %s %+v", back.Status, back.Connectors)
	}

	if r := results["rm-mitre"]; errs["rm-mitre"] != nil || !slices.Equal(r.Stopped, []string{"connector-mitre"}) ||
		!slices.Equal(r.Unregistered, []string{"mitre"}) || !slices.Equal(r.UsersDeactivated, []string{"connector-mitre"}) {
		t.Errorf("RemoveConnector: %+v %v", r, errs["rm-mitre"])
	}
	if r := results["mitre-back"]; errs["mitre-back"] != nil || !slices.Equal(r.UsersReactivated, []string{"connector-mitre"}) || len(r.UsersCreated) != 0 {
		t.Errorf("the connector back: %+v %v", r, errs["mitre-back"])
	}
	for id, want := range map[string]string{
		"retype":   "connectors[0].type: changes INTERNAL_EXPORT_FILE -> INTERNAL_IMPORT_FILE",
		"shared":   "connectors[2].pebble: is the container of connectors[0] (export)",
		"rm-ghost": `name: is not a connector of this instance (got "ghost")`,
	} {
		if errs[id] == nil || !strings.Contains(errs[id].Error(), want) {
			t.Errorf("%s: %v, want a rejection with %q", id, errs[id], want)
		}
	}
	if names := []string{final.Connectors[0].Name, final.Connectors[1].Name}; len(final.Connectors) != 2 || !slices.Equal(names, []string{"export", "mitre"}) {
		t.Errorf("final connectors %+v", final.Connectors)
	}
}

// TestConnectorStateNeedsAPingSinceItsStart: a registration and its last ping
// outlive a process, so a connector restarted by socflow counts as running only
// once it pinged since; until then it is pending, and waiting after
// ConnectorPingStale (a pycti that fails its registration and exits looks active at
// times, with the old process's ping).
func TestConnectorStateNeedsAPingSinceItsStart(t *testing.T) {
	started := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		check activities.ConnectorCheck
		want  string
	}{
		{activities.ConnectorCheck{Service: "active", Registered: true, LastPing: started.Add(-time.Minute), CheckedAt: started.Add(30 * time.Second)}, ConnectorPending},
		{activities.ConnectorCheck{Service: "active", Registered: true, LastPing: started.Add(-time.Minute), CheckedAt: started.Add(3 * time.Minute)}, ConnectorWaiting},
		{activities.ConnectorCheck{Service: "active", Registered: true, LastPing: started.Add(5 * time.Second), CheckedAt: started.Add(30 * time.Second)}, ConnectorRunning},
		{activities.ConnectorCheck{Service: "backoff", Registered: true, LastPing: started.Add(5 * time.Second), CheckedAt: started.Add(30 * time.Second)}, ConnectorWaiting},
		{activities.ConnectorCheck{Service: "active", Registered: true, LastPing: started.Add(5 * time.Second), CheckedAt: started.Add(5 * time.Minute)}, ConnectorWaiting},
	} {
		if got, why := connectorState(tc.check, started); got != tc.want {
			t.Errorf("%+v: %s (%s), want %s", tc.check, got, why, tc.want)
		}
	}
}
