package openctistandin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// Config is everything the stand-in platform needs; the env part mirrors OpenCTI's
// config keys and the rest stands for what is baked into a real image.
type Config struct {
	// Port is APP__PORT (default 4000, OpenCTI's default; 0 picks a free port).
	Port int
	// BaseURL is APP__BASE_URL, reported as settings.platform_url.
	BaseURL string
	// BasePath is APP__BASE_PATH normalised to "" or "/path" without a trailing slash.
	BasePath string
	// AdminEmail is APP__ADMIN__EMAIL (default admin@opencti.io).
	AdminEmail string
	// AdminPassword is APP__ADMIN__PASSWORD (default ChangeMe).
	AdminPassword string
	// AdminToken is APP__ADMIN__TOKEN. Like OpenCTI it is only validated (any UUID
	// version) when the admin user is initialised, ≈ 40 s into a boot, not at start.
	AdminToken string
	// HealthAccessKey is APP__HEALTH_ACCESS_KEY (default ChangeMe, which /health refuses).
	HealthAccessKey string
	// EncryptionKey is APP__ENCRYPTION_KEY, mandatory from 7.x (base64 of >= 32 bytes).
	EncryptionKey string
	// MetricsEnabled is APP__TELEMETRY__METRICS__ENABLED (default false).
	MetricsEnabled bool
	// MetricsPort is APP__TELEMETRY__METRICS__EXPORTER_PROMETHEUS (default 14269).
	MetricsPort int
	// PythonVenv is APP__PYTHON_EXECUTION_VENV: when set, its bin/python3 is the
	// interpreter checked at start instead of the one on PATH.
	PythonVenv string
	// SMTP holds SMTP__HOSTNAME and SMTP__PORT, checked at start as a warning only.
	SMTP SMTPConfig

	// Redis holds REDIS__*.
	Redis RedisConfig
	// RabbitMQ holds RABBITMQ__*.
	RabbitMQ RabbitMQConfig
	// Search holds ELASTICSEARCH__*.
	Search SearchConfig
	// S3 holds MINIO__*.
	S3 S3Config

	// Version is the OpenCTI version this binary pretends to be (default DefaultVersion).
	Version string
	// Timings are used as given: RealTimings() is the real platform's, tests pass
	// shorter ones (a zero duration means no delay).
	Timings Timings
	// Migrations is how many migrations the binary runs on data of an older
	// version (default DefaultMigrations, the 5 of §8's 6.9.28 -> 7.260318.0).
	Migrations int
	// FailMigration names a migration that fails when it runs, as a real one can:
	// a 1-based position among the Migrations of the version change, or a part of
	// its file name ("legacy_token_migration"); "" fails none. The migrations
	// before it stay recorded, since OpenCTI does not roll back.
	FailMigration string
	// HangMigration names a migration (as FailMigration does) at which the whole
	// platform freezes, as a paused VM or a stuck disk freezes it: no more lines, its
	// lock child stopped (so the init lock is no longer refreshed and expires), and a
	// SIGTERM that is never handled; only SIGKILL ends it. "" hangs at none.
	HangMigration string
	// Python is the interpreter checked at start (default python3; see PythonVenv).
	Python string
	// Executable is the binary re-executed as the init lock's child process
	// (default os.Executable(); a test binary must dispatch ChildLockArg itself).
	Executable string

	// Dir is the platform's working directory; its logs/ must be writable, as
	// OpenCTI writes its log files there (default ".").
	Dir string
	// Stdout receives the JSON log lines (default os.Stdout); they also go to
	// <Dir>/logs/opencti.log.
	Stdout io.Writer
	// Stderr receives the crash text of a start that fails before logging
	// (default os.Stderr), as node prints an uncaught exception.
	Stderr io.Writer
	// OnReady, if set, is called with the API's base URL once the port is open,
	// so tests and supervisors need not scrape the log.
	OnReady func(baseURL string)
}

