package activities_test

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

// localOpenSearch is the stack's OpenSearch as local specs describe it: it has the four
// modules Maven Central carries but not index-management (ISM), which they accept.
func localOpenSearch(urls ...string) spec.OpenSearch {
	return spec.OpenSearch{URLs: urls, AllowMissingModules: []string{"index-management"}}
}

func TestProbeOpenSearchReady(t *testing.T) {
	st := stacktest.Get(t)
	res, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
		OpenSearch: localOpenSearch(st.OpenSearchURL), IndexPrefix: "demo"})
	requireReady(t, res, err, "index-management: creating the lifecycle policy demo-ism-policy fails")
	// The four modules the stack installs loaded: only ISM is reported.
	for _, m := range []string{"analysis-common", "lang-painless", "mapper-extras", "reindex"} {
		if strings.Contains(res.Warning, m) {
			t.Errorf("warning %q names %s, which the stack installs", res.Warning, m)
		}
	}
	t.Logf("opensearch %s after %d attempt(s); warning: %s", res.Version, res.Attempts, res.Warning)
}

// TestProbeOpenSearchMissingISM: without the spec accepting it, a missing module fails
// the probe at once, naming it and the fix.
func TestProbeOpenSearchMissingISM(t *testing.T) {
	st := stacktest.Get(t)
	_, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
		OpenSearch: spec.OpenSearch{URLs: []string{st.OpenSearchURL}}})
	requirePermanent(t, err, activities.ErrTypeMissingSearchModules, "lacks a module OpenCTI needs",
		"index-management: creating the lifecycle policy <prefix>-ism-policy fails", "integrations.opensearch.allowMissingModules")
	if strings.Contains(err.Error(), "analysis-common") {
		t.Errorf("error names analysis-common, which the stack installs: %v", err)
	}
}

// TestProbeOpenSearchBareNamesEachMissingModule: the OpenSearch probe names each missing
// module on a bare OpenSearch (the minimal distribution, transport module only).
func TestProbeOpenSearchBareNamesEachMissingModule(t *testing.T) {
	u := bareOpenSearch(t)
	_, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
		OpenSearch: spec.OpenSearch{URLs: []string{u}}, IndexPrefix: "demo"})
	requirePermanent(t, err, activities.ErrTypeMissingSearchModules, "cannot use opensearch at "+u, "lacks 5 modules",
		`analysis-common: OpenCTI's first boot fails with DATABASE_ERROR "Creating component template fail"`,
		"lang-painless: ", "mapper-extras: ", "reindex: ", "index-management: creating the lifecycle policy demo-ism-policy fails")

	// Accepting all five turns them into one warning.
	res, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{OpenSearch: spec.OpenSearch{
		URLs: []string{u}, AllowMissingModules: []string{"analysis-common", "lang-painless", "mapper-extras", "reindex", "index-management"}}})
	requireReady(t, res, err, "analysis-common: ")
}

func TestProbeOpenSearchFailsOverToALiveNode(t *testing.T) {
	st := stacktest.Get(t)
	res, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
		OpenSearch: localOpenSearch("http://"+unreachable, st.OpenSearchURL)})
	requireReady(t, res, err, "index-management")
}

func TestProbeOpenSearchUnreachable(t *testing.T) {
	res, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
		OpenSearch:  spec.OpenSearch{URLs: []string{"http://" + unreachable}},
		ProbeWindow: activities.ProbeWindow{Window: shortWindow}})
	requireNotReady(t, res, err, "opensearch", "http://"+unreachable, "connection refused")
}

func TestProbeOpenSearchMissingSecret(t *testing.T) {
	st := stacktest.Get(t)
	_, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
		OpenSearch: spec.OpenSearch{URLs: []string{st.OpenSearchURL}, Username: "admin", Password: missingEnvRef(t)}})
	requirePermanent(t, err, activities.ErrTypeSecretUnavailable, "integrations.opensearch.password")
}

// fakeSearch answers /, /_cluster/health and /_nodes/plugins like a search node
// would, with every module OpenCTI needs. The local stack runs OpenSearch 2.19 without
// the security plugin, so refused credentials, old versions and a red cluster can
// only be shown against a stand-in.
func fakeSearch(t *testing.T, status int, distribution, version, health string) string {
	t.Helper()
	srv := httptest.NewServer(fakeSearchHandler(status, distribution, version, health))
	t.Cleanup(srv.Close)
	return srv.URL
}

func fakeSearchHandler(status int, distribution, version, health string) http.Handler {
	lifecycle := "x-pack-ilm"
	if distribution == "opensearch" {
		lifecycle = "index-management"
	}
	return fakeSearchNodes(status, distribution, version, health, map[string][]string{
		"node-1": {"analysis-common", "lang-painless", "mapper-extras", "reindex", lifecycle}})
}

