package layer

import (
	"reflect"
	"testing"
	"time"
)

func TestDiff(t *testing.T) {
	svc := func(edit func(*Service)) Service {
		s := Service{Override: OverrideReplace, Startup: StartupDisabled, Command: "run", KillDelay: Duration(30 * time.Second),
			Environment: map[string]string{"PORT": "8080", "PASSWORD": "old-secret"}}
		if edit != nil {
			edit(&s)
		}
		return s
	}
	check := Check{Override: OverrideReplace, Level: LevelReady, Period: Duration(time.Minute), HTTP: &HTTPCheck{URL: "http://127.0.0.1/health"}}
	base := Layer{Services: map[string]Service{"platform": svc(nil), "worker-0": svc(nil)}, Checks: map[string]Check{"health": check}}
	// showPort shows PORT and masks everything else, as an app's secret table would.
	showPort := func(service, key, value string) string {
		if key == "PORT" {
			return value
		}
		return "<secret>"
	}
	tests := []struct {
		name     string
		old, new Layer
		mask     Mask
		want     []Change
	}{
		{"identical", base, base, nil, nil},
		{"both empty", Layer{}, Layer{}, nil, nil},
		{"summary only", base, Layer{Summary: "other", Services: base.Services, Checks: base.Checks}, nil, nil},
		{"nil and empty env are equal",
			Layer{Services: map[string]Service{"a": {Command: "x"}}},
			Layer{Services: map[string]Service{"a": {Command: "x", Environment: map[string]string{}, After: []string{}}}}, nil, nil},
		{"service added", base, Layer{Services: map[string]Service{"platform": svc(nil), "worker-0": svc(nil), "worker-1": svc(nil)}, Checks: base.Checks}, nil,
			[]Change{{Kind: Added, Service: "worker-1"}}},
		{"service removed", base, Layer{Services: map[string]Service{"platform": svc(nil)}, Checks: base.Checks}, nil,
			[]Change{{Kind: Removed, Service: "worker-0"}}},
		{"from nothing", Layer{}, base, nil,
			[]Change{{Kind: Added, Service: "platform"}, {Kind: Added, Service: "worker-0"}, {Kind: Added, Check: "health"}}},
		{"command and kill-delay", base, Layer{Services: map[string]Service{
			"platform": svc(func(s *Service) { s.Command = "run --fast"; s.KillDelay = Duration(10 * time.Second) }), "worker-0": svc(nil)}, Checks: base.Checks}, nil,
			[]Change{{Kind: Changed, Service: "platform", Fields: []string{"command", "kill-delay"}}}},
		{"env changed, added and removed, values hidden by default", base, Layer{Services: map[string]Service{
			"platform": svc(func(s *Service) {
				s.Environment = map[string]string{"PORT": "9090", "PASSWORD": "new-secret", "EXTRA": "1"}
			}),
			"worker-0": svc(func(s *Service) { s.Environment = map[string]string{"PORT": "8080"} })}, Checks: base.Checks}, nil,
			[]Change{
				{Kind: Changed, Service: "platform", Fields: []string{"environment"}, Env: []EnvChange{
					{Key: "EXTRA", Kind: Added, New: Hidden},
					{Key: "PASSWORD", Kind: Changed, Old: Hidden, New: Hidden},
					{Key: "PORT", Kind: Changed, Old: Hidden, New: Hidden}}},
				{Kind: Changed, Service: "worker-0", Fields: []string{"environment"}, Env: []EnvChange{
					{Key: "PASSWORD", Kind: Removed, Old: Hidden}}},
			}},
		{"env through a mask", base, Layer{Services: map[string]Service{
			"platform": svc(func(s *Service) { s.Environment = map[string]string{"PORT": "9090", "PASSWORD": "new-secret"} }), "worker-0": svc(nil)}, Checks: base.Checks}, showPort,
			[]Change{{Kind: Changed, Service: "platform", Fields: []string{"environment"}, Env: []EnvChange{
				{Key: "PASSWORD", Kind: Changed, Old: "<secret>", New: "<secret>"},
				{Key: "PORT", Kind: Changed, Old: "8080", New: "9090"}}}}},
		{"check changed", base, Layer{Services: base.Services, Checks: map[string]Check{"health": {Override: OverrideReplace, Level: LevelAlive,
			Period: Duration(time.Minute), HTTP: &HTTPCheck{URL: "http://127.0.0.1/healthz"}}}}, nil,
			[]Change{{Kind: Changed, Check: "health", Fields: []string{"http", "level"}}}},
		{"check removed and added", base, Layer{Services: base.Services, Checks: map[string]Check{"alive": check}}, nil,
			[]Change{{Kind: Added, Check: "alive"}, {Kind: Removed, Check: "health"}}},
		{"services before checks", base, Layer{Services: map[string]Service{"platform": svc(nil)}}, nil,
			[]Change{{Kind: Removed, Service: "worker-0"}, {Kind: Removed, Check: "health"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(tt.old, tt.new, tt.mask)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// TestDiffNeverShowsHiddenValues guards the default: a nil mask shows no value.
func TestDiffNeverShowsHiddenValues(t *testing.T) {
	old := Layer{Services: map[string]Service{"a": {Environment: map[string]string{"K": "secret-1"}}}}
	new := Layer{Services: map[string]Service{"a": {Environment: map[string]string{"K": "secret-2"}}}}
	for _, c := range Diff(old, new, nil) {
		for _, e := range c.Env {
			if e.Old != Hidden || e.New != Hidden {
				t.Errorf("value shown: %+v", e)
			}
		}
	}
}
