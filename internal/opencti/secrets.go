package opencti

import (
	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/spec"
)

// InstanceSecrets are the references of the secrets socflow generates per instance (or
// takes from the spec); workflows carry only these references, never the values. It is
// the per-app contract between EnsureInstanceSecrets, the plan and the workflow.
type InstanceSecrets struct {
	// AdminToken refers to the admin API token (a UUIDv4).
	AdminToken spec.SecretRef `json:"adminToken"`
	// HealthAccessKey refers to the key of the /health endpoint.
	HealthAccessKey spec.SecretRef `json:"healthAccessKey"`
	// EncryptionKey refers to APP__ENCRYPTION_KEY (mandatory from OpenCTI 7).
	EncryptionKey spec.SecretRef `json:"encryptionKey"`
}

// Secret is one row of OpenCTI's secret table.
type Secret = spec.Secret[Instance, InstanceSecrets, Secrets]

// workers names every worker service in a Use.
const workers = "worker-*"

// SecretTable is every secret of an OpenCTI spec, in field order: redaction
// (Instance.Redacted), resolution (the ApplyOpenCTIPlan activity), the plan's checks
// and EnsureInstanceSecrets all walk it, so a secret is added in one place.
var SecretTable = spec.SecretTable[Instance, InstanceSecrets, Secrets]{
	{
		Field: "opencti.adminPassword", Required: true,
		Ref:   func(i *Instance) *spec.SecretRef { return &i.OpenCTI.AdminPassword },
		Value: func(s *Secrets) *string { return &s.AdminPassword },
		Uses:  []spec.Use{{Service: PlatformService, Env: "APP__ADMIN__PASSWORD"}},
	},
	{
		Field:     "opencti.adminToken",
		Ref:       func(i *Instance) *spec.SecretRef { return &i.OpenCTI.AdminToken },
		Generate:  &spec.Generator{Key: "admin-token", New: secrets.NewUUIDv4},
		Generated: func(g *InstanceSecrets) *spec.SecretRef { return &g.AdminToken },
		Value:     func(s *Secrets) *string { return &s.AdminToken },
		Check:     CheckAdminToken,
		Uses:      []spec.Use{{Service: PlatformService, Env: "APP__ADMIN__TOKEN"}, {Service: workers, Env: "OPENCTI_TOKEN"}},
	},
	{
		Field:     "opencti.healthAccessKey",
		Ref:       func(i *Instance) *spec.SecretRef { return &i.OpenCTI.HealthAccessKey },
		Generate:  &spec.Generator{Key: "health-access-key", New: func() (string, error) { return secrets.NewHex(16) }},
		Generated: func(g *InstanceSecrets) *spec.SecretRef { return &g.HealthAccessKey },
		Value:     func(s *Secrets) *string { return &s.HealthAccessKey },
		Check:     CheckHealthAccessKey,
		// The ready check's URL carries it too (ReadyCheck).
		Uses: []spec.Use{{Service: PlatformService, Env: "APP__HEALTH_ACCESS_KEY"}},
	},
	{
		Field:     "opencti.encryptionKey",
		Ref:       func(i *Instance) *spec.SecretRef { return &i.OpenCTI.EncryptionKey },
		Generate:  &spec.Generator{Key: "encryption-key", New: func() (string, error) { return secrets.NewBase64Key(32) }},
		Generated: func(g *InstanceSecrets) *spec.SecretRef { return &g.EncryptionKey },
		Value:     func(s *Secrets) *string { return &s.EncryptionKey },
		Check:     CheckEncryptionKey,
		Uses:      []spec.Use{{Service: PlatformService, Env: "APP__ENCRYPTION_KEY"}},
	},
	// Pebble's TLS material is read by the socflow worker to reach the container,
	// never planned into it.
	{Field: "pebble.serverCert", Ref: func(i *Instance) *spec.SecretRef { return &i.Pebble.ServerCert }},
	{Field: "pebble.clientCert", Ref: func(i *Instance) *spec.SecretRef { return &i.Pebble.ClientCert }},
	{Field: "pebble.clientKey", Ref: func(i *Instance) *spec.SecretRef { return &i.Pebble.ClientKey }},
	{
		Field: "integrations.opensearch.password",
		Ref: func(i *Instance) *spec.SecretRef {
			if s := i.Integrations.OpenSearch; s != nil {
				return &s.Password
			}
			return nil
		},
		Value: func(s *Secrets) *string { return &s.OpenSearchPassword },
		Uses:  []spec.Use{{Service: PlatformService, Env: "ELASTICSEARCH__PASSWORD"}},
	},
	{
		Field: "integrations.opensearch.ca",
		Ref: func(i *Instance) *spec.SecretRef {
			if s := i.Integrations.OpenSearch; s != nil {
				return &s.CA
			}
			return nil
		},
		Value: func(s *Secrets) *string { return &s.OpenSearchCA },
		Check: spec.CheckCA,
		// A file under <platformDir>/config, named by ELASTICSEARCH__SSL__CA.
		Uses: []spec.Use{{Service: PlatformService}},
	},
	{
		Field: "integrations.rabbitmq.password", Required: true,
		Ref: func(i *Instance) *spec.SecretRef {
			if r := i.Integrations.RabbitMQ; r != nil {
				return &r.Password
			}
			return nil
		},
		Value: func(s *Secrets) *string { return &s.RabbitMQPassword },
		Uses:  []spec.Use{{Service: PlatformService, Env: "RABBITMQ__PASSWORD"}},
	},
	{
		Field: "integrations.redis.password",
		Ref: func(i *Instance) *spec.SecretRef {
			if r := i.Integrations.Redis; r != nil {
				return &r.Password
			}
			return nil
		},
		Value: func(s *Secrets) *string { return &s.RedisPassword },
		Uses:  []spec.Use{{Service: PlatformService, Env: "REDIS__PASSWORD"}},
	},
	{
		Field: "integrations.s3.accessKey", Required: true,
		Ref: func(i *Instance) *spec.SecretRef {
			if s := i.Integrations.S3; s != nil {
				return &s.AccessKey
			}
			return nil
		},
		Value: func(s *Secrets) *string { return &s.S3AccessKey },
		Uses:  []spec.Use{{Service: PlatformService, Env: "MINIO__ACCESS_KEY"}},
	},
	{
		Field: "integrations.s3.secretKey", Required: true,
		Ref: func(i *Instance) *spec.SecretRef {
			if s := i.Integrations.S3; s != nil {
				return &s.SecretKey
			}
			return nil
		},
		Value: func(s *Secrets) *string { return &s.S3SecretKey },
		Uses:  []spec.Use{{Service: PlatformService, Env: "MINIO__SECRET_KEY"}},
	},
}

// Mask is what a diff of OpenCTI's layers may show of an environment value: secrets
// (by the table) as "<secret>", and the values of opencti.env's extra variables, which
// socflow cannot tell from secrets, as layer.Hidden; the values socflow derives from
// the spec's plain settings are shown, so a preview says what changes.
func Mask(service, key, value string) string {
	if _, known := ReservedEnv[key]; service == PlatformService && !known {
		return layer.Hidden
	}
	return SecretTable.Mask(service, key, value)
}
