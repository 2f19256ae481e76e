package openctistandin

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	graphql "github.com/graph-gophers/graphql-go"
	gqlerrors "github.com/graph-gophers/graphql-go/errors"
)

//go:embed schema.graphql
var schemaSDL string

// apiState is what resolvers read: the platform's facts fixed before the port
// opens, and the stores that the API writes (users, groups, connectors, works).
type apiState struct {
	version     string
	platformURL string
	settingsID  string
	// engine and redisVer are the versions read at start ("opensearch - 2.19.3").
	engine, redisVer string
	// rabbit is the broker as configured: the connection connectors and workers
	// are told, and RabbitMQ's live version; its queues are reached through queues.
	rabbit *rabbitBackend
	// queues creates, deletes and measures connector queues (the real RabbitMQ in
	// Run; a recorder in unit tests).
	queues connectorQueues
	// s3 is the file storage handed to connectors at registration.
	s3 S3Config
	// redis counts cluster nodes; nil in unit tests (one node).
	redis *redisBackend
	// objects holds users, groups, connectors and works (the search engine in Run).
	objects objectStore
	// tokenKey is Config.tokenKey: nil on 6.x (tokens in clear), the HMAC key of
	// api_tokens on 7.x.
	tokenKey []byte
	// jwks is the key set a 7.x platform gives its connectors (newJWKS).
	jwks string
	// userAddAnswer holds back userAdd's answer after the write (Timings.UserAddAnswer).
	userAddAnswer time.Duration
	// mu serialises the API's writes, as OpenCTI's per-entity locks do, so a
	// retried userAdd cannot create two users for one email.
	mu sync.Mutex
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

// user is an authenticated caller: its stored document and the capabilities
// its groups' roles give it.
type user struct {
	doc  userDoc
	caps []string
}

// can reports whether the user holds one of the capabilities, as OpenCTI's
// @auth directive decides: BYPASS holds all, and a capability holds its parents
// (KNOWLEDGE_KNUPDATE satisfies KNOWLEDGE).
func (u *user) can(required ...string) bool {
	for _, have := range u.caps {
		if have == capBypass {
			return true
		}
		for _, r := range required {
			if have == r || strings.HasPrefix(have, r+"_") {
				return true
			}
		}
	}
	return false
}

// gqlError is an OpenCTI GraphQL error; graph-gophers copies Extensions() into
// the response, and graphqlHandler lifts the code to the top-level "name".
type gqlError struct {
	message, code string
	status        int
	// genre is OpenCTI's category: TECHNICAL or BUSINESS.
	genre string
	// data holds the attributes OpenCTI's error helpers add ({id}, {user_id}...).
	data map[string]any
}

func (e *gqlError) Error() string { return e.message }

// Extensions carries the code and OpenCTI's data {http_status, genre, ...}.
func (e *gqlError) Extensions() map[string]any {
	data := map[string]any{"http_status": e.status, "genre": e.genre}
	for k, v := range e.data {
		data[k] = v
	}
	return map[string]any{"code": e.code, "data": data}
}

// OpenCTI's error categories (config/errors).
const (
	genreTechnical = "TECHNICAL"
	genreBusiness  = "BUSINESS"
)

// errAuthRequired is OpenCTI's answer to a missing or unknown token, word for word,
// because clients (pycti, the orchestrator) match on the name.
func errAuthRequired() *gqlError {
	return &gqlError{message: "You must be logged in to do this.", code: "AUTH_REQUIRED", status: http.StatusUnauthorized, genre: genreTechnical}
}

// errForbidden is OpenCTI's answer to a user lacking a capability.
func errForbidden() *gqlError {
	return &gqlError{message: "You are not allowed to do this.", code: "FORBIDDEN_ACCESS", status: http.StatusForbidden, genre: genreTechnical}
}

// errFunctional is OpenCTI's FunctionalError: a refused business operation.
func errFunctional(message string, data map[string]any) *gqlError {
	return &gqlError{message: message, code: "FUNCTIONAL_ERROR", status: http.StatusBadRequest, genre: genreBusiness, data: data}
}

// errAlreadyDeleted is OpenCTI's AlreadyDeletedError: deleting what is not there.
func errAlreadyDeleted(data map[string]any) *gqlError {
	return &gqlError{message: "Already deleted elements", code: "ALREADY_DELETED_ERROR", status: http.StatusBadRequest, genre: genreBusiness, data: data}
}

// errMissingReference is OpenCTI's MissingReferenceError: a relation to an id
// that resolves to nothing (an unknown group in userAdd or relationAdd).
func errMissingReference(data map[string]any) *gqlError {
	return &gqlError{message: "Element(s) not found", code: "MISSING_REFERENCE_ERROR", status: http.StatusNotFound, genre: genreBusiness, data: data}
}

// errWorkNotAlive is OpenCTI's WorkNotALiveError, which pycti matches by name.
func errWorkNotAlive() *gqlError {
	return &gqlError{message: "Work is no longer alive, no request can be done within the context of this work",
		code: "WORK_NOT_ALIVE", status: http.StatusBadRequest, genre: genreBusiness}
}

// errUnsupported is OpenCTI's UnsupportedError.
func errUnsupported(message string, data map[string]any) *gqlError {
	return &gqlError{message: message, code: "UNSUPPORTED_ERROR", status: http.StatusInternalServerError, genre: genreBusiness, data: data}
}

// errInternal is what Apollo answers when a resolver throws a plain JS error
// (a TypeError on a missing object): code INTERNAL_SERVER_ERROR, no data.
func errInternal(message string) *gqlError {
	return &gqlError{message: message, code: "INTERNAL_SERVER_ERROR", status: http.StatusInternalServerError, genre: genreTechnical}
}

// errDatabase wraps a failed store or broker call as OpenCTI's DATABASE_ERROR.
func errDatabase(err error) *gqlError {
	return &gqlError{message: err.Error(), code: DatabaseErrorName, status: http.StatusInternalServerError, genre: genreTechnical}
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

// requireCapability is @auth(for: [caps...]): logged in, and holding one of them.
func requireCapability(ctx context.Context, caps ...string) (*user, error) {
	u, err := requireUser(ctx)
	if err != nil {
		return nil, err
	}
	if !u.can(caps...) {
		return nil, errForbidden()
	}
	return u, nil
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

func (q *queryResolver) Me(ctx context.Context) (*userResolver, error) {
	u, err := requireUser(ctx)
	if err != nil {
		return nil, err
	}
	return &userResolver{st: q.st, d: u.doc}, nil
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

// Dependencies is @auth(for: [SETTINGS]) in OpenCTI, so others get FORBIDDEN_ACCESS.
func (a *aboutResolver) Dependencies(ctx context.Context) ([]*dependencyResolver, error) {
	if !a.user.can(capSettings) {
		return nil, errForbidden()
	}
	deps := a.st.dependencies(ctx)
	out := make([]*dependencyResolver, len(deps))
	for i := range deps {
		out[i] = &dependencyResolver{deps[i]}
	}
	return out, nil
}

type dependencyResolver struct{ d dependencyVersion }

func (d *dependencyResolver) Name() string    { return d.d.name }
func (d *dependencyResolver) Version() string { return d.d.version }

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

// newSchema parses the SDL of the platform's version against the resolvers; a
// mismatch is a programming error caught by every test, so it panics. One root
// resolver serves Query and Mutation, as graph-gophers wants.
func newSchema(st *apiState) *graphql.Schema {
	return graphql.MustParseSchema(schemaFor(st.version), &queryResolver{st: st})
}

// userTokenField6 is the token field of User and MeUser in 6.x; 7.x replaced
// it with api_tokens (pycti 7.x asks connector_user { api_tokens { id name } }),
// so a 6.x client asking api_token fails validation: 'Cannot query field
// "api_token" on type "User".' (docs/opencti.md §8).
const (
	userTokenField6 = "\n  api_token: String!\n"
	userTokenField7 = "\n  api_tokens: [ApiToken!]!\n"
	apiTokenType7   = "\n# ApiToken is a 7.x user's API token as the API shows it: never the token.\ntype ApiToken {\n  id: ID!\n  name: String!\n  created_at: DateTime\n}\n"
)

// schemaFor is schema.graphql (6.x) or, for 7.x, the same with User and
// MeUser's api_token replaced by api_tokens.
func schemaFor(version string) string {
	v, err := parseVersion(version)
	if err != nil || v[0] < 7 {
		return schemaSDL
	}
	if n := strings.Count(schemaSDL, userTokenField6); n != 2 {
		panic(fmt.Sprintf("schema.graphql has %d api_token fields, want 2 (User and MeUser)", n))
	}
	s := strings.ReplaceAll(schemaSDL, userTokenField6, userTokenField7)
	if !strings.Contains(s, connectorHead) {
		panic("schema.graphql's Connector type does not begin with its id")
	}
	// 7.x gives connectors its key set at registration (pycti 7 asks for it).
	return strings.Replace(s, connectorHead, connectorHead+"  jwks: String\n", 1) + apiTokenType7
}

// connectorHead is how schema.graphql's Connector type begins.
const connectorHead = "type Connector {\n  id: ID!\n"

// graphqlHandler serves {base}/graphql by POST (JSON body) or GET (?query=),
// authenticating the bearer token before execution so resolvers only consult
// the context. Errors are reshaped as OpenCTI sends them.
func graphqlHandler(schema *graphql.Schema, st *apiState) http.HandlerFunc {
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
			u, err := st.authenticate(ctx, token)
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
