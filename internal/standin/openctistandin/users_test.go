package openctistandin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Unit tests of users, groups, connectors and works on the in-memory store;
// connector_stack_test.go runs the same API with pycti against the real stack.

// api is a handler over one shared testState.
type api struct {
	t  *testing.T
	h  http.Handler
	st *apiState
}

func newAPI(t *testing.T) *api {
	st := testState()
	return &api{t: t, h: newHandler("", "public", time.Second, healthyDeps(), st), st: st}
}

// call posts a query with variables as token and decodes the envelope.
func (a *api) call(token, query string, vars map[string]any) gqlResponse {
	a.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	var resp gqlResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		a.t.Fatalf("cannot decode %q: %v", rec.Body.String(), err)
	}
	return resp
}

// ok calls and fails the test on any error, decoding data into out.
func (a *api) ok(token, query string, vars map[string]any, out any) {
	a.t.Helper()
	a.call(token, query, vars).mustData(a.t, query, out)
}

// fails calls and returns the single error, failing the test otherwise.
func (a *api) fails(token, query string, vars map[string]any) gqlErrorShape {
	a.t.Helper()
	resp := a.call(token, query, vars)
	if len(resp.Errors) != 1 {
		a.t.Fatalf("%s: want one error, got %+v (data %s)", firstLine(query), resp.Errors, resp.Data)
	}
	e := resp.Errors[0]
	data, _ := e.Extensions["data"].(map[string]any)
	return gqlErrorShape{Message: e.Message, Name: e.Name, Code: e.Extensions["code"], Data: data, HasLocations: len(e.Locations) > 0, HasPath: len(e.Path) > 0}
}

// gqlErrorShape is what clients read of an OpenCTI error.
type gqlErrorShape struct {
	Message, Name         string
	Code                  any
	Data                  map[string]any
	HasLocations, HasPath bool
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i > 0 {
		return s[:i]
	}
	return s
}

const (
	userAddMutation = `mutation UserAdd($input: UserAddInput!) { userAdd(input: $input) {
		id name user_email api_token account_status groups { edges { node { id name } } } } }`
	groupsByName = `query Groups($filters: FilterGroup) { groups(filters: $filters) { edges { node { id name default_assignation } } } }`
)

type addedUser struct {
	UserAdd struct {
		ID, Name      string
		UserEmail     string `json:"user_email"`
		APIToken      string `json:"api_token"`
		AccountStatus string `json:"account_status"`
		Groups        struct {
			Edges []struct{ Node struct{ ID, Name string } }
		}
	}
}

func nameFilter(key string, values ...string) map[string]any {
	return map[string]any{"mode": "and", "filters": []any{map[string]any{"key": key, "values": values}}, "filterGroups": []any{}}
}

func TestUserAddJoinsDefaultAndRefusesDuplicateEmail(t *testing.T) {
	a := newAPI(t)
	connectors := groupID(a.st, "Connectors")
	var got addedUser
	a.ok(testToken, userAddMutation, map[string]any{"input": map[string]any{
		"name": "connector-alpha", "user_email": "Alpha@OpenCTI.local", "password": "x", "groups": []string{connectors}}}, &got)
	u := got.UserAdd
	var names []string
	for _, e := range u.Groups.Edges {
		names = append(names, e.Node.Name)
	}
	if u.UserEmail != "alpha@opencti.local" || u.AccountStatus != "Active" || len(u.APIToken) != 36 ||
		strings.Join(names, ",") != "Connectors,Default" {
		t.Fatalf("userAdd = %+v, want the email lower-cased, Active, a UUID token, groups Connectors and Default", u)
	}
	e := a.fails(testToken, userAddMutation, map[string]any{"input": map[string]any{
		"name": "again", "user_email": "ALPHA@opencti.local", "groups": []string{connectors}}})
	if e.Name != "FUNCTIONAL_ERROR" || e.Message != "User already exists" || e.Data["user_id"] != u.ID ||
		e.Data["http_status"] != float64(400) || e.Data["genre"] != "BUSINESS" || !e.HasLocations || !e.HasPath {
		t.Errorf("duplicate email: %+v", e)
	}
	// prevent_default_groups keeps the user out of Default.
	a.ok(testToken, userAddMutation, map[string]any{"input": map[string]any{
		"name": "beta", "user_email": "beta@opencti.local", "groups": []string{connectors}, "prevent_default_groups": true}}, &got)
	if len(got.UserAdd.Groups.Edges) != 1 {
		t.Errorf("prevent_default_groups: groups = %+v", got.UserAdd.Groups)
	}
}

