package openctistandin

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socflow/socflow/internal/openctiapi"
)

// Unit tests of 7.x API tokens (opencti.md §8) on the in-memory store: the
// legacy_token_migration, authentication by HMAC under APP__ENCRYPTION_KEY, and
// the 7.x schema without User.api_token.

const v7 = "7.260318.0"

// encryptionKey is the decoded APP__ENCRYPTION_KEY of 32 bytes of b.
func encryptionKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// bootAs7 makes st what a 7.x boot leaves after migrating testState's 6.x data
// under key: the legacy tokens hashed (once; migrated reports whether to run
// the migration, which a boot on migrated data does not), the admin given
// APP__ADMIN__TOKEN again.
func bootAs7(t *testing.T, st *apiState, key []byte, migrate bool) {
	t.Helper()
	ctx := context.Background()
	if migrate {
		if err := migrateLegacyTokens(ctx, st.objects, key); err != nil {
			t.Fatal(err)
		}
	}
	st.version, st.tokenKey = v7, key
	if err := ensureDirectory(ctx, st.objects, "admin@opencti.io", testToken, key); err != nil {
		t.Fatal(err)
	}
}

// api7 is newAPI on 7.x data migrated under key.
func api7(t *testing.T, key []byte) *api {
	st := testState()
	bootAs7(t, st, key, true)
	return &api{t: t, h: newHandler("", "public", time.Second, healthyDeps(), st), st: st}
}

func TestLegacyTokenMigrationHashesEveryToken(t *testing.T) {
	key := encryptionKey(7)
	a := api7(t, key)
	var analyst userDoc
	if ok, err := a.st.objects.get(context.Background(), entityUser, "u2", &analyst); !ok || err != nil {
		t.Fatalf("analyst: %v %v", ok, err)
	}
	if analyst.APIToken != "" || len(analyst.APITokens) != 1 || analyst.APITokens[0].Hash != tokenHash(key, "analyst-token") ||
		analyst.APITokens[0].Name != legacyTokenName {
		t.Fatalf("analyst after the migration = %+v", analyst)
	}
	// A replay of the migration hashes nothing twice.
	if err := migrateLegacyTokens(context.Background(), a.st.objects, key); err != nil {
		t.Fatal(err)
	}
	_, _ = a.st.objects.get(context.Background(), entityUser, "u2", &analyst)
	if len(analyst.APITokens) != 1 {
		t.Errorf("replayed migration: %d tokens", len(analyst.APITokens))
	}
	if err := migrateLegacyTokens(context.Background(), a.st.objects, nil); err == nil {
		t.Error("the migration ran without a key")
	}
}

// TestTokensAfterUpgradeFollowTheKey: under the key of the upgrade the old
// tokens keep working; once the key changes every token breaks but the admin's,
// which every boot sets from APP__ADMIN__TOKEN.
func TestTokensAfterUpgradeFollowTheKey(t *testing.T) {
	a := api7(t, encryptionKey(7))
	var me struct{ Me struct{ ID string } }
	a.ok("analyst-token", `{ me { id } }`, nil, &me)
	if me.Me.ID != "u2" {
		t.Errorf("analyst token authenticates %q", me.Me.ID)
	}
	a.ok(testToken, `{ me { id } }`, nil, nil)

	bootAs7(t, a.st, encryptionKey(8), false)
	if e := a.fails("analyst-token", `{ me { id } }`, nil); e.Name != "AUTH_REQUIRED" {
		t.Errorf("analyst token under another key: %+v", e)
	}
	a.ok(testToken, `{ me { id } }`, nil, &me)
	if me.Me.ID != adminUserID {
		t.Errorf("admin token under another key authenticates %q", me.Me.ID)
	}
	// 6.x knows nothing of api_tokens: a hashed token is no token there.
	a.st.version, a.st.tokenKey = DefaultVersion, nil
	if e := a.fails("analyst-token", `{ me { id } }`, nil); e.Name != "AUTH_REQUIRED" {
		t.Errorf("hashed token on 6.x: %+v", e)
	}
}

