package wazuhstandin

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartStatusInfoStop(t *testing.T) {
	n := newNode(t, FastTimings(), NodeOptions{})
	out := n.mustControl("info")
	if out != "WAZUH_VERSION=\"v4.11.0\"\nWAZUH_REVISION=\"rc1\"\nWAZUH_TYPE=\"server\"\n" {
		t.Fatalf("info:\n%s", out)
	}
	if v := n.mustControl("info", "-v"); v != "v4.11.0\n" {
		t.Fatalf("info -v: %q", v)
	}

	out = n.mustControl("start")
	want := []string{"Starting Wazuh v4.11.0...", "Started wazuh-apid...", "Started wazuh-authd...", "Started wazuh-analysisd...",
		"Started wazuh-remoted...", "Started wazuh-modulesd...", "Completed."}
	assertInOrder(t, out, want)
	if strings.Contains(out, "wazuh-clusterd") || strings.Contains(out, "wazuh-maild") {
		t.Errorf("start ran clusterd or maild without <cluster> and e-mail:\n%s", out)
	}
	for _, d := range []string{"wazuh-apid", "wazuh-analysisd", "wazuh-remoted", "wazuh-authd", "wazuh-db", "wazuh-execd"} {
		if pid := n.pid(d); pid == 0 || !alive(pid) {
			t.Errorf("%s: no live pid file after start", d)
		}
	}

	out, _, code := n.control("status")
	if code != 1 { // like the real script: any daemon down (here clusterd, maild, ...) makes status exit 1
		t.Errorf("status exit %d", code)
	}
	for _, line := range []string{"wazuh-apid is running...", "wazuh-remoted is running...", "wazuh-clusterd not running...", "wazuh-csyslogd not running..."} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("status lacks %q:\n%s", line, out)
		}
	}

	// The API answers on the port api.yaml names, with a certificate generated at first start.
	tok := n.adminToken()
	if code, body := n.call(http.MethodGet, "/", tok, nil); code != 200 || body["data"].(map[string]any)["api_version"] != "4.11.0" {
		t.Errorf("GET /: %d %v", code, body)
	}
	cert := n.file("api/configuration/ssl/server.crt")
	if !strings.Contains(cert, "BEGIN CERTIFICATE") {
		t.Fatal("no generated certificate")
	}
	if !strings.Contains(n.file(alertsRel), `"description":"Wazuh server started."`) {
		t.Errorf("no rule 502 alert:\n%s", n.file(alertsRel))
	}

	apid := n.pid("wazuh-apid")
	out = n.mustControl("stop")
	assertInOrder(t, out, []string{"Killing wazuh-modulesd...", "wazuh-maild not running...", "Killing wazuh-apid...", "Wazuh v4.11.0 Stopped"})
	if files, _ := filepath.Glob(filepath.Join(n.home, "var/run/*.pid")); len(files) != 0 {
		t.Errorf("pid files left after stop: %v", files)
	}
	if alive(apid) {
		t.Errorf("wazuh-apid (%d) still alive after stop", apid)
	}

	// The certificate is kept across starts.
	n.mustControl("start")
	if n.file("api/configuration/ssl/server.crt") != cert {
		t.Error("certificate regenerated on the second start")
	}
}

func TestMalformedConfigLeavesRunningDaemons(t *testing.T) {
	n := newNode(t, FastTimings(), NodeOptions{})
	n.mustControl("start")
	tok := n.adminToken()
	apid, analysisd := n.pid("wazuh-apid"), n.pid("wazuh-analysisd")
	good := n.file(ossecConfRel)
	broken := strings.Replace(good, "</auth>", "</authx>", 1)
	writeFile(t, filepath.Join(n.home, ossecConfRel), broken)

	for _, action := range []string{"reload", "restart", "start"} {
		out, errOut, code := n.control(action)
		if code != 1 {
			t.Fatalf("%s with a malformed ossec.conf exited %d:\n%s", action, code, out)
		}
		if !strings.Contains(errOut, "wazuh-csyslogd: ERROR: (1226): Error reading XML file 'etc/ossec.conf': XMLERR: Element 'auth' not closed. (line 17).") ||
			!strings.Contains(errOut, "wazuh-csyslogd: CRITICAL: (1202): Configuration error at 'etc/ossec.conf'.") {
			t.Errorf("%s: stderr lacks the parser error:\n%s", action, errOut)
		}
		if !strings.Contains(out, "wazuh-csyslogd: Configuration error. Exiting") || strings.Contains(out, "Killing") {
			t.Errorf("%s: stdout:\n%s", action, out)
		}
	}
	if n.pid("wazuh-apid") != apid || n.pid("wazuh-analysisd") != analysisd || !alive(apid) {
		t.Fatal("the running daemons were touched by a refused reload")
	}
	if code, _ := n.call(http.MethodGet, "/manager/info", tok, nil); code != 200 {
		t.Fatalf("API after refused reload: %d", code)
	}
	code, body := n.call(http.MethodGet, "/manager/configuration/validation", tok, nil)
	if code != 200 || body["error"].(float64) != 1 || !strings.Contains(toJSON(body), "Error validating configuration") {
		t.Errorf("validation of the broken file: %d %v", code, body)
	}

	writeFile(t, filepath.Join(n.home, ossecConfRel), good)
	out := n.mustControl("reload")
	if !strings.Contains(out, "wazuh-execd already running...") || !strings.Contains(out, "Killing wazuh-apid...") {
		t.Errorf("reload keeps wazuh-execd and restarts the rest:\n%s", out)
	}
	if n.pid("wazuh-apid") == apid {
		t.Error("reload did not restart wazuh-apid")
	}
}

