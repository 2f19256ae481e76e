package activities_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/socflow/socflow/internal/stacktest"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/standin/wazuhstandin"
	"github.com/socflow/socflow/internal/wazuhapi"
)

// wazuhManager is the Wazuh manager stand-in installed in a temporary home and run
// as real processes (wazuh-control and its detached daemons); Install stops them at
// the end of the test.
type wazuhManager struct {
	t    *testing.T
	home string
	env  []string
	url  string
}

func startWazuhManager(t *testing.T, cluster *wazuhstandin.ClusterOptions) *wazuhManager {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the wazuh manager stand-in")
	}
	home := t.TempDir()
	if err := wazuhstandin.Install(t, home); err != nil {
		t.Fatal(err)
	}
	o := wazuhstandin.NodeOptions{RemotePort: freePort(t), AuthPort: freePort(t), APIPort: freePort(t), Cluster: cluster}
	if err := wazuhstandin.WriteConfig(home, o); err != nil {
		t.Fatal(err)
	}
	m := &wazuhManager{t: t, home: home, env: append(os.Environ(), wazuhstandin.FastTimings().Env()...),
		url: fmt.Sprintf("https://127.0.0.1:%d", o.APIPort)}
	m.control("start")
	return m
}

// freePort is a free TCP port on 127.0.0.1 (stacktest.FreePort).
func freePort(t *testing.T) int { return stacktest.FreePort(t) }

