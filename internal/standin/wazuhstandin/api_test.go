package wazuhstandin

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func toJSON(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

// nextSecond waits for the next whole second: tokens issued in the second a
// user's tokens were revoked are refused.
func nextSecond() { time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) }

func TestAuthentication(t *testing.T) {
	n := newNode(t, FastTimings(), NodeOptions{})
	n.mustControl("start")
	tok := n.adminToken()

	code, body := n.call(http.MethodGet, "/security/user/authenticate", "", nil)
	if code != http.StatusUnauthorized || toJSON(body) != `{"detail":"Invalid credentials","title":"Unauthorized"}` {
		t.Errorf("no credentials: %d %v", code, body)
	}
	if code, _ := n.login("wazuh", "nope"); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", code)
	}
	if code, tok := n.login("wazuh-wui", "wazuh-wui"); code != 200 || tok == "" {
		t.Errorf("wazuh-wui factory login: %d", code)
	}
	code, body = n.call(http.MethodGet, "/manager/info", "", nil)
	if code != http.StatusUnauthorized || body["detail"] != "No authorization token provided" {
		t.Errorf("no token: %d %v", code, body)
	}
	if code, _ := n.call(http.MethodGet, "/manager/info", tok+"x", nil); code != http.StatusUnauthorized {
		t.Errorf("forged token: %d", code)
	}
	code, body = n.call(http.MethodGet, "/manager/info", tok, nil)
	items := affected(body)
	if code != 200 || len(items) != 1 || items[0].(map[string]any)["version"] != "v4.11.0" || body["message"] != "Basic information was successfully read" {
		t.Errorf("manager info: %d %v", code, body)
	}
	code, body = n.call(http.MethodGet, "/manager/status", tok, nil)
	if code != 200 || affected(body)[0].(map[string]any)["wazuh-apid"] != "running" {
		t.Errorf("manager status: %d %v", code, body)
	}
	code, body = n.call(http.MethodGet, "/manager/stats", tok, nil)
	if code != http.StatusBadRequest || body["error"].(float64) != 1308 {
		t.Errorf("stats without a totals file: %d %v", code, body)
	}
	code, body = n.call(http.MethodGet, "/cluster/nodes", tok, nil)
	if code != http.StatusBadRequest || body["error"].(float64) != 3013 {
		t.Errorf("cluster nodes without a cluster: %d %v", code, body)
	}
	if code, _ := n.call(http.MethodGet, "/no/such/path", tok, nil); code != http.StatusNotFound {
		t.Errorf("unknown path: %d", code)
	}
}

func TestUsersResetToFactoryOnRestart(t *testing.T) {
	n := newNode(t, FastTimings(), NodeOptions{})
	n.mustControl("start")
	tok := n.adminToken()

	code, body := n.call(http.MethodPut, "/security/users/1", tok, map[string]string{"password": "Rotated-Passw0rd"})
	if code != 200 || body["error"].(float64) != 0 || body["message"] != "User was successfully updated" {
		t.Fatalf("rotate: %d %v", code, body)
	}
	if code, _ := n.call(http.MethodGet, "/security/users", tok, nil); code != http.StatusUnauthorized {
		t.Errorf("token issued before the password change still accepted: %d", code)
	}
	if code, _ := n.login("wazuh", "wazuh"); code != http.StatusUnauthorized {
		t.Errorf("factory password after rotation: %d", code)
	}
	// A token issued in the revocation second is refused as well (the real
	// TokenManager compares whole seconds), so log in from the next second on.
	nextSecond()
	code, tok = n.login("wazuh", "Rotated-Passw0rd")
	if code != 200 {
		t.Fatalf("rotated password: %d", code)
	}
	code, body = n.call(http.MethodPost, "/security/users", tok, map[string]string{"username": "prometheus", "password": "Prom-Passw0rd!"})
	if code != 200 || affected(body)[0].(map[string]any)["id"].(float64) != 100 {
		t.Fatalf("create prometheus: %d %v", code, body)
	}

	n.mustControl("restart")
	n.waitAPI(10 * time.Second)
	if code, _ := n.login("wazuh", "Rotated-Passw0rd"); code != http.StatusUnauthorized {
		t.Errorf("rotated password survived the restart: %d", code)
	}
	if code, _ := n.login("prometheus", "Prom-Passw0rd!"); code != http.StatusUnauthorized {
		t.Errorf("created user survived the restart: %d", code)
	}
	tok = n.adminToken()
	code, body = n.call(http.MethodGet, "/security/users", tok, nil)
	if code != 200 || len(affected(body)) != 2 {
		t.Errorf("users after restart: %d %v", code, body)
	}
}

