package activities

import (
	"strings"
	"testing"
)

func TestValidateWazuhUsers(t *testing.T) {
	socflow := []WazuhAPIUser{{"wazuh", WazuhRoleAdministrator}, {"wazuh-wui", WazuhRoleAdministrator}, {"prometheus", WazuhRoleReadonly}}
	if err := validateWazuhUsers(ReconcileWazuhAPIUsersInput{Users: socflow}); err != nil {
		t.Fatalf("socflow's users: %v", err)
	}
	for name, tt := range map[string]struct {
		users []WazuhAPIUser
		want  string
	}{
		"none":          {nil, "no user given"},
		"short name":    {[]WazuhAPIUser{{"wz", WazuhRoleAdministrator}}, `user "wz": the API wants 4 to 64`},
		"bad character": {[]WazuhAPIUser{{"wazuh/1", WazuhRoleAdministrator}}, `user "wazuh/1"`},
		"twice":         {[]WazuhAPIUser{{"wazuh", WazuhRoleAdministrator}, {"wazuh", WazuhRoleReadonly}}, "user wazuh: it is listed twice"},
		"unknown role":  {[]WazuhAPIUser{{"wazuh", "root"}}, `role "root" is neither administrator nor readonly`},
		"no admin":      {[]WazuhAPIUser{{"prometheus", WazuhRoleReadonly}}, "none is an administrator"},
	} {
		err := validateWazuhUsers(ReconcileWazuhAPIUsersInput{Users: tt.users})
		if err == nil || !strings.HasPrefix(err.Error(), "cannot reconcile wazuh API user") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to say %q", name, err, tt.want)
		}
	}
}

func TestWazuhUsersState(t *testing.T) {
	users := []WazuhAPIUser{{"wazuh", WazuhRoleAdministrator}, {"prometheus", WazuhRoleReadonly}}
	for _, tt := range []struct {
		name        string
		stored      map[string]string
		factorySeen bool
		want        string
	}{
		{"first deploy", nil, true, WazuhUsersFresh},
		{"first deploy, stored for another user only", map[string]string{"other": "x"}, true, WazuhUsersFresh},
		{"reset", map[string]string{"wazuh": "x"}, true, WazuhUsersFactoryReset},
		{"in sync", map[string]string{"wazuh": "x"}, false, WazuhUsersInSync},
	} {
		r := &usersRun{in: ReconcileWazuhAPIUsersInput{Users: users, Stored: tt.stored}, progress: wazuhUsersProgress{FactorySeen: tt.factorySeen}}
		if got := r.state(); got != tt.want {
			t.Errorf("%s: state %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestWazuhAuthFailedSaysWhatWasTried(t *testing.T) {
	r := &usersRun{in: ReconcileWazuhAPIUsersInput{Instance: "soc", URL: "https://127.0.0.1:55000",
		Stored: map[string]string{"wazuh": "x", "prometheus": "y"}}}
	for name, want := range map[string]string{
		"wazuh":      "as user wazuh: it refused the password socflow stored and the factory password",
		"wazuh-wui":  "as user wazuh-wui: it refused the factory password (socflow stored none)",
		"prometheus": "as user prometheus: it refused the password socflow stored;",
		"exporter":   "as user exporter: it refused every password socflow knows",
	} {
		err := r.authFailed(name)
		perm, ok := err.(*errPermanent)
		if !ok || perm.errType != ErrTypeAuthFailed {
			t.Fatalf("%s: %T %v", name, err, err)
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "secret store for instance soc") ||
			!strings.HasPrefix(err.Error(), "cannot log in to the wazuh API at https://127.0.0.1:55000") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
