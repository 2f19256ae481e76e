package openctistandin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDep is a dependency whose check answers what the test says; typed makes
// report wrap the error as OpenCTI's "<name> seems down" of that type.
type fakeDep struct {
	name, version, typed string
	err                  error
}

func (f *fakeDep) label() string                         { return f.name }
func (f *fakeDep) check(context.Context) (string, error) { return f.version, f.err }
func (f *fakeDep) report(err error) error {
	if f.typed == "" {
		return err
	}
	return newError(f.typed, f.name+" seems down", err, nil, nil)
}

func healthyDeps() []dependency {
	return []dependency{
		&fakeDep{name: "Search engine", version: "opensearch - 2.19.3"},
		&fakeDep{name: "File storage"},
		&fakeDep{name: "RabbitMQ"},
		&fakeDep{name: "Redis", version: "7.2.4"},
	}
}

// testState has a RabbitMQ whose management port refuses, as with a wrong
// RABBITMQ__PORT_MANAGEMENT, objects in memory with the built-in groups, the
// admin and an analyst in Default only, and queues that only record.
func testState() *apiState {
	st := &apiState{
		version: "6.9.3", platformURL: "http://cti.local/", settingsID: "0b1f5a0e-0000-4000-8000-000000000001",
		engine: "opensearch - 2.19.3", redisVer: "7.2.4",
		rabbit:  newRabbitBackend(RabbitMQConfig{Hostname: "127.0.0.1", Port: 5672, PortManagement: 1, Username: "u", Password: "p", VHost: "/", QueuePrefix: "cti"}),
		queues:  &fakeQueues{},
		s3:      S3Config{Endpoint: "minio", Port: 9000, AccessKey: "ak", SecretKey: "sk", BucketName: "cti-bucket", BucketRegion: "us-east-1"},
		objects: newMemoryObjects(),
	}
	ctx := context.Background()
	if err := ensureDirectory(ctx, st.objects, "admin@opencti.io", testToken, st.tokenKey); err != nil {
		panic(err)
	}
	analyst := userDoc{InternalID: "u2", EntityType: entityUser, Name: "analyst", UserEmail: "analyst@opencti.io",
		APIToken: "analyst-token", AccountStatus: accountActive, Groups: []string{groupID(st, "Default")}, CreatedAt: nowISO(), UpdatedAt: nowISO()}
	if err := st.objects.put(ctx, entityUser, analyst.InternalID, analyst); err != nil {
		panic(err)
	}
	return st
}

// groupID is the id of a built-in group.
func groupID(st *apiState, name string) string {
	groups, err := st.groupsByID(context.Background())
	if err != nil {
		panic(err)
	}
	for _, g := range groups {
		if g.Name == name {
			return g.InternalID
		}
	}
	panic("no group " + name)
}

// fakeQueues records what the API asks of the broker.
type fakeQueues struct {
	mu                       sync.Mutex
	registered, unregistered []string
}

func (f *fakeQueues) register(_ context.Context, id, _, _ string, _ []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.registered = append(f.registered, id)
	return nil
}

func (f *fakeQueues) unregister(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unregistered = append(f.unregistered, id)
	return nil
}

func (f *fakeQueues) purge(context.Context, string) error { return nil }

func (f *fakeQueues) details(context.Context, string) (float64, float64) { return 0, 0 }

func handler(base, key string, deps []dependency) http.Handler {
	return newHandler(base, key, time.Second, deps, testState())
}

func serveRaw(h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	return rec
}

