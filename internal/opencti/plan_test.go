package opencti

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/socflow/socflow/internal/golden"
	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
	"sigs.k8s.io/yaml"
)

const baseSpec = `
name: demo
opencti:
  version: 6.9.3
  adminPassword: env:OPENCTI_ADMIN_PASSWORD
pebble:
  socket: /var/lib/pebble/default/.pebble.socket
integrations:
  opensearch: {}
  rabbitmq: {host: 127.0.0.1, username: opencti, password: env:RABBITMQ_PASSWORD}
  redis: {host: 127.0.0.1}
  s3: {accessKey: env:S3_ACCESS_KEY, secretKey: env:S3_SECRET_KEY}
`

const (
	testToken     = "6f1c2f4e-8a3b-4c5d-9e7f-0a1b2c3d4e5f"
	testHealthKey = "4b1e2d3c-health-key"
	testCA        = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
)

var testEncryptionKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("k"), 32))

func baseSecrets() Secrets {
	return Secrets{
		AdminPassword:    "admin-pw",
		AdminToken:       testToken,
		HealthAccessKey:  testHealthKey,
		EncryptionKey:    testEncryptionKey,
		RabbitMQPassword: "rabbit-pw",
		S3AccessKey:      "s3-access",
		S3SecretKey:      "s3-secret",
	}
}

// input parses baseSpec, applies edit before defaulting (so defaults such as
// publicURL follow the edit), then defaults and validates like Load.
func input(t *testing.T, edit func(*Instance), editSecrets func(*Secrets)) Input {
	t.Helper()
	inst, err := Parse([]byte(baseSpec))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&inst)
	}
	inst = inst.WithDefaults()
	if err := inst.Validate(); err != nil {
		t.Fatalf("test spec is invalid: %v", err)
	}
	s := baseSecrets()
	if editSecrets != nil {
		editSecrets(&s)
	}
	return Input{Instance: inst, Secrets: s}
}

func TestOpenCTIGolden(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Instance)
		secrets func(*Secrets)
		files   []layer.File
	}{
		{name: "defaults"},
		{name: "base-path-https-public-url", edit: func(i *Instance) {
			i.OpenCTI.BasePath = "/opencti"
			i.OpenCTI.PublicURL = "https://cti.example.com/opencti"
			i.OpenCTI.Port = 4000
		}},
		{name: "opensearch-ca", edit: func(i *Instance) {
			i.Integrations.OpenSearch.URLs = []string{"https://os-0.example.com:9200", "https://os-1.example.com:9200"}
			i.Integrations.OpenSearch.Username = "opencti"
			i.Integrations.OpenSearch.Password = "file:/etc/socflow/os-password"
			i.Integrations.OpenSearch.CA = "file:/etc/socflow/os-ca.pem"
			i.Integrations.OpenSearch.Replicas = 1
		}, secrets: func(s *Secrets) {
			s.OpenSearchPassword = "os-pw"
			s.OpenSearchCA = testCA
		}, files: []layer.File{{Path: "/opt/opencti/config/opensearch.pem", Content: []byte(testCA), Perm: 0o644}}},
		{name: "s3-https-no-port", edit: func(i *Instance) {
			i.Integrations.S3.Endpoint = "https://s3.example.com"
		}},
		{name: "s3-http-no-port", edit: func(i *Instance) {
			i.Integrations.S3.Endpoint = "http://minio.internal"
		}},
		{name: "s3-https-port", edit: func(i *Instance) {
			i.Integrations.S3.Endpoint = "https://s3.example.com:8443/"
			i.Integrations.S3.Region = "eu-west-1"
			i.Integrations.S3.Bucket = "cti-files"
		}},
		{name: "workers-1", edit: func(i *Instance) { i.OpenCTI.Workers = ptr(1) }},
		{name: "loki", edit: func(i *Instance) { i.Logs = &spec.Logs{Loki: "https://loki.example.com:3100/loki/api/v1/push"} }},
		{name: "workers-5", edit: func(i *Instance) { i.OpenCTI.Workers = ptr(5) }},
		{name: "everything-set", edit: func(i *Instance) {
			o := &i.OpenCTI
			o.Version = "7.260224.0"
			o.PlatformCommand, o.PlatformDir = "node build/back.js --trace-warnings", "/srv/opencti"
			o.WorkerCommand, o.WorkerDir = "python3 -u worker.py", "/srv/opencti-worker"
			o.Workers, o.Port, o.MetricsPort = ptr(2), 4000, 9464
			o.LogLevel, o.AdminEmail = LogDebug, "soc@example.com"
			i.Integrations.OpenSearch.Engine = spec.EngineElk
			i.Integrations.RabbitMQ = &spec.RabbitMQ{
				Host: "rabbitmq.example.com", Port: 5671, ManagementPort: 15671, ManagementSSL: true,
				UseSSL: true, VHost: "opencti", Username: "cti", Password: "store:rmq", QueueType: spec.QueueQuorum,
			}
			i.Integrations.Redis = &spec.Redis{Host: "::1", Port: 6380, Password: "store:redis", UseSSL: true, Trimming: ptr(500000)}
		}, secrets: func(s *Secrets) {
			s.RedisPassword = "redis-pw"
			s.HealthAccessKey = "key/with=reserved&chars"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(t, tt.edit, tt.secrets)
			p, err := NewPlan(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Layer.YAML()
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, tt.name+".yaml", got)
			if !reflect.DeepEqual(p.Files, tt.files) {
				t.Errorf("Files = %+v, want %+v", p.Files, tt.files)
			}
			// The YAML must read back as the same layer, so nothing is lost in rendering.
			var back layer.Layer
			if err := yaml.UnmarshalStrict(got, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, p.Layer) {
				t.Errorf("YAML does not round-trip:\n%s", got)
			}
		})
	}
}

