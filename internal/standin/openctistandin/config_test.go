package openctistandin

import (
	"reflect"
	"strings"
	"testing"
)

const testToken = "6f7c1e52-8a3b-4c9d-9e0f-1a2b3c4d5e6f"

// envOf turns a map into a getenv function.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFromEnvDefaults(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(map[string]string{"APP__ADMIN__TOKEN": testToken}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Port: 4000, BaseURL: "http://localhost:4000/", AdminEmail: "admin@opencti.io", AdminPassword: "ChangeMe",
		AdminToken: testToken, HealthAccessKey: "ChangeMe", MetricsPort: 14269, SMTP: SMTPConfig{Hostname: "localhost", Port: 25},
		Redis: RedisConfig{Hostname: "localhost", Port: 6379, Mode: "single"},
		RabbitMQ: RabbitMQConfig{Hostname: "localhost", Port: 5672, PortManagement: 15672, Username: "guest", Password: "guest", VHost: "/",
			QueueType: "classic"},
		Search: SearchConfig{URLs: []string{"http://localhost:9200"}, IndexPrefix: "opencti", Replicas: 1},
		S3: S3Config{Endpoint: "localhost", Port: 9000, AccessKey: "ChangeMe", SecretKey: "ChangeMe",
			BucketName: "opencti-bucket", BucketRegion: "us-east-1"},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestConfigFromEnvFull(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(map[string]string{
		"APP__PORT": "8080", "APP__BASE_URL": "https://cti.example/", "APP__BASE_PATH": "opencti/",
		"APP__ADMIN__EMAIL": "a@b.c", "APP__ADMIN__PASSWORD": "pw", "APP__ADMIN__TOKEN": testToken,
		"APP__HEALTH_ACCESS_KEY": "k1", "APP__ENCRYPTION_KEY": "ek",
		"REDIS__HOSTNAME": "redis", "REDIS__PORT": "6380", "REDIS__PASSWORD": "rp", "REDIS__MODE": "single",
		"REDIS__NAMESPACE": "cti1", "REDIS__TRIMMING": "2000000", "RABBITMQ__QUEUE_PREFIX": "cti1", "RABBITMQ__QUEUE_TYPE": "quorum",
		"ELASTICSEARCH__NUMBER_OF_REPLICAS": "0", "APP__TELEMETRY__METRICS__ENABLED": "true",
		"APP__TELEMETRY__METRICS__EXPORTER_PROMETHEUS": "14270", "APP__PYTHON_EXECUTION_VENV": "/opt/venv",
		"SMTP__HOSTNAME": "mail", "SMTP__PORT": "2525",
		"RABBITMQ__HOSTNAME": "mq", "RABBITMQ__PORT": "5671", "RABBITMQ__PORT_MANAGEMENT": "15671",
		"RABBITMQ__MANAGEMENT_SSL": "true", "RABBITMQ__USERNAME": "u", "RABBITMQ__PASSWORD": "p",
		"RABBITMQ__VHOST": "cti", "RABBITMQ__USE_SSL": "TRUE",
		"ELASTICSEARCH__URL": `["https://os1:9200", "https://os2:9200"]`, "ELASTICSEARCH__USERNAME": "eu",
		"ELASTICSEARCH__PASSWORD": "ep", "ELASTICSEARCH__INDEX_PREFIX": "cti1",
		"MINIO__ENDPOINT": "s3.local", "MINIO__PORT": "443", "MINIO__USE_SSL": "true",
		"MINIO__ACCESS_KEY": "ak", "MINIO__SECRET_KEY": "sk", "MINIO__BUCKET_NAME": "b", "MINIO__BUCKET_REGION": "eu-west-1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Port: 8080, BaseURL: "https://cti.example/", BasePath: "/opencti", AdminEmail: "a@b.c", AdminPassword: "pw",
		AdminToken: testToken, HealthAccessKey: "k1", EncryptionKey: "ek",
		MetricsEnabled: true, MetricsPort: 14270, PythonVenv: "/opt/venv", SMTP: SMTPConfig{Hostname: "mail", Port: 2525},
		Redis: RedisConfig{Hostname: "redis", Port: 6380, Password: "rp", Mode: "single", Namespace: "cti1", Trimming: 2000000},
		RabbitMQ: RabbitMQConfig{Hostname: "mq", Port: 5671, PortManagement: 15671, ManagementSSL: true,
			Username: "u", Password: "p", VHost: "cti", UseSSL: true, QueuePrefix: "cti1", QueueType: "quorum"},
		Search: SearchConfig{URLs: []string{"https://os1:9200", "https://os2:9200"}, Username: "eu", Password: "ep", IndexPrefix: "cti1"},
		S3: S3Config{Endpoint: "s3.local", Port: 443, UseSSL: true, AccessKey: "ak", SecretKey: "sk",
			BucketName: "b", BucketRegion: "eu-west-1"},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("full:\n got %+v\nwant %+v", cfg, want)
	}
	if got := cfg.S3.Address(); got != "s3.local:443" {
		t.Errorf("S3 address = %q", got)
	}
}

func TestSearchURLForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"http://127.0.0.1:9200", []string{"http://127.0.0.1:9200"}},
		{` ["http://a:9200"] `, []string{"http://a:9200"}},
		{`["http://a:9200","https://b:9200"]`, []string{"http://a:9200", "https://b:9200"}},
		{`"http://a:9200"`, []string{"http://a:9200"}},
	} {
		cfg, err := ConfigFromEnv(envOf(map[string]string{"APP__ADMIN__TOKEN": testToken, "ELASTICSEARCH__URL": tc.in}))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(cfg.Search.URLs, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.in, cfg.Search.URLs, tc.want)
		}
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string // the variable the error must name
	}{
		{map[string]string{"REDIS__TRIMMING": "-1"}, "REDIS__TRIMMING"},
		{map[string]string{"APP__PORT": "http"}, "APP__PORT"},
		{map[string]string{"MINIO__PORT": "99999"}, "MINIO__PORT"},
		{map[string]string{"MINIO__USE_SSL": "yes please"}, "MINIO__USE_SSL"},
		{map[string]string{"MINIO__ENDPOINT": "http://minio"}, "MINIO__ENDPOINT"},
		{map[string]string{"MINIO__ENDPOINT": "minio:9000"}, "MINIO__ENDPOINT"},
		{map[string]string{"RABBITMQ__USE_SSL": "maybe"}, "RABBITMQ__USE_SSL"},
		{map[string]string{"ELASTICSEARCH__URL": `["http://a:9200"`}, "ELASTICSEARCH__URL"},
		{map[string]string{"ELASTICSEARCH__URL": `[]`}, "ELASTICSEARCH__URL"},
		{map[string]string{"ELASTICSEARCH__URL": `localhost:9200`}, "ELASTICSEARCH__URL"},
		{map[string]string{"REDIS__MODE": "cluster"}, "REDIS__MODE"},
	} {
		env := map[string]string{"APP__ADMIN__TOKEN": testToken}
		for k, v := range tc.env {
			env[k] = v
		}
		_, err := ConfigFromEnv(envOf(env))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "cannot ") {
			t.Errorf("%v: got error %v, want a \"cannot ...\" error naming %s", tc.env, err, tc.want)
		}
	}
}

// TestConfigFromEnvLeavesTokenToInit: like OpenCTI, a bad admin token is not a
// start-up error; it fails ≈ 40 s into the boot (checkAdminToken).
func TestConfigFromEnvLeavesTokenToInit(t *testing.T) {
	for _, tok := range []string{"", "ChangeMe"} {
		if _, err := ConfigFromEnv(envOf(map[string]string{"APP__ADMIN__TOKEN": tok})); err != nil {
			t.Errorf("token %q refused at config time: %v", tok, err)
		}
	}
}

func TestPythonPath(t *testing.T) {
	if got := (Config{PythonVenv: "/opt/venv"}).pythonPath(); got != "/opt/venv/bin/python3" {
		t.Errorf("venv python = %q", got)
	}
	if got := (Config{}).pythonPath(); got != "python3" {
		t.Errorf("default python = %q", got)
	}
}

func TestNormaliseBasePath(t *testing.T) {
	for in, want := range map[string]string{"": "", "/": "", "opencti": "/opencti", "/opencti/": "/opencti", "/a/b": "/a/b"} {
		if got := normaliseBasePath(in); got != want {
			t.Errorf("normaliseBasePath(%q) = %q, want %q", in, got, want)
		}
	}
}
