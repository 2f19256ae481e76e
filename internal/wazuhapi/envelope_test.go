package wazuhapi

import (
	"errors"
	"net/http"
	"testing"
)

// The answers below are the API's own shapes: the examples of api/api/spec/spec.yaml
// and the problem bodies framework/wazuh/core/exception.py produces.

func TestParseProblem(t *testing.T) {
	tests := []struct {
		name   string
		op     string
		status int
		body   string
		login  bool
		want   string
		code   int
		is     []error
		isNot  []error
	}{{
		name:   "wrong password at login",
		op:     "authenticate as user wazuh",
		status: 401, login: true,
		body:  `{"title": "Unauthorized", "detail": "Invalid credentials"}`,
		want:  "wazuh API refused to authenticate as user wazuh (HTTP 401): Invalid credentials",
		is:    []error{ErrInvalidCredentials},
		isNot: []error{ErrUnauthorized, ErrPasswordPolicy},
	}, {
		name:   "expired token on a call",
		op:     "list users",
		status: 401,
		body:   `{"title": "Unauthorized", "detail": "Invalid token"}`,
		want:   "wazuh API refused to list users (HTTP 401): Invalid token",
		is:     []error{ErrUnauthorized},
		isNot:  []error{ErrInvalidCredentials},
	}, {
		name:   "password policy, code in error",
		op:     "update the password of user 100",
		status: 400,
		body: `{"title": "Bad Request", "detail": "Insecure user password provided",
			"remediation": "The password must contain at least one upper and lower case letter, a number and a symbol.",
			"dapi_errors": {"master-node": {"error": "Insecure user password provided"}}, "error": 5007}`,
		want: "wazuh API refused to update the password of user 100 (HTTP 400, error 5007): Insecure user password provided; " +
			"The password must contain at least one upper and lower case letter, a number and a symbol",
		code: 5007,
		is:   []error{ErrPasswordPolicy},
	}, {
		name:   "password length, code in code",
		op:     "create user prometheus",
		status: 400,
		body:   `{"title": "Bad Request", "detail": "Insecure user password provided", "code": 5009}`,
		want:   "wazuh API refused to create user prometheus (HTTP 400, error 5009): Insecure user password provided",
		code:   5009,
		is:     []error{ErrPasswordPolicy},
	}, {
		name:   "cluster disabled",
		op:     "list the cluster nodes",
		status: 400,
		body:   `{"title": "Wazuh Error", "detail": "Cluster is not running, it might be disabled in WAZUH_HOME/etc/ossec.conf", "error": 3013}`,
		want:   "wazuh API refused to list the cluster nodes (HTTP 400, error 3013): Cluster is not running, it might be disabled in WAZUH_HOME/etc/ossec.conf",
		code:   3013,
		is:     []error{ErrClusterNotRunning},
	}, {
		name:   "not the API's JSON",
		op:     "list roles",
		status: 502,
		body:   "<html>Bad Gateway</html>\n",
		want:   "wazuh API refused to list roles (HTTP 502): <html>Bad Gateway</html>",
	}, {
		name:   "empty problem",
		op:     "list roles",
		status: 500,
		body:   `{}`,
		want:   "wazuh API refused to list roles (HTTP 500): Internal Server Error",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := parseProblem(tt.op, tt.status, []byte(tt.body), tt.login)
			if got := err.Error(); got != tt.want {
				t.Errorf("Error() =\n  %s\nwant\n  %s", got, tt.want)
			}
			if err.Code != tt.code {
				t.Errorf("Code = %d, want %d", err.Code, tt.code)
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v) = false", target)
				}
			}
			for _, target := range tt.isNot {
				if errors.Is(err, target) {
					t.Errorf("errors.Is(%v) = true", target)
				}
			}
		})
	}
}

