package spec

import (
	"net/url"
	"strings"
)

// Logs says where the instance's service logs go beyond Pebble's own buffer (the
// spec's logs section). Every plan socflow writes then carries a Pebble log target,
// so the platform, workers, connectors, manager and shippers all forward their output.
type Logs struct {
	// Loki is Grafana Loki's push API, the full URL Pebble posts to, e.g.
	// https://loki:3100/loki/api/v1/push (empty: no log target).
	Loki string `json:"loki,omitempty"`
}

// LokiPushPath is the path of Loki's push API, which Pebble needs in the URL.
const LokiPushPath = "/loki/api/v1/push"

// LokiURL is the Loki push URL of logs, "" when logs or its loki is unset.
func (l *Logs) LokiURL() string {
	if l == nil {
		return ""
	}
	return l.Loki
}

// Logs checks the logs section: Pebble posts to the URL as given, so anything but an
// absolute http(s) URL of the push API would fail every push on the workload's side,
// where nobody reads the error.
func (c *Checker) Logs(l *Logs) {
	if l == nil || l.Loki == "" {
		return
	}
	fix := "give Loki's push API, e.g. https://loki:3100" + LokiPushPath
	if msg := URLProblem(l.Loki, true); msg != "" {
		c.Add("logs.loki", msg, fix)
		return
	}
	if u, _ := url.Parse(l.Loki); !strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), LokiPushPath) {
		c.Add("logs.loki", "must be the URL of Loki's push API, ending in "+LokiPushPath+" (got "+l.Loki+")", fix)
	}
}

// LogLabels are the labels every forwarded line carries beside Pebble's own
// pebble_service, so Loki tells apps and instances apart: socflow_app, socflow_instance,
// then extra's pairs (key, value, …) such as the node.
func LogLabels(app, instance string, extra ...string) map[string]string {
	l := map[string]string{"socflow_app": app, "socflow_instance": instance}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}