// RedisConfig is REDIS__*; only the single mode is implemented by the stand-in.
type RedisConfig struct {
	// Hostname is REDIS__HOSTNAME (default localhost).
	Hostname string
	// Port is REDIS__PORT (default 6379).
	Port int
	// Password is REDIS__PASSWORD (default none).
	Password string
	// Mode is REDIS__MODE (default single).
	Mode string
	// Namespace is REDIS__NAMESPACE: when set every key is prefixed "<namespace>:",
	// as ioredis' keyPrefix does in OpenCTI.
	Namespace string
	// UseSSL is REDIS__USE_SSL (default false).
	UseSSL bool
	// Trimming is REDIS__TRIMMING, the approximate MAXLEN of stream.opencti (0: none).
	Trimming int64
}

// SMTPConfig is SMTP__*; OpenCTI only warns when SMTP does not answer.
type SMTPConfig struct {
	// Hostname is SMTP__HOSTNAME (default localhost).
	Hostname string
	// Port is SMTP__PORT (default 25).
	Port int
}

// RabbitMQConfig is RABBITMQ__*. Start-up needs AMQP only; the management API
// only feeds about.dependencies ("Disconnected" when it does not answer).
type RabbitMQConfig struct {
	// Hostname is RABBITMQ__HOSTNAME (default localhost).
	Hostname string
	// Port is RABBITMQ__PORT (default 5672).
	Port int
	// PortManagement is RABBITMQ__PORT_MANAGEMENT (default 15672).
	PortManagement int
	// ManagementSSL is RABBITMQ__MANAGEMENT_SSL (default false).
	ManagementSSL bool
	// Username is RABBITMQ__USERNAME (default guest).
	Username string
	// Password is RABBITMQ__PASSWORD (default guest).
	Password string
	// VHost is RABBITMQ__VHOST (default "/").
	VHost string
	// UseSSL is RABBITMQ__USE_SSL (default false).
	UseSSL bool
	// QueuePrefix is RABBITMQ__QUEUE_PREFIX: when set, queues, exchanges and routing
	// keys are prefixed "<prefix>_" as OpenCTI's RABBIT_QUEUE_PREFIX does.
	QueuePrefix string
	// QueueType is RABBITMQ__QUEUE_TYPE (default classic), the x-queue-type of queues.
	QueueType string
}

// SearchConfig is ELASTICSEARCH__*.
type SearchConfig struct {
	// URLs is ELASTICSEARCH__URL, a JSON list or one plain URL (default http://localhost:9200).
	URLs []string
	// Username is ELASTICSEARCH__USERNAME (default none).
	Username string
	// Password is ELASTICSEARCH__PASSWORD (default none).
	Password string
	// IndexPrefix is ELASTICSEARCH__INDEX_PREFIX (default opencti).
	IndexPrefix string
	// Replicas is ELASTICSEARCH__NUMBER_OF_REPLICAS (default 1, OpenCTI's default).
	Replicas int
}

// S3Config is MINIO__*.
type S3Config struct {
	// Endpoint is MINIO__ENDPOINT, a host name without scheme or port (default localhost).
	Endpoint string
	// Port is MINIO__PORT (default 9000).
	Port int
	// UseSSL is MINIO__USE_SSL (default false).
	UseSSL bool
	// AccessKey is MINIO__ACCESS_KEY (default ChangeMe).
	AccessKey string
	// SecretKey is MINIO__SECRET_KEY (default ChangeMe).
	SecretKey string
	// BucketName is MINIO__BUCKET_NAME (default opencti-bucket).
	BucketName string
	// BucketRegion is MINIO__BUCKET_REGION (default us-east-1).
	BucketRegion string
}

// Address is host:port of the S3 endpoint as minio-go wants it.
func (c S3Config) Address() string {
	return fmt.Sprintf("%s:%d", c.Endpoint, c.Port)
}

