package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	tclient "go.temporal.io/sdk/client"

	"github.com/socflow/socflow/internal/connectorfixture"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/openctiapi"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/workflows"
)

// connectorCheckEvery is how often the tests' instances check their connectors.
const connectorCheckEvery = 2 * time.Second

// pyctiConnector is a connector spec running socflow's pycti fixture in a Pebble of
// its own, importing one organization named after the instance.
func pyctiConnector(t *testing.T, inst opencti.Instance, name string, typ opencti.ConnectorType, scope ...string) opencti.Connector {
	t.Helper()
	python := os.Getenv("SOCFLOW_PYCTI_PYTHON")
	if python == "" {
		t.Fatal("SOCFLOW_PYCTI_PYTHON is not set: run deploy/local/stack up, which installs pycti")
	}
	script, err := connectorfixture.WriteScript(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return opencti.Connector{Name: name, Type: typ, Scope: scope, Command: connectorfixture.PebbleCommand(python, script),
		Pebble: spec.Pebble{Socket: stacktest.Pebble(t)},
		Config: map[string]any{"fixture-interval": "PT2S", "fixture-identity-name": "socflow " + inst.Name + " " + name}}
}

// startInstanceWith starts OpenCTIInstance with connectors checked every
// connectorCheckEvery, records its history and terminates it at the end.
func startInstanceWith(t *testing.T, c tclient.Client, queue string, inst opencti.Instance) tclient.WorkflowRun {
	t.Helper()
	return startInstanceInput(t, c, queue, workflows.InstanceInput{Instance: inst, ConnectorCheckEvery: connectorCheckEvery})
}

// connectorsRunning holds when the instance is active and every connector of its
// status runs (service active, registered, pinging).
func connectorsRunning(n int) func(workflows.InstanceStatus) bool {
	return func(s workflows.InstanceStatus) bool {
		if !activeInstance(s) || len(s.Connectors) != n {
			return false
		}
		for _, c := range s.Connectors {
			if c.State != workflows.ConnectorRunning {
				return false
			}
		}
		return true
	}
}

// adminClient is an admin GraphQL client of the instance's platform, with the token
// its worker stored.
func adminClient(t *testing.T, inst opencti.Instance, secretDir string) *openctiapi.Client {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(secretDir, inst.Name, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	return &openctiapi.Client{BaseURL: opencti.LocalURL(opencti.Input{Instance: inst}), Token: strings.TrimSpace(string(token)),
		HTTP: &http.Client{Timeout: 20 * time.Second}}
}

// connectorUsers lists the platform's connector-* users by name.
func connectorUsers(t *testing.T, api *openctiapi.Client) map[string]openctiapi.User {
	t.Helper()
	users, err := api.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]openctiapi.User{}
	for _, u := range users {
		if strings.HasPrefix(u.Name, "connector-") {
			if _, dup := out[u.Name]; dup {
				t.Errorf("two users named %s", u.Name)
			}
			out[u.Name] = u
		}
	}
	return out
}

// storedSecret reads one of the instance's secrets from the worker's store.
func storedSecret(t *testing.T, secretDir, instance, key string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(secretDir, instance, key))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// consumedFromQueue waits until RabbitMQ's management API counts a message the
// stack's worker stand-in took from the queue and acknowledged. The acknowledgement
// is the evidence, not the publish: pycti publishes on a channel it closes at once,
// and RabbitMQ 3.10 drops a closed channel's unreported counters, so a queue's
// publish count may stay 0 while the worker's long-lived channel reports every ack.
func consumedFromQueue(t *testing.T, queue string) float64 {
	t.Helper()
	st := stacktest.Get(t)
	u := fmt.Sprintf("http://%s:%d/api/queues/%s/%s", st.RabbitMQHost, st.RabbitMQMgmtPort, url.PathEscape("/"), url.PathEscape(queue))
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.SetBasicAuth(st.RabbitMQUser, os.Getenv("SOCFLOW_RABBITMQ_PASSWORD"))
		var q struct {
			Consumers float64 `json:"consumers"`
			Messages  float64 `json:"messages"`
			Stats     struct {
				Ack float64 `json:"ack"`
			} `json:"message_stats"`
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&q)
			resp.Body.Close()
			if q.Stats.Ack >= 1 {
				return q.Stats.Ack
			}
			last = fmt.Sprintf("consumers %v, messages %v, acks %v", q.Consumers, q.Messages, q.Stats.Ack)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message of %s was acknowledged by a worker (%s)", queue, last)
		}
		time.Sleep(time.Second)
	}
}

