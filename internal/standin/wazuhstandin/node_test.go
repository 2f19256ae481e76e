package wazuhstandin

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"github.com/socflow/socflow/internal/stacktest"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testNode is an installed stand-in in a temporary home, run as a real process.
type testNode struct {
	t    *testing.T
	home string
	env  []string
	api  string // https://127.0.0.1:<port>
}

// newNode installs the stand-in with a minimal configuration on free ports;
// the daemons it starts are stopped at the end of the test.
func newNode(t *testing.T, timings Timings, o NodeOptions) *testNode {
	t.Helper()
	home := t.TempDir()
	if err := Install(t, home); err != nil {
		t.Fatal(err)
	}
	if o.RemotePort == 0 {
		o.RemotePort = freePort(t)
	}
	if o.AuthPort == 0 {
		o.AuthPort = freePort(t)
	}
	if o.APIPort == 0 {
		o.APIPort = freePort(t)
	}
	if err := WriteConfig(home, o); err != nil {
		t.Fatal(err)
	}
	return &testNode{t: t, home: home, env: append(os.Environ(), timings.Env()...),
		api: fmt.Sprintf("https://127.0.0.1:%d", o.APIPort)}
}

// freePort is a free TCP port on 127.0.0.1 (stacktest.FreePort).
func freePort(t *testing.T) int { return stacktest.FreePort(t) }

// control runs <home>/bin/wazuh-control with args and returns stdout, stderr and the exit code.
func (n *testNode) control(args ...string) (string, string, int) {
	n.t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(filepath.Join(n.home, "bin", "wazuh-control"), args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = n.env, &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		n.t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// mustControl runs the control and fails the test unless it exits 0.
func (n *testNode) mustControl(args ...string) string {
	n.t.Helper()
	out, errOut, code := n.control(args...)
	if code != 0 {
		n.t.Fatalf("wazuh-control %v exited %d:\n%s%s", args, code, out, errOut)
	}
	return out
}

func (n *testNode) file(rel string) string {
	raw, _ := os.ReadFile(filepath.Join(n.home, rel))
	return string(raw)
}

// waitFile waits for rel to contain want.
func (n *testNode) waitFile(rel, want string, within time.Duration) {
	n.t.Helper()
	for deadline := time.Now().Add(within); !strings.Contains(n.file(rel), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			n.t.Fatalf("no %q in %s within %s:\n%s", want, rel, within, n.file(rel))
		}
	}
}

// pid returns the pid in the daemon's pid file, or 0.
func (n *testNode) pid(daemon string) int {
	files, _ := filepath.Glob(filepath.Join(n.home, "var/run", daemon+"-*.pid"))
	if len(files) != 1 {
		return 0
	}
	var pid int
	fmt.Sscanf(n.file(strings.TrimPrefix(files[0], n.home+"/")), "%d", &pid)
	return pid
}

var insecure = &http.Client{Timeout: 10 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}

// call makes one API request and decodes the JSON answer.
func (n *testNode) call(method, path, token string, body any) (int, map[string]any) {
	n.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, n.api+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := insecure.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// login authenticates with basic credentials and returns the status and token.
func (n *testNode) login(user, password string) (int, string) {
	n.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.api+"/security/user/authenticate", nil)
	req.SetBasicAuth(user, password)
	resp, err := insecure.Do(req)
	if err != nil {
		n.t.Fatalf("login: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Token string `json:"token"`
		} `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.Data.Token
}

// waitAPI waits until the API port accepts connections.
func (n *testNode) waitAPI(within time.Duration) {
	n.t.Helper()
	addr := strings.TrimPrefix(n.api, "https://")
	for deadline := time.Now().Add(within); ; time.Sleep(20 * time.Millisecond) {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("API %s not up within %s:\n%s", n.api, within, n.file(apiLogRel))
		}
	}
}

// adminToken logs in as wazuh with the factory password.
func (n *testNode) adminToken() string {
	n.t.Helper()
	n.waitAPI(10 * time.Second)
	code, tok := n.login("wazuh", "wazuh")
	if code != http.StatusOK || tok == "" {
		n.t.Fatalf("factory login: %d", code)
	}
	return tok
}

// affected returns data.affected_items of an API answer.
func affected(body map[string]any) []any {
	data, _ := body["data"].(map[string]any)
	items, _ := data["affected_items"].([]any)
	return items
}

// nodeNames returns the names GET /cluster/nodes lists.
func (n *testNode) nodeNames(token string) []string {
	n.t.Helper()
	code, body := n.call(http.MethodGet, "/cluster/nodes", token, nil)
	if code != http.StatusOK {
		n.t.Fatalf("GET /cluster/nodes: %d %v", code, body)
	}
	var names []string
	for _, it := range affected(body) {
		m := it.(map[string]any)
		names = append(names, fmt.Sprintf("%s/%s", m["name"], m["type"]))
	}
	return names
}
