package e2e

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/connectorfixture"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/openctiapi"
	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

// TestOpenCTIAPIConnectorUsers runs the API client calls connectors need (issue 10)
// against a deployed platform: groups are found by name; a user is added once, and a
// second add of the same email is the platform's "User already exists" carrying the
// first user's id (what makes a retried userAdd safe); the user is found by email and
// deactivated; deleting a connector that is not registered is not an error.
func TestOpenCTIAPIConnectorUsers(t *testing.T) {
	_, api, _ := deployedPlatform(t)
	ctx := context.Background()

	group, err := api.GroupID(ctx, opencti.ConnectorGroup(opencti.ExternalImport))
	if err != nil || group == "" {
		t.Fatalf("Connectors group: %q %v", group, err)
	}
	if _, err := api.GroupID(ctx, "No Such Group"); err == nil {
		t.Error("an unknown group was found")
	}
	email := opencti.ConnectorEmail("mitre")
	if u, err := api.UserByEmail(ctx, email); err != nil || u != nil {
		t.Fatalf("user before it was added: %+v %v", u, err)
	}
	nu := openctiapi.NewUser{Name: opencti.ConnectorUser("mitre"), Email: email, Password: uuid.NewString(), GroupIDs: []string{group}}
	added, err := api.AddUser(ctx, nu)
	if err != nil || added.ID == "" || added.APIToken == "" || !slices.Equal(added.Groups, []string{"Connectors"}) || added.AccountStatus != openctiapi.AccountActive {
		t.Fatalf("AddUser: %+v %v", added, err)
	}
	_, err = api.AddUser(ctx, nu)
	var exists *openctiapi.UserExistsError
	if !errors.As(err, &exists) || exists.ID != added.ID || !errors.Is(err, openctiapi.ErrUserExists) {
		t.Errorf("second AddUser of the same email: %v, want UserExistsError with id %s", err, added.ID)
	}
	if err := api.SetAccountStatus(ctx, added.ID, openctiapi.AccountInactive); err != nil {
		t.Fatal(err)
	}
	found, err := api.UserByEmail(ctx, email)
	if err != nil || found == nil || found.ID != added.ID || found.AccountStatus != openctiapi.AccountInactive || found.APIToken != added.APIToken {
		t.Errorf("user after deactivation: %+v %v", found, err)
	}
	users, err := api.Users(ctx)
	if err != nil || !slices.ContainsFunc(users, func(u openctiapi.User) bool { return u.Name == "connector-mitre" }) {
		t.Errorf("Users: %d users, %v", len(users), err)
	}
	if list, err := api.Connectors(ctx); err != nil || len(list) != 0 {
		t.Errorf("Connectors of a fresh platform: %+v %v, want none besides the built-in ones", list, err)
	}
	if err := api.DeleteConnector(ctx, uuid.NewString()); err != nil {
		t.Errorf("deleting a connector that is not registered: %v", err)
	}
}

