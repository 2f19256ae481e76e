package workflows

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/spec"
)

// change is one decoded change request of the instance workflow. Every kind reduces
// to the spec it leaves (a rotation also to new secret values), so one reconcile
// applies them all.
type change interface {
	// requestID is the request's ID ("" when the sender gave none).
	requestID() string
	// validate judges the change against base, the spec it would apply to (the applied
	// spec with the changes queued before it), naming the field and the fix.
	validate(base opencti.Instance) error
	// next returns the spec after the change; base is never modified.
	next(base opencti.Instance) opencti.Instance
	// summary says on one line what the change does to base.
	summary(base opencti.Instance) string
}

// changeKind is how one change name's JSON is decoded.
type changeKind struct {
	// fields lists what the request takes, as the fix of a decoding problem.
	fields string
	decode func(raw []byte, fix string) (change, error)
}

// decodeAs decodes a request of type T strictly (spec.DecodeJSON).
func decodeAs[T change](raw []byte, fix string) (change, error) {
	r, err := spec.DecodeJSON[T](raw, fix)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// changeKinds maps each change name (ChangeNames) to its request's decoding.
var changeKinds = map[string]changeKind{
	SetConfigUpdate: {decode: decodeAs[SetConfigRequest],
		fields: `requestId (string), workers (number, 1..32), logLevel (error|warn|info|debug), publicURL, basePath, adminEmail (strings)`},
	SetIntegrationUpdate: {decode: decodeAs[SetIntegrationRequest],
		fields: `requestId (string) and one or more of opensearch, rabbitmq, redis, s3, each the integration's section as in the spec`},
	RemoveIntegrationUpdate: {decode: decodeAs[RemoveIntegrationRequest],
		fields: `requestId (string), integration (opensearch|rabbitmq|redis|s3)`},
	RotateSecretUpdate: {decode: decodeAs[RotateSecretRequest],
		fields: `requestId (string), secret (a secret's spec field, e.g. opencti.adminToken)`},
	ApplySpecUpdate: {decode: decodeAs[ApplySpecRequest],
		fields: `requestId (string), spec (the instance spec as JSON)`},
	AddConnectorUpdate: {decode: decodeAs[AddConnectorRequest],
		fields: `requestId (string), connector (an entry of the spec's connectors: name, type, scope, command, workingDir, pebble, logLevel, config)`},
	RemoveConnectorUpdate: {decode: decodeAs[RemoveConnectorRequest],
		fields: `requestId (string), name (the connector's name)`},
	UpgradeUpdate: {decode: decodeAs[UpgradeRequest],
		fields: `requestId (string), targetVersion (e.g. 7.260318.0), platformCommand, workerCommand (strings), connectorCommands (name: command), check (boolean)`},
}

// decodeChange decodes the JSON of a change of the given name; a problem names the
// field and lists what the change takes.
func decodeChange(name string, raw []byte) (change, error) {
	k, ok := changeKinds[name]
	if !ok {
		return nil, fmt.Errorf("%s is not a change of an OpenCTI instance (changes: %s)", name, strings.Join(ChangeNames, ", "))
	}
	c, err := k.decode(raw, "send "+k.fields)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// checkChange decodes a change and validates it against base: what the Update
// validators, the Signal twins and Preview all run, so they judge alike.
func checkChange(name string, raw []byte, base opencti.Instance) (change, error) {
	c, err := decodeChange(name, raw)
	if err != nil {
		return nil, err
	}
	if err := c.validate(base); err != nil {
		return c, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// requestIDOf reads the request ID of a change whose JSON may be bad, so a rejected
// signal is still listed under the ID its sender looks for.
func requestIDOf(raw []byte) string {
	var id struct {
		RequestID string `json:"requestId"`
	}
	_ = json.Unmarshal(raw, &id)
	return id.RequestID
}

// problem is a one-problem validation error.
func problem(field, msg, fix string) error {
	var c spec.Checker
	c.Add(field, msg, fix)
	return c.Err()
}

// checkNext validates the spec a change leaves, allowing missing integrations (a
// removed one waits for SetIntegration), so field problems read as the spec's do.
func checkNext(next opencti.Instance) error {
	return next.ValidatePresent()
}

func (r SetConfigRequest) requestID() string { return r.RequestID }

func (r SetConfigRequest) validate(base opencti.Instance) error {
	if r.Workers == nil && r.LogLevel == "" && r.PublicURL == "" && r.BasePath == nil && r.AdminEmail == "" {
		return problem("(input)", "changes nothing", `set one of workers, logLevel, publicURL, basePath, adminEmail, e.g. {"workers": 5}`)
	}
	return checkNext(r.next(base))
}

func (r SetConfigRequest) next(base opencti.Instance) opencti.Instance {
	out := base.WithDefaults()
	o := &out.OpenCTI
	if r.Workers != nil {
		o.Workers = spec.ClonePtr(r.Workers)
	}
	if r.LogLevel != "" {
		o.LogLevel = r.LogLevel
	}
	if r.PublicURL != "" {
		o.PublicURL = r.PublicURL
	}
	if r.BasePath != nil {
		o.BasePath = *r.BasePath
	}
	if r.AdminEmail != "" {
		o.AdminEmail = r.AdminEmail
	}
	return out
}

func (r SetConfigRequest) summary(base opencti.Instance) string { return specDiff(base, r.next(base)) }

func (r SetIntegrationRequest) requestID() string { return r.RequestID }

func (r SetIntegrationRequest) validate(base opencti.Instance) error {
	if r.OpenSearch == nil && r.RabbitMQ == nil && r.Redis == nil && r.S3 == nil {
		return problem("(input)", "sets no integration", "send one or more of opensearch, rabbitmq, redis, s3 with its section as in the spec, e.g. "+
			`{"redis": {"host": "10.0.0.5", "password": "file:/run/secrets/redis"}}`)
	}
	return checkNext(r.next(base))
}

func (r SetIntegrationRequest) next(base opencti.Instance) opencti.Instance {
	out := base.WithDefaults()
	ints := &out.Integrations
	if r.OpenSearch != nil {
		ints.OpenSearch = r.OpenSearch.Clone()
	}
	if r.RabbitMQ != nil {
		ints.RabbitMQ = r.RabbitMQ.Clone()
	}
	if r.Redis != nil {
		ints.Redis = r.Redis.Clone()
	}
	if r.S3 != nil {
		ints.S3 = r.S3.Clone()
	}
	return out.WithDefaults()
}

func (r SetIntegrationRequest) summary(base opencti.Instance) string {
	return specDiff(base, r.next(base))
}

func (r RemoveIntegrationRequest) requestID() string { return r.RequestID }

func (r RemoveIntegrationRequest) validate(base opencti.Instance) error {
	names := strings.Join(opencti.IntegrationNames, ", ")
	switch {
	case r.Integration == "":
		return problem("integration", "is required", "name the integration to remove: one of "+names)
	case !slices.Contains(opencti.IntegrationNames, r.Integration):
		return problem("integration", fmt.Sprintf("is not an integration of OpenCTI (got %q)", r.Integration), "use one of "+names)
	case slices.Contains(base.Missing(), r.Integration):
		return problem("integration", r.Integration+" is already removed", "send SetIntegration with its section to bring it back")
	}
	return nil
}

func (r RemoveIntegrationRequest) next(base opencti.Instance) opencti.Instance {
	out := base.WithDefaults()
	ints := &out.Integrations
	switch r.Integration {
	case "opensearch":
		ints.OpenSearch = nil
	case "rabbitmq":
		ints.RabbitMQ = nil
	case "redis":
		ints.Redis = nil
	case "s3":
		ints.S3 = nil
	}
	return out
}

func (r RemoveIntegrationRequest) summary(base opencti.Instance) string {
	return specDiff(base, r.next(base))
}

func (r RotateSecretRequest) requestID() string { return r.RequestID }

// rotateRefusals are the secrets RotateSecret refuses, with the reason and the fix.
var rotateRefusals = map[string][2]string{
	"opencti.encryptionKey": {"cannot be rotated: OpenCTI 7 hashes every API token with it (legacy_token_migration), so a new key breaks every user's and connector's token",
		"keep the key; rotate the tokens (opencti.adminToken) instead"},
	"pebble.serverCert": {"is read by socflow's worker at every call to Pebble, never planned into the container", "replace the file it refers to; the next call uses it"},
	"pebble.clientCert": {"is read by socflow's worker at every call to Pebble, never planned into the container", "replace the file it refers to; the next call uses it"},
	"pebble.clientKey":  {"is read by socflow's worker at every call to Pebble, never planned into the container", "replace the file it refers to; the next call uses it"},
}

func (r RotateSecretRequest) validate(base opencti.Instance) error {
	row, ok := secretRow(r.Secret)
	var fields []string
	for _, s := range opencti.SecretTable {
		if _, refused := rotateRefusals[s.Field]; !refused {
			fields = append(fields, s.Field)
		}
	}
	switch why, refused := rotateRefusals[r.Secret]; {
	case r.Secret == "":
		return problem("secret", "is required", "name the secret by its spec field: one of "+strings.Join(fields, ", "))
	case !ok:
		return problem("secret", fmt.Sprintf("is not a secret of an OpenCTI instance (got %q)", r.Secret), "use one of "+strings.Join(fields, ", "))
	case refused:
		return problem("secret", r.Secret+" "+why[0], why[1])
	case row.Ref(&base) == nil:
		return problem("secret", r.Secret+" belongs to an integration that is removed", "send SetIntegration with the section first")
	case row.Ref(&base).IsZero() && row.Generate == nil:
		return problem("secret", r.Secret+" is not set in the spec", "set it with SetIntegration (or the spec) instead")
	}
	return nil
}

func (r RotateSecretRequest) next(base opencti.Instance) opencti.Instance { return base.WithDefaults() }

func (r RotateSecretRequest) summary(base opencti.Instance) string {
	if r.generates(base) {
		return "rotate " + r.Secret + " (new value)"
	}
	return "re-read " + r.Secret
}

// generates reports a rotation that generates a new value: the secret is one socflow
// generates and the spec gives no reference of its own.
func (r RotateSecretRequest) generates(base opencti.Instance) bool {
	row, ok := secretRow(r.Secret)
	return ok && row.Generate != nil && row.Ref(&base) != nil && row.Ref(&base).IsZero()
}

// secretRow finds a secret of OpenCTI's table by its spec field.
func secretRow(field string) (opencti.Secret, bool) {
	for _, s := range opencti.SecretTable {
		if s.Field == field {
			return s, true
		}
	}
	return opencti.Secret{}, false
}

func (r ApplySpecRequest) requestID() string { return r.RequestID }

func (r ApplySpecRequest) validate(base opencti.Instance) error {
	next := r.next(base)
	var c spec.Checker
	if next.Name != base.Name {
		c.Add("spec.name", fmt.Sprintf("is %q, not this instance's %q", next.Name, base.Name), "send the spec to the workflow of its own instance, opencti/"+next.Name)
	}
	if !reflect.DeepEqual(next.Pebble, base.Pebble) {
		c.Add("spec.pebble", "differs from the container this instance runs in", "keep pebble as deployed; another container is another instance")
	}
	if next.OpenCTI.Version != base.OpenCTI.Version {
		c.Add("spec.opencti.version", fmt.Sprintf("changes %s -> %s: that is an upgrade, which a spec change does not do", base.OpenCTI.Version, next.OpenCTI.Version),
			"keep opencti.version "+base.OpenCTI.Version+" and send Upgrade (starter upgrade "+base.Name+" "+next.OpenCTI.Version+"), which checks, stops and migrates in order")
	}
	if next.OpenCTI.EncryptionKey != base.OpenCTI.EncryptionKey {
		c.Add("spec.opencti.encryptionKey", rotateRefusals["opencti.encryptionKey"][0], "keep the reference as deployed")
	}
	for _, s := range opencti.SecretTable {
		if s.Generate != nil && s.Field != "opencti.encryptionKey" && !s.Ref(&base).IsZero() && s.Ref(&next).IsZero() {
			c.Add("spec."+s.Field, "drops the reference the instance runs with, and socflow generates a value only at the first deploy",
				"keep the reference (point it at a new value and send RotateSecret to re-read it)")
		}
	}
	if err := c.Err(); err != nil {
		return err
	}
	if err := checkConnectors(base, next); err != nil {
		return fmt.Errorf("invalid spec:\n%w", err)
	}
	return nil
}

func (r ApplySpecRequest) next(base opencti.Instance) opencti.Instance { return r.Spec.WithDefaults() }

func (r ApplySpecRequest) summary(base opencti.Instance) string {
	if d := specDiff(base, r.next(base)); d != "" {
		return d
	}
	return "no difference"
}

// specDiff says on one line how next differs from base: each changed setting with its
// old and new value (secret references and extra env only named), each integration
// set, changed or removed.
func specDiff(base, next opencti.Instance) string {
	base, next = base.WithDefaults(), next.WithDefaults()
	parts := settingsDiff("", base.OpenCTI, next.OpenCTI)
	sections := func(i opencti.Instance) map[string]any {
		in := i.Integrations
		return map[string]any{"opensearch": in.OpenSearch, "rabbitmq": in.RabbitMQ, "redis": in.Redis, "s3": in.S3}
	}
	bs, ns := sections(base), sections(next)
	for _, name := range opencti.IntegrationNames {
		was, is := !reflect.ValueOf(bs[name]).IsNil(), !reflect.ValueOf(ns[name]).IsNil()
		switch {
		case was && !is:
			parts = append(parts, name+" removed")
		case !was && is:
			parts = append(parts, name+" set")
		case was && !reflect.DeepEqual(bs[name], ns[name]):
			parts = append(parts, name+" changed")
		}
	}
	parts = append(parts, connectorDiff(base, next)...)
	return strings.Join(parts, ", ")
}

// settingsDiff says how two values of one settings struct differ, field by field
// (prefix before each JSON name): a plain setting with its old and new value, a secret
// reference or a section only named (set, removed or changed: sections hold references
// and hosts a reader does not need spelled out), a string map with the changed keys.
func settingsDiff(prefix string, base, next any) []string {
	var parts []string
	bv, nv := reflect.ValueOf(base), reflect.ValueOf(next)
	for _, f := range reflect.VisibleFields(bv.Type()) {
		a, b := bv.FieldByIndex(f.Index), nv.FieldByIndex(f.Index)
		if reflect.DeepEqual(a.Interface(), b.Interface()) {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		name = prefix + name
		section := f.Type.Kind() == reflect.Struct || f.Type.Kind() == reflect.Slice ||
			f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct
		switch {
		case f.Type == reflect.TypeFor[spec.SecretRef]():
			parts = append(parts, name+" reference changed")
		case f.Type == reflect.TypeFor[map[string]string]():
			parts = append(parts, name+" changed ("+strings.Join(changedKeys(a.Interface().(map[string]string), b.Interface().(map[string]string)), ", ")+")")
		case section && f.Type.Kind() == reflect.Pointer && a.IsNil():
			parts = append(parts, name+" set")
		case section && f.Type.Kind() == reflect.Pointer && b.IsNil():
			parts = append(parts, name+" removed")
		case section || f.Type.Kind() == reflect.Map:
			parts = append(parts, name+" changed")
		default:
			parts = append(parts, fmt.Sprintf("%s %v -> %v", name, shown(a), shown(b)))
		}
	}
	return parts
}

// shown is a setting's value for specDiff, pointers followed.
func shown(v reflect.Value) any {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "unset"
		}
		return v.Elem().Interface()
	}
	if v.Kind() == reflect.String && v.String() == "" {
		return `""`
	}
	return v.Interface()
}

// changedKeys names the keys whose values differ between two maps, sorted.
func changedKeys(a, b map[string]string) []string {
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if v, ok := b[k]; !ok || v != a[k] {
			keys = append(keys, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