func TestHealth(t *testing.T) {
	down := healthyDeps()
	down[2] = &fakeDep{name: "RabbitMQ", err: errors.New("Exception (403)"), typed: DatabaseErrorName}
	for _, tc := range []struct {
		name, key, query string
		deps             []dependency
		wantCode         int
		wantBody         string
	}{
		{"healthy", "k1", "k1", healthyDeps(), 200, `{"status":"success"}`},
		{"dependency down", "k1", "k1", down, 503, `{"error":"RabbitMQ seems down","status":"error"}`},
		{"wrong key", "k1", "k2", healthyDeps(), 401, `{"status":"unauthorized"}`},
		{"missing key", "k1", "", healthyDeps(), 401, `{"status":"unauthorized"}`},
		{"default key refused", "ChangeMe", "ChangeMe", healthyDeps(), 401, `{"status":"unauthorized"}`},
		{"public key", "public", "", healthyDeps(), 200, `{"status":"success"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serveRaw(handler("/opencti", tc.key, tc.deps), http.MethodGet, "/opencti/health?health_access_key="+tc.query, "")
			if rec.Code != tc.wantCode || strings.TrimSpace(rec.Body.String()) != tc.wantBody {
				t.Fatalf("got %d %s, want %d %s", rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
		})
	}
	if rec := serveRaw(handler("/opencti", "k1", down), http.MethodHead, "/opencti/health", ""); rec.Code != 200 {
		t.Errorf("HEAD /health = %d, want 200", rec.Code)
	}
}

func TestHealthOutsideBasePathIs404(t *testing.T) {
	if rec := serveRaw(handler("/opencti", "public", healthyDeps()), http.MethodGet, "/health?health_access_key=public", ""); rec.Code != http.StatusNotFound {
		t.Errorf("GET /health with base path /opencti = %d, want 404", rec.Code)
	}
}

// gqlResponse is OpenCTI's GraphQL response envelope.
type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Name       string         `json:"name"`
		Locations  []any          `json:"locations"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// mustData fails the test when the response holds errors, and decodes its data
// into out (nil: not decoded).
func (r gqlResponse) mustData(t testing.TB, query string, out any) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("%s: errors %+v", firstLine(query), r.Errors)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatalf("cannot decode %s: %v", r.Data, err)
		}
	}
}

func postGraphQL(t *testing.T, h http.Handler, auth, query string) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("POST /graphql = %d %s", rec.Code, rec.Body.String())
	}
	var resp gqlResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("cannot decode %q: %v", rec.Body.String(), err)
	}
	return resp
}

func TestGraphQLAuthRequiredShape(t *testing.T) {
	h := handler("", "public", healthyDeps())
	for _, auth := range []string{"", "Bearer ", "Bearer 00000000-0000-4000-8000-000000000000", "Basic " + testToken, testToken} {
		for _, q := range []string{"{ me { id } }", "{ about { version } }", "{ settings { id } }", "{ connectorsForWorker { id } }"} {
			resp := postGraphQL(t, h, auth, q)
			if len(resp.Errors) != 1 {
				t.Fatalf("auth %q query %s: errors = %+v", auth, q, resp.Errors)
			}
			e := resp.Errors[0]
			data, _ := e.Extensions["data"].(map[string]any)
			if e.Message != "You must be logged in to do this." || e.Name != "AUTH_REQUIRED" || len(e.Locations) == 0 ||
				len(e.Path) == 0 || data["http_status"] != float64(401) || data["genre"] == nil {
				t.Errorf("auth %q query %s: error = %+v, want OpenCTI's AUTH_REQUIRED shape", auth, q, e)
			}
		}
	}
}

func TestGraphQLFields(t *testing.T) {
	h := handler("", "public", healthyDeps())
	resp := postGraphQL(t, h, "Bearer "+testToken, `{
		about { version dependencies { name version } }
		me { id name user_email api_token }
		settings { id platform_url platform_cluster { instances_number } platform_modules { id enable running warning } }
		connectorsForWorker { id config { connection { host port user pass vhost use_ssl } push push_exchange listen } }
	}`)
	if len(resp.Errors) > 0 {
		t.Fatalf("errors: %+v", resp.Errors)
	}
	var data struct {
		About struct {
			Version      string
			Dependencies []struct{ Name, Version string }
		}
		Me struct {
			ID       string `json:"id"`
			APIToken string `json:"api_token"`
		}
		Settings struct {
			ID              string `json:"id"`
			PlatformCluster struct {
				InstancesNumber int `json:"instances_number"`
			} `json:"platform_cluster"`
			PlatformModules []struct {
				ID      string `json:"id"`
				Enable  bool   `json:"enable"`
				Running bool   `json:"running"`
				Warning *bool  `json:"warning"`
			} `json:"platform_modules"`
		}
		ConnectorsForWorker []struct {
			ID     string `json:"id"`
			Config struct {
				Connection struct {
					Host, User, Pass string
					Port             int
				}
				Push, PushExchange string
			}
		} `json:"connectorsForWorker"`
	}
	if err := json.Unmarshal(resp.Data, &data); err != nil {
		t.Fatal(err)
	}
	deps := data.About.Dependencies
	if data.About.Version != "6.9.3" || len(deps) != 3 || deps[0].Version != "opensearch - 2.19.3" ||
		deps[1].Name != "RabbitMQ" || deps[1].Version != "Disconnected" {
		t.Errorf("about = %+v (RabbitMQ's management port refuses: want Disconnected)", data.About)
	}
	if data.Me.ID != adminUserID || data.Me.APIToken != testToken {
		t.Errorf("me = %+v", data.Me)
	}
	notRunning := 0
	for _, m := range data.Settings.PlatformModules {
		if !m.Running {
			notRunning++
		}
		if m.Warning == nil {
			t.Errorf("module %s has no warning field", m.ID)
		}
	}
	if len(data.Settings.PlatformModules) != 19 || notRunning == 0 || data.Settings.PlatformCluster.InstancesNumber != 1 {
		t.Errorf("settings = %+v", data.Settings)
	}
	var pushes []string
	for _, c := range data.ConnectorsForWorker {
		pushes = append(pushes, c.Config.Push)
		if c.Config.Connection.Host != "127.0.0.1" || c.Config.Connection.Port != 5672 || c.Config.Connection.User != "u" || c.Config.Connection.Pass != "p" {
			t.Errorf("connection of %s = %+v", c.ID, c.Config.Connection)
		}
	}
	want := "cti_push_background-task-0 cti_push_background-task-1 cti_push_background-task-2 cti_push_background-task-3 cti_push_sync cti_push_playbook"
	if strings.Join(pushes, " ") != want {
		t.Errorf("push queues = %v, want %s", pushes, want)
	}
}

