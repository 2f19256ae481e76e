package activities_test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/internal/standin/wazuhstandin"
	"github.com/socflow/socflow/internal/wazuh"
)

// TestReloadWazuhManagerRefusedConfiguration applies a node's plan and reloads its
// manager (the stand-in under a real Pebble), then hands the manager an ossec.conf it
// cannot parse: the reload fails as BadConfig with the manager's own error lines, the
// daemons keep serving, and the last good file is back on disk.
func TestReloadWazuhManagerRefusedConfiguration(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the wazuh manager stand-in under Pebble")
	}
	for _, kv := range wazuhstandin.FastTimings().Env() {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
	root := t.TempDir()
	home := filepath.Join(root, wazuh.DefaultHome)
	if err := wazuhstandin.Install(t, home); err != nil {
		t.Fatal(err)
	}
	stock, err := os.ReadFile("../internal/wazuh/testdata/ossec-stock.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(home, wazuh.OssecConf)
	if err := os.WriteFile(conf, stock, 0o640); err != nil {
		t.Fatal(err)
	}
	inst := wazuh.Instance{Name: "soc", Wazuh: wazuh.Settings{FilebeatCommand: "/bin/false"},
		Nodes: []wazuh.Node{{Pebble: spec.Pebble{Socket: stacktest.Pebble(t)}, Root: root, APIPort: freePort(t), AgentPort: freePort(t),
			EnrolmentPort: freePort(t), ClusterPort: freePort(t), SyslogPort: freePort(t)}},
		Integrations: wazuh.Integrations{Indexer: &spec.OpenSearch{}},
	}.WithDefaults()
	secs := wazuh.InstanceSecrets{AgentPassword: "agent-password", ClusterKey: "0123456789abcdef0123456789abcdef"}

	env := wazuhEnv()
	if _, err := env.ExecuteActivity(nilActs.ApplyWazuhPlan, activities.ApplyWazuhPlanInput{Instance: inst, Secrets: secs}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity(nilActs.ReloadWazuhManager, activities.ReloadWazuhManagerInput{Instance: inst}); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}

	bad := strings.Replace(string(good), "<logall>no</logall>", "<logall>no</logal>", 1)
	if err := os.WriteFile(conf, []byte(bad), 0o640); err != nil {
		t.Fatal(err)
	}
	_, err = env.ExecuteActivity(nilActs.ReloadWazuhManager, activities.ReloadWazuhManagerInput{Instance: inst})
	requirePermanent(t, err, activities.ErrTypeBadConfig, "refused its configuration", "XMLERR", "put the last good ossec.conf back")
	if got, _ := os.ReadFile(conf); string(got) != string(good) {
		t.Error("the refused ossec.conf is still on disk")
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(inst.Nodes[0].APIPort)), 2*time.Second)
	if err != nil {
		t.Fatalf("the API stopped answering after the refused reload: %v", err)
	}
	c.Close()
}
