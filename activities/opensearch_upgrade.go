package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/opensearch-project/opensearch-go/v4"

	"github.com/socflow/socflow/internal/spec"
)

// ReadSearchUpgradeFactsInput names the search engine and the instance's index prefix.
type ReadSearchUpgradeFactsInput struct {
	// OpenSearch is the spec's integrations.opensearch section, secrets as references.
	OpenSearch spec.OpenSearch `json:"opensearch"`
	// Prefix is the instance's index prefix (its name).
	Prefix string `json:"prefix"`
}

// SearchUpgradeFacts are what an upgrade's pre-flight reads from the search engine.
type SearchUpgradeFacts struct {
	// DataVersion is platformVersion of the instance's MigrationStatus document: the
	// version the data was last migrated to ("" when there is none).
	DataVersion string `json:"dataVersion,omitempty"`
	// LastRun is MigrationStatus.lastRun, the last migration applied.
	LastRun string `json:"lastRun,omitempty"`
	// Health is the cluster's health (green, yellow, red).
	Health string `json:"health"`
	// DiskUsedPercent is the fullest data node's disk use, and DiskNode that node.
	DiskUsedPercent float64 `json:"diskUsedPercent"`
	DiskNode        string  `json:"diskNode,omitempty"`
	// FloodStage is cluster.routing.allocation.disk.watermark.flood_stage as set
	// (e.g. "95%"); FloodStagePercent its value as a percentage of disk used (0 when
	// it is given in bytes, which FloodStageFreeBytes holds instead).
	FloodStage          string  `json:"floodStage"`
	FloodStagePercent   float64 `json:"floodStagePercent,omitempty"`
	FloodStageFreeBytes int64   `json:"floodStageFreeBytes,omitempty"`
	// DiskFreeBytes is the fullest node's free bytes.
	DiskFreeBytes int64 `json:"diskFreeBytes"`
	// SnapshotRepository is why the spec's snapshot repository cannot take the
	// upgrade's snapshot ("" when it can).
	SnapshotRepository string `json:"snapshotRepository,omitempty"`
}

// ReadSearchUpgradeFacts reads, without changing anything, what the search engine says
// about an upgrade: the version the instance's data was migrated to (read from its
// MigrationStatus document — never learned by starting the old binary, which rewrites
// every index template before it refuses), the cluster's health, and the fullest
// node's disk use against the flood-stage watermark (past it the engine makes every
// index read-only and a migration fails half way).
func (a *Activities) ReadSearchUpgradeFacts(ctx context.Context, in ReadSearchUpgradeFactsInput) (SearchUpgradeFacts, error) {
	s := in.OpenSearch
	password, ca, err := a.openSearchSecrets(s)
	if err != nil {
		return SearchUpgradeFacts{}, classify(err)
	}
	var reasons []string
	for _, u := range searchURLs(s) {
		callCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
		facts, err := searchUpgradeFacts(callCtx, u, s.Username, password, ca, in.Prefix, s.SnapshotRepository)
		cancel()
		if err == nil {
			return facts, nil
		}
		reasons = append(reasons, u+": "+err.Error())
	}
	return SearchUpgradeFacts{}, errors.New("cannot read the search engine's upgrade facts: " + strings.Join(reasons, "; "))
}

