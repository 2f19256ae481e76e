package openctistandin

// The connector fixture (pycti 6.9.28's OpenCTIConnectorHelper, run with the
// stack's SOCFLOW_PYCTI_PYTHON, first as a process, then as a Pebble service
// as socflow runs connectors) against the stand-in on the
// local stack's real OpenSearch, RabbitMQ, Redis and MinIO: registration,
// pings, the bundle in its push queue, the errors pycti and socflow must
// handle, and what survives a platform restart.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"sigs.k8s.io/yaml"

	"github.com/socflow/socflow/internal/connectorfixture"
	"github.com/socflow/socflow/internal/stacktest"
)

// Timings of the fixture test; the defaults keep it short.
var (
	fixtureInterval = flag.Duration("fixture-interval", 2*time.Second, "FIXTURE_INTERVAL of the connector fixture (its run and force_ping period)")
	fixtureWait     = flag.Duration("fixture-wait", 60*time.Second, "how long to wait for each thing the connector fixture does")
)

// pyctiErrors runs pycti's own client calls that must fail and prints what
// pycti raises: its ValueError carries errors[0].name as "name".
const pyctiErrors = `
import json, sys
from pycti import OpenCTIApiClient
url, admin, group_id, email, ghost = sys.argv[1:6]
def err(fn):
    try:
        fn()
        return None
    except ValueError as e:
        return e.args[0] if isinstance(e.args[0], dict) else {"text": str(e.args[0])}
c = OpenCTIApiClient(url, admin, log_level="error")
bad = OpenCTIApiClient(url, "00000000-0000-4000-8000-000000000000", log_level="error", perform_health_check=False)
print(json.dumps({
    "duplicate_email": err(lambda: c.user.create(name="dup", user_email=email, groups=[group_id])),
    "unknown_group": err(lambda: c.user.create(name="ghost", user_email="ghost-" + email, groups=[ghost])),
    "unknown_connector": err(lambda: c.connector.unregister(ghost)),
    "bad_token": err(lambda: bad.query("query Me { me { id } }")),
    "health_with_bad_token": bad.health_check(),
    "found_by_email": (c.user.read(filters={"mode": "and", "filters": [{"key": "user_email", "values": [email]}], "filterGroups": []}) or {}).get("id"),
}))
`

