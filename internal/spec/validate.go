package spec

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Problem is one thing wrong with a spec: the JSON path of the field, what is
// wrong with it and how to fix it, so a user can act without reading code.
type Problem struct {
	// Field is the JSON path, e.g. integrations.rabbitmq.port.
	Field string `json:"field"`
	// Message says what is wrong; it never contains a literal secret.
	Message string `json:"message"`
	// Fix says what to change; it may be empty.
	Fix string `json:"fix,omitempty"`
}

// ValidationError lists every problem of a spec at once, so a user fixes them
// in one pass instead of one per run.
type ValidationError struct {
	// Problems are in field order.
	Problems []Problem `json:"problems"`
}

// Error prints one "field: message (fix: ...)" line per problem.
func (e *ValidationError) Error() string {
	if len(e.Problems) == 0 {
		return "invalid instance spec"
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Field + ": " + p.Message
		if p.Fix != "" {
			lines[i] += " (fix: " + p.Fix + ")"
		}
	}
	return strings.Join(lines, "\n")
}

var (
	nameRE     = regexp.MustCompile(`^[a-z][a-z0-9-]{0,38}[a-z0-9]$`)
	versionRE  = regexp.MustCompile(`^[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9}$`)
	basePathRE = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)
	emailRE    = regexp.MustCompile(`^[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
)

// Validate checks every field of i as given and returns a *ValidationError
// listing all problems, or nil; call it on WithDefaults' result, since unset
// fields are reported as problems here. Passing it is what the plan relies on.
func (i Instance) Validate() error {
	var c checker
	c.name(i.Name)
	c.opencti(i.OpenCTI)
	c.pebble(i.Pebble)
	c.integrations(i.Integrations)
	if len(c.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: c.problems}
}

// checker collects problems in the order fields are checked.
type checker struct{ problems []Problem }

func (c *checker) add(field, msg, fix string) {
	c.problems = append(c.problems, Problem{Field: field, Message: msg, Fix: fix})
}

func (c *checker) name(n string) {
	switch {
	case n == "":
		c.add("name", "is required", "set name to a short lowercase identifier such as demo")
	case !nameRE.MatchString(n):
		c.add("name", fmt.Sprintf("must be 2-40 lowercase letters, digits or dashes, start with a letter and not end with a dash (got %q)", n),
			"pick a name like demo; keep it across redeploys, it is also the OpenSearch index prefix")
	}
}

func (c *checker) opencti(o OpenCTI) {
	const p = "opencti."
	switch {
	case o.Version == "":
		c.add(p+"version", "is required", "set opencti.version to the OpenCTI release, e.g. 6.9.3")
	case !versionRE.MatchString(o.Version):
		c.add(p+"version", fmt.Sprintf("must be a release number such as 6.9.3 or 7.260224.0 (got %q)", o.Version),
			"use the platform image's version, digits.digits.digits")
	}
	c.command(p+"platformCommand", o.PlatformCommand)
	c.absPath(p+"platformDir", o.PlatformDir)
	c.command(p+"workerCommand", o.WorkerCommand)
	c.absPath(p+"workerDir", o.WorkerDir)
	c.workers(o.Workers)
	c.port(p+"port", o.Port)
	c.port(p+"metricsPort", o.MetricsPort)
	if o.Port == o.MetricsPort && o.Port != 0 {
		c.add(p+"metricsPort", fmt.Sprintf("must differ from opencti.port (both are %d)", o.Port),
			"use another port for opencti.metricsPort, e.g. 14269")
	}
	if msg := urlProblem(o.PublicURL, true); msg != "" {
		c.add(p+"publicURL", msg, "set opencti.publicURL to the URL users open, e.g. https://opencti.example.com, or leave it empty")
	}
	if o.BasePath != "" && !basePathRE.MatchString(o.BasePath) {
		c.add(p+"basePath", fmt.Sprintf(`must be empty or a path like "/opencti": a leading "/", no trailing "/", only letters, digits and ._~- (got %q)`, o.BasePath),
			"write it as /segment[/segment...]")
	}
	switch o.LogLevel {
	case LogError, LogWarn, LogInfo, LogDebug:
	default:
		c.add(p+"logLevel", fmt.Sprintf("must be one of error, warn, info, debug (got %q)", o.LogLevel), "use info unless debugging")
	}
	if !emailRE.MatchString(o.AdminEmail) {
		c.add(p+"adminEmail", fmt.Sprintf("must be an email address (got %q)", o.AdminEmail), "use an address such as admin@opencti.local")
	}
	c.secret(p+"adminPassword", o.AdminPassword, true, nil)
	c.secret(p+"adminToken", o.AdminToken, false, adminTokenProblem)
	c.secret(p+"healthAccessKey", o.HealthAccessKey, false, healthKeyProblem)
	c.secret(p+"encryptionKey", o.EncryptionKey, false, encryptionKeyProblem)
	c.env(o.Env)
	if o.Reaper != NoReaper {
		c.absPath(p+"reaper", o.Reaper)
	}
}

// ReservedEnv are the platform variables socflow sets, each with the spec field it
// derives it from ("" for the ones socflow fixes itself: the login strategy, the
// rock's heap size, the container's owner); the plan's tests check that it sets no
// other. opencti.env may not set them, so each setting keeps one place in the spec.
var ReservedEnv = map[string]string{
	"APP__PORT": "opencti.port", "APP__BASE_URL": "opencti.publicURL", "APP__BASE_PATH": "opencti.basePath",
	"APP__ADMIN__EMAIL": "opencti.adminEmail", "APP__ADMIN__PASSWORD": "opencti.adminPassword",
	"APP__ADMIN__TOKEN": "opencti.adminToken", "APP__HEALTH_ACCESS_KEY": "opencti.healthAccessKey",
	"APP__ENCRYPTION_KEY": "opencti.encryptionKey", "APP__APP_LOGS__LOGS_LEVEL": "opencti.logLevel",
	"PROVIDERS__LOCAL__STRATEGY": "", "NODE_OPTIONS": "",
	"APP__TELEMETRY__METRICS__ENABLED": "opencti.metricsPort", "APP__TELEMETRY__METRICS__EXPORTER_PROMETHEUS": "opencti.metricsPort",
	"REDIS__HOSTNAME": "integrations.redis.host", "REDIS__PORT": "integrations.redis.port", "REDIS__MODE": "integrations.redis.mode",
	"REDIS__USE_SSL": "integrations.redis.useSSL", "REDIS__TRIMMING": "integrations.redis.trimming",
	"REDIS__PASSWORD": "integrations.redis.password", "REDIS__NAMESPACE": "integrations.redis.namespace",
	"RABBITMQ__HOSTNAME": "integrations.rabbitmq.host", "RABBITMQ__PORT": "integrations.rabbitmq.port",
	"RABBITMQ__PORT_MANAGEMENT": "integrations.rabbitmq.managementPort", "RABBITMQ__MANAGEMENT_SSL": "integrations.rabbitmq.managementSSL",
	"RABBITMQ__USERNAME": "integrations.rabbitmq.username", "RABBITMQ__PASSWORD": "integrations.rabbitmq.password",
	"RABBITMQ__VHOST": "integrations.rabbitmq.vhost", "RABBITMQ__USE_SSL": "integrations.rabbitmq.useSSL",
	"RABBITMQ__QUEUE_TYPE": "integrations.rabbitmq.queueType", "RABBITMQ__QUEUE_PREFIX": "integrations.rabbitmq.queuePrefix",
	"ELASTICSEARCH__URL": "integrations.opensearch.urls", "ELASTICSEARCH__ENGINE_SELECTOR": "integrations.opensearch.engine",
	"ELASTICSEARCH__INDEX_PREFIX": "name", "ELASTICSEARCH__NUMBER_OF_REPLICAS": "integrations.opensearch.replicas",
	"ELASTICSEARCH__USERNAME": "integrations.opensearch.username", "ELASTICSEARCH__PASSWORD": "integrations.opensearch.password",
	"ELASTICSEARCH__SSL__CA": "integrations.opensearch.ca", "ELASTICSEARCH__SSL__REJECT_UNAUTHORIZED": "integrations.opensearch.ca",
	"MINIO__ENDPOINT": "integrations.s3.endpoint", "MINIO__PORT": "integrations.s3.endpoint", "MINIO__USE_SSL": "integrations.s3.endpoint",
	"MINIO__ACCESS_KEY": "integrations.s3.accessKey", "MINIO__SECRET_KEY": "integrations.s3.secretKey",
	"MINIO__BUCKET_NAME": "integrations.s3.bucket", "MINIO__BUCKET_REGION": "integrations.s3.region",
	"SOCFLOW_INSTANCE": "",
}

func (c *checker) env(env map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		f := "opencti.env." + k
		switch owner, reserved := ReservedEnv[k]; {
		case !envNameRE.MatchString(k):
			c.add(f, "is not a valid environment variable name", "use letters, digits and underscores, not starting with a digit, e.g. APP__PYTHON_EXECUTION_VENV")
		case reserved && owner == "":
			c.add(f, "is set by socflow itself", "remove it from opencti.env")
		case reserved:
			c.add(f, "is set by socflow from "+owner, "remove it from opencti.env and set "+owner+" instead")
		case strings.ContainsRune(env[k], 0):
			c.add(f, "must not contain a NUL byte", "remove it; no environment variable can hold one")
		}
	}
}

func (c *checker) workers(w *int) {
	const f = "opencti.workers"
	switch {
	case w == nil:
		c.add(f, "is required", "set opencti.workers, or call WithDefaults before Validate (default 3)")
	case *w < 1:
		c.add(f, fmt.Sprintf("must be at least 1 (got %d)", *w), "set opencti.workers to 1 or more; 3 per platform node is recommended")
	case *w > 32:
		c.add(f, fmt.Sprintf("must be at most 32 (got %d)", *w), "set opencti.workers to 32 or fewer; 3 per platform node is recommended")
	}
}

func (c *checker) pebble(pb Pebble) {
	switch {
	case pb.Socket != "" && pb.URL != "":
		c.add("pebble", "must set exactly one of socket or url (both are set)", "remove pebble.socket or pebble.url")
		return
	case pb.Socket == "" && pb.URL == "":
		c.add("pebble", "must set exactly one of socket or url (neither is set)",
			"set pebble.socket to the workload container's .pebble.socket, or pebble.url to https://host:port")
		return
	case pb.Socket != "":
		c.absPath("pebble.socket", pb.Socket)
		for _, f := range pb.tlsFields() {
			if !f.ref.IsZero() {
				c.add(f.name, "is only used with pebble.url, not with pebble.socket",
					"remove "+f.name+", or reach Pebble over HTTPS with pebble.url instead of pebble.socket")
			}
		}
	default:
		if msg := pebbleURLProblem(pb.URL); msg != "" {
			c.add("pebble.url", msg, "write it as https://host:port, the address of `pebble run --https`")
		}
		for _, f := range pb.tlsFields() {
			if f.ref.IsZero() {
				c.add(f.name, "is required with pebble.url", f.fix)
				continue
			}
			c.secret(f.name, f.ref, true, f.literal)
		}
	}
}

// pebbleTLSField is one of the settings of Pebble's HTTPS mode, with how to
// obtain it and how to check a literal value.
type pebbleTLSField struct {
	name    string
	ref     SecretRef
	fix     string
	literal func(string) (string, string)
}

// tlsFields lists the HTTPS settings in field order.
func (pb Pebble) tlsFields() []pebbleTLSField {
	return []pebbleTLSField{
		{"pebble.serverCert", pb.ServerCert,
			"set pebble.serverCert to the server's identity certificate, e.g. file:/etc/socflow/pebble-identity.pem copied from $PEBBLE/tls/identity.pem on the workload host",
			certProblem("pebble.serverCert", "copy $PEBBLE/tls/identity.pem from the workload host")},
		{"pebble.clientCert", pb.ClientCert,
			"set pebble.clientCert to socflow's client certificate, e.g. file:/etc/socflow/pebble-client.pem, registered with `pebble add-identities` (type cert, access admin)",
			certProblem("pebble.clientCert", "make one with openssl req -x509 and register it with `pebble add-identities`")},
		{"pebble.clientKey", pb.ClientKey,
			"set pebble.clientKey to the private key of pebble.clientCert, e.g. file:/etc/socflow/pebble-client.key",
			keyProblem},
	}
}

// certProblem checks that a literal holds a PEM certificate Go can parse.
func certProblem(field, fix string) func(string) (string, string) {
	return func(v string) (string, string) {
		b, _ := pem.Decode([]byte(v))
		if b == nil || b.Type != "CERTIFICATE" {
			return "must be a PEM CERTIFICATE block", "point " + field + " at the certificate file (file:/path), or " + fix
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return "must hold a valid X.509 certificate: " + err.Error(), fix
		}
		return "", ""
	}
}

// keyProblem checks that a literal holds a PEM private key block; it never
// echoes the key.
func keyProblem(v string) (string, string) {
	b, _ := pem.Decode([]byte(v))
	if b == nil || !strings.HasSuffix(b.Type, "PRIVATE KEY") {
		return "must be a PEM PRIVATE KEY block", "point pebble.clientKey at the key file (file:/path) of pebble.clientCert"
	}
	return "", ""
}

// pebbleURLProblem accepts only https://host:port, the shape of Pebble's TCP API.
func pebbleURLProblem(s string) string {
	if msg := urlProblem(s, false); msg != "" {
		return msg
	}
	if !strings.HasPrefix(s, "https://") {
		return fmt.Sprintf("must use https (got %q)", s)
	}
	if u, err := url.Parse(s); err != nil || u.Port() == "" {
		return fmt.Sprintf("must include a port (got %q)", s)
	}
	return ""
}

// secret checks a ref's syntax and, for a literal, its value; messages never
// include the literal itself.
func (c *checker) secret(field string, r SecretRef, required bool, literal func(string) (string, string)) {
	if r.IsZero() {
		if required {
			c.add(field, "is required", "set "+field+" to a reference such as env:NAME, file:/path or store:key")
		}
		return
	}
	if msg, fix := r.check(field); msg != "" {
		c.add(field, msg, fix)
		return
	}
	if literal != nil && r.Kind() == SecretLiteral {
		if msg, fix := literal(string(r)); msg != "" {
			c.add(field, msg, fix)
		}
	}
}

func (c *checker) command(field, v string) {
	if strings.TrimSpace(v) == "" {
		c.add(field, "must not be empty", "set "+field+" or leave it out to use the default")
	}
}

func (c *checker) absPath(field, v string) {
	if !path.IsAbs(v) || strings.ContainsRune(v, 0) {
		c.add(field, fmt.Sprintf("must be an absolute path (got %q)", v), "write "+field+" as /absolute/path")
	}
}

func (c *checker) port(field string, v int) {
	if v < 1 || v > 65535 {
		c.add(field, fmt.Sprintf("must be between 1 and 65535 (got %d)", v), "set "+field+" to a TCP port, or leave it out to use the default")
	}
}