func TestGraphQLDependenciesNeedAdmin(t *testing.T) {
	h := handler("", "public", healthyDeps())
	resp := postGraphQL(t, h, "Bearer analyst-token", `{ about { version dependencies { name } } }`)
	if len(resp.Errors) != 1 || resp.Errors[0].Name != "FORBIDDEN_ACCESS" {
		t.Errorf("errors = %+v, want FORBIDDEN_ACCESS", resp.Errors)
	}
	resp = postGraphQL(t, h, "Bearer analyst-token", `{ about { version } me { name } }`)
	if len(resp.Errors) != 0 || !strings.Contains(string(resp.Data), `"analyst"`) {
		t.Errorf("non-admin about.version: %s %+v", resp.Data, resp.Errors)
	}
}

func TestGraphQLGetAndMalformedBodies(t *testing.T) {
	h := handler("/base", "public", healthyDeps())
	req := httptest.NewRequest(http.MethodGet, "/base/graphql?query="+strings.ReplaceAll("{ about { version } }", " ", "%20"), nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"version":"6.9.3"`) {
		t.Errorf("GET /graphql?query= = %d %s", rec.Code, rec.Body.String())
	}
	rec = serveRaw(h, http.MethodPost, "/base/graphql", "{")
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != http.StatusInternalServerError || body["status"] != "error" || body["error"] == "" {
		t.Errorf("POST garbage = %d %s, want 500 {status:error}", rec.Code, rec.Body.String())
	}
}

func TestMetricsText(t *testing.T) {
	text := metricsText()
	for _, name := range []string{"nodejs_eventloop_lag_seconds", "process_cpu_user_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds"} {
		if !strings.Contains(text, "# TYPE "+name+" ") || !strings.Contains(text, "\n"+name+" ") {
			t.Errorf("metrics lack %s:\n%s", name, text)
		}
	}
}

func TestAdminTokenAnyUUIDVersion(t *testing.T) {
	for tok, ok := range map[string]bool{
		testToken: true, "6f7c1e52-8a3b-1c9d-9e0f-1a2b3c4d5e6f": true, "6f7c1e52-8a3b-7c9d-9e0f-1a2b3c4d5e6f": true,
		"": false, "not-a-uuid": false, "{6f7c1e52-8a3b-4c9d-9e0f-1a2b3c4d5e6f}": false,
	} {
		err := checkAdminToken(tok)
		var e *Error
		if ok != (err == nil) || (err != nil && (!errors.As(err, &e) || e.Name != ConfigurationErrorName)) {
			t.Errorf("token %q: err = %v", tok, err)
		}
	}
	if err := checkAdminToken("x"); err.(*Error).Message != "Token must be a valid UUID" {
		t.Errorf("message = %q", err.(*Error).Message)
	}
}

func TestMigrationTimeIsMonotonic(t *testing.T) {
	versions := []string{"6.8.9", "6.9.3", "6.9.28", "6.10.0", "7.260224.0", "7.260318.0"}
	for i := 1; i < len(versions); i++ {
		if migrationTime(versions[i-1]) >= migrationTime(versions[i]) {
			t.Errorf("migrationTime(%s) >= migrationTime(%s)", versions[i-1], versions[i])
		}
	}
}
