package codec

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
)

// ServerOptions configures the codec server.
type ServerOptions struct {
	// Token is the bearer token callers must present; empty is refused by NewServer,
	// since a codec server without auth decrypts every history for anyone.
	Token string
	// AllowedOrigins are the Web UI origins allowed to call from a browser (CORS), e.g.
	// http://127.0.0.1:8233.
	AllowedOrigins []string
}

// NewServer returns the HTTP handler of /encode and /decode for the Web UI and
// `temporal --codec-endpoint --codec-auth 'Bearer TOKEN'`, for authorised callers only:
// the token comes as a bearer header or as the first path segment (/t/TOKEN/decode).
func NewServer(c *Codec, opts ServerOptions) http.Handler {
	inner := converter.NewPayloadCodecHTTPHandler(c)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && slices.Contains(opts.AllowedOrigins, origin) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
			w.Header().Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		// The Web UI's codec endpoint setting is a bare URL (it sends an Authorization
		// header only with UI login configured), so the token may also lead the path:
		// /t/<token>/decode.
		if rest, inPath := strings.CutPrefix(r.URL.Path, "/t/"); inPath && !ok {
			got, r.URL.Path, _ = strings.Cut(rest, "/")
			r.URL.Path = "/" + r.URL.Path
			ok = true
		}
		if opts.Token == "" || !ok || subtle.ConstantTimeCompare([]byte(got), []byte(opts.Token)) != 1 {
			http.Error(w, "unauthorized: present 'Authorization: Bearer <codec token>'", http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	})
}