func TestUserAddUnknownGroupFailsAfterCreatingTheUser(t *testing.T) {
	a := newAPI(t)
	ghost := "5c7e0a1e-0000-4000-8000-00000000dead"
	e := a.fails(testToken, userAddMutation, map[string]any{"input": map[string]any{
		"name": "connector-ghost", "user_email": "ghost@opencti.local", "groups": []string{ghost}}})
	ids, _ := e.Data["unresolvedIds"].([]any)
	if e.Name != "MISSING_REFERENCE_ERROR" || e.Message != "Element(s) not found" || e.Data["http_status"] != float64(404) ||
		len(ids) != 1 || ids[0] != ghost {
		t.Fatalf("unknown group: %+v", e)
	}
	var users struct {
		Users struct {
			Edges []struct {
				Node struct {
					UserEmail string `json:"user_email"`
					Groups    struct {
						Edges []struct{ Node struct{ Name string } }
					}
				}
			}
		}
	}
	a.ok(testToken, `query U($filters: FilterGroup) { users(filters: $filters) { edges { node { user_email groups { edges { node { name } } } } } } }`,
		map[string]any{"filters": nameFilter("user_email", "ghost@opencti.local")}, &users)
	if len(users.Users.Edges) != 1 || len(users.Users.Edges[0].Node.Groups.Edges) != 1 {
		t.Errorf("after the failed userAdd: users = %+v, want the user created, in Default only", users)
	}
}

func TestTokensOfInactiveUsersAndRenewedTokens(t *testing.T) {
	a := newAPI(t)
	var got addedUser
	a.ok(testToken, userAddMutation, map[string]any{"input": map[string]any{
		"name": "c", "user_email": "c@opencti.local", "groups": []string{groupID(a.st, "Connectors")}}}, &got)
	id, token := got.UserAdd.ID, got.UserAdd.APIToken
	a.ok(token, `{ me { id } }`, nil, nil)
	a.ok(testToken, `mutation E($id: ID!, $input: [EditInput]!) { userEdit(id: $id) { fieldPatch(input: $input) { account_status } } }`,
		map[string]any{"id": id, "input": []any{map[string]any{"key": "account_status", "value": []string{"Inactive"}}}}, nil)
	if e := a.fails(token, `{ me { id } }`, nil); e.Name != "AUTH_REQUIRED" || e.Data["genre"] != "TECHNICAL" {
		t.Errorf("inactive user's token: %+v", e)
	}
	a.ok(testToken, `mutation E($id: ID!, $input: [EditInput]!) { userEdit(id: $id) { fieldPatch(input: $input) { account_status } } }`,
		map[string]any{"id": id, "input": []any{map[string]any{"key": "account_status", "value": []string{"Active"}}}}, nil)
	var renewed struct {
		UserEdit struct {
			TokenRenew struct {
				APIToken string `json:"api_token"`
			}
		}
	}
	a.ok(testToken, `mutation R($id: ID!) { userEdit(id: $id) { tokenRenew { api_token } } }`, map[string]any{"id": id}, &renewed)
	if renewed.UserEdit.TokenRenew.APIToken == token {
		t.Fatal("tokenRenew kept the token")
	}
	if e := a.fails(token, `{ me { id } }`, nil); e.Name != "AUTH_REQUIRED" {
		t.Errorf("old token after renew: %+v", e)
	}
	a.ok(renewed.UserEdit.TokenRenew.APIToken, `{ me { id } }`, nil, nil)
}

