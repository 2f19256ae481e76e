package opencti

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
)

// TestGenerators checks that what socflow generates passes the checks OpenCTI's values must.
func TestGenerators(t *testing.T) {
	n := 0
	for _, s := range SecretTable {
		if s.Generate == nil {
			continue
		}
		n++
		v, err := s.Generate.New()
		if err != nil {
			t.Fatalf("%s: %v", s.Field, err)
		}
		if err := s.Check(v); err != nil {
			t.Errorf("generated %s %q rejected: %v", s.Field, v, err)
		}
		if s.Generated == nil || s.Generate.Key == "" {
			t.Errorf("%s is generated but has no store key or InstanceSecrets field", s.Field)
		}
	}
	if n != 3 {
		t.Errorf("%d generated secrets, want adminToken, healthAccessKey and encryptionKey", n)
	}
}

// TestSecretTableCoversEverySecretRef finds every SecretRef of a spec with all sections
// by reflection, so a secret field added to the spec without a table row fails here.
func TestSecretTableCoversEverySecretRef(t *testing.T) {
	inst := mustLoad(t, "full.yaml")
	var found []*spec.SecretRef
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				f := v.Field(i)
				if f.Type() == reflect.TypeFor[spec.SecretRef]() {
					found = append(found, f.Addr().Interface().(*spec.SecretRef))
					continue
				}
				walk(f)
			}
		}
	}
	walk(reflect.ValueOf(&inst))
	refs := SecretTable.Refs(&inst)
	if len(refs) != len(found) {
		t.Errorf("table has %d refs, the spec %d", len(refs), len(found))
	}
	for _, r := range found {
		if !slices.Contains(refs, r) {
			t.Errorf("a SecretRef of the spec (now %q) has no row in SecretTable", *r)
		}
	}
	// The generated secrets' references travel in InstanceSecrets, one field each.
	if got, want := reflect.TypeFor[InstanceSecrets]().NumField(), 3; got != want {
		t.Errorf("InstanceSecrets has %d fields, the table %d generated secrets", got, want)
	}
}

// TestSecretTableMatchesThePlan checks the table's Uses against the planned layer: each
// secret reaches exactly the services and variables its row names, and no variable
// holds a secret the table does not declare (so a diff's mask hides every one).
func TestSecretTableMatchesThePlan(t *testing.T) {
	in := input(t, func(i *Instance) {
		i.Integrations.OpenSearch.URLs = []string{"https://127.0.0.1:9200"}
		i.Integrations.OpenSearch.Username = "opencti"
		i.Integrations.OpenSearch.Password = "env:OS_PASSWORD"
		i.Integrations.OpenSearch.CA = "file:/etc/ca.pem"
		i.Integrations.Redis.Password = "env:REDIS_PASSWORD"
	}, func(s *Secrets) {
		s.OpenSearchPassword, s.OpenSearchCA, s.RedisPassword = "os-pw", testCA, "redis-pw"
	})
	p, err := NewPlan(in)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]string{}
	for _, s := range SecretTable {
		if s.Value == nil {
			if len(s.Uses) > 0 {
				t.Errorf("%s has uses but no value", s.Field)
			}
			continue
		}
		v := *s.Value(&in.Secrets)
		if v == "" {
			t.Fatalf("test input leaves %s empty", s.Field)
		}
		values[v] = s.Field
		for _, u := range s.Uses {
			if u.Env == "" {
				if !slices.ContainsFunc(p.Files, func(f layer.File) bool { return string(f.Content) == v }) {
					t.Errorf("%s: no file carries it", s.Field)
				}
				continue
			}
			n := 0
			for name, svc := range p.Layer.Services {
				if u.Service == name || strings.HasSuffix(u.Service, "*") && strings.HasPrefix(name, strings.TrimSuffix(u.Service, "*")) {
					n++
					if svc.Environment[u.Env] != v {
						t.Errorf("%s: service %s has %s=%q", s.Field, name, u.Env, svc.Environment[u.Env])
					}
				}
			}
			if n == 0 {
				t.Errorf("%s: no service matches %s", s.Field, u.Service)
			}
		}
	}
	for name, svc := range p.Layer.Services {
		for k, v := range svc.Environment {
			if f, ok := values[v]; ok && !SecretTable.Carries(name, k) {
				t.Errorf("%s.%s holds %s but the table does not say so", name, k, f)
			}
		}
	}
}

// TestSecretTableMasksDiffs shows the table's Mask hiding a rotated secret in a layer diff.
func TestSecretTableMasksDiffs(t *testing.T) {
	old, err := NewPlan(input(t, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	new, err := NewPlan(input(t, func(i *Instance) { i.OpenCTI.LogLevel = LogDebug }, func(s *Secrets) { s.RabbitMQPassword = "rotated-pw" }))
	if err != nil {
		t.Fatal(err)
	}
	var platform layer.Change
	for _, c := range layer.Diff(old.Layer, new.Layer, SecretTable.Mask) {
		if c.Service == PlatformService {
			platform = c
		}
	}
	want := []layer.EnvChange{
		{Key: "APP__APP_LOGS__LOGS_LEVEL", Kind: layer.Changed, Old: "info", New: "debug"},
		{Key: "RABBITMQ__PASSWORD", Kind: layer.Changed, Old: "<secret>", New: "<secret>"},
	}
	if !reflect.DeepEqual(platform.Env, want) {
		t.Errorf("platform env changes = %+v, want %+v", platform.Env, want)
	}
}

func TestMaskShowsPlainSettingsOnly(t *testing.T) {
	for _, tc := range []struct{ service, key, value, want string }{
		{PlatformService, "APP__APP_LOGS__LOGS_LEVEL", "debug", "debug"},
		{PlatformService, "REDIS__PASSWORD", "pw", "<secret>"},
		{PlatformService, "APP__PYTHON_EXECUTION_VENV", "/venv", layer.Hidden},
		{"worker-2", "OPENCTI_TOKEN", "tok", "<secret>"},
		{"worker-2", "WORKER_LOG_LEVEL", "info", "info"},
	} {
		if got := Mask(tc.service, tc.key, tc.value); got != tc.want {
			t.Errorf("Mask(%s, %s) = %q, want %q", tc.service, tc.key, got, tc.want)
		}
	}
}
