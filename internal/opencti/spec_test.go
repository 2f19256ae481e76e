package opencti

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/socflow/socflow/internal/spec"
)

func ptr[T any](v T) *T { return &v }

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustLoad(t testing.TB, name string) Instance {
	t.Helper()
	in, err := Load(readTestdata(t, name))
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	return in
}

// minimalDefaulted is testdata/minimal.yaml with every default spelled out,
// so a changed default shows up here and not only in a golden file.
func minimalDefaulted() Instance {
	return Instance{
		Name: "demo",
		OpenCTI: Settings{
			Version:         "6.9.3",
			PlatformCommand: "node build/back.js",
			PlatformDir:     "/opt/opencti",
			WorkerCommand:   "python3 worker.py",
			WorkerDir:       "/opt/opencti-worker",
			Workers:         ptr(3),
			Port:            8080,
			MetricsPort:     14269,
			PublicURL:       "http://localhost:8080",
			LogLevel:        LogInfo,
			AdminEmail:      "admin@opencti.local",
			AdminPassword:   "env:OPENCTI_ADMIN_PASSWORD",
			Reaper:          "/usr/local/bin/socflow-reap",
		},
		Pebble: spec.Pebble{Socket: "/var/lib/pebble/default/.pebble.socket"},
		Integrations: Integrations{
			OpenSearch: &spec.OpenSearch{URLs: []string{"http://127.0.0.1:9200"}, Engine: spec.EngineOpenSearch},
			RabbitMQ: &spec.RabbitMQ{
				Host: "127.0.0.1", Port: 5672, ManagementPort: 15672, VHost: "/",
				Username: "opencti", Password: "env:RABBITMQ_PASSWORD", QueueType: spec.QueueClassic, QueuePrefix: "demo",
			},
			Redis: &spec.Redis{Host: "127.0.0.1", Port: 6379, Mode: spec.RedisSingle, Namespace: "demo", Trimming: ptr(2000000)},
			S3: &spec.S3{
				Endpoint: "http://127.0.0.1:9000", Region: "us-east-1", Bucket: "opencti-bucket",
				AccessKey: "env:S3_ACCESS_KEY", SecretKey: "env:S3_SECRET_KEY",
			},
		},
	}
}

func fullParsed() Instance {
	return Instance{
		Name: "cti-prod",
		OpenCTI: Settings{
			Version:              "7.260224.0",
			PlatformCommand:      "node --enable-source-maps build/back.js",
			PlatformDir:          "/srv/opencti",
			WorkerCommand:        "python3 -u worker.py",
			WorkerDir:            "/srv/opencti-worker",
			Workers:              ptr(5),
			Port:                 4000,
			MetricsPort:          9464,
			PublicURL:            "https://cti.example.com/opencti",
			BasePath:             "/opencti",
			LogLevel:             LogDebug,
			AdminEmail:           "soc-admin@example.com",
			AdminPassword:        "file:/etc/socflow/admin-password",
			AdminToken:           "6f1c2f4e-8a3b-4c5d-9e7f-0a1b2c3d4e5f",
			HealthAccessKey:      "store:opencti/health-key",
			EncryptionKey:        "env:OPENCTI_ENCRYPTION_KEY",
			AllowOldDependencies: true,
			Env:                  map[string]string{"APP__PYTHON_EXECUTION_VENV": "/opt/opencti/.venv"},
			Reaper:               "/opt/socflow/bin/socflow-reap",
		},
		Pebble: spec.Pebble{URL: "https://10.0.0.5:8443", ServerCert: "file:/etc/socflow/pebble-identity.pem",
			ClientCert: "file:/etc/socflow/pebble-client.pem", ClientKey: "store:pebble/client-key"},
		Integrations: Integrations{
			OpenSearch: &spec.OpenSearch{
				URLs:     []string{"https://os-0.example.com:9200", "https://os-1.example.com:9200"},
				Username: "opencti", Password: "store:opensearch/password",
				CA: "file:/etc/socflow/opensearch-ca.pem", Engine: spec.EngineOpenSearch, Replicas: 1,
				AllowMissingModules: []string{"index-management"},
			},
			RabbitMQ: &spec.RabbitMQ{
				Host: "rabbitmq.example.com", Port: 5671, ManagementPort: 15671, ManagementSSL: true,
				UseSSL: true, VHost: "opencti", Username: "opencti", Password: "store:rabbitmq/password",
				QueueType: spec.QueueQuorum, QueuePrefix: "cti-prod-q",
			},
			Redis: &spec.Redis{
				Host: "redis.example.com", Port: 6380, Password: "store:redis/password",
				Mode: spec.RedisSingle, Namespace: "cti-prod-ns", UseSSL: true, Trimming: ptr(1000000),
			},
			S3: &spec.S3{
				Endpoint: "https://s3.example.com", Region: "eu-west-1", Bucket: "cti-prod-files",
				AccessKey: "store:s3/access-key", SecretKey: "store:s3/secret-key",
			},
		},
	}
}

