package openctistandin

import (
	"context"
	_ "embed"
	"encoding/json"
	"net/http"
	"strings"

	graphql "github.com/graph-gophers/graphql-go"
	gqlerrors "github.com/graph-gophers/graphql-go/errors"
)

//go:embed schema.graphql
var schemaSDL string

// apiState is what resolvers read; it is fixed before the port opens, and later
// work adds stores (users, connectors) as fields.
type apiState struct {
	version     string
	platformURL string
	settingsID  string
	// engine and redisVer are the versions read at start ("opensearch - 2.19.3").
	engine, redisVer string
	// rabbit answers connectorsForWorker and RabbitMQ's live version; nil in unit tests.
	rabbit *rabbitBackend
	// redis counts cluster nodes; nil in unit tests (one node).
	redis *redisBackend
	users userStore
}

// dependencies is about.dependencies: the search engine and Redis as read at
// start, RabbitMQ live from its management API ("Disconnected" when it does not
// answer, which does not stop the platform).
func (st *apiState) dependencies(ctx context.Context) []dependencyVersion {
	rabbit := "Disconnected"
	if st.rabbit != nil {
		rabbit = st.rabbit.version(ctx)
	}
	return []dependencyVersion{{"Search engine", st.engine}, {"RabbitMQ", rabbit}, {"Redis", st.redisVer}}
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

// gqlError is an OpenCTI GraphQL error; graph-gophers copies Extensions() into
// the response, and graphqlHandler lifts the code to the top-level "name".
type gqlError struct {
	message, code string
	status        int
}

func (e *gqlError) Error() string { return e.message }

// Extensions carries OpenCTI's data {http_status, genre} and the code.
func (e *gqlError) Extensions() map[string]any {
	return map[string]any{"code": e.code, "data": map[string]any{"http_status": e.status, "genre": "BUSINESS"}}
}

// errAuthRequired is OpenCTI's answer to a missing or unknown token, word for word,
// because clients (pycti, the orchestrator) match on the name.
func errAuthRequired() *gqlError {
	return &gqlError{"You must be logged in to do this.", "AUTH_REQUIRED", http.StatusUnauthorized}
}

// errForbidden is OpenCTI's answer to a user lacking a capability.
func errForbidden() *gqlError {
	return &gqlError{"You are not allowed to do this.", "FORBIDDEN_ACCESS", http.StatusForbidden}
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

// ConnectorsForWorker is what a worker polls: every connector with the RabbitMQ
// connection the platform advertises (host and credentials as configured, so
// they must resolve from the workers) and its queues.
func (q *queryResolver) ConnectorsForWorker(ctx context.Context) (*[]*connectorResolver, error) {
	u, err := requireUser(ctx)
	if err != nil {
		return nil, err
	}
	if !u.admin {
		return nil, errForbidden()
	}
	if q.st.rabbit == nil {
		return nil, nil
	}
	var out []*connectorResolver
	for _, iq := range internalQueues() {
		out = append(out, &connectorResolver{q: iq, r: q.st.rabbit})
	}
	return &out, nil
}

type aboutResolver struct {
	st   *apiState
	user *user
}

func (a *aboutResolver) Version() string { return a.st.version }

// Dependencies needs admin rights in OpenCTI, so non-admins get FORBIDDEN_ACCESS.
func (a *aboutResolver) Dependencies(ctx context.Context) ([]*dependencyResolver, error) {
	if !a.user.admin {
		return nil, errForbidden()
	}
	deps := a.st.dependencies(ctx)
	out := make([]*dependencyResolver, len(deps))
	for i := range deps {
		out[i] = &dependencyResolver{deps[i]}
	}
	return out, nil
}

type connectorResolver struct {
	q internalQueue
	r *rabbitBackend
}

func (c *connectorResolver) ID() graphql.ID            { return graphql.ID(c.q.id) }
func (c *connectorResolver) Name() string              { return c.q.name }
func (c *connectorResolver) Active() *bool             { t := true; return &t }
func (c *connectorResolver) ConnectorType() *string    { t := "INTERNAL"; return &t }
func (c *connectorResolver) ConnectorScope() *[]string { return &[]string{c.q.scope} }
func (c *connectorResolver) Config() *connectorConfig  { return &connectorConfig{c} }

type connectorConfig struct{ c *connectorResolver }

func (c *connectorConfig) Connection() *rabbitConnection { return &rabbitConnection{c.c.r.cfg} }
func (c *connectorConfig) Listen() string                { return c.c.r.listenQueue(c.c.q.id) }
func (c *connectorConfig) ListenRouting() *string {
	r := c.c.r.listenRouting(c.c.q.id)
	return &r
}
func (c *connectorConfig) ListenExchange() string { return c.c.r.prefixed(connectorExchange) }
func (c *connectorConfig) Push() string           { return c.c.r.pushQueue(c.c.q.id) }
func (c *connectorConfig) PushRouting() *string {
	r := c.c.r.pushRouting(c.c.q.id)
	return &r
}
func (c *connectorConfig) PushExchange() string { return c.c.r.prefixed(workerExchange) }

type rabbitConnection struct{ cfg RabbitMQConfig }

func (r *rabbitConnection) Host() string  { return r.cfg.Hostname }
func (r *rabbitConnection) Vhost() string { return r.cfg.VHost }
func (r *rabbitConnection) UseSsl() bool  { return r.cfg.UseSSL }
func (r *rabbitConnection) Port() int32   { return int32(r.cfg.Port) }
func (r *rabbitConnection) User() string  { return r.cfg.Username }
func (r *rabbitConnection) Pass() string  { return r.cfg.Password }

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

// PlatformCluster counts the nodes heartbeating in platform_cluster: without
// REDIS__NAMESPACE, every platform on the same Redis.
func (s *settingsResolver) PlatformCluster(ctx context.Context) *clusterResolver {
	n := 1
	if s.st.redis != nil {
		if got, err := s.st.redis.instances(ctx); err == nil && got > 0 {
			n = got
		}
	}
	return &clusterResolver{instances: int32(n)}
}

// PlatformModules lists OpenCTI's 19 managers as a healthy community-edition
// platform reports them: the enterprise-only ones enabled but not running.
func (s *settingsResolver) PlatformModules() *[]*moduleResolver {
	out := make([]*moduleResolver, len(platformModules))
	for i, m := range platformModules {
		mm := m
		out[i] = &mm
	}
	return &out
}

// platformModules are OpenCTI 6.9's managers with their state on a healthy platform.
var platformModules = []moduleResolver{
	{"CONNECTOR_MANAGER", true, true, false}, {"EXPIRATION_SCHEDULER", true, true, false},
	{"FILE_INDEX_MANAGER", true, false, false}, {"GARBAGE_COLLECTION_MANAGER", true, true, false},
	{"HISTORY_MANAGER", true, true, false}, {"INGESTION_MANAGER", true, true, false},
	{"NOTIFICATION_MANAGER", true, true, false}, {"PLAYBOOK_MANAGER", true, false, false},
	{"PUBLISHER_MANAGER", true, true, false}, {"RETENTION_MANAGER", true, true, false},
	{"RULE_ENGINE", true, true, false}, {"SYNC_MANAGER", true, true, false},
	{"TASK_MANAGER", true, true, false}, {"TELEMETRY_MANAGER", true, true, false},
	{"ACTIVITY_MANAGER", true, false, false}, {"IMPORT_CSV_CONNECTOR", true, true, false},
	{"INDICATOR_DECAY_MANAGER", true, true, false}, {"EXCLUSION_LIST_CACHE_BUILD_MANAGER", true, true, false},
	{"DRAFT_VALIDATION_CONNECTOR", true, true, false},
}

// platformModuleIDs are the ids a node records in its heartbeat.
func platformModuleIDs() []string {
	ids := make([]string, len(platformModules))
	for i, m := range platformModules {
		ids[i] = m.id
	}
	return ids
}

type clusterResolver struct{ instances int32 }

func (c *clusterResolver) InstancesNumber() int32 { return c.instances }

type moduleResolver struct {
	id                       string
	enable, running, warning bool
}

func (m *moduleResolver) ID() graphql.ID { return graphql.ID(m.id) }
func (m *moduleResolver) Enable() bool   { return m.enable }
func (m *moduleResolver) Running() bool  { return m.running }
func (m *moduleResolver) Warning() *bool { return &m.warning }

// newSchema parses the SDL against the resolvers; a mismatch is a programming
// error caught by every test, so it panics.
func newSchema(st *apiState) *graphql.Schema {
	return graphql.MustParseSchema(schemaSDL, &queryResolver{st: st})
}

// graphqlHandler serves {base}/graphql by POST (JSON body) or GET (?query=),
// authenticating the bearer token before execution so resolvers only consult
// the context. Errors are reshaped as OpenCTI sends them.
func graphqlHandler(schema *graphql.Schema, users userStore) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Query         string         `json:"query"`
			OperationName string         `json:"operationName"`
			Variables     map[string]any `json:"variables"`
		}
		switch r.Method {
		case http.MethodGet:
			q := r.URL.Query()
			req.Query, req.OperationName = q.Get("query"), q.Get("operationName")
			if v := q.Get("variables"); v != "" {
				if err := json.Unmarshal([]byte(v), &req.Variables); err != nil {
					writeJSON(w, http.StatusInternalServerError, map[string]string{"status": "error", "error": err.Error()})
					return
				}
			}
		case http.MethodPost:
			// Express's body parser fails before GraphQL: OpenCTI answers 500.
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]string{"status": "error", "error": err.Error()})
				return
			}
		default:
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		ctx := r.Context()
		if token := bearerToken(r); token != "" {
			u, err := users.byToken(ctx, token)
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]string{"status": "error", "error": err.Error()})
				return
			}
			if u != nil {
				ctx = withUser(ctx, u)
			}
		}
		resp := schema.Exec(ctx, req.Query, req.OperationName, req.Variables)
		out := map[string]any{"data": resp.Data}
		if len(resp.Errors) > 0 {
			errs := make([]map[string]any, len(resp.Errors))
			for i, e := range resp.Errors {
				errs[i] = formatError(e, req.Query)
			}
			out["errors"] = errs
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// formatError gives an error OpenCTI's shape: message, name (what pycti reads
// as errors[0].name), locations, path and extensions {code, data {http_status, genre}}.
func formatError(e *gqlerrors.QueryError, query string) map[string]any {
	ext := e.Extensions
	if ext == nil {
		// Parse and validation errors come from the GraphQL layer itself.
		ext = map[string]any{"code": "GRAPHQL_VALIDATION_FAILED", "data": map[string]any{"http_status": 400, "genre": "TECHNICAL"}}
	}
	out := map[string]any{"message": e.Message, "name": ext["code"], "extensions": ext}
	locations := e.Locations
	if len(locations) == 0 && len(e.Path) > 0 {
		// graph-gophers gives resolver errors no location; OpenCTI (Apollo)
		// points at the field, so do the same from the query text.
		if name, ok := e.Path[len(e.Path)-1].(string); ok {
			if loc, ok := fieldLocation(query, name); ok {
				locations = []gqlerrors.Location{loc}
			}
		}
	}
	if len(locations) > 0 {
		out["locations"] = locations
	}
	if len(e.Path) > 0 {
		out["path"] = e.Path
	}
	return out
}

// fieldLocation is the 1-based line and column of the first occurrence of a
// field name as a whole word in the query.
func fieldLocation(query, name string) (gqlerrors.Location, bool) {
	for i := strings.Index(query, name); i >= 0; {
		before := i == 0 || !isNameChar(query[i-1])
		end := i + len(name)
		after := end >= len(query) || !isNameChar(query[end])
		if before && after {
			line := strings.Count(query[:i], "\n") + 1
			col := i - strings.LastIndex(query[:i], "\n")
			return gqlerrors.Location{Line: line, Column: col}, true
		}
		next := strings.Index(query[i+1:], name)
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return gqlerrors.Location{}, false
}

func isNameChar(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
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
