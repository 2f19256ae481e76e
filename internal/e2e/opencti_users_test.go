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
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/openctiapi"
	"github.com/socflow/socflow/internal/secrets"
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