// TestSchema7HasNoAPIToken: a 6.x client's api_token fails validation in
// OpenCTI's error shape (the message goes on with graphql's suggestion, ` Did
// you mean "api_tokens"?`); api_tokens shows ids and names, never a token.
func TestSchema7HasNoAPIToken(t *testing.T) {
	a := api7(t, encryptionKey(7))
	for _, tc := range []struct{ query, typ string }{
		{`{ users { edges { node { id api_token } } } }`, "User"},
		{`{ connectorsForWorker { id connector_user { api_token } } }`, "User"},
		{`{ me { id api_token } }`, "MeUser"},
		{`mutation R($id: ID!) { userEdit(id: $id) { tokenRenew { api_token } } }`, "User"},
	} {
		e := a.fails(testToken, tc.query, map[string]any{"id": "u2"})
		if e.Name != "GRAPHQL_VALIDATION_FAILED" || e.Code != "GRAPHQL_VALIDATION_FAILED" ||
			!strings.HasPrefix(e.Message, `Cannot query field "api_token" on type "`+tc.typ+`".`) || !e.HasLocations || e.Data["http_status"] != float64(400) {
			t.Errorf("%s: %+v", tc.query, e)
		}
	}
	var users struct {
		Users struct {
			Edges []struct {
				Node struct {
					ID        string
					APITokens []struct{ ID, Name, Hash string } `json:"api_tokens"`
				}
			}
		}
	}
	a.ok(testToken, `{ users { edges { node { id api_tokens { id name } } } } }`, nil, &users)
	for _, e := range users.Users.Edges {
		if len(e.Node.APITokens) != 1 || e.Node.APITokens[0].ID == "" || e.Node.APITokens[0].Hash != "" {
			t.Errorf("user %s api_tokens = %+v", e.Node.ID, e.Node.APITokens)
		}
	}
	if e := a.fails("analyst-token", `{ users { edges { node { id } } } }`, nil); e.Name != "FORBIDDEN_ACCESS" {
		t.Errorf("analyst lists users: %+v", e)
	}

	six := newAPI(t)
	if e := six.fails(testToken, `{ me { api_tokens { id } } }`, nil); e.Name != "GRAPHQL_VALIDATION_FAILED" ||
		!strings.HasPrefix(e.Message, `Cannot query field "api_tokens" on type "MeUser".`) {
		t.Errorf("6.x api_tokens: %+v", e)
	}
}

// TestUserAdd7KeepsOnlyAHash: a user added on 7.x has a hashed token nobody
// was told, and api_token cannot be patched in.
func TestUserAdd7KeepsOnlyAHash(t *testing.T) {
	a := api7(t, encryptionKey(7))
	var added struct{ UserAdd struct{ ID string } }
	a.ok(testToken, `mutation A($input: UserAddInput!) { userAdd(input: $input) { id } }`,
		map[string]any{"input": map[string]any{"name": "c", "user_email": "c@opencti.local"}}, &added)
	var u userDoc
	_, _ = a.st.objects.get(context.Background(), entityUser, added.UserAdd.ID, &u)
	if u.APIToken != "" || len(u.APITokens) != 1 || len(u.APITokens[0].Hash) != 64 {
		t.Errorf("7.x userAdd stored %+v", u)
	}
	e := a.fails(testToken, `mutation E($id: ID!, $input: [EditInput]!) { userEdit(id: $id) { fieldPatch(input: $input) { id } } }`,
		map[string]any{"id": added.UserAdd.ID, "input": []any{map[string]any{"key": "api_token", "value": []string{"clear"}}}})
	if e.Name != "UNSUPPORTED_ERROR" {
		t.Errorf("patching api_token on 7.x: %+v", e)
	}
}