func TestDecodeItemsUsers(t *testing.T) {
	body := `{"data": {"affected_items": [
		{"id": 1, "username": "wazuh", "allow_run_as": true, "roles": [1]},
		{"id": 2, "username": "wazuh-wui", "allow_run_as": true, "roles": [1]},
		{"id": 100, "username": "prometheus", "allow_run_as": false, "roles": []}],
		"total_affected_items": 3, "total_failed_items": 0, "failed_items": []},
		"message": "All specified users were returned", "error": 0}`
	items, err := decodeItems[User]("list users", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(items.Affected) != 3 || items.TotalAffected != 3 || items.Message != "All specified users were returned" {
		t.Fatalf("items = %+v", items)
	}
	if u := items.Affected[2]; u.ID != 100 || u.Username != "prometheus" || u.HasRole(2) || len(u.Roles) != 0 {
		t.Errorf("prometheus = %+v", u)
	}
	if u := items.Affected[0]; !u.HasRole(1) || !u.AllowRunAs {
		t.Errorf("wazuh = %+v", u)
	}
}

func TestDecodeItemsFailed(t *testing.T) {
	// set_user_role linking a role the user has, and one that does not exist.
	body := `{"data": {"affected_items": [], "total_affected_items": 0, "total_failed_items": 2,
		"failed_items": [
			{"error": {"code": 4017, "message": "The specified user-role relation already exists"}, "id": [2]},
			{"error": {"code": 4002, "message": "The specified role does not exist",
				"remediation": "Please, create the specified role with the endpoint POST /security/roles"}, "id": ["99", 7]}]},
		"message": "No link was created to user prometheus", "error": 2}`
	items, err := decodeItems[User]("link roles 2,99 to user 100", []byte(body))
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want *APIError", err)
	}
	if apiErr.Status != http.StatusOK || apiErr.Code != CodeUserRoleExists {
		t.Errorf("first failed item = %+v", apiErr)
	}
	want := "wazuh API refused to link roles 2,99 to user 100 (error 4017, for 2): The specified user-role relation already exists"
	if apiErr.Error() != want {
		t.Errorf("Error() = %s\nwant %s", apiErr.Error(), want)
	}
	if len(items.Failed) != 2 || items.Failed[1].Error.Code != CodeRoleNotFound {
		t.Fatalf("failed = %+v", items.Failed)
	}
	if ids := items.Failed[1].ID; len(ids) != 2 || ids[0] != "99" || ids[1] != "7" {
		t.Errorf("ids = %q, want [99 7]", ids)
	}
	if !HasCode(err, CodeUserRoleExists) || HasCode(err, CodeRoleNotFound) {
		t.Error("HasCode reads the first failed item's code")
	}
}

func TestDecodeItemsBroken(t *testing.T) {
	for name, body := range map[string]string{
		"not JSON":     `<html>`,
		"no data":      `{"message": "x", "error": 0}`,
		"null data":    `{"data": null}`,
		"wrong shapes": `{"data": {"affected_items": {"id": 1}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decodeItems[User]("list users", []byte(body))
			var apiErr *APIError
			if err == nil || errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want a decoding error", err)
			}
		})
	}
}

func TestOneAndValidation(t *testing.T) {
	info := `{"data": {"affected_items": [{"path": "/var/ossec", "version": "v4.11.0", "type": "server",
		"max_agents": "unlimited", "openssl_support": "yes", "tz_offset": "+0000", "tz_name": "UTC",
		"uuid": "c842f85c-c24b-4b39-9508-093ce53482e7"}], "total_affected_items": 1, "total_failed_items": 0,
		"failed_items": []}, "message": "Basic information was successfully read in specified node", "error": 0}`
	m, err := one[ManagerInfo]("read the manager information", []byte(info))
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "v4.11.0" || m.SemVer() != "4.11.0" || m.Path != "/var/ossec" {
		t.Errorf("info = %+v", m)
	}
	if _, err := one[ManagerInfo]("read the manager information", []byte(`{"data": {"affected_items": [], "total_affected_items": 0, "failed_items": []}, "message": "none"}`)); err == nil {
		t.Error("an answer with no item is an error")
	}
}

func TestIDsUnmarshal(t *testing.T) {
	var ids IDs
	if err := ids.UnmarshalJSON([]byte(`"master-node"`)); err != nil || len(ids) != 1 || ids[0] != "master-node" {
		t.Errorf("single id: %q %v", ids, err)
	}
	if err := ids.UnmarshalJSON([]byte(`[{"x": 1}]`)); err == nil {
		t.Error("an object id is an error")
	}
}

func TestDecodeHealthcheck(t *testing.T) {
	// spec.yaml's example; framework/wazuh/cluster.py get_health_nodes lists the
	// nodes' values sorted by info.name.
	body := `{"data": {"affected_items": [
		{"info": {"name": "master-node", "type": "master", "version": "4.4.0", "ip": "wazuh-master", "n_active_agents": 5}},
		{"info": {"name": "worker1", "type": "worker", "version": "4.4.0", "ip": "172.21.0.7", "n_active_agents": 3},
		 "status": {"sync_integrity_free": true, "sync_agent_info_free": true, "last_keep_alive": "2021-05-27T10:50:08.985208Z",
		  "last_check_integrity": {"date_start_master": "2021-05-27T10:50:51.325656Z", "date_end_master": "2021-05-27T10:50:51.342140Z"}}}],
		"total_affected_items": 2, "total_failed_items": 0, "failed_items": []},
		"message": "All selected nodes healthcheck information was returned", "error": 0}`
	items, err := decodeItems[NodeHealth]("read the cluster healthcheck", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(items.Affected) != 2 {
		t.Fatalf("items = %+v", items)
	}
	m, w := items.Affected[0], items.Affected[1]
	if m.Info.Name != "master-node" || m.Info.ActiveAgents != 5 || m.Status != nil {
		t.Errorf("master = %+v", m)
	}
	if w.Info.Type != "worker" || w.Status == nil || !w.Status.SyncIntegrityFree || w.Status.LastKeepAlive != "2021-05-27T10:50:08.985208Z" {
		t.Errorf("worker = %+v", w)
	}
}