func TestLoadTestdata(t *testing.T) {
	tests := []struct {
		file string
		want Instance
	}{
		{"minimal.yaml", minimalDefaulted()},
		{"minimal.json", minimalDefaulted()},
		{"full.yaml", fullParsed()},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := mustLoad(t, tt.file)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Load(%s) =\n%s\nwant\n%s", tt.file, dump(got), dump(tt.want))
			}
		})
	}
}

func TestFullSpecNeedsNoDefaults(t *testing.T) {
	in, err := Parse(readTestdata(t, "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, in.WithDefaults()) {
		t.Error("full.yaml should set every defaulted field")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"unknown top-level field", "name: demo\nnmae: x\n", `unknown field "nmae"`},
		{"unknown nested field", "opencti:\n  wrokers: 3\n", `unknown field "opencti.wrokers"`},
		{"unknown integration field", "integrations:\n  redis:\n    hostname: x\n", `unknown field "integrations.redis.hostname"`},
		{"unknown pebble field", `{"pebble": {"socket": "/s", "tls": true}}`, `unknown field "pebble.tls"`},
		{"wrong case", "opencti:\n  adminemail: a@b.c\n", `unknown field "opencti.adminemail" (did you mean "adminEmail"?)`},
		{"wrong case top level", "Name: demo\n", `unknown field "Name" (did you mean "name"?)`},
		{"duplicate key", "name: a\nname: b\n", `already set in map`},
		{"wrong type", "opencti:\n  workers: many\n", `cannot unmarshal string`},
		{"not an object", "- name: demo\n", `cannot unmarshal array`},
		{"bad yaml", "name: [\n", `cannot parse instance spec`},
		{"bad json", `{"name": "demo"`, `cannot parse instance spec`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want error containing %q", tt.data, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.data, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "cannot parse instance spec: ") {
				t.Errorf("error %q should start with the failed action", err)
			}
		})
	}
}

func TestParseDoesNotDefault(t *testing.T) {
	in, err := Parse(readTestdata(t, "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if in.OpenCTI.Workers != nil || in.OpenCTI.Port != 0 || in.Integrations.OpenSearch.URLs != nil {
		t.Errorf("Parse filled defaults: %s", dump(in))
	}
}

func TestEmptyDocumentFailsValidation(t *testing.T) {
	_, err := Load(nil)
	var ve *spec.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Load(nil) error = %v, want *ValidationError", err)
	}
	if !strings.Contains(err.Error(), "integrations: missing integration(s): opensearch, rabbitmq, redis, s3") {
		t.Errorf("error = %q", err)
	}
}

func TestWithDefaultsDoesNotMutate(t *testing.T) {
	in, err := Parse(readTestdata(t, "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	before := dump(in)
	out := in.WithDefaults()
	out.OpenCTI.Workers = ptr(7)
	*out.Integrations.Redis.Trimming = 1
	out.Integrations.OpenSearch.URLs[0] = "http://changed"
	out.Integrations.RabbitMQ.Host = "changed"
	out.Integrations.S3.Bucket = "changed"
	if dump(in) != before {
		t.Errorf("changing WithDefaults' result changed its receiver:\n%s\nwas\n%s", dump(in), before)
	}

	raw, err := Parse(readTestdata(t, "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	before = dump(raw)
	_ = raw.WithDefaults()
	if dump(raw) != before {
		t.Error("WithDefaults filled its receiver")
	}
}

func TestWithDefaultsIsIdempotent(t *testing.T) {
	in := mustLoad(t, "minimal.yaml")
	if !reflect.DeepEqual(in, in.WithDefaults()) {
		t.Error("WithDefaults changed an already defaulted spec")
	}
}

func TestDefaultPublicURLFollowsPortAndBasePath(t *testing.T) {
	in, err := Parse(readTestdata(t, "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	in.OpenCTI.Port = 4000
	in.OpenCTI.BasePath = "/cti"
	if got, want := in.WithDefaults().OpenCTI.PublicURL, "http://localhost:4000/cti"; got != want {
		t.Errorf("PublicURL = %q, want %q", got, want)
	}
}

func dump(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}