func TestGroupsAndMembership(t *testing.T) {
	a := newAPI(t)
	var groups struct {
		Groups struct {
			Edges []struct {
				Node struct {
					ID, Name           string
					DefaultAssignation bool `json:"default_assignation"`
				}
			}
		}
	}
	a.ok(testToken, groupsByName, map[string]any{"filters": nameFilter("name", "Connectors")}, &groups)
	if len(groups.Groups.Edges) != 1 || groups.Groups.Edges[0].Node.Name != "Connectors" {
		t.Fatalf("groups by name = %+v", groups)
	}
	a.ok(testToken, groupsByName, nil, &groups)
	if len(groups.Groups.Edges) != 3 {
		t.Fatalf("groups = %+v, want Administrators, Connectors, Default", groups)
	}
	var got addedUser
	a.ok(testToken, userAddMutation, map[string]any{"input": map[string]any{"name": "x", "user_email": "x@opencti.local"}}, &got)
	admins := groupID(a.st, "Administrators")
	var rel struct {
		UserEdit struct {
			RelationAdd struct {
				From struct{ ID string }
				To   struct{ ID, Name string }
			}
		}
	}
	a.ok(testToken, `mutation M($id: ID!, $group_id: ID!) { userEdit(id: $id) { relationAdd(input: { relationship_type: "member-of", toId: $group_id }) {
		id from { ... on User { id name user_email } } to { ... on Group { id name description } } } } }`,
		map[string]any{"id": got.UserAdd.ID, "group_id": admins}, &rel)
	if rel.UserEdit.RelationAdd.From.ID != got.UserAdd.ID || rel.UserEdit.RelationAdd.To.Name != "Administrators" {
		t.Errorf("relationAdd = %+v", rel)
	}
	e := a.fails(testToken, `mutation M($id: ID!) { userEdit(id: $id) { relationAdd(input: { relationship_type: "member-of", toId: "nope" }) { id } } }`,
		map[string]any{"id": got.UserAdd.ID})
	if e.Name != "MISSING_REFERENCE_ERROR" {
		t.Errorf("relationAdd to an unknown group: %+v", e)
	}
	// The analyst (Default only) may not manage users.
	if e := a.fails("analyst-token", groupsByName, nil); e.Name != "FORBIDDEN_ACCESS" || e.Data["http_status"] != float64(403) {
		t.Errorf("analyst listing groups: %+v", e)
	}
	a.ok(testToken, `mutation D($id: ID!) { userEdit(id: $id) { delete } }`, map[string]any{"id": got.UserAdd.ID}, nil)
	if e := a.fails(testToken, `mutation D($id: ID!) { userEdit(id: $id) { delete } }`, map[string]any{"id": got.UserAdd.ID}); e.Name != "ALREADY_DELETED_ERROR" {
		t.Errorf("deleting a deleted user: %+v", e)
	}
}

const (
	registerMutation = `mutation RegisterConnector($input: RegisterConnectorInput) { registerConnector(input: $input) {
		id connector_state connector_user_id config { connection { host vhost use_ssl port user pass }
		s3 { endpoint port use_ssl bucket_name bucket_region access_key secret_key }
		listen listen_routing listen_exchange push push_routing push_exchange } } }`
	pingMutation = `mutation PingConnector($id: ID!, $state: String, $connectorInfo: ConnectorInfoInput) {
		pingConnector(id: $id, state: $state, connectorInfo: $connectorInfo) { id connector_state
		connector_info { run_and_terminate buffering queue_threshold queue_messages_size next_run_datetime last_run_datetime } } }`
	connectorsQuery = `{ connectors { id name active built_in connector_type connector_scope connector_state updated_at created_at } }`
)

