package wazuhstandin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// api is wazuh-apid: the HTTPS REST API with JWT authentication, its user
// database in memory (factory users and roles at every start).
type api struct {
	d        *daemon
	conf     APIConfig
	key      *ecdsa.PrivateKey
	tokenTTL time.Duration
	started  time.Time

	mu       sync.Mutex
	users    []*apiUser
	nextUser int
	invalid  map[int]int64 // user id -> tokens with nbf before this are revoked
	logins   map[string]*loginAttempts
	window   time.Time // start of the current rate-limit minute
	requests int
}

type loginAttempts struct {
	count int
	since time.Time
}

// openAPI loads api.yaml, generates the certificate on first start, and binds
// the port APIReady after the pid file is written (the port refuses
// connections until then, as uvicorn is not yet up).
func (d *daemon) openAPI() (func(context.Context) error, error) {
	conf, err := LoadAPIConfig(d.home)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		return nil, err
	}
	a := &api{d: d, conf: conf, key: key, tokenTTL: 900 * time.Second, started: time.Now(),
		invalid: map[int]int64{}, logins: map[string]*loginAttempts{}}
	a.resetUsers()
	var tlsConf *tls.Config
	if conf.HTTPS {
		certPath := filepath.Join(d.home, "api/configuration/ssl/server.crt")
		keyPath := filepath.Join(d.home, "api/configuration/ssl/server.key")
		if certMissing(certPath, keyPath) {
			d.api.apif("INFO", "HTTPS is enabled but cannot find the private key and/or certificate. Attempting to generate them")
		}
		generated := certMissing(certPath, keyPath)
		cert, err := loadOrCreateCert(certPath, keyPath, "wazuh.com")
		if err != nil {
			return nil, fmt.Errorf("Error 2003 - Error loading SSL/TLS certificates: %v", err)
		}
		if generated {
			d.api.apif("INFO", "Generated private key file in WAZUH_PATH/api/configuration/ssl/server.key")
			d.api.apif("INFO", "Generated certificate file in WAZUH_PATH/api/configuration/ssl/server.crt")
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d.t.APIReady):
		}
		host := listenHost(conf.Host)
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(conf.Port)))
		if err != nil {
			return fmt.Errorf("Error 2010 - Wazuh API port %d is already in use: %v", conf.Port, err)
		}
		if tlsConf != nil {
			ln = tls.NewListener(ln, tlsConf)
		}
		d.api.apif("INFO", "Listening on ['%s']:%d.", conf.Host, conf.Port)
		srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 30 * time.Second}
		go func() {
			<-ctx.Done()
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdown)
		}()
		if err := srv.Serve(ln); err != http.ErrServerClosed {
			return err
		}
		return nil
	}, nil
}

// route is one endpoint: the RBAC action it needs ("" for any valid token,
// "-" for none) and the query parameters the spec allows beyond the common ones.
type route struct {
	pattern string
	action  string
	params  string
	h       func(w http.ResponseWriter, r *http.Request, c *claims)
}

func (a *api) routes() http.Handler {
	list := []route{
		{"GET /security/user/authenticate", "-", "raw", a.login},
		{"POST /security/user/authenticate", "-", "raw", a.login},
		{"GET /{$}", "", "", a.info},
		{"GET /security/users", "security:read:user", "user_ids offset limit sort search select q distinct", a.getUsers},
		{"POST /security/users", "security:create_user", "", a.createUser},
		{"PUT /security/users/{user_id}", "security:update:user", "", a.updateUser},
		{"GET /security/roles", "security:read:role", "role_ids offset limit sort search select q distinct", a.getRoles},
		{"POST /security/users/{user_id}/roles", "security:update:user", "role_ids position", a.setUserRoles},
		{"GET /manager/info", "manager:read", "", a.managerInfo},
		{"GET /manager/status", "manager:read", "", a.managerStatus},
		{"GET /manager/stats", "manager:read", "date", a.managerStats},
		{"GET /manager/configuration/validation", "manager:read", "", a.validation},
		{"GET /cluster/status", "cluster:status", "", a.clusterStatus},
		{"GET /cluster/nodes", "cluster:read", "nodes_list offset limit sort search select type q distinct", a.clusterNodes},
		{"GET /cluster/healthcheck", "cluster:read", "nodes_list", a.clusterHealth},
		{"GET /overview/agents", "agent:read", "", a.overviewAgents},
		{"GET /manager/stats/hourly", "manager:read", "", a.managerStatsHourly},
		{"GET /manager/stats/remoted", "manager:read", "", a.managerStatsRemoted},
		{"GET /manager/stats/analysisd", "manager:read", "", a.managerStatsAnalysisd},
		{"GET /manager/logs", "manager:read", "offset limit sort search tag level q select distinct", a.managerLogs},
	}
	mux := http.NewServeMux()
	for _, rt := range list {
		mux.HandleFunc(rt.pattern, a.wrap(rt))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.access(r, http.StatusNotFound, time.Now(), "-")
		problem(w, http.StatusNotFound, "Not Found", "404: Not Found", 0, "")
	})
	return mux
}

