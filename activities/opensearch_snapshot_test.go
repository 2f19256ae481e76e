package activities_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

// openCTILike creates, for prefix p, what OpenCTI keeps in the search engine: a
// rollover index with its alias and a document, an index template, the
// core-settings component template and the lifecycle policy.
func openCTILike(t *testing.T, base, p string, ism bool) {
	t.Helper()
	search(t, http.MethodPut, base+"/_component_template/"+p+"-core-settings", map[string]any{"template": map[string]any{"settings": map[string]any{"number_of_replicas": 0}}})
	search(t, http.MethodPut, base+"/_index_template/"+p+"_history", map[string]any{"index_patterns": []string{p + "_history*"},
		"composed_of": []string{p + "-core-settings"}, "template": map[string]any{"settings": map[string]any{"number_of_shards": 1}}})
	search(t, http.MethodPut, base+"/"+p+"_history-000001", map[string]any{"aliases": map[string]any{p + "_history": map[string]any{"is_write_index": true}}})
	search(t, http.MethodPut, base+"/"+p+"_history/_doc/before?refresh=true", map[string]any{"note": "written before the upgrade"})
	// The lifecycle policy only where index-management is installed (the local stack
	// cannot have it: README, "The local stack").
	if ism {
		search(t, http.MethodPut, base+"/_plugins/_ism/policies/"+p+"-ism-policy", map[string]any{"policy": map[string]any{
			"description": "rollover " + p, "default_state": "hot", "states": []any{map[string]any{"name": "hot", "actions": []any{}, "transitions": []any{}}}}})
	}
	t.Cleanup(func() {
		for _, path := range []string{"/" + p + "_*", "/_index_template/" + p + "_*", "/_component_template/" + p + "-core-settings", "/_plugins/_ism/policies/" + p + "-ism-policy"} {
			req, _ := http.NewRequest(http.MethodDelete, base+path, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})
}

// TestSnapshotAndRestoreOneInstance: on a cluster holding instance demo and an
// instance whose name starts with demo's (demo2), SnapshotInstance takes demo's
// indices and definitions and nothing of demo2's; after an upgrade-like change of
// demo (a document deleted, a new index template, the core template changed),
// RestoreInstance puts demo back exactly, and demo2 is untouched throughout.
func TestSnapshotAndRestoreOneInstance(t *testing.T) {
	st := stacktest.Get(t)
	base := st.OpenSearchURL
	demo := randomName("snap")
	demo2 := demo + "2"
	ism := hasISM(base)
	openCTILike(t, base, demo, ism)
	openCTILike(t, base, demo2, ism)
	definitions := 2
	if ism {
		definitions = 3
	}
	searchSpec := spec.OpenSearch{URLs: []string{base}, SnapshotRepository: stacktest.Get(t).Raw["SOCFLOW_SNAPSHOT_REPOSITORY"]}
	if searchSpec.SnapshotRepository == "" {
		t.Fatal("the stack env has no SOCFLOW_SNAPSHOT_REPOSITORY: run deploy/local/stack up")
	}
	a := &activities.Activities{}
	ctx := context.Background()
	snap, err := a.SnapshotInstance(ctx, activities.SnapshotInput{OpenSearch: searchSpec, Prefix: demo, Snapshot: demo + "-upgrade-1"})
	if err != nil {
		t.Fatalf("SnapshotInstance: %v", err)
	}
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, base+"/_snapshot/"+searchSpec.SnapshotRepository+"/"+demo+"-upgrade-1", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	if !slices.Equal(snap.Indices, []string{demo + "_history-000001", demo + "_socflow_backup"}) || snap.Templates != definitions {
		t.Fatalf("snapshot of %s: %+v; want its own two indices and its definitions", demo, snap)
	}
	for _, ix := range snap.Indices {
		if strings.HasPrefix(ix, demo2) {
			t.Errorf("the snapshot of %s holds %s, of %s", demo, ix, demo2)
		}
	}
	again, err := a.SnapshotInstance(ctx, activities.SnapshotInput{OpenSearch: searchSpec, Prefix: demo, Snapshot: demo + "-upgrade-1"})
	if err != nil || !slices.Equal(again.Indices, snap.Indices) {
		t.Errorf("a retried snapshot: %+v %v", again, err)
	}

	// What an upgrade does: data and templates change.
	search(t, http.MethodDelete, base+"/"+demo+"_history/_doc/before?refresh=true", nil)
	search(t, http.MethodPut, base+"/"+demo+"_history/_doc/after?refresh=true", map[string]any{"note": "written by the new version"})
	search(t, http.MethodPut, base+"/_index_template/"+demo+"_new_objects", map[string]any{"index_patterns": []string{demo + "_new_objects*"}})
	search(t, http.MethodPut, base+"/_component_template/"+demo+"-core-settings", map[string]any{"template": map[string]any{"settings": map[string]any{"number_of_replicas": 1}}})
	demo2Before := search(t, http.MethodGet, base+"/_index_template/"+demo2+"_*", nil)

	res, err := a.RestoreInstance(ctx, activities.RestoreInput{OpenSearch: searchSpec, Prefix: demo, Snapshot: demo + "-upgrade-1"})
	if err != nil {
		t.Fatalf("RestoreInstance: %v", err)
	}
	if !slices.Equal(res.Restored, []string{demo + "_history-000001"}) || !slices.Equal(res.Deleted, []string{demo + "_history-000001"}) || res.Templates != definitions {
		t.Errorf("restore: %+v", res)
	}
	if got := search(t, http.MethodGet, base+"/"+demo+"_history/_doc/before", nil); got["found"] != true {
		t.Errorf("the document written before is not back: %v", got)
	}
	if got := search(t, http.MethodGet, base+"/"+demo+"_history/_search", map[string]any{"query": map[string]any{"ids": map[string]any{"values": []string{"after"}}}}); !strings.Contains(jsonText(got), `"total":{"relation":"eq","value":0}`) {
		t.Errorf("the new version's document survived the restore: %v", got)
	}
	templates := jsonText(search(t, http.MethodGet, base+"/_index_template/"+demo+"_*", nil))
	if strings.Contains(templates, demo+"_new_objects") || !strings.Contains(templates, demo+"_history") {
		t.Errorf("index templates after the restore: %s", templates)
	}
	if core := jsonText(search(t, http.MethodGet, base+"/_component_template/"+demo+"-core-settings", nil)); !strings.Contains(core, `"number_of_replicas":"0"`) {
		t.Errorf("component template after the restore: %s", core)
	}
	if after := search(t, http.MethodGet, base+"/_index_template/"+demo2+"_*", nil); jsonText(after) != jsonText(demo2Before) {
		t.Errorf("%s's templates changed", demo2)
	}
	if got := search(t, http.MethodGet, base+"/"+demo2+"_history/_doc/before", nil); got["found"] != true {
		t.Errorf("%s's document is gone", demo2)
	}
}

// jsonText is v as compact JSON, for comparing and searching answers.
func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// hasISM reports whether the cluster has the index-management plugin's API.
func hasISM(base string) bool {
	resp, err := http.Get(base + "/_plugins/_ism/policies")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