func TestConnectorRegisterPingDelete(t *testing.T) {
	a := newAPI(t)
	var got addedUser
	a.ok(testToken, userAddMutation, map[string]any{"input": map[string]any{
		"name": "connector-f", "user_email": "f@opencti.local", "groups": []string{groupID(a.st, "Connectors")}}}, &got)
	token := got.UserAdd.APIToken
	id := "3c0f7a52-8b1d-4e6f-9a2b-5c4d3e2f1a0b"
	input := map[string]any{"input": map[string]any{"id": id, "name": "fixture", "type": "EXTERNAL_IMPORT", "scope": []string{"identity"},
		"auto": false, "auto_update": false, "enrichment_resolution": "none", "only_contextual": false, "playbook_compatible": false,
		"listen_callback_uri": nil}}
	if e := a.fails("analyst-token", registerMutation, input); e.Name != "FORBIDDEN_ACCESS" {
		t.Errorf("registration by a Default user: %+v", e)
	}
	var reg struct {
		RegisterConnector struct {
			ID              string
			ConnectorUserID string `json:"connector_user_id"`
			Config          struct {
				Push, PushExchange, Listen string
				PushRouting                string `json:"push_routing"`
				S3                         struct {
					BucketName string `json:"bucket_name"`
				}
			}
		}
	}
	a.ok(token, registerMutation, input, &reg)
	c := reg.RegisterConnector
	if c.ID != id || c.ConnectorUserID != got.UserAdd.ID || c.Config.Push != "cti_push_"+id || c.Config.Listen != "cti_listen_"+id ||
		c.Config.PushRouting != "cti_push_routing_"+id || c.Config.S3.BucketName != "cti-bucket" {
		t.Errorf("registerConnector = %+v", c)
	}
	if q := a.st.queues.(*fakeQueues); len(q.registered) != 1 || q.registered[0] != id {
		t.Errorf("queues registered = %v", q.registered)
	}
	a.ok(token, pingMutation, map[string]any{"id": id, "state": `{"runs": 1}`, "connectorInfo": map[string]any{
		"run_and_terminate": false, "buffering": false, "queue_threshold": 500.0, "queue_messages_size": 0.0,
		"next_run_datetime": "2026-11-30T10:00:00Z", "last_run_datetime": nil}}, nil)
	var list struct {
		Connectors []struct {
			ID, Name       string
			Active         bool
			BuiltIn        bool   `json:"built_in"`
			ConnectorState string `json:"connector_state"`
		}
	}
	a.ok(testToken, connectorsQuery, nil, &list)
	var builtIn int
	var mine bool
	for _, c := range list.Connectors {
		if c.BuiltIn {
			builtIn++
		}
		if c.ID == id {
			mine = c.Active && c.ConnectorState == `{"runs": 1}`
		}
	}
	if !mine || builtIn != 2 {
		t.Errorf("connectors = %+v, want ours active with its state, and the 2 built-ins", list)
	}
	e := a.fails(token, pingMutation, map[string]any{"id": "0b8e3f6e-0000-4000-8000-000000000000", "state": "{}"})
	if e.Name != "FUNCTIONAL_ERROR" || e.Message != "No connector found with the specified ID" {
		t.Errorf("ping of an unknown connector: %+v", e)
	}
	var work struct {
		WorkAdd struct{ ID string }
	}
	a.ok(token, `mutation workAdd($connectorId: String!, $friendlyName: String) { workAdd(connectorId: $connectorId, friendlyName: $friendlyName) { id } }`,
		map[string]any{"connectorId": id, "friendlyName": "run"}, &work)
	a.ok(token, `mutation addExpectations($id: ID!, $expectations: Int) { workEdit(id: $id) { addExpectations(expectations: $expectations) } }`,
		map[string]any{"id": work.WorkAdd.ID, "expectations": 1}, nil)
	a.ok(testToken, `mutation ConnectorDeletionMutation($id: ID!) { deleteConnector(id: $id) }`, map[string]any{"id": id}, nil)
	if q := a.st.queues.(*fakeQueues); len(q.unregistered) != 1 {
		t.Errorf("queues unregistered = %v", q.unregistered)
	}
	e = a.fails(testToken, `mutation ConnectorDeletionMutation($id: ID!) { deleteConnector(id: $id) }`, map[string]any{"id": id})
	if e.Name != "ALREADY_DELETED_ERROR" || e.Message != "Already deleted elements" || e.Data["connectorId"] != id {
		t.Errorf("deleting an unknown connector: %+v", e)
	}
	e = a.fails(token, `mutation addExpectations($id: ID!, $expectations: Int) { workEdit(id: $id) { addExpectations(expectations: $expectations) } }`,
		map[string]any{"id": work.WorkAdd.ID, "expectations": 1})
	if e.Name != "WORK_NOT_ALIVE" {
		t.Errorf("work of a deleted connector: %+v", e)
	}
}
