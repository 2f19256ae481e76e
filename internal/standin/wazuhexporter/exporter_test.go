package wazuhexporter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI answers the exporter's calls in Wazuh 4.11's shapes; password is the only
// one it accepts, and it can be changed mid-test as a manager reset would.
type fakeAPI struct {
	mu       sync.Mutex
	password string
	srv      *httptest.Server
}

func newFakeAPI(t *testing.T, password string) *fakeAPI {
	f := &fakeAPI{password: password}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) setPassword(p string) { f.mu.Lock(); f.password = p; f.mu.Unlock() }

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	write := func(status int, v any) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	items := func(v ...any) map[string]any {
		return map[string]any{"data": map[string]any{"affected_items": v, "total_affected_items": len(v), "total_failed_items": 0, "failed_items": []any{}}, "error": 0}
	}
	if r.URL.Path == "/security/user/authenticate" {
		f.mu.Lock()
		ok := r.Header.Get("Authorization") == "Basic "+basic("prometheus", f.password)
		f.mu.Unlock()
		if !ok {
			write(401, map[string]any{"title": "Unauthorized", "detail": "Invalid credentials"})
			return
		}
		write(200, map[string]any{"data": map[string]any{"token": "tok"}, "error": 0})
		return
	}
	if r.Header.Get("Authorization") != "Bearer tok" {
		write(401, map[string]any{"title": "Unauthorized", "detail": "No authorization token provided"})
		return
	}
	switch r.URL.Path {
	case "/":
		write(200, map[string]any{"data": map[string]any{"title": "Wazuh API REST", "api_version": "4.11.0"}, "error": 0})
	case "/overview/agents":
		write(200, map[string]any{"data": map[string]any{"nodes": []any{map[string]any{"node_name": "m-0", "count": 2}},
			"agent_status": map[string]any{"connection": map[string]any{"active": 1, "disconnected": 1, "never_connected": 0, "pending": 0, "total": 2}}}})
	case "/manager/configuration/validation":
		write(200, items(map[string]any{"name": "m-0", "status": "OK"}))
	case "/cluster/healthcheck":
		write(200, items(map[string]any{"info": map[string]any{"name": "m-0", "type": "master", "version": "4.11.0"}}))
	case "/manager/stats/analysisd":
		item := map[string]any{}
		for _, k := range analysisdFields {
			item[k] = 0
		}
		write(200, items(item))
	case "/manager/stats":
		write(400, map[string]any{"title": "Bad Request", "detail": "Stats file does not exist", "error": 1308})
	default:
		write(200, items())
	}
}

func basic(u, p string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(u, p)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// syncBuf is stderr shared with the exporter's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type run struct {
	port   int
	stderr *syncBuf
	done   chan int
	cancel context.CancelFunc
}

func start(t *testing.T, env map[string]string) *run {
	t.Helper()
	r := &run{port: freePort(t), stderr: &syncBuf{}, done: make(chan int, 1)}
	if _, ok := env["EXPORTER_PORT"]; !ok {
		env["EXPORTER_PORT"] = strconv.Itoa(r.port)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	t.Cleanup(cancel)
	go func() {
		r.done <- Main(ctx, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, r.stderr)
	}()
	return r
}

func (f *fakeAPI) env(password string) map[string]string {
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(f.srv.URL, "https://"))
	return map[string]string{"WAZUH_API_HOST": host, "WAZUH_API_PORT": port, "WAZUH_API_USERNAME": "prometheus", "WAZUH_API_PASSWORD": password}
}

func (r *run) get(t *testing.T) (int, string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || strings.Contains(string(b), "wazuh_") {
				return resp.StatusCode, string(b)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics: %v\n%s", err, r.stderr)
		}
	}
}

func (r *run) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-r.done:
		return code
	case <-time.After(10 * time.Second):
		t.Fatalf("the exporter did not exit:\n%s", r.stderr)
		return 0
	}
}

