package openctistandin

import (
	"context"
	_ "embed"
	"encoding/json"
	"net/http"
	"strings"

	graphql "github.com/graph-gophers/graphql-go"
)

//go:embed schema.graphql
var schemaSDL string

// apiState is what resolvers read; it is fixed before the port opens, and later
// work adds stores (users, connectors) as fields.
type apiState struct {
	version      string
	platformURL  string
	settingsID   string
	dependencies []dependencyVersion
	users        userStore
}

// dependencyVersion is one entry of about.dependencies.
type dependencyVersion struct {
	name, version string
}

// user is an authenticated caller.
type user struct {
	id, name, email, token string
	admin                  bool
}

// userStore resolves API tokens; a seam so a store backed by the internal index
// can replace the static admin without touching resolvers.
type userStore interface {
	// byToken returns the user owning token, or nil when no user does.
	byToken(ctx context.Context, token string) (*user, error)
}

// staticUsers is the admin-only store used until users are implemented.
type staticUsers []user

func (s staticUsers) byToken(_ context.Context, token string) (*user, error) {
	for i := range s {
		if token != "" && s[i].token == token {
			return &s[i], nil
		}
	}
	return nil, nil
}

// gqlError is an error carrying OpenCTI's extensions.code; graph-gophers copies
// Extensions() into the response when a resolver returns it directly.
type gqlError struct {
	message, code string
}

func (e *gqlError) Error() string              { return e.message }
func (e *gqlError) Extensions() map[string]any { return map[string]any{"code": e.code} }

// errAuthRequired is OpenCTI's answer to a missing or unknown token, word for word,
// because clients (pycti, the orchestrator) match on the code.
func errAuthRequired() *gqlError {
	return &gqlError{"You must be logged in to do this.", "AUTH_REQUIRED"}
}

// errForbidden is OpenCTI's answer to a user lacking a capability.
func errForbidden() *gqlError {
	return &gqlError{"You are not allowed to do this.", "FORBIDDEN_ACCESS"}
}

// userFrom returns the authenticated user, nil when the request carried none.
func userFrom(ctx context.Context) *user {
	u, _ := ctx.Value(userKey{}).(*user)
	return u
}

func withUser(ctx context.Context, u *user) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// userKey carries the authenticated user through the resolver context.
type userKey struct{}

// requireUser is the start of every protected resolver, like OpenCTI's @auth.
func requireUser(ctx context.Context) (*user, error) {
	if u := userFrom(ctx); u != nil {
		return u, nil
	}
	return nil, errAuthRequired()
}

// queryResolver is the root of Query; add a method per new root field.
type queryResolver struct{ st *apiState }

func (q *queryResolver) About(ctx context.Context) (*aboutResolver, error) {
	u, err := requireUser(ctx)
	if err != nil {
		return nil, err
	}
	return &aboutResolver{st: q.st, user: u}, nil
}

func (q *queryResolver) Me(ctx context.Context) (*meResolver, error) {
	u, err := requireUser(ctx)
	if err != nil {
		return nil, err
	}
	return &meResolver{u: u}, nil
}

func (q *queryResolver) Settings(ctx context.Context) (*settingsResolver, error) {
	if _, err := requireUser(ctx); err != nil {
		return nil, err
	}
	return &settingsResolver{st: q.st}, nil
}

type aboutResolver struct {
	st   *apiState
	user *user
}

func (a *aboutResolver) Version() string { return a.st.version }

// Dependencies needs admin rights in OpenCTI, so non-admins get FORBIDDEN_ACCESS.
func (a *aboutResolver) Dependencies() ([]*dependencyResolver, error) {
	if !a.user.admin {
		return nil, errForbidden()
	}
	out := make([]*dependencyResolver, len(a.st.dependencies))
	for i := range a.st.dependencies {
		out[i] = &dependencyResolver{a.st.dependencies[i]}
	}
	return out, nil
}

type dependencyResolver struct{ d dependencyVersion }

func (d *dependencyResolver) Name() string    { return d.d.name }
func (d *dependencyResolver) Version() string { return d.d.version }

type meResolver struct{ u *user }

func (m *meResolver) ID() graphql.ID    { return graphql.ID(m.u.id) }
func (m *meResolver) Name() string      { return m.u.name }
func (m *meResolver) UserEmail() string { return m.u.email }
func (m *meResolver) APIToken() string  { return m.u.token }

type settingsResolver struct{ st *apiState }

func (s *settingsResolver) ID() graphql.ID { return graphql.ID(s.st.settingsID) }

func (s *settingsResolver) PlatformURL() *string {
	if s.st.platformURL == "" {
		return nil
	}
	return &s.st.platformURL
}

// PlatformCluster reports one instance: stand-in nodes do not yet heartbeat.
func (s *settingsResolver) PlatformCluster() *clusterResolver { return &clusterResolver{instances: 1} }

// PlatformModules lists OpenCTI's managers as enabled and running, which is what
// a healthy platform reports.
func (s *settingsResolver) PlatformModules() *[]*moduleResolver {
	out := make([]*moduleResolver, len(platformModules))
	for i, id := range platformModules {
		out[i] = &moduleResolver{id: id, enable: true, running: true}
	}
	return &out
}

// platformModules are ids of OpenCTI's background managers.
var platformModules = []string{
	"CONNECTOR_MANAGER", "EXPIRATION_SCHEDULER", "HISTORY_MANAGER", "RULE_ENGINE",
	"TASK_MANAGER", "SYNC_MANAGER", "RETENTION_MANAGER", "PUBLISHER_MANAGER",
	"NOTIFICATION_MANAGER", "PLAYBOOK_MANAGER", "INGESTION_MANAGER",
}

type clusterResolver struct{ instances int32 }

func (c *clusterResolver) InstancesNumber() int32 { return c.instances }

type moduleResolver struct {
	id              string
	enable, running bool
}

func (m *moduleResolver) ID() graphql.ID { return graphql.ID(m.id) }
func (m *moduleResolver) Enable() bool   { return m.enable }
func (m *moduleResolver) Running() bool  { return m.running }

// newSchema parses the SDL against the resolvers; a mismatch is a programming
// error caught by every test, so it panics.
func newSchema(st *apiState) *graphql.Schema {
	return graphql.MustParseSchema(schemaSDL, &queryResolver{st: st})
}

// graphqlHandler serves POST {base}/graphql, authenticating the bearer token
// before execution so resolvers only consult the context.
func graphqlHandler(schema *graphql.Schema, users userStore) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var req struct {
			Query         string         `json:"query"`
			OperationName string         `json:"operationName"`
			Variables     map[string]any `json:"variables"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []map[string]string{{"message": "cannot decode request: " + err.Error()}}})
			return
		}
		ctx := r.Context()
		if token := bearerToken(r); token != "" {
			u, err := users.byToken(ctx, token)
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]any{"errors": []map[string]string{{"message": "cannot authenticate: " + err.Error()}}})
				return
			}
			if u != nil {
				ctx = withUser(ctx, u)
			}
		}
		writeJSON(w, http.StatusOK, schema.Exec(ctx, req.Query, req.OperationName, req.Variables))
	}
}

// bearerToken extracts the token of "Authorization: Bearer <token>".
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// writeJSON writes v with the status; encoding errors only lose a response
// the client will see as truncated.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
