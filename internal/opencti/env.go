package opencti

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
)

// LogValue hides every value from slog.
func (s Secrets) LogValue() slog.Value { return slog.StringValue(s.String()) }

// check refuses inputs the plan cannot express: an invalid spec, or resolved
// secrets that are missing, malformed or disagree with the spec's refs.
func check(in Input) error {
	if err := in.Instance.Validate(); err != nil {
		return fmt.Errorf("cannot plan opencti: invalid instance spec:\n%w", err)
	}
	if err := SecretTable.CheckResolved(&in.Instance, &in.Secrets); err != nil {
		return fmt.Errorf("cannot plan opencti: %w", err)
	}
	return nil
}

// platformEnv is OpenCTI's configuration contract (docs/opencti.md §1); every
// value is spelled out, none left to OpenCTI's defaults, so that the layer
// alone says how the platform runs.
func platformEnv(in Input) (map[string]string, error) {
	o, s, ints := in.Instance.OpenCTI, in.Secrets, in.Instance.Integrations
	search, rmq, rds, s3 := ints.OpenSearch, ints.RabbitMQ, ints.Redis, ints.S3
	nodes, err := jsonList(search.URLs)
	if err != nil {
		return nil, err
	}
	endpoint, err := url.Parse(s3.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("cannot plan opencti: cannot parse integrations.s3.endpoint: %w", err)
	}
	s3SSL := endpoint.Scheme == "https"
	s3Port := endpoint.Port()
	switch {
	case s3Port != "":
	case s3SSL:
		s3Port = "443"
	default:
		s3Port = "80"
	}

	env := map[string]string{
		"APP__PORT":                  strconv.Itoa(o.Port),
		"APP__BASE_URL":              o.PublicURL,
		"APP__ADMIN__EMAIL":          o.AdminEmail,
		"APP__ADMIN__PASSWORD":       s.AdminPassword,
		"APP__ADMIN__TOKEN":          s.AdminToken,
		"APP__HEALTH_ACCESS_KEY":     s.HealthAccessKey,
		"APP__ENCRYPTION_KEY":        s.EncryptionKey,
		"APP__APP_LOGS__LOGS_LEVEL":  string(o.LogLevel),
		"PROVIDERS__LOCAL__STRATEGY": "LocalStrategy",
		"NODE_OPTIONS":               "--max-old-space-size=8096",

		"APP__TELEMETRY__METRICS__ENABLED":             "true",
		"APP__TELEMETRY__METRICS__EXPORTER_PROMETHEUS": strconv.Itoa(o.MetricsPort),

		"REDIS__HOSTNAME": rds.Host,
		"REDIS__PORT":     strconv.Itoa(rds.Port),
		"REDIS__MODE":     string(rds.Mode),
		"REDIS__USE_SSL":  strconv.FormatBool(rds.UseSSL),
		"REDIS__TRIMMING": strconv.Itoa(*rds.Trimming),
		// Per-instance namespace and queue prefix: without them two instances on one
		// Redis/RabbitMQ share the init lock, manager locks, event stream and queues.
		"REDIS__NAMESPACE": rds.Namespace,

		"RABBITMQ__HOSTNAME":        rmq.Host,
		"RABBITMQ__PORT":            strconv.Itoa(rmq.Port),
		"RABBITMQ__PORT_MANAGEMENT": strconv.Itoa(rmq.ManagementPort),
		"RABBITMQ__MANAGEMENT_SSL":  strconv.FormatBool(rmq.ManagementSSL),
		"RABBITMQ__USERNAME":        rmq.Username,
		"RABBITMQ__PASSWORD":        s.RabbitMQPassword,
		"RABBITMQ__VHOST":           rmq.VHost,
		"RABBITMQ__USE_SSL":         strconv.FormatBool(rmq.UseSSL),
		"RABBITMQ__QUEUE_TYPE":      string(rmq.QueueType),
		"RABBITMQ__QUEUE_PREFIX":    rmq.QueuePrefix,

		"ELASTICSEARCH__URL":                nodes,
		"ELASTICSEARCH__ENGINE_SELECTOR":    string(search.Engine),
		"ELASTICSEARCH__INDEX_PREFIX":       in.Instance.Name,
		"ELASTICSEARCH__NUMBER_OF_REPLICAS": strconv.Itoa(search.Replicas),

		"MINIO__ENDPOINT":      endpoint.Hostname(),
		"MINIO__PORT":          s3Port,
		"MINIO__USE_SSL":       strconv.FormatBool(s3SSL),
		"MINIO__ACCESS_KEY":    s.S3AccessKey,
		"MINIO__SECRET_KEY":    s.S3SecretKey,
		"MINIO__BUCKET_NAME":   s3.Bucket,
		"MINIO__BUCKET_REGION": s3.Region,

		InstanceEnv: in.Instance.Name,
	}
	// Extra environment cannot shadow any of the above: spec validation refuses
	// the names in ReservedEnv, and this keeps the plan honest if it lags.
	for k, v := range o.Env {
		if _, taken := env[k]; taken {
			return nil, fmt.Errorf("cannot plan opencti: opencti.env.%s is set by socflow; remove it from opencti.env", k)
		}
		env[k] = v
	}
	// Optional settings are left out rather than set empty: OpenCTI treats an
	// empty string as a value (an empty base path, an empty password).
	setIf(env, "APP__BASE_PATH", o.BasePath)
	setIf(env, "REDIS__PASSWORD", s.RedisPassword)
	setIf(env, "ELASTICSEARCH__USERNAME", search.Username)
	setIf(env, "ELASTICSEARCH__PASSWORD", s.OpenSearchPassword)
	if s.OpenSearchCA != "" {
		env["ELASTICSEARCH__SSL__CA"] = openSearchCAPath(in)
		env["ELASTICSEARCH__SSL__REJECT_UNAUTHORIZED"] = "true"
	}
	return env, nil
}

func setIf(env map[string]string, k, v string) {
	if v != "" {
		env[k] = v
	}
}

// jsonList encodes a list the way OpenCTI reads list settings from the
// environment, without HTML escaping so URLs stay readable in "pebble plan".
func jsonList(items []string) (string, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(items); err != nil {
		return "", fmt.Errorf("cannot plan opencti: cannot encode opensearch urls: %w", err)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}