func TestMetricsAndALaterLoginFailure(t *testing.T) {
	api := newFakeAPI(t, "good")
	r := start(t, api.env("good"))
	code, body := r.get(t)
	if code != 200 {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	for _, want := range []string{
		"# TYPE wazuh_agent_status summary\n", "wazuh_active_agents 1.0\n", "wazuh_total_agents 2.0\n",
		`wazuh_agents_count{node_name="m-0"} 2.0`, "# TYPE wazuh_api_info gauge\n", `wazuh_api_info{api_version="4.11.0"} 1.0`,
		`wazuh_validate_configuration_info{node_name="m-0",status="OK"} 1.0`, `nodes_healthcheck_info{node_name="m-0",type="master",version="4.11.0"} 1.0`,
		`analysisd_stats{analysisd_stats="events_dropped"} 0.0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	// /manager/stats answered 400 (no totals yet): a warning, not a failure.
	if !strings.Contains(r.stderr.String(), `"msg": "Got response http code 400`) && !strings.Contains(r.stderr.String(), `"msg":"Got response http code 400`) {
		t.Errorf("no warning for the 400:\n%s", r.stderr)
	}
	// The manager resets its users: every read now fails with a 500, and the
	// exporter keeps running, as prometheus_client's server does.
	api.setPassword("reset")
	code, body = r.get(t)
	if code != 500 || body != "A server error occurred.  Please contact the administrator." {
		t.Errorf("after the reset: %d %q", code, body)
	}
	if !strings.Contains(r.stderr.String(), "KeyError: 'data'") {
		t.Errorf("no traceback:\n%s", r.stderr)
	}
	select {
	case c := <-r.done:
		t.Fatalf("the exporter exited (%d) on a failed read", c)
	default:
	}
}

func TestWrongPasswordAtStartExits1(t *testing.T) {
	api := newFakeAPI(t, "good")
	r := start(t, api.env("wrong"))
	if code := r.exit(t); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	out := r.stderr.String()
	for _, want := range []string{"Starting Wazuh prometheus exporter", "Start collector", "Traceback (most recent call last):", "KeyError: 'data'"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
}

func TestUnreachableAPIExits1(t *testing.T) {
	env := map[string]string{"WAZUH_API_HOST": "127.0.0.1", "WAZUH_API_PORT": strconv.Itoa(freePort(t)), "WAZUH_API_USERNAME": "prometheus", "WAZUH_API_PASSWORD": "x"}
	r := start(t, env)
	if code := r.exit(t); code != 1 || !strings.Contains(r.stderr.String(), "requests.exceptions.ConnectionError") || !strings.Contains(r.stderr.String(), "Connection refused") {
		t.Fatalf("exit %d:\n%s", code, r.stderr)
	}
}

func TestEnvironment(t *testing.T) {
	// An empty password: two critical lines, exit 2.
	r := start(t, map[string]string{"WAZUH_API_HOST": "h", "WAZUH_API_PORT": "55000", "WAZUH_API_USERNAME": "u"})
	if code := r.exit(t); code != 2 || strings.Count(r.stderr.String(), `"level": "critical"`)+strings.Count(r.stderr.String(), `"level":"critical"`) != 2 {
		t.Errorf("no password: exit %d\n%s", code, r.stderr)
	}
	// No port at all: Python's TypeError, exit 1.
	r = start(t, map[string]string{"WAZUH_API_HOST": "h", "WAZUH_API_USERNAME": "u", "WAZUH_API_PASSWORD": "p"})
	if code := r.exit(t); code != 1 || !strings.Contains(r.stderr.String(), "TypeError") {
		t.Errorf("no port: exit %d\n%s", code, r.stderr)
	}
	// The exporter's port in use: OSError, exit 1.
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	api := newFakeAPI(t, "good")
	env := api.env("good")
	env["EXPORTER_PORT"] = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	r = start(t, env)
	if code := r.exit(t); code != 1 || !strings.Contains(r.stderr.String(), "Address already in use") {
		t.Errorf("port in use: exit %d\n%s", code, r.stderr)
	}
}