// connectorState reads a registered connector's state (what pycti's set_state sent
// with its last ping) from the platform.
func connectorState(t *testing.T, api *openctiapi.Client, id string) map[string]any {
	t.Helper()
	var out struct {
		Connector struct {
			State *string `json:"connector_state"`
		} `json:"connector"`
	}
	if err := api.Query(context.Background(), `query ConnectorState($id: String!) { connector(id: $id) { connector_state } }`,
		map[string]any{"id": id}, &out); err != nil {
		t.Fatal(err)
	}
	state := map[string]any{}
	if out.Connector.State != nil {
		if err := json.Unmarshal([]byte(*out.Connector.State), &state); err != nil {
			t.Fatalf("connector %s's state is not JSON: %v", id, err)
		}
	}
	return state
}

// TestInstanceConnectorsWithPycti is issue 10 on the real stack, with pycti connectors
// under Pebble: the spec's connector is added after the deploy (user in Connectors,
// registered, pinging, its bundle published to its push queue); AddConnector of an
// INTERNAL_EXPORT_FILE connector makes a user in Administrators and deactivates a
// hand-made connector-ghost; a redeploy of the same spec after the worker was killed
// and replaced makes no user, keeps every CONNECTOR_ID and token and restarts no
// connector; a connector whose service is stopped by hand makes the instance wait,
// naming it; RemoveConnector stops it, deletes its registration and deactivates its
// user, and adding it back reactivates the same user with the same CONNECTOR_ID;
// invalid connectors are rejected naming the field, creating nothing.
func TestInstanceConnectorsWithPycti(t *testing.T) {
	c := temporalClient(t)
	secretDir := t.TempDir()
	queue := fmt.Sprintf("e2e-connectors-%d", time.Now().UnixNano())
	inst := newInstance(t, instanceOpts{initDelay: time.Second})
	fixture := pyctiConnector(t, inst, "fixture", opencti.ExternalImport, "identity")
	export := pyctiConnector(t, inst, "export", opencti.InternalExportFile, "application/json")
	deployed := inst
	deployed.Connectors = []opencti.Connector{fixture}

	w1 := startWorkerProcess(t, "worker-1", queue, secretDir)
	run := startInstanceWith(t, c, queue, deployed)
	id := run.GetID()
	st := waitInstance(t, c, id, 4*time.Minute, "active with its connector running", connectorsRunning(1))
	if r := st.Recent; len(r) != 1 || r[0].RequestID != workflows.DeployConnectorsRequest || r[0].State != "applied" {
		t.Errorf("changes after the deploy: %+v, want the deploy's connectors applied", r)
	}
	api := adminClient(t, inst, secretDir)
	users := connectorUsers(t, api)
	if u := users["connector-fixture"]; !slices.Equal(u.Groups, []string{"Connectors"}) || u.AccountStatus != openctiapi.AccountActive {
		t.Errorf("connector-fixture: %+v", u)
	}
	fixtureID := storedSecret(t, secretDir, inst.Name, "connector-fixture-id")
	for state, deadline := connectorState(t, api, fixtureID), time.Now().Add(time.Minute); state["bundle_sent_at"] == nil; state = connectorState(t, api, fixtureID) {
		if time.Now().After(deadline) {
			t.Fatalf("the fixture's state: %v, want bundle_sent_at (pycti sent its bundle)", state)
		}
		time.Sleep(time.Second)
	}
	consumedFromQueue(t, inst.Integrations.RabbitMQ.QueuePrefix+"_push_"+fixtureID)

	// A hand-made connector-* user is deactivated by the next reconcile, here the
	// export connector's addition.
	group, err := api.GroupID(context.Background(), "Connectors")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.AddUser(context.Background(), openctiapi.NewUser{Name: "connector-ghost", Email: "ghost@opencti.local",
		Password: "ghost-password-1", GroupIDs: []string{group}}); err != nil {
		t.Fatal(err)
	}
	res, err := applyChange(t, c, id, workflows.AddConnectorUpdate, workflows.AddConnectorRequest{RequestID: "add-export", Connector: export})
	if err != nil || !slices.Equal(res.UsersCreated, []string{"connector-export"}) || !slices.Equal(res.UsersDeactivated, []string{"connector-ghost"}) ||
		!slices.Equal(res.Started, []string{"connector-export"}) || len(res.Restarted) != 0 {
		t.Fatalf("AddConnector export: %+v %v", res, err)
	}
	waitInstance(t, c, id, 2*time.Minute, "both connectors running", connectorsRunning(2))
	users = connectorUsers(t, api)
	if u := users["connector-export"]; !slices.Equal(u.Groups, []string{"Administrators"}) || u.AccountStatus != openctiapi.AccountActive {
		t.Errorf("connector-export: %+v", u)
	}
	if u := users["connector-ghost"]; u.AccountStatus != openctiapi.AccountInactive {
		t.Errorf("connector-ghost after the reconcile: %+v", u)
	}

	// Redeploy after the worker is killed and replaced: nothing about the connectors moves.
	tokens := map[string]string{}
	for _, n := range []string{"fixture", "export"} {
		tokens[n] = storedSecret(t, secretDir, inst.Name, "connector-"+n+"-token") + " " + storedSecret(t, secretDir, inst.Name, "connector-"+n+"-id")
	}
	changesBefore := map[string]string{fixture.Name: lastChange(t, fixture.Pebble.Socket), export.Name: lastChange(t, export.Pebble.Socket)}
	w1.kill9(t)
	startWorkerProcess(t, "worker-2", queue, secretDir)
	redeploy := deployed
	redeploy.Connectors = []opencti.Connector{fixture, export}
	res, err = applyChange(t, c, id, workflows.ApplySpecUpdate, workflows.ApplySpecRequest{RequestID: "redeploy", Spec: redeploy})
	if err != nil || res.Summary != "no difference" || len(res.UsersCreated)+len(res.UsersReactivated)+len(res.Started)+len(res.Restarted) != 0 {
		t.Errorf("redeploying the same spec: %+v %v", res, err)
	}
	after := connectorUsers(t, api)
	for _, n := range []string{"fixture", "export"} {
		now := storedSecret(t, secretDir, inst.Name, "connector-"+n+"-token") + " " + storedSecret(t, secretDir, inst.Name, "connector-"+n+"-id")
		if now != tokens[n] || after["connector-"+n].ID != users["connector-"+n].ID || after["connector-"+n].APIToken != users["connector-"+n].APIToken {
			t.Errorf("connector %s after the redeploy: token or CONNECTOR_ID or user changed", n)
		}
	}
	if len(after) != len(users) {
		t.Errorf("connector users after the redeploy: %d, before %d", len(after), len(users))
	}
	for name, before := range changesBefore {
		socket := map[string]string{fixture.Name: fixture.Pebble.Socket, export.Name: export.Pebble.Socket}[name]
		if got := lastChange(t, socket); got != before {
			t.Errorf("connector %s's container changed on a redeploy of the same spec: %s, before %s", name, got, before)
		}
	}

	// Stopped by hand: the instance waits, naming it, and is active once it runs again.
	pc := pebbleClient(t, export.Pebble.Socket)
	if _, err := pc.Stop(&client.ServiceOptions{Names: []string{opencti.ConnectorService}}); err != nil {
		t.Fatal(err)
	}
	waiting := waitInstance(t, c, id, time.Minute, "waiting on the stopped connector", func(s workflows.InstanceStatus) bool {
		return s.Status.Kind == workflows.StatusWaiting
	})
	if !strings.Contains(waiting.Status.Message, "export (service inactive)") || strings.Contains(waiting.Status.Message, "fixture") {
		t.Errorf("status with the export connector stopped: %s", waiting.Status)
	}
	if _, err := pc.Start(&client.ServiceOptions{Names: []string{opencti.ConnectorService}}); err != nil {
		t.Fatal(err)
	}
	waitInstance(t, c, id, 2*time.Minute, "active again", connectorsRunning(2))

	// Removal, then back.
	res, err = applyChange(t, c, id, workflows.RemoveConnectorUpdate, workflows.RemoveConnectorRequest{RequestID: "rm-fixture", Name: "fixture"})
	if err != nil || !slices.Equal(res.Stopped, []string{"connector-fixture"}) || !slices.Equal(res.Unregistered, []string{"fixture"}) ||
		!slices.Equal(res.UsersDeactivated, []string{"connector-fixture"}) {
		t.Fatalf("RemoveConnector fixture: %+v %v", res, err)
	}
	if list, err := api.Connectors(context.Background()); err != nil || slices.ContainsFunc(list, func(c openctiapi.Connector) bool { return c.ID == fixtureID }) {
		t.Errorf("connectors after the removal: %+v %v", list, err)
	}
	if got := activeServices(t, fixture.Pebble.Socket); len(got) != 0 {
		t.Errorf("services running in the removed connector's container: %v", got)
	}
	if u := connectorUsers(t, api)["connector-fixture"]; u.AccountStatus != openctiapi.AccountInactive {
		t.Errorf("connector-fixture after the removal: %+v", u)
	}
	res, err = applyChange(t, c, id, workflows.AddConnectorUpdate, workflows.AddConnectorRequest{RequestID: "fixture-back", Connector: fixture})
	if err != nil || !slices.Equal(res.UsersReactivated, []string{"connector-fixture"}) || len(res.UsersCreated) != 0 {
		t.Fatalf("AddConnector fixture back: %+v %v", res, err)
	}
	waitInstance(t, c, id, 2*time.Minute, "both connectors running again", connectorsRunning(2))
	if u := connectorUsers(t, api)["connector-fixture"]; u.ID != users["connector-fixture"].ID || u.AccountStatus != openctiapi.AccountActive {
		t.Errorf("connector-fixture back: %+v, want the same user active", u)
	}
	if now := storedSecret(t, secretDir, inst.Name, "connector-fixture-id"); now != fixtureID {
		t.Errorf("CONNECTOR_ID of the returning connector %s, was %s", now, fixtureID)
	}

	// Invalid connectors: rejected before anything is recorded, naming the field.
	bad := pyctiConnector(t, inst, "bad", opencti.ExternalImport)
	bad.Config["opencti-url"] = "http://elsewhere"
	shared := pyctiConnector(t, inst, "shared", opencti.ExternalImport)
	shared.Pebble = export.Pebble
	for req, want := range map[string]string{
		"bad":    "connector.config.opencti-url: would overwrite OPENCTI_URL",
		"shared": "connectors[2].pebble: is the container of connectors[0] (export)",
	} {
		cn := map[string]opencti.Connector{"bad": bad, "shared": shared}[req]
		if _, err := applyChange(t, c, id, workflows.AddConnectorUpdate, workflows.AddConnectorRequest{Connector: cn}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("AddConnector %s: %v, want %q", req, err, want)
		}
	}
	if got := connectorUsers(t, api); len(got) != 3 {
		t.Errorf("connector users after the rejected changes: %v, want fixture, export and ghost", slices.Sorted(maps.Keys(got)))
	}
	if got := services(t, bad.Pebble.Socket); len(got) != 0 {
		t.Errorf("a rejected connector's container got services: %v", got)
	}
}

