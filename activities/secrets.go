package activities

import (
	"context"
	"fmt"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/spec"
)

// EnsureInstanceSecretsInput names the instance and the secrets its spec already gives.
type EnsureInstanceSecretsInput struct {
	// Instance is the instance name: the store key.
	Instance string `json:"instance"`
	// AdminToken, HealthAccessKey and EncryptionKey are the spec's references; empty
	// ones are generated once and kept in the secret store.
	AdminToken      spec.SecretRef `json:"adminToken,omitempty"`
	HealthAccessKey spec.SecretRef `json:"healthAccessKey,omitempty"`
	EncryptionKey   spec.SecretRef `json:"encryptionKey,omitempty"`
}

// EnsureInstanceSecretsResult holds references only, plus what this call generated.
type EnsureInstanceSecretsResult struct {
	// Secrets are the references the rest of the deploy uses.
	Secrets InstanceSecrets `json:"secrets"`
	// Generated names the secrets this call created (empty on every later run).
	Generated []string `json:"generated,omitempty"`
}

// EnsureInstanceSecrets returns the instance's admin token, health key and encryption key
// references, generating missing ones once. A generated secret is never regenerated: the
// platform's data is encrypted with the key and its users hold the token.
func (a *Activities) EnsureInstanceSecrets(ctx context.Context, in EnsureInstanceSecretsInput) (EnsureInstanceSecretsResult, error) {
	var res EnsureInstanceSecretsResult
	items := []struct {
		field, key string
		given      spec.SecretRef
		gen        func() (string, error)
		check      func(string) error
		dst        *spec.SecretRef
	}{
		{"opencti.adminToken", "admin-token", in.AdminToken, secrets.NewUUIDv4, opencti.CheckAdminToken, &res.Secrets.AdminToken},
		{"opencti.healthAccessKey", "health-access-key", in.HealthAccessKey, func() (string, error) { return secrets.NewHex(16) }, opencti.CheckHealthAccessKey, &res.Secrets.HealthAccessKey},
		{"opencti.encryptionKey", "encryption-key", in.EncryptionKey, func() (string, error) { return secrets.NewBase64Key(32) }, opencti.CheckEncryptionKey, &res.Secrets.EncryptionKey},
	}
	for _, it := range items {
		if it.given.IsZero() {
			ref, created, err := a.Secrets.Ensure(in.Instance, it.key, it.gen)
			if err != nil {
				return res, fmt.Errorf("cannot ensure %s: %w", it.field, err)
			}
			if created {
				res.Generated = append(res.Generated, it.field)
			}
			*it.dst = ref
			continue
		}
		// A given reference is checked now, so a bad value fails here with its field
		// name rather than as a platform that never becomes healthy.
		v, err := a.resolve(it.field, it.given)
		if err != nil {
			return res, classify(err)
		}
		if err := it.check(v); err != nil {
			return res, permanent(ErrTypeInvalidInput, fmt.Errorf("%s: %w", it.field, err))
		}
		*it.dst = it.given
	}
	return res, nil
}
