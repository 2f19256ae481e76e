package openctistandin

import (
	"crypto/subtle"
	"net/http"
)

// defaultHealthKey is OpenCTI's shipped placeholder, which /health refuses.
const defaultHealthKey = "ChangeMe"

// newHandler routes {base}/health and {base}/graphql; everything else is 404.
func newHandler(basePath, healthKey string, deps []dependency, st *apiState) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+basePath+"/health", healthHandler(healthKey, deps))
	mux.Handle(basePath+"/graphql", graphqlHandler(newSchema(st), st.users))
	return mux
}

// healthStatus is one dependency's line in a 503 body.
type healthStatus struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// healthHandler answers like OpenCTI: 401 for a wrong or default key (unless the
// key is "public"), then live checks: 200 {"status":"success"} or 503
// {"status":"error"}, the latter with details so a probe log says what failed.
func healthHandler(key string, deps []dependency) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !healthKeyAccepted(key, r.URL.Query().Get("health_access_key")) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"status": "unauthorized"})
			return
		}
		// Not fail-fast: the 503 body reports every dependency's state.
		results, first := runChecks(r.Context(), deps, healthCheckTimeout, false)
		statuses := make([]healthStatus, 0, len(results))
		for _, res := range results {
			st := healthStatus{Name: res.dep.product(), Status: "success"}
			if res.err != nil {
				st.Status, st.Error = "error", res.err.Error()
			}
			statuses = append(statuses, st)
		}
		if first >= 0 {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{
				"status": "error", "error": results[first].dep.product() + " seems down", "dependencies": statuses})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "success"})
	}
}

// healthKeyAccepted compares in constant time; the default key never passes,
// which is how OpenCTI forces operators to set one.
func healthKeyAccepted(configured, given string) bool {
	switch configured {
	case "public":
		return true
	case "", defaultHealthKey:
		return false
	}
	return subtle.ConstantTimeCompare([]byte(configured), []byte(given)) == 1
}
