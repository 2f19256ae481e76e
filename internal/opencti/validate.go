package opencti

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/socflow/socflow/internal/spec"
)

var (
	versionRE  = regexp.MustCompile(`^[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9}$`)
	basePathRE = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)
	emailRE    = regexp.MustCompile(`^[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
)

// Validate checks every field of i as given and returns a *ValidationError
// listing all problems, or nil; call it on WithDefaults' result, since unset
// fields are reported as problems here. Passing it is what the plan relies on.
func (i Instance) Validate() error {
	var c checker
	c.check(i)
	return c.Err()
}

// ValidatePresent is Validate without the problem of missing integrations: a spec
// whose integration was removed (relation broken) is still checked field by field,
// so a change to it is judged the same way while the instance waits for it.
func (i Instance) ValidatePresent() error {
	c := checker{allowMissing: true}
	c.check(i)
	return c.Err()
}

// IntegrationNames are the integrations of an OpenCTI spec, in the spec's order.
var IntegrationNames = []string{"opensearch", "rabbitmq", "redis", "s3"}

// Missing names the integrations the spec has no section for, in the spec's order.
func (i Instance) Missing() []string {
	in := i.Integrations
	present := map[string]bool{"opensearch": in.OpenSearch != nil, "rabbitmq": in.RabbitMQ != nil, "redis": in.Redis != nil, "s3": in.S3 != nil}
	var missing []string
	for _, name := range IntegrationNames {
		if !present[name] {
			missing = append(missing, name)
		}
	}
	return missing
}

// checker adds OpenCTI's own checks to the kit's, which it embeds.
type checker struct {
	spec.Checker
	// allowMissing skips the problem of missing integration sections (ValidatePresent).
	allowMissing bool
}

func (c *checker) check(i Instance) {
	c.name(i.Name)
	c.settings(i.OpenCTI)
	c.Pebble(i.Pebble)
	c.Logs(i.Logs)
	c.nodes(i)
	c.integrations(i)
	c.connectors(i.Connectors)
}

func (c *checker) name(n string) {
	c.Name("name", n, "set name to a short lowercase identifier such as demo",
		"pick a name like demo; keep it across redeploys, it is also the OpenSearch index prefix")
}

func (c *checker) settings(o Settings) {
	const p = "opencti."
	switch {
	case o.Version == "":
		c.Add(p+"version", "is required", "set opencti.version to the OpenCTI release, e.g. 6.9.3")
	case !versionRE.MatchString(o.Version):
		c.Add(p+"version", fmt.Sprintf("must be a release number such as 6.9.3 or 7.260224.0 (got %q)", o.Version),
			"use the platform image's version, digits.digits.digits")
	}
	c.Command(p+"platformCommand", o.PlatformCommand)
	c.AbsPath(p+"platformDir", o.PlatformDir)
	c.Command(p+"workerCommand", o.WorkerCommand)
	c.AbsPath(p+"workerDir", o.WorkerDir)
	c.workers(o.Workers)
	c.Port(p+"port", o.Port)
	c.Port(p+"metricsPort", o.MetricsPort)
	if o.Port == o.MetricsPort && o.Port != 0 {
		c.Add(p+"metricsPort", fmt.Sprintf("must differ from opencti.port (both are %d)", o.Port),
			"use another port for opencti.metricsPort, e.g. 14269")
	}
	if msg := spec.URLProblem(o.PublicURL, true); msg != "" {
		c.Add(p+"publicURL", msg, "set opencti.publicURL to the URL users open, e.g. https://opencti.example.com, or leave it empty")
	}
	if o.BasePath != "" && !basePathRE.MatchString(o.BasePath) {
		c.Add(p+"basePath", fmt.Sprintf(`must be empty or a path like "/opencti": a leading "/", no trailing "/", only letters, digits and ._~- (got %q)`, o.BasePath),
			"write it as /segment[/segment...]")
	}
	switch o.LogLevel {
	case LogError, LogWarn, LogInfo, LogDebug:
	default:
		c.Add(p+"logLevel", fmt.Sprintf("must be one of error, warn, info, debug (got %q)", o.LogLevel), "use info unless debugging")
	}
	if !emailRE.MatchString(o.AdminEmail) {
		c.Add(p+"adminEmail", fmt.Sprintf("must be an email address (got %q)", o.AdminEmail), "use an address such as admin@opencti.local")
	}
	c.Secret(p+"adminPassword", o.AdminPassword, true, nil)
	c.Secret(p+"adminToken", o.AdminToken, false, adminTokenProblem)
	c.Secret(p+"healthAccessKey", o.HealthAccessKey, false, healthKeyProblem)
	c.Secret(p+"encryptionKey", o.EncryptionKey, false, encryptionKeyProblem)
	c.env(o.Env)
	if o.Reaper != NoReaper {
		c.AbsPath(p+"reaper", o.Reaper)
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
		case !spec.ValidEnvName(k):
			c.Add(f, "is not a valid environment variable name", "use letters, digits and underscores, not starting with a digit, e.g. APP__PYTHON_EXECUTION_VENV")
		case reserved && owner == "":
			c.Add(f, "is set by socflow itself", "remove it from opencti.env")
		case reserved:
			c.Add(f, "is set by socflow from "+owner, "remove it from opencti.env and set "+owner+" instead")
		case strings.ContainsRune(env[k], 0):
			c.Add(f, "must not contain a NUL byte", "remove it; no environment variable can hold one")
		}
	}
}

func (c *checker) workers(w *int) {
	const f = "opencti.workers"
	switch {
	case w == nil:
		c.Add(f, "is required", "set opencti.workers, or call WithDefaults before Validate (default 3)")
	case *w < 1:
		c.Add(f, fmt.Sprintf("must be at least 1 (got %d)", *w), "set opencti.workers to 1 or more; 3 per platform node is recommended")
	case *w > 32:
		c.Add(f, fmt.Sprintf("must be at most 32 (got %d)", *w), "set opencti.workers to 32 or fewer; 3 per platform node is recommended")
	}
}

func (c *checker) integrations(i Instance) {
	in := i.Integrations
	if missing := i.Missing(); len(missing) > 0 && !c.allowMissing {
		c.Add("integrations", "missing integration(s): "+strings.Join(missing, ", "),
			"add a section for each under integrations; OpenCTI cannot start without all four")
	}
	if in.OpenSearch != nil {
		c.OpenSearch(*in.OpenSearch)
		c.allowMissingModules(in.OpenSearch.AllowMissingModules)
	}
	if in.RabbitMQ != nil {
		c.RabbitMQ(*in.RabbitMQ)
	}
	if in.Redis != nil {
		c.Redis(*in.Redis)
	}
	if in.S3 != nil {
		c.S3(*in.S3)
	}
}

// allowMissingModules checks integrations.opensearch.allowMissingModules against
// the modules OpenCTI needs; the kit cannot, as each app needs its own.
func (c *checker) allowMissingModules(names []string) {
	const p = "integrations.opensearch."
	for i, m := range names {
		if !slices.Contains(SearchModules, m) {
			c.Add(fmt.Sprintf("%sallowMissingModules[%d]", p, i), fmt.Sprintf("is not a module OpenCTI needs (got %q)", m),
				"use one of "+strings.Join(SearchModules, ", "))
		}
	}
}

// SearchModules are the search-engine modules and plugins OpenCTI relies on, by the
// names _cat/plugins and _nodes/plugins report: the four OpenSearch modules of any
// OpenSearch or Elasticsearch node, index-management (ISM) on OpenSearch, and ILM
// (x-pack-ilm) on Elasticsearch.
var SearchModules = []string{"analysis-common", "lang-painless", "mapper-extras", "reindex", "index-management", "x-pack-ilm"}
