package wazuhstandin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// info is GET /: the API's description.
func (a *api) info(w http.ResponseWriter, _ *http.Request, _ *claims) {
	host, _ := os.Hostname()
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", envelope{Data: struct {
		Title       string `json:"title"`
		APIVersion  string `json:"api_version"`
		Revision    string `json:"revision"`
		LicenseName string `json:"license_name"`
		LicenseURL  string `json:"license_url"`
		Hostname    string `json:"hostname"`
		Timestamp   string `json:"timestamp"`
	}{"Wazuh API REST", APIVersion, Revision, "GPL 2.0", "https://github.com/wazuh/wazuh/blob/" + Version + "/LICENSE",
		host, time.Now().UTC().Format("2006-01-02T15:04:05Z")}})
}

// managerInfo is GET /manager/info.
func (a *api) managerInfo(w http.ResponseWriter, _ *http.Request, _ *claims) {
	zone, offset := time.Now().Zone()
	item := struct {
		Path           string `json:"path"`
		Version        string `json:"version"`
		Type           string `json:"type"`
		MaxAgents      string `json:"max_agents"`
		OpensslSupport string `json:"openssl_support"`
		TzOffset       string `json:"tz_offset"`
		TzName         string `json:"tz_name"`
	}{a.d.home, Version, InstallType, "unlimited", "yes", fmt.Sprintf("%+03d%02d", offset/3600, (offset%3600)/60), zone}
	result(w, []any{item}, 1, nil, "Basic information was successfully read", "", "")
}

// statusOrder is get_manager_status's process list.
var statusOrder = []string{"wazuh-agentlessd", "wazuh-analysisd", "wazuh-authd", "wazuh-csyslogd", "wazuh-dbd",
	"wazuh-monitord", "wazuh-execd", "wazuh-integratord", "wazuh-logcollector", "wazuh-maild", "wazuh-remoted",
	"wazuh-reportd", "wazuh-syscheckd", "wazuh-clusterd", "wazuh-modulesd", "wazuh-db", "wazuh-apid"}

var pidName = regexp.MustCompile(`-(\d+)\.pid$`)

// managerStatus is GET /manager/status: each process failed, restarting,
// starting, running or stopped, read from var/run as the framework does.
func (a *api) managerStatus(w http.ResponseWriter, _ *http.Request, _ *claims) {
	run := filepath.Join(a.d.home, "var/run")
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, p := range statusOrder {
		state := "stopped"
		pids, _ := filepath.Glob(filepath.Join(run, p+"-*.pid"))
		switch {
		case exists(filepath.Join(run, p+".failed")):
			state = "failed"
		case exists(filepath.Join(run, ".restart")):
			state = "restarting"
		case exists(filepath.Join(run, p+".start")):
			state = "starting"
		case len(pids) > 0:
			state = "failed"
			for _, f := range pids {
				if m := pidName.FindStringSubmatch(f); m != nil && exists("/proc/"+m[1]) {
					state = "running"
					break
				}
			}
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, "%q:%q", p, state)
	}
	buf.WriteByte('}')
	result(w, []json.RawMessage{buf.Bytes()}, 1, nil, "Processes status was successfully read", "", "Could not read basic information in some nodes")
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// managerStats is GET /manager/stats: analysisd's daily totals file
// (stats/totals/<year>/<Mon>/ossec-totals-<dd>.log), written at the end of
// each hour; without it the framework answers error 1308.
func (a *api) managerStats(w http.ResponseWriter, r *http.Request, _ *claims) {
	day := time.Now()
	if v := r.URL.Query().Get("date"); v != "" {
		d, err := time.Parse("2006-01-02", v)
		if err != nil {
			problem(w, http.StatusBadRequest, "Bad Request", "'"+v+"' is not a 'date'", 0, "")
			return
		}
		day = d
	}
	rel := filepath.Join("stats/totals", day.Format("2006"), day.Format("Jan"), "ossec-totals-"+day.Format("02")+".log")
	raw, err := os.ReadFile(filepath.Join(a.d.home, rel))
	if err != nil {
		e := catalogue(1308)
		problem(w, http.StatusBadRequest, "Bad Request", e.Message+": "+filepath.Join(a.d.home, rel), 1308, "")
		return
	}
	type alert struct {
		Sigid int `json:"sigid"`
		Level int `json:"level"`
		Times int `json:"times"`
	}
	type hour struct {
		Hour        int     `json:"hour"`
		Alerts      []alert `json:"alerts"`
		TotalAlerts int     `json:"totalAlerts"`
		Events      int     `json:"events"`
		Syscheck    int     `json:"syscheck"`
		Firewall    int     `json:"firewall"`
	}
	hours := []hour{}
	var pending []alert
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Split(strings.TrimSpace(line), "-")
		n := make([]int, len(f))
		for i := range f {
			n[i], _ = strconv.Atoi(f[i])
		}
		switch len(f) {
		case 3:
			pending = append(pending, alert{n[0], n[1], n[2]})
		case 5:
			if pending == nil {
				pending = []alert{}
			}
			hours = append(hours, hour{n[0], pending, n[1], n[2], n[3], n[4]})
			pending = nil
		}
	}
	result(w, hours, len(hours), nil, "Statistical information for each node was successfully read",
		"Could not read statistical information for some nodes", "Could not read statistical information for any node")
}