func TestUserManagement(t *testing.T) {
	n := newNode(t, FastTimings(), NodeOptions{})
	n.mustControl("start")
	tok := n.adminToken()
	for _, tc := range []struct {
		password string
		code     float64
		remedy   string
	}{
		{"Sh0rt!", 5009, "between 8 and 64 characters"},
		{"alllowercase1!", 5007, "upper and lower case letter, a number and a symbol"},
		{"NoSymbol1234", 5007, "upper and lower case letter, a number and a symbol"},
	} {
		code, body := n.call(http.MethodPost, "/security/users", tok, map[string]string{"username": "prometheus", "password": tc.password})
		if code != http.StatusBadRequest || body["error"].(float64) != tc.code || body["detail"] != "Insecure user password provided" ||
			!strings.Contains(body["remediation"].(string), tc.remedy) {
			t.Errorf("password %q: %d %v", tc.password, code, body)
		}
	}
	code, body := n.call(http.MethodPost, "/security/users", tok, map[string]string{"username": "prometheus", "password": "Prom-Passw0rd!"})
	if code != 200 || body["message"] != "User was successfully created" {
		t.Fatalf("create: %d %v", code, body)
	}
	code, body = n.call(http.MethodPost, "/security/users", tok, map[string]string{"username": "prometheus", "password": "Prom-Passw0rd!"})
	if code != 200 || body["error"].(float64) != 1 || !strings.Contains(toJSON(body), `"code":5000`) {
		t.Errorf("duplicate: %d %v", code, body)
	}
	code, body = n.call(http.MethodGet, "/security/roles", tok, nil)
	roles := affected(body)
	if code != 200 || len(roles) != 7 || roles[0].(map[string]any)["name"] != "administrator" || roles[1].(map[string]any)["name"] != "readonly" ||
		roles[6].(map[string]any)["name"] != "cluster_admin" {
		t.Fatalf("roles: %d %v", code, body)
	}
	code, body = n.call(http.MethodPost, "/security/users/100/roles?role_ids=2", tok, nil)
	if code != 200 || body["message"] != "All roles were linked to user prometheus" {
		t.Fatalf("link readonly: %d %v", code, body)
	}
	code, body = n.call(http.MethodPost, "/security/users/100/roles?role_ids=2,99", tok, nil)
	if code != 200 || body["error"].(float64) != 1 || !strings.Contains(toJSON(body), `"code":4017`) || !strings.Contains(toJSON(body), `"code":4002`) {
		t.Errorf("link again and unknown role: %d %v", code, body)
	}
	code, body = n.call(http.MethodPut, "/security/users/999", tok, map[string]string{"password": "Other-Passw0rd!"})
	if code != 200 || body["error"].(float64) != 1 || !strings.Contains(toJSON(body), `"code":5001`) {
		t.Errorf("update unknown user: %d %v", code, body)
	}

	// readonly reads the manager but cannot manage users. Linking the role
	// revoked prometheus's tokens up to this second.
	nextSecond()
	code, ro := n.login("prometheus", "Prom-Passw0rd!")
	if code != 200 {
		t.Fatalf("prometheus login: %d", code)
	}
	for _, p := range []string{"/", "/manager/info", "/manager/configuration/validation", "/cluster/status"} {
		if code, body := n.call(http.MethodGet, p, ro, nil); code != 200 {
			t.Errorf("readonly GET %s: %d %v", p, code, body)
		}
	}
	code, body = n.call(http.MethodPost, "/security/users", ro, map[string]string{"username": "intruder", "password": "Intr-Passw0rd!"})
	if code != http.StatusForbidden || body["error"].(float64) != 4000 {
		t.Errorf("readonly creating a user: %d %v", code, body)
	}
}

func TestLoginAttemptsBlockTheAddress(t *testing.T) {
	n := newNode(t, FastTimings(), NodeOptions{})
	writeFile(t, n.home+"/"+apiYAMLRel, n.file(apiYAMLRel)+"access:\n  max_login_attempts: 3\n  block_time: 300\n")
	n.mustControl("start")
	n.waitAPI(10 * time.Second)
	for i := 0; i < 3; i++ {
		if code, _ := n.login("wazuh", "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i+1, code)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, n.api+"/security/user/authenticate", nil)
	req.SetBasicAuth("wazuh", "wazuh")
	resp, err := insecure.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusForbidden || body["error"].(float64) != 6000 {
		t.Errorf("after max_login_attempts failures: %d %v", resp.StatusCode, body)
	}
}
