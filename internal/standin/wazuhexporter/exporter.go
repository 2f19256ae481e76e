package wazuhexporter

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LookupEnv is os.LookupEnv, injected so tests give the exporter its environment.
type LookupEnv func(string) (string, bool)

// config is the exporter's environment, read as main.py reads it.
type config struct {
	protocol, host, user, password string
	port                           int
	listen                         string
	logLevel                       string
	skip                           map[string]bool
}

// Main runs the exporter until ctx ends (SIGTERM: exit 0 after the server closes, as
// Python's default SIGTERM handling ends the process) and returns its exit code.
func Main(ctx context.Context, env LookupEnv, stderr io.Writer) int {
	get := func(k string) string { v, _ := env(k); return v }
	lg := &logger{w: stderr, level: strings.ToUpper(get("EXPORTER_LOG_LEVEL"))}
	if lg.level == "" {
		lg.level = "INFO"
	}
	c := config{protocol: get("WAZUH_PROTOCOL"), host: get("WAZUH_API_HOST"), user: get("WAZUH_API_USERNAME"),
		password: get("WAZUH_API_PASSWORD"), listen: get("EXPORTER_PORT"), skip: map[string]bool{}}
	if _, ok := env("WAZUH_PROTOCOL"); !ok {
		c.protocol = "https"
	}
	if _, ok := env("EXPORTER_PORT"); !ok {
		c.listen = "5000"
	}
	for _, k := range []string{"SKIP_LAST_REGISTERED_AGENT", "SKIP_WAZUH_API_INFO", "SKIP_LAST_LOGS"} {
		c.skip[k] = get(k) != ""
	}
	rawPort, set := env("WAZUH_API_PORT")
	if !set {
		// int(None): a TypeError the try block does not catch.
		lg.traceback("    port = int(os.getenv(\"WAZUH_API_PORT\"))", "TypeError: int() argument must be a string, a bytes-like object or a real number, not 'NoneType'")
		return 1
	}
	port, err := strconv.Atoi(strings.TrimSpace(rawPort))
	if err != nil {
		lg.traceback("    port = int(os.getenv(\"WAZUH_API_PORT\"))", fmt.Sprintf("ValueError: invalid literal for int() with base 10: '%s'", rawPort))
		return 1
	}
	c.port = port
	if c.host == "" || port == 0 || c.user == "" || c.password == "" {
		// Both lines print the password, as the original does.
		vals := fmt.Sprintf(" Wazuh host %s, Wazuh port %d, Wazuh api user %s, Wazuh api password %s", pyStr(c.host), port, pyStr(c.user), pyStr(c.password))
		lg.log("critical", "System variables are not set, please check:"+vals)
		lg.log("critical", "Please check system variables:"+vals)
		return 2
	}
	listen, err := strconv.Atoi(c.listen)
	if err != nil {
		lg.traceback("    start_http_server(int(listen_port))", fmt.Sprintf("ValueError: invalid literal for int() with base 10: '%s'", c.listen))
		return 1
	}

	lg.log("info", "Starting Wazuh prometheus exporter")
	ln, err := net.Listen("tcp", net.JoinHostPort("0.0.0.0", strconv.Itoa(listen)))
	if err != nil {
		lg.traceback("    start_http_server(int(listen_port))", "OSError: [Errno 98] Address already in use")
		return 1
	}
	x := &exporter{c: c, lg: lg, client: &http.Client{Timeout: 0, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // verify=False, as the original.
	}}}
	srv := &http.Server{Handler: x, ReadHeaderTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer srv.Close()

	// REGISTRY.register(WazuhCollector()): __init__ logs, then one collection.
	lg.log("info", "Start collector")
	if _, err := x.collect(ctx); err != nil {
		lg.traceback("    REGISTRY.register(WazuhCollector())", err.Error())
		return 1
	}
	x.registered.Store(true)
	select {
	case <-ctx.Done():
		return 0
	case err := <-served:
		lg.traceback("    start_http_server(int(listen_port))", err.Error())
		return 1
	}
}

