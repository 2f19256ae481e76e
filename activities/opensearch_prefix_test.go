package activities_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

// runPrefixCheck executes CheckOpenSearchPrefix the way a worker does.
func runPrefixCheck(t *testing.T, url, prefix string) (activities.CheckOpenSearchPrefixResult, error) {
	t.Helper()
	v, err := probeEnv(t).ExecuteActivity(nilActs.CheckOpenSearchPrefix, activities.CheckOpenSearchPrefixInput{
		OpenSearch: spec.OpenSearch{URLs: []string{url}}, Prefix: prefix})
	if err != nil {
		return activities.CheckOpenSearchPrefixResult{}, err
	}
	var res activities.CheckOpenSearchPrefixResult
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

// openCTIObjectsFor creates what OpenCTI leaves for prefix: a rollover index with its
// alias, an index template and the core-settings component template.
func openCTIObjectsFor(t *testing.T, base, prefix string, indices ...string) {
	t.Helper()
	search(t, http.MethodPut, base+"/_component_template/"+prefix+"-core-settings", map[string]any{
		"template": map[string]any{"settings": map[string]any{"number_of_replicas": 0}}})
	for _, index := range indices {
		alias := prefix + "_" + index
		search(t, http.MethodPut, base+"/_index_template/"+alias, map[string]any{
			"index_patterns": []string{alias + "*"}, "composed_of": []string{prefix + "-core-settings"}})
		search(t, http.MethodPut, base+"/"+alias+"-000001", map[string]any{
			"aliases": map[string]any{alias: map[string]any{"is_write_index": true}}})
	}
	t.Cleanup(func() {
		for _, index := range indices {
			for _, p := range []string{"/" + prefix + "_" + index + "-000001", "/_index_template/" + prefix + "_" + index} {
				req, _ := http.NewRequest(http.MethodDelete, base+p, nil)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
		req, _ := http.NewRequest(http.MethodDelete, base+"/_component_template/"+prefix+"-core-settings", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
}

func TestCheckOpenSearchPrefix(t *testing.T) {
	base := stacktest.Get(t).OpenSearchURL
	demo := randomName("pfx")
	demo2 := demo + "2"
	openCTIObjectsFor(t, base, demo, "internal_objects", "history")
	openCTIObjectsFor(t, base, demo2, "internal_objects", "stix_cyber_observable_relationships")

	// demo is a prefix of demo2: both are refused, each naming the other.
	_, err := runPrefixCheck(t, base, demo)
	requirePermanent(t, err, activities.ErrTypePrefixClash, "cannot use index prefix "+demo,
		"it would match instance "+demo2+"'s indices ("+demo2+"-core-settings, "+demo2+"_internal_objects, "+demo2+"_internal_objects-000001…)",
		"OpenCTI matches "+demo+"* for templates", "rename one instance")
	_, err = runPrefixCheck(t, base, demo2)
	requirePermanent(t, err, activities.ErrTypePrefixClash, "cannot use index prefix "+demo2,
		"instance "+demo+"'s prefix would match its indices", "OpenCTI matches "+demo+"* for templates", "rename one instance")
	// So is a new instance whose prefix starts either of them.
	_, err = runPrefixCheck(t, base, demo[:len(demo)-1])
	requirePermanent(t, err, activities.ErrTypePrefixClash, "instance "+demo+"'s indices", "instance "+demo2+"'s indices")

	// Its own prefix in use is a redeploy; an unrelated prefix is free.
	other := randomName("other")
	openCTIObjectsFor(t, base, other, "internal_objects")
	res, err := runPrefixCheck(t, base, other)
	if err != nil || !res.InUse {
		t.Fatalf("redeploy of %s: got %+v, %v; want in use and no error", other, res, err)
	}
	for _, want := range []string{demo, demo2, other} {
		if !strings.Contains(strings.Join(res.Prefixes, " "), want) {
			t.Errorf("prefixes %v do not list %s", res.Prefixes, want)
		}
	}
	res, err = runPrefixCheck(t, base, randomName("fresh"))
	if err != nil || res.InUse {
		t.Fatalf("fresh prefix: got %+v, %v; want free", res, err)
	}
}

func TestCheckOpenSearchPrefixUnreachable(t *testing.T) {
	_, err := runPrefixCheck(t, "http://"+unreachable, "demo")
	requireRetryable(t, err, "connection refused")
}

func TestCheckOpenSearchPrefixEmpty(t *testing.T) {
	_, err := runPrefixCheck(t, "http://"+unreachable, "")
	requirePermanent(t, err, activities.ErrTypeInvalidInput, "empty index prefix")
}