// DefaultVersion is the OpenCTI version the stand-in reports when none is given:
// 6.9.28, the release the charm's rock ships and the one whose pycti
// (deploy/local/stack installs pycti==6.9.28) the connector fixture runs on,
// since pycti must match its platform's version (docs/opencti.md §8).
const DefaultVersion = "6.9.28"

// envReader reads OpenCTI env names, remembering the first parse error so
// ConfigFromEnv reads as a flat list of fields.
type envReader struct {
	getenv func(string) string
	err    error
}

func (r *envReader) str(name, def string) string {
	if v := r.getenv(name); v != "" {
		return v
	}
	return def
}

func (r *envReader) integer(name string, def int) int {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		r.fail(fmt.Errorf("cannot parse %s=%q: want a port number", name, v))
		return def
	}
	return n
}

// countOr is count with a default for an unset variable.
func (r *envReader) countOr(name string, def int) int {
	if strings.TrimSpace(r.getenv(name)) == "" {
		return def
	}
	return r.count(name)
}

// count reads a non-negative number that is not a port.
func (r *envReader) count(name string) int {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		r.fail(fmt.Errorf("cannot parse %s=%q: want a non-negative number", name, v))
		return 0
	}
	return n
}

func (r *envReader) boolean(name string, def bool) bool {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(fmt.Errorf("cannot parse %s=%q: want true or false", name, v))
		return def
	}
	return b
}