// wrap applies the middlewares in the API's order: rate limit, blocked IPs,
// authentication, strict query validation, RBAC; and writes the access log.
func (a *api) wrap(rt route) http.HandlerFunc {
	allowed := map[string]bool{"pretty": true, "wait_for_complete": true}
	for _, p := range strings.Fields(rt.params) {
		allowed[p] = true
	}
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		user := "-"
		defer func() { a.access(r, rec.status, start, user) }()
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		if !a.countRequest() {
			problem(rec, http.StatusTooManyRequests, "Too Many Requests", "Maximum number of requests per minute reached", 6001,
				"This limit can be changed in api.yaml file. More information here: https://documentation.wazuh.com/4.11/user-manual/api/security/configuration.html")
			return
		}
		if a.blocked(ip) {
			problem(rec, http.StatusForbidden, "Permission Denied", "Limit of login attempts reached. The current IP has been blocked due to a high number of login attempts", 6000, "")
			return
		}
		var extra []string
		for k := range r.URL.Query() {
			if !allowed[k] {
				extra = append(extra, k)
			}
		}
		if len(extra) > 0 {
			sort.Strings(extra)
			problem(rec, http.StatusBadRequest, "Bad Request", "Extra query parameter(s) "+strings.Join(extra, ", ")+" not in spec", 0, "")
			return
		}
		if rt.action == "-" {
			rt.h(rec, r, nil)
			return
		}
		c, ok := a.authenticate(r)
		if !ok {
			problem(rec, http.StatusUnauthorized, "Unauthorized", "No authorization token provided", 0, "")
			return
		}
		user = c.Subject
		if rt.action != "" && !a.permitted(c, rt.action) {
			problem(rec, http.StatusForbidden, "Permission Denied", "Permission denied: Resource type: "+resourceOf(rt.action), 4000,
				"Please, make sure you have permissions to execute the current request. For more information on how to set up permissions, please visit https://documentation.wazuh.com/4.11/user-manual/api/rbac/configuration.html")
			return
		}
		rt.h(rec, r, c)
	}
}

func resourceOf(action string) string {
	if parts := strings.Split(action, ":"); len(parts) == 3 {
		return parts[2] + ":id"
	}
	return "*:*"
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// access writes the API's access log line.
func (a *api) access(r *http.Request, status int, start time.Time, user string) {
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	params := map[string]string{}
	for k, v := range r.URL.Query() {
		params[k] = strings.Join(v, ",")
	}
	p, _ := json.Marshal(params)
	a.d.api.apif("INFO", "%s %s \"%s %s\" with parameters %s and body {} done in %.3fs: %d",
		user, ip, r.Method, r.URL.Path, p, time.Since(start).Seconds(), status)
}

func (a *api) countRequest() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if time.Since(a.window) >= time.Minute {
		a.window, a.requests = time.Now(), 0
	}
	a.requests++
	return a.conf.MaxRequestPerMinute <= 0 || a.requests <= a.conf.MaxRequestPerMinute
}

func (a *api) blocked(ip string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.logins[ip]
	if l == nil {
		return false
	}
	if time.Since(l.since) >= a.conf.BlockTime {
		delete(a.logins, ip)
		return false
	}
	return l.count >= a.conf.MaxLoginAttempts
}

// loginFailed is prevent_bruteforce_attack: max_login_attempts failures block
// the address for block_time.
func (a *api) loginFailed(ip string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.logins[ip]
	if l == nil || time.Since(l.since) >= a.conf.BlockTime {
		l = &loginAttempts{since: time.Now()}
		a.logins[ip] = l
	}
	l.count++
}

// envelope is the API's response body.
type envelope struct {
	Data    any    `json:"data"`
	Message string `json:"message,omitempty"`
	Error   int    `json:"error"`
}

// items is an AffectedItemsWazuhResult's data.
type items struct {
	AffectedItems      any          `json:"affected_items"`
	TotalAffectedItems int          `json:"total_affected_items"`
	TotalFailedItems   int          `json:"total_failed_items"`
	FailedItems        []failedItem `json:"failed_items"`
}

type failedItem struct {
	Error wazuhErr `json:"error"`
	ID    []any    `json:"id"`
}

type wazuhErr struct {
	Code        int    `json:"code"`
	Message     string `json:"message"`
	Remediation string `json:"remediation,omitempty"`
}

// result writes an AffectedItemsWazuhResult: error 0 when nothing failed, 1
// when nothing succeeded, 2 when some did, with the matching message.
func result(w http.ResponseWriter, affected any, n int, failed []failedItem, all, some, none string) {
	code, msg := 0, all
	switch {
	case len(failed) > 0 && n == 0:
		code, msg = 1, none
	case len(failed) > 0:
		code, msg = 2, some
	}
	if failed == nil {
		failed = []failedItem{}
	}
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8",
		envelope{Data: items{AffectedItems: affected, TotalAffectedItems: n, TotalFailedItems: len(failed), FailedItems: failed}, Message: msg, Error: code})
}

type problemBody struct {
	Title       string `json:"title"`
	Detail      string `json:"detail,omitempty"`
	Remediation string `json:"remediation,omitempty"`
	Error       int    `json:"error,omitempty"`
}

// problem writes the API's problem+json error body.
func problem(w http.ResponseWriter, status int, title, detail string, code int, remediation string) {
	writeJSON(w, status, "application/problem+json; charset=utf-8", problemBody{title, detail, remediation, code})
}

// wazuhProblem writes a framework error (WazuhError) as the API does: 400 Bad Request.
func wazuhProblem(w http.ResponseWriter, code int) {
	e := catalogue(code)
	problem(w, http.StatusBadRequest, "Bad Request", e.Message, code, e.Remediation)
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
