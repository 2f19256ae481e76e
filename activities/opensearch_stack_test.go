package activities_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/socflow/socflow/internal/stacktest"
)

// bareOpenSearch starts the stack's opensearch-bare service — a second, small OpenSearch
// from the same minimal distribution without the modules the stack adds — and stops it
// when the test ends. One test uses it, so a `go test` run starts it once (≈ 20–30 s).
func bareOpenSearch(t *testing.T) string {
	t.Helper()
	st := stacktest.Get(t)
	u := st.Raw["SOCFLOW_OPENSEARCH_BARE_URL"]
	if u == "" {
		t.Fatal("the stack env has no SOCFLOW_OPENSEARCH_BARE_URL: run deploy/local/stack up (and re-export its env)")
	}
	script, err := stacktest.Script()
	if err != nil {
		t.Fatal(err)
	}
	stack := func(args ...string) {
		out, err := exec.Command(script, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("deploy/local/stack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	start := time.Now()
	stack("start", "opensearch-bare")
	t.Cleanup(func() { stack("stop", "opensearch-bare") })
	client := &http.Client{Timeout: 3 * time.Second}
	for deadline := time.Now().Add(3 * time.Minute); ; {
		resp, err := client.Get(u + "/_cluster/health?wait_for_status=yellow&timeout=2s")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("opensearch-bare at %s not ready after 3 minutes (last: %v); see `deploy/local/stack status`", u, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("opensearch-bare ready at %s in %s", u, time.Since(start).Round(100*time.Millisecond))
	return u
}

// search sends one request to the stack's OpenSearch and returns the decoded answer,
// failing the test on a non-2xx status.
func search(t *testing.T, method, url string, body any) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: HTTP %d: %s", method, url, resp.StatusCode, raw)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

// randomName is a lowercase name no other test uses, for objects in the shared cluster.
func randomName(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// TestStackOpenSearchModulesWork shows the modules the stack installs do what OpenCTI
// uses them for: a component template with an asciifolding normalizer (analysis-common,
// the first-boot failure), a painless script (lang-painless) and _reindex (reindex).
func TestStackOpenSearchModulesWork(t *testing.T) {
	base := stacktest.Get(t).OpenSearchURL
	name := randomName("modtest")
	t.Cleanup(func() {
		for _, p := range []string{"/" + name + "-*", "/_index_template/" + name, "/_component_template/" + name + "-core-settings"} {
			req, _ := http.NewRequest(http.MethodDelete, base+p, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})
	search(t, http.MethodPut, base+"/_component_template/"+name+"-core-settings", map[string]any{
		"template": map[string]any{"settings": map[string]any{"analysis": map[string]any{"normalizer": map[string]any{
			"string_normalizer": map[string]any{"type": "custom", "filter": []string{"lowercase", "asciifolding"}}}}}}})
	search(t, http.MethodPut, base+"/_index_template/"+name, map[string]any{
		"index_patterns": []string{name + "-*"}, "composed_of": []string{name + "-core-settings"},
		"template": map[string]any{"mappings": map[string]any{"properties": map[string]any{
			"name":  map[string]any{"type": "keyword", "normalizer": "string_normalizer"},
			"count": map[string]any{"type": "long"}}}}})
	search(t, http.MethodPut, base+"/"+name+"-src/_doc/1?refresh=true", map[string]any{"name": "Électricité", "count": 1})
	hits := search(t, http.MethodPost, base+"/"+name+"-src/_search", map[string]any{
		"query": map[string]any{"term": map[string]any{"name": "electricite"}}})
	if n := hits["hits"].(map[string]any)["total"].(map[string]any)["value"].(float64); n != 1 {
		t.Errorf("the asciifolding normalizer did not fold Électricité: %v hits", n)
	}
	search(t, http.MethodPost, base+"/"+name+"-src/_update/1?refresh=true", map[string]any{
		"script": map[string]any{"lang": "painless", "source": "ctx._source.count += params.n", "params": map[string]any{"n": 41}}})
	search(t, http.MethodPost, base+"/_reindex?refresh=true", map[string]any{
		"source": map[string]any{"index": name + "-src"}, "dest": map[string]any{"index": name + "-dst"}})
	doc := search(t, http.MethodGet, base+"/"+name+"-dst/_doc/1", nil)
	if c := doc["_source"].(map[string]any)["count"]; c != float64(42) {
		t.Errorf("after the painless update and _reindex, count is %v, want 42", c)
	}
}
