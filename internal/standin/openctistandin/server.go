package openctistandin

import (
	"crypto/subtle"
	"net/http"
	"time"
)

// defaultHealthKey is OpenCTI's shipped placeholder, which /health refuses.
const defaultHealthKey = "ChangeMe"

// newHandler routes {base}/health and {base}/graphql; everything else is 404.
func newHandler(basePath, healthKey string, healthTimeout time.Duration, deps []dependency, st *apiState) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(basePath+"/health", healthHandler(healthKey, healthTimeout, deps))
	mux.Handle(basePath+"/graphql", graphqlHandler(newSchema(st), st))
	return mux
}

// healthHandler answers like OpenCTI: HEAD 200 with no check; a wrong, missing,
// empty or default key 401 (unless the key is "public"); then live checks of
// every dependency at once: 200 {"status":"success"}, or 503
// {"status":"error","error":<first failure only>}, after at most timeout.
func healthHandler(key string, timeout time.Duration, deps []dependency) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodHead:
			w.WriteHeader(http.StatusOK)
			return
		case http.MethodGet:
		default:
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !healthKeyAccepted(key, r.URL.Query().Get("health_access_key")) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"status": "unauthorized"})
			return
		}
		if err := runHealthChecks(r.Context(), deps, timeout); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "error", "error": reportMessage(err)})
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