// TestConnectorUserAddSurvivesWorkerKill9: the worker is SIGKILLed after the platform
// wrote a connector's user but before userAdd answered (the stand-in holds its answer
// back); the retry on a new worker finds the user by email, so exactly one user
// exists, and the connector runs.
func TestConnectorUserAddSurvivesWorkerKill9(t *testing.T) {
	c := temporalClient(t)
	secretDir := t.TempDir()
	queue := fmt.Sprintf("e2e-connector-kill9-%d", time.Now().UnixNano())
	inst := newInstance(t, instanceOpts{initDelay: time.Second, userAddAnswer: time.Minute})
	w1 := startWorkerProcess(t, "worker-1", queue, secretDir)
	run := startInstanceWith(t, c, queue, inst)
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	api := adminClient(t, inst, secretDir)

	fixture := pyctiConnector(t, inst, "fixture", opencti.ExternalImport, "identity")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h, err := sendChange(ctx, c, id, workflows.AddConnectorUpdate, "kill9-add", workflows.AddConnectorRequest{RequestID: "kill9-add", Connector: fixture},
		tclient.WorkflowUpdateStageAccepted)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for len(connectorUsers(t, api)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("connector-fixture was never added")
		}
		time.Sleep(50 * time.Millisecond)
	}
	w1.kill9(t)
	t.Log("worker killed with userAdd written and unanswered")
	startWorkerProcess(t, "worker-2", queue, secretDir)
	var res workflows.ChangeResult
	if err := h.Get(ctx, &res); err != nil {
		t.Fatalf("AddConnector after the kill: %v", err)
	}
	if users := connectorUsers(t, api); len(users) != 1 || users["connector-fixture"].AccountStatus != openctiapi.AccountActive {
		t.Errorf("connector users after the kill: %+v, want exactly connector-fixture", users)
	}
	if len(res.UsersCreated) != 0 || !slices.Equal(res.Started, []string{"connector-fixture"}) {
		t.Errorf("result after the kill: %+v, want the user found (not created) and the connector started", res)
	}
	waitInstance(t, c, id, 2*time.Minute, "the connector running", connectorsRunning(1))
}

