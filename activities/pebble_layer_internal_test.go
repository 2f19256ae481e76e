package activities

import (
	"reflect"
	"testing"
	"time"

	"github.com/socflow/socflow/internal/layer"
)

func TestRetireRoundTrip(t *testing.T) {
	svc := layer.Service{Override: layer.OverrideReplace, Startup: layer.StartupEnabled, Command: "sleep 300",
		KillDelay: layer.Duration(time.Second), Environment: map[string]string{"A": "1"}, Requires: []string{"platform"}}
	r := retire(svc)
	if !isRetired(r) || isRetired(svc) || r.Command != svc.Command || r.Override != layer.OverrideReplace || r.Startup != layer.StartupDisabled {
		t.Errorf("retire(%+v) = %+v", svc, r)
	}
	merged := svc
	merged.Override = layer.OverrideMerge
	if !reflect.DeepEqual(asRun(svc), asRun(merged)) {
		t.Error("override made a service differ")
	}
}