// TestOpenCTIAPIClientAgainst7x runs socflow's own client (internal/openctiapi,
// not changed here) against a 6.x and a 7.x stand-in and records every query the
// stand-in rejects: none on 6.x; on 7.x only validation failures on
// User.api_token, before anything is executed — a rejected userAdd creates no
// user. The test logs the rejected operations, whatever the client then does.
func TestOpenCTIAPIClientAgainst7x(t *testing.T) {
	for _, version := range []string{DefaultVersion, v7} {
		t.Run(version, func(t *testing.T) {
			a := newAPI(t)
			if version == v7 {
				a = api7(t, encryptionKey(7))
			}
			var mu sync.Mutex
			var rejected []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
				rec := httptest.NewRecorder()
				a.h.ServeHTTP(rec, r)
				var req struct{ Query string }
				_ = json.Unmarshal(body, &req)
				var resp gqlResponse
				_ = json.Unmarshal(rec.Body.Bytes(), &resp)
				if len(resp.Errors) > 0 {
					mu.Lock()
					op, _, _ := strings.Cut(strings.Fields(req.Query)[1], "(")
					rejected = append(rejected, op+": "+resp.Errors[0].Name+" "+resp.Errors[0].Message)
					mu.Unlock()
				}
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
			}))
			defer srv.Close()
			// A client per call, so that each call's own first query is seen (the
			// client may remember a refusal for its later calls).
			var c *openctiapi.Client
			ctx := context.Background()
			group := groupID(a.st, "Connectors")
			calls := map[string]func() error{
				"About":       func() error { _, err := c.About(ctx); return err },
				"Me":          func() error { _, err := c.Me(ctx); return err },
				"GroupID":     func() error { _, err := c.GroupID(ctx, "Connectors"); return err },
				"UserByEmail": func() error { _, err := c.UserByEmail(ctx, "analyst@opencti.io"); return err },
				"Users":       func() error { _, err := c.Users(ctx); return err },
				"AddUser": func() error {
					_, err := c.AddUser(ctx, openctiapi.NewUser{Name: "connector-x", Email: "x@opencti.local", Password: "p", GroupIDs: []string{group}})
					return err
				},
				"SetAccountStatus": func() error { return c.SetAccountStatus(ctx, "u2", openctiapi.AccountActive) },
				"Connectors":       func() error { _, err := c.Connectors(ctx); return err },
			}
			for _, name := range []string{"About", "Me", "GroupID", "AddUser", "UserByEmail", "Users", "SetAccountStatus", "Connectors"} {
				c = &openctiapi.Client{BaseURL: srv.URL, Token: testToken, HTTP: srv.Client()}
				if err := calls[name](); err != nil {
					t.Logf("%s failed: %v", name, err)
				}
			}
			t.Logf("queries of internal/openctiapi a %s stand-in rejects: %q", version, rejected)
			for _, r := range rejected {
				if version != v7 || !strings.Contains(r, `GRAPHQL_VALIDATION_FAILED Cannot query field "api_token" on type "User".`) {
					t.Errorf("%s rejected %s", version, r)
				}
			}
			users, _ := listAs[userDoc](ctx, a.st.objects, entityUser)
			n := 0
			for _, u := range users {
				if u.UserEmail == "x@opencti.local" {
					n++
				}
			}
			if n > 1 {
				t.Errorf("%d users x@opencti.local: a rejected userAdd created one", n)
			}
		})
	}
}

func TestTokenKeyOnlyFor7(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	if (Config{Version: "6.9.28", EncryptionKey: key}).tokenKey() != nil {
		t.Error("6.x hashes tokens")
	}
	if k := (Config{Version: v7, EncryptionKey: key}).tokenKey(); !bytes.Equal(k, bytes.Repeat([]byte{1}, 32)) {
		t.Errorf("7.x key = %x", k)
	}
	if tokenMatches(userDoc{APITokens: []apiTokenDoc{{Hash: tokenHash([]byte("k"), "t")}}}, []byte("k"), "") {
		t.Error("an empty token matched")
	}
}