// TestReadmeConnectorCommands runs the README's connector block verbatim with the real
// starter, tctl and temporal, changing only the address, instance name and files: the
// starter adds a pycti connector and lists it running; tctl's preview of its removal
// is plain JSON; tctl's RemoveConnector signal removes it; temporal's AddConnector
// update brings it back; the starter removes it again.
func TestReadmeConnectorCommands(t *testing.T) {
	st := stacktest.Get(t)
	c, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: time.Second})
	run := startInstanceWith(t, c, queue, inst)
	id := run.GetID()
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	dir := t.TempDir()
	mitre := pyctiConnector(t, inst, "mitre", opencti.ExternalImport, "identity")
	writeJSON(t, dir, "mitre.yaml", mitre)
	writeJSON(t, dir, "mitre.json", workflows.AddConnectorRequest{RequestID: "temporal-mitre", Connector: mitre})
	cmds := readmeBlock(t, "### Connectors", "add", "list", "preview", "signal", "update", "remove")
	local := strings.NewReplacer(
		"127.0.0.1:7233", st.TemporalAddress,
		"opencti/demo", id,
		" demo ", " "+inst.Name+" ",
		"list demo", "list "+inst.Name,
		"http://127.0.0.1:8089", "http://"+os.Getenv("SOCFLOW_CODEC_ADDR"),
	)
	run2, must := readmeRunner(t, dir, local, cmds, "SOCFLOW_TASK_QUEUE="+queue)

	if out := must(0); !strings.Contains(out, "+ start     connector-mitre") || !strings.Contains(out, "started: connector-mitre") ||
		!strings.Contains(out, "connector users created: connector-mitre") || !strings.Contains(out, "AddConnector connector=mitre (EXTERNAL_IMPORT) on "+id) ||
		strings.Contains(out, "fixture-identity-name") {
		t.Errorf("starter connector add:\n%s", out)
	}
	waitInstance(t, c, id, 2*time.Minute, "the connector running", connectorsRunning(1))
	if out := must(1); !strings.Contains(out, "CONNECTOR") || !regexpMatch(`mitre\s+EXTERNAL_IMPORT\s+running\s+active\s+true\s+\d+s ago`, out) {
		t.Errorf("starter connector list:\n%s", out)
	}
	if out := must(2); strings.Contains(out, "encoding") || !strings.Contains(out, `"connector-mitre"`) || !strings.Contains(out, `"stop"`) {
		t.Errorf("tctl's preview of the removal is not plain JSON stopping connector-mitre:\n%s", out)
	}
	must(3)
	s := waitInstance(t, c, id, time.Minute, "tctl's removal applied", func(s workflows.InstanceStatus) bool {
		return len(s.Recent) > 0 && s.Recent[len(s.Recent)-1].RequestID == "tctl-rm-mitre"
	})
	if o := s.Recent[len(s.Recent)-1]; o.State != "applied" || !strings.Contains(o.Summary, "stopped connector-mitre") || len(s.Connectors) != 0 {
		t.Errorf("tctl's RemoveConnector signal: %+v, connectors %+v", o, s.Connectors)
	}
	if out := must(4); !strings.Contains(out, "temporal-mitre") || !strings.Contains(out, "connector-mitre") {
		t.Errorf("temporal's AddConnector update:\n%s", out)
	}
	if out, err := run2(cmds[5]); err != nil || !strings.Contains(out, "stopped: connector-mitre") || !strings.Contains(out, "connector users deactivated: connector-mitre") {
		t.Errorf("starter connector remove: %v\n%s", err, out)
	}
}

// regexpMatch reports whether the pattern matches s.
func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
