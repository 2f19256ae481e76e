package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Spec is what an app's instance spec can do: default its unset fields and validate
// the result.
type Spec[T any] interface {
	// WithDefaults returns a copy with every unset field defaulted.
	WithDefaults() T
	// Validate reports every problem of the defaulted spec.
	Validate() error
}

// Load parses (strictly, Parse), defaults and validates a spec: the one call each app's
// starter command and workflow use, so both accept exactly the same specs.
func Load[T Spec[T]](data []byte) (T, error) {
	var zero T
	in, err := Parse[T](data)
	if err != nil {
		return zero, err
	}
	in = in.WithDefaults()
	if err := in.Validate(); err != nil {
		return zero, err
	}
	return in, nil
}

// Parse decodes a YAML or JSON instance spec into a T strictly: unknown fields,
// fields spelled with the wrong case and duplicate keys are errors naming the
// field, because a typo silently ignored becomes a default nobody asked for. It
// neither defaults nor validates; each app's Load does both.
func Parse[T any](data []byte) (T, error) {
	var zero T
	// encoding/json matches field names case-insensitively, so check the
	// exact key spelling first, on a generic decoding of the document.
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return zero, fmt.Errorf("cannot parse instance spec: %w", err)
	}
	var doc any
	if err := json.Unmarshal(j, &doc); err != nil {
		return zero, fmt.Errorf("cannot parse instance spec: %w", err)
	}
	if err := checkKeys(doc, reflect.TypeFor[T](), ""); err != nil {
		return zero, fmt.Errorf("cannot parse instance spec: %w", err)
	}
	var in T
	// UnmarshalStrict adds yaml.DisallowUnknownFields and rejects duplicate keys.
	if err := yaml.UnmarshalStrict(data, &in); err != nil {
		return zero, fmt.Errorf("cannot parse instance spec: %w", err)
	}
	return in, nil
}

// checkKeys walks a generic JSON value alongside the Go type it decodes into
// and reports the first key (in sorted order, so errors are stable) that no
// field's json name matches exactly.
func checkKeys(v any, t reflect.Type, at string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil // a type mismatch is reported by the real decoder
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			path := join(at, k)
			ft, ok := fields[k]
			if !ok {
				return unknownField(path, k, fields)
			}
			if err := checkKeys(obj[k], ft, path); err != nil {
				return err
			}
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, item := range list {
			if err := checkKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// unknownField builds the error for key k, suggesting the right spelling
// when only the case differs.
func unknownField(path, k string, fields map[string]reflect.Type) error {
	for name := range fields {
		if strings.EqualFold(name, k) {
			return &unknownKeyError{path: path, want: name}
		}
	}
	return &unknownKeyError{path: path}
}

// unknownKeyError is a key no field's json name matches exactly.
type unknownKeyError struct {
	path string // the key's dotted path
	want string // the field's spelling when only the case differs
}

func (e *unknownKeyError) Error() string {
	if e.want != "" {
		return fmt.Sprintf("unknown field %q (did you mean %q?)", e.path, e.want)
	}
	return fmt.Sprintf("unknown field %q", e.path)
}

// DecodeJSON decodes one JSON object into a T as strictly as Parse, for requests
// sent to a workflow: input that is not an object, a misspelt or unknown field and a
// value of the wrong JSON type are a *ValidationError naming the field, with fix
// (the fields T takes) as the way out, so a bad request reads like a bad spec.
func DecodeJSON[T any](data []byte, fix string) (T, error) {
	var v, zero T
	var c Checker
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil || doc == nil {
		c.Add("(input)", "is not a JSON object", fix)
		return zero, c.Err()
	}
	if _, ok := doc.(map[string]any); !ok {
		c.Add("(input)", fmt.Sprintf("must be a JSON object (got a JSON %s)", jsonKind(doc)), fix)
		return zero, c.Err()
	}
	var key *unknownKeyError
	if err := checkKeys(doc, reflect.TypeFor[T](), ""); errors.As(err, &key) {
		msg := "is not a field of this request"
		if key.want != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", key.want)
		}
		c.Add(key.path, msg, fix)
		return zero, c.Err()
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field != "" {
			c.Add(typ.Field, fmt.Sprintf("must be %s (got a JSON %s)", jsonTypeName(typ.Type), typ.Value), fix)
		} else {
			c.Add("(input)", "cannot be decoded: "+err.Error(), fix)
		}
		return zero, c.Err()
	}
	return v, nil
}

// jsonKind names the JSON type of a generically decoded value.
func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return "object"
}

// jsonTypeName says which JSON value a Go type takes, for type errors.
func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "a JSON object"
}

// jsonFields maps each json field name of struct type t to its type.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

// join appends a key to a dotted JSON path.
func join(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}
