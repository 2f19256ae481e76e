package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"

	"github.com/socflow/socflow/internal/spec"
)

// ErrTypeSnapshotFailed: the search engine ended a snapshot or a restore in failure.
const ErrTypeSnapshotFailed = "SnapshotFailed"

// SnapshotInput names what to back up and where.
type SnapshotInput struct {
	// OpenSearch is the spec's integrations.opensearch section (its snapshotRepository).
	OpenSearch spec.OpenSearch `json:"opensearch"`
	// Prefix is the instance's index prefix (its name).
	Prefix string `json:"prefix"`
	// Snapshot is the snapshot's name, unique per upgrade.
	Snapshot string `json:"snapshot"`
}

// SnapshotResult describes a finished snapshot.
type SnapshotResult struct {
	// Repository and Snapshot name it.
	Repository string `json:"repository"`
	Snapshot   string `json:"snapshot"`
	// Indices are the indices it holds, sorted.
	Indices []string `json:"indices"`
	// Templates counts the index and component templates and policies saved with it.
	Templates int `json:"templates"`
}

// SnapshotBackupSuffix names the index, inside the instance's prefix, that holds the
// saved definitions of each snapshot (OpenSearch snapshots can only take all
// templates or none; this keeps exactly the instance's).
const SnapshotBackupSuffix = "_socflow_backup"

// definitions are an instance's cluster-level objects as saved with a snapshot, each
// as the engine answered its GET.
type definitions struct {
	// IndexTemplates are the <prefix>_* index templates, by name.
	IndexTemplates map[string]json.RawMessage `json:"index_templates"`
	// ComponentTemplates are the <prefix>-core-settings component template, by name.
	ComponentTemplates map[string]json.RawMessage `json:"component_templates"`
	// ISMPolicy is the <prefix>-ism-policy lifecycle policy (null: none).
	ISMPolicy json.RawMessage `json:"ism_policy,omitempty"`
}