// pyStr is how an f-string shows a str or None.
func pyStr(s string) string {
	if s == "" {
		return ""
	}
	return s
}

// exporter serves the metrics.
type exporter struct {
	c          config
	lg         *logger
	client     *http.Client
	registered atomic.Bool
	mu         sync.Mutex // prometheus_client's server is threaded; one collection at a time here
}

// ServeHTTP answers every path with the registry's exposition, as prometheus_client does.
func (x *exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := pythonInfo
	if x.registered.Load() {
		x.mu.Lock()
		out, err := x.collect(r.Context())
		x.mu.Unlock()
		if err != nil {
			// wsgiref's handler: the traceback on stderr, a 500 with its fixed text.
			x.lg.traceback("    for metric in registry.collect():", err.Error())
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "A server error occurred.  Please contact the administrator.")
			return
		}
		body += out
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = io.WriteString(w, body)
}

// pythonInfo stands for prometheus_client's default process collectors.
const pythonInfo = "# HELP python_info Python platform information\n# TYPE python_info gauge\n" +
	`python_info{implementation="CPython",major="3",minor="12",patchlevel="3",version="3.12.3"} 1.0` + "\n"

// collect is WazuhCollector.collect: a login, the nine reads, the metric families.
func (x *exporter) collect(ctx context.Context) (string, error) {
	token, err := x.login(ctx)
	if err != nil {
		return "", err
	}
	read := func(path string, affected bool) (any, error) { return x.request(ctx, path, token, affected) }
	agents, err := read("/overview/agents", false)
	if err != nil {
		return "", err
	}
	hourly, err := read("/manager/stats/hourly", false)
	if err != nil {
		return "", err
	}
	stats, err := read("/manager/stats?pretty=true", true)
	if err != nil {
		return "", err
	}
	remote, err := read("/manager/stats/remoted", true)
	if err != nil {
		return "", err
	}
	logs, err := read("/manager/logs", true)
	if err != nil {
		return "", err
	}
	analysisd, err := read("/manager/stats/analysisd", true)
	if err != nil {
		return "", err
	}
	validation, err := read("/manager/configuration/validation", true)
	if err != nil {
		return "", err
	}
	var f families
	f.agents(asMap(agents), x.c.skip["SKIP_LAST_REGISTERED_AGENT"])
	h := asMap(hourly)
	f.add("manager_stats_hourly", "Wazuh statistical information per hour. Each number in the averages field represents the average of alerts per hour", "info",
		sample{"total_affected_items", nil, num(h["total_affected_items"])}, sample{"total_failed_items", nil, num(h["total_failed_items"])})
	nodes, err := read("/cluster/healthcheck", true)
	if err != nil {
		return "", err
	}
	if nodes != nil {
		var s []sample
		for _, n := range asList(nodes) {
			info := asMap(asMap(n)["info"])
			labels := [][2]string{{"node_name", str(info["name"])}}
			for _, k := range sortedKeys(info) {
				if k != "name" && k != "n_active_agents" {
					labels = append(labels, [2]string{k, pyRepr(info[k])})
				}
			}
			s = append(s, sample{"nodes_healthcheck_info", labels, 1})
		}
		f.add("nodes_healthcheck", "Wazuh nodes healthcheck", "info", s...)
	}
	infoAny, err := read("/", false)
	if err != nil {
		return "", err
	}
	info := asMap(infoAny)
	if !x.c.skip["SKIP_WAZUH_API_INFO"] {
		var s []sample
		for _, k := range sortedKeys(info) {
			s = append(s, sample{"wazuh_api_info", [][2]string{{k, pyRepr(info[k])}}, 1})
		}
		f.add("wazuh_api", "Wazuh API information", "info", s...)
	}
	var s []sample
	for _, st := range asList(stats) {
		m := asMap(st)
		for _, p := range [][2]string{{"alerts", "totalAlerts"}, {"syscheck", "syscheck"}, {"firewall", "firewall"}, {"events", "events"}} {
			s = append(s, sample{"total_" + p[0] + "_hour_" + pyRepr(m["hour"]), nil, num(m[p[1]])})
		}
	}
	f.add("manager_stats_total", "Wazuh statistical information for the current date", "summary", s...)
	s = nil
	for _, r := range asList(remote) {
		m := asMap(r)
		for _, k := range []string{"queue_size", "total_queue_size", "tcp_sessions", "evt_count", "ctrl_msg_count", "discarded_count", "recv_bytes", "dequeued_after_close"} {
			s = append(s, sample{k, [][2]string{{"manager_stats_remote", k}}, num(m[k])})
		}
		// Version(info.get("api_version", "")): an API without a version fails the read.
		if v := str(info["api_version"]); v == "" {
			return "", errors.New("packaging.version.InvalidVersion: Invalid version: ''")
		}
	}
	f.add("manager_stats_remote", "Wazuh remoted statistical information", "summary", s...)
	if !x.c.skip["SKIP_LAST_LOGS"] {
		s = nil
		for _, l := range asList(logs) {
			m := asMap(l)
			tag := str(m["tag"])
			key := strings.NewReplacer("-", "_", ":", "_").Replace(tag) + "_" + str(m["level"])
			s = append(s, sample{"last_logs_info", [][2]string{{key, strings.TrimSpace(str(m["description"]))}}, 1})
		}
		f.add("last_logs", "The last 2000 wazuh log entries", "info", s...)
	}
	s = nil
	for _, a := range asList(analysisd) {
		m := asMap(a)
		for _, k := range analysisdFields {
			v, ok := m[k]
			if !ok {
				// analysisd_stat[sample]
				return "", fmt.Errorf("KeyError: '%s'", k)
			}
			s = append(s, sample{"analysisd_stats", [][2]string{{"analysisd_stats", k}}, num(v)})
		}
	}
	f.add("analysisd_stats", "Wazuh analysisd statistical information", "summary", s...)
	s = nil
	for _, v := range asList(validation) {
		m := asMap(v)
		s = append(s, sample{"wazuh_validate_configuration_info", [][2]string{{"node_name", str(m["name"])}, {"status", strings.TrimSpace(str(m["status"]))}}, 1})
	}
	f.add("wazuh_validate_configuration", "Return whether the Wazuh configuration is correct", "info", s...)
	return f.String(), nil
}