func (r *envReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// ConfigFromEnv reads OpenCTI's environment variables through getenv (os.Getenv in main).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	r := &envReader{getenv: getenv}
	cfg := Config{
		Port:            r.integer("APP__PORT", 4000),
		BaseURL:         r.str("APP__BASE_URL", "http://localhost:4000/"),
		BasePath:        normaliseBasePath(r.getenv("APP__BASE_PATH")),
		AdminEmail:      r.str("APP__ADMIN__EMAIL", "admin@opencti.io"),
		AdminPassword:   r.str("APP__ADMIN__PASSWORD", "ChangeMe"),
		AdminToken:      strings.TrimSpace(r.getenv("APP__ADMIN__TOKEN")),
		HealthAccessKey: r.str("APP__HEALTH_ACCESS_KEY", "ChangeMe"),
		EncryptionKey:   r.getenv("APP__ENCRYPTION_KEY"),
		MetricsEnabled:  r.boolean("APP__TELEMETRY__METRICS__ENABLED", false),
		MetricsPort:     r.integer("APP__TELEMETRY__METRICS__EXPORTER_PROMETHEUS", 14269),
		PythonVenv:      strings.TrimSpace(r.getenv("APP__PYTHON_EXECUTION_VENV")),
		SMTP: SMTPConfig{
			Hostname: r.str("SMTP__HOSTNAME", "localhost"),
			Port:     r.integer("SMTP__PORT", 25),
		},
		Redis: RedisConfig{
			Hostname:  r.str("REDIS__HOSTNAME", "localhost"),
			Port:      r.integer("REDIS__PORT", 6379),
			Password:  r.getenv("REDIS__PASSWORD"),
			Mode:      r.str("REDIS__MODE", "single"),
			Namespace: strings.TrimSpace(r.getenv("REDIS__NAMESPACE")),
			UseSSL:    r.boolean("REDIS__USE_SSL", false),
			Trimming:  int64(r.count("REDIS__TRIMMING")),
		},
		RabbitMQ: RabbitMQConfig{
			Hostname:       r.str("RABBITMQ__HOSTNAME", "localhost"),
			Port:           r.integer("RABBITMQ__PORT", 5672),
			PortManagement: r.integer("RABBITMQ__PORT_MANAGEMENT", 15672),
			ManagementSSL:  r.boolean("RABBITMQ__MANAGEMENT_SSL", false),
			Username:       r.str("RABBITMQ__USERNAME", "guest"),
			Password:       r.str("RABBITMQ__PASSWORD", "guest"),
			VHost:          r.str("RABBITMQ__VHOST", "/"),
			UseSSL:         r.boolean("RABBITMQ__USE_SSL", false),
			QueuePrefix:    strings.TrimSpace(r.getenv("RABBITMQ__QUEUE_PREFIX")),
			QueueType:      r.str("RABBITMQ__QUEUE_TYPE", "classic"),
		},
		Search: SearchConfig{
			Username:    r.getenv("ELASTICSEARCH__USERNAME"),
			Password:    r.getenv("ELASTICSEARCH__PASSWORD"),
			IndexPrefix: r.str("ELASTICSEARCH__INDEX_PREFIX", "opencti"),
			Replicas:    r.countOr("ELASTICSEARCH__NUMBER_OF_REPLICAS", 1),
		},
		S3: S3Config{
			Endpoint:     r.str("MINIO__ENDPOINT", "localhost"),
			Port:         r.integer("MINIO__PORT", 9000),
			UseSSL:       r.boolean("MINIO__USE_SSL", false),
			AccessKey:    r.str("MINIO__ACCESS_KEY", "ChangeMe"),
			SecretKey:    r.str("MINIO__SECRET_KEY", "ChangeMe"),
			BucketName:   r.str("MINIO__BUCKET_NAME", "opencti-bucket"),
			BucketRegion: r.str("MINIO__BUCKET_REGION", "us-east-1"),
		},
	}
	if r.err != nil {
		return Config{}, r.err
	}
	urls, err := parseSearchURLs(r.str("ELASTICSEARCH__URL", "http://localhost:9200"))
	if err != nil {
		return Config{}, err
	}
	cfg.Search.URLs = urls
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// parseSearchURLs accepts OpenCTI's JSON list form and the plain single-URL form
// that nconf also tolerates, since deployments use both.
func parseSearchURLs(v string) ([]string, error) {
	v = strings.TrimSpace(v)
	var urls []string
	switch {
	case strings.HasPrefix(v, "["):
		if err := json.Unmarshal([]byte(v), &urls); err != nil {
			return nil, fmt.Errorf("cannot parse ELASTICSEARCH__URL as a JSON list: %w", err)
		}
	case strings.HasPrefix(v, `"`):
		var one string
		if err := json.Unmarshal([]byte(v), &one); err != nil {
			return nil, fmt.Errorf("cannot parse ELASTICSEARCH__URL as a JSON string: %w", err)
		}
		urls = []string{one}
	default:
		urls = []string{v}
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("cannot use ELASTICSEARCH__URL: the list is empty")
	}
	for _, u := range urls {
		parsed, err := url.Parse(u)
		if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
			return nil, fmt.Errorf("cannot use ELASTICSEARCH__URL entry %q: want http(s)://host:port", u)
		}
	}
	return urls, nil
}

// normaliseBasePath turns "", "/", "opencti/" and "/opencti" into "" or "/opencti"
// so routes are built by plain concatenation.
func normaliseBasePath(p string) string {
	p = strings.Trim(strings.TrimSpace(p), "/")
	if p == "" {
		return ""
	}
	return "/" + p
}

// validate rejects what OpenCTI itself refuses at start, naming the variable; the
// admin token is not among them (see checkAdminToken).
func (c Config) validate() error {
	if c.Redis.Mode != "single" {
		return fmt.Errorf("cannot use REDIS__MODE=%q: the stand-in implements only single", c.Redis.Mode)
	}
	if strings.Contains(c.S3.Endpoint, "/") || strings.Contains(c.S3.Endpoint, ":") {
		return fmt.Errorf("cannot use MINIO__ENDPOINT=%q: want a host name only (port and TLS are MINIO__PORT and MINIO__USE_SSL)", c.S3.Endpoint)
	}
	if c.Search.IndexPrefix == "" {
		return fmt.Errorf("cannot use an empty ELASTICSEARCH__INDEX_PREFIX")
	}
	return nil
}
