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

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/openctiapi"
)

// TestOpenCTIAPIConnectorUsers runs the API client calls connectors need (issue 10)
// against a deployed platform: groups are found by name; a user is added once, and a
// second add of the same email is the platform's "User already exists" carrying the
// first user's id (what makes a retried userAdd safe); the user is found by email and
// deactivated; deleting a connector that is not registered is not an error.
func TestOpenCTIAPIConnectorUsers(t *testing.T) {
	c := temporalClient(t)
	secrets := t.TempDir()
	queue := inProcessWorker(t, c, secrets)
	inst := newInstance(t, instanceOpts{initDelay: time.Second})
	run := startDeploy(t, c, queue, inst)
	if err := run.Get(context.Background(), nil); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	token, err := os.ReadFile(filepath.Join(secrets, inst.Name, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	api := &openctiapi.Client{BaseURL: opencti.LocalURL(opencti.Input{Instance: inst}), Token: strings.TrimSpace(string(token)),
		HTTP: &http.Client{Timeout: 20 * time.Second}}
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