// control runs <home>/bin/wazuh-control and fails the test unless it exits 0.
func (m *wazuhManager) control(args ...string) {
	m.t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(filepath.Join(m.home, "bin", "wazuh-control"), args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = m.env, &out, &out
	if err := cmd.Run(); err != nil {
		m.t.Fatalf("wazuh-control %v: %v\n%s", args, err, out.String())
	}
}

// cert is the API's self-signed certificate, as socflow reads it from the container.
func (m *wazuhManager) cert() string {
	m.t.Helper()
	raw, err := os.ReadFile(filepath.Join(m.home, "api/configuration/ssl/server.crt"))
	if err != nil {
		m.t.Fatal(err)
	}
	return string(raw)
}

// client is an API client of the test's own, to look at the manager from outside.
func (m *wazuhManager) client() *wazuhapi.Client {
	m.t.Helper()
	c, err := wazuhapi.New(wazuhapi.Options{BaseURL: m.url, CertPEM: []byte(m.cert())})
	if err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(c.Close)
	return c
}

// accepts reports whether the manager accepts user's password.
func (m *wazuhManager) accepts(user, password string) bool {
	m.t.Helper()
	_, err := m.client().Authenticate(context.Background(), user, password)
	if err != nil && !errors.Is(err, wazuhapi.ErrInvalidCredentials) {
		m.t.Fatalf("cannot log in as %s: %v", user, err)
	}
	return err == nil
}

// users returns the manager's users by name, read as wazuh with password.
func (m *wazuhManager) users(password string) (map[string]wazuhapi.User, map[string]int) {
	m.t.Helper()
	ctx := context.Background()
	c := m.client()
	token, err := c.Authenticate(ctx, "wazuh", password)
	if err != nil {
		m.t.Fatal(err)
	}
	users, err := c.Users(ctx, token)
	if err != nil {
		m.t.Fatal(err)
	}
	roles, err := c.Roles(ctx, token)
	if err != nil {
		m.t.Fatal(err)
	}
	byName, roleID := map[string]wazuhapi.User{}, map[string]int{}
	for _, u := range users {
		byName[u.Username] = u
	}
	for _, r := range roles {
		roleID[r.Name] = r.ID
	}
	return byName, roleID
}

func (m *wazuhManager) input(stored map[string]string) activities.ReconcileWazuhAPIUsersInput {
	return activities.ReconcileWazuhAPIUsersInput{Instance: "soc", URL: m.url, APICert: m.cert(),
		Stored: stored, Users: socflowWazuhUsers}
}

func TestReconcileWazuhAPIUsersWithTheStandIn(t *testing.T) {
	m := startWazuhManager(t, nil)

	t.Log("fresh manager, nothing stored: both factory passwords rotated, prometheus created readonly")
	res, err := reconcileWazuhUsers(t, wazuhEnv(), m.input(nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.State != activities.WazuhUsersFresh || !slices.Equal(res.Changed, []string{"wazuh", "wazuh-wui", "prometheus"}) {
		t.Fatalf("fresh run: state %s, changed %v, notes %v", res.State, res.Changed, res.Notes)
	}
	t.Logf("notes: %q", res.Notes)
	stored := res.Passwords
	for _, u := range socflowWazuhUsers {
		p := stored[u.Name]
		if err := wazuhapi.CheckPassword(p); err != nil || len(p) != wazuhapi.DefaultPasswordLength {
			t.Errorf("%s: generated password of %d characters: %v", u.Name, len(p), err)
		}
		if !m.accepts(u.Name, p) {
			t.Errorf("%s: the manager refuses the password the run returned", u.Name)
		}
	}
	if m.accepts("wazuh", "wazuh") || m.accepts("wazuh-wui", "wazuh-wui") {
		t.Error("a factory password still works after the run")
	}
	users, roles := m.users(stored["wazuh"])
	if p := users["prometheus"]; !slices.Equal(p.Roles, []int{roles["readonly"]}) {
		t.Errorf("prometheus has roles %v, want only readonly (%d)", p.Roles, roles["readonly"])
	}

	t.Log("second run with what was stored: nothing changes")
	again, err := reconcileWazuhUsers(t, wazuhEnv(), m.input(stored))
	if err != nil {
		t.Fatal(err)
	}
	if again.State != activities.WazuhUsersInSync || len(again.Changed) != 0 || len(again.Notes) != 0 || !maps.Equal(again.Passwords, stored) {
		t.Fatalf("second run: state %s, changed %v, notes %v, same passwords %v", again.State, again.Changed, again.Notes, maps.Equal(again.Passwords, stored))
	}

	t.Log("restart: the manager's users are back to factory; the stored passwords are set back")
	m.control("restart")
	if !m.accepts("wazuh", "wazuh") || m.accepts("wazuh", stored["wazuh"]) {
		t.Fatal("the stand-in did not reset its users on restart")
	}
	reset, err := reconcileWazuhUsers(t, wazuhEnv(), m.input(stored))
	if err != nil {
		t.Fatal(err)
	}
	if reset.State != activities.WazuhUsersFactoryReset || !slices.Equal(reset.Changed, []string{"wazuh", "wazuh-wui", "prometheus"}) || !maps.Equal(reset.Passwords, stored) {
		t.Fatalf("after restart: state %s, changed %v, notes %v", reset.State, reset.Changed, reset.Notes)
	}
	for _, u := range socflowWazuhUsers {
		if !m.accepts(u.Name, stored[u.Name]) {
			t.Errorf("%s: stored password refused after the repair", u.Name)
		}
	}
	if m.accepts("wazuh", "wazuh") {
		t.Error("factory password still works after the repair")
	}

	t.Log("a stored password the manager refuses, and the factory one refused too: AuthFailed, nothing changed")
	wrong := maps.Clone(stored)
	wrong["wazuh-wui"] = "Not-the-Passw0rd"
	_, err = reconcileWazuhUsers(t, wazuhEnv(), m.input(wrong))
	requirePermanent(t, err, activities.ErrTypeAuthFailed, "as user wazuh-wui", "refused the password socflow stored and the factory password", "instance soc")
	for _, u := range socflowWazuhUsers {
		if !m.accepts(u.Name, stored[u.Name]) {
			t.Errorf("%s: the failed run changed its password", u.Name)
		}
	}

	t.Log("prometheus exists with a password socflow does not know: AuthFailed, not a silent reset")
	unknown := maps.Clone(stored)
	delete(unknown, "prometheus")
	_, err = reconcileWazuhUsers(t, wazuhEnv(), m.input(unknown))
	requirePermanent(t, err, activities.ErrTypeAuthFailed, "as user prometheus", "every password socflow knows")

	t.Log("another pinned certificate: refused before any credential is sent")
	in := m.input(stored)
	in.APICert = string(otherCertPEM(t))
	_, err = reconcileWazuhUsers(t, wazuhEnv(), in)
	requirePermanent(t, err, activities.ErrTypeWazuhCertMismatch, "not the pinned one")

	t.Log("manager stopped: not ready, retryable")
	m.control("stop")
	_, err = reconcileWazuhUsers(t, wazuhEnv(), m.input(stored))
	requireRetryable(t, err, "wazuh API not ready at "+m.url)
}

// TestReconcileWazuhAPIUsersResumes runs a retry of an attempt that generated a
// password, applied it and failed before returning: the retry finds it in the
// heartbeat, logs in with it and returns it to be stored.
func TestReconcileWazuhAPIUsersResumes(t *testing.T) {
	m := startWazuhManager(t, nil)
	ctx := context.Background()
	c := m.client()
	token, err := c.Authenticate(ctx, "wazuh-wui", "wazuh-wui")
	if err != nil {
		t.Fatal(err)
	}
	applied, err := wazuhapi.GeneratePassword(wazuhapi.DefaultPasswordLength)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetPassword(ctx, token, 2, applied); err != nil {
		t.Fatal(err)
	}
	env := wazuhEnv()
	env.SetHeartbeatDetails(map[string]any{"generated": map[string]string{"wazuh-wui": applied}, "factorySeen": true})
	res, err := reconcileWazuhUsers(t, env, m.input(nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.Passwords["wazuh-wui"] != applied || res.State != activities.WazuhUsersFresh || !slices.Contains(res.Changed, "wazuh-wui") {
		t.Fatalf("resumed run: state %s, changed %v, notes %v, kept the applied password %v",
			res.State, res.Changed, res.Notes, res.Passwords["wazuh-wui"] == applied)
	}
	for _, u := range socflowWazuhUsers {
		if !m.accepts(u.Name, res.Passwords[u.Name]) {
			t.Errorf("%s: the manager refuses the password the resumed run returned", u.Name)
		}
	}
}

// TestReconcileWazuhAPIUsersReservedRole asks for a role a reserved user cannot
// get: refused before any password changes.
func TestReconcileWazuhAPIUsersReservedRole(t *testing.T) {
	m := startWazuhManager(t, nil)
	in := m.input(nil)
	in.Users = []activities.WazuhAPIUser{{Name: "wazuh", Role: activities.WazuhRoleAdministrator}, {Name: "wazuh-wui", Role: activities.WazuhRoleReadonly}}
	_, err := reconcileWazuhUsers(t, wazuhEnv(), in)
	requirePermanent(t, err, activities.ErrTypeBadConfig, "wazuh-wui the role readonly: it is a reserved user whose roles the API keeps (administrator)")
	if !m.accepts("wazuh", "wazuh") || !m.accepts("wazuh-wui", "wazuh-wui") {
		t.Error("the refused run changed a password")
	}
}

func TestReadWazuhManagerWithTheStandIn(t *testing.T) {
	m := startWazuhManager(t, nil)
	res, err := reconcileWazuhUsers(t, wazuhEnv(), m.input(nil))
	if err != nil {
		t.Fatal(err)
	}
	login := activities.WazuhAPILogin{URL: m.url, APICert: m.cert(), User: "prometheus", Password: spec.SecretRef(res.Passwords["prometheus"])}
	env := wazuhEnv()

	v, err := env.ExecuteActivity(nilActs.ReadWazuhManagerInfo, activities.ReadWazuhManagerInfoInput{Instance: "soc", WazuhAPILogin: login})
	if err != nil {
		t.Fatal(err)
	}
	var info activities.ReadWazuhManagerInfoResult
	if err := v.Get(&info); err != nil {
		t.Fatal(err)
	}
	if info.Version != "4.11.0" || info.Type != "server" {
		t.Errorf("manager info as prometheus: %+v", info)
	}

	v, err = env.ExecuteActivity(nilActs.ReadWazuhCluster, activities.ReadWazuhClusterInput{Instance: "soc", WazuhAPILogin: login})
	if err != nil {
		t.Fatal(err)
	}
	var cluster activities.ReadWazuhClusterResult
	if err := v.Get(&cluster); err != nil {
		t.Fatal(err)
	}
	if cluster.Running || len(cluster.Nodes) != 0 {
		t.Errorf("a manager without <cluster>: %+v", cluster)
	}

	login.Password = "Not-the-Passw0rd"
	_, err = env.ExecuteActivity(nilActs.ReadWazuhManagerInfo, activities.ReadWazuhManagerInfoInput{Instance: "soc", WazuhAPILogin: login})
	requirePermanent(t, err, activities.ErrTypeAuthFailed, "as user prometheus")
}

// TestReadWazuhClusterWithTheStandIn joins a worker to a master (two stand-ins
// with the same key) and reads both nodes through the master's API.
func TestReadWazuhClusterWithTheStandIn(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	port := freePort(t)
	master := startWazuhManager(t, &wazuhstandin.ClusterOptions{NodeName: "master", NodeType: "master", Key: key, Port: port,
		Master: fmt.Sprintf("127.0.0.1:%d", port)})
	startWazuhManager(t, &wazuhstandin.ClusterOptions{NodeName: "worker-1", NodeType: "worker", Key: key, Port: freePort(t),
		Master: fmt.Sprintf("127.0.0.1:%d", port)})
	login := activities.WazuhAPILogin{URL: master.url, APICert: master.cert(), User: "wazuh", Password: "wazuh"}
	var cluster activities.ReadWazuhClusterResult
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		v, err := wazuhEnv().ExecuteActivity(nilActs.ReadWazuhCluster, activities.ReadWazuhClusterInput{Instance: "soc", WazuhAPILogin: login})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Get(&cluster); err != nil {
			t.Fatal(err)
		}
		if len(cluster.Nodes) == 2 || time.Now().After(deadline) {
			break
		}
	}
	names := []string{}
	for _, n := range cluster.Nodes {
		names = append(names, n.Name+"/"+n.Type)
	}
	slices.Sort(names)
	if !cluster.Running || !slices.Equal(names, []string{"master/master", "worker-1/worker"}) {
		t.Fatalf("cluster: %+v", cluster)
	}
}