// TestOpenCTIDefaults spells the default layer out as a struct, so the
// contract can be reviewed here and not only in a generated golden file.
func TestOpenCTIDefaults(t *testing.T) {
	in := input(t, nil, nil)
	p, err := NewPlan(in)
	if err != nil {
		t.Fatal(err)
	}
	worker := func(i int) layer.Service {
		return layer.Service{
			Summary:    fmt.Sprintf("OpenCTI worker %d", i),
			Startup:    layer.StartupDisabled,
			Override:   layer.OverrideReplace,
			Command:    "python3 worker.py",
			After:      []string{"platform"},
			Requires:   []string{"platform"},
			WorkingDir: "/opt/opencti-worker",
			Environment: map[string]string{
				"OPENCTI_URL":      "http://127.0.0.1:8080",
				"OPENCTI_TOKEN":    testToken,
				"WORKER_LOG_LEVEL": "info",
				"SOCFLOW_INSTANCE": "demo",
			},
			KillDelay: layer.Duration(10 * time.Second),
			OnFailure: layer.ActionIgnore,
		}
	}
	want := layer.Layer{
		Summary:     "OpenCTI 6.9.3 for socflow instance demo",
		Description: "Managed by socflow: services are started explicitly, the platform first and the workers only once it is healthy.",
		Services: map[string]layer.Service{
			"platform": {
				Summary:    "OpenCTI platform",
				Startup:    layer.StartupDisabled,
				Override:   layer.OverrideReplace,
				Command:    "/usr/local/bin/socflow-reap --instance demo --plan " + p.PlatformDigest + " -- node build/back.js",
				WorkingDir: "/opt/opencti",
				KillDelay:  layer.Duration(30 * time.Second),
				Environment: map[string]string{
					"APP__PORT":                  "8080",
					"APP__BASE_URL":              "http://localhost:8080",
					"APP__ADMIN__EMAIL":          "admin@opencti.local",
					"APP__ADMIN__PASSWORD":       "admin-pw",
					"APP__ADMIN__TOKEN":          testToken,
					"APP__HEALTH_ACCESS_KEY":     testHealthKey,
					"APP__ENCRYPTION_KEY":        testEncryptionKey,
					"APP__APP_LOGS__LOGS_LEVEL":  "info",
					"PROVIDERS__LOCAL__STRATEGY": "LocalStrategy",
					"NODE_OPTIONS":               "--max-old-space-size=8096",

					"APP__TELEMETRY__METRICS__ENABLED":             "true",
					"APP__TELEMETRY__METRICS__EXPORTER_PROMETHEUS": "14269",

					"REDIS__HOSTNAME":  "127.0.0.1",
					"REDIS__PORT":      "6379",
					"REDIS__MODE":      "single",
					"REDIS__USE_SSL":   "false",
					"REDIS__TRIMMING":  "2000000",
					"REDIS__NAMESPACE": "demo",

					"RABBITMQ__HOSTNAME":        "127.0.0.1",
					"RABBITMQ__PORT":            "5672",
					"RABBITMQ__PORT_MANAGEMENT": "15672",
					"RABBITMQ__MANAGEMENT_SSL":  "false",
					"RABBITMQ__USERNAME":        "opencti",
					"RABBITMQ__PASSWORD":        "rabbit-pw",
					"RABBITMQ__VHOST":           "/",
					"RABBITMQ__USE_SSL":         "false",
					"RABBITMQ__QUEUE_TYPE":      "classic",
					"RABBITMQ__QUEUE_PREFIX":    "demo",

					"ELASTICSEARCH__URL":                `["http://127.0.0.1:9200"]`,
					"ELASTICSEARCH__ENGINE_SELECTOR":    "opensearch",
					"ELASTICSEARCH__INDEX_PREFIX":       "demo",
					"ELASTICSEARCH__NUMBER_OF_REPLICAS": "0",

					"MINIO__ENDPOINT":      "127.0.0.1",
					"MINIO__PORT":          "9000",
					"MINIO__USE_SSL":       "false",
					"MINIO__ACCESS_KEY":    "s3-access",
					"MINIO__SECRET_KEY":    "s3-secret",
					"MINIO__BUCKET_NAME":   "opencti-bucket",
					"MINIO__BUCKET_REGION": "us-east-1",

					"SOCFLOW_INSTANCE": "demo",
				},
			},
			"worker-0": worker(0),
			"worker-1": worker(1),
			"worker-2": worker(2),
		},
	}
	if !reflect.DeepEqual(p.Layer, want) {
		gotY, _ := p.Layer.YAML()
		wantY, _ := want.YAML()
		t.Errorf("layer =\n%s\nwant\n%s", gotY, wantY)
	}
	if p.Files != nil {
		t.Errorf("Files = %+v, want none without a CA", p.Files)
	}
	if want := []layer.Dir{{Path: "/opt/opencti/logs", Perm: 0o755}}; !reflect.DeepEqual(p.Dirs, want) {
		t.Errorf("Dirs = %+v, want %+v", p.Dirs, want)
	}
}