// fakeSearchNodes is fakeSearchHandler with the given modules per node name.
func fakeSearchNodes(status int, distribution, version, health string, modules map[string][]string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if status != http.StatusOK {
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":{"type":"security_exception","reason":"denied"},"status":%d}`, status)
			return
		}
		switch r.URL.Path {
		case "/":
			fmt.Fprintf(w, `{"name":"fake","version":{"distribution":%q,"number":%q}}`, distribution, version)
		case "/_cluster/health":
			fmt.Fprintf(w, `{"cluster_name":"fake","status":%q,"unassigned_shards":3}`, health)
		case "/_nodes/plugins":
			nodes := map[string]any{}
			for name, mods := range modules {
				var list []map[string]string
				for _, m := range mods {
					list = append(list, map[string]string{"name": m})
				}
				nodes["id-"+name] = map[string]any{"name": name, "modules": list, "plugins": []any{}}
			}
			_ = json.NewEncoder(w).Encode(map[string]any{
				"_nodes": map[string]int{"total": len(modules), "successful": len(modules)}, "nodes": nodes})
		default:
			http.NotFound(w, r)
		}
	})
}

func TestProbeOpenSearchWrongPassword(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			u := fakeSearch(t, status, "", "", "")
			_, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
				OpenSearch: spec.OpenSearch{URLs: []string{u}, Username: "admin", Password: "wrong"}})
			requirePermanent(t, err, activities.ErrTypeAuthFailed, "opensearch", u, "admin", fmt.Sprintf("HTTP %d", status))
		})
	}
}

func TestProbeOpenSearchVersions(t *testing.T) {
	for _, tc := range []struct{ distribution, version, name, minimum string }{
		{"opensearch", "2.5.0", "opensearch", "2.9"},
		{"", "7.17.1", "elasticsearch", "8.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := fakeSearch(t, http.StatusOK, tc.distribution, tc.version, "green")
			_, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
				OpenSearch: spec.OpenSearch{URLs: []string{u}}})
			requirePermanent(t, err, activities.ErrTypeVersionTooOld, tc.name, tc.version, tc.minimum)

			res, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
				OpenSearch: spec.OpenSearch{URLs: []string{u}}, AllowOldDependencies: true})
			requireReady(t, res, err, "below OpenCTI's documented minimum "+tc.minimum)
		})
	}
	u := fakeSearch(t, http.StatusOK, "", "8.13.4", "yellow")
	res, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
		OpenSearch: spec.OpenSearch{URLs: []string{u}}})
	requireReady(t, res, err, "")
}

func TestProbeOpenSearchRedCluster(t *testing.T) {
	u := fakeSearch(t, http.StatusOK, "opensearch", "2.19.3", "red")
	res, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
		OpenSearch: spec.OpenSearch{URLs: []string{u}}, ProbeWindow: activities.ProbeWindow{Window: shortWindow}})
	requireNotReady(t, res, err, "cluster status red", u)
}

// TestProbeOpenSearchCustomCA shows the resolved CA is what the probe trusts: a
// node with a private certificate is refused without it and accepted with it.
func TestProbeOpenSearchCustomCA(t *testing.T) {
	srv := httptest.NewTLSServer(fakeSearchHandler(http.StatusOK, "opensearch", "2.19.3", "green"))
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	res, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
		OpenSearch: spec.OpenSearch{URLs: []string{srv.URL}}, ProbeWindow: activities.ProbeWindow{Window: shortWindow}})
	requireNotReady(t, res, err, "unknown authority")

	res, err = runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
		OpenSearch: spec.OpenSearch{URLs: []string{srv.URL}, CA: spec.SecretRef(ca)}})
	requireReady(t, res, err, "")

	_, err = runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
		OpenSearch: spec.OpenSearch{URLs: []string{srv.URL}, CA: "not a certificate"}})
	requirePermanent(t, err, activities.ErrTypeBadConfig, "integrations.opensearch.ca")
}

// TestProbeOpenSearchWarnsOldVersionAndMissingModule: both accepted shortfalls are
// reported in the one warning.
func TestProbeOpenSearchWarnsOldVersionAndMissingModule(t *testing.T) {
	srv := httptest.NewServer(fakeSearchNodes(http.StatusOK, "opensearch", "2.5.0", "green", map[string][]string{
		"os-1": {"analysis-common", "lang-painless", "mapper-extras", "reindex"}}))
	t.Cleanup(srv.Close)
	res, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
		OpenSearch: localOpenSearch(srv.URL), AllowOldDependencies: true})
	requireReady(t, res, err, "below OpenCTI's documented minimum 2.9")
	if !strings.Contains(res.Warning, "; opensearch at "+srv.URL+" lacks index-management") {
		t.Errorf("warning %q does not report index-management after the version", res.Warning)
	}
}

// TestProbeOpenSearchModuleMissingOnOneNode: a module missing on any node counts, and
// the node is named.
func TestProbeOpenSearchModuleMissingOnOneNode(t *testing.T) {
	all := []string{"analysis-common", "lang-painless", "mapper-extras", "reindex", "index-management"}
	srv := httptest.NewServer(fakeSearchNodes(http.StatusOK, "opensearch", "2.19.3", "green", map[string][]string{
		"os-1": all, "os-2": all[1:]}))
	t.Cleanup(srv.Close)
	_, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
		OpenSearch: spec.OpenSearch{URLs: []string{srv.URL}}})
	requirePermanent(t, err, activities.ErrTypeMissingSearchModules, "analysis-common (missing on node os-2): ")
}
