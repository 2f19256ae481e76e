package activities_test

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

func TestProbeOpenSearchReady(t *testing.T) {
	st := stacktest.Get(t)
	res, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch,
		activities.ProbeOpenSearchInput{OpenSearch: spec.OpenSearch{URLs: []string{st.OpenSearchURL}}})
	requireReady(t, res, err, "")
	t.Logf("opensearch %s after %d attempt(s)", res.Version, res.Attempts)
}

func TestProbeOpenSearchFailsOverToALiveNode(t *testing.T) {
	st := stacktest.Get(t)
	res, err := runProbe(t, probeEnv(t), nilActs.ProbeOpenSearch, activities.ProbeOpenSearchInput{
		OpenSearch: spec.OpenSearch{URLs: []string{"http://" + unreachable, st.OpenSearchURL}}})
	requireReady(t, res, err, "")
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

// fakeSearch answers / and /_cluster/health like a search node would. The local
// stack runs OpenSearch 2.19 without the security plugin, so refused credentials,
// old versions and a red cluster can only be shown against a stand-in.
func fakeSearch(t *testing.T, status int, distribution, version, health string) string {
	t.Helper()
	srv := httptest.NewServer(fakeSearchHandler(status, distribution, version, health))
	t.Cleanup(srv.Close)
	return srv.URL
}

func fakeSearchHandler(status int, distribution, version, health string) http.Handler {
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
