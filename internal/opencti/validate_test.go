package opencti

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/socflow/socflow/internal/spec"
)

// want is the part of a spec.Problem a test pins down; every Fix must merely exist.
type want struct{ field, message string }

func TestValidate(t *testing.T) {
	const uuidV1 = "6f1c2f4e-8a3b-1c5d-9e7f-0a1b2c3d4e5f"
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	tests := []struct {
		name   string
		mutate func(*Instance)
		want   []want
	}{
		{"valid minimal", func(*Instance) {}, nil},
		{"name empty", func(i *Instance) { i.Name = "" }, []want{{"name", "is required"}}},
		{"name uppercase", func(i *Instance) { i.Name = "Demo" }, []want{{"name", `must be 2-40 lowercase letters, digits or dashes, start with a letter and not end with a dash (got "Demo")`}}},
		{"name too short", func(i *Instance) { i.Name = "d" }, []want{{"name", `must be 2-40 lowercase letters, digits or dashes, start with a letter and not end with a dash (got "d")`}}},
		{"name trailing dash", func(i *Instance) { i.Name = "demo-" }, []want{{"name", `must be 2-40 lowercase letters, digits or dashes, start with a letter and not end with a dash (got "demo-")`}}},
		{"name too long", func(i *Instance) { i.Name = strings.Repeat("a", 41) }, []want{{"name", `must be 2-40 lowercase letters, digits or dashes, start with a letter and not end with a dash (got "` + strings.Repeat("a", 41) + `")`}}},
		{"version empty", func(i *Instance) { i.OpenCTI.Version = "" }, []want{{"opencti.version", "is required"}}},
		{"version two parts", func(i *Instance) { i.OpenCTI.Version = "6.9" }, []want{{"opencti.version", `must be a release number such as 6.9.3 or 7.260224.0 (got "6.9")`}}},
		{"version v prefix", func(i *Instance) { i.OpenCTI.Version = "v6.9.3" }, []want{{"opencti.version", `must be a release number such as 6.9.3 or 7.260224.0 (got "v6.9.3")`}}},
		{"version 7 date", func(i *Instance) { i.OpenCTI.Version = "7.260224.0" }, nil},
		{"platform command blank", func(i *Instance) { i.OpenCTI.PlatformCommand = "  " }, []want{{"opencti.platformCommand", "must not be empty"}}},
		{"worker command empty", func(i *Instance) { i.OpenCTI.WorkerCommand = "" }, []want{{"opencti.workerCommand", "must not be empty"}}},
		{"platform dir relative", func(i *Instance) { i.OpenCTI.PlatformDir = "opt/opencti" }, []want{{"opencti.platformDir", `must be an absolute path (got "opt/opencti")`}}},
		{"worker dir empty", func(i *Instance) { i.OpenCTI.WorkerDir = "" }, []want{{"opencti.workerDir", `must be an absolute path (got "")`}}},
		{"workers zero", func(i *Instance) { i.OpenCTI.Workers = ptr(0) }, []want{{"opencti.workers", "must be at least 1 (got 0)"}}},
		{"workers too many", func(i *Instance) { i.OpenCTI.Workers = ptr(33) }, []want{{"opencti.workers", "must be at most 32 (got 33)"}}},
		{"workers unset", func(i *Instance) { i.OpenCTI.Workers = nil }, []want{{"opencti.workers", "is required"}}},
		{"workers max", func(i *Instance) { i.OpenCTI.Workers = ptr(32) }, nil},
		{"port zero", func(i *Instance) { i.OpenCTI.Port = 0 }, []want{{"opencti.port", "must be between 1 and 65535 (got 0)"}}},
		{"metrics port too big", func(i *Instance) { i.OpenCTI.MetricsPort = 70000 }, []want{{"opencti.metricsPort", "must be between 1 and 65535 (got 70000)"}}},
		{"metrics port clash", func(i *Instance) { i.OpenCTI.MetricsPort = 8080 }, []want{{"opencti.metricsPort", "must differ from opencti.port (both are 8080)"}}},
		{"public url no scheme", func(i *Instance) { i.OpenCTI.PublicURL = "localhost:8080" }, []want{{"opencti.publicURL", `must be an absolute http(s) URL (got "localhost:8080")`}}},
		{"public url ftp", func(i *Instance) { i.OpenCTI.PublicURL = "ftp://cti.example.com" }, []want{{"opencti.publicURL", `must be an absolute http(s) URL (got "ftp://cti.example.com")`}}},
		{"public url credentials", func(i *Instance) { i.OpenCTI.PublicURL = "https://u:p@cti.example.com" }, []want{{"opencti.publicURL", `must not carry credentials (got "https://u:p@cti.example.com")`}}},
		{"public url query", func(i *Instance) { i.OpenCTI.PublicURL = "https://cti.example.com/?a=b" }, []want{{"opencti.publicURL", `must not have a query or fragment (got "https://cti.example.com/?a=b")`}}},
		{"public url bad port", func(i *Instance) { i.OpenCTI.PublicURL = "https://cti.example.com:99999" }, []want{{"opencti.publicURL", `must have a port between 1 and 65535 (got "https://cti.example.com:99999")`}}},
		{"public url with path", func(i *Instance) { i.OpenCTI.PublicURL = "https://cti.example.com/opencti" }, nil},
		{"base path no slash", func(i *Instance) { i.OpenCTI.BasePath = "opencti" }, []want{{"opencti.basePath", `must be empty or a path like "/opencti": a leading "/", no trailing "/", only letters, digits and ._~- (got "opencti")`}}},
		{"base path trailing slash", func(i *Instance) { i.OpenCTI.BasePath = "/opencti/" }, []want{{"opencti.basePath", `must be empty or a path like "/opencti": a leading "/", no trailing "/", only letters, digits and ._~- (got "/opencti/")`}}},
		{"base path root", func(i *Instance) { i.OpenCTI.BasePath = "/" }, []want{{"opencti.basePath", `must be empty or a path like "/opencti": a leading "/", no trailing "/", only letters, digits and ._~- (got "/")`}}},
		{"base path nested", func(i *Instance) { i.OpenCTI.BasePath = "/a/b" }, nil},
		{"log level", func(i *Instance) { i.OpenCTI.LogLevel = "trace" }, []want{{"opencti.logLevel", `must be one of error, warn, info, debug (got "trace")`}}},
		{"admin email", func(i *Instance) { i.OpenCTI.AdminEmail = "admin" }, []want{{"opencti.adminEmail", `must be an email address (got "admin")`}}},
		{"admin password missing", func(i *Instance) { i.OpenCTI.AdminPassword = "" }, []want{{"opencti.adminPassword", "is required"}}},
		{"admin password literal", func(i *Instance) { i.OpenCTI.AdminPassword = "s3cret" }, nil},
		{"admin password relative file", func(i *Instance) { i.OpenCTI.AdminPassword = "file:secrets/pw" }, []want{{"opencti.adminPassword", `file reference must use an absolute path (got "secrets/pw")`}}},
		{"admin password bad env", func(i *Instance) { i.OpenCTI.AdminPassword = "env:1BAD-NAME" }, []want{{"opencti.adminPassword", `env reference must name a variable matching [A-Za-z_][A-Za-z0-9_]* (got "1BAD-NAME")`}}},
		{"admin password empty store key", func(i *Instance) { i.OpenCTI.AdminPassword = "store:" }, []want{{"opencti.adminPassword", "store reference must name a key"}}},
		{"admin password NUL", func(i *Instance) { i.OpenCTI.AdminPassword = "a\x00b" }, []want{{"opencti.adminPassword", "must not contain a NUL byte"}}},
		{"admin token not uuid", func(i *Instance) { i.OpenCTI.AdminToken = "not-a-uuid" }, []want{{"opencti.adminToken", "must be a UUIDv4 (xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx)"}}},
		{"admin token uuid v1", func(i *Instance) { i.OpenCTI.AdminToken = uuidV1 }, []want{{"opencti.adminToken", "must be a UUIDv4 (xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx)"}}},
		{"admin token urn form", func(i *Instance) { i.OpenCTI.AdminToken = "urn:uuid:6f1c2f4e-8a3b-4c5d-9e7f-0a1b2c3d4e5f" }, []want{{"opencti.adminToken", "must be a UUIDv4 (xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx)"}}},
		{"admin token ref not checked as uuid", func(i *Instance) { i.OpenCTI.AdminToken = "env:OPENCTI_TOKEN" }, nil},
		{"health key plus", func(i *Instance) { i.OpenCTI.HealthAccessKey = "ab+cd" }, []want{{"opencti.healthAccessKey", `must not contain "+", which a query string turns into a space`}}},
		{"health key ChangeMe", func(i *Instance) { i.OpenCTI.HealthAccessKey = "ChangeMe" }, []want{{"opencti.healthAccessKey", `must not be OpenCTI's default "ChangeMe", which the platform refuses`}}},
		{"encryption key not base64", func(i *Instance) { i.OpenCTI.EncryptionKey = "not base64!" }, []want{{"opencti.encryptionKey", "must be base64"}}},
		{"encryption key short", func(i *Instance) { i.OpenCTI.EncryptionKey = spec.SecretRef(short) }, []want{{"opencti.encryptionKey", "must decode to at least 32 bytes (got 16)"}}},
		{"encryption key ok", func(i *Instance) {
			i.OpenCTI.EncryptionKey = spec.SecretRef(base64.StdEncoding.EncodeToString(make([]byte, 32)))
		}, nil},
		{"env ok", func(i *Instance) { i.OpenCTI.Env = map[string]string{"APP__PYTHON_EXECUTION_VENV": "/opt/venv"} }, nil},
		{"env bad name", func(i *Instance) { i.OpenCTI.Env = map[string]string{"1BAD": "x"} }, []want{{"opencti.env.1BAD", "is not a valid environment variable name"}}},
		{"env reserved", func(i *Instance) { i.OpenCTI.Env = map[string]string{"REDIS__NAMESPACE": "x", "APP__PORT": "1"} }, []want{
			{"opencti.env.APP__PORT", "is set by socflow from opencti.port"},
			{"opencti.env.REDIS__NAMESPACE", "is set by socflow from integrations.redis.namespace"}}},
		{"env socflow's own", func(i *Instance) { i.OpenCTI.Env = map[string]string{"NODE_OPTIONS": "--x"} }, []want{{"opencti.env.NODE_OPTIONS", "is set by socflow itself"}}},
		{"env NUL", func(i *Instance) { i.OpenCTI.Env = map[string]string{"X": "a\x00"} }, []want{{"opencti.env.X", "must not contain a NUL byte"}}},
		{"reaper none", func(i *Instance) { i.OpenCTI.Reaper = NoReaper }, nil},
		{"reaper relative", func(i *Instance) { i.OpenCTI.Reaper = "socflow-reap" }, []want{{"opencti.reaper", `must be an absolute path (got "socflow-reap")`}}},
		{"queue prefix bad", func(i *Instance) { i.Integrations.RabbitMQ.QueuePrefix = "a b" }, []want{{"integrations.rabbitmq.queuePrefix", `must be 1-40 letters, digits, dots, dashes or underscores, starting with a letter or digit (got "a b")`}}},
		{"queue prefix empty", func(i *Instance) { i.Integrations.RabbitMQ.QueuePrefix = "" }, []want{{"integrations.rabbitmq.queuePrefix", `must be 1-40 letters, digits, dots, dashes or underscores, starting with a letter or digit (got "")`}}},
		{"redis namespace bad", func(i *Instance) { i.Integrations.Redis.Namespace = "{locks}" }, []want{{"integrations.redis.namespace", `must be 1-40 letters, digits, dots, dashes or underscores, starting with a letter or digit (got "{locks}")`}}},
		{"missing module unknown", func(i *Instance) { i.Integrations.OpenSearch.AllowMissingModules = []string{"index-management", "ism"} }, []want{{"integrations.opensearch.allowMissingModules[1]", `is not a module OpenCTI needs (got "ism")`}}},
		{"pebble both", func(i *Instance) { i.Pebble.URL = "https://10.0.0.5:8443" }, []want{{"pebble", "must set exactly one of socket or url (both are set)"}}},
		{"pebble neither", func(i *Instance) { i.Pebble.Socket = "" }, []want{{"pebble", "must set exactly one of socket or url (neither is set)"}}},
		{"pebble relative socket", func(i *Instance) { i.Pebble.Socket = ".pebble.socket" }, []want{{"pebble.socket", `must be an absolute path (got ".pebble.socket")`}}},
		{"pebble url http", func(i *Instance) { i.Pebble = httpsPebble("http://10.0.0.5:8443") }, []want{{"pebble.url", `must use https (got "http://10.0.0.5:8443")`}}},
		{"pebble url no port", func(i *Instance) { i.Pebble = httpsPebble("https://10.0.0.5") }, []want{{"pebble.url", `must include a port (got "https://10.0.0.5")`}}},
		{"pebble url path", func(i *Instance) { i.Pebble = httpsPebble("https://10.0.0.5:8443/v1") }, []want{{"pebble.url", `must not have a path (got "https://10.0.0.5:8443/v1")`}}},
		{"pebble url ok", func(i *Instance) { i.Pebble = httpsPebble("https://[::1]:8443") }, nil},
		{"pebble url without tls", func(i *Instance) { i.Pebble = spec.Pebble{URL: "https://10.0.0.5:8443"} }, []want{
			{"pebble.serverCert", "is required with pebble.url"},
			{"pebble.clientCert", "is required with pebble.url"},
			{"pebble.clientKey", "is required with pebble.url"},
		}},
		{"pebble url env and store refs", func(i *Instance) {
			i.Pebble = spec.Pebble{URL: "https://pebble.example.com:8443", ServerCert: "env:PEBBLE_ID", ClientCert: "store:pebble/cert", ClientKey: "store:pebble/key"}
		}, nil},
		{"pebble url literal pems", func(i *Instance) {
			cert, key := testCertPEM(t)
			i.Pebble = spec.Pebble{URL: "https://10.0.0.5:8443", ServerCert: spec.SecretRef(cert), ClientCert: spec.SecretRef(cert), ClientKey: spec.SecretRef(key)}
		}, nil},
		{"pebble url literal not pem", func(i *Instance) {
			i.Pebble = spec.Pebble{URL: "https://10.0.0.5:8443", ServerCert: "hello", ClientCert: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", ClientKey: "key"}
		}, []want{
			{"pebble.serverCert", "must be a PEM CERTIFICATE block"},
			{"pebble.clientCert", "must hold a valid X.509 certificate: x509: malformed certificate"},
			{"pebble.clientKey", "must be a PEM PRIVATE KEY block"},
		}},
		{"pebble url relative file", func(i *Instance) {
			p := httpsPebble("https://10.0.0.5:8443")
			p.ClientKey = "file:client.key"
			i.Pebble = p
		}, []want{{"pebble.clientKey", `file reference must use an absolute path (got "client.key")`}}},
		{"pebble socket with tls", func(i *Instance) { i.Pebble.ClientCert, i.Pebble.ClientKey = "file:/c.pem", "file:/c.key" }, []want{
			{"pebble.clientCert", "is only used with pebble.url, not with pebble.socket"},
			{"pebble.clientKey", "is only used with pebble.url, not with pebble.socket"},
		}},
		{"pebble both with tls", func(i *Instance) {
			socket := i.Pebble.Socket
			i.Pebble = httpsPebble("https://10.0.0.5:8443")
			i.Pebble.Socket = socket
		}, []want{{"pebble", "must set exactly one of socket or url (both are set)"}}},
		{"missing integrations", func(i *Instance) { i.Integrations.OpenSearch, i.Integrations.S3 = nil, nil }, []want{{"integrations", "missing integration(s): opensearch, s3"}}},
		{"opensearch no urls", func(i *Instance) { i.Integrations.OpenSearch.URLs = nil }, []want{{"integrations.opensearch.urls", "must list at least one node URL"}}},
		{"opensearch bad url", func(i *Instance) {
			i.Integrations.OpenSearch.URLs = []string{"http://127.0.0.1:9200", "opensearch:9200"}
		}, []want{{"integrations.opensearch.urls[1]", `must be an absolute http(s) URL (got "opensearch:9200")`}}},
		{"opensearch url credentials", func(i *Instance) { i.Integrations.OpenSearch.URLs = []string{"http://admin:pw@127.0.0.1:9200"} }, []want{{"integrations.opensearch.urls[0]", `must not carry credentials (got "http://admin:pw@127.0.0.1:9200")`}}},
		{"opensearch username only", func(i *Instance) { i.Integrations.OpenSearch.Username = "admin" }, []want{{"integrations.opensearch.password", "is required when username is set"}}},
		{"opensearch password only", func(i *Instance) { i.Integrations.OpenSearch.Password = "env:OS_PW" }, []want{{"integrations.opensearch.username", "is required when password is set"}}},
		{"opensearch ca not pem", func(i *Instance) {
			i.Integrations.OpenSearch.URLs = []string{"https://127.0.0.1:9200"}
			i.Integrations.OpenSearch.CA = "hello"
		}, []want{{"integrations.opensearch.ca", "must be a PEM bundle with at least one CERTIFICATE block"}}},
		{"opensearch ca with http only", func(i *Instance) { i.Integrations.OpenSearch.CA = "file:/etc/ca.pem" }, []want{{"integrations.opensearch.ca", "is set but no url uses https, so it would never be used"}}},
		{"opensearch engine", func(i *Instance) { i.Integrations.OpenSearch.Engine = "solr" }, []want{{"integrations.opensearch.engine", `must be one of auto, elk, opensearch (got "solr")`}}},
		{"opensearch replicas", func(i *Instance) { i.Integrations.OpenSearch.Replicas = -1 }, []want{{"integrations.opensearch.replicas", "must be 0 or more (got -1)"}}},
		{"rabbitmq host missing", func(i *Instance) { i.Integrations.RabbitMQ.Host = "" }, []want{{"integrations.rabbitmq.host", "is required"}}},
		{"rabbitmq host url", func(i *Instance) { i.Integrations.RabbitMQ.Host = "amqp://rabbit" }, []want{{"integrations.rabbitmq.host", `must be a host name or IP address, without scheme or port (got "amqp://rabbit")`}}},
		{"rabbitmq port", func(i *Instance) { i.Integrations.RabbitMQ.Port = -1 }, []want{{"integrations.rabbitmq.port", "must be between 1 and 65535 (got -1)"}}},
		{"rabbitmq ports clash", func(i *Instance) { i.Integrations.RabbitMQ.ManagementPort = 5672 }, []want{{"integrations.rabbitmq.managementPort", "must differ from integrations.rabbitmq.port (both are 5672)"}}},
		{"rabbitmq vhost", func(i *Instance) { i.Integrations.RabbitMQ.VHost = "" }, []want{{"integrations.rabbitmq.vhost", `must be a virtual host name (got "")`}}},
		{"rabbitmq username", func(i *Instance) { i.Integrations.RabbitMQ.Username = "" }, []want{{"integrations.rabbitmq.username", "is required"}}},
		{"rabbitmq username control", func(i *Instance) { i.Integrations.RabbitMQ.Username = "a\nb" }, []want{{"integrations.rabbitmq.username", "must not contain control characters"}}},
		{"rabbitmq password", func(i *Instance) { i.Integrations.RabbitMQ.Password = "" }, []want{{"integrations.rabbitmq.password", "is required"}}},
		{"rabbitmq queue type", func(i *Instance) { i.Integrations.RabbitMQ.QueueType = "stream" }, []want{{"integrations.rabbitmq.queueType", `must be classic or quorum (got "stream")`}}},
		{"redis host", func(i *Instance) { i.Integrations.Redis.Host = "redis:6379" }, []want{{"integrations.redis.host", `must be a host name or IP address, without scheme or port (got "redis:6379")`}}},
		{"redis ipv6 host", func(i *Instance) { i.Integrations.Redis.Host = "::1" }, nil},
		{"redis sentinel", func(i *Instance) { i.Integrations.Redis.Mode = spec.RedisSentinel }, []want{{"integrations.redis.mode", `"sentinel" is not supported yet; only "single" is`}}},
		{"redis cluster", func(i *Instance) { i.Integrations.Redis.Mode = spec.RedisCluster }, []want{{"integrations.redis.mode", `"cluster" is not supported yet; only "single" is`}}},
		{"redis mode unknown", func(i *Instance) { i.Integrations.Redis.Mode = "multi" }, []want{{"integrations.redis.mode", `must be "single" (got "multi")`}}},
		{"redis trimming zero", func(i *Instance) { i.Integrations.Redis.Trimming = ptr(0) }, []want{{"integrations.redis.trimming", "must be greater than 0 (got 0)"}}},
		{"redis trimming unset", func(i *Instance) { i.Integrations.Redis.Trimming = nil }, []want{{"integrations.redis.trimming", "is required"}}},
		{"s3 endpoint path", func(i *Instance) { i.Integrations.S3.Endpoint = "http://127.0.0.1:9000/bucket" }, []want{{"integrations.s3.endpoint", `must not have a path (got "http://127.0.0.1:9000/bucket")`}}},
		{"s3 endpoint no scheme", func(i *Instance) { i.Integrations.S3.Endpoint = "127.0.0.1:9000" }, []want{{"integrations.s3.endpoint", `must be an absolute http(s) URL (got "127.0.0.1:9000")`}}},
		{"s3 endpoint trailing slash", func(i *Instance) { i.Integrations.S3.Endpoint = "https://s3.example.com/" }, nil},
		{"s3 region", func(i *Instance) { i.Integrations.S3.Region = "us east" }, []want{{"integrations.s3.region", `must be a region name such as us-east-1 (got "us east")`}}},
		{"s3 bucket uppercase", func(i *Instance) { i.Integrations.S3.Bucket = "OpenCTI" }, []want{{"integrations.s3.bucket", `must be 3-63 lowercase letters, digits, dots or dashes, starting and ending with a letter or digit (got "OpenCTI")`}}},
		{"s3 bucket short", func(i *Instance) { i.Integrations.S3.Bucket = "ab" }, []want{{"integrations.s3.bucket", `must be 3-63 lowercase letters, digits, dots or dashes, starting and ending with a letter or digit (got "ab")`}}},
		{"s3 bucket dots", func(i *Instance) { i.Integrations.S3.Bucket = "a..b" }, []want{{"integrations.s3.bucket", `must not have two dots, or a dot and a dash, next to each other (got "a..b")`}}},
		{"s3 bucket ip", func(i *Instance) { i.Integrations.S3.Bucket = "192.168.1.1" }, []want{{"integrations.s3.bucket", `must not look like an IP address (got "192.168.1.1")`}}},
		{"s3 bucket prefix", func(i *Instance) { i.Integrations.S3.Bucket = "xn--bucket" }, []want{{"integrations.s3.bucket", `must not start with the reserved prefix "xn--" (got "xn--bucket")`}}},
		{"s3 bucket suffix", func(i *Instance) { i.Integrations.S3.Bucket = "files-s3alias" }, []want{{"integrations.s3.bucket", `must not end with the reserved suffix "-s3alias" (got "files-s3alias")`}}},
		{"s3 keys missing", func(i *Instance) { i.Integrations.S3.AccessKey, i.Integrations.S3.SecretKey = "", "" }, []want{
			{"integrations.s3.accessKey", "is required"},
			{"integrations.s3.secretKey", "is required"},
		}},
		{"several problems in field order", func(i *Instance) {
			i.Name = ""
			i.OpenCTI.Workers = ptr(0)
			i.Integrations.RabbitMQ.Port = 0
		}, []want{
			{"name", "is required"},
			{"opencti.workers", "must be at least 1 (got 0)"},
			{"integrations.rabbitmq.port", "must be between 1 and 65535 (got 0)"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := mustLoad(t, "minimal.yaml")
			tt.mutate(&in)
			err := in.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			checkProblems(t, err, tt.want)
		})
	}
}

// checkProblems requires err to be a *ValidationError listing exactly wants, in order,
// each problem with a fix.
func checkProblems(t *testing.T, err error, wants []want) {
	t.Helper()
	var ve *spec.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate() = %v, want *ValidationError", err)
	}
	got := make([]want, len(ve.Problems))
	for i, p := range ve.Problems {
		got[i] = want{p.Field, p.Message}
		if p.Fix == "" {
			t.Errorf("problem %q has no fix", p.Field)
		}
	}
	if len(got) != len(wants) {
		t.Fatalf("problems =\n%q\nwant\n%q", got, wants)
	}
	for i := range got {
		if got[i] != wants[i] {
			t.Errorf("problem %d = %q, want %q", i, got[i], wants[i])
		}
	}
}

func TestValidationErrorText(t *testing.T) {
	in := mustLoad(t, "minimal.yaml")
	in.OpenCTI.Workers = ptr(0)
	in.Integrations.S3 = nil
	err := in.Validate()
	wantText := "opencti.workers: must be at least 1 (got 0) (fix: set opencti.workers to 1 or more; 3 per platform node is recommended)\n" +
		"integrations: missing integration(s): s3 (fix: add a section for each under integrations; OpenCTI cannot start without all four)"
	if err == nil || err.Error() != wantText {
		t.Errorf("Validate() error =\n%v\nwant\n%s", err, wantText)
	}
}

func TestLoadReportsValidationProblems(t *testing.T) {
	data := strings.Replace(string(readTestdata(t, "minimal.yaml")), "  version: 6.9.3\n", "  version: 6.9.3\n  workers: 0\n", 1)
	_, err := Load([]byte(data))
	var ve *spec.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Field != "opencti.workers" {
		t.Fatalf("Load() error = %v, want one problem on opencti.workers (an explicit 0 must not be defaulted)", err)
	}
}

func TestProblemsNeverEchoLiteralSecrets(t *testing.T) {
	secrets := []spec.SecretRef{"p+ss+word", "ChangeMe-not", "short-secret-value"}
	for _, s := range secrets {
		in := mustLoad(t, "minimal.yaml")
		in.OpenCTI.AdminToken = s
		in.OpenCTI.HealthAccessKey = s + "+"
		in.OpenCTI.EncryptionKey = s
		in.Integrations.OpenSearch.CA = s
		err := in.Validate()
		if err == nil {
			t.Fatalf("Validate() accepted bad literals %q", s)
		}
		if strings.Contains(err.Error(), string(s)) {
			t.Errorf("error echoes a literal secret: %v", err)
		}
	}
}