// TestPlatformDigest pins what the digest follows: the platform's definition, secrets
// included (a rotation must show), and not the workers or the reaper's own arguments.
func TestPlatformDigest(t *testing.T) {
	digest := func(edit func(*Instance), editSecrets func(*Secrets)) string {
		p, err := NewPlan(input(t, edit, editSecrets))
		if err != nil {
			t.Fatal(err)
		}
		return p.PlatformDigest
	}
	base := digest(nil, nil)
	if len(base) != 12 || base != digest(nil, nil) {
		t.Fatalf("digest %q: want 12 hex digits, stable across calls", base)
	}
	for name, d := range map[string]string{
		"log level":       digest(func(i *Instance) { i.OpenCTI.LogLevel = LogDebug }, nil),
		"rabbitmq secret": digest(nil, func(s *Secrets) { s.RabbitMQPassword = "other" }),
		"platform port":   digest(func(i *Instance) { i.OpenCTI.Port = 4000 }, nil),
	} {
		if d == base {
			t.Errorf("a change of %s left the digest at %s", name, base)
		}
	}
	if d := digest(func(i *Instance) { i.OpenCTI.Workers = ptr(5) }, nil); d != base {
		t.Errorf("a worker-count change moved the platform digest from %s to %s", base, d)
	}
	if d := digest(func(i *Instance) { i.OpenCTI.Reaper = "/opt/bin/socflow-reap" }, nil); d != base {
		t.Errorf("the reaper's path moved the platform digest from %s to %s", base, d)
	}
}