// validation is GET /manager/configuration/validation: every daemon's
// configuration test on the files as they are now.
func (a *api) validation(w http.ResponseWriter, _ *http.Request, _ *claims) {
	node := a.nodeName()
	for _, d := range startDaemons() {
		err := CheckDaemon(a.d.home, d)
		var ce *ConfigError
		if errors.As(err, &ce) {
			e := catalogue(1908)
			detail := ce.Log
			if detail == "" {
				detail = strings.Join(ce.Printed, " ")
			}
			e.Message += ": " + d + ": " + detail
			result(w, []any{}, 0, []failedItem{{Error: e, ID: []any{node}}}, "Validation was successfully checked",
				"Could not check validation in some nodes", "Could not check validation in any node")
			return
		}
	}
	result(w, []any{map[string]string{"name": node, "status": "OK"}}, 1, nil, "Validation was successfully checked",
		"Could not check validation in some nodes", "Could not check validation in any node")
}

// nodeName is the node as the API names it in results.
func (a *api) nodeName() string {
	if m, _, err := LoadManager(a.d.home); err == nil && m.Cluster.Running() {
		return m.Cluster.NodeName
	}
	return "node01"
}

// clusterStatus is GET /cluster/status.
func (a *api) clusterStatus(w http.ResponseWriter, _ *http.Request, _ *claims) {
	enabled := "no"
	if m, _, err := LoadManager(a.d.home); err == nil && m.Cluster.Running() {
		enabled = "yes"
	}
	running := "no"
	if _, err := askCluster(a.d.home); err == nil || err.Error() == "3023" {
		running = "yes"
	}
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", envelope{Data: map[string]string{"enabled": enabled, "running": running}})
}

// nodes asks clusterd; it writes the error and returns false when it cannot.
func (a *api) nodes(w http.ResponseWriter) ([]NodeInfo, bool) {
	nodes, err := askCluster(a.d.home)
	if err == nil {
		return nodes, true
	}
	code, _ := strconv.Atoi(err.Error())
	if code != 3023 {
		code = 3013
	}
	e := catalogue(code)
	problem(w, http.StatusBadRequest, "Bad Request", e.Message, code, e.Remediation)
	return nil, false
}

// clusterNodes is GET /cluster/nodes: the master and every joined worker.
func (a *api) clusterNodes(w http.ResponseWriter, r *http.Request, _ *claims) {
	nodes, ok := a.nodes(w)
	if !ok {
		return
	}
	if t := r.URL.Query().Get("type"); t != "" {
		var kept []NodeInfo
		for _, n := range nodes {
			if n.Type == t {
				kept = append(kept, n)
			}
		}
		nodes = kept
	}
	total := len(nodes)
	nodes = page(nodes, r.URL.Query().Get("offset"), r.URL.Query().Get("limit"))
	if nodes == nil {
		nodes = []NodeInfo{}
	}
	result(w, nodes, total, nil, "All selected nodes information was returned", "Some nodes information was not returned", "No node information was returned")
}

// clusterHealth is GET /cluster/healthcheck.
func (a *api) clusterHealth(w http.ResponseWriter, _ *http.Request, _ *claims) {
	nodes, ok := a.nodes(w)
	if !ok {
		return
	}
	type health struct {
		Info   map[string]any `json:"info"`
		Status map[string]any `json:"status,omitempty"`
	}
	out := []health{}
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	for _, n := range nodes {
		h := health{Info: map[string]any{"name": n.Name, "type": n.Type, "version": n.Version, "ip": n.IP, "n_active_agents": 0}}
		if n.Type == "worker" {
			h.Status = map[string]any{"last_keep_alive": now,
				"sync_integrity_free": true, "sync_agent_info_free": true, "sync_extravalid_free": true}
		}
		out = append(out, h)
	}
	// The API lists the nodes' health as its affected items, sorted by name (framework
	// wazuh/cluster.py get_health_nodes), not the daemon's {n_connected_nodes, nodes}.
	sort.Slice(out, func(i, j int) bool { return out[i].Info["name"].(string) < out[j].Info["name"].(string) })
	result(w, out, len(nodes), nil,
		"All selected nodes healthcheck information was returned", "Some nodes healthcheck information was not returned",
		"No healthcheck information was returned")
}