func TestStackPyctiConnectorFixture(t *testing.T) {
	cfg := stackConfig(t)
	python := os.Getenv("SOCFLOW_PYCTI_PYTHON")
	if python == "" {
		t.Skip("the stack env has no SOCFLOW_PYCTI_PYTHON (pycti); run deploy/local/stack up")
	}
	requireAnalysisCommon(t, cfg)
	st := stacktest.Get(t)
	prefix := cfg.RabbitMQ.QueuePrefix
	t.Cleanup(func() { st.RemoveInstanceData(prefix) })
	began := time.Now()

	platform := start(cfg, "6.9.28")
	base := platform.waitReady(t)
	defer func() { platform.stop(t) }()
	t.Logf("platform ready in %s", time.Since(began).Round(time.Millisecond))
	if v := aboutVersion(t, base); v != "6.9.28" {
		t.Fatalf("about.version = %q, want 6.9.28 to match pycti", v)
	}

	// The connector's account, as socflow makes it: a user in Connectors.
	connectorsGroup := findGroup(t, base, "Connectors")
	email := "fixture-" + strings.ToLower(prefix) + "@opencti.local"
	var added struct {
		UserAdd struct {
			ID       string
			APIToken string `json:"api_token"`
		}
	}
	gqlOK(t, base, testToken, `mutation UserAdd($input: UserAddInput!) { userAdd(input: $input) { id api_token } }`,
		map[string]any{"input": map[string]any{"name": "connector-fixture", "user_email": email, "password": uuid.NewString(),
			"groups": []string{connectorsGroup}}}, &added)
	userID, token := added.UserAdd.ID, added.UserAdd.APIToken

	rec := &opRecorder{}
	proxy := rec.proxy(t, base)
	connectorID := uuid.NewString()
	identity := "socflow fixture " + prefix
	fx := connectorfixture.Config{URL: proxy, Token: token, ID: connectorID, Name: "socflow-fixture", Scope: "identity",
		LogLevel: "info", Interval: isoDuration(*fixtureInterval), IdentityName: identity}
	dir := t.TempDir()
	script, err := connectorfixture.WriteScript(dir)
	if err != nil {
		t.Fatal(err)
	}
	first := startFixture(t, python, script, fx, filepath.Join(dir, "first.log"))

	// Registered: the connector lists it, with its type, scope and user.
	c := waitConnector(t, base, connectorID, first, func(c listedConnector) bool { return true })
	t.Logf("registered %s after %s", connectorID, time.Since(began).Round(time.Millisecond))
	if c.Name != "socflow-fixture" || c.ConnectorType != "EXTERNAL_IMPORT" || strings.Join(c.ConnectorScope, ",") != "identity" ||
		!c.Active || c.ConnectorUserID != userID || c.BuiltIn {
		t.Errorf("registered connector = %+v", c)
	}
	// Pinging: updated_at moves and the state the fixture keeps reaches the platform.
	seen := waitConnector(t, base, connectorID, first, func(c listedConnector) bool { return c.runs() >= 1 })
	later := waitConnector(t, base, connectorID, first, func(c listedConnector) bool { return c.runs() > seen.runs() })
	if later.UpdatedAt <= seen.UpdatedAt || later.UpdatedAt <= later.CreatedAt {
		t.Errorf("updated_at did not advance: %s then %s (created %s)", seen.UpdatedAt, later.UpdatedAt, later.CreatedAt)
	}
	t.Logf("pinged: runs %d -> %d, updated_at %s -> %s", seen.runs(), later.runs(), seen.UpdatedAt, later.UpdatedAt)

	// The bundle: one message in push_<id>, from the connector's user, holding the identity.
	conn := dialStack(t, cfg)
	push, listen := prefix+"_push_"+connectorID, prefix+"_listen_"+connectorID
	msg := waitMessage(t, conn, push, first)
	var m struct {
		BundleType  string  `json:"bundle_type"`
		ApplicantID string  `json:"applicant_id"`
		WorkID      string  `json:"work_id"`
		Content     string  `json:"content"`
		Sequence    float64 `json:"action_sequence"`
	}
	if err := json.Unmarshal(msg.Body, &m); err != nil {
		t.Fatalf("push message is not JSON: %v\n%s", err, msg.Body)
	}
	raw, _ := base64.StdEncoding.DecodeString(m.Content)
	var bundle struct {
		Type    string
		Objects []struct{ Type, Name, ID string }
	}
	_ = json.Unmarshal(raw, &bundle)
	if m.BundleType != "QUEUE_BUNDLE" || m.ApplicantID != userID || !strings.HasPrefix(m.WorkID, "work_"+connectorID+"_") ||
		bundle.Type != "bundle" || len(bundle.Objects) != 1 || bundle.Objects[0].Type != "identity" || bundle.Objects[0].Name != identity {
		t.Errorf("push message = %+v, bundle = %s", m, raw)
	}
	if msg.MessageCount != 0 {
		t.Errorf("%d more messages in %s, want the one bundle", msg.MessageCount, push)
	}
	_ = msg.Nack(false, true)
	checkBindings(t, st, prefix, connectorID)
	details := waitQueueDetails(t, base, token, connectorID)
	t.Logf("bundle in %s (%s): %s; connector_queue_details %v", push, m.WorkID, raw, details)

	// The errors pycti and socflow must handle, through pycti's own client.
	out, err := exec.Command(python, "-c", pyctiErrors, proxy, testToken, connectorsGroup, email, uuid.NewString()).CombinedOutput()
	if err != nil {
		t.Fatalf("pycti error calls: %v\n%s", err, out)
	}
	var pe map[string]any
	if err := json.Unmarshal(lastJSONLine(out), &pe); err != nil {
		t.Fatalf("pycti error calls printed %s", out)
	}
	for key, want := range map[string][2]string{
		"duplicate_email":   {"FUNCTIONAL_ERROR", "User already exists"},
		"unknown_group":     {"MISSING_REFERENCE_ERROR", "Element(s) not found"},
		"unknown_connector": {"ALREADY_DELETED_ERROR", "Already deleted elements"},
		"bad_token":         {"AUTH_REQUIRED", "You must be logged in to do this."},
	} {
		got, _ := pe[key].(map[string]any)
		if got["name"] != want[0] || got["error_message"] != want[1] {
			t.Errorf("pycti %s: raised %v, want name %s, message %q", key, pe[key], want[0], want[1])
		}
	}
	if pe["health_with_bad_token"] != false || pe["found_by_email"] != userID {
		t.Errorf("pycti: health check with a bad token = %v (want false), user read by email = %v (want %s)",
			pe["health_with_bad_token"], pe["found_by_email"], userID)
	}
	// The same errors in full, as any GraphQL client receives them.
	checkErrorShape(t, gqlRaw(t, base, "not-a-token", `query Me { me { id } }`, nil), "AUTH_REQUIRED", 401, "TECHNICAL")
	checkErrorShape(t, gqlRaw(t, base, testToken, `mutation D($id: ID!) { deleteConnector(id: $id) }`,
		map[string]any{"id": uuid.NewString()}), "ALREADY_DELETED_ERROR", 400, "BUSINESS")
	dup := gqlRaw(t, base, testToken, `mutation UserAdd($input: UserAddInput!) { userAdd(input: $input) { id } }`,
		map[string]any{"input": map[string]any{"name": "again", "user_email": strings.ToUpper(email), "groups": []string{connectorsGroup}}})
	if checkErrorShape(t, dup, "FUNCTIONAL_ERROR", 400, "BUSINESS")["user_id"] != userID {
		t.Errorf("duplicate email: the error names another user: %+v", dup.Errors)
	}
	checkErrorShape(t, gqlRaw(t, base, testToken, `mutation UserAdd($input: UserAddInput!) { userAdd(input: $input) { id } }`,
		map[string]any{"input": map[string]any{"name": "g", "user_email": "g-" + email, "groups": []string{uuid.NewString()}}}),
		"MISSING_REFERENCE_ERROR", 404, "BUSINESS")

	// Deactivating the connector's user locks it out: pycti's next scheduled
	// run fails with AUTH_REQUIRED and its exception hook kills the process.
	patchUser(t, base, userID, "account_status", "Inactive")
	code := first.waitExit(t, *fixtureWait)
	if code != 128+int(syscall.SIGTERM) || !strings.Contains(first.log(), "AUTH_REQUIRED") {
		t.Errorf("fixture of a deactivated user: exit %d, want killed by SIGTERM after AUTH_REQUIRED\n%s", code, first.tail())
	}

	// A restart keeps groups, users and connectors, as OpenCTI keeps them in the search engine.
	platform.stop(t)
	platform = start(cfg, "6.9.28")
	base = platform.waitReady(t)
	proxy = rec.proxy(t, base)
	if g := findGroup(t, base, "Connectors"); g != connectorsGroup {
		t.Errorf("Connectors group id changed across a restart: %s -> %s", connectorsGroup, g)
	}
	if _, ok := listConnectors(t, base)[connectorID]; !ok {
		t.Errorf("connector %s gone after a restart", connectorID)
	}
	patchUser(t, base, userID, "account_status", "Active")
	fx.URL = proxy
	before := listConnectors(t, base)[connectorID]
	// This time under Pebble, as socflow runs connectors: layer connector-<name>,
	// service connector, on-failure restart, the same environment.
	second := startFixtureUnderPebble(t, python, script, fx)
	again := waitConnector(t, base, connectorID, second, func(c listedConnector) bool { return c.runs() > before.runs() })
	if again.CreatedAt != c.CreatedAt || again.ConnectorUserID != userID {
		t.Errorf("re-registration after the restart = %+v, want the same connector (created %s)", again, c.CreatedAt)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if q, err := ch.QueueDeclarePassive(push, true, false, false, false, nil); err != nil || q.Messages != 1 {
		t.Errorf("%s after the connector's restart: %+v %v, want still the one bundle (its state says it was sent)", push, q, err)
	}
	second.stop(t)

	// Deleting the connector removes it and its queues.
	gqlOK(t, base, testToken, `mutation D($id: ID!) { deleteConnector(id: $id) }`, map[string]any{"id": connectorID}, nil)
	if _, ok := listConnectors(t, base)[connectorID]; ok {
		t.Error("connector still listed after deleteConnector")
	}
	for _, q := range []string{push, listen} {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err == nil {
			t.Errorf("queue %s still there after deleteConnector", q)
		}
	}

	ops := rec.operations()
	for _, want := range []string{"query healthCheck", "mutation RegisterConnector", "mutation PingConnector", "query GetConnector",
		"mutation workAdd", "mutation addExpectations", "mutation workToProcessed", "mutation UserAdd", "query UserList",
		"mutation ConnectorDeletionMutation", "query Me"} {
		if !contains(ops, want) {
			t.Errorf("pycti did not send %s; it sent %v", want, ops)
		}
	}
	t.Logf("GraphQL operations pycti sent: %s", strings.Join(ops, ", "))
	t.Logf("whole test %s", time.Since(began).Round(time.Millisecond))
}

// isoDuration is FIXTURE_INTERVAL's ISO 8601 form.
func isoDuration(d time.Duration) string {
	return "PT" + strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "S"
}

// gqlRaw posts a query with variables as token.
func gqlRaw(t *testing.T, base, token, query string, vars map[string]any) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out gqlResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// gqlOK is gqlRaw failing the test on errors, decoding data into out.
func gqlOK(t *testing.T, base, token, query string, vars map[string]any, out any) {
	t.Helper()
	gqlRaw(t, base, token, query, vars).mustData(t, query, out)
}

// checkErrorShape asserts OpenCTI's error shape and returns extensions.data.
func checkErrorShape(t *testing.T, r gqlResponse, name string, status int, genre string) map[string]any {
	t.Helper()
	if len(r.Errors) != 1 {
		t.Errorf("want one %s error, got %+v", name, r.Errors)
		return nil
	}
	e := r.Errors[0]
	data, _ := e.Extensions["data"].(map[string]any)
	if e.Name != name || e.Extensions["code"] != name || e.Message == "" || len(e.Locations) == 0 || len(e.Path) == 0 ||
		data["http_status"] != float64(status) || data["genre"] != genre {
		t.Errorf("error = %+v, want name/code %s, message, locations, path, data {http_status %d, genre %s}", e, name, status, genre)
	}
	return data
}

func findGroup(t *testing.T, base, name string) string {
	t.Helper()
	var out struct {
		Groups struct {
			Edges []struct{ Node struct{ ID, Name string } }
		}
	}
	gqlOK(t, base, testToken, `query Groups($filters: FilterGroup) { groups(filters: $filters) { edges { node { id name } } } }`,
		map[string]any{"filters": nameFilter("name", name)}, &out)
	if len(out.Groups.Edges) != 1 {
		t.Fatalf("groups named %s: %+v", name, out)
	}
	return out.Groups.Edges[0].Node.ID
}

func patchUser(t *testing.T, base, id, key, value string) {
	t.Helper()
	gqlOK(t, base, testToken, `mutation E($id: ID!, $input: [EditInput]!) { userEdit(id: $id) { fieldPatch(input: $input) { id } } }`,
		map[string]any{"id": id, "input": []any{map[string]any{"key": key, "value": []string{value}}}}, nil)
}

// listedConnector is an entry of connectors.
type listedConnector struct {
	ID, Name        string
	Active          bool
	BuiltIn         bool     `json:"built_in"`
	ConnectorType   string   `json:"connector_type"`
	ConnectorScope  []string `json:"connector_scope"`
	ConnectorState  *string  `json:"connector_state"`
	ConnectorUserID string   `json:"connector_user_id"`
	CreatedAt       string   `json:"created_at"`
	UpdatedAt       string   `json:"updated_at"`
}

// runs is the run count the fixture keeps in its state (0 before the first).
func (c listedConnector) runs() int {
	if c.ConnectorState == nil {
		return 0
	}
	var s struct{ Runs int }
	_ = json.Unmarshal([]byte(*c.ConnectorState), &s)
	return s.Runs
}

func listConnectors(t *testing.T, base string) map[string]listedConnector {
	t.Helper()
	var out struct{ Connectors []listedConnector }
	gqlOK(t, base, testToken, `{ connectors { id name active built_in connector_type connector_scope connector_state connector_user_id created_at updated_at } }`, nil, &out)
	m := map[string]listedConnector{}
	for _, c := range out.Connectors {
		m[c.ID] = c
	}
	return m
}

// waitConnector polls connectors until the connector is listed and ok holds.
func waitConnector(t *testing.T, base, id string, fx fixtureLog, ok func(listedConnector) bool) listedConnector {
	t.Helper()
	deadline := time.Now().Add(*fixtureWait)
	for {
		if c, found := listConnectors(t, base)[id]; found && ok(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("connector %s not as expected within %s: %+v\nfixture log:\n%s", id, *fixtureWait, listConnectors(t, base)[id], fx.tail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func dialStack(t *testing.T, cfg Config) *amqp.Connection {
	t.Helper()
	b := newRabbitBackend(cfg.RabbitMQ)
	conn, err := b.dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// waitMessage gets (without acknowledging) the first message of a queue.
func waitMessage(t *testing.T, conn *amqp.Connection, queue string, fx fixtureLog) amqp.Delivery {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(*fixtureWait)
	for {
		msg, ok, err := ch.Get(queue, false)
		if err != nil {
			t.Fatalf("cannot read %s: %v", queue, err)
		}
		if ok {
			return msg
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message in %s within %s\nfixture log:\n%s", queue, *fixtureWait, fx.tail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkBindings asks the management API how the connector's queues are bound.
func checkBindings(t *testing.T, st stacktest.Stack, prefix, id string) {
	t.Helper()
	for _, b := range []struct{ exchange, queue, routing string }{
		{prefix + "_amqp.connector.exchange", prefix + "_listen_" + id, prefix + "_listen_routing_" + id},
		{prefix + "_amqp.worker.exchange", prefix + "_push_" + id, prefix + "_push_routing_" + id},
	} {
		u := fmt.Sprintf("http://%s:%d/api/bindings/%s/e/%s/q/%s", st.RabbitMQHost, st.RabbitMQMgmtPort,
			url.PathEscape(st.RabbitMQVHost), url.PathEscape(b.exchange), url.PathEscape(b.queue))
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.SetBasicAuth(st.RabbitMQUser, st.RabbitMQPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var bindings []struct {
			RoutingKey string `json:"routing_key"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&bindings)
		resp.Body.Close()
		if len(bindings) != 1 || bindings[0].RoutingKey != b.routing {
			t.Errorf("bindings of %s to %s = %+v, want routing key %s", b.queue, b.exchange, bindings, b.routing)
		}
	}
}

// waitQueueDetails reads connector(id).connector_queue_details as the
// connector does, until RabbitMQ's statistics show the bundle.
func waitQueueDetails(t *testing.T, base, token, id string) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(*fixtureWait)
	for {
		var out struct {
			Connector struct {
				Details map[string]float64 `json:"connector_queue_details"`
			}
		}
		gqlOK(t, base, token, `query GetConnector($id: String!) { connector(id: $id) { id connector_queue_details { messages_number messages_size } } }`,
			map[string]any{"id": id}, &out)
		if d := out.Connector.Details; d["messages_number"] == 1 && d["messages_size"] > 0 {
			return d
		}
		if time.Now().After(deadline) {
			t.Errorf("connector_queue_details = %v, want 1 message", out.Connector.Details)
			return out.Connector.Details
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func lastJSONLine(out []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	return lines[len(lines)-1]
}

// fixtureLog is a running fixture whose output can be shown.
type fixtureLog interface{ tail() string }

// pebbleFixture is the connector fixture running as a Pebble service.
type pebbleFixture struct{ pc *client.Client }

// startFixtureUnderPebble starts a private Pebble (the stack's binary) and runs
// the fixture there as service "connector" of layer "connector-<name>".
func startFixtureUnderPebble(t *testing.T, python, script string, c connectorfixture.Config) *pebbleFixture {
	t.Helper()
	pc, err := client.New(&client.Config{Socket: stacktest.Pebble(t)})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range c.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	layer, err := yaml.Marshal(map[string]any{"summary": "connector " + c.Name, "services": map[string]any{"connector": map[string]any{
		"override": "replace", "summary": "socflow connector fixture (pycti)", "startup": "enabled",
		"command": connectorfixture.PebbleCommand(python, script), "on-failure": "restart", "environment": env}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.AddLayer(&client.AddLayerOptions{Combine: true, Label: "connector-" + c.Name, LayerData: layer}); err != nil {
		t.Fatal(err)
	}
	id, err := pc.Start(&client.ServiceOptions{Names: []string{"connector"}})
	if err == nil {
		_, err = pc.WaitChange(id, &client.WaitChangeOptions{Timeout: 30 * time.Second})
	}
	p := &pebbleFixture{pc: pc}
	if err != nil {
		t.Fatalf("cannot start the fixture under Pebble: %v\n%s", err, p.tail())
	}
	return p
}

// stop stops the service (SIGTERM, as for any Pebble service).
func (p *pebbleFixture) stop(t *testing.T) {
	t.Helper()
	id, err := p.pc.Stop(&client.ServiceOptions{Names: []string{"connector"}})
	if err == nil {
		_, err = p.pc.WaitChange(id, &client.WaitChangeOptions{Timeout: 30 * time.Second})
	}
	if err != nil {
		t.Errorf("cannot stop the fixture service: %v", err)
	}
}

func (p *pebbleFixture) tail() string {
	var b strings.Builder
	_ = p.pc.Logs(&client.LogsOptions{N: 30, Services: []string{"connector"}, WriteLog: func(e client.LogEntry) error {
		b.WriteString(e.Message)
		return nil
	}})
	return b.String()
}

// fixtureProc is the connector fixture running as a process.
type fixtureProc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

func startFixture(t *testing.T, python, script string, c connectorfixture.Config, logPath string) *fixtureProc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	argv := connectorfixture.Command(python, script)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), c.Env()...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &fixtureProc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM, as Pebble does, then SIGKILL after 10 s.
func (p *fixtureProc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitExit returns the exit code (128+signal for a signal), or fails.
func (p *fixtureProc) waitExit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("fixture still running after %s\n%s", within, p.tail())
	}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *fixtureProc) log() string { b, _ := os.ReadFile(p.logPath); return string(b) }

func (p *fixtureProc) tail() string {
	lines := strings.Split(strings.TrimSpace(p.log()), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// opRecorder is a reverse proxy in front of the platform that records the
// GraphQL operations (type and name) its clients send.
type opRecorder struct {
	mu  sync.Mutex
	ops map[string]bool
}

var operationRE = regexp.MustCompile(`^\s*(query|mutation)\s+(\w+)`)

// proxy serves the platform's API (base URL with APP__BASE_PATH) and returns
// the URL that stands for base.
func (r *opRecorder) proxy(t *testing.T, base string) string {
	t.Helper()
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	basePath := target.Path
	target.Path = ""
	rp := httputil.NewSingleHostReverseProxy(target)
	// A fixture killed mid-request is expected here, not worth a log line.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		var q struct{ Query string }
		if json.Unmarshal(body, &q) == nil {
			if m := operationRE.FindStringSubmatch(q.Query); m != nil {
				r.mu.Lock()
				if r.ops == nil {
					r.ops = map[string]bool{}
				}
				r.ops[m[1]+" "+m[2]] = true
				r.mu.Unlock()
			}
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + basePath
}

func (r *opRecorder) operations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for op := range r.ops {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}
