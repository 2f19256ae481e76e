package spec

import (
	"errors"
	"fmt"
	"strings"
)

// Secret is one row of an app's secret table: where the secret sits in the spec, how
// socflow obtains it, how a value is checked and which services consume it. Redaction,
// resolution, the planner's checks and secret generation all walk the same rows, so a
// secret added to a spec is added once. S is the app's instance spec, G the struct of
// references EnsureInstanceSecrets returns for generated secrets, V the struct of
// resolved values the planner reads.
type Secret[S, G, V any] struct {
	// Field is the secret's JSON path (opencti.adminToken), used in every message.
	Field string
	// Ref points at the reference in the spec, or returns nil when its section is absent.
	Ref func(*S) *SecretRef
	// Required says a resolved value must not be empty; validation enforces the ref.
	Required bool
	// Generate, when set, makes socflow create the secret once when the spec leaves it
	// unset; Generated then points at its reference in G.
	Generate *Generator
	// Generated points at the secret's reference in G; set exactly when Generate is.
	Generated func(*G) *SecretRef
	// Value points at where the resolved value goes in V, or is nil for a secret the
	// plan never carries (Pebble's TLS material, which only the socflow worker reads).
	Value func(*V) *string
	// Check reports why a resolved value cannot be used; nil accepts any value.
	Check func(string) error
	// Uses are the places the value ends up in the plan.
	Uses []Use
}

// Generator is how socflow creates a secret the spec leaves unset.
type Generator struct {
	// Key names the secret in the secret store, under the instance's name.
	Key string
	// New returns a fresh value; it is called once per instance, ever.
	New func() (string, error)
}

// Use is one place a secret's value ends up in a plan.
type Use struct {
	// Service is the Pebble service's name, or a prefix ending in "*" for a
	// family of services (worker-*).
	Service string
	// Env is the environment variable carrying the value, or "" when the value
	// goes into a file the service reads.
	Env string
}

// SecretTable lists an app's secrets in field order; the order is the order of
// messages, so it is the order of the spec.
type SecretTable[S, G, V any] []Secret[S, G, V]

// Refs returns pointers to every reference of inst, the generated ones' spec
// fields included, skipping sections inst does not have.
func (t SecretTable[S, G, V]) Refs(inst *S) []*SecretRef {
	var refs []*SecretRef
	for _, s := range t {
		if r := s.Ref(inst); r != nil {
			refs = append(refs, r)
		}
	}
	return refs
}

// Given returns the references the spec gives for the generated secrets, in
// G's shape, for socflow to generate the unset ones.
func (t SecretTable[S, G, V]) Given(inst *S) G {
	var g G
	for _, s := range t {
		if s.Generate == nil {
			continue
		}
		if r := s.Ref(inst); r != nil {
			*s.Generated(&g) = *r
		}
	}
	return g
}

// WithGiven returns gen with each generated secret the spec gives a reference for
// pointing at that reference: a spec change that names a secret of its own replaces
// the one socflow generated (or the one given before).
func (t SecretTable[S, G, V]) WithGiven(inst *S, gen G) G {
	for _, s := range t {
		if s.Generate == nil {
			continue
		}
		if r := s.Ref(inst); r != nil && !r.IsZero() {
			*s.Generated(&gen) = *r
		}
	}
	return gen
}

// Resolve reads the value of every secret the plan carries, through resolve;
// generated secrets are read through their reference in gen, the others
// through the spec's. Unset optional secrets stay empty.
func (t SecretTable[S, G, V]) Resolve(inst *S, gen *G, resolve func(field string, ref SecretRef) (string, error)) (V, error) {
	var v V
	for _, s := range t {
		if s.Value == nil {
			continue
		}
		ref := s.ref(inst)
		if s.Generated != nil {
			ref = *s.Generated(gen)
		}
		if ref.IsZero() {
			continue
		}
		val, err := resolve(s.Field, ref)
		if err != nil {
			var zero V
			return zero, err
		}
		*s.Value(&v) = val
	}
	return v, nil
}

// CheckResolved reports every way v does not fit inst: a required or generated
// value that is empty or fails its check, an optional one resolved although the
// spec leaves it unset or the reverse (either is a resolver bug, and guessing
// would silently change what the app runs with), and a NUL byte, which no
// environment variable can hold. Messages name fields, never values.
func (t SecretTable[S, G, V]) CheckResolved(inst *S, v *V) error {
	var errs []error
	// Required and generated secrets first, then optional ones, as users fix them.
	for _, s := range t {
		if s.Value == nil || s.optional() {
			continue
		}
		switch val := *s.Value(v); {
		case val == "" && s.Generate != nil:
			errs = append(errs, fmt.Errorf("resolved %s is empty (socflow generates it when the spec leaves it unset)", s.Field))
		case val == "":
			errs = append(errs, fmt.Errorf("resolved %s is empty", s.Field))
		case s.Check != nil:
			errs = append(errs, s.Check(val))
		}
	}
	for _, s := range t {
		if s.Value != nil && s.optional() {
			errs = append(errs, consistent(s.Field, s.ref(inst), *s.Value(v)))
		}
	}
	for _, s := range t {
		if s.Value != nil && s.optional() && s.Check != nil && *s.Value(v) != "" {
			errs = append(errs, s.Check(*s.Value(v)))
		}
	}
	for _, s := range t {
		if s.Value != nil && strings.ContainsRune(*s.Value(v), 0) {
			// Process environments are NUL-terminated strings.
			errs = append(errs, errors.New("a resolved secret contains a NUL byte, which no environment variable can hold"))
			break
		}
	}
	return errors.Join(errs...)
}

// Carries reports whether the environment variable key of service holds a
// secret, by the table's Uses.
func (t SecretTable[S, G, V]) Carries(service, key string) bool {
	for _, s := range t {
		for _, u := range s.Uses {
			if u.Env == key && u.matches(service) {
				return true
			}
		}
	}
	return false
}

// Mask hides the values of the environment variables that carry secrets; it has
// the shape of layer.Mask, for diffs of an app's layers.
func (t SecretTable[S, G, V]) Mask(service, key, value string) string {
	if t.Carries(service, key) {
		return redactedSecret
	}
	return value
}

// redactedSecret replaces a secret's value in a diff.
const redactedSecret = "<secret>"

// ref is the spec's reference, or the zero ref when the section is absent.
func (s Secret[S, G, V]) ref(inst *S) SecretRef {
	if r := s.Ref(inst); r != nil {
		return *r
	}
	return ""
}

// optional reports a secret the spec may leave unset and socflow does not generate.
func (s Secret[S, G, V]) optional() bool { return !s.Required && s.Generate == nil }

// matches reports whether the use names service, directly or by prefix.
func (u Use) matches(service string) bool {
	if p, ok := strings.CutSuffix(u.Service, "*"); ok {
		return strings.HasPrefix(service, p)
	}
	return u.Service == service
}

// consistent reports an optional secret resolved to a value the spec did not
// ask for, or not resolved although it did.
func consistent(field string, ref SecretRef, v string) error {
	switch {
	case ref.IsZero() && v != "":
		return fmt.Errorf("resolved %s has a value but the spec leaves it unset", field)
	case !ref.IsZero() && v == "":
		return fmt.Errorf("resolved %s is empty although the spec sets it to %s", field, ref)
	}
	return nil
}