// searchUpgradeFacts reads the facts from one node.
func searchUpgradeFacts(ctx context.Context, url, username, password, ca, prefix, repo string) (SearchUpgradeFacts, error) {
	var f SearchUpgradeFacts
	c, err := newSearchClient(ctx, url, username, password, ca)
	if err != nil {
		return f, err
	}
	var health struct {
		Status string `json:"status"`
	}
	if _, err := getJSON(ctx, c.Client, "/_cluster/health", &health); err != nil {
		return f, fmt.Errorf("cluster health: %w", err)
	}
	f.Health = health.Status
	if f.DataVersion, f.LastRun, err = migrationStatus(ctx, c.Client, prefix); err != nil {
		return f, err
	}
	f.SnapshotRepository = snapshotRepositoryProblem(ctx, c.Client, repo)
	var settings struct {
		Persistent map[string]any `json:"persistent"`
		Transient  map[string]any `json:"transient"`
		Defaults   map[string]any `json:"defaults"`
	}
	if _, err := getJSON(ctx, c.Client, "/_cluster/settings?include_defaults=true&flat_settings=true", &settings); err != nil {
		return f, fmt.Errorf("cluster settings: %w", err)
	}
	const flood = "cluster.routing.allocation.disk.watermark.flood_stage"
	for _, m := range []map[string]any{settings.Transient, settings.Persistent, settings.Defaults} {
		if v, ok := m[flood].(string); ok && f.FloodStage == "" {
			f.FloodStage = v
		}
	}
	if f.FloodStagePercent, f.FloodStageFreeBytes, err = parseWatermark(f.FloodStage); err != nil {
		return f, fmt.Errorf("%s: %w", flood, err)
	}
	var stats struct {
		Nodes map[string]struct {
			Name  string   `json:"name"`
			Roles []string `json:"roles"`
			FS    struct {
				Total struct {
					Total     int64 `json:"total_in_bytes"`
					Available int64 `json:"available_in_bytes"`
				} `json:"total"`
			} `json:"fs"`
		} `json:"nodes"`
	}
	if _, err := getJSON(ctx, c.Client, "/_nodes/stats/fs", &stats); err != nil {
		return f, fmt.Errorf("node disk stats: %w", err)
	}
	f.DiskFreeBytes = -1
	for _, n := range stats.Nodes {
		t := n.FS.Total
		if t.Total <= 0 {
			continue
		}
		used := 100 * float64(t.Total-t.Available) / float64(t.Total)
		if used > f.DiskUsedPercent || f.DiskFreeBytes < 0 {
			f.DiskUsedPercent, f.DiskNode, f.DiskFreeBytes = used, n.Name, t.Available
		}
	}
	return f, nil
}

// migrationStatus reads platformVersion and lastRun of the instance's MigrationStatus
// document in <prefix>_internal_objects; none (a fresh cluster) is "", not an error.
func migrationStatus(ctx context.Context, c *opensearch.Client, prefix string) (version, lastRun string, err error) {
	var res struct {
		Hits struct {
			Hits []struct {
				Source struct {
					PlatformVersion string `json:"platformVersion"`
					LastRun         string `json:"lastRun"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	query := map[string]any{"size": 1, "query": map[string]any{"match": map[string]any{"entity_type": "MigrationStatus"}}}
	_, err = searchCall(ctx, c, http.MethodPost, "/"+prefix+"_internal_objects/_search?ignore_unavailable=true&allow_no_indices=true", query, &res)
	if err != nil {
		return "", "", fmt.Errorf("cannot read %s_internal_objects' MigrationStatus: %w", prefix, err)
	}
	if len(res.Hits.Hits) == 0 {
		return "", "", nil
	}
	s := res.Hits.Hits[0].Source
	return s.PlatformVersion, s.LastRun, nil
}

// searchRequest is a request with a JSON body to one API path.
type searchRequest struct {
	path string
	body []byte
}

// GetRequest builds the request; the client adds the node's address.
func (r searchRequest) GetRequest(method string) (*http.Request, error) {
	req, err := http.NewRequest(method, r.path, bytes.NewReader(r.body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, err
}

// parseWatermark reads a disk watermark: a percentage of disk used ("95%", "0.95")
// or an amount that must stay free ("500mb", "1gb").
func parseWatermark(s string) (usedPercent float64, freeBytes int64, err error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if p, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		return f, 0, err
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f <= 1 {
		return 100 * f, 0, nil
	}
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"tb", 1 << 40}, {"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"b", 1}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			f, err := strconv.ParseFloat(n, 64)
			return 0, int64(f * float64(u.mult)), err
		}
	}
	return 0, 0, fmt.Errorf("cannot read watermark %q", s)
}

// snapshotRepositoryProblem says why the section's snapshot repository cannot take a
// snapshot: not named, or not registered on the cluster.
func snapshotRepositoryProblem(ctx context.Context, c *opensearch.Client, repo string) string {
	if repo == "" {
		return "integrations.opensearch.snapshotRepository is not set, so nothing could be restored if the migration failed"
	}
	if _, err := searchCall(ctx, c, http.MethodGet, "/_snapshot/"+repo, nil, nil); err != nil {
		return "snapshot repository " + repo + " is not usable: " + err.Error()
	}
	return ""
}
