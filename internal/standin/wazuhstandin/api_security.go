package wazuhstandin

import (
	"crypto/subtle"
	"encoding/json"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// apiUser is one row of the RBAC user table.
type apiUser struct {
	ID         int    `json:"id"`
	Username   string `json:"username"`
	AllowRunAs bool   `json:"allow_run_as"`
	Roles      []int  `json:"roles"`
	password   string
}

// apiRole is one default role: ids as the 4.x RBAC database creates them from
// framework/wazuh/rbac/default/roles.yaml, in that file's order.
type apiRole struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Policies []int  `json:"policies"`
	Users    []int  `json:"users"`
	Rules    []int  `json:"rules"`
	actions  []string
}

// maxIDReserved is orm.MAX_ID_RESERVED: ids up to it are the factory's, user ids start after it.
const maxIDReserved = 99

var readActions = []string{"agent:read", "group:read", "ciscat:read", "cluster:read", "cluster:status", "manager:read",
	"manager:read_api_config", "decoders:read", "lists:read", "rootcheck:read", "rules:read", "mitre:read",
	"sca:read", "syscheck:read", "syscollector:read", "vulnerability:read"}

var clusterRead = []string{"cluster:status", "manager:read", "manager:read_api_config", "cluster:read"}

// defaultRoles are the seven factory roles; "*" grants every action.
func defaultRoles() []*apiRole {
	return []*apiRole{
		{ID: 1, Name: "administrator", Policies: seq(1, 28), Rules: []int{1, 2}, actions: []string{"*"}},
		{ID: 2, Name: "readonly", Policies: seq(29, 43), Rules: []int{}, actions: readActions},
		{ID: 3, Name: "users_admin", Policies: []int{44, 45}, Rules: []int{},
			actions: []string{"security:create_user", "security:revoke", "security:read:user", "security:update:user", "security:delete:user"}},
		{ID: 4, Name: "agents_readonly", Policies: []int{46, 47}, Rules: []int{}, actions: []string{"agent:read", "group:read"}},
		{ID: 5, Name: "agents_admin", Policies: []int{48, 49, 50}, Rules: []int{}, actions: []string{"agent:*", "group:*"}},
		{ID: 6, Name: "cluster_readonly", Policies: []int{51, 52, 53, 54}, Rules: []int{}, actions: clusterRead},
		{ID: 7, Name: "cluster_admin", Policies: []int{55, 56, 57, 58}, Rules: []int{}, actions: append([]string{"cluster:*", "manager:*"}, clusterRead...)},
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// resetUsers restores the factory users: wazuh and wazuh-wui, administrators.
func (a *api) resetUsers() {
	a.users = []*apiUser{
		{ID: 1, Username: "wazuh", AllowRunAs: true, Roles: []int{1}, password: "wazuh"},
		{ID: 2, Username: "wazuh-wui", AllowRunAs: true, Roles: []int{1}, password: "wazuh-wui"},
	}
	a.nextUser = maxIDReserved + 1
}

// catalogue holds the framework error texts (framework/wazuh/core/exception.py).
func catalogue(code int) wazuhErr {
	e := map[int]wazuhErr{
		1308: {Message: "Stats file does not exist"},
		1908: {Message: "Error validating configuration"},
		4001: {Message: "The body of the request is empty, you must specify what you want to modify"},
		3013: {Message: "Cluster is not running", Remediation: "The cluster is not running. Please, check that it is enabled in WAZUH_HOME/etc/ossec.conf and that wazuh-clusterd is running"},
		3023: {Message: "Worker node is not connected to master", Remediation: "Check the cluster.log located at WAZUH_HOME/logs/cluster.log file to see if there are connection errors. Restart the `wazuh-manager` service."},
		4002: {Message: "The specified role does not exist", Remediation: "Please, create the specified role with the endpoint POST /security/roles"},
		4008: {Message: "The specified resource is required for a correct Wazuh's functionality"},
		4017: {Message: "The specified role is already assigned to the specified user"},
		5000: {Message: "The user could not be created", Remediation: "Please check that the user does not exist, to do this you can use the `GET /security/users` call"},
		5001: {Message: "The user does not exist", Remediation: "The user can be created with the endpoint POST /security/users"},
		5007: {Message: "Insecure user password provided", Remediation: "The password must contain at least one upper and lower case letter, a number and a symbol."},
		5009: {Message: "Insecure user password provided", Remediation: "The password must contain a length between 8 and 64 characters."},
	}[code]
	e.Code = code
	return e
}

// claims are the API token's payload.
type claims struct {
	RunAs     bool   `json:"run_as"`
	RBACRoles []int  `json:"rbac_roles"`
	RBACMode  string `json:"rbac_mode"`
	jwt.RegisteredClaims
}

var basicAuthUser = regexp.MustCompile(`^[\w.\-]+$`)

// login is GET|POST /security/user/authenticate with basic credentials.
func (a *api) login(w http.ResponseWriter, r *http.Request, _ *claims) {
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	name, pw, ok := r.BasicAuth()
	a.mu.Lock()
	var u *apiUser
	for _, cand := range a.users {
		if ok && cand.Username == name && subtle.ConstantTimeCompare([]byte(cand.password), []byte(pw)) == 1 {
			u = cand
		}
	}
	var roles []int
	if u != nil {
		roles = append(roles, u.Roles...)
	}
	a.mu.Unlock()
	if u == nil {
		a.loginFailed(ip)
		problem(w, http.StatusUnauthorized, "Unauthorized", "Invalid credentials", 0, "")
		return
	}
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES512, claims{RunAs: false, RBACRoles: roles, RBACMode: "white",
		RegisteredClaims: jwt.RegisteredClaims{Issuer: "wazuh", Audience: jwt.ClaimStrings{"Wazuh API REST"}, Subject: u.Username,
			NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(a.tokenTTL))}})
	signed, err := tok.SignedString(a.key)
	if err != nil {
		problem(w, http.StatusInternalServerError, "Wazuh Internal Error", err.Error(), 1000, "")
		return
	}
	if r.URL.Query().Get("raw") == "true" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(signed))
		return
	}
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", envelope{Data: map[string]string{"token": signed}})
}

