package filebeatstandin

// Runs of the stand-in against the stack's real OpenSearch, and against local HTTPS
// servers for the failures filebeat must survive.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/internal/standin/standinlog"
)

// fast shortens every timing, as a test's environment does for the binary.
var fast = map[string]string{
	"FILEBEAT_STANDIN_SCAN_FREQUENCY": "100ms", "FILEBEAT_STANDIN_BACKOFF": "20ms", "FILEBEAT_STANDIN_MAX_BACKOFF": "100ms",
	"FILEBEAT_STANDIN_FLUSH_TIMEOUT": "50ms", "FILEBEAT_STANDIN_OUTPUT_BACKOFF_INIT": "50ms", "FILEBEAT_STANDIN_OUTPUT_BACKOFF_MAX": "200ms",
}

// running is the stand-in running in process until stop.
type running struct {
	log    *standinlog.SyncBuffer
	cancel context.CancelFunc
	done   chan int
}

func start(t *testing.T, config, data string, env map[string]string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{log: &standinlog.SyncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	args := []string{"-e", "-c", config, "--path.home", moduleHome(t), "--path.data", data, "--path.logs", t.TempDir()}
	go func() { r.done <- Main(ctx, args, envOf(env), io.Discard, r.log) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends the run as SIGTERM does and checks it exits 0.
func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case code := <-r.done:
		if code != 0 {
			t.Errorf("filebeat exited %d after stop:\n%s", code, r.log)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("filebeat did not stop within 10s:\n%s", r.log)
	}
}

func (r *running) waitLog(t *testing.T, s string, n int, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); strings.Count(r.log.String(), s) < n; time.Sleep(20 * time.Millisecond) {
		select {
		case code := <-r.done:
			t.Fatalf("filebeat exited %d:\n%s", code, r.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d× %q not logged within %s:\n%s", n, s, within, r.log)
		}
	}
}

func appendLine(t *testing.T, file, line string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
}

// alert is one line of alerts.json as wazuh-analysisd writes it.
func alert(id string) string {
	return fmt.Sprintf(`{"timestamp":"%s","rule":{"level":5,"description":"sshd: authentication failed.","id":"5716"},"agent":{"id":"000","name":"wazuh-server"},"manager":{"name":"wazuh-server"},"id":"%s","full_log":"Failed password for root","decoder":{"name":"sshd"},"location":"/var/log/auth.log"}`,
		time.Now().UTC().Format("2006-01-02T15:04:05.000-0700"), id)
}

// hits counts the documents of indices matching pattern whose field equals value.
func hits(t *testing.T, base, pattern, field, value string) int {
	t.Helper()
	q := fmt.Sprintf(`{"query":{"term":{%q:%q}}}`, field+".keyword", value) // dynamic mapping: text + keyword
	resp, err := http.Post(base+"/"+pattern+"/_search?ignore_unavailable=true&allow_no_indices=true", "application/json", strings.NewReader(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
		} `json:"hits"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Hits.Total.Value
}

func waitHits(t *testing.T, base, pattern, field, value string, r *running, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(200 * time.Millisecond) {
		_, _ = http.Post(base+"/"+pattern+"/_refresh?ignore_unavailable=true&allow_no_indices=true", "application/json", nil)
		if n := hits(t, base, pattern, field, value); n > 0 {
			if n != 1 {
				t.Fatalf("%d documents with %s=%s, want 1", n, field, value)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no document with %s=%s in %s within %s; filebeat:\n%s", field, value, pattern, within, r.log)
		}
	}
}

// deleteIndices removes the indices matching pattern, the test's own.
func deleteIndices(t *testing.T, base, pattern string) {
	req, _ := http.NewRequest(http.MethodDelete, base+"/"+pattern+"?ignore_unavailable=true&allow_no_indices=true", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

// TestShipsAlertsOnceWithRealTimings runs with filebeat's own timings: the Wazuh module
// ships alerts.json from its start into today's wazuh-alerts-4.x-* index, then a line
// appended while running, and a restart ships only the line written while it was down.
func TestShipsAlertsOnceWithRealTimings(t *testing.T) {
	st := stacktest.Get(t)
	run := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	prefix := "wazuh-alerts-4.x-fbtest" + run + "-"
	t.Cleanup(func() { deleteIndices(t, st.OpenSearchURL, prefix+"*") })
	alerts := filepath.Join(t.TempDir(), "alerts.json")
	config := writeConfig(t, strings.ReplaceAll(strings.ReplaceAll(`output.elasticsearch.hosts: ["${INDEXER_URL}"]
output.elasticsearch:
  username: ${username:admin}
  password: ${password:admin}
setup.template.json.enabled: true
setup.ilm.enabled: false
filebeat.modules:
  - module: wazuh
    alerts:
      enabled: true
      var.paths: [ALERTS]
      var.index_prefix: PREFIX
    archives:
      enabled: false
`, "ALERTS", alerts), "PREFIX", prefix))
	env := map[string]string{"INDEXER_URL": st.OpenSearchURL}
	data := t.TempDir()
	appendLine(t, alerts, alert("first-"+run))
	today := prefix + time.Now().UTC().Format("2006.01.02")

	r := start(t, config, data, env)
	waitHits(t, st.OpenSearchURL, today, "id", "first-"+run, r, 30*time.Second)
	appendLine(t, alerts, alert("tailed-"+run))
	// A quiet file is looked at again at most max_backoff (10 s) later, then flushed within 1 s.
	waitHits(t, st.OpenSearchURL, today, "id", "tailed-"+run, r, 30*time.Second)
	r.stop(t)

	appendLine(t, alerts, alert("while-down-"+run))
	r = start(t, config, data, env)
	waitHits(t, st.OpenSearchURL, today, "id", "while-down-"+run, r, 30*time.Second)
	// Give the restarted run the time to re-ship what it should not before counting.
	time.Sleep(3 * time.Second)
	_, _ = http.Post(st.OpenSearchURL+"/"+today+"/_refresh", "application/json", nil)
	for _, id := range []string{"first-" + run, "tailed-" + run, "while-down-" + run} {
		if n := hits(t, st.OpenSearchURL, today, "id", id); n != 1 {
			t.Fatalf("%d documents of alert %s after a restart, want 1:\n%s", n, id, r.log)
		}
	}
	for _, want := range []string{"Harvester started for file: " + alerts, "Connection to backoff(elasticsearch(" + st.OpenSearchURL + ")) established"} {
		if !strings.Contains(r.log.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, r.log)
		}
	}
}

// TestPlainInputToCustomIndex ships a filebeat.inputs log file to output.elasticsearch.index.
func TestPlainInputToCustomIndex(t *testing.T) {
	st := stacktest.Get(t)
	run := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	index := "socflow-fbtest-" + run
	t.Cleanup(func() { deleteIndices(t, st.OpenSearchURL, index+"-*") })
	logFile := filepath.Join(t.TempDir(), "app.log")
	config := writeConfig(t, fmt.Sprintf(`filebeat.inputs:
  - type: log
    paths: [%s]
output.elasticsearch:
  hosts: ["%s"]
  index: "%s-%%{+yyyy.MM.dd}"
setup.template.name: socflow-fbtest
setup.template.pattern: "socflow-fbtest-*"
`, logFile, strings.TrimPrefix(st.OpenSearchURL, "http://"), index))
	r := start(t, config, t.TempDir(), fast)
	appendLine(t, logFile, "plain line "+run)
	pattern := index + "-" + time.Now().UTC().Format("2006.01.02")
	waitHits(t, st.OpenSearchURL, pattern, "log.file.path", logFile, r, 20*time.Second)
	if n := hits(t, st.OpenSearchURL, pattern, "input.type", "log"); n != 1 {
		t.Fatalf("%d documents with input.type log, want 1", n)
	}
}

// indexerStandIn is a local HTTPS server with a certificate from ca, counting requests.
func indexerStandIn(t *testing.T, ca *stacktest.CA, handler http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		handler(w, r)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverPair(t, ca)}}
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &n
}

func tlsConfig(t *testing.T, alerts, url, caFile string) string {
	return writeConfig(t, fmt.Sprintf(`output.elasticsearch:
  hosts: ["%s"]
  username: admin
  password: ${password}
  ssl.certificate_authorities: ["%s"]
filebeat.modules:
  - module: wazuh
    alerts:
      enabled: true
      var.paths: ["%s"]
`, url, caFile, alerts))
}

// TestWrongCAIsRetriedForEver gives filebeat a CA that did not sign the indexer's
// certificate: it logs filebeat's x509 error at each attempt, backs off, never exits,
// and no request reaches the server.
func TestWrongCAIsRetriedForEver(t *testing.T) {
	srv, requests := indexerStandIn(t, stacktest.NewCA(t, "indexer-ca"), func(w http.ResponseWriter, r *http.Request) {})
	alerts := filepath.Join(t.TempDir(), "alerts.json")
	appendLine(t, alerts, alert("never"))
	env := map[string]string{"password": "x"}
	for k, v := range fast {
		env[k] = v
	}
	r := start(t, tlsConfig(t, alerts, srv.URL, stacktest.NewCA(t, "other-ca").CertFile), t.TempDir(), env)
	n := "backoff(elasticsearch(" + srv.URL + "))"
	r.waitLog(t, "ERROR\t[publisher_pipeline_output]\tpipeline/output.go:154\tFailed to connect to "+n+": Get \""+srv.URL+"\": x509: certificate signed by unknown authority\n", 3, 20*time.Second)
	r.waitLog(t, "INFO\t[publisher_pipeline_output]\tpipeline/output.go:145\tAttempting to reconnect to "+n+" with 3 reconnect attempt(s)", 1, 20*time.Second)
	if got := requests.Load(); got != 0 {
		t.Fatalf("%d requests reached the indexer through a TLS handshake that should fail", got)
	}
}

// TestUnauthorizedIsRetriedForEver has the indexer refuse the credentials: filebeat
// logs the 401 with its body, keeps retrying, and never sends a _bulk request.
func TestUnauthorizedIsRetriedForEver(t *testing.T) {
	ca := stacktest.NewCA(t, "indexer-ca")
	var bulks atomic.Int64
	srv, requests := indexerStandIn(t, ca, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_bulk") {
			bulks.Add(1)
		}
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "right" {
			w.Header().Set("WWW-Authenticate", `Basic realm="OpenSearch Security"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"version":{"number":"7.10.2","distribution":"opensearch"}}`)
	})
	alerts := filepath.Join(t.TempDir(), "alerts.json")
	appendLine(t, alerts, alert("refused"))
	env := map[string]string{"password": "wrong"}
	for k, v := range fast {
		env[k] = v
	}
	r := start(t, tlsConfig(t, alerts, srv.URL, ca.CertFile), t.TempDir(), env)
	r.waitLog(t, "Failed to connect to backoff(elasticsearch("+srv.URL+")): 401 Unauthorized: Unauthorized\n", 3, 20*time.Second)
	if requests.Load() < 3 || bulks.Load() != 0 {
		t.Fatalf("%d requests, %d of them _bulk; want retries and no _bulk", requests.Load(), bulks.Load())
	}
}

// serverPair is an indexer's server certificate for 127.0.0.1 from ca.
func serverPair(t *testing.T, ca *stacktest.CA) tls.Certificate {
	_, _, pair := ca.Issue(t, "indexer", true)
	return pair
}