// TestPlatformEnvIsReserved keeps ReservedEnv, which opencti.env may not set,
// in step with every variable the plan derives itself.
func TestPlatformEnvIsReserved(t *testing.T) {
	in := input(t, func(i *Instance) {
		i.OpenCTI.BasePath = "/cti"
		i.Integrations.OpenSearch.Username = "u"
		i.Integrations.OpenSearch.Password = "env:OS_PASSWORD"
		i.Integrations.OpenSearch.CA = "env:OS_CA"
		i.Integrations.OpenSearch.URLs = []string{"https://127.0.0.1:9200"}
		i.Integrations.Redis.Password = "env:REDIS_PASSWORD"
	}, func(s *Secrets) { s.OpenSearchPassword, s.OpenSearchCA, s.RedisPassword = "p", testCA, "r" })
	p, err := NewPlan(in)
	if err != nil {
		t.Fatal(err)
	}
	for k := range p.Layer.Services[PlatformService].Environment {
		if _, ok := ReservedEnv[k]; !ok {
			t.Errorf("the plan sets %s, which ReservedEnv does not reserve: opencti.env could shadow it", k)
		}
	}
}

func TestExtraEnv(t *testing.T) {
	p, err := NewPlan(input(t, func(i *Instance) {
		i.OpenCTI.Env = map[string]string{"APP__PYTHON_EXECUTION_VENV": "/opt/opencti/.venv"}
		i.OpenCTI.Reaper = NoReaper
	}, nil))
	if err != nil {
		t.Fatal(err)
	}
	pl := p.Layer.Services[PlatformService]
	if got := pl.Environment["APP__PYTHON_EXECUTION_VENV"]; got != "/opt/opencti/.venv" {
		t.Errorf("APP__PYTHON_EXECUTION_VENV = %q", got)
	}
	if pl.Command != "node build/back.js" {
		t.Errorf("with reaper none the command is %q, want the platform command alone", pl.Command)
	}
}

func TestReadyCheck(t *testing.T) {
	in := input(t, func(i *Instance) {
		i.OpenCTI.Port = 4000
		i.OpenCTI.BasePath = "/cti"
	}, func(s *Secrets) { s.HealthAccessKey = "a b/c=d&e" })
	want := layer.Layer{
		Summary: "OpenCTI platform readiness",
		Checks: map[string]layer.Check{
			"platform-health": {
				Override:  layer.OverrideReplace,
				Level:     layer.LevelReady,
				Period:    layer.Duration(time.Minute),
				Timeout:   layer.Duration(20 * time.Second),
				Threshold: 5,
				HTTP:      &layer.HTTPCheck{URL: "http://127.0.0.1:4000/cti/health?health_access_key=a+b%2Fc%3Dd%26e"},
			},
		},
	}
	got := ReadyCheck(in)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadyCheck() = %+v, want %+v", got, want)
	}
	y, err := got.YAML()
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "ready-check.yaml", y)
}

func TestURLs(t *testing.T) {
	in := input(t, nil, nil)
	if got, want := LocalURL(in), "http://127.0.0.1:8080"; got != want {
		t.Errorf("LocalURL() = %q, want %q", got, want)
	}
	if got, want := HealthURL(in), "http://127.0.0.1:8080/health?health_access_key="+testHealthKey; got != want {
		t.Errorf("HealthURL() = %q, want %q", got, want)
	}
}

func TestWorkerServices(t *testing.T) {
	tests := []struct {
		n    int
		want []string
	}{
		{0, []string{}},
		{-1, []string{}},
		{1, []string{"worker-0"}},
		{11, []string{"worker-0", "worker-1", "worker-2", "worker-3", "worker-4", "worker-5",
			"worker-6", "worker-7", "worker-8", "worker-9", "worker-10"}},
	}
	for _, tt := range tests {
		if got := WorkerServices(tt.n); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("WorkerServices(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestOpenCTIDoesNotMutateInput(t *testing.T) {
	in := input(t, nil, nil)
	before := fmt.Sprintf("%+v", in.Instance)
	urls := in.Instance.Integrations.OpenSearch.URLs
	if _, err := NewPlan(in); err != nil {
		t.Fatal(err)
	}
	if after := fmt.Sprintf("%+v", in.Instance); after != before || urls[0] != "http://127.0.0.1:9200" {
		t.Errorf("OpenCTI changed its input:\n%s\nwas\n%s", after, before)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	in := input(t, nil, nil)
	for _, out := range []string{fmt.Sprintf("%v", in), fmt.Sprintf("%+v", in), fmt.Sprintf("%#v", in)} {
		if strings.Contains(out, "admin-pw") || strings.Contains(out, "s3-secret") {
			t.Errorf("printing an Input leaks secrets: %s", out)
		}
	}
}