func TestSemanticRefusals(t *testing.T) {
	n := newNode(t, FastTimings(), NodeOptions{Cluster: &ClusterOptions{NodeName: "m", NodeType: "master",
		Key: "0123456789abcdef0123456789abcde", Master: "127.0.0.1", Port: freePort(t)}})
	out, _, code := n.control("start")
	if code != 1 || !strings.Contains(out, "wazuh-clusterd: Configuration error. Exiting") || strings.Contains(out, "Started") {
		t.Fatalf("31-character key: exit %d\n%s", code, out)
	}
	if !strings.Contains(n.file(clusterLogRel), "ERROR: [Cluster] [Main] Error 3004 - Error in cluster configuration: Key must be 32 characters long and only have alphanumeric characters") {
		t.Errorf("cluster.log:\n%s", n.file(clusterLogRel))
	}
	if _, err := os.Stat(filepath.Join(n.home, "var/run/wazuh-clusterd.failed")); err != nil {
		t.Errorf("no wazuh-clusterd.failed: %v", err)
	}

	writeFile(t, filepath.Join(n.home, ossecConfRel), strings.Replace(n.file(ossecConfRel), "<node_type>master<", "<node_type>boss<", 1))
	_, errOut, code := n.control("start")
	if code != 1 || !strings.Contains(errOut, "wazuh-analysisd: ERROR: Detected a not allowed node type 'boss'. Valid types are 'master' and 'worker'.") {
		t.Fatalf("node type: exit %d\n%s", code, errOut)
	}
}

func TestKilledDaemonLeavesStalePidFile(t *testing.T) {
	n := newNode(t, FastTimings(), NodeOptions{})
	n.mustControl("start")
	apid := n.pid("wazuh-apid")
	if err := syscall.Kill(apid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); alive(apid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("wazuh-apid survived SIGKILL")
		}
	}
	if n.pid("wazuh-apid") != apid {
		t.Fatal("SIGKILL removed the pid file; the real daemon cannot")
	}
	out, _, _ := n.control("status")
	if !strings.Contains(out, "wazuh-apid: Process ") || !strings.Contains(out, "not used by Wazuh, removing...") ||
		!strings.Contains(out, "wazuh-apid not running...") {
		t.Fatalf("status with a stale pid file:\n%s", out)
	}
	if n.pid("wazuh-apid") != 0 {
		t.Fatal("status left the stale pid file")
	}
	out = n.mustControl("start")
	if !strings.Contains(out, "Started wazuh-apid...") || !strings.Contains(out, "wazuh-remoted already running...") {
		t.Fatalf("start after a crash:\n%s", out)
	}
	n.adminToken()
}

func TestBusyPortFailsTheStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	n := newNode(t, FastTimings(), NodeOptions{RemotePort: busy.Addr().(*net.TCPAddr).Port})
	out, _, code := n.control("start")
	if code != 1 || !strings.Contains(out, "wazuh-remoted did not start correctly.") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !strings.Contains(n.file(ossecLogRel), "wazuh-remoted: CRITICAL: (1206): Unable to Bind port") {
		t.Errorf("ossec.log:\n%s", n.file(ossecLogRel))
	}
}

// TestRealTimings runs a start and a stop with the real default timings.
func TestRealTimings(t *testing.T) {
	if testing.Short() {
		t.Skip("takes ≈ 15 s with the real timings")
	}
	n := newNode(t, RealTimings(), NodeOptions{})
	begin := time.Now()
	out := n.mustControl("start")
	took := time.Since(begin)
	if took < 8*time.Second || took > 30*time.Second {
		t.Errorf("start took %s; a real one takes ≈ 9 s", took)
	}
	assertInOrder(t, out, []string{"Starting Wazuh v4.11.0...", "Completed."})
	n.adminToken()
	begin = time.Now()
	n.mustControl("stop")
	if took := time.Since(begin); took < time.Second {
		t.Errorf("stop took %s; the Python daemons take ≈ 1 s", took)
	}
}

// TestAPIPortOpensAfterThePidFile checks that the API refuses connections
// for APIReady after its pid file exists, as uvicorn does.
func TestAPIPortOpensAfterThePidFile(t *testing.T) {
	timings := FastTimings()
	timings.APIReady = 2 * time.Second
	n := newNode(t, timings, NodeOptions{})
	n.mustControl("start")
	addr := strings.TrimPrefix(n.api, "https://")
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatal("API port open as soon as start completed")
	}
	n.waitAPI(10 * time.Second)
}

func assertInOrder(t *testing.T, out string, want []string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w+"\n")
		if i < 0 {
			t.Fatalf("output lacks %q (in order):\n%s", w, out)
		}
		rest = rest[i+len(w):]
	}
}