// deployedPlatform deploys an instance and returns it, an admin API client of its
// platform and the secret store its worker used.
func deployedPlatform(t *testing.T) (opencti.Instance, *openctiapi.Client, string) {
	t.Helper()
	c := temporalClient(t)
	store := t.TempDir()
	queue := inProcessWorker(t, c, store)
	inst := newInstance(t, instanceOpts{initDelay: time.Second})
	run := startDeploy(t, c, queue, inst)
	if err := run.Get(context.Background(), nil); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	token, err := os.ReadFile(filepath.Join(store, inst.Name, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	api := &openctiapi.Client{BaseURL: opencti.LocalURL(opencti.Input{Instance: inst}), Token: strings.TrimSpace(string(token)),
		HTTP: &http.Client{Timeout: 20 * time.Second}}
	return inst, api, store
}

// TestEnsureConnectorUserIsIdempotent: EnsureConnectorUser adds connector-<name> once
// in its group (Administrators for an export connector), and a second call — as a
// retry after a lost answer, or a redeploy — finds it: same user, same token, same
// CONNECTOR_ID, nothing created. A user added before the call (a userAdd whose worker
// died before recording it) is found, not duplicated. A deactivated user is
// reactivated; DeactivateConnectorUsers deactivates the connector-* users not kept,
// a hand-made connector-ghost included, and nothing else.
func TestEnsureConnectorUserIsIdempotent(t *testing.T) {
	inst, api, store := deployedPlatform(t)
	ctx := context.Background()
	acts := &activities.Activities{Secrets: &secrets.Store{Dir: store}}
	admin := secrets.Ref(inst.Name, "admin-token")
	ensure := func(name string, typ opencti.ConnectorType) activities.EnsureConnectorUserResult {
		t.Helper()
		res, err := acts.EnsureConnectorUser(ctx, activities.EnsureConnectorUserInput{Instance: inst, AdminToken: admin, Name: name, Type: typ})
		if err != nil {
			t.Fatalf("EnsureConnectorUser %s: %v", name, err)
		}
		return res
	}
	first := ensure("export", opencti.InternalExportFile)
	again := ensure("export", opencti.InternalExportFile)
	if !first.Created || again.Created || again.UserID != first.UserID || again.Token != first.Token || again.ConnectorID != first.ConnectorID {
		t.Errorf("second EnsureConnectorUser: %+v, first %+v", again, first)
	}
	u, err := api.UserByEmail(ctx, opencti.ConnectorEmail("export"))
	if err != nil || u == nil || !slices.Equal(u.Groups, []string{"Administrators"}) {
		t.Fatalf("export connector's user: %+v %v", u, err)
	}
	token, err := acts.Secrets.Resolve(first.Token)
	if err != nil || token != u.APIToken {
		t.Errorf("stored token %q (%v), the user's is %q", token, err, u.APIToken)
	}
	id, err := acts.Secrets.Resolve(first.ConnectorID)
	if _, perr := uuid.Parse(id); err != nil || perr != nil {
		t.Errorf("CONNECTOR_ID %q: %v %v", id, err, perr)
	}

	group, err := api.GroupID(ctx, "Connectors")
	if err != nil {
		t.Fatal(err)
	}
	lost, err := api.AddUser(ctx, openctiapi.NewUser{Name: "connector-mitre", Email: opencti.ConnectorEmail("mitre"), Password: uuid.NewString(), GroupIDs: []string{group}})
	if err != nil {
		t.Fatal(err)
	}
	if got := ensure("mitre", opencti.ExternalImport); got.Created || got.UserID != lost.ID {
		t.Errorf("EnsureConnectorUser after a lost userAdd: %+v, want the user %s found", got, lost.ID)
	}

	_, err = api.AddUser(ctx, openctiapi.NewUser{Name: "connector-ghost", Email: "ghost@opencti.local", Password: uuid.NewString(), GroupIDs: []string{group}})
	if err != nil {
		t.Fatal(err)
	}
	off, err := acts.DeactivateConnectorUsers(ctx, activities.DeactivateConnectorUsersInput{Instance: inst, AdminToken: admin, Keep: []string{"mitre"}})
	if err != nil || !slices.Equal(off.Deactivated, []string{"connector-export", "connector-ghost"}) {
		t.Errorf("DeactivateConnectorUsers: %+v %v, want export and ghost", off, err)
	}
	for email, want := range map[string]string{"ghost@opencti.local": openctiapi.AccountInactive, opencti.ConnectorEmail("mitre"): openctiapi.AccountActive} {
		if u, err := api.UserByEmail(ctx, email); err != nil || u == nil || u.AccountStatus != want {
			t.Errorf("%s after DeactivateConnectorUsers: %+v %v, want %s", email, u, err, want)
		}
	}
	if u, err := api.UserByEmail(ctx, opencti.DefaultAdminEmail); err != nil || u == nil || u.AccountStatus != openctiapi.AccountActive {
		t.Errorf("the admin after DeactivateConnectorUsers: %+v %v", u, err)
	}
	back := ensure("export", opencti.InternalExportFile)
	if !back.Reactivated || back.Created || back.UserID != first.UserID || back.ConnectorID != first.ConnectorID {
		t.Errorf("the export connector back: %+v, want its user reactivated, same CONNECTOR_ID", back)
	}

}

// TestConnectorRunsUnderPebbleWithPycti runs the pycti connector fixture the way
// socflow configures a connector, then removes it and brings it back: EnsureConnectorUser gives it a user, token and
// CONNECTOR_ID, ApplyConnectorPlan pushes its layer into its own container's Pebble
// (secrets only as references until then), and Pebble starts it. The real connector
// library registers it with its own user and pings; after a restart of its service,
// and a second EnsureConnectorUser as a redeploy makes, it is the same connector: same
// CONNECTOR_ID, same user, no user added, token unchanged. RemoveConnector stops it,
// retires its service and deletes its registration (a second call finds nothing to
// do), DeactivateConnectorUsers deactivates its user; brought back, the same user is
// reactivated and it registers again under the same CONNECTOR_ID.
func TestConnectorRunsUnderPebbleWithPycti(t *testing.T) {
	python := os.Getenv("SOCFLOW_PYCTI_PYTHON")
	if python == "" {
		t.Fatal("SOCFLOW_PYCTI_PYTHON is not set: run deploy/local/stack up, which installs pycti")
	}
	inst, api, store := deployedPlatform(t)
	ctx := context.Background()
	acts := &activities.Activities{Secrets: &secrets.Store{Dir: store}}
	admin := secrets.Ref(inst.Name, "admin-token")
	script, err := connectorfixture.WriteScript(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cn := opencti.Connector{Name: "fixture", Type: opencti.ExternalImport, Scope: []string{"identity"},
		Command: connectorfixture.PebbleCommand(python, script), Pebble: spec.Pebble{Socket: stacktest.Pebble(t)},
		Config: map[string]any{"fixture-interval": "PT2S", "fixture-identity-name": "socflow " + inst.Name}}
	if err := opencti.ValidateConnectors([]opencti.Connector{cn}); err != nil {
		t.Fatal(err)
	}
	user, err := acts.EnsureConnectorUser(ctx, activities.EnsureConnectorUserInput{Instance: inst, AdminToken: admin, Name: cn.Name, Type: cn.Type})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := acts.ApplyConnectorPlan(ctx, activities.ApplyConnectorPlanInput{Instance: inst, Connector: cn, Token: user.Token, ConnectorID: user.ConnectorID})
	if err != nil || !slices.Equal(ch.Added, []string{opencti.ConnectorService}) {
		t.Fatalf("ApplyConnectorPlan: %+v %v", ch, err)
	}
	svc := []string{opencti.ConnectorService}
	if _, err := acts.StartPebbleServices(ctx, activities.StartPebbleServicesInput{Pebble: cn.Pebble, Services: svc}); err != nil {
		t.Fatalf("start: %v\n%s", err, strings.Join(serviceLogs(t, cn.Pebble.Socket, opencti.ConnectorService), ""))
	}
	t.Cleanup(func() {
		_, _ = acts.StopPebbleServices(context.Background(), activities.StopPebbleServicesInput{Pebble: cn.Pebble, Services: svc})
	})
	id, err := acts.Secrets.Resolve(user.ConnectorID)
	if err != nil {
		t.Fatal(err)
	}
	registered := waitConnector(t, api, id, cn.Pebble.Socket, func(openctiapi.Connector) bool { return true })
	if registered.Name != cn.Name || !registered.Active {
		t.Errorf("registered connector %+v", registered)
	}
	waitConnector(t, api, id, cn.Pebble.Socket, func(c openctiapi.Connector) bool { return c.UpdatedAt != registered.UpdatedAt })

	before, err := api.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acts.RestartPebbleServices(ctx, activities.RestartPebbleServicesInput{Pebble: cn.Pebble, Services: svc}); err != nil {
		t.Fatal(err)
	}
	again, err := acts.EnsureConnectorUser(ctx, activities.EnsureConnectorUserInput{Instance: inst, AdminToken: admin, Name: cn.Name, Type: cn.Type})
	if err != nil || again.Created || again.UserID != user.UserID || again.ConnectorID != user.ConnectorID {
		t.Errorf("EnsureConnectorUser again: %+v %v", again, err)
	}
	if ch, err := acts.ApplyConnectorPlan(ctx, activities.ApplyConnectorPlanInput{Instance: inst, Connector: cn, Token: again.Token, ConnectorID: again.ConnectorID}); err != nil ||
		len(ch.Added)+len(ch.Changed) != 0 {
		t.Errorf("re-applying the same connector changed it: %+v %v", ch, err)
	}
	after := waitConnector(t, api, id, cn.Pebble.Socket, func(c openctiapi.Connector) bool { return c.UpdatedAt > registered.UpdatedAt })
	list, err := api.Connectors(ctx)
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Errorf("connectors after the restart: %+v %v, want the one %s", list, err, id)
	}
	users, err := api.Users(ctx)
	if err != nil || len(users) != len(before) {
		t.Errorf("users after the restart and a second ensure: %d, before %d (%v)", len(users), len(before), err)
	}
	t.Logf("connector %s registered and pinging (last ping %s)", id, after.UpdatedAt)

	// Removal: stopped, retired from its layer, unregistered; its user deactivated.
	rm := activities.RemoveConnectorInput{Instance: inst, AdminToken: admin, Connector: cn, ConnectorID: again.ConnectorID}
	removed, err := acts.RemoveConnector(ctx, rm)
	if err != nil || !removed.Stopped || !removed.Unregistered {
		t.Fatalf("RemoveConnector: %+v %v", removed, err)
	}
	if list, err := api.Connectors(ctx); err != nil || len(list) != 0 {
		t.Errorf("connectors after the removal: %+v %v", list, err)
	}
	if got := activeServices(t, cn.Pebble.Socket); len(got) != 0 {
		t.Errorf("active services in the connector's container after the removal: %v", got)
	}
	if twice, err := acts.RemoveConnector(ctx, rm); err != nil || twice.Stopped || twice.Unregistered {
		t.Errorf("a second RemoveConnector: %+v %v, want nothing left to do", twice, err)
	}
	off, err := acts.DeactivateConnectorUsers(ctx, activities.DeactivateConnectorUsersInput{Instance: inst, AdminToken: admin})
	if err != nil || !slices.Equal(off.Deactivated, []string{"connector-fixture"}) {
		t.Errorf("DeactivateConnectorUsers after the removal: %+v %v", off, err)
	}

	// Back: the same user reactivated, the same CONNECTOR_ID, the retired service added again.
	back, err := acts.EnsureConnectorUser(ctx, activities.EnsureConnectorUserInput{Instance: inst, AdminToken: admin, Name: cn.Name, Type: cn.Type})
	if err != nil || !back.Reactivated || back.Created || back.UserID != user.UserID || back.ConnectorID != user.ConnectorID {
		t.Errorf("EnsureConnectorUser after the removal: %+v %v", back, err)
	}
	ch, err = acts.ApplyConnectorPlan(ctx, activities.ApplyConnectorPlanInput{Instance: inst, Connector: cn, Token: back.Token, ConnectorID: back.ConnectorID})
	if err != nil || !slices.Equal(ch.Added, svc) {
		t.Fatalf("ApplyConnectorPlan after the removal: %+v %v", ch, err)
	}
	if _, err := acts.StartPebbleServices(ctx, activities.StartPebbleServicesInput{Pebble: cn.Pebble, Services: svc}); err != nil {
		t.Fatal(err)
	}
	waitConnector(t, api, id, cn.Pebble.Socket, func(openctiapi.Connector) bool { return true })
}

// waitConnector polls the platform's connectors until the one with id satisfies ok.
func waitConnector(t *testing.T, api *openctiapi.Client, id, socket string, ok func(openctiapi.Connector) bool) openctiapi.Connector {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		list, err := api.Connectors(context.Background())
		for _, c := range list {
			if err == nil && c.ID == id && ok(c) {
				return c
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("connector %s never got there; its output:\n%s", id, strings.Join(serviceLogs(t, socket, opencti.ConnectorService), ""))
	return openctiapi.Connector{}
}
