// Package spec is the kit every app's instance spec is built from: secret
// references, the Pebble endpoint, the integration sections several apps share
// (OpenSearch, RabbitMQ, Redis, S3) with their defaults and checks, the
// Problem/ValidationError report and a strict parser. Each app's package
// (internal/opencti, …) composes them into its own spec; all of it is pure, so
// a bad spec fails in the starter, before any workflow history exists.
package spec

// Pebble says how to reach the Pebble API of the workload container; exactly
// one of Socket and URL is set. A socket needs the worker inside the workload
// pod; a URL lets the worker run anywhere, over HTTPS with mutual TLS (Pebble
// >= 1.26 started with --https): socflow pins the server's identity
// certificate and presents a client certificate registered in that Pebble as
// an identity with admin access.
type Pebble struct {
	// Socket is the absolute path of a local Pebble API socket.
	Socket string `json:"socket,omitempty"`
	// URL is a remote Pebble HTTPS API, https://host:port (`pebble run --https
	// host:port`); it requires ServerCert, ClientCert and ClientKey.
	URL string `json:"url,omitempty"`
	// ServerCert pins the server: the PEM identity certificate of that Pebble,
	// the file $PEBBLE/tls/identity.pem it writes at its first HTTPS
	// connection (a self-signed CA over its identity key, valid ten years).
	// Copy that file from the workload host, or take the second certificate
	// of `openssl s_client -showcerts -connect host:port` and compare its
	// fingerprint with the file's out of band. Only with URL; usually
	// file:/path. Not a secret, but a reference so it can live in a file.
	ServerCert SecretRef `json:"serverCert,omitempty"`
	// ClientCert is the PEM client certificate socflow presents: self-signed,
	// usable for client auth, and registered in that Pebble with `pebble
	// add-identities` as type cert, access admin. Only with URL.
	ClientCert SecretRef `json:"clientCert,omitempty"`
	// ClientKey is the PEM private key of ClientCert. Only with URL.
	ClientKey SecretRef `json:"clientKey,omitempty"`
}

// Engine is the search engine flavour (OpenCTI's ELASTICSEARCH__ENGINE_SELECTOR).
type Engine string

// The search engine flavours.
const (
	EngineAuto       Engine = "auto"
	EngineElk        Engine = "elk"
	EngineOpenSearch Engine = "opensearch"
)

// OpenSearch configures the search engine connection (integrations.opensearch):
// OpenCTI's search engine, and Wazuh's indexer, which is OpenSearch-based.
type OpenSearch struct {
	// URLs are the node URLs (default [http://127.0.0.1:9200]).
	URLs []string `json:"urls,omitempty"`
	// Username is the basic-auth user (optional, with Password).
	Username string `json:"username,omitempty"`
	// Password is the basic-auth password (optional, with Username).
	Password SecretRef `json:"password,omitempty"`
	// CA is a PEM CA bundle for https URLs (optional).
	CA SecretRef `json:"ca,omitempty"`
	// Engine selects the engine flavour (default opensearch).
	Engine Engine `json:"engine,omitempty"`
	// Replicas is the number of replicas per index (default 0).
	Replicas int `json:"replicas,omitempty"`
	// AllowMissingModules names modules/plugins the app needs that this cluster
	// may lack (e.g. index-management where it cannot be installed); each is
	// then reported as a warning instead of failing the deploy. The app checks
	// the names, since only it knows which modules it needs.
	AllowMissingModules []string `json:"allowMissingModules,omitempty"`
	// SnapshotRepository is the registered snapshot repository an upgrade backs the
	// instance's indices up into before it migrates them (empty: upgrades refuse,
	// since they could not roll back).
	SnapshotRepository string `json:"snapshotRepository,omitempty"`
}

// QueueType is the RabbitMQ queue type an app declares.
type QueueType string

// The queue types socflow supports.
const (
	QueueClassic QueueType = "classic"
	QueueQuorum  QueueType = "quorum"
)

// RabbitMQ configures the broker connection and its management API (integrations.rabbitmq).
type RabbitMQ struct {
	// Host is the broker host name or IP (required).
	Host string `json:"host,omitempty"`
	// Port is the AMQP port (default 5672).
	Port int `json:"port,omitempty"`
	// ManagementPort is the management HTTP API port (default 15672).
	ManagementPort int `json:"managementPort,omitempty"`
	// ManagementSSL uses https for the management API.
	ManagementSSL bool `json:"managementSSL,omitempty"`
	// UseSSL uses AMQPS.
	UseSSL bool `json:"useSSL,omitempty"`
	// VHost is the virtual host (default "/").
	VHost string `json:"vhost,omitempty"`
	// Username needs the administrator tag (required).
	Username string `json:"username,omitempty"`
	// Password is the user's password (required).
	Password SecretRef `json:"password,omitempty"`
	// QueueType is classic or quorum (default classic).
	QueueType QueueType `json:"queueType,omitempty"`
	// QueuePrefix prefixes the app's queue names (the app defaults it to the
	// instance name), so instances sharing a broker never consume each other's queues.
	QueuePrefix string `json:"queuePrefix,omitempty"`
}

// RedisMode is the Redis deployment mode.
type RedisMode string

// The Redis modes; socflow supports only RedisSingle so far.
const (
	RedisSingle   RedisMode = "single"
	RedisSentinel RedisMode = "sentinel"
	RedisCluster  RedisMode = "cluster"
)

