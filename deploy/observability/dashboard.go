// Package observability holds socflow's Prometheus scrape config, alert rules with
// their unit tests, and Grafana dashboard; its tests run the real promtool (Debian's
// prometheus package, which deploy/local/stack installs) over them.
package observability

import (
	"encoding/json"
	"fmt"
	"os"
)

// Dashboard is the part of a Grafana dashboard socflow's tests read: the panels and
// their queries, which one test parses with promtool and another runs against the
// stack's Prometheus.
type Dashboard struct {
	// Panels are the dashboard's panels, rows included.
	Panels []Panel `json:"panels"`
}

// Panel is one panel of a Dashboard.
type Panel struct {
	// Type is the panel's type ("row" for a row header, which has no query).
	Type string `json:"type"`
	// Title is the panel's title.
	Title string `json:"title"`
	// Targets are its queries.
	Targets []struct {
		// Expr is the PromQL query.
		Expr string `json:"expr"`
	} `json:"targets"`
}

// LoadDashboard reads a Grafana dashboard JSON file.
func LoadDashboard(path string) (Dashboard, error) {
	var d Dashboard
	b, err := os.ReadFile(path)
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}
