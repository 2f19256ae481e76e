package activities

import (
	"errors"
	"strings"
	"testing"

	"github.com/socflow/socflow/internal/spec"
)

// The probes take the app's requirement: OpenCTI's when the input has none (inputs of
// deploys begun before), another app's words and minimums when given.
func TestMinimumVersionTakesTheAppsRequirement(t *testing.T) {
	wazuh := spec.Requirement{App: "Wazuh", Minimums: map[string]string{"opensearch": "2.10"}, AllowField: "wazuh.allowOldDependencies"}
	tests := []struct {
		name, system, version string
		req                   spec.Requirement
		allow                 bool
		warning, err          string
	}{
		{"opencti by default", "redis", "7.0.15", spec.Requirement{}, false, "",
			"cannot use redis 7.0.15: OpenCTI requires redis >= 7.1 (upgrade it, or set opencti.allowOldDependencies for a test stack)"},
		{"opencti allowed", "rabbitmq", "3.10.8", spec.Requirement{}, true,
			"rabbitmq 3.10.8 is below OpenCTI's documented minimum 3.11 (accepted because opencti.allowOldDependencies is set)", ""},
		{"another app", "opensearch", "2.9.0", wazuh, false, "",
			"cannot use opensearch 2.9.0: Wazuh requires opensearch >= 2.10 (upgrade it, or set wazuh.allowOldDependencies for a test stack)"},
		{"another app, new enough", "opensearch", "2.19.3", wazuh, false, "", ""},
		{"a system the app does not constrain", "redis", "5.0.0", wazuh, false, "", ""},
		{"unparsable", "redis", "unstable", spec.Requirement{}, false, `cannot parse redis version "unstable"; the minimum 7.1 was not checked`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := minimumVersion(tt.system, tt.version, tt.req, tt.allow)
			if w != tt.warning {
				t.Errorf("warning %q, want %q", w, tt.warning)
			}
			var perm *errPermanent
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.err != "" && (!errors.As(err, &perm) || perm.errType != ErrTypeVersionTooOld || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("error %v, want a %s saying %q", err, ErrTypeVersionTooOld, tt.err)
			}
		})
	}
}