// Redis configures the Redis connection (integrations.redis).
type Redis struct {
	// Host is the Redis host name or IP (required).
	Host string `json:"host,omitempty"`
	// Port is the Redis port (default 6379).
	Port int `json:"port,omitempty"`
	// Password is the Redis password (optional).
	Password SecretRef `json:"password,omitempty"`
	// Mode is the deployment mode (default single, the only one supported).
	Mode RedisMode `json:"mode,omitempty"`
	// UseSSL uses TLS to Redis.
	UseSSL bool `json:"useSSL,omitempty"`
	// Namespace prefixes the app's keys (the app defaults it to the instance
	// name), so instances sharing a Redis never share locks or streams.
	Namespace string `json:"namespace,omitempty"`
	// Trimming caps stream length (default 2000000); a pointer so that an
	// explicit 0, which would let streams grow until Redis runs out of memory,
	// is reported instead of silently defaulted.
	Trimming *int `json:"trimming,omitempty"`
}

// S3 configures the object store (MinIO or any S3 API; integrations.s3).
type S3 struct {
	// Endpoint is http(s)://host[:port] without a path (default http://127.0.0.1:9000).
	Endpoint string `json:"endpoint,omitempty"`
	// Region is the bucket region (default us-east-1).
	Region string `json:"region,omitempty"`
	// Bucket is the bucket name (the app gives the default).
	Bucket string `json:"bucket,omitempty"`
	// AccessKey is the S3 access key (required).
	AccessKey SecretRef `json:"accessKey,omitempty"`
	// SecretKey is the S3 secret key (required).
	SecretKey SecretRef `json:"secretKey,omitempty"`
}

// Defaults of the shared sections, named so that docs, tests and activities agree on them.
const (
	DefaultOpenSearchURL  = "http://127.0.0.1:9200"
	DefaultEngine         = EngineOpenSearch
	DefaultRabbitMQPort   = 5672
	DefaultManagementPort = 15672
	DefaultVHost          = "/"
	DefaultQueueType      = QueueClassic
	DefaultRedisPort      = 6379
	DefaultRedisMode      = RedisSingle
	DefaultTrimming       = 2000000
	DefaultS3Endpoint     = "http://127.0.0.1:9000"
	DefaultS3Region       = "us-east-1"
)

// WithDefaults returns a copy of s (nil stays nil) with unset fields
// defaulted; the receiver is never changed.
func (s *OpenSearch) WithDefaults() *OpenSearch {
	out := s.Clone()
	if out != nil {
		if len(out.URLs) == 0 {
			out.URLs = []string{DefaultOpenSearchURL}
		}
		Default(&out.Engine, DefaultEngine)
	}
	return out
}

// WithDefaults returns a copy of r (nil stays nil) with unset fields
// defaulted, the queue prefix to queuePrefix; the receiver is never changed.
func (r *RabbitMQ) WithDefaults(queuePrefix string) *RabbitMQ {
	out := r.Clone()
	if out != nil {
		Default(&out.Port, DefaultRabbitMQPort)
		Default(&out.ManagementPort, DefaultManagementPort)
		Default(&out.VHost, DefaultVHost)
		Default(&out.QueueType, DefaultQueueType)
		Default(&out.QueuePrefix, queuePrefix)
	}
	return out
}

// WithDefaults returns a copy of r (nil stays nil) with unset fields
// defaulted, the namespace to namespace; the receiver is never changed.
func (r *Redis) WithDefaults(namespace string) *Redis {
	out := r.Clone()
	if out != nil {
		Default(&out.Port, DefaultRedisPort)
		Default(&out.Mode, DefaultRedisMode)
		Default(&out.Namespace, namespace)
		DefaultPtr(&out.Trimming, DefaultTrimming)
	}
	return out
}

// WithDefaults returns a copy of s (nil stays nil) with unset fields
// defaulted, the bucket to bucket; the receiver is never changed.
func (s *S3) WithDefaults(bucket string) *S3 {
	out := s.Clone()
	if out != nil {
		Default(&out.Endpoint, DefaultS3Endpoint)
		Default(&out.Region, DefaultS3Region)
		Default(&out.Bucket, bucket)
	}
	return out
}

// Clone deep-copies s (nil stays nil), so copies never share a slice.
func (s *OpenSearch) Clone() *OpenSearch {
	if s == nil {
		return nil
	}
	c := *s
	if s.URLs != nil {
		c.URLs = append([]string{}, s.URLs...)
	}
	if s.AllowMissingModules != nil {
		c.AllowMissingModules = append([]string{}, s.AllowMissingModules...)
	}
	return &c
}

// Clone copies r (nil stays nil).
func (r *RabbitMQ) Clone() *RabbitMQ { return ClonePtr(r) }

// Clone deep-copies r (nil stays nil), so copies never share Trimming.
func (r *Redis) Clone() *Redis {
	if r == nil {
		return nil
	}
	c := *r
	c.Trimming = ClonePtr(r.Trimming)
	return &c
}

// Clone copies s (nil stays nil).
func (s *S3) Clone() *S3 { return ClonePtr(s) }

// ClonePtr returns a pointer to a copy of *p, or nil.
func ClonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

// Default sets *p to def when it holds the zero value, the one defaulting rule
// of every spec: an unset field takes the default, a set one is kept.
func Default[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// DefaultPtr points *p at a copy of def when it is nil; optional numbers are
// pointers so that an explicit 0 is told apart from "unset".
func DefaultPtr[T any](p **T, def T) {
	if *p == nil {
		*p = &def
	}
}
