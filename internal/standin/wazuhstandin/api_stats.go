package wazuhstandin

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The reads the rock's Prometheus exporter makes beside /, /manager/stats,
// /manager/configuration/validation and /cluster/healthcheck, in Wazuh 4.11's shapes.
// The stand-in has no agents and no analysisd or remoted counters: it answers with
// the shapes and zero counts a manager without agents reports.

// overviewAgents is GET /overview/agents (agent:read): a plain data object, not an
// affected-items result. The manager itself (agent 000) is not counted.
func (a *api) overviewAgents(w http.ResponseWriter, _ *http.Request, _ *claims) {
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", envelope{Data: map[string]any{
		"nodes": []any{}, "groups": []any{}, "agent_os": []any{},
		"agent_status": map[string]any{
			"connection":    map[string]int{"active": 0, "disconnected": 0, "never_connected": 0, "pending": 0, "total": 0},
			"configuration": map[string]int{"synced": 0, "not_synced": 0, "total": 0},
		},
		"agent_version": []any{}, "last_registered_agent": []any{},
	}})
}

// managerStatsHourly is GET /manager/stats/hourly: analysisd's 24 hourly averages
// (zeros until it has some) and the interactions count.
func (a *api) managerStatsHourly(w http.ResponseWriter, _ *http.Request, _ *claims) {
	result(w, []any{map[string]any{"averages": make([]int, 24), "interactions": 0}}, 1, nil,
		"Statistical information per hour for each node was successfully read",
		"Could not read statistical information per hour for some nodes", "Could not read statistical information per hour for any node")
}

// managerStatsRemoted is GET /manager/stats/remoted: remoted's state (4.7+ fields).
func (a *api) managerStatsRemoted(w http.ResponseWriter, _ *http.Request, _ *claims) {
	item := map[string]any{}
	for _, k := range []string{"queue_size", "total_queue_size", "tcp_sessions", "evt_count", "ctrl_msg_count",
		"discarded_count", "sent_bytes", "recv_bytes", "dequeued_after_close"} {
		item[k] = 0
	}
	item["total_queue_size"] = 131072
	result(w, []any{item}, 1, nil, "Statistical information for each node was successfully read",
		"Could not read statistical information for some nodes", "Could not read statistical information for any node")
}

// analysisdStatFields are the fields of analysisd's state (GET /manager/stats/analysisd).
var analysisdStatFields = []string{"total_events_decoded", "syscheck_events_decoded", "syscollector_events_decoded",
	"rootcheck_events_decoded", "sca_events_decoded", "winevt_events_decoded", "dbsync_messages_dispatched",
	"other_events_decoded", "events_processed", "events_received", "events_dropped", "alerts_written",
	"firewall_written", "fts_written", "syscheck_queue_usage", "syscheck_queue_size", "syscollector_queue_usage",
	"syscollector_queue_size", "rootcheck_queue_usage", "rootcheck_queue_size", "sca_queue_usage", "sca_queue_size",
	"hostinfo_queue_usage", "hostinfo_queue_size", "winevt_queue_usage", "winevt_queue_size", "dbsync_queue_usage",
	"dbsync_queue_size", "upgrade_queue_usage", "upgrade_queue_size", "event_queue_usage", "event_queue_size",
	"rule_matching_queue_usage", "rule_matching_queue_size", "alerts_queue_usage", "alerts_queue_size",
	"firewall_queue_usage", "firewall_queue_size", "statistical_queue_usage", "statistical_queue_size",
	"archives_queue_usage", "archives_queue_size"}

// managerStatsAnalysisd is GET /manager/stats/analysisd: usages 0, queue sizes 16384.
func (a *api) managerStatsAnalysisd(w http.ResponseWriter, _ *http.Request, _ *claims) {
	item := map[string]any{}
	for _, k := range analysisdStatFields {
		item[k] = 0
		if strings.HasSuffix(k, "_queue_size") {
			item[k] = 16384
		}
	}
	result(w, []any{item}, 1, nil, "Statistical information for each node was successfully read",
		"Could not read statistical information for some nodes", "Could not read statistical information for any node")
}

// ossecLogLine is one line of ossec.log: date, tag, level, description.
var ossecLogLine = regexp.MustCompile(`^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) ([^:\s]+(?::[^:\s]+)?): (DEBUG|INFO|WARNING|ERROR|CRITICAL): (.*)$`)

// managerLogs is GET /manager/logs: ossec.log's entries, newest first, default limit 500.
func (a *api) managerLogs(w http.ResponseWriter, r *http.Request, _ *claims) {
	raw, _ := os.ReadFile(filepath.Join(a.d.home, ossecLogRel))
	type entry struct {
		Timestamp   string `json:"timestamp"`
		Tag         string `json:"tag"`
		Level       string `json:"level"`
		Description string `json:"description"`
	}
	var out []entry
	for _, line := range strings.Split(string(raw), "\n") {
		m := ossecLogLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		t, err := time.ParseInLocation(logStamp, m[1], time.Local)
		if err != nil {
			continue
		}
		out = append(out, entry{t.UTC().Format("2006-01-02T15:04:05Z"), m[2], strings.ToLower(m[3]), m[4]})
	}
	slices.Reverse(out)
	total := len(out)
	limit := 500
	if v := r.URL.Query().Get("limit"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			limit = n
		}
	}
	if len(out) > limit {
		out = out[:limit]
	}
	if out == nil {
		out = []entry{}
	}
	result(w, out, total, nil, "Logs were successfully read", "Could not read logs in some nodes", "Could not read logs in any node")
}