// analysisdFields are the fields the original indexes in every analysisd item (4.7+).
var analysisdFields = []string{"total_events_decoded", "syscheck_events_decoded", "syscollector_events_decoded",
	"rootcheck_events_decoded", "sca_events_decoded", "winevt_events_decoded", "dbsync_messages_dispatched",
	"other_events_decoded", "events_processed", "events_received", "events_dropped", "alerts_written",
	"firewall_written", "fts_written", "syscheck_queue_usage", "syscheck_queue_size", "syscollector_queue_usage",
	"syscollector_queue_size", "rootcheck_queue_usage", "rootcheck_queue_size", "sca_queue_usage", "sca_queue_size",
	"hostinfo_queue_usage", "hostinfo_queue_size", "winevt_queue_usage", "dbsync_queue_usage",
	"dbsync_queue_size", "upgrade_queue_usage", "upgrade_queue_size", "event_queue_usage", "event_queue_size",
	"rule_matching_queue_usage", "rule_matching_queue_size", "alerts_queue_usage", "alerts_queue_size",
	"firewall_queue_usage", "statistical_queue_usage", "statistical_queue_size", "archives_queue_usage",
	"archives_queue_size"}

// agents are the families read from /overview/agents.
func (f *families) agents(a map[string]any, skipLast bool) {
	var s []sample
	for _, n := range asList(a["nodes"]) {
		m := asMap(n)
		s = append(s, sample{"wazuh_agents_count", [][2]string{{"node_name", str(m["node_name"])}}, num(m["count"])})
	}
	f.add("wazuh_total_agent", "Total Wazuh agents count", "summary", s...)
	s = nil
	for _, g := range asList(a["groups"]) {
		m := asMap(g)
		s = append(s, sample{"wazuh_agents_group", [][2]string{{"group_name", str(m["name"])}}, num(m["count"])})
	}
	f.add("wazuh_total_group", "Total Wazuh groups count", "summary", s...)
	st := asMap(a["agent_status"])
	if c, ok := st["connection"]; ok {
		st = asMap(c)
	}
	f.add("wazuh_agent_status", "Total Wazuh agents by status", "summary",
		sample{"wazuh_active_agents", nil, num(st["active"])}, sample{"wazuh_disconnected_agents", nil, num(st["disconnected"])},
		sample{"wazuh_never_connected_agents", nil, num(st["never_connected"])}, sample{"wazuh_pending_agents", nil, num(st["pending"])},
		sample{"wazuh_total_agents", nil, num(st["total"])})
	s = nil
	for _, v := range asList(a["agent_version"]) {
		m := asMap(v)
		s = append(s, sample{"wazuh_agent_version", [][2]string{{"version", str(m["version"])}}, num(m["count"])})
	}
	f.add("wazuh_agent_version", "Wazuh agent versions", "gauge", s...)
	if !skipLast {
		s = nil
		for _, v := range asList(a["last_registered_agent"]) {
			m := asMap(v)
			if str(m["status"]) == "never_connected" {
				continue
			}
			node := str(m["node_name"])
			for _, k := range sortedKeys(asMap(m["os"])) {
				s = append(s, sample{"last_registered_agent_info", [][2]string{{strings.ReplaceAll(node+"-"+k, "-", "_"), pyRepr(asMap(m["os"])[k])}}, 1})
			}
		}
		f.add("last_registered_agent", "Wazuh last registered agent", "info", s...)
	}
}

