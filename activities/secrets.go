package activities

import (
	"context"
	"fmt"

	"github.com/socflow/socflow/internal/opencti"
)

// EnsureInstanceSecretsInput names the instance and the secrets its spec already gives.
type EnsureInstanceSecretsInput struct {
	// Instance is the instance name: the store key.
	Instance string `json:"instance"`
	// InstanceSecrets are the spec's references (opencti.SecretTable.Given); empty
	// ones are generated once and kept in the secret store.
	opencti.InstanceSecrets
}

// EnsureInstanceSecretsResult holds references only, plus what this call generated.
type EnsureInstanceSecretsResult struct {
	// Secrets are the references the rest of the deploy uses.
	Secrets opencti.InstanceSecrets `json:"secrets"`
	// Generated names the secrets this call created (empty on every later run).
	Generated []string `json:"generated,omitempty"`
}

// EnsureInstanceSecrets returns the references of the secrets socflow generates (OpenCTI's
// admin token, health key and encryption key), generating missing ones once. A generated
// secret is never regenerated: the platform's data is encrypted with the key and its users
// hold the token.
func (a *Activities) EnsureInstanceSecrets(ctx context.Context, in EnsureInstanceSecretsInput) (EnsureInstanceSecretsResult, error) {
	var res EnsureInstanceSecretsResult
	for _, it := range opencti.SecretTable {
		if it.Generate == nil {
			continue
		}
		given, dst := *it.Generated(&in.InstanceSecrets), it.Generated(&res.Secrets)
		if given.IsZero() {
			ref, created, err := a.Secrets.Ensure(in.Instance, it.Generate.Key, it.Generate.New)
			if err != nil {
				return res, fmt.Errorf("cannot ensure %s: %w", it.Field, err)
			}
			if created {
				res.Generated = append(res.Generated, it.Field)
			}
			*dst = ref
			continue
		}
		// A given reference is checked now, so a bad value fails here with its field
		// name rather than as a platform that never becomes healthy.
		v, err := a.resolve(it.Field, given)
		if err != nil {
			return res, classify(err)
		}
		if err := it.Check(v); err != nil {
			return res, permanent(ErrTypeInvalidInput, fmt.Errorf("%s: %w", it.Field, err))
		}
		*dst = given
	}
	return res, nil
}