// SnapshotInstance backs up exactly one instance: its <prefix>_* indices with their
// aliases (the separator matters: instance demo never takes demo2's), and its index
// templates, component template and lifecycle policy, saved as documents beside
// them. The snapshot is started, then waited on with heartbeats carrying its state;
// a retry finds the snapshot it started and waits for it.
func (a *Activities) SnapshotInstance(ctx context.Context, in SnapshotInput) (SnapshotResult, error) {
	repo := in.OpenSearch.SnapshotRepository
	res := SnapshotResult{Repository: repo, Snapshot: in.Snapshot}
	c, err := a.searchClient(ctx, in.OpenSearch)
	if err != nil {
		return res, err
	}
	defs, err := readDefinitions(ctx, c, in.Prefix)
	if err != nil {
		return res, err
	}
	res.Templates = len(defs.IndexTemplates) + len(defs.ComponentTemplates)
	if len(defs.ISMPolicy) > 0 {
		res.Templates++
	}
	backup := in.Prefix + SnapshotBackupSuffix
	if _, err := searchCall(ctx, c, http.MethodPut, "/"+backup, map[string]any{"mappings": map[string]any{"enabled": false}}, nil,
		http.StatusBadRequest); err != nil {
		return res, fmt.Errorf("cannot create %s: %w", backup, err)
	}
	if _, err := searchCall(ctx, c, http.MethodPut, "/"+backup+"/_doc/"+in.Snapshot+"?refresh=true", defs, nil); err != nil {
		return res, fmt.Errorf("cannot save the templates of %s: %w", in.Prefix, err)
	}
	path := "/_snapshot/" + repo + "/" + in.Snapshot
	body := map[string]any{"indices": in.Prefix + "_*", "include_global_state": false, "ignore_unavailable": true, "partial": false}
	status, err := searchCall(ctx, c, http.MethodPut, path+"?wait_for_completion=false", body, nil, http.StatusBadRequest)
	if err != nil {
		return res, classifySnapshot(repo, err)
	}
	_ = status // 400: a retry's snapshot of the same name exists; wait for it
	for {
		var info struct {
			Snapshots []struct {
				State   string   `json:"state"`
				Indices []string `json:"indices"`
				Reason  string   `json:"reason"`
				Shards  struct {
					Total, Successful, Failed int
				} `json:"shards"`
			} `json:"snapshots"`
		}
		if _, err := searchCall(ctx, c, http.MethodGet, path, nil, &info); err != nil {
			return res, classifySnapshot(repo, err)
		}
		if len(info.Snapshots) == 1 {
			s := info.Snapshots[0]
			recordHeartbeat(ctx, fmt.Sprintf("snapshot %s: %s, %d/%d shards", in.Snapshot, s.State, s.Shards.Successful, s.Shards.Total))
			switch s.State {
			case "SUCCESS":
				res.Indices = slices.Sorted(slices.Values(s.Indices))
				return res, nil
			case "FAILED", "PARTIAL", "INCOMPATIBLE":
				return res, permanent(ErrTypeSnapshotFailed, fmt.Errorf("snapshot %s of %s ended %s: %s (%d of %d shards failed)",
					in.Snapshot, in.Prefix, s.State, s.Reason, s.Shards.Failed, s.Shards.Total))
			}
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// RestoreInput names the snapshot to restore an instance from.
type RestoreInput struct {
	// OpenSearch is the spec's integrations.opensearch section (its snapshotRepository).
	OpenSearch spec.OpenSearch `json:"opensearch"`
	// Prefix is the instance's index prefix (its name).
	Prefix string `json:"prefix"`
	// Snapshot is the snapshot SnapshotInstance took.
	Snapshot string `json:"snapshot"`
}

// RestoreResult says what a restore put back.
type RestoreResult struct {
	// Deleted are the instance's indices deleted before the restore, sorted.
	Deleted []string `json:"deleted,omitempty"`
	// Restored are the indices the snapshot put back, sorted.
	Restored []string `json:"restored"`
	// Templates counts the templates and policies put back.
	Templates int `json:"templates"`
}

// RestoreInstance puts one instance back as its snapshot holds it: its <prefix>_*
// indices are deleted and restored with their aliases, its index templates
// replaced by the saved ones (templates the newer version added removed), its
// component template and lifecycle policy put back. Nothing of another instance is
// touched. Repeating it repeats the same restore.
func (a *Activities) RestoreInstance(ctx context.Context, in RestoreInput) (RestoreResult, error) {
	repo := in.OpenSearch.SnapshotRepository
	var res RestoreResult
	c, err := a.searchClient(ctx, in.OpenSearch)
	if err != nil {
		return res, err
	}
	backup := in.Prefix + SnapshotBackupSuffix
	var saved struct {
		Source definitions `json:"_source"`
	}
	if _, err := searchCall(ctx, c, http.MethodGet, "/"+backup+"/_doc/"+in.Snapshot, nil, &saved); err != nil {
		return res, fmt.Errorf("cannot read the templates saved with snapshot %s: %w", in.Snapshot, err)
	}
	// A retry finds the restore an earlier attempt started still running: it waits
	// for that one rather than deleting what is being restored.
	var recovering map[string]struct {
		Shards []struct {
			Type  string `json:"type"`
			Stage string `json:"stage"`
		} `json:"shards"`
	}
	if _, err := searchCall(ctx, c, http.MethodGet, "/"+in.Prefix+"_*/_recovery?active_only=true", nil, &recovering, http.StatusNotFound); err != nil {
		return res, fmt.Errorf("cannot read the recoveries of %s: %w", in.Prefix, err)
	}
	restoring := false
	for ix, r := range recovering {
		for _, sh := range r.Shards {
			restoring = restoring || strings.HasPrefix(ix, in.Prefix+"_") && sh.Type == "SNAPSHOT"
		}
	}
	if !restoring {
		var indices []struct {
			Index string `json:"index"`
		}
		if _, err := searchCall(ctx, c, http.MethodGet, "/_cat/indices/"+in.Prefix+"_*?format=json&h=index&expand_wildcards=all", nil, &indices); err != nil {
			return res, fmt.Errorf("cannot list the indices of %s: %w", in.Prefix, err)
		}
		for _, ix := range indices {
			if !strings.HasPrefix(ix.Index, in.Prefix+"_") || ix.Index == backup {
				continue
			}
			if _, err := searchCall(ctx, c, http.MethodDelete, "/"+ix.Index, nil, nil, http.StatusNotFound); err != nil {
				return res, fmt.Errorf("cannot delete %s before the restore: %w", ix.Index, err)
			}
			res.Deleted = append(res.Deleted, ix.Index)
		}
		slices.Sort(res.Deleted)
		recordHeartbeat(ctx, fmt.Sprintf("deleted %d indices of %s; restoring %s", len(res.Deleted), in.Prefix, in.Snapshot))
		body := map[string]any{"indices": in.Prefix + "_*,-" + backup, "include_aliases": true, "include_global_state": false}
		if _, err := searchCall(ctx, c, http.MethodPost, "/_snapshot/"+repo+"/"+in.Snapshot+"/_restore?wait_for_completion=false", body, nil); err != nil {
			return res, classifySnapshot(repo, err)
		}
	}
	// Restored indices open red and turn yellow or green once their shards are back;
	// the wait heartbeats, so a large restore is waited on, not timed out.
	var info struct {
		Snapshots []struct {
			Indices []string `json:"indices"`
		} `json:"snapshots"`
	}
	if _, err := searchCall(ctx, c, http.MethodGet, "/_snapshot/"+repo+"/"+in.Snapshot, nil, &info); err != nil || len(info.Snapshots) != 1 {
		return res, fmt.Errorf("cannot read snapshot %s: %v", in.Snapshot, err)
	}
	for _, ix := range info.Snapshots[0].Indices {
		if ix != backup {
			res.Restored = append(res.Restored, ix)
		}
	}
	slices.Sort(res.Restored)
	for {
		var health struct {
			Status             string `json:"status"`
			InitializingShards int    `json:"initializing_shards"`
			UnassignedShards   int    `json:"unassigned_shards"`
		}
		_, err := searchCall(ctx, c, http.MethodGet, "/_cluster/health/"+strings.Join(res.Restored, ",")+"?timeout=1s", nil, &health, http.StatusRequestTimeout)
		if err != nil {
			return res, fmt.Errorf("cannot read the health of the restored indices: %w", err)
		}
		recordHeartbeat(ctx, fmt.Sprintf("restoring %s: %s, %d shards initialising", in.Snapshot, health.Status, health.InitializingShards))
		if health.Status == "green" || health.Status == "yellow" {
			// Health turns yellow when the primaries are assigned; a shard still
			// finishing its recovery refuses reads (HTTP 503, "CurrentState[RECOVERING]"),
			// so the restore is done only once every restored shard answers a count.
			var count struct {
				Shards struct {
					Total, Successful, Failed int
				} `json:"_shards"`
			}
			_, err := searchCall(ctx, c, http.MethodGet, "/"+strings.Join(res.Restored, ",")+"/_count", nil, &count, http.StatusServiceUnavailable)
			if err == nil && count.Shards.Total > 0 && count.Shards.Successful == count.Shards.Total {
				break
			}
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	n, err := writeDefinitions(ctx, c, in.Prefix, saved.Source)
	res.Templates = n
	return res, err
}

// readDefinitions reads the instance's index templates, component template and
// lifecycle policy; absent ones are left out.
func readDefinitions(ctx context.Context, c *opensearch.Client, prefix string) (definitions, error) {
	defs := definitions{IndexTemplates: map[string]json.RawMessage{}, ComponentTemplates: map[string]json.RawMessage{}}
	var its struct {
		IndexTemplates []struct {
			Name          string          `json:"name"`
			IndexTemplate json.RawMessage `json:"index_template"`
		} `json:"index_templates"`
	}
	if _, err := searchCall(ctx, c, http.MethodGet, "/_index_template/"+prefix+"_*", nil, &its, http.StatusNotFound); err != nil {
		return defs, fmt.Errorf("cannot read the index templates of %s: %w", prefix, err)
	}
	for _, t := range its.IndexTemplates {
		if strings.HasPrefix(t.Name, prefix+"_") {
			defs.IndexTemplates[t.Name] = t.IndexTemplate
		}
	}
	var cts struct {
		ComponentTemplates []struct {
			Name              string          `json:"name"`
			ComponentTemplate json.RawMessage `json:"component_template"`
		} `json:"component_templates"`
	}
	if _, err := searchCall(ctx, c, http.MethodGet, "/_component_template/"+prefix+"-core-settings", nil, &cts, http.StatusNotFound); err != nil {
		return defs, fmt.Errorf("cannot read the component template of %s: %w", prefix, err)
	}
	for _, t := range cts.ComponentTemplates {
		defs.ComponentTemplates[t.Name] = t.ComponentTemplate
	}
	var policy struct {
		Policy json.RawMessage `json:"policy"`
	}
	status, err := searchCall(ctx, c, http.MethodGet, "/_plugins/_ism/policies/"+prefix+"-ism-policy", nil, &policy, http.StatusNotFound, http.StatusBadRequest)
	if err != nil {
		return defs, fmt.Errorf("cannot read the lifecycle policy of %s: %w", prefix, err)
	}
	if status == http.StatusOK {
		defs.ISMPolicy = policy.Policy
	}
	return defs, nil
}

// writeDefinitions puts saved definitions back, removing <prefix>_* index templates
// they do not hold (a newer version's), and returns how many it wrote.
func writeDefinitions(ctx context.Context, c *opensearch.Client, prefix string, defs definitions) (int, error) {
	now, err := readDefinitions(ctx, c, prefix)
	if err != nil {
		return 0, err
	}
	for name := range now.IndexTemplates {
		if _, kept := defs.IndexTemplates[name]; !kept {
			if _, err := searchCall(ctx, c, http.MethodDelete, "/_index_template/"+name, nil, nil, http.StatusNotFound); err != nil {
				return 0, fmt.Errorf("cannot remove index template %s: %w", name, err)
			}
		}
	}
	n := 0
	for _, name := range slices.Sorted(maps.Keys(defs.ComponentTemplates)) {
		if _, err := searchCall(ctx, c, http.MethodPut, "/_component_template/"+name, defs.ComponentTemplates[name], nil); err != nil {
			return n, fmt.Errorf("cannot put back component template %s: %w", name, err)
		}
		n++
	}
	for _, name := range slices.Sorted(maps.Keys(defs.IndexTemplates)) {
		body := defs.IndexTemplates[name]
		if _, err := searchCall(ctx, c, http.MethodPut, "/_index_template/"+name, body, nil); err != nil {
			return n, fmt.Errorf("cannot put back index template %s: %w", name, err)
		}
		n++
	}
	if len(defs.ISMPolicy) > 0 && string(defs.ISMPolicy) != "null" {
		id := prefix + "-ism-policy"
		if _, err := searchCall(ctx, c, http.MethodDelete, "/_plugins/_ism/policies/"+id, nil, nil, http.StatusNotFound); err != nil {
			return n, fmt.Errorf("cannot replace lifecycle policy %s: %w", id, err)
		}
		var p map[string]any
		_ = json.Unmarshal(defs.ISMPolicy, &p)
		for _, k := range []string{"policy_id", "last_updated_time", "schema_version", "error_notification"} {
			if k != "error_notification" || p[k] == nil {
				delete(p, k)
			}
		}
		if _, err := searchCall(ctx, c, http.MethodPut, "/_plugins/_ism/policies/"+id, map[string]any{"policy": p}, nil); err != nil {
			return n, fmt.Errorf("cannot put back lifecycle policy %s: %w", id, err)
		}
		n++
	}
	return n, nil
}

// searchClient is a client of the first node of the section that answers.
func (a *Activities) searchClient(ctx context.Context, s spec.OpenSearch) (*opensearch.Client, error) {
	if s.SnapshotRepository == "" {
		return nil, permanent(ErrTypeBadConfig, errors.New("integrations.opensearch.snapshotRepository is not set: name the snapshot repository upgrades back up into"))
	}
	password, ca, err := a.openSearchSecrets(s)
	if err != nil {
		return nil, classify(err)
	}
	var reasons []string
	for _, u := range searchURLs(s) {
		c, err := newSearchClient(ctx, u, s.Username, password, ca)
		if err != nil {
			return nil, err
		}
		callCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
		_, err = searchCall(callCtx, c.Client, http.MethodGet, "/", nil, nil)
		cancel()
		if err == nil {
			return c.Client, nil
		}
		reasons = append(reasons, u+": "+err.Error())
	}
	return nil, errors.New("no search node answers: " + strings.Join(reasons, "; "))
}

// searchCall sends one JSON request; a status in ok (besides 2xx) is not an error.
func searchCall(ctx context.Context, c *opensearch.Client, method, path string, body, into any, ok ...int) (int, error) {
	var raw []byte
	if body != nil {
		if r, isRaw := body.(json.RawMessage); isRaw {
			raw = r
		} else {
			raw, _ = json.Marshal(body)
		}
	}
	var answer json.RawMessage
	resp, err := opensearch.Do(ctx, c, method, searchRequest{path: path, body: raw}, &answer)
	status := responseStatus(resp)
	if resp != nil && resp.IsError() {
		if slices.Contains(ok, status) {
			return status, nil
		}
		text := []byte{}
		if resp.Body != nil {
			text, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
		}
		return status, fmt.Errorf("%s %s: HTTP %d: %.400s", method, path, status, text)
	}
	if err != nil {
		return status, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if into != nil && len(answer) > 0 {
		if err := json.Unmarshal(answer, into); err != nil {
			return status, fmt.Errorf("%s %s: cannot decode the answer: %w", method, path, err)
		}
	}
	return status, nil
}

// classifySnapshot makes a missing repository permanent (a human must register it).
func classifySnapshot(repo string, err error) error {
	if strings.Contains(err.Error(), "repository_missing_exception") {
		return permanent(ErrTypeBadConfig, fmt.Errorf("snapshot repository %s does not exist (register it with PUT _snapshot/%s, or fix integrations.opensearch.snapshotRepository): %w", repo, repo, err))
	}
	return err
}