// login is Wazuh.login: basic auth, then data.token from whatever came back.
func (x *exporter) login(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, x.url("/security/user/authenticate"), nil)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(x.c.user, x.c.password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := x.client.Do(req)
	if err != nil {
		return "", x.connError("/security/user/authenticate", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", fmt.Errorf("json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)")
	}
	data, ok := body["data"]
	if !ok {
		return "", errors.New("KeyError: 'data'")
	}
	token, ok := asMap(data)["token"].(string)
	if !ok {
		return "", errors.New("KeyError: 'token'")
	}
	return token, nil
}

// request is Wazuh.make_request: data (or data.affected_items); a status other than
// 200 is a warning and whatever data the body has.
func (x *exporter) request(ctx context.Context, path, token string, affected bool) (any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, x.url(path), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := x.client.Do(req)
	if err != nil {
		return nil, x.connError(path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		x.lg.log("warning", fmt.Sprintf("Got response http code %d, response body: b'%s'", resp.StatusCode, strings.TrimSpace(string(raw))))
	}
	var body any
	if err := json.Unmarshal(raw, &body); err != nil {
		x.lg.log("error", fmt.Sprintf("Got JSON decode error for %s, response body: b'%s'", path, raw))
		return nil, nil
	}
	m, ok := body.(map[string]any)
	if !ok {
		return map[string]any{}, nil
	}
	data, ok := m["data"]
	if !ok {
		data = map[string]any{}
	}
	if affected {
		if items, ok := asMap(data)["affected_items"]; ok {
			return items, nil
		}
		return map[string]any{}, nil
	}
	return data, nil
}

func (x *exporter) url(path string) string {
	return x.c.protocol + "://" + net.JoinHostPort(x.c.host, strconv.Itoa(x.c.port)) + path
}

// connError is requests' ConnectionError for an API that does not answer.
func (x *exporter) connError(path string, err error) error {
	why := "[Errno 111] Connection refused"
	var op *net.OpError
	if errors.As(err, &op) && !strings.Contains(op.Error(), "refused") {
		why = op.Error()
	}
	return fmt.Errorf("requests.exceptions.ConnectionError: HTTPSConnectionPool(host='%s', port=%d): Max retries exceeded with url: %s (Caused by NewConnectionError('<urllib3.connection.HTTPSConnection object>: Failed to establish a new connection: %s'))",
		x.c.host, x.c.port, path, why)
}
