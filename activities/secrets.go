package activities

import (
	"context"
	"fmt"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/spec"
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
	var err error
	res.Generated, err = ensureSecrets(a, in.Instance, opencti.SecretTable, &in.InstanceSecrets, &res.Secrets)
	return res, err
}

// ensureSecrets fills out, an app's struct of generated-secret references, from given:
// a given reference is checked now (so a bad value fails here with its field name,
// not as a workload that never comes up), a missing one is generated once and kept in
// the secret store, never regenerated. It returns the fields it created.
func ensureSecrets[S, G, V any](a *Activities, instance string, table spec.SecretTable[S, G, V], given, out *G) ([]string, error) {
	var generated []string
	for _, it := range table {
		if it.Generate == nil {
			continue
		}
		ref, dst := *it.Generated(given), it.Generated(out)
		if ref.IsZero() {
			ref, created, err := a.Secrets.Ensure(instance, it.Generate.Key, it.Generate.New)
			if err != nil {
				return generated, fmt.Errorf("cannot ensure %s: %w", it.Field, err)
			}
			if created {
				generated = append(generated, it.Field)
			}
			*dst = ref
			continue
		}
		v, err := a.resolve(it.Field, ref)
		if err != nil {
			return generated, classify(err)
		}
		if it.Check != nil {
			if err := it.Check(v); err != nil {
				return generated, permanent(ErrTypeInvalidInput, fmt.Errorf("%s: %w", it.Field, err))
			}
		}
		*dst = ref
	}
	return generated, nil
}

// RotateInstanceSecretInput names one generated secret of an instance and the
// generation to create.
type RotateInstanceSecretInput struct {
	// Instance is the instance name: the store key.
	Instance string `json:"instance"`
	// Field is the secret's spec field, e.g. opencti.adminToken.
	Field string `json:"field"`
	// Generation numbers the rotation (1 for the first); the workflow counts them.
	Generation int `json:"generation"`
}

// RotateInstanceSecretResult is the new value's reference, never the value.
type RotateInstanceSecretResult struct {
	// Ref refers to the new value.
	Ref spec.SecretRef `json:"ref"`
	// Created says whether this call generated it (false when a retry finds it).
	Created bool `json:"created"`
}

// RotatedKey is the store key of generation gen of a generated secret: each rotation
// writes a new entry, so the value the running platform uses stays readable until
// the reconcile has replaced it, and a retried rotation finds its own value.
func RotatedKey(key string, gen int) string { return fmt.Sprintf("%s-%d", key, gen) }

// RotateInstanceSecret generates a new value for one generated secret under the
// generation's own key, once: a retry returns the value the first attempt stored.
func (a *Activities) RotateInstanceSecret(ctx context.Context, in RotateInstanceSecretInput) (RotateInstanceSecretResult, error) {
	for _, it := range opencti.SecretTable {
		if it.Field != in.Field {
			continue
		}
		if it.Generate == nil || in.Generation < 1 {
			return RotateInstanceSecretResult{}, permanent(ErrTypeInvalidInput,
				fmt.Errorf("%s is not a secret socflow generates, or generation %d is not a rotation", in.Field, in.Generation))
		}
		ref, created, err := a.Secrets.Ensure(in.Instance, RotatedKey(it.Generate.Key, in.Generation), it.Generate.New)
		if err != nil {
			return RotateInstanceSecretResult{}, fmt.Errorf("cannot rotate %s: %w", in.Field, err)
		}
		return RotateInstanceSecretResult{Ref: ref, Created: created}, nil
	}
	return RotateInstanceSecretResult{}, permanent(ErrTypeInvalidInput, fmt.Errorf("%s is not a secret of an OpenCTI instance", in.Field))
}

// CheckInstanceSecretInput names one secret of OpenCTI's table and its reference.
type CheckInstanceSecretInput struct {
	// Field is the secret's spec field, e.g. opencti.encryptionKey.
	Field string `json:"field"`
	// Ref is its reference.
	Ref spec.SecretRef `json:"ref"`
}

// CheckInstanceSecretResult says whether the secret is usable.
type CheckInstanceSecretResult struct {
	// Problem is why it is not ("" when it is).
	Problem string `json:"problem,omitempty"`
}

// CheckInstanceSecret reads a secret and checks its value as the table says the
// platform will (an upgrade's pre-flight asks before 7.x needs the encryption key);
// an unreadable or bad value is a finding, not an error, so it is reported with
// every other finding at once.
func (a *Activities) CheckInstanceSecret(ctx context.Context, in CheckInstanceSecretInput) (CheckInstanceSecretResult, error) {
	for _, it := range opencti.SecretTable {
		if it.Field != in.Field {
			continue
		}
		if in.Ref.IsZero() {
			return CheckInstanceSecretResult{Problem: "no reference is set"}, nil
		}
		v, err := a.resolve(it.Field, in.Ref)
		if err != nil {
			return CheckInstanceSecretResult{Problem: err.Error()}, nil
		}
		if it.Check != nil {
			if err := it.Check(v); err != nil {
				return CheckInstanceSecretResult{Problem: fmt.Sprintf("%s: %v", in.Ref, err)}, nil
			}
		}
		return CheckInstanceSecretResult{}, nil
	}
	return CheckInstanceSecretResult{}, permanent(ErrTypeInvalidInput, fmt.Errorf("%s is not a secret of an OpenCTI instance", in.Field))
}