// authenticate checks the bearer token: signature, expiry, the user still
// existing and not revoked since the token was issued (a password or role change).
func (a *api) authenticate(r *http.Request) (*claims, bool) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, false
	}
	c := &claims{}
	_, err := jwt.ParseWithClaims(strings.TrimSpace(raw), c, func(*jwt.Token) (any, error) { return &a.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"ES512"}), jwt.WithAudience("Wazuh API REST"), jwt.WithIssuer("wazuh"))
	if err != nil || c.NotBefore == nil {
		return nil, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.user(c.Subject)
	// TokenManager.is_token_valid: valid only when issued strictly after the
	// revocation second, so a token issued in that same second is refused too.
	if revoked, ok := a.invalid[u.ID]; u == nil || ok && c.NotBefore.Unix() <= revoked {
		return nil, false
	}
	c.RBACRoles = append([]int{}, u.Roles...)
	return c, true
}

func (a *api) user(name string) *apiUser {
	for _, u := range a.users {
		if u.Username == name {
			return u
		}
	}
	return nil
}

func (a *api) userByID(id int) *apiUser {
	for _, u := range a.users {
		if u.ID == id {
			return u
		}
	}
	return nil
}

// permitted reports whether any of the token's roles grants action.
func (a *api) permitted(c *claims, action string) bool {
	for _, role := range defaultRoles() {
		if !contains(c.RBACRoles, role.ID) {
			continue
		}
		for _, granted := range role.actions {
			prefix, wildcard := strings.CutSuffix(granted, "*")
			if granted == action || wildcard && strings.HasPrefix(action, prefix) {
				return true
			}
		}
	}
	return false
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// passwordError is create_user's and update_user's check: 5009 for the length,
// 5007 for the mix of upper and lower case letters, digits and symbols.
func passwordError(pw string) int {
	if len(pw) < 8 || len(pw) > 64 {
		return 5009
	}
	var lower, upper, digit, symbol bool
	for _, r := range pw {
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		default:
			symbol = true
		}
	}
	if !(lower && upper && digit && symbol) {
		return 5007
	}
	return 0
}

// readBody decodes a JSON body as the API does, refusing another content type.
func readBody(w http.ResponseWriter, r *http.Request, dst any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		problem(w, http.StatusUnsupportedMediaType, "Unsupported Media Type", "Invalid Content-type ("+ct+"), expected JSON data", 0, "")
		return false
	}
	if err := json.NewDecoder(r.Body).Decode(dst); err != nil {
		problem(w, http.StatusBadRequest, "Bad Request", "Request body is not valid JSON", 0, "")
		return false
	}
	return true
}

// idList parses a comma-separated id query parameter.
func idList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func pathID(r *http.Request) (int, bool) {
	id, err := strconv.Atoi(r.PathValue("user_id"))
	return id, err == nil
}
