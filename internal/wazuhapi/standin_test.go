package wazuhapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/socflow/socflow/internal/stacktest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socflow/socflow/internal/standin/wazuhstandin"
	"github.com/socflow/socflow/internal/wazuhapi"
)

// startManager runs the Wazuh manager stand-in (real processes, stopped at the end
// of the test) and returns a client pinned to its certificate, and its home.
func startManager(t *testing.T) (*wazuhapi.Client, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the wazuh manager stand-in")
	}
	home := t.TempDir()
	if err := wazuhstandin.Install(t, home); err != nil {
		t.Fatal(err)
	}
	o := wazuhstandin.NodeOptions{RemotePort: freePort(t), AuthPort: freePort(t), APIPort: freePort(t)}
	if err := wazuhstandin.WriteConfig(home, o); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(filepath.Join(home, "bin", "wazuh-control"), "start")
	cmd.Env, cmd.Stdout, cmd.Stderr = append(os.Environ(), wazuhstandin.FastTimings().Env()...), &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("wazuh-control start: %v\n%s", err, out.String())
	}
	certPEM, err := os.ReadFile(filepath.Join(home, "api/configuration/ssl/server.crt"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := wazuhapi.New(wazuhapi.Options{BaseURL: fmt.Sprintf("https://127.0.0.1:%d", o.APIPort), CertPEM: certPEM, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, home
}

// freePort is a free TCP port on 127.0.0.1 (stacktest.FreePort).
func freePort(t *testing.T) int { return stacktest.FreePort(t) }

// nextSecond waits for the next whole second: the API refuses tokens issued in the
// second a user's tokens were revoked.
func nextSecond() { time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) }

func TestSecurityCallsWithTheStandIn(t *testing.T) {
	c, _ := startManager(t)
	ctx := context.Background()
	token, err := c.Authenticate(ctx, "wazuh", "wazuh")
	if err != nil {
		t.Fatal(err)
	}

	users, err := c.Users(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].Username != "wazuh" || users[0].ID != 1 || users[1].Username != "wazuh-wui" || users[1].ID != 2 {
		t.Fatalf("factory users: %+v", users)
	}
	roles, err := c.Roles(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	roleID := map[string]int{}
	for _, r := range roles {
		roleID[r.Name] = r.ID
	}
	if roleID["administrator"] != 1 || roleID["readonly"] != 2 || !users[0].HasRole(1) {
		t.Fatalf("factory roles: %+v, wazuh has %v", roles, users[0].Roles)
	}

	_, err = c.CreateUser(ctx, token, "prometheus", "prometheus")
	if !errors.Is(err, wazuhapi.ErrPasswordPolicy) || !strings.Contains(err.Error(), "create user prometheus") {
		t.Errorf("weak password at creation: %v", err)
	}
	password, err := wazuhapi.GeneratePassword(wazuhapi.DefaultPasswordLength)
	if err != nil {
		t.Fatal(err)
	}
	prom, err := c.CreateUser(ctx, token, "prometheus", password)
	if err != nil || prom.ID < 100 || len(prom.Roles) != 0 {
		t.Fatalf("create prometheus: %+v %v", prom, err)
	}
	if _, err := c.CreateUser(ctx, token, "prometheus", password); !wazuhapi.HasCode(err, wazuhapi.CodeUserNotCreated) {
		t.Errorf("create it again: %v", err)
	}
	linked, err := c.AddUserRoles(ctx, token, prom.ID, []int{roleID["readonly"]})
	if err != nil || !linked.HasRole(roleID["readonly"]) {
		t.Fatalf("link readonly: %+v %v", linked, err)
	}
	if again, err := c.AddUserRoles(ctx, token, prom.ID, []int{roleID["readonly"]}); err != nil {
		t.Errorf("linking a role the user has is not an error: %+v %v", again, err)
	}
	if _, err := c.AddUserRoles(ctx, token, prom.ID, []int{99}); !wazuhapi.HasCode(err, wazuhapi.CodeRoleNotFound) {
		t.Errorf("link a role that does not exist: %v", err)
	}

	err = c.SetPassword(ctx, token, 2, "wazuh-wui-2")
	if !errors.Is(err, wazuhapi.ErrPasswordPolicy) || !strings.Contains(err.Error(), "update the password of user 2") {
		t.Errorf("weak password at update: %v", err)
	}
	rotated, err := wazuhapi.GeneratePassword(wazuhapi.DefaultPasswordLength)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetPassword(ctx, token, 1, rotated); err != nil {
		t.Fatalf("rotate wazuh: %v", err)
	}
	if _, err := c.Users(ctx, token); !errors.Is(err, wazuhapi.ErrUnauthorized) || errors.Is(err, wazuhapi.ErrInvalidCredentials) {
		t.Errorf("a token of wazuh after its password changed: %v", err)
	}
	if _, err := c.Authenticate(ctx, "wazuh", "wazuh"); !errors.Is(err, wazuhapi.ErrInvalidCredentials) {
		t.Errorf("the old password: %v", err)
	}
	nextSecond()
	if _, err := c.Authenticate(ctx, "wazuh", rotated); err != nil {
		t.Errorf("the new password: %v", err)
	}
	if _, err := c.Authenticate(ctx, "prometheus", password); err != nil {
		t.Errorf("prometheus: %v", err)
	}
}

func TestManagerCallsWithTheStandIn(t *testing.T) {
	c, home := startManager(t)
	ctx := context.Background()
	token, err := c.Authenticate(ctx, "wazuh", "wazuh")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.ManagerInfo(ctx, token)
	if err != nil || info.Version != "v4.11.0" || info.SemVer() != "4.11.0" || info.Type != "server" {
		t.Errorf("manager info: %+v %v", info, err)
	}
	if _, err := c.ClusterNodes(ctx, token); !errors.Is(err, wazuhapi.ErrClusterNotRunning) {
		t.Errorf("cluster nodes without a cluster: %v", err)
	}
	if _, err := c.ClusterHealthcheck(ctx, token); !errors.Is(err, wazuhapi.ErrClusterNotRunning) {
		t.Errorf("cluster healthcheck without a cluster: %v", err)
	}
	v, err := c.ConfigurationValidation(ctx, token)
	if err != nil || len(v) != 1 || !v[0].OK() {
		t.Fatalf("valid configuration: %+v %v", v, err)
	}

	conf := filepath.Join(home, "etc/ossec.conf")
	raw, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(raw), "</global>", "</globl>", 1)
	if err := os.WriteFile(conf, []byte(broken), 0o640); err != nil {
		t.Fatal(err)
	}
	v, err = c.ConfigurationValidation(ctx, token)
	if err != nil || len(v) != 1 || v[0].OK() || v[0].Status != "KO" || !strings.Contains(v[0].Error, "Error validating configuration") {
		t.Fatalf("broken configuration: %+v %v", v, err)
	}
	t.Logf("KO: %s", v[0].Error)
}
