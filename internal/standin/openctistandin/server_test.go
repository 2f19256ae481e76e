package openctistandin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeDep is a dependency whose check answers what the test says.
type fakeDep struct {
	name, version string
	err           error
}

func (f *fakeDep) label() string                         { return f.name }
func (f *fakeDep) product() string                       { return f.name }
func (f *fakeDep) minimum(string) string                 { return "1.0" }
func (f *fakeDep) check(context.Context) (string, error) { return f.version, f.err }

func healthyDeps() []dependency {
	return []dependency{
		&fakeDep{name: "Search engine", version: "opensearch 2.19.3"},
		&fakeDep{name: "File Storage"},
		&fakeDep{name: "RabbitMQ", version: "3.13.7"},
		&fakeDep{name: "Redis", version: "7.2.4"},
	}
}

func testState() *apiState {
	return &apiState{
		version: "6.9.3", platformURL: "http://cti.local/", settingsID: "0b1f5a0e-0000-4000-8000-000000000001",
		dependencies: []dependencyVersion{{"Search engine", "opensearch 2.19.3"}, {"RabbitMQ", "3.13.7"}, {"Redis", "7.2.4"}},
		users: staticUsers{
			{id: adminUserID, name: "admin", email: "admin@opencti.io", token: testToken, admin: true},
			{id: "u2", name: "analyst", email: "analyst@opencti.io", token: "analyst-token"},
		},
	}
}

func get(t *testing.T, h http.Handler, target string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("GET %s: body %q is not JSON: %v", target, rec.Body.String(), err)
	}
	return rec.Code, body
}

func TestHealth(t *testing.T) {
	down := healthyDeps()
	down[2] = &fakeDep{name: "RabbitMQ", err: errors.New("Exception (403) Reason: \"username or password not allowed\"")}
	for _, tc := range []struct {
		name, key, query string
		deps             []dependency
		wantCode         int
		wantStatus       string
	}{
		{"healthy", "k1", "k1", healthyDeps(), 200, "success"},
		{"dependency down", "k1", "k1", down, 503, "error"},
		{"wrong key", "k1", "k2", healthyDeps(), 401, "unauthorized"},
		{"missing key", "k1", "", healthyDeps(), 401, "unauthorized"},
		{"default key refused", "ChangeMe", "ChangeMe", healthyDeps(), 401, "unauthorized"},
		{"public key", "public", "", healthyDeps(), 200, "success"},
		{"public key, down", "public", "whatever", down, 503, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler("/opencti", tc.key, tc.deps, testState())
			code, body := get(t, h, "/opencti/health?health_access_key="+tc.query)
			if code != tc.wantCode || body["status"] != tc.wantStatus {
				t.Fatalf("got %d %v, want %d status %q", code, body, tc.wantCode, tc.wantStatus)
			}
			if code == 503 {
				if body["error"] != "RabbitMQ seems down" {
					t.Errorf("503 error = %v, want it to name RabbitMQ", body["error"])
				}
				deps, _ := body["dependencies"].([]any)
				if len(deps) != 4 || !strings.Contains(deps[2].(map[string]any)["error"].(string), "403") {
					t.Errorf("503 dependencies = %v, want the RabbitMQ failure detailed", deps)
				}
			}
		})
	}
}

func TestHealthOutsideBasePathIs404(t *testing.T) {
	h := newHandler("/opencti", "public", healthyDeps(), testState())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health?health_access_key=public", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /health with base path /opencti = %d, want 404", rec.Code)
	}
}

// gqlResponse is the standard GraphQL response envelope.
type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
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

func TestGraphQLAuthRequired(t *testing.T) {
	h := newHandler("", "public", healthyDeps(), testState())
	for _, auth := range []string{"", "Bearer ", "Bearer 00000000-0000-4000-8000-000000000000", "Basic " + testToken, testToken} {
		for _, q := range []string{"{ me { id } }", "{ about { version } }", "{ settings { id } }"} {
			resp := postGraphQL(t, h, auth, q)
			if len(resp.Errors) != 1 || resp.Errors[0].Message != "You must be logged in to do this." ||
				resp.Errors[0].Extensions["code"] != "AUTH_REQUIRED" {
				t.Errorf("auth %q query %s: errors = %+v, want AUTH_REQUIRED", auth, q, resp.Errors)
			}
		}
	}
}

func TestGraphQLFields(t *testing.T) {
	h := newHandler("", "public", healthyDeps(), testState())
	resp := postGraphQL(t, h, "Bearer "+testToken, `{
		about { version dependencies { name version } }
		me { id name user_email api_token }
		settings { id platform_url platform_cluster { instances_number } platform_modules { id enable running } }
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
			ID        string `json:"id"`
			Name      string `json:"name"`
			UserEmail string `json:"user_email"`
			APIToken  string `json:"api_token"`
		}
		Settings struct {
			ID              string `json:"id"`
			PlatformURL     string `json:"platform_url"`
			PlatformCluster struct {
				InstancesNumber int `json:"instances_number"`
			} `json:"platform_cluster"`
			PlatformModules []struct {
				ID      string `json:"id"`
				Enable  bool   `json:"enable"`
				Running bool   `json:"running"`
			} `json:"platform_modules"`
		}
	}
	if err := json.Unmarshal(resp.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.About.Version != "6.9.3" || len(data.About.Dependencies) != 3 || data.About.Dependencies[1].Name != "RabbitMQ" {
		t.Errorf("about = %+v", data.About)
	}
	if data.Me.ID != adminUserID || data.Me.Name != "admin" || data.Me.UserEmail != "admin@opencti.io" || data.Me.APIToken != testToken {
		t.Errorf("me = %+v", data.Me)
	}
	s := data.Settings
	if s.ID == "" || s.PlatformURL != "http://cti.local/" || s.PlatformCluster.InstancesNumber != 1 ||
		len(s.PlatformModules) == 0 || !s.PlatformModules[0].Enable || !s.PlatformModules[0].Running {
		t.Errorf("settings = %+v", s)
	}
}

func TestGraphQLDependenciesNeedAdmin(t *testing.T) {
	h := newHandler("", "public", healthyDeps(), testState())
	resp := postGraphQL(t, h, "Bearer analyst-token", `{ about { version dependencies { name } } }`)
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "FORBIDDEN_ACCESS" {
		t.Errorf("errors = %+v, want FORBIDDEN_ACCESS", resp.Errors)
	}
	resp = postGraphQL(t, h, "Bearer analyst-token", `{ about { version } me { name } }`)
	if len(resp.Errors) != 0 || !strings.Contains(string(resp.Data), `"analyst"`) {
		t.Errorf("non-admin about.version: %s %+v", resp.Data, resp.Errors)
	}
}

func TestGraphQLRejectsGetAndBadBodies(t *testing.T) {
	h := newHandler("/base", "public", healthyDeps(), testState())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/base/graphql", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /graphql = %d, want 405", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/base/graphql", strings.NewReader("{")))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("POST garbage = %d, want 400", rec.Code)
	}
}
